"""Which deadline timers a command creates and cancels: a lifecycle's deadline rules, applied.

Pure planning over one ticket's staged record; the command handler stages what these return,
so timers change in the same transaction as the state.

* Entering a state starts its ``state:`` deadlines; a report also starts the ticket
  deadlines (``stop_in:``) that the initial state does not stop.
* An ``internal`` transition (a self-transition that does not leave its state) starts and
  cancels nothing: the state's deadlines run on.
* Leaving a state cancels its deadlines; entering one of a ticket deadline's ``stop_in``
  states, or a final state, stops that ticket deadline.
* A command that sets or changes a deadline's ``at_field`` moves that ticket deadline while
  it still runs (never reached a stop state, not yet breached); clearing the field cancels it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.runtime.working import PendingTimer
from engine.store.tables import history, timers

__all__ = ["entry_timers", "exit_cancels", "field_deadline_moves"]

Planned = tuple[str, str | None, datetime]
"""A timer to create: ``(name, owning state or None for a ticket deadline, due)``."""


def entry_timers(lc: Lifecycle, state: str, fields: Mapping[str, Any], now: datetime,
                 *, report: bool, internal: bool = False) -> list[Planned]:
    """Timers for entering ``state`` at ``now`` (and, on report, the ticket deadlines).

    ``internal``: the transition stays in its state without entering it: none.

    Raises:
        CalendarOutOfRange: a working-time deadline needs a day outside its calendar.
    """
    out: list[Planned] = []
    if internal:
        return out
    for d in lc.state_deadlines.get(state, ()):
        due = _due(lc, d.spec.after, d.spec.at_field, fields, now)
        if due is not None:
            out.append((d.name, state, due))
    if report:
        for d in lc.ticket_deadlines:
            if state in (d.spec.stop_in or ()):
                continue
            due = _due(lc, d.spec.after, d.spec.at_field, fields, now)
            if due is not None:
                out.append((d.name, None, due))
    return out


def _due(lc: Lifecycle, after: Any, at_field: str | None, fields: Mapping[str, Any],
         now: datetime) -> datetime | None:
    if after is not None:
        return due_after(lc.calendars, after, now)
    raw = fields.get(at_field or "")
    return None if raw is None else datetime.fromisoformat(raw)


def exit_cancels(lc: Lifecycle, pending: Mapping[str, PendingTimer], source: str,
                 dest: str, *, internal: bool = False) -> list[str]:
    """Names of the pending deadline timers that a move from ``source`` to ``dest`` ends.

    ``internal``: the transition does not leave ``source``: none.
    """
    if internal:
        return []
    out = [name for name, t in pending.items() if t.state == source]  # None: ticket-wide
    final = dest in lc.final_states
    for d in lc.ticket_deadlines:
        if d.name in pending and (final or dest in (d.spec.stop_in or ())):
            out.append(d.name)
    return out


def field_deadline_moves(
    lc: Lifecycle, ticket_id: str, dest: str, updates: Mapping[str, Any],
    pending: Mapping[str, PendingTimer], query: Callable[[Callable[[Connection], Any]], Any],
) -> list[tuple[str, datetime | None]]:
    """The ticket deadlines an update of their ``at_field`` moves: ``(name, new due or None)``.

    None as the due cancels the deadline (its field was cleared). A deadline that is not
    pending is moved only if it never fired and the ticket never reached one of its stop
    states; that is read from the store through ``query`` (rare: the field set later).
    All of them are decided before the caller stages any (a list, not a generator).
    """
    out: list[tuple[str, datetime | None]] = []
    for d in lc.ticket_deadlines:
        field_name = d.spec.at_field
        if field_name is None or field_name not in updates:
            continue
        if dest in (d.spec.stop_in or ()) or dest in lc.final_states:
            continue
        value = updates[field_name]
        due = None if value is None else datetime.fromisoformat(value)
        if d.name in pending:
            out.append((d.name, due))
            continue
        stops = sorted(set(d.spec.stop_in or ()) | lc.final_states)
        if due is not None and not query(functools.partial(_ended, ticket_id=ticket_id,
                                                           name=d.name, stop_states=stops)):
            out.append((d.name, due))
    return out


def _ended(conn: Connection, *, ticket_id: str, name: str, stop_states: list[str]) -> bool:
    """Whether a ticket deadline has fired (breached) or stopped for good."""
    fired = conn.execute(select(timers.c.id).where(
        timers.c.ticket_id == ticket_id, timers.c.name == name, timers.c.state.is_(None),
        timers.c.status.in_(("fired", "stale"))).limit(1)).first()
    if fired is not None:
        return True
    stopped = conn.execute(select(history.c.id).where(
        history.c.ticket_id == ticket_id, history.c.kind == "transition",
        history.c.to_state.in_(stop_states)).limit(1)).first()
    return stopped is not None
