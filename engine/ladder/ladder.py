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
* A suspension (挂起, issue 11: the history rows ``suspended`` and ``resumed`` of the
  oversight participant) **holds** a running budget, as it holds the ticket's deadlines: its
  timer is cancelled and the row keeps its due instant and when it was held (``held_at``);
  the ``resumed`` row runs it on, due later by the time held (``resumed.at - held_at``, the
  span the held deadlines move by). A ticket that ends while suspended stops its budget.

A ticket's place is a :class:`LadderState` (table ``gw_ladder``). ``Engine.check_invariants``
asks :meth:`Ladder.stored_problems` for the rule ``ladder_hold``: a held budget is on a
ticket its history leaves suspended, and a suspended ticket has no pending budget timer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.invariants import suspended_by_history
from engine.runtime.participant import FireContext, Participant, PlanContext, RowWrite
from engine.runtime.working import PendingTimer, TicketRecord
from engine.store.reads import in_chunks
from engine.store.tables import ladder

__all__ = ["Ladder", "LadderPosition", "LadderState", "ladder_position"]


@dataclass(frozen=True)
class LadderPosition:
    """Where a ticket stands on the whistle ladder.

    Attributes:
        ticket_id, level: the ticket and its level.
        handler: the role that handles the ticket at this level (None if the level names none).
        since: when it reached this level (aware UTC).
        budget_due: when the level's budget runs out (None: no budget, or stopped); while
            held, when it would have run out at the hold (the resumption moves it later).
        acknowledged_at, acknowledged_by: who acknowledged it at this level, and when.
        held_at: when a suspension held the budget (None: not held).
    """

    ticket_id: str
    level: str
    handler: str | None
    since: datetime
    budget_due: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    held_at: datetime | None = None


class LadderState(NamedTuple):
    """A ticket's ``gw_ladder`` row in the working copy (see :class:`LadderPosition`).

    A ``NamedTuple``, not a frozen dataclass: as immutable, and built in a third of the
    time (a frozen dataclass sets each field through ``object.__setattr__``); the
    pipeline builds several per command.
    """

    level: str
    handler: str | None
    since: datetime
    budget_due: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    held_at: datetime | None = None


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
            acknowledged_by=bindparam("b_ack_by"),
            held_at=bindparam("b_held_at", type_=_c.held_at.type))
)
_HOLD_KINDS = ("suspended", "resumed")  # the oversight participant's rows (docs/oversight.md)


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
        for r in rows:  # (tuple.__new__: as SlaClocks.from_rows builds its clocks)
            return tuple.__new__(LadderState, (
                r["level"], r["handler"], r["since"], r["budget_due"], r["acknowledged_at"],
                r["acknowledged_by"], r["held_at"]))
        return None

    def writes(self, ticket_id: str, stored: LadderState | None,
               current: LadderState | None) -> Iterable[RowWrite]:
        """Insert the row on report, update it after (a list of ``(statement, row)``)."""
        # a list, not a generator: one frame less at every command's flush
        if current is None or current == stored:
            return ()
        if stored is None:
            return [(_INSERT, {"ticket_id": ticket_id, "level": current.level,
                               "handler": current.handler, "since": current.since,
                               "budget_due": current.budget_due,
                               "acknowledged_at": current.acknowledged_at,
                               "acknowledged_by": current.acknowledged_by,
                               "held_at": current.held_at})]
        return [(_UPDATE, {"b_tid": ticket_id, "b_level": current.level,
                           "b_handler": current.handler, "b_since": current.since,
                           "b_budget_due": current.budget_due,
                           "b_ack_at": current.acknowledged_at,
                           "b_ack_by": current.acknowledged_by,
                           "b_held_at": current.held_at})]

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Follow level changes, acknowledgements, stops and suspensions of the ticket."""
        lc = change.lifecycle
        if change.kind in _HOLD_KINDS:
            self._hold(ctx, change)
            return
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
        ack_at, ack_by = pos.acknowledged_at, pos.acknowledged_by
        if acknowledges and ack_at is None:
            ack_at, ack_by = change.at, change.actor
        budget, held = pos.budget_due, pos.held_at
        if budget is not None:  # acknowledged or stopped: the budget stops
            budget = held = None
            ctx.cancel(tid, "ladder")
        # (tuple.__new__: as from_rows, every field given; a call to LadderState's
        # generated __new__ costs 0.5 µs and this is every acknowledgement's)
        new = tuple.__new__(LadderState, (pos.level, pos.handler, pos.since, budget, ack_at,
                                          ack_by, held))
        if new != pos:
            ctx.set_state(tid, new)

    @staticmethod
    def _hold(ctx: PlanContext, change: Change) -> None:
        """A ``suspended`` row holds the running budget; ``resumed`` runs it on, later.

        The budget moves by the time held (``change.at - held_at``): the span the oversight
        participant moves the held deadlines by.
        """
        tid = change.ticket_id
        pos: LadderState | None = ctx.state(tid)
        if pos is None or pos.budget_due is None:
            return  # no budget runs (none at this level, acknowledged, stopped)
        if change.kind == "suspended":
            if pos.held_at is None:
                ctx.cancel(tid, "ladder")
                ctx.set_state(tid, pos._replace(held_at=change.at))
            return
        if pos.held_at is not None:
            due = pos.budget_due + (change.at - pos.held_at)
            ctx.schedule(tid, f"ladder:{pos.level}", due)
            ctx.set_state(tid, pos._replace(budget_due=due, held_at=None))

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
        ctx.set_state(ticket.id, pos._replace(budget_due=None))
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

    def stored_problems(self, conn: Connection, tickets: Mapping[str, Mapping[str, Any]],
                        history: Mapping[str, Sequence[Mapping[str, Any]]],
                        timers: Mapping[str, Sequence[Mapping[str, Any]]],
                        lifecycle_of: Callable[[int], Lifecycle],
                        ) -> Iterable[tuple[str, str, str]]:
        """``ladder_hold`` (see the module docstring).

        Reads the held rows of ``gw_ladder`` once for all ``tickets``.
        """
        held: dict[str, datetime] = {}
        for chunk in in_chunks(tickets):
            for r in conn.execute(select(_c.ticket_id, _c.held_at).where(
                    _c.ticket_id.in_(chunk), _c.held_at.is_not(None))):
                held[r.ticket_id] = r.held_at
        for tid, ticket in tickets.items():
            final = lifecycle_of(ticket["definition_id"]).final_states
            suspended = (suspended_by_history(history.get(tid, ()))
                         and ticket["state"] not in final)
            running = sorted(t["name"] for t in timers.get(tid, ())
                             if t["name"].startswith("ladder:") and t["status"] == "pending")
            if tid in held and not suspended:
                yield (tid, "ladder_hold", f"the budget is held since "
                       f"{held[tid].isoformat()}; the history says not suspended")
            if running and (suspended or tid in held):
                yield (tid, "ladder_hold", f"{'suspended' if suspended else 'held'}, yet the "
                       f"budget timer {running[0]!r} is pending")


def ladder_position(conn: Connection, ticket_id: str) -> LadderPosition | None:
    """The ticket's place on the ladder as stored.

    None when its lifecycle's levels name no handler and no budget.
    """
    r = conn.execute(select(ladder).where(ladder.c.ticket_id == ticket_id)).mappings().first()
    if r is None:
        return None
    return LadderPosition(r["ticket_id"], r["level"], r["handler"], r["since"], r["budget_due"],
                          r["acknowledged_at"], r["acknowledged_by"], r["held_at"])
