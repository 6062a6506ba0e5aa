"""The public surface promised to host apps: changing it must be a decision, not an accident."""

from __future__ import annotations

from datetime import timedelta

import engine
from engine import Actor
from engine.testing import temporary_engine

PUBLIC = {
    "EVENT_TYPES", "DomainEvent", "TicketPage", "find_tickets",
    "Actor", "Clock", "CommandContext", "CommandRefused", "ConcurrencyConflict",
    "ConfigurationError", "Database", "Definition", "DefinitionError", "DefinitionVersion",
    "Engine", "FiredTimer", "GridwhistleError", "GuardRejected", "HistoryEntry",
    "CommandInsideCallback",
    "HostCallbackFailed", "IdempotencyKeyReused", "InvalidFields", "Lifecycle", "MigrationRefused",
    "Problem", "Registry", "RoleNotAllowed", "SYSTEM", "Summary", "SystemClock", "Ticket",
    "TicketExists", "TicketImpact", "TicketNotFound", "Timer", "TopLevelReached",
    "TriggerNotAllowed", "UnknownDefinition", "Violation", "VirtualClock", "__version__",
    "UnknownTrigger",  # the fresh-user audit: a trigger the lifecycle declares nowhere
    "bundled_names", "load_definition", "load_yaml_model", "parse_definition",
    # time: calendars, SLA clocks, the ladder, time rules, periodic work
    "BusinessCalendar", "CalendarOutOfRange", "LadderPosition", "LifecycleNotValid",
    "MinimumLagNotReached", "OutsideWorkingHours", "SlaClock", "run_periodic", "to_url",
    # issue 4: many departments on one ticket
    "Departments", "Route", "WorkOrder", "TicketSLA", "PartSLA",
    "BounceBudgetExceeded",
    "BounceLimitReached", "BounceNeedsApproval", "NoRouting", "NotADuplicate",
    "UnknownDepartment",
    # issue 10: the participant protocol; a calendar out of range refuses the command
    "Participant", "Change", "CheckContext", "PlanContext", "FireContext", "Unit",
    "TicketRecord", "PendingTimer", "OutsideCalendar",
    # issue 13: the centre's reports
    "Report", "build_report",
    # issue 11: bounded definitions, one validation at the engine's edge
    "DefinitionLimits", "Limits",
    # issue 12: evidence, the call-back, hand-offs, patrols
    "EvidenceMissing", "EvidenceInvalid", "EvidenceRejected", "CallbackLinkInvalid",
    "UnknownOrganisation", "PatrolNotOnRound",
    # issue 11: deadlines on the database server's clock (PostgreSQL)
    "DatabaseClock",
    # issue 11: extension requests, suspensions, supervision notices
    "OversightRefused", "TimeRequest", "SupervisionNotice",
    # issue 11: who may change what
    "FieldNotAllowed", "NotTheHandler",
    # bad input to the public API is typed too (and still the builtin it was)
    "InvalidArgument", "InvalidArgumentType", "VirtualClockRequired", "FileNotReadable",
    # a listing's filter that could only ever match nothing (an unknown state, level, ...)
    "UnknownValue",
    # a routed ticket is resolved by its work orders (the resolution rule)
    "WorkOrdersOpen",
}


def test_exported_names_are_exactly_the_public_surface() -> None:
    assert set(engine.__all__) == PUBLIC
    for name in engine.__all__:
        assert hasattr(engine, name), name


def test_every_error_is_rooted_in_one_base() -> None:
    errors = [getattr(engine, n) for n in engine.__all__
              if isinstance(getattr(engine, n), type)
              and issubclass(getattr(engine, n), Exception)]
    assert len(errors) == 44  # issue 12 added 6, issue 11's oversight 1 and permissions 2;
    # the fresh-user audit UnknownTrigger; bad input to the API 4; UnknownValue (filters);
    # WorkOrdersOpen; CommandInsideCallback (a command from a host guard or action)
    assert all(issubclass(e, engine.GridwhistleError) for e in errors)


def test_public_callables_have_docstrings() -> None:
    for name in engine.__all__:
        obj = getattr(engine, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_temporary_engine_advances_virtual_time_and_fires_timers() -> None:
    with temporary_engine() as harness:
        t = harness.engine.report("grid_incident", {"category": "drain"},
                                  actor=Actor("gw", "centre"))
        assert harness.advance(timedelta(minutes=30)) == []       # due at 08:30: not yet late
        fired = harness.advance(timedelta(seconds=1))
        assert [(f.timer.name, f.outcome) for f in fired] == [("dispatch_due", "escalated")]
        assert harness.engine.get(t.id).level == "street"
        path = harness.path
        assert path.exists()
    assert not path.exists()
