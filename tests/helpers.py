"""Small helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
"""The fixture clock's starting instant: 2024-05-01T08:00Z."""


def at(hour: int, minute: int = 0, *, day: int = 1) -> datetime:
    """An instant in May 2024, UTC."""
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def is_utc(value: datetime) -> bool:
    """Aware, with a zero UTC offset."""
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


def deadline_timers(engine, ticket_id=None, *, status=None):  # type: ignore[no-untyped-def]
    """The per-state and ticket deadline timers only (SLA, ladder and lag timers have a ':')."""
    return [t for t in engine.timers(ticket_id, status=status) if ":" not in t.name]


def core_history(engine, ticket_id):  # type: ignore[no-untyped-def]
    """History without SLA warnings and breaches (kinds report, transition, breach)."""
    return [h for h in engine.history(ticket_id) if not h.kind.startswith("sla_")]


def quick_lifecycle(after: str) -> str:
    """A two-state lifecycle whose only deadline (`soon`, record only) falls due ``after``."""
    return f"""
format: 1
name: quick
initial: open
roles: {{centre: {{}}, system: {{}}}}
levels: [{{name: community}}]
report: {{roles: centre}}
states: {{open: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: finish, source: open, dest: done, roles: centre}}
deadlines:
  soon: {{state: open, after: {after}, on_breach: record}}
"""


def permits_lifecycle(name: str, zone: str | None) -> str:
    """A lifecycle whose deadline is a field's instant; its calendar in ``zone`` (or none)."""
    cal = f"""
calendars:
  office:
    zone: {zone}
    hours: {{monday: ["08:00-17:00"], tuesday: ["08:00-17:00"]}}
""" if zone else ""
    return f"""
format: 1
name: {name}
title: {{en: Permits}}
initial: open
roles: {{centre: {{}}, system: {{}}}}
levels: [{{name: community}}]
fields:
  due_by: {{type: datetime, title: {{en: Due by}}}}
report: {{roles: centre}}
states: {{open: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: finish, source: open, dest: done, roles: centre}}
deadlines:
  answer: {{at_field: due_by, stop_in: [done], on_breach: record}}
{cal}"""


def cli_run(args: list[str]) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) of one ``gridwhistle`` command, in process
    (typer's CliRunner, 200 columns); never a Python exception, never a traceback."""
    from typer.testing import CliRunner

    from adapters.cli import app

    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert "Traceback" not in result.output
    return result.exit_code, result.output
