"""Hand-off beyond the district (转办 / 退回): tickets held by outside organisations.

A lifecycle's ``organisations`` declare who outside the district can take a ticket (a metro
company, a utility), each with its own ``deadline``; its ``handoff`` section says which
triggers hand a ticket over (``hand_off``; the ticket field ``field`` names the
organisation), in which states the organisation holds it (``holding``) and which triggers
are its answer (``answer``) or its return with a reason (``give_back``). For each change:

* **check** — a hand-off must name a declared organisation
  (:class:`~engine.errors.UnknownOrganisation`);
* **plan** — a hand-off starts the organisation's deadline (timer ``handoff:due``, counted
  like any span: elapsed or working time) and records a ``gw_handoffs`` row; leaving the
  holding states ends it (``answered``, ``returned``, or ``taken_back`` by the district)
  and cancels the timer;
* **fire** — the deadline passed with the ticket still held: a ``breach`` row
  (``handoff_due``, the organisation and due instant in its data) is recorded; the ticket
  stays where it is.

The ticket keeps its own history, deadlines and SLA clocks throughout (the bundled
grid_incident adds an SLA clock for the time spent outside). An organisation's API key sees
only the tickets it currently holds (:func:`held_by`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import bindparam, insert, update

from engine.calendars.spans import due_after
from engine.errors import UnknownOrganisation
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import Ticket
from engine.runtime.participant import CheckContext, FireContext, Participant, PlanContext
from engine.runtime.working import PendingTimer, TicketRecord
from engine.store.evidence_tables import handoffs

__all__ = ["TIMER", "Handoffs", "held_by"]

TIMER = "handoff:due"
"""The timer of an open hand-off's deadline."""

_INSERT = insert(handoffs)
_END = (update(handoffs)
        .where(handoffs.c.ticket_id == bindparam("b_tid"), handoffs.c.ended_at.is_(None))
        .values(ended_at=bindparam("b_at"), outcome=bindparam("b_outcome")))


def held_by(lc: Lifecycle, ticket: Ticket | TicketRecord) -> str | None:
    """The outside organisation that holds the ticket now, or None."""
    h = lc.spec.handoff
    if h is None or ticket.state not in h.holding:
        return None
    org = ticket.fields.get(h.field)
    return str(org) if org is not None else None


class Handoffs(Participant):
    """See the module docstring. One per engine; its rows are append-and-end only."""

    key = "handoffs"
    timer_prefix = "handoff"

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles with a ``handoff`` section."""
        return lifecycle.spec.handoff is not None

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Reports; transitions that neither hand off nor leave the holding states."""
        if kind not in ("report", "transition"):
            return False
        h = lifecycle.spec.handoff
        if h is None or kind != "transition":
            return True
        if trigger in h.hand_off:
            return False
        return step == "check" or not (from_state in h.holding
                                       and to_state not in h.holding)

    def check(self, ctx: CheckContext, change: Change) -> None:
        """A hand-off names a declared organisation."""
        h = change.lifecycle.spec.handoff
        if h is None or change.kind != "transition" or change.trigger not in h.hand_off:
            return
        org = change.fields.get(h.field)
        known = change.lifecycle.spec.organisations
        if not isinstance(org, str) or org not in known:
            raise UnknownOrganisation(change.ticket_id, org, sorted(known))

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Start the organisation's deadline on a hand-off; end it when the ticket leaves."""
        lc = change.lifecycle
        h = lc.spec.handoff
        if h is None or change.kind != "transition":
            return
        tid = change.ticket_id
        was_held = change.from_state in h.holding
        if change.trigger in h.hand_off:
            if was_held:
                self._end(ctx, tid, change.at, "handed_on")
            org = str(change.fields[h.field])
            due = due_after(lc.calendars, lc.spec.organisations[org].deadline, change.at)
            ctx.schedule(tid, TIMER, due)
            ctx.add_row(_INSERT, {"ticket_id": tid, "organisation": org, "seq": change.seq,
                                  "handed_at": change.at, "due_at": due, "ended_at": None,
                                  "outcome": None})
        elif was_held and change.to_state not in h.holding:
            outcome = ("answered" if change.trigger in h.answer
                       else "returned" if change.trigger in h.give_back else "taken_back")
            self._end(ctx, tid, change.at, outcome)

    def _end(self, ctx: PlanContext, ticket_id: str, at: datetime, outcome: str) -> None:
        ctx.cancel(ticket_id, "handoff")
        ctx.add_row(_END, {"b_tid": ticket_id, "b_at": at, "b_outcome": outcome})

    def fire(self, ctx: FireContext, timer: PendingTimer, ticket: TicketRecord) -> str:
        """The organisation's deadline passed: record the breach (the ticket stays)."""
        org = held_by(ticket.lifecycle, ticket)
        if org is None:
            return "stale"
        ctx.record(ticket.id, "breach", "handoff_due",
                   f"outside organisation {org!r} did not answer by {timer.due_at.isoformat()}",
                   {"due_at": timer.due_at.isoformat(), "organisation": org,
                    "timer_id": timer.id}, escalate=False)
        return "breached"

    def timer_problem(self, name: str, state: str, level: str,
                      lifecycle: Lifecycle) -> str | None:
        """A hand-off timer on a ticket no organisation holds."""
        h = lifecycle.spec.handoff
        if h is None or state not in h.holding:
            return f"hand-off deadline pending in state {state!r}, which no organisation holds"
        return None
