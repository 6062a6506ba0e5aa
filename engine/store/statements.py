"""The statements of the ticket reads and the writers, built once with bound parameters.

Building a SQLAlchemy expression costs more than executing its cached compiled form, so the
reads (:mod:`engine.store.reads`) and the writers (:mod:`engine.store.writer`) use these
prebuilt statements with parameter dictionaries. Nothing else in the engine writes
``gw_tickets``, ``gw_history`` or ``gw_timers``.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from engine.store.tables import history, tickets, timers

__all__ = [
    "CANCEL_PENDING",
    "CANCEL_PENDING_ID",
    "FAIL_TIMER",
    "INSERT_HISTORY",
    "INSERT_TICKET",
    "INSERT_TIMER",
    "PENDING_TIMERS",
    "SELECT_TICKET",
    "TAKE_TIMER",
    "TICKET_EXISTS",
    "TICKET_VERSION",
    "UPDATE_MIGRATED_TICKET",
    "UPDATE_TICKET",
]

SELECT_TICKET = select(tickets).where(tickets.c.id == bindparam("b_id"))
TICKET_EXISTS = select(tickets.c.id).where(tickets.c.id == bindparam("b_id"))
TICKET_VERSION = select(tickets.c.row_version).where(tickets.c.id == bindparam("b_id"))
INSERT_TICKET = insert(tickets)
INSERT_HISTORY = insert(history)
INSERT_TIMER = insert(timers)

PENDING_TIMERS = (
    select(timers.c.id, timers.c.ticket_id, timers.c.name, timers.c.state, timers.c.due_at,
           timers.c.claimed_by, timers.c.failures)
    .where(timers.c.ticket_id == bindparam("b_id"), timers.c.status == "pending")
)
"""A ticket's pending timers (at most one per name)."""

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
"""A ticket after a change. Optimistic write: matches no row if another transaction bumped
``row_version`` first. Its lifecycle version is left as it is: ``definition_id`` is indexed,
and an UPDATE naming an indexed column rewrites the index entry even when the value is the
same."""

UPDATE_MIGRATED_TICKET = UPDATE_TICKET.values(definition_id=bindparam("b_def"))
"""A ticket moved to another lifecycle version (:meth:`Engine.migrate`): also ``b_def``."""

CANCEL_PENDING = (
    update(timers)
    .where(timers.c.ticket_id == bindparam("b_tid"), timers.c.name == bindparam("b_name"),
           timers.c.status == "pending")
    .values(status="cancelled")
)
"""Cancel the ticket's pending timer of that name (there is at most one)."""

CANCEL_PENDING_ID = (
    update(timers)
    .where(timers.c.id == bindparam("b_id"), timers.c.status == "pending")
    .values(status="cancelled")
)
"""Cancel a stored pending timer by its id (a primary-key lookup: about half the cost of
:data:`CANCEL_PENDING`'s search by ticket and name)."""

TAKE_TIMER = (
    update(timers)
    .where(timers.c.id == bindparam("b_id"), timers.c.status == "pending",
           timers.c.claimed_by == bindparam("b_owner"))
    .values(status=bindparam("b_status"),
            fired_at=bindparam("b_now", type_=timers.c.fired_at.type))
)
"""The take: only the worker holding the claim moves a pending timer to ``fired`` (or
``stale``: it had nothing left to do)."""

FAIL_TIMER = (
    update(timers)
    .where(timers.c.id == bindparam("b_id"), timers.c.status == "pending")
    .values(failures=bindparam("b_failures"), last_error=bindparam("b_error"),
            claimed_by=None,
            lease_until=bindparam("b_retry", type_=timers.c.lease_until.type))
)
"""A firing that failed: count it, keep the error, retry at ``b_retry`` (nobody holds it)."""
