"""Changes: what every history row announces to the engine's participants.

Each history row a command or a fired timer stages (report, transition, breach, ...) becomes
one :class:`Change`. Participants (:mod:`engine.runtime.participant`) check and plan on
changes before anything is written, and get the committed ones after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from engine.lifecycle.machine import Lifecycle

__all__ = ["Change"]


class Change(NamedTuple):
    """One history row, as announced to participants.

    Attributes:
        ticket_id: the ticket.
        lifecycle: the compiled lifecycle version the ticket runs on.
        seq: the history row's position in the ticket's history.
        kind: ``report``, ``transition``, ``breach`` (a deadline, level budget or maximum lag),
            ``sla_warning``, ``sla_breach``, ``migration`` (moved to another lifecycle
            version, see :meth:`Engine.migrate`), ``follow_on_refused`` (a consequence the
            engine could not carry out, see docs/architecture.md), or a row in place of
            another participant (:meth:`Unit.note`): issue 11's ``extension_requested``,
            ``extension_approved``, ``extension_refused``, ``suspended``, ``resumed``,
            ``supervision_notice`` (docs/oversight.md).
        trigger: the trigger (``report``; the deadline, ``<level>_budget``, lag or SLA clock
            name for the other kinds).
        from_state, to_state, from_level, to_level: before and after (``from_*`` None on report).
        actor, role, reason: who and why.
        at: when (aware UTC).
        fields: the ticket's fields after the change (JSON form: datetimes as ISO text).
        data: the history row's extra data (e.g. a breach's ``due_at``; the fields a
            transition set under ``fields``).
        change_id: a UUID (text) naming this change; the outbox stores it as the domain
            event's ``event_id``.

    A ``NamedTuple``, not a frozen dataclass: as immutable, and built in a third of the
    time (a frozen dataclass sets each field through ``object.__setattr__``); the
    pipeline builds several per command.
    """

    ticket_id: str
    lifecycle: Lifecycle
    seq: int
    kind: str
    trigger: str
    from_state: str | None
    to_state: str
    from_level: str | None
    to_level: str
    actor: str
    role: str
    reason: str | None
    at: datetime
    fields: dict[str, Any]
    data: dict[str, Any]
    change_id: str = ""

    @property
    def entered(self) -> str | None:
        """The state the change entered (None for a self-transition or a row in place)."""
        return self.to_state if self.from_state != self.to_state else None
