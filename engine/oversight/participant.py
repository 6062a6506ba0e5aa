"""The oversight participant: extension requests, suspensions and supervision notices.

A lifecycle's ``oversight`` section (issue 11) offers the legitimate ways to need more time
and the centre's pressure. Every step is a history row in place (:meth:`Unit.note`, kinds in
:mod:`engine.oversight.model`), announced to the participants like any change; this
participant checks it against the rules (refusing with :class:`OversightRefused` or
:class:`RoleNotAllowed` before anything is staged) and plans its consequences:

* ``extension_requested``: one open request per ticket and deadline, of an extensible
  deadline that runs now, to a later due instant, at most ``max_length`` later, while fewer
  than ``max_extensions`` were approved. A ``gw_time_requests`` row (``open``).
* ``extension_approved``: the deadline's timer moves to the new due instant (the breach, the
  overdue flag and Open311's ``expected_datetime`` follow it); a deadline due at a field
  has that field set to the new due by the same row (the service stages it with the row,
  ``data["fields"]``); the row keeps the original due, the new one and the time added.
  ``extension_refused``: the row keeps the refusal.
* ``suspended``: for a declared cause, at most ``max_count`` times, until at most
  ``max_duration`` from now. The ticket's running deadlines are held (their timers
  cancelled, their due instants kept), its SLA clocks are suspended and its ladder budget is
  held (the SLA and ladder participants react to the same row, each with its own timers and
  rows), and a timer ``oversight:resume`` falls due at the limit. While suspended, only a
  transition into a final state may move the ticket.
* ``resumed`` (by hand, or by the system when the timer falls due): the held deadlines run
  again, each due later by the time suspended; the SLA clocks run on from where they were,
  and the ladder's budget runs on, later by the same span.
* a transition into a final state ends a suspension in force.
* ``supervision_notice``: a ``gw_supervision_notices`` row.

``Engine.check_invariants`` (``gridwhistle check``) asks :meth:`Oversight.stored_problems`
for two rules: ``oversight_rows`` — each ``extension_requested``, ``suspended`` and
``supervision_notice`` history row has its table row (the same ``seq``), and no table row
lacks its history row; ``suspension`` — a ticket whose history leaves it suspended (its
last ``suspended`` row not followed by ``resumed``, and not in a final state) has one active
suspension row and a pending ``oversight:resume`` timer, any other ticket neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, insert, select, update

from engine.definition.schema import OversightSpec
from engine.durations import format_duration
from engine.errors import OversightRefused, RoleNotAllowed
from engine.lifecycle.machine import Lifecycle
from engine.oversight.model import EXTENSION, SUSPENSION, OversightState, TimeRequest
from engine.runtime.changes import Change
from engine.runtime.invariants import suspended_by_history
from engine.runtime.model import SYSTEM
from engine.runtime.participant import (
    CheckContext,
    FireContext,
    Participant,
    PlanContext,
    RowWrite,
)
from engine.runtime.working import PendingTimer, TicketRecord
from engine.store.oversight_tables import supervision_notices, time_requests
from engine.store.reads import in_chunks, rows_of

__all__ = ["RESUME_TIMER", "Oversight", "instant"]

RESUME_TIMER = "oversight:resume"
# history kind → the row it writes (gw_time_requests.kind, or "notice": gw_supervision_notices)
_ROW_OF_KIND = {"extension_requested": EXTENSION, "suspended": SUSPENSION,
                "supervision_notice": "notice"}
"""The timer that resumes a suspension at its limit (pending exactly while suspended)."""

_INSERT = insert(time_requests)
_c = time_requests.c
_UPDATE = (update(time_requests)
           .where(_c.ticket_id == bindparam("b_tid"), _c.kind == bindparam("b_kind"),
                  _c.n == bindparam("b_n"))
           .values(status=bindparam("b_status"),
                   decided_at=bindparam("b_decided_at", type_=_c.decided_at.type),
                   decided_by=bindparam("b_decided_by"),
                   decision_reason=bindparam("b_decision_reason"),
                   new_due=bindparam("b_new_due", type_=_c.new_due.type),
                   extended_seconds=bindparam("b_extended"),
                   ended_at=bindparam("b_ended_at", type_=_c.ended_at.type),
                   suspended_seconds=bindparam("b_suspended"),
                   paused=bindparam("b_paused", type_=_c.paused.type)))
_INSERT_NOTICE = insert(supervision_notices)


def instant(value: object) -> datetime | None:
    """An instant of a row's data (ISO 8601 text, or a datetime), or None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def parent_of(rec: TicketRecord) -> str:
    """The ticket a work order belongs to (its ``parent`` field), else the ticket itself."""
    parent = rec.fields.get("parent")
    return str(parent) if isinstance(parent, str) and parent else rec.id


def department_of(rec: TicketRecord) -> str | None:
    """The ticket's ``department`` field (its handling department), or None."""
    dept = rec.fields.get("department")
    return str(dept) if isinstance(dept, str) and dept else None


def resumed_moves(rec: TicketRecord, active: TimeRequest,
                  at: datetime) -> list[tuple[str, datetime, str | None]]:
    """The deadlines a suspension's end at ``at`` runs again: ``(name, new due, its field)``.

    Each held deadline still in force is due later by the time held (``at`` minus the
    suspension's start); ``its field`` is the deadline's ``at_field`` (None: a time-based
    deadline), which the ``resumed`` row sets to the new due so that the field and the timer
    agree.
    """
    lasted = at - active.requested_at
    deadlines = rec.lifecycle.spec.deadlines
    out = []
    for name, owner, due in active.paused:
        spec = deadlines.get(name)
        if spec is not None and spec.state in (None, rec.state) and owner in (
                None, rec.state):  # (a migrated ticket may have left that state)
            out.append((name, due + lasted, spec.at_field))
    return out


def resumed_fields(rec: TicketRecord, active: TimeRequest, at: datetime) -> dict[str, str]:
    """The field values (ISO text) a ``resumed`` row at ``at`` sets (see resumed_moves)."""
    return {f: due.isoformat() for _, due, f in resumed_moves(rec, active, at) if f is not None}


def _need_role(ctx: CheckContext, change: Change, what: str, roles: Sequence[str]) -> None:
    if change.role not in roles:
        raise RoleNotAllowed(change.ticket_id, change.to_state, what, change.role, roles)


class Oversight(Participant):
    """See the module docstring. One per engine."""

    key = "oversight"
    timer_prefix = "oversight"

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles with an ``oversight`` section."""
        return lifecycle.spec.oversight is not None

    def empty(self, lifecycle: Lifecycle) -> OversightState:
        """No request yet."""
        return OversightState()

    def load(self, conn: Connection, ticket_ids: Sequence[str]) -> Mapping[str, Any]:
        """The tickets' requests (``gw_time_requests``)."""
        found: dict[str, list[TimeRequest]] = {t: [] for t in ticket_ids}
        for r in rows_of(conn, time_requests, ticket_ids):
            found[r["ticket_id"]].append(TimeRequest.from_row(r))
        return {t: OversightState(tuple(sorted(rs, key=lambda r: (r.requested_at, r.seq,
                                                                    r.kind, r.n))))
                for t, rs in found.items()}

    def writes(self, ticket_id: str, stored: Any, current: Any) -> Iterable[RowWrite]:
        """Insert new requests, update decided or ended ones."""
        if not isinstance(current, OversightState) or current == stored:
            return
        before = {(r.kind, r.n): r for r in (stored.requests if isinstance(
            stored, OversightState) else ())}
        for r in current.requests:
            old = before.get((r.kind, r.n))
            if old == r:
                continue
            row = r.row()
            if old is None:
                yield _INSERT, row
            else:
                yield _UPDATE, {
                    "b_tid": r.ticket_id, "b_kind": r.kind, "b_n": r.n, "b_status": r.status,
                    "b_decided_at": r.decided_at, "b_decided_by": r.decided_by,
                    "b_decision_reason": r.decision_reason, "b_new_due": r.new_due,
                    "b_extended": r.extended_seconds, "b_ended_at": r.ended_at,
                    "b_suspended": r.suspended_seconds, "b_paused": row["paused"]}

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Reports; a check of a transition to a final state, a plan of any other.

        (A transition that does not end the ticket is refused while it is suspended; one
        that ends it ends the suspension.)
        """
        if kind == "report" or lifecycle.spec.oversight is None:
            return kind in ("report", "transition")
        if kind != "transition":
            return False
        final = to_state in lifecycle.final_states
        return final if step == "check" else not final

    # -- check ----------------------------------------------------------------------------

    def check(self, ctx: CheckContext, change: Change) -> None:
        """Refuse what the lifecycle's oversight rules do not allow (module docstring)."""
        spec = change.lifecycle.spec.oversight
        if spec is None:
            return
        kind = change.kind
        if kind == "transition":
            if (change.to_state not in change.lifecycle.final_states
                    and RESUME_TIMER in ctx.ticket(change.ticket_id).timers):
                raise OversightRefused(change.ticket_id, "suspended")
            return
        if kind.startswith("extension_"):
            self._check_extension(ctx, change, spec)
        elif kind in ("suspended", "resumed"):
            self._check_suspension(ctx, change, spec)
        elif kind == "supervision_notice":
            sup = spec.supervision
            if sup is None:
                raise OversightRefused(change.ticket_id, "not_offered",
                                       what="supervision notice")
            _need_role(ctx, change, "supervision_notice", sup.roles)
            due = instant(change.data.get("reply_due"))
            if due is not None and due <= change.at:
                raise OversightRefused(change.ticket_id, "not_later", due=change.at.isoformat())

    def _check_extension(self, ctx: CheckContext, change: Change, spec: OversightSpec) -> None:
        tid, data = change.ticket_id, change.data
        ext = spec.extension
        if ext is None:
            raise OversightRefused(tid, "not_offered", what="extension")
        deadline = str(data.get("deadline") or change.trigger)
        state: OversightState = ctx.state(tid)
        rec = ctx.ticket(tid)
        timer = rec.timers.get(deadline)
        approved = sum(r.status == "approved" for r in state.of(EXTENSION)
                       if r.deadline == deadline)
        if change.kind == "extension_requested":
            _need_role(ctx, change, "request_extension", ext.request_roles)
            if deadline not in ext.deadlines:
                raise OversightRefused(tid, "deadline_not_extensible", deadline=deadline)
            if timer is None:
                raise OversightRefused(tid, "deadline_not_running", deadline=deadline)
            pending = next((r for r in state.of(EXTENSION)
                            if r.deadline == deadline and r.status == "open"), None)
            if pending is not None:
                raise OversightRefused(tid, "open_request", deadline=deadline, n=pending.n)
            wanted = instant(data.get("proposed_due"))
        else:
            _need_role(ctx, change, "decide_extension", ext.decide_roles)
            n = int(data.get("n") or 0)
            request = state.find(EXTENSION, n)
            if request is None:
                raise OversightRefused(tid, "unknown_request", what="extension", n=n)
            if request.status != "open":
                raise OversightRefused(tid, "not_open", what="extension", n=n,
                                       status=request.status)
            if change.kind == "extension_refused":
                return
            if timer is None:
                raise OversightRefused(tid, "deadline_not_running", deadline=deadline)
            wanted = instant(data.get("new_due"))
        if approved >= ext.max_extensions:
            raise OversightRefused(tid, "limit_reached", limit=ext.max_extensions,
                                   what=f"extension of deadline {deadline!r}",
                                   deadline=deadline)
        assert timer is not None
        if wanted is None or wanted <= timer.due_at or wanted <= change.at:
            raise OversightRefused(tid, "not_later",
                                   due=max(timer.due_at, change.at).isoformat())
        if ext.max_length is not None and wanted - timer.due_at > ext.max_length:
            raise OversightRefused(tid, "too_long", what="an extension",
                                   limit=format_duration(ext.max_length))

    def _check_suspension(self, ctx: CheckContext, change: Change, spec: OversightSpec) -> None:
        tid, data = change.ticket_id, change.data
        sus = spec.suspension
        if sus is None:
            raise OversightRefused(tid, "not_offered", what="suspension")
        state: OversightState = ctx.state(tid)
        active = state.active_suspension()
        if change.kind == "resumed":
            if change.role != SYSTEM.role:
                _need_role(ctx, change, "resume", sus.resume_roles)
            if active is None:
                raise OversightRefused(tid, "not_suspended")
            return
        _need_role(ctx, change, "suspend", sus.roles)
        cause = str(data.get("cause") or change.trigger)
        if cause not in sus.causes:
            raise OversightRefused(tid, "unknown_cause", cause=cause,
                                   known=", ".join(sorted(sus.causes)))
        if change.to_state in change.lifecycle.final_states:
            raise OversightRefused(tid, "ticket_ended")
        if active is not None:
            raise OversightRefused(tid, "suspended")
        if len(state.of(SUSPENSION)) >= sus.max_count:
            raise OversightRefused(tid, "limit_reached", limit=sus.max_count,
                                   what="suspension")
        until = instant(data.get("until"))
        if until is not None:
            if until <= change.at:
                raise OversightRefused(tid, "not_later", due=change.at.isoformat())
            if until - change.at > sus.max_duration:
                raise OversightRefused(tid, "too_long", what="a suspension",
                                       limit=format_duration(sus.max_duration))

    # -- plan -----------------------------------------------------------------------------

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Stage the request rows, the moved and held deadlines, the resume timer."""
        spec = change.lifecycle.spec.oversight
        if spec is None:
            return
        kind, tid = change.kind, change.ticket_id
        if kind == "transition":
            if (change.to_state in change.lifecycle.final_states
                    and RESUME_TIMER in ctx.ticket(tid).timers):
                self._end(ctx, change, by="final")
            return
        if kind == "supervision_notice":
            rec = ctx.ticket(tid)
            ctx.add_row(_INSERT_NOTICE, {
                "ticket_id": tid, "parent_id": parent_of(rec), "seq": change.seq,
                "at": change.at, "department": change.data.get("department"),
                "actor": change.actor[:128], "role": change.role,
                "text": change.reason or "", "reply_due": instant(change.data.get("reply_due"))})
            return
        if kind == "extension_requested":
            self._requested(ctx, change)
        elif kind in ("extension_approved", "extension_refused"):
            self._decided(ctx, change)
        elif kind == "suspended":
            self._suspended(ctx, change)
        elif kind == "resumed":
            self._end(ctx, change, by=str(change.data.get("by") or "hand"))

    def _requested(self, ctx: PlanContext, change: Change) -> None:
        tid, data = change.ticket_id, change.data
        rec = ctx.ticket(tid)
        state: OversightState = ctx.state(tid)
        deadline = str(data.get("deadline") or change.trigger)
        timer = rec.timers[deadline]
        ctx.set_state(tid, state.replace(TimeRequest(
            tid, parent_of(rec), EXTENSION, len(state.of(EXTENSION)) + 1, "open", deadline,
            None, _dept(data, rec), change.at, change.actor[:128], change.role,
            change.reason or "", original_due=timer.due_at,
            proposed_due=instant(data.get("proposed_due")), seq=change.seq)))

    def _decided(self, ctx: PlanContext, change: Change) -> None:
        tid, data = change.ticket_id, change.data
        state: OversightState = ctx.state(tid)
        request = state.find(EXTENSION, int(data["n"]))
        assert request is not None and request.deadline is not None
        decided = replace(request, decided_at=change.at, decided_by=change.actor[:128],
                          decision_reason=change.reason)
        if change.kind == "extension_refused":
            ctx.set_state(tid, state.replace(replace(decided, status="refused")))
            return
        new_due = instant(data["new_due"])
        assert new_due is not None
        current = ctx.ticket(tid).timers[request.deadline].due_at
        ctx.move_deadline(tid, request.deadline, new_due)
        ctx.set_state(tid, state.replace(replace(
            decided, status="approved", new_due=new_due,
            extended_seconds=(new_due - current).total_seconds())))

    def _suspended(self, ctx: PlanContext, change: Change) -> None:
        tid, data = change.ticket_id, change.data
        sus = change.lifecycle.spec.oversight.suspension  # type: ignore[union-attr]
        assert sus is not None
        rec = ctx.ticket(tid)
        state: OversightState = ctx.state(tid)
        held = tuple(sorted((t.name, t.state, t.due_at) for t in rec.timers.values()
                            if ":" not in t.name))
        for name, _, _ in held:
            ctx.cancel(tid, name)
        until = instant(data.get("until")) or change.at + sus.max_duration
        ctx.schedule(tid, RESUME_TIMER, until)
        ctx.set_state(tid, state.replace(TimeRequest(
            tid, parent_of(rec), SUSPENSION, len(state.of(SUSPENSION)) + 1, "active", None,
            str(data.get("cause") or change.trigger), _dept(data, rec), change.at,
            change.actor[:128], change.role, change.reason or "", proposed_due=until,
            paused=held, seq=change.seq)))

    def _end(self, ctx: PlanContext, change: Change, *, by: str) -> None:
        tid = change.ticket_id
        state: OversightState = ctx.state(tid)
        active = state.active_suspension()
        if active is None:
            return
        lasted = change.at - active.requested_at
        ctx.cancel(tid, RESUME_TIMER)
        if by != "final":  # the held deadlines run again, each due later by the time held
            for name, due, _ in resumed_moves(ctx.ticket(tid), active, change.at):
                ctx.move_deadline(tid, name, due)
        ctx.set_state(tid, state.replace(replace(
            active, status="ended", ended_at=change.at,
            suspended_seconds=lasted.total_seconds(),
            decision_reason=change.reason if by != "final" else f"ended by {change.trigger}",
            decided_by=change.actor[:128], decided_at=change.at)))

    # -- timers ---------------------------------------------------------------------------

    def fire(self, ctx: FireContext, timer: PendingTimer, ticket: TicketRecord) -> str:
        """The suspension's limit: the system resumes it."""
        state: OversightState = ctx.state(ticket.id)
        active = state.active_suspension()
        if timer.name != RESUME_TIMER or active is None:
            return "stale"
        ctx.record(ticket.id, "resumed", active.cause or "suspension",
                   f"suspension {active.n} reached its limit ({timer.due_at.isoformat()}): "
                   "resumed by the system",
                   {"n": active.n, "cause": active.cause, "by": "limit", "timer_id": timer.id,
                    "suspended_seconds": (timer.due_at - active.requested_at).total_seconds()},
                   escalate=False, fields=resumed_fields(ticket, active, ctx.now))
        return "resumed"

    def timer_problem(self, name: str, state: str, level: str,
                      lifecycle: Lifecycle) -> str | None:
        """The resume timer of a lifecycle without suspension."""
        spec = lifecycle.spec.oversight
        if name != RESUME_TIMER or spec is None or spec.suspension is None:
            return f"{lifecycle.name} has no suspension; {name!r} should not be pending"
        return None

    def stored_problems(self, conn: Connection, tickets: Mapping[str, Mapping[str, Any]],
                        history: Mapping[str, Sequence[Mapping[str, Any]]],
                        timers: Mapping[str, Sequence[Mapping[str, Any]]],
                        lifecycle_of: Callable[[int], Lifecycle],
                        ) -> Iterable[tuple[str, str, str]]:
        """``oversight_rows`` and ``suspension`` (see the module docstring).

        Reads ``gw_time_requests`` and ``gw_supervision_notices`` once for all ``tickets``.
        """
        tr, sn = time_requests.c, supervision_notices.c
        kept: dict[str, list[tuple[str, str | None, int]]] = {}
        for chunk in in_chunks(tickets):
            for r in conn.execute(select(tr.ticket_id, tr.kind, tr.status, tr.seq)
                                  .where(tr.ticket_id.in_(chunk))):
                kept.setdefault(r.ticket_id, []).append((r.kind, r.status, r.seq))
            for n in conn.execute(select(sn.ticket_id, sn.seq).where(sn.ticket_id.in_(chunk))):
                kept.setdefault(n.ticket_id, []).append(("notice", None, n.seq))
        for tid, ticket in tickets.items():
            rows, mine = history.get(tid, ()), kept.get(tid, [])
            told = sorted((_ROW_OF_KIND[r["kind"]], r["seq"]) for r in rows
                          if r["kind"] in _ROW_OF_KIND)
            stored = sorted((kind, seq) for kind, _, seq in mine)
            if told != stored:
                missing = sorted(set(told) - set(stored))
                extra = sorted(set(stored) - set(told))
                yield (tid, "oversight_rows", f"history rows without their oversight row: "
                       f"{missing or 'none'}; oversight rows without their history row: "
                       f"{extra or 'none'} (kind, seq)")
            final = lifecycle_of(ticket["definition_id"]).final_states
            suspended = suspended_by_history(rows) and ticket["state"] not in final
            active = sum(1 for kind, status, _ in mine
                         if kind == SUSPENSION and status == "active")
            resume = sum(1 for t in timers.get(tid, ())
                         if t["name"] == RESUME_TIMER and t["status"] == "pending")
            if (active, resume) != ((1, 1) if suspended else (0, 0)):
                yield (tid, "suspension", f"history says {'' if suspended else 'not '}"
                       f"suspended; {active} active suspension row(s), {resume} pending "
                       f"{RESUME_TIMER!r} timer(s)")


def _dept(data: Mapping[str, Any], rec: TicketRecord) -> str | None:
    given = data.get("department")
    return str(given)[:128] if isinstance(given, str) and given else department_of(rec)
