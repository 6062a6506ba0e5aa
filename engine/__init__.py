"""Gridwhistle: a ticket-lifecycle workflow engine for grid governance.

The public surface for host apps. Everything not named here is private and may change.

Example::

    from engine import Actor, Engine

    with Engine("tickets.sqlite") as eng:        # starts the deadline scheduler
        t = eng.report("grid_incident", {"category": "blocked drain"},
                       actor=Actor("hotline-1", "centre"))
        eng.fire(t.id, "dispatch", actor=Actor("ops-1", "centre"),
                 fields={"department": "water"})
"""

from engine.calendars import BusinessCalendar, CalendarOutOfRange
from engine.clock import Clock, SystemClock, VirtualClock
from engine.definition import (
    Definition,
    DefinitionLimits,
    bundled_names,
    load_definition,
    load_yaml_model,
    parse_definition,
)
from engine.departments import Departments, PartSLA, Route, TicketSLA, WorkOrder
from engine.errors import (
    BounceBudgetExceeded,
    BounceLimitReached,
    BounceNeedsApproval,
    CallbackLinkInvalid,
    CommandRefused,
    ConcurrencyConflict,
    ConfigurationError,
    DefinitionError,
    EvidenceInvalid,
    EvidenceMissing,
    EvidenceRejected,
    FieldNotAllowed,
    FileNotReadable,
    GridwhistleError,
    GuardRejected,
    HostCallbackFailed,
    IdempotencyKeyReused,
    InvalidArgument,
    InvalidArgumentType,
    InvalidFields,
    MigrationRefused,
    NoRouting,
    NotADuplicate,
    NotTheHandler,
    OutsideCalendar,
    OversightRefused,
    PatrolNotOnRound,
    Problem,
    RoleNotAllowed,
    TicketExists,
    TicketNotFound,
    TriggerNotAllowed,
    UnknownDefinition,
    UnknownDepartment,
    UnknownOrganisation,
    UnknownTrigger,
    UnknownValue,
    VirtualClockRequired,
    WorkOrdersOpen,
)
from engine.events import EVENT_TYPES, DomainEvent
from engine.facade import Engine
from engine.ladder import LadderPosition
from engine.lifecycle import CommandContext, Lifecycle, Registry
from engine.oversight import SupervisionNotice, TimeRequest
from engine.periodic import run_periodic
from engine.reports import Report, Summary, build_report
from engine.runtime import (
    SYSTEM,
    Actor,
    Change,
    CheckContext,
    DefinitionVersion,
    FireContext,
    FiredTimer,
    HistoryEntry,
    Participant,
    PendingTimer,
    PlanContext,
    Ticket,
    TicketPage,
    TicketRecord,
    Timer,
    TopLevelReached,
    Unit,
    Violation,
    find_tickets,
)
from engine.sla import SlaClock
from engine.store import Database, to_url
from engine.store.dbclock import DatabaseClock
from engine.timing import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours
from engine.validation import Limits
from engine.versions import TicketImpact

__version__ = "0.1.0"

__all__ = [
    "EVENT_TYPES",
    "SYSTEM",
    "Actor",
    "BounceBudgetExceeded",
    "BounceLimitReached",
    "BounceNeedsApproval",
    "BusinessCalendar",
    "CalendarOutOfRange",
    "CallbackLinkInvalid",
    "Change",
    "CheckContext",
    "Clock",
    "CommandContext",
    "CommandRefused",
    "ConcurrencyConflict",
    "ConfigurationError",
    "Database",
    "DatabaseClock",
    "Definition",
    "DefinitionError",
    "DefinitionLimits",
    "DefinitionVersion",
    "Departments",
    "DomainEvent",
    "Engine",
    "EvidenceInvalid",
    "EvidenceMissing",
    "EvidenceRejected",
    "FieldNotAllowed",
    "FileNotReadable",
    "FireContext",
    "FiredTimer",
    "GridwhistleError",
    "GuardRejected",
    "HistoryEntry",
    "HostCallbackFailed",
    "IdempotencyKeyReused",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidFields",
    "LadderPosition",
    "Lifecycle",
    "LifecycleNotValid",
    "Limits",
    "MigrationRefused",
    "MinimumLagNotReached",
    "NoRouting",
    "NotADuplicate",
    "NotTheHandler",
    "OutsideCalendar",
    "OutsideWorkingHours",
    "OversightRefused",
    "PartSLA",
    "Participant",
    "PatrolNotOnRound",
    "PendingTimer",
    "PlanContext",
    "Problem",
    "Registry",
    "Report",
    "RoleNotAllowed",
    "Route",
    "SlaClock",
    "Summary",
    "SupervisionNotice",
    "SystemClock",
    "Ticket",
    "TicketExists",
    "TicketImpact",
    "TicketNotFound",
    "TicketPage",
    "TicketRecord",
    "TicketSLA",
    "TimeRequest",
    "Timer",
    "TopLevelReached",
    "TriggerNotAllowed",
    "Unit",
    "UnknownDefinition",
    "UnknownDepartment",
    "UnknownOrganisation",
    "UnknownTrigger",
    "UnknownValue",
    "Violation",
    "VirtualClock",
    "VirtualClockRequired",
    "WorkOrder",
    "WorkOrdersOpen",
    "__version__",
    "build_report",
    "bundled_names",
    "find_tickets",
    "load_definition",
    "load_yaml_model",
    "parse_definition",
    "run_periodic",
    "to_url",
]
