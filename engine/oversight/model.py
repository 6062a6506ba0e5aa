"""What oversight keeps per ticket: its requests for more time, and the notices it got.

A :class:`TimeRequest` is one row of ``gw_time_requests``: an extension request (延期申请)
of one deadline, or a suspension (挂起) for a documented cause. A ticket's
:class:`OversightState` is the tuple of its requests (the participant's state); supervision
notices (督办) are rows written once (:class:`SupervisionNotice`).

History rows (kinds) and what their ``data`` holds:

========================= ======================= =============================================
kind                      trigger                 data
========================= ======================= =============================================
``extension_requested``   the deadline            ``n``, ``deadline``, ``original_due``,
                                                  ``proposed_due``, ``department``
``extension_approved``    the deadline            ``n``, ``deadline``, ``original_due``,
                                                  ``new_due``; ``fields``
                                                  (``{at_field: new_due}``) when the
                                                  deadline is due at a field
``extension_refused``     the deadline            ``n``, ``deadline``
``suspended``             the cause               ``n``, ``cause``, ``until``, ``department``
``resumed``               the cause               ``n``, ``cause``, ``suspended_seconds``,
                                                  ``by`` (``hand`` or ``limit``); ``fields``
                                                  (``{at_field: new due}``) for a held
                                                  deadline due at a field
``supervision_notice``    ``supervision``         ``department``, ``reply_due``
========================= ======================= =============================================

The row's ``reason`` is the request's reason, the decision's reason, or the notice's text.
Instants in ``data`` are ISO 8601 UTC text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "EXTENSION",
    "KINDS",
    "SUSPENSION",
    "OversightState",
    "SupervisionNotice",
    "TimeRequest",
]

EXTENSION = "extension"
SUSPENSION = "suspension"
KINDS = ("extension_requested", "extension_approved", "extension_refused", "suspended",
         "resumed", "supervision_notice")
"""The history kinds of oversight rows (all keep the ticket's state and level)."""


@dataclass(frozen=True)
class TimeRequest:
    """An extension request or a suspension of a ticket (a ``gw_time_requests`` row).

    Attributes:
        ticket_id: the ticket (or work order); parent_id: the ticket a work order belongs
            to (else the ticket itself).
        kind: ``extension`` or ``suspension``; n: its number among the ticket's requests of
            that kind (1, 2, ...).
        status: ``open``, ``approved`` or ``refused`` (extension); ``active`` or ``ended``
            (suspension).
        deadline: the deadline an extension is for; cause: a suspension's cause.
        department: the department concerned (the ticket's ``department`` field, unless
            named).
        requested_at, requested_by, requested_role, reason: the request (aware UTC).
        original_due: the deadline's due instant when the extension was asked for.
        proposed_due: the due instant asked for; for a suspension, when it ends at the
            latest (the system resumes it then).
        decided_at, decided_by, decision_reason: the centre's decision (extension).
        new_due: the due instant granted; extended_seconds: new_due − original_due.
        ended_at, suspended_seconds: when a suspension ended, how long it lasted.
        paused: the deadlines a suspension holds: ``(name, state or None, due)``.
        seq: the request's history row.
    """

    ticket_id: str
    parent_id: str
    kind: str
    n: int
    status: str
    deadline: str | None
    cause: str | None
    department: str | None
    requested_at: datetime
    requested_by: str
    requested_role: str
    reason: str
    original_due: datetime | None = None
    proposed_due: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    new_due: datetime | None = None
    extended_seconds: float | None = None
    ended_at: datetime | None = None
    suspended_seconds: float | None = None
    paused: tuple[tuple[str, str | None, datetime], ...] = ()
    seq: int = 0

    def row(self) -> dict[str, Any]:
        """The ``gw_time_requests`` columns (without ``id``)."""
        return {
            "ticket_id": self.ticket_id, "parent_id": self.parent_id, "kind": self.kind,
            "n": self.n, "status": self.status, "deadline": self.deadline,
            "cause": self.cause, "department": self.department,
            "requested_at": self.requested_at, "requested_by": self.requested_by,
            "requested_role": self.requested_role, "reason": self.reason,
            "original_due": self.original_due, "proposed_due": self.proposed_due,
            "decided_at": self.decided_at, "decided_by": self.decided_by,
            "decision_reason": self.decision_reason, "new_due": self.new_due,
            "extended_seconds": self.extended_seconds, "ended_at": self.ended_at,
            "suspended_seconds": self.suspended_seconds,
            "paused": {name: [state, due.isoformat()] for name, state, due in self.paused},
            "seq": self.seq,
        }

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> TimeRequest:
        """A request from its ``gw_time_requests`` row."""
        paused = tuple(sorted((name, v[0], datetime.fromisoformat(v[1]))
                              for name, v in (r["paused"] or {}).items()))
        return cls(r["ticket_id"], r["parent_id"], r["kind"], r["n"], r["status"],
                   r["deadline"], r["cause"], r["department"], r["requested_at"],
                   r["requested_by"], r["requested_role"], r["reason"], r["original_due"],
                   r["proposed_due"], r["decided_at"], r["decided_by"], r["decision_reason"],
                   r["new_due"], r["extended_seconds"], r["ended_at"],
                   r["suspended_seconds"], paused, r["seq"])


@dataclass(frozen=True)
class OversightState:
    """A ticket's requests for more time, in the order they were made."""

    requests: tuple[TimeRequest, ...] = field(default=())

    def of(self, kind: str) -> tuple[TimeRequest, ...]:
        """The requests of one kind (``extension`` or ``suspension``)."""
        return tuple(r for r in self.requests if r.kind == kind)

    def find(self, kind: str, n: int) -> TimeRequest | None:
        """Request ``n`` of ``kind``, or None."""
        return next((r for r in self.requests if r.kind == kind and r.n == n), None)

    def active_suspension(self) -> TimeRequest | None:
        """The suspension in force, or None."""
        return next((r for r in self.requests
                     if r.kind == SUSPENSION and r.status == "active"), None)

    def replace(self, new: TimeRequest) -> OversightState:
        """The state with ``new`` in place of the request of its kind and number (or added)."""
        kept = [r for r in self.requests if (r.kind, r.n) != (new.kind, new.n)]
        ordered = sorted([*kept, new], key=lambda r: (r.requested_at, r.seq, r.kind, r.n))
        return OversightState(tuple(ordered))


@dataclass(frozen=True)
class SupervisionNotice:
    """A supervision notice (督办) the centre sent about a ticket.

    Attributes:
        ticket_id, parent_id: the ticket (or work order) and the ticket it belongs to.
        seq: its history row; at: when (aware UTC); department: to whom; actor, role: who
        sent it; text: what it says; reply_due: when the department must reply (or None).
    """

    ticket_id: str
    parent_id: str
    seq: int
    at: datetime
    department: str | None
    actor: str
    role: str
    text: str
    reply_due: datetime | None
