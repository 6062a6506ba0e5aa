"""Oversight commands and reads: extension requests, suspensions, supervision notices.

Each command checks its inputs at the edge (:mod:`engine.validation`: ids, actor, text;
reasons must not be blank; instants must be aware), then runs as one command through the
pipeline: a history row in place (:meth:`~engine.runtime.participant.Unit.note`) that every
participant checks — the :class:`~engine.oversight.participant.Oversight` participant
applies the lifecycle's ``oversight`` rules — and plans, then one write. A refusal leaves
the ticket, its history and its timers as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from engine.errors import InvalidFields, OversightRefused, UnknownDepartment
from engine.oversight.model import EXTENSION, SUSPENSION, SupervisionNotice, TimeRequest
from engine.oversight.participant import Oversight, resumed_fields
from engine.runtime.kernel import Kernel
from engine.runtime.model import Actor
from engine.runtime.queries import must_exist
from engine.store.oversight_tables import supervision_notices, time_requests
from engine.validation import check_command

__all__ = [
    "decide_extension",
    "notices_of",
    "request_extension",
    "requests_of",
    "resume",
    "send_notice",
    "suspend",
]


def _aware(ticket_id: str, name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidFields(ticket_id, {name: "must be an aware datetime (UTC), got "
                                              f"{value!r}"})
    try:
        return value.astimezone(UTC).isoformat()
    except OverflowError:  # 9999-12-31T23:59-12:00 is past datetime's range in UTC
        raise InvalidFields(ticket_id, {name: f"{value.isoformat()} is out of range; give "
                                              "an instant before the year 9999"}) from None


def _edge(kernel: Kernel, ticket_id: str, actor: Actor, reason: object, what: str,
          field: str = "reason") -> str:
    check_command(kernel.limits, ticket_id=ticket_id, actor=actor, reason=reason)
    if not (isinstance(reason, str) and reason.strip()):
        raise InvalidFields(ticket_id, {field: f"{what} requires a {field}"})
    return reason


def _known_department(ticket_id: str, rec: Any, department: str | None) -> None:
    """Refuse a department the ticket's lifecycle does not declare (when it declares any)."""
    known = rec.lifecycle.spec.departments
    if department is not None and known and department not in known:
        raise UnknownDepartment(ticket_id, department, list(known))


def _department(ticket_id: str, department: object) -> str | None:
    if department is None:
        return None
    if not isinstance(department, str) or not 0 < len(department) <= 128:
        raise InvalidFields(ticket_id, {"department": "a department name of 1 to 128 "
                                                      "characters"})
    return department


def _offered(unit: Any, ticket_id: str, section: str, what: str) -> Any:
    """The ticket's record; refused unless its lifecycle's ``oversight`` has ``section``.

    (The participant is not asked for lifecycles without ``oversight``: refuse here.)
    """
    rec = unit.ticket(ticket_id)
    spec = rec.lifecycle.spec.oversight
    if spec is None or getattr(spec, section) is None:
        raise OversightRefused(ticket_id, "not_offered", what=what)
    return rec


def _request(unit: Any, ticket_id: str, kind: str, n: int | None = None) -> TimeRequest:
    requests = unit.state(ticket_id).of(kind)
    found: TimeRequest = requests[-1] if n is None else next(r for r in requests if r.n == n)
    return found


def request_extension(kernel: Kernel, participant: Oversight, ticket_id: str, deadline: str,
                      *, proposed_due: datetime, reason: str, actor: Actor,
                      department: str | None = None) -> TimeRequest:
    """A department asks for more time on a deadline (延期申请).

    Args:
        kernel: the engine's kernel.
        participant: its oversight participant.
        ticket_id: the ticket (or work order).
        deadline: the deadline to extend (one of ``oversight.extension.deadlines``).
        proposed_due: the due instant asked for (aware; stored as UTC).
        reason: why (required).
        actor: who asks (a role of ``request_roles``).
        department: the department asking (default: the ticket's ``department`` field).

    Returns:
        The open request (its ``n`` names it for the decision).

    Raises:
        InvalidFields: a blank reason, a naive instant, bad text.
        TicketNotFound, RoleNotAllowed, OversightRefused: nothing was changed.
    """
    _edge(kernel, ticket_id, actor, reason, "an extension request")
    data = {"deadline": deadline,
            "proposed_due": _aware(ticket_id, "proposed_due", proposed_due),
            "department": _department(ticket_id, department)}
    with kernel.compound(participant) as unit:
        rec = _offered(unit, ticket_id, "extension", "extension")
        _known_department(ticket_id, rec, data["department"])
        unit.note(ticket_id, "extension_requested", deadline, actor=actor, reason=reason,
                  data=data)
        return _request(unit, ticket_id, EXTENSION)


def decide_extension(kernel: Kernel, participant: Oversight, ticket_id: str, n: int, *,
                     approve: bool, reason: str, actor: Actor,
                     due_at: datetime | None = None) -> TimeRequest:
    """The centre approves or refuses extension request ``n`` of a ticket.

    Approving moves the deadline's timer to the granted due instant (``due_at``, default the
    one asked for); the request keeps the original due, the new one and the time added. A
    deadline due at a field (its ``at_field``, e.g. grid_incident's ``resolution`` at
    ``target_at``) gets that field set to the new due by the same history row
    (``data["fields"]``), so the ticket's fields and its timer agree.

    Raises:
        InvalidFields: a blank reason, a naive ``due_at``.
        TicketNotFound, RoleNotAllowed, OversightRefused (``unknown_request``, ``not_open``,
        ``deadline_not_running``, ``limit_reached``, ``not_later``, ``too_long``).
    """
    _edge(kernel, ticket_id, actor, reason, "an extension decision")
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidFields(ticket_id, {"n": "the request's number (1, 2, ...)"})
    granted = _aware(ticket_id, "due_at", due_at, optional=True)
    with kernel.compound(participant) as unit:
        rec = _offered(unit, ticket_id, "extension", "extension")
        request = unit.state(ticket_id).find(EXTENSION, n)
        deadline = request.deadline if request is not None else "extension"
        data: dict[str, Any] = {"n": n, "deadline": deadline}
        fields: dict[str, Any] = {}
        if approve:
            proposed = request.proposed_due if request is not None else None
            data["new_due"] = granted or (proposed.isoformat() if proposed else None)
            if request is not None and request.original_due is not None:
                data["original_due"] = request.original_due.isoformat()
            spec = rec.lifecycle.spec.deadlines.get(deadline or "")
            if spec is not None and spec.at_field is not None and data["new_due"]:
                fields[spec.at_field] = data["new_due"]  # the field the deadline is due at
        unit.note(ticket_id, "extension_approved" if approve else "extension_refused",
                  deadline or "extension", actor=actor, reason=reason, data=data,
                  fields=fields)
        decided = _request(unit, ticket_id, EXTENSION, n)
        return decided


def suspend(kernel: Kernel, participant: Oversight, ticket_id: str, cause: str, *,
            reason: str, actor: Actor, until: datetime | None = None,
            department: str | None = None) -> TimeRequest:
    """Suspend a ticket (挂起) for a documented cause: its deadlines and SLA clocks stop.

    Args:
        kernel: the engine's kernel.
        participant: its oversight participant.
        ticket_id: the ticket (or work order).
        cause: one of ``oversight.suspension.causes``.
        reason: the details (required).
        actor: who suspends (a role of ``suspension.roles``: the centre, at a department's
            request).
        until: when to resume at the latest (aware; default and at most now +
            ``max_duration``); the system resumes it then.
        department: the department concerned (default: the ticket's ``department`` field).

    Raises:
        InvalidFields, TicketNotFound, RoleNotAllowed, OversightRefused (``unknown_cause``,
        ``suspended``, ``limit_reached``, ``too_long``, ``ticket_ended``).
    """
    _edge(kernel, ticket_id, actor, reason, "a suspension")
    data = {"cause": cause, "until": _aware(ticket_id, "until", until, optional=True),
            "department": _department(ticket_id, department)}
    with kernel.compound(participant) as unit:
        rec = _offered(unit, ticket_id, "suspension", "suspension")
        _known_department(ticket_id, rec, data["department"])
        unit.note(ticket_id, "suspended", cause if isinstance(cause, str) else "suspension",
                  actor=actor, reason=reason, data=data)
        return _request(unit, ticket_id, SUSPENSION)


def resume(kernel: Kernel, participant: Oversight, ticket_id: str, *, reason: str,
           actor: Actor) -> TimeRequest:
    """Resume a suspended ticket: its held deadlines run again, later by the time held.

    A held deadline due at a field (grid_incident's ``resolution`` at ``target_at``) gets
    that field moved with it by the ``resumed`` row.

    Raises:
        InvalidFields, TicketNotFound, RoleNotAllowed, OversightRefused (``not_suspended``).
    """
    _edge(kernel, ticket_id, actor, reason, "resuming")
    with kernel.compound(participant) as unit:
        rec = _offered(unit, ticket_id, "suspension", "suspension")
        active = unit.state(ticket_id).active_suspension()
        cause = active.cause if active is not None else "suspension"
        data: dict[str, Any] = {"n": active.n if active is not None else None,
                                "cause": cause, "by": "hand"}
        fields: dict[str, Any] = {}
        if active is not None:
            data["suspended_seconds"] = (unit.now - active.requested_at).total_seconds()
            fields = resumed_fields(rec, active, unit.now)
        unit.note(ticket_id, "resumed", cause or "suspension", actor=actor, reason=reason,
                  data=data, fields=fields)
        assert active is not None
        return _request(unit, ticket_id, SUSPENSION, active.n)


def send_notice(kernel: Kernel, participant: Oversight, ticket_id: str, *, text: str,
                actor: Actor, department: str | None = None,
                reply_due: datetime | None = None) -> SupervisionNotice:
    """The centre sends a supervision notice (督办) about a ticket to a department.

    Args:
        kernel: the engine's kernel.
        participant: its oversight participant.
        ticket_id: the ticket (or work order).
        text: what the notice says (required; kept as the history row's reason).
        actor: who sends it (a role of ``supervision.roles``).
        department: to whom (default: the ticket's ``department`` field).
        reply_due: when the department must reply (aware); default now +
            ``supervision.reply_within`` when the lifecycle gives one, else none.

    Raises:
        InvalidFields: a blank ``text``, a naive or out-of-range ``reply_due``.
        UnknownDepartment: a department the lifecycle does not declare.
        TicketNotFound, RoleNotAllowed, OversightRefused: nothing was changed.
    """
    _edge(kernel, ticket_id, actor, text, "a supervision notice", "text")
    due = _aware(ticket_id, "reply_due", reply_due, optional=True)
    with kernel.compound(participant) as unit:
        rec = _offered(unit, ticket_id, "supervision", "supervision notice")
        dept = _department(ticket_id, department) or rec.fields.get("department")
        _known_department(ticket_id, rec, dept)
        spec = rec.lifecycle.spec.oversight
        within = spec.supervision.reply_within if spec and spec.supervision else None
        if due is None and within is not None:
            due = (unit.now + within).isoformat()
        rec = unit.note(ticket_id, "supervision_notice", "supervision", actor=actor,
                        reason=text, data={"department": dept, "reply_due": due})
        parent = rec.fields.get("parent")
        return SupervisionNotice(ticket_id, parent if isinstance(parent, str) else ticket_id,
                                 rec.version, unit.now, dept, actor.id, actor.role, text,
                                 datetime.fromisoformat(due) if due else None)


def requests_of(kernel: Kernel, ticket_id: str, kind: str | None = None) -> list[TimeRequest]:
    """A ticket's extension requests and suspensions as stored, in the order made.

    Raises:
        TicketNotFound: no such ticket.
    """
    with kernel.reading() as conn:
        must_exist(conn, ticket_id)
        query = select(time_requests).where(time_requests.c.ticket_id == ticket_id)
        if kind is not None:
            query = query.where(time_requests.c.kind == kind)
        rows = conn.execute(query.order_by(time_requests.c.id)).mappings().all()
    return [TimeRequest.from_row(dict(r)) for r in rows]


def notices_of(kernel: Kernel, ticket_id: str) -> list[SupervisionNotice]:
    """A ticket's supervision notices, oldest first.

    Raises:
        TicketNotFound: no such ticket.
    """
    with kernel.reading() as conn:
        must_exist(conn, ticket_id)
        rows = conn.execute(select(supervision_notices).where(
            supervision_notices.c.ticket_id == ticket_id)
            .order_by(supervision_notices.c.id)).mappings().all()
    return [SupervisionNotice(r["ticket_id"], r["parent_id"], r["seq"], r["at"],
                              r["department"], r["actor"], r["role"], r["text"],
                              r["reply_due"]) for r in rows]
