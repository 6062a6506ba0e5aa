"""The statements a command runs, built once with bound parameters.

Building a SQLAlchemy expression costs more than executing its cached compiled form, so the
hot path (one command = read ticket, conditional update, history insert, timer changes)
uses these prebuilt statements with parameter dictionaries.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, func, insert, or_, select, update

from engine.store.tables import history, tickets, timers

__all__ = [
    "CANCEL_STATE_TIMERS",
    "CANCEL_TICKET_DEADLINE",
    "CANCEL_TIMERS",
    "CLAIM_TIMER",
    "INSERT_HISTORY",
    "INSERT_TICKET",
    "INSERT_TIMERS",
    "MARK_TIMER",
    "NEXT_DUE",
    "SELECT_TICKET",
    "TICKET_EXISTS",
    "TICKET_VERSION",
    "UPDATE_TICKET",
]

SELECT_TICKET = select(tickets).where(tickets.c.id == bindparam("b_id"))
TICKET_EXISTS = select(tickets.c.id).where(tickets.c.id == bindparam("b_id"))
TICKET_VERSION = select(tickets.c.row_version).where(tickets.c.id == bindparam("b_id"))
INSERT_TICKET = insert(tickets)
INSERT_HISTORY = insert(history)
INSERT_TIMERS = insert(timers)

UPDATE_TICKET = (
    update(tickets)
    .where(tickets.c.id == bindparam("b_id"), tickets.c.row_version == bindparam("b_version"))
    .values(
        state=bindparam("b_state"),
        level=bindparam("b_level"),
        fields=bindparam("b_fields", type_=tickets.c.fields.type),
        updated_at=bindparam("b_now", type_=tickets.c.updated_at.type),
        row_version=bindparam("b_new_version"),
        overdue=bindparam("b_overdue"),
    )
)
"""Optimistic write: matches no row if another command bumped ``row_version`` first."""

CANCEL_TIMERS = (
    update(timers)
    .where(
        timers.c.ticket_id == bindparam("b_id"),
        timers.c.status == "pending",
        or_(
            timers.c.state == bindparam("b_state"),
            and_(timers.c.state.is_(None),
                 timers.c.name.in_(bindparam("b_names", expanding=True))),
        ),
    )
    .values(status="cancelled")
)
"""Cancel the pending timers of state ``b_state`` and the ticket deadlines in ``b_names``."""

CANCEL_STATE_TIMERS = (
    update(timers)
    .where(timers.c.ticket_id == bindparam("b_id"), timers.c.status == "pending",
           timers.c.state == bindparam("b_state"))
    .values(status="cancelled")
)
"""``CANCEL_TIMERS`` with no ticket deadline to stop (no expanding ``IN``: the fast path)."""

CANCEL_TICKET_DEADLINE = (
    update(timers)
    .where(timers.c.ticket_id == bindparam("b_id"), timers.c.status == "pending",
           timers.c.state.is_(None), timers.c.name == bindparam("b_name"))
    .values(status="cancelled")
)
"""``CANCEL_TIMERS`` for one ticket deadline and no state timer (the fast path)."""

NEXT_DUE = select(func.min(timers.c.due_at)).where(timers.c.status == "pending")

CLAIM_TIMER = (
    update(timers)
    .where(timers.c.id == bindparam("b_id"), timers.c.status == "pending")
    .values(status="fired", fired_at=bindparam("b_now", type_=timers.c.fired_at.type))
)
"""The claim: only one caller can move a timer from ``pending`` to ``fired``."""

MARK_TIMER = (
    update(timers).where(timers.c.id == bindparam("b_id")).values(status=bindparam("b_status"))
)
