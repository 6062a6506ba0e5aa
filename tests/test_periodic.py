"""Periodic work: the twice-daily grid patrol, once per occurrence across engines and runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine import DefinitionError, Engine, VirtualClock, load_definition, parse_definition
from engine.periodic import occurrences, run_periodic

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2024, 5, 10, 0, 0, tzinfo=UTC)      # Fri 08:00 in Shanghai


def test_patrol_occurrences_in_the_calendar_zone():
    lc_spec = load_definition("grid_incident").spec
    rule = lc_spec.periodic["grid_patrol"]
    from engine.calendars import compile_calendars

    cal = compile_calendars(lc_spec.calendars)["centre_hours"]
    got = list(occurrences(rule, cal, T0, T0 + timedelta(days=2)))
    assert [t.astimezone(SH).strftime("%a %d %H:%M") for t in got] == [
        "Fri 10 09:00", "Fri 10 15:00", "Sat 11 09:00", "Sat 11 15:00"]
    working = rule.model_copy(update={"working_days_only": True})
    # Sat 2024-05-11 is a Chinese make-up workday; Sun 12 is not a working day
    got = list(occurrences(working, cal, T0, T0 + timedelta(days=3)))
    assert [t.astimezone(SH).strftime("%a %d %H:%M") for t in got] == [
        "Fri 10 09:00", "Fri 10 15:00", "Sat 11 09:00", "Sat 11 15:00"]


def test_each_occurrence_creates_one_ticket_across_runs_and_engines(tmp_path):
    clock = VirtualClock(T0)
    eng = Engine(tmp_path / "p.sqlite", clock=clock)
    other = Engine(tmp_path / "p.sqlite", clock=clock)
    try:
        eng.deploy("grid_incident")
        clock.set(T0 + timedelta(hours=8))                 # 16:00 local: two are due
        assert run_periodic(eng) == ["grid_patrol-2024-05-10T09:00",
                                     "grid_patrol-2024-05-10T15:00"]
        assert run_periodic(eng) == []
        assert run_periodic(other) == []
        clock.set(T0 + timedelta(days=1, hours=2))          # Sat 10:00 local
        assert run_periodic(other) == ["grid_patrol-2024-05-11T09:00"]
        assert run_periodic(eng) == []
        t = eng.get("grid_patrol-2024-05-11T09:00")
        assert (t.state, t.fields["category"]) == ("reported", "grid patrol")
        [entry] = eng.history(t.id)
        assert (entry.actor, entry.role, entry.reason) == (
            "gridwhistle-periodic", "system",
            "periodic 'grid_patrol' due 2024-05-11T01:00:00+00:00")
    finally:
        eng.stop()
        other.stop()


def test_a_malformed_cron_rule_names_file_line_and_field(grid_incident_text):
    text = grid_incident_text.replace('cron: "0 9,15 * * *"', 'cron: "0 25 * * *"')
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="g.yaml")
    [problem] = info.value.problems
    assert problem.path == "periodic.grid_patrol.cron"
    assert problem.line == text.splitlines().index('    cron: "0 25 * * *"') + 1
    assert problem.message.startswith("'0 25 * * *' is not a valid cron rule")


def test_started_engine_schedules_cron_jobs_and_catches_up(tmp_path):
    import time

    from apscheduler.triggers.cron import CronTrigger

    first = Engine(tmp_path / "s.sqlite", clock=VirtualClock(T0))
    first.deploy("grid_incident")
    first.stop()
    eng = Engine(tmp_path / "s.sqlite", clock=VirtualClock(T0 + timedelta(hours=8)))
    try:
        eng.start()
        jobs = {j.id: j for j in eng.scheduler.aps.get_jobs()}
        patrol = jobs["periodic:grid_incident:grid_patrol"]
        assert isinstance(patrol.trigger, CronTrigger)
        assert str(patrol.trigger.timezone) == "Asia/Shanghai"
        deadline = time.monotonic() + 20
        while eng.summary("grid_incident").tickets < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert eng.get("grid_patrol-2024-05-10T15:00").state == "reported"
        assert eng.summary("grid_incident").tickets == 2
    finally:
        eng.stop()
