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
    lc_spec = load_definition("grid_patrol").spec
    morning, afternoon = lc_spec.periodic["morning"], lc_spec.periodic["afternoon"]
    from engine.calendars import compile_calendars

    cal = compile_calendars(lc_spec.calendars)["patrol_days"]
    got = sorted([*occurrences(morning, cal, T0 - timedelta(hours=1), T0 + timedelta(days=2)),
                  *occurrences(afternoon, cal, T0 - timedelta(hours=1), T0 + timedelta(days=2))])
    assert [t.astimezone(SH).strftime("%a %d %H:%M") for t in got] == [
        "Fri 10 08:00", "Fri 10 14:00", "Sat 11 08:00", "Sat 11 14:00", "Sun 12 08:00"]
    working = morning.model_copy(update={"working_days_only": True})
    # the patrol calendar works every day but public holidays: 1-3 May 2024 are skipped
    got = list(occurrences(working, cal, T0 - timedelta(days=10), T0 + timedelta(days=2)))
    assert [t.astimezone(SH).strftime("%a %d %H:%M") for t in got] == [
        "Sat 04 08:00", "Sun 05 08:00", "Mon 06 08:00", "Tue 07 08:00", "Wed 08 08:00",
        "Thu 09 08:00", "Fri 10 08:00", "Sat 11 08:00", "Sun 12 08:00"]


def test_grid_incident_has_no_periodic_rule_of_its_own():
    # the patrol is grid_patrol's (one round per grid at 08:00 and 14:00), not incidents
    assert load_definition("grid_incident").spec.periodic == {}


def test_each_grid_gets_two_rounds_a_day_once_across_runs_and_engines(tmp_path):
    clock = VirtualClock(T0 - timedelta(hours=1))      # Fri 07:00 in Shanghai
    eng = Engine(tmp_path / "p.sqlite", clock=clock)
    other = Engine(tmp_path / "p.sqlite", clock=clock)
    try:
        eng.deploy("grid_patrol")
        clock.set(T0 + timedelta(hours=8))                 # Fri 16:00 local: two rounds due
        assert sorted(run_periodic(eng)) == sorted(
            f"{rule}-{grid}-2024-05-10T{hh}:00" for rule, hh in (("morning", "08"),
                                                                 ("afternoon", "14"))
            for grid in ("g01", "g02", "g03"))
        assert run_periodic(eng) == []
        assert run_periodic(other) == []
        clock.set(T0 + timedelta(days=1, hours=2))          # Sat 10:00 local
        assert sorted(run_periodic(other)) == [f"morning-{g}-2024-05-11T08:00"
                                              for g in ("g01", "g02", "g03")]
        assert run_periodic(eng) == []
        t = eng.get("morning-g02-2024-05-11T08:00")
        assert (t.state, t.fields) == ("scheduled", {"area": "g02", "round": "morning",
                                                     "grid_worker": "gw-023"})
        [entry] = eng.history(t.id)
        assert (entry.actor, entry.role, entry.reason) == (
            "gridwhistle-periodic", "system",
            "periodic 'morning/g02' due 2024-05-11T00:00:00+00:00")
        assert eng.summary("grid_patrol").by_state == {"scheduled": 9}
    finally:
        eng.stop()
        other.stop()


def test_a_malformed_cron_rule_names_file_line_and_field():
    text = load_definition("grid_patrol").source
    text = text.replace('cron: "0 8 * * *"', 'cron: "0 25 * * *"')
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="g.yaml")
    [problem] = info.value.problems
    assert problem.path == "periodic.morning.cron"
    assert problem.line == text.splitlines().index('    cron: "0 25 * * *"') + 1
    assert problem.message.startswith("'0 25 * * *' is not a valid cron rule")


def test_started_engine_schedules_cron_jobs_and_catches_up(tmp_path):
    import time

    from apscheduler.triggers.cron import CronTrigger

    first = Engine(tmp_path / "s.sqlite", clock=VirtualClock(T0 - timedelta(hours=1)))
    first.deploy("grid_patrol")
    first.stop()
    eng = Engine(tmp_path / "s.sqlite", clock=VirtualClock(T0 + timedelta(hours=8)))
    try:
        eng.start()
        jobs = {j.id: j for j in eng.scheduler.aps.get_jobs()}
        patrol = jobs["periodic:grid_patrol:afternoon"]
        assert isinstance(patrol.trigger, CronTrigger)
        assert str(patrol.trigger.timezone) == "Asia/Shanghai"
        deadline = time.monotonic() + 20
        while eng.summary("grid_patrol").tickets < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert eng.get("afternoon-g03-2024-05-10T14:00").state == "scheduled"
        assert eng.summary("grid_patrol").tickets == 6
    finally:
        eng.stop()
