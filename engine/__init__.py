"""Gridwhistle: a ticket-lifecycle workflow engine for grid governance.

The public surface for host apps. Everything not named here is private and may change.

Example::

    from engine import Actor, Engine

    with Engine("tickets.sqlite") as eng:        # starts the deadline scheduler
        t = eng.report("grid_incident", {"category": "blocked drain"},
                       actor=Actor("gw-017", "grid_worker"))
        eng.fire(t.id, "dispatch", actor=Actor("ops-1", "centre"),
                 fields={"department": "water"})
"""

from engine.calendars import BusinessCalendar, CalendarOutOfRange
from engine.clock import Clock, SystemClock, VirtualClock
from engine.definition import (
    Definition,
    bundled_names,
    load_definition,
    load_yaml_model,
    parse_definition,
)
from engine.errors import (
    CommandRefused,
    ConcurrencyConflict,
    ConfigurationError,
    DefinitionError,
    GridwhistleError,
    GuardRejected,
    HostCallbackFailed,
    InvalidFields,
    Problem,
    RoleNotAllowed,
    TicketExists,
    TicketNotFound,
    TriggerNotAllowed,
    UnknownDefinition,
)
from engine.ladder import LadderPosition
from engine.lifecycle import CommandContext, Lifecycle, Registry
from engine.periodic import run_periodic
from engine.runtime import (
    SYSTEM,
    Actor,
    DefinitionVersion,
    Engine,
    FiredTimer,
    HistoryEntry,
    Summary,
    Ticket,
    Timer,
    TopLevelReached,
)
from engine.sla import SlaClock
from engine.store import Database
from engine.timing import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours

__version__ = "0.1.0"

__all__ = [
    "SYSTEM",
    "Actor",
    "BusinessCalendar",
    "CalendarOutOfRange",
    "Clock",
    "CommandContext",
    "CommandRefused",
    "ConcurrencyConflict",
    "ConfigurationError",
    "Database",
    "Definition",
    "DefinitionError",
    "DefinitionVersion",
    "Engine",
    "FiredTimer",
    "GridwhistleError",
    "GuardRejected",
    "HistoryEntry",
    "HostCallbackFailed",
    "InvalidFields",
    "LadderPosition",
    "Lifecycle",
    "LifecycleNotValid",
    "MinimumLagNotReached",
    "OutsideWorkingHours",
    "Problem",
    "Registry",
    "RoleNotAllowed",
    "SlaClock",
    "Summary",
    "SystemClock",
    "Ticket",
    "TicketExists",
    "TicketNotFound",
    "Timer",
    "TopLevelReached",
    "TriggerNotAllowed",
    "UnknownDefinition",
    "VirtualClock",
    "__version__",
    "bundled_names",
    "load_definition",
    "load_yaml_model",
    "parse_definition",
    "run_periodic",
]
