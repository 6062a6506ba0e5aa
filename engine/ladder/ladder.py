"""The whistle ladder, kept by a participant in each command's transaction.

Rules:

* When a ticket is reported, and each time it changes level (an escalation, by a breached
  deadline, SLA, budget or by hand), it is **re-targeted** to the level's ``handler`` role and
  gets the level's **budget** (a duration or working duration) as a new timer.
* The budget stops when one of ``ladder.acknowledged_by`` triggers fires (someone at the
  level owns the ticket) or the ticket enters one of ``ladder.stop_in`` or a final state.
* A budget that runs out is a breach (history kind ``breach``, trigger ``<level>_budget``)
  and escalates one level, whose budget starts in turn: escalation repeats until someone
  acknowledges or the top level is reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import FiredTimer, Timer
from engine.store.tables import ladder
from engine.timing import timers as T
from engine.timing.breach import history_row, record

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["Ladder", "LadderPosition", "fire_budget", "ladder_position"]


@dataclass(frozen=True)
class LadderPosition:
    """Where a ticket stands on the whistle ladder.

    Attributes:
        ticket_id, level: the ticket and its level.
        handler: the role that handles the ticket at this level (None if the level names none).
        since: when it reached this level (aware UTC).
        budget_due: when the level's budget runs out (None: no budget, or stopped).
        acknowledged_at, acknowledged_by: who acknowledged it at this level, and when.
    """

    ticket_id: str
    level: str
    handler: str | None
    since: datetime
    budget_due: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


def _uses_ladder(lc: Lifecycle) -> bool:
    return any(level.handler or level.budget for level in lc.spec.levels)


_INSERT = insert(ladder)
_UPDATE = update(ladder).where(ladder.c.ticket_id == bindparam("b_tid"))
"""SET columns come from the parameters given with it (prebuilt: the hot path of replays)."""
_STOP = (update(ladder)
         .where(ladder.c.ticket_id == bindparam("b_tid"), ladder.c.budget_due.is_not(None))
         .values(budget_due=None))
_ACK = update(ladder).where(ladder.c.ticket_id == bindparam("b_tid"),
                            ladder.c.acknowledged_at.is_(None))


class Ladder:
    """The participant that re-targets tickets and runs level budgets.

    Every Engine registers it; it does nothing for lifecycles whose levels name no handler
    and no budget.
    """

    def on_change(self, conn: Connection, change: Change) -> None:
        """Follow level changes, acknowledgements and stops of ``change``'s ticket."""
        lc = change.lifecycle
        if change.kind not in ("report", "transition") or not _uses_ladder(lc):
            return
        tid = change.ticket_id
        stop = change.to_state in lc.final_states or change.to_state in lc.spec.ladder.stop_in
        if change.kind == "report" or change.from_level != change.to_level:
            values: dict[str, Any] = dict(
                level=change.to_level, handler=self._handler(lc, change.to_level),
                since=change.at, budget_due=None, acknowledged_at=None, acknowledged_by=None)
            budget = self._budget(change) if not stop else None
            if budget is not None:
                values["budget_due"] = budget
            if change.kind == "report":
                conn.execute(_INSERT, values | {"ticket_id": tid})
            else:
                T.cancel(conn, tid, "ladder")
                conn.execute(_UPDATE, values | {"b_tid": tid})
            if budget is not None:
                T.schedule(conn, tid, f"ladder:{change.to_level}", budget, change.at)
            return
        if change.trigger in lc.spec.ladder.acknowledged_by:
            conn.execute(_ACK, {"b_tid": tid, "acknowledged_at": change.at,
                                "acknowledged_by": change.actor})
        elif not stop:
            return
        # acknowledged or stopped: the level's budget (if running) stops
        if conn.execute(_STOP, {"b_tid": tid}).rowcount:
            T.cancel(conn, tid, "ladder")

    @staticmethod
    def _handler(lc: Lifecycle, level: str) -> str | None:
        return next((x.handler for x in lc.spec.levels if x.name == level), None)

    @staticmethod
    def _budget(change: Change) -> datetime | None:
        lc = change.lifecycle
        spec = next(x for x in lc.spec.levels if x.name == change.to_level)
        if spec.budget is None:
            return None
        return due_after(lc.calendars, spec.budget, change.at)


def fire_budget(engine: Engine, conn: Connection, timer: Timer, row: Any, lc: Lifecycle,
                now: datetime) -> FiredTimer:
    """A claimed budget timer: record the breach and escalate one level."""
    level = timer.name.split(":", 1)[1]
    pos = conn.execute(select(ladder).where(ladder.c.ticket_id == timer.ticket_id)).mappings() \
        .first()
    if pos is None or pos["level"] != level or row["level"] != level \
            or pos["acknowledged_at"] is not None:
        return T.stale(conn, timer, now)
    conn.execute(update(ladder).where(ladder.c.ticket_id == timer.ticket_id)
                 .values(budget_due=None))
    entry = history_row(
        row, now, "breach", f"{level}_budget",
        f"the {level!r} level's budget due {timer.due_at.isoformat()} ran out",
        {"due_at": timer.due_at.isoformat(), "timer_id": timer.id, "level": level,
         "handler": pos["handler"], "on_breach": "escalate"})
    outcome = record(engine, conn, row, lc, entry, escalate=True)
    return FiredTimer(timer, "breached" if outcome == "recorded" else outcome)


def ladder_position(conn: Connection, ticket_id: str) -> LadderPosition | None:
    """The ticket's place on the ladder.

    None when its lifecycle's levels name no handler and no budget.
    """
    r = conn.execute(select(ladder).where(ladder.c.ticket_id == ticket_id)).mappings().first()
    if r is None:
        return None
    return LadderPosition(r["ticket_id"], r["level"], r["handler"], r["since"], r["budget_due"],
                          r["acknowledged_at"], r["acknowledged_by"])
