"""Timers of the time extensions: rows in ``gw_timers`` named by prefix.

``sla:<clock>`` (breach) and ``sla:<clock>:warn:<i>`` (warnings) belong to SLA clocks,
``ladder:<level>`` to a level's time budget, ``lag:<lag>`` to a maximum lag. They have no
state (``state`` is NULL) and never clash with deadline names, which cannot contain ``:``.
They are created and cancelled by participants inside the command's transaction, claimed like
every timer, and dispatched here by :meth:`Engine._fire_timer`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, update

from engine.lifecycle.machine import Lifecycle
from engine.runtime.model import FiredTimer, Timer
from engine.store import statements as S
from engine.store.tables import timers

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = [
    "PREFIXES",
    "cancel",
    "fire_extension_timer",
    "is_extension_timer",
    "schedule",
    "timer_row",
]

PREFIXES = ("sla:", "ladder:", "lag:")


def is_extension_timer(name: str) -> bool:
    """True if ``name`` is an SLA, ladder or lag timer."""
    return name.startswith(PREFIXES)


def timer_row(ticket_id: str, name: str, due: datetime, now: datetime) -> dict[str, Any]:
    """A pending timer row ``name`` due at ``due`` (aware UTC), for ``S.INSERT_TIMERS``."""
    return dict(ticket_id=ticket_id, name=name, state=None, due_at=due, status="pending",
                created_at=now, fired_at=None)


def schedule(conn: Connection, ticket_id: str, name: str, due: datetime,
             now: datetime) -> None:
    """Insert a pending timer ``name`` due at ``due`` (aware UTC)."""
    conn.execute(S.INSERT_TIMERS, [timer_row(ticket_id, name, due, now)])


_CANCEL = (
    update(timers)
    .where(timers.c.ticket_id == bindparam("b_tid"), timers.c.status == "pending",
           timers.c.state.is_(None),
           (timers.c.name == bindparam("b_name"))
           | timers.c.name.like(bindparam("b_like"), escape="\\"))
    .values(status="cancelled")
)


def cancel(conn: Connection, ticket_id: str, prefix: str) -> None:
    """Cancel the ticket's pending timers whose name is ``prefix`` or starts with it + ``:``."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    conn.execute(_CANCEL, {"b_tid": ticket_id, "b_name": prefix, "b_like": like})


def stale(conn: Connection, timer: Timer, now: datetime) -> FiredTimer:
    """Mark a claimed timer stale: its clock, level or lag had moved on."""
    conn.execute(S.MARK_TIMER, {"b_id": timer.id, "b_status": "stale"})
    return FiredTimer(Timer(timer.id, timer.ticket_id, timer.name, timer.state, timer.due_at,
                            "stale", now), "stale")


def fire_extension_timer(
    engine: Engine, conn: Connection, timer: Timer, row: Any, lc: Lifecycle, now: datetime
) -> FiredTimer:
    """Apply a claimed extension timer to its ticket (row already loaded, lifecycle known)."""
    from engine.ladder.ladder import fire_budget
    from engine.sla.clocks import fire_sla
    from engine.timing.rules import fire_max_lag

    if timer.name.startswith("sla:"):
        return fire_sla(engine, conn, timer, row, lc, now)
    if timer.name.startswith("ladder:"):
        return fire_budget(engine, conn, timer, row, lc, now)
    return fire_max_lag(engine, conn, timer, row, lc, now)
