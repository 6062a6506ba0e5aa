"""Periodic rules across daylight saving, and the catch-up policy (issue 11)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine import Engine, VirtualClock, parse_definition, run_periodic
from engine.periodic.occurrences import due_now, occurrence_id, occurrences

BERLIN = ZoneInfo("Europe/Berlin")        # 2024-10-27 03:00 CEST -> 02:00 CET; 03-31 02->03
NEW_YORK = ZoneInfo("America/New_York")   # 2024-11-03 02:00 EDT -> 01:00 EST


def lifecycle(cron: str, zone: str, *, catch_up: str | None = None,
              working_days_only: bool = False) -> str:
    extra = f"\n    catch_up: {catch_up}" if catch_up else ""
    return f"""\
format: 1
name: rounds
initial: open
roles: {{system: {{}}, centre: {{}}}}
levels: [{{name: community}}]
report: {{roles: [system]}}
calendars:
  local:
    zone: {zone}
    hours: {{monday: ["08:00-17:00"], tuesday: ["08:00-17:00"], wednesday: ["08:00-17:00"],
            thursday: ["08:00-17:00"], friday: ["08:00-17:00"]}}
states: {{open: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: finish, source: open, dest: done, roles: [centre]}}
periodic:
  round:
    cron: "{cron}"
    calendar: local
    working_days_only: {str(working_days_only).lower()}{extra}
"""


def local(instants: list[datetime], zone: ZoneInfo) -> list[str]:
    return [t.astimezone(zone).strftime("%m-%d %H:%M %Z") for t in instants]


def test_a_time_repeated_at_fall_back_is_one_occurrence() -> None:
    got = list(occurrences("30 2 * * *", BERLIN, datetime(2024, 10, 26, 12, tzinfo=UTC),
                           datetime(2024, 10, 28, 12, tzinfo=UTC)))
    assert local(got, BERLIN) == ["10-27 02:30 CEST", "10-28 02:30 CET"]
    assert [occurrence_id("round", t, BERLIN) for t in got] == [
        "round-2024-10-27T02:30", "round-2024-10-28T02:30"]


def test_a_time_skipped_at_spring_forward_runs_shifted_by_the_gap() -> None:
    got = list(occurrences("30 2 * * *", BERLIN, datetime(2024, 3, 30, 12, tzinfo=UTC),
                           datetime(2024, 4, 1, 12, tzinfo=UTC)))
    assert local(got, BERLIN) == ["03-31 03:30 CEST", "04-01 02:30 CEST"]
    both = list(occurrences("30 2,3 * * *", BERLIN, datetime(2024, 3, 31, tzinfo=UTC),
                            datetime(2024, 3, 31, 6, tzinfo=UTC)))
    assert local(both, BERLIN) == ["03-31 03:30 CEST"]  # 02:30 and 03:30: one instant


def test_an_interval_rule_runs_in_both_passes_with_unique_ids() -> None:
    got = list(occurrences("*/15 * * * *", NEW_YORK, datetime(2024, 11, 3, 4, 50, tzinfo=UTC),
                           datetime(2024, 11, 3, 7, 0, tzinfo=UTC)))
    assert local(got, NEW_YORK) == [
        "11-03 01:00 EDT", "11-03 01:15 EDT", "11-03 01:30 EDT", "11-03 01:45 EDT",
        "11-03 01:00 EST", "11-03 01:15 EST", "11-03 01:30 EST", "11-03 01:45 EST",
        "11-03 02:00 EST"]
    ids = [occurrence_id("r", t, NEW_YORK) for t in got]
    assert len(set(ids)) == len(ids)
    assert ids[4] == "r-2024-11-03T01:00-05:00"


def test_a_working_days_only_rule_does_not_hang_at_fall_back() -> None:
    result: list[datetime] = []

    def run() -> None:
        result.extend(occurrences(
            "30 1 * * *", NEW_YORK, datetime(2024, 11, 2, tzinfo=UTC),
            datetime(2024, 11, 6, tzinfo=UTC), working_day=lambda d: d.weekday() < 5))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)  # a guard, not a speed check: main looped for ever here
    assert not thread.is_alive(), "occurrences() did not return"
    assert local(result, NEW_YORK) == ["11-04 01:30 EST", "11-05 01:30 EST"]


def test_run_periodic_through_a_fall_back_day(tmp_path: Path) -> None:
    clock = VirtualClock(datetime(2024, 10, 26, 12, tzinfo=UTC))
    eng = Engine(tmp_path / "dst.sqlite", clock=clock)
    try:
        eng.deploy(parse_definition(lifecycle("30 2 * * *", "Europe/Berlin", catch_up="all")))
        created: list[str] = []
        for _ in range(48):  # hourly through the fold: main raised TicketExists for ever
            clock.advance(timedelta(hours=1))
            created += run_periodic(eng)
        assert created == ["round-2024-10-27T02:30", "round-2024-10-28T02:30"]
    finally:
        eng.stop()


@pytest.mark.parametrize(("policy", "expected"), [
    ("latest", ["round-2024-05-01T11:00"]),
    ("all", [f"round-2024-05-01T{h:02d}:{m:02d}" for h in (8, 9, 10) for m in (15, 30, 45)]
     + [f"round-2024-05-01T{h:02d}:00" for h in (9, 10, 11)]),
    ("none", []),
])
def test_catch_up_after_downtime(tmp_path: Path, policy: str, expected: list[str]) -> None:
    start = datetime(2024, 5, 1, 8, tzinfo=UTC)
    clock = VirtualClock(start)
    eng = Engine(tmp_path / "c.sqlite", clock=clock)
    try:
        eng.deploy(parse_definition(lifecycle("*/15 * * * *", "UTC", catch_up=policy)))
        clock.set(start + timedelta(hours=3, minutes=5))  # three hours down: 12 missed
        assert sorted(run_periodic(eng)) == sorted(expected)  # main: all 12, no policy
        clock.set(start + timedelta(hours=3, minutes=15, seconds=20))  # on time again
        assert run_periodic(eng) == ["round-2024-05-01T11:15"]
    finally:
        eng.stop()


def test_the_default_catch_up_is_latest() -> None:
    spec = parse_definition(lifecycle("*/15 * * * *", "UTC")).spec
    assert spec.periodic["round"].catch_up == "latest"
    t = [datetime(2024, 5, 1, h, tzinfo=UTC) for h in (8, 9, 10)]
    now = t[-1] + timedelta(seconds=61)
    assert (due_now(t, "latest", now), due_now(t, "all", now), due_now(t, "none", now)) == (
        [t[-1]], t, [])
    assert due_now(t, "none", t[-1] + timedelta(seconds=59)) == [t[-1]]
