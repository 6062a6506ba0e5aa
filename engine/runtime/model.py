"""What the engine hands back: frozen snapshots of tickets, history entries and timers.

All instants are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Actor", "DefinitionVersion", "FiredTimer", "HistoryEntry", "Ticket", "Timer"]


@dataclass(frozen=True)
class Actor:
    """Who issues a command.

    Attributes:
        id: a free-form id of the person or system (e.g. ``"grid-worker-017"``).
        role: a role declared in the lifecycle (``grid_worker``, ``centre``, ...).
    """

    id: str
    role: str


SYSTEM = Actor("gridwhistle", "system")
"""The engine itself, which fires escalations when deadlines pass."""


@dataclass(frozen=True)
class DefinitionVersion:
    """A deployed lifecycle version: ``version`` counts up per name; ``digest`` is SHA-256."""

    id: int
    name: str
    version: int
    digest: str


@dataclass(frozen=True)
class Ticket:
    """A ticket as stored.

    Attributes:
        id: the ticket id.
        lifecycle: the lifecycle name; ``version``: its definition version (the ticket stays
            on it).
        state, level: where the ticket is.
        fields: ticket fields, typed (datetime fields are aware UTC datetimes).
        overdue: True once its resolution deadline (or, if the lifecycle names none, any
            deadline) was breached.
        created_at, updated_at: aware UTC.
        row_version: increases with every change (optimistic locking).
    """

    id: str
    lifecycle: str
    version: int
    state: str
    level: str
    fields: dict[str, Any]
    overdue: bool
    created_at: datetime
    updated_at: datetime
    row_version: int

    def __init__(self, id: str, lifecycle: str, version: int, state: str, level: str,
                 fields: dict[str, Any], overdue: bool, created_at: datetime,
                 updated_at: datetime, row_version: int) -> None:
        # The fields above, in their order (tests/test_command_path.py checks it). A frozen
        # dataclass's own __init__ sets each through object.__setattr__, ten calls; every
        # command returns a Ticket, so they are set at once in the instance's __dict__
        # (what object.__setattr__ writes to).
        self.__dict__.update(id=id, lifecycle=lifecycle, version=version, state=state,
                             level=level, fields=fields, overdue=overdue,
                             created_at=created_at, updated_at=updated_at,
                             row_version=row_version)


@dataclass(frozen=True)
class HistoryEntry:
    """One append-only history row.

    Attributes:
        seq: 1-based position in the ticket's history.
        at: when (aware UTC).
        kind: ``report``, ``transition``, ``breach`` (a deadline, level budget or maximum lag),
            ``sla_warning``, ``sla_breach`` or ``migration`` (moved to another lifecycle
            version, see :meth:`Engine.migrate`).
        trigger: the trigger fired (``report``; the deadline, ``<level>_budget``, lag or SLA clock
            name for the other kinds).
        from_state, to_state, from_level, to_level: before and after (``from_*`` None on report).
        actor, role: who.
        reason: the reason given, if any.
        data: extra facts (changed fields; a breach's original ``due_at``).
    """

    seq: int
    at: datetime
    kind: str
    trigger: str
    from_state: str | None
    to_state: str
    from_level: str | None
    to_level: str
    actor: str
    role: str
    reason: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Timer:
    """A deadline timer row.

    Attributes:
        id: row id. ``ticket_id``, ``name``: whose and which deadline.
        state: the state it belongs to (None for a ticket deadline).
        due_at: when it falls due (aware UTC).
        status: ``pending``, ``fired``, ``cancelled`` or ``stale`` (its ticket had moved on).
        fired_at: when it was fired (aware UTC) or None.
        failures: how often firing it failed (a bug, a database error); a pending timer
            with failures is retried with a growing delay (see
            :mod:`engine.runtime.dispatcher`).
        last_error: the last failure's error, or None.
    """

    id: int
    ticket_id: str
    name: str
    state: str | None
    due_at: datetime
    status: str
    fired_at: datetime | None
    failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class FiredTimer:
    """What :meth:`Engine.run_due` did with one due timer.

    Attributes:
        timer: the timer as it was claimed (``due_at`` is its original due time).
        outcome: ``breached`` (recorded), ``escalated`` (recorded and escalated one level),
            ``top_level`` (escalation asked for, already at the top: recorded only),
            ``warned`` (an SLA warning recorded), ``stale`` (the ticket had moved on, left
            the level or stopped the clock: nothing done), ``resumed`` (a suspension's limit:
            the system resumed the ticket, issue 11) or ``failed`` (firing raised an
            error; nothing of it was written, the timer stays pending and is retried).
    """

    timer: Timer
    outcome: str
