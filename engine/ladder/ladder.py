"""The whistle ladder: a participant that re-targets tickets and runs level budgets.

Rules:

* When a ticket is reported, and each time it changes level (an escalation, by a breached
  deadline, SLA, budget or by hand), it is **re-targeted** to the level's ``handler`` role and
  gets the level's **budget** (a duration or working duration) as a timer ``ladder:<level>``.
* The budget stops when one of ``ladder.acknowledged_by`` triggers fires (someone at the
  level owns the ticket) or the ticket enters one of ``ladder.stop_in`` or a final state.
* A budget that runs out is a breach (history kind ``breach``, trigger ``<level>_budget``)
  and escalates one level, whose budget starts in turn: escalation repeats until someone
  acknowledges or the top level is reached.

A ticket's place is a :class:`LadderState` (table ``gw_ladder``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.participant import FireContext, Participant, PlanContext, RowWrite
from engine.runtime.working import PendingTimer, TicketRecord
from engine.store.tables import ladder

__all__ = ["Ladder", "LadderPosition", "LadderState", "ladder_position"]


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


@dataclass(frozen=True, slots=True)
class LadderState:
    """A ticket's ``gw_ladder`` row in the working copy."""

    level: str
    handler: str | None
    since: datetime
    budget_due: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


def _uses_ladder(lc: Lifecycle) -> bool:
    return any(level.handler or level.budget for level in lc.spec.levels)


_c = ladder.c
_INSERT = insert(ladder)
_UPDATE = (
    update(ladder).where(_c.ticket_id == bindparam("b_tid"))
    .values(level=bindparam("b_level"), handler=bindparam("b_handler"),
            since=bindparam("b_since", type_=_c.since.type),
            budget_due=bindparam("b_budget_due", type_=_c.budget_due.type),
            acknowledged_at=bindparam("b_ack_at", type_=_c.acknowledged_at.type),
            acknowledged_by=bindparam("b_ack_by"))
)


class Ladder(Participant):
    """The participant that re-targets tickets and runs level budgets.

    Every Engine registers it; it does nothing for lifecycles whose levels name no handler
    and no budget.
    """

    key = "ladder"
    timer_prefix = "ladder"
    state_table = ladder

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles whose levels name a handler or a budget."""
        return _uses_ladder(lifecycle)

    def from_rows(self, rows: Sequence[Mapping[str, Any]]) -> LadderState | None:
        """A ticket's place from its ``gw_ladder`` row (None: it has none)."""
        for r in rows:
            return LadderState(r["level"], r["handler"], r["since"], r["budget_due"],
                               r["acknowledged_at"], r["acknowledged_by"])
        return None

    def writes(self, ticket_id: str, stored: LadderState | None,
               current: LadderState | None) -> Iterable[RowWrite]:
        """Insert the row on report, update it after."""
        if current is None or current == stored:
            return
        if stored is None:
            yield _INSERT, {"ticket_id": ticket_id, "level": current.level,
                            "handler": current.handler, "since": current.since,
                            "budget_due": current.budget_due,
                            "acknowledged_at": current.acknowledged_at,
                            "acknowledged_by": current.acknowledged_by}
        else:
            yield _UPDATE, {"b_tid": ticket_id, "b_level": current.level,
                            "b_handler": current.handler, "b_since": current.since,
                            "b_budget_due": current.budget_due,
                            "b_ack_at": current.acknowledged_at,
                            "b_ack_by": current.acknowledged_by}

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Follow level changes, acknowledgements and stops of ``change``'s ticket."""
        lc = change.lifecycle
        if change.kind not in ("report", "transition"):
            return
        tid = change.ticket_id
        stop = change.to_state in lc.final_states or change.to_state in lc.spec.ladder.stop_in
        if change.kind == "report" or change.from_level != change.to_level:
            budget = None if stop else self._budget(change)
            if change.kind != "report":
                ctx.cancel(tid, "ladder")
            ctx.set_state(tid, LadderState(change.to_level, self._handler(lc, change.to_level),
                                           change.at, budget, None, None))
            if budget is not None:
                ctx.schedule(tid, f"ladder:{change.to_level}", budget)
            return
        acknowledges = change.trigger in lc.spec.ladder.acknowledged_by
        if not acknowledges and not stop:
            return
        pos: LadderState | None = ctx.state(tid)
        if pos is None:
            return
        new = pos
        if acknowledges and pos.acknowledged_at is None:
            new = replace(new, acknowledged_at=change.at, acknowledged_by=change.actor)
        if new.budget_due is not None:  # acknowledged or stopped: the budget stops
            new = replace(new, budget_due=None)
            ctx.cancel(tid, "ladder")
        if new != pos:
            ctx.set_state(tid, new)

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

    def fire(self, ctx: FireContext, timer: PendingTimer, ticket: TicketRecord) -> str:
        """A claimed budget timer: record the breach and escalate one level."""
        level = timer.name.split(":", 1)[1]
        pos: LadderState | None = ctx.state(ticket.id)
        if (pos is None or pos.level != level or ticket.level != level
                or pos.acknowledged_at is not None):
            return "stale"
        ctx.set_state(ticket.id, replace(pos, budget_due=None))
        outcome = ctx.record(
            ticket.id, "breach", f"{level}_budget",
            f"the {level!r} level's budget due {timer.due_at.isoformat()} ran out",
            {"due_at": timer.due_at.isoformat(), "timer_id": timer.id, "level": level,
             "handler": pos.handler, "on_breach": "escalate"}, escalate=True)
        return "breached" if outcome == "recorded" else outcome

    def timer_problem(self, name: str, state: str, level: str,
                      lifecycle: Lifecycle) -> str | None:
        """A budget of another level than the ticket's."""
        owner = name.split(":", 1)[1]
        if owner != level:
            return f"a budget of level {owner!r}, the ticket is at {level!r}"
        return None


def ladder_position(conn: Connection, ticket_id: str) -> LadderPosition | None:
    """The ticket's place on the ladder as stored.

    None when its lifecycle's levels name no handler and no budget.
    """
    r = conn.execute(select(ladder).where(ladder.c.ticket_id == ticket_id)).mappings().first()
    if r is None:
        return None
    return LadderPosition(r["ticket_id"], r["level"], r["handler"], r["since"], r["budget_due"],
                          r["acknowledged_at"], r["acknowledged_by"])
