"""Recording a timer's consequence in history, and escalating when asked to.

Shared by SLA clocks, ladder budgets and maximum lags: each builds one history row and calls
:func:`record` inside the timer's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from engine.errors import CommandRefused, ConcurrencyConflict
from engine.lifecycle.machine import Lifecycle
from engine.runtime.model import SYSTEM
from engine.store import statements as S

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["history_row", "record"]


def history_row(row: Any, at: Any, kind: str, trigger: str, reason: str,
                data: dict[str, Any]) -> dict[str, Any]:
    """A system history row on ticket ``row`` that leaves state and level as they are."""
    return dict(ticket_id=row["id"], at=at, kind=kind, trigger=trigger,
                from_state=row["state"], to_state=row["state"], from_level=row["level"],
                to_level=row["level"], actor=SYSTEM.id, role=SYSTEM.role, reason=reason,
                data=data)


def record(engine: Engine, conn: Connection, row: Any, lc: Lifecycle, entry: dict[str, Any],
           *, escalate: bool) -> str:
    """Write ``entry`` (a history row dict without ``seq``) and escalate if asked and possible.

    The escalation is the lifecycle's escalation trigger fired as ``system`` in a savepoint;
    if it is refused (no escalation transition from this state, a guard, a duty-hours rule),
    the row is still written with the refusal in its data.

    Returns:
        ``escalated``, ``top_level`` (escalation asked for at the top level) or ``recorded``.
    """
    trigger = lc.spec.escalation_trigger
    refusal: str | None = None
    at_top = lc.next_level(row["level"]) is None
    possible = any(SYSTEM.role in t.roles for t in lc.transitions_for(row["state"], trigger))
    if escalate and not at_top and possible:
        try:
            with conn.begin_nested():
                engine._apply(conn, row["id"], trigger, SYSTEM, entry["reason"], {}, row=row,
                              extra_history=[dict(entry)], now=entry["at"])
            return "escalated"
        except CommandRefused as exc:
            refusal = str(exc)
    if refusal is not None:
        entry["data"] = {**entry["data"], "escalation_refused": refusal}
    entry["seq"] = row["row_version"] + 1
    result = conn.execute(S.UPDATE_TICKET, dict(
        b_id=row["id"], b_version=row["row_version"], b_state=row["state"],
        b_level=row["level"], b_fields=row["fields"], b_now=entry["at"],
        b_new_version=row["row_version"] + 1, b_overdue=bool(row["overdue"]),
    ))
    if result.rowcount != 1:
        actual = conn.execute(S.TICKET_VERSION, {"b_id": row["id"]}).scalar()
        raise ConcurrencyConflict(row["id"], row["row_version"], actual)
    conn.execute(S.INSERT_HISTORY, entry)
    engine._announce(conn, lc, [entry], row["fields"])
    return "top_level" if escalate and at_top and refusal is None else "recorded"
