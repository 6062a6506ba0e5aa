"""Changes: what every history row announces to the engine's participants, in-transaction.

Each history row a command or a fired deadline writes (report, transition, breach) becomes one
:class:`Change`, handed to every registered :class:`Participant` *inside the same
transaction*, before it commits. Participants are the engine's own extensions that must stay
consistent with the ticket (SLA clocks, the event outbox, ...): whatever they write commits or
rolls back with the state change. A participant that raises rolls the whole transaction back
(nothing is written) and its exception propagates to the caller: participants are engine code,
so an exception there is a bug to fix, not a refusal of the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from engine.lifecycle.machine import Lifecycle

__all__ = ["Change", "Participant"]


@dataclass(frozen=True)
class Change:
    """One history row, as announced to participants.

    Attributes:
        ticket_id: the ticket.
        lifecycle: the compiled lifecycle version the ticket runs on.
        seq: the history row's position in the ticket's history.
        kind: ``report``, ``transition``, ``breach`` (a deadline, level budget or maximum lag),
            ``sla_warning``, ``sla_breach`` or ``migration`` (moved to another lifecycle
            version, see :meth:`Engine.migrate`).
        trigger: the trigger (``report``; the deadline, ``<level>_budget``, lag or SLA clock
            name for the other kinds).
        from_state, to_state, from_level, to_level: before and after (``from_*`` None on report).
        actor, role, reason: who and why.
        at: when (aware UTC).
        fields: the ticket's fields after the change (JSON form: datetimes as ISO text).
        data: the history row's extra data (e.g. a breach's ``due_at``).
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


class Participant(Protocol):
    """An engine extension that reacts to changes in the command's own transaction."""

    def on_change(self, conn: Connection, change: Change) -> None:
        """React to ``change``; write with ``conn`` only. Raising rolls the transaction back."""
        ...


# A participant may also define ``after_commit(changes: Sequence[Change]) -> None``: the engine
# calls it after the outermost transaction committed, with the changes that committed (those
# of savepoints rolled back inside a batch are left out). It must not raise.


def changes_from_rows(
    lifecycle: Lifecycle, rows: list[dict[str, Any]], fields: dict[str, Any]
) -> list[Change]:
    """Build the :class:`Change` of each history row dict (as inserted into ``gw_history``)."""
    return [
        Change(
            ticket_id=r["ticket_id"], lifecycle=lifecycle, seq=r["seq"], kind=r["kind"],
            trigger=r["trigger"], from_state=r["from_state"], to_state=r["to_state"],
            from_level=r["from_level"], to_level=r["to_level"], actor=r["actor"],
            role=r["role"], reason=r["reason"], at=r["at"], fields=fields,
            data=dict(r.get("data") or {}),
        )
        for r in rows
    ]
