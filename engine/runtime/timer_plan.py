"""Which timers a command creates and cancels: the deadline rules of a lifecycle, applied.

Pure planning over one ticket inside the command's transaction; the Engine calls these and
inserts the rows they return, so timers change in the same transaction as the state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.store import fast
from engine.store import statements as S
from engine.store.tables import history, timers

__all__ = ["cancel_on_exit", "reschedule_field_deadlines", "timers_on_entry"]


def timers_on_entry(
    lc: Lifecycle, ticket_id: str, state: str, fields: dict[str, Any], now: datetime,
    *, report: bool,
) -> list[dict[str, Any]]:
    """Timer rows for entering ``state`` (and, on report, the ticket deadlines)."""
    out: list[dict[str, Any]] = []
    chosen = [(d, d.spec.state) for d in lc.state_deadlines.get(state, ())]
    if report:
        chosen += [(d, None) for d in lc.ticket_deadlines
                   if state not in (d.spec.stop_in or ())]
    for d, owner in chosen:
        if d.spec.after is not None:
            due = due_after(lc.calendars, d.spec.after, now)
        else:
            raw = fields.get(d.spec.at_field or "")
            if raw is None:
                continue
            due = datetime.fromisoformat(raw)
        out.append(dict(ticket_id=ticket_id, name=d.name, state=owner, due_at=due,
                        status="pending", created_at=now, fired_at=None))
    return out

def reschedule_field_deadlines(
    conn: Connection, lc: Lifecycle, ticket_id: str, dest: str, updates: dict[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """A command that sets or changes an ``at_field`` moves that ticket deadline.

    The deadline is (re)scheduled while it still runs: the ticket has never reached one of
    its stop states, and it has not fired yet. Clearing the field cancels it.
    """
    out: list[dict[str, Any]] = []
    for d in lc.ticket_deadlines:
        field_name = d.spec.at_field
        if field_name is None or field_name not in updates:
            continue
        if dest in (d.spec.stop_in or ()) or dest in lc.final_states:
            continue
        statuses = set(conn.execute(
            select(timers.c.status).where(timers.c.ticket_id == ticket_id,
                                          timers.c.name == d.name,
                                          timers.c.state.is_(None))).scalars())
        if statuses & {"fired", "stale"}:
            continue  # already breached: moving the target does not undo that
        stop_states = sorted(set(d.spec.stop_in or ()) | lc.final_states)
        stopped = conn.execute(
            select(history.c.id).where(history.c.ticket_id == ticket_id,
                                       history.c.kind == "transition",
                                       history.c.to_state.in_(stop_states)).limit(1)
        ).first()
        if stopped is not None:
            continue  # the deadline stopped when the ticket first reached a stop state
        conn.execute(S.CANCEL_TIMERS, {"b_id": ticket_id, "b_state": None,
                                       "b_names": [d.name]})
        value = updates[field_name]
        if value is not None:
            out.append(dict(ticket_id=ticket_id, name=d.name, state=None,
                            due_at=datetime.fromisoformat(value), status="pending",
                            created_at=now, fired_at=None))
    return out

def cancel_on_exit(
    conn: Connection, lc: Lifecycle, ticket_id: str, source: str, dest: str
) -> None:
    """Cancel the timers of the state being left and the ticket deadlines ``dest`` stops."""
    stopped = [d.name for d in lc.ticket_deadlines if dest in (d.spec.stop_in or ())]
    if dest in lc.final_states:
        stopped = [d.name for d in lc.ticket_deadlines]
    leaving = source in lc.state_deadlines
    if not stopped and not leaving:
        return
    if not stopped:  # the common cases, without an expanding IN (engine/store/fast.py)
        fast.execute(conn, S.CANCEL_STATE_TIMERS, {"b_id": ticket_id, "b_state": source})
    elif not leaving and len(stopped) == 1:
        fast.execute(conn, S.CANCEL_TICKET_DEADLINE, {"b_id": ticket_id, "b_name": stopped[0]})
    else:
        conn.execute(S.CANCEL_TIMERS, {"b_id": ticket_id, "b_state": source if leaving else None,
                                       "b_names": stopped})
