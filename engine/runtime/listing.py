"""Finding tickets: filtered, paginated listings for dashboards, the HTTP API and the CLI.

Filters combine with AND. ``department`` is the ticket field ``department`` (the handling
department the centre dispatched to). ``due_within`` finds tickets with a pending deadline
timer due within that many seconds from ``now`` (including ones already past due and not yet
fired); ``breached`` finds tickets with (True) or without (False) a recorded deadline breach.

A ``lifecycle``, ``state`` or ``level`` filter that names nothing deployed is refused
(:class:`~engine.errors.UnknownValue`, naming the values there are) instead of answering an
empty page a typo would be mistaken for: the lifecycle must be deployed in the database, the
state or level declared by some deployed version of it (of any lifecycle when none is given;
old versions count, since tickets may still run on them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import exists, func, select

from engine.clock import Clock, ensure_utc
from engine.errors import InvalidArgument, UnknownValue
from engine.lifecycle.machine import Lifecycle
from engine.runtime.model import Ticket
from engine.store.database import Database
from engine.store.tables import definitions, history, tickets, timers

__all__ = ["TicketPage", "TicketSource", "check_filters", "find_tickets"]


class TicketSource(Protocol):
    """What a listing reads from (the public Engine is one)."""

    @property
    def db(self) -> Database:
        """The database read."""

    @property
    def clock(self) -> Clock:
        """Where ``now`` comes from."""

    def get(self, ticket_id: str) -> Ticket:
        """One ticket (raises TicketNotFound)."""

    def lifecycle_versions(self, name: str | None = None) -> list[Lifecycle]:
        """Every deployed version (of lifecycle ``name``), compiled."""

MAX_LIMIT = 500


@dataclass(frozen=True)
class TicketPage:
    """One page of a ticket listing.

    Attributes:
        items: the tickets of this page, most recently updated first (then by id).
        total: how many tickets match the filters in all.
        limit, offset: the page asked for.
    """

    items: list[Ticket]
    total: int
    limit: int
    offset: int


def find_tickets(
    engine: TicketSource,
    *,
    lifecycle: str | None = None,
    state: str | None = None,
    level: str | None = None,
    department: str | None = None,
    due_within: float | None = None,
    breached: bool | None = None,
    overdue: bool | None = None,
    ids: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
    field_values: Mapping[str, Sequence[str]] | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    now: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> TicketPage:
    """List tickets matching every given filter, newest update first.

    Args:
        engine: the engine whose database is read.
        lifecycle: the lifecycle name.
        state: the current state.
        level: the current whistle level.
        department: the ``department`` field.
        due_within: seconds; tickets with a pending timer due at or before ``now`` + this.
        breached: True: tickets with at least one ``breach`` history row; False: none.
        overdue: the ticket's overdue flag (its resolution deadline was breached).
        ids: only these ticket ids.
        states: the state is one of these.
        field_values: ``{field: [values]}``: the (text) field has one of these values.
        created_from: the report instant is at or after this (aware UTC).
        created_to: the report instant is at or before this (aware UTC).
        now: the instant ``due_within`` counts from (aware UTC); default the engine's clock.
        limit: page size, 1 to 500.
        offset: rows to skip (0 or more).

    Raises:
        InvalidArgument: ``limit`` or ``offset`` out of range, ``due_within`` negative, or
            ``created_from``, ``created_to`` or ``now`` naive (also a ValueError);
            InvalidArgumentType: one of those instants is not a datetime;
            UnknownValue: ``lifecycle`` is not deployed, or no deployed version of it
            declares ``state`` or ``level`` (see the module docstring).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument("limit", f"limit must be between 1 and {MAX_LIMIT}, got {limit}; "
                                       "page on with offset")
    if offset < 0:
        raise InvalidArgument("offset", f"offset must be 0 or more, got {offset}")
    created_from = ensure_utc(created_from, what="created_from") if created_from else None
    created_to = ensure_utc(created_to, what="created_to") if created_to else None
    now = ensure_utc(now, what="now") if now else None
    conditions = []
    if lifecycle is not None:
        conditions.append(definitions.c.name == lifecycle)
    if state is not None:
        conditions.append(tickets.c.state == state)
    if level is not None:
        conditions.append(tickets.c.level == level)
    if department is not None:
        conditions.append(tickets.c.fields["department"].as_string() == department)
    if ids is not None:
        conditions.append(tickets.c.id.in_(list(ids)))
    if states is not None:
        conditions.append(tickets.c.state.in_(list(states)))
    for name, values in (field_values or {}).items():
        conditions.append(tickets.c.fields[name].as_string().in_(list(values)))
    if created_from is not None:
        conditions.append(tickets.c.created_at >= created_from)
    if created_to is not None:
        conditions.append(tickets.c.created_at <= created_to)
    if overdue is not None:
        conditions.append(tickets.c.overdue.is_(overdue))
    if due_within is not None:
        if due_within < 0:
            raise InvalidArgument("due_within", f"due_within must be 0 or more seconds, got "
                                                f"{due_within}")
        horizon = (now or engine.clock.now()) + timedelta(seconds=due_within)
        conditions.append(exists().where(
            timers.c.ticket_id == tickets.c.id, timers.c.status == "pending",
            timers.c.due_at <= horizon))
    if breached is not None:
        has_breach = exists().where(history.c.ticket_id == tickets.c.id,
                                    history.c.kind == "breach")
        conditions.append(has_breach if breached else ~has_breach)
    joined = tickets.join(definitions, definitions.c.id == tickets.c.definition_id)
    count = select(func.count()).select_from(joined).where(*conditions)
    query = (select(tickets.c.id).select_from(joined).where(*conditions)
             .order_by(tickets.c.updated_at.desc(), tickets.c.id).limit(limit).offset(offset))
    with engine.db.read() as conn:
        total = conn.execute(count).scalar() or 0
        found = list(conn.execute(query).scalars())
    if not total and (lifecycle is not None or state is not None or level is not None):
        # a ticket found is on a deployed version that declares its state and level: only an
        # empty answer can be a filter that names nothing
        check_filters(engine, lifecycle=lifecycle, state=state, level=level)
    return TicketPage([engine.get(i) for i in found], int(total), limit, offset)


_NOTHING_DEPLOYED = ("no lifecycle is deployed in this database yet: replay a data file or "
                     "report a ticket first, or check the database")


def check_filters(engine: TicketSource, *, lifecycle: str | None = None,
                  state: str | None = None, level: str | None = None) -> None:
    """Refuse a ``lifecycle``, ``state`` or ``level`` filter that could match no ticket.

    Raises:
        UnknownValue: ``lifecycle`` is not deployed in the database; ``state`` or ``level``
            is declared by no deployed version of it (of any lifecycle when it is None).
    """
    versions = engine.lifecycle_versions()
    names = sorted({lc.spec.name for lc in versions})
    if lifecycle is not None and lifecycle not in names:
        raise UnknownValue("lifecycle", lifecycle, names, among="deployed in this database",
                           hint=_NOTHING_DEPLOYED)
    chosen = [lc for lc in versions if lifecycle in (None, lc.spec.name)]
    whose = (f"any deployed version of lifecycle {lifecycle} declares" if lifecycle
             else "any deployed lifecycle declares")
    if state is not None:
        states = sorted({name for lc in chosen for name in lc.spec.states})
        if state not in states:
            raise UnknownValue("state", state, states, among=whose, hint=_NOTHING_DEPLOYED)
    if level is not None:
        levels = sorted({name for lc in chosen for name in lc.levels})
        if level not in levels:
            raise UnknownValue("level", level, levels, among=whose, hint=_NOTHING_DEPLOYED)
