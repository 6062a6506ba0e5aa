"""The replay streams: time order while reading, tickets released when done, unsorted input
sorted on disk, refusals per row, other errors not swallowed, progress on every output."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.replay import BUNDLED_SAMPLE, build_report, load_mapping, replay, sorting
from adapters.replay.progress import ProgressLines, ReplayProgress
from adapters.replay.stream import Timeline
from engine import Actor, Engine, GridwhistleError, VirtualClock

LIFECYCLE = Path(__file__).parents[1] / "adapters/replay/lifecycles/city_service_request.yaml"
T0 = datetime(2024, 3, 1, 8, tzinfo=UTC)


def _boston_rows(n: int) -> tuple[list[str], list[list[str]]]:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [row for _, row in zip(range(n), reader, strict=False)]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    drop = {"seconds", "tickets_per_s", "source_order", "disorder", "rejections"}
    return {k: v for k, v in report.items() if k not in drop}


def test_an_unsorted_export_is_sorted_on_disk_and_replays_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header, rows = _boston_rows(240)
    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    mapping = load_mapping("boston311")
    reports = []
    monkeypatch.setattr(sorting, "RUN_SIZE", 25)  # 10 runs on disk ...
    monkeypatch.setattr(sorting, "MAX_RUNS", 4)   # ... merged in two rounds
    for name, data in (("sorted", rows), ("shuffled", shuffled)):
        engine = Engine(tmp_path / f"{name}.sqlite",
                        clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
        outcome = replay(engine, _write(tmp_path / f"{name}.csv", header, data), mapping)
        reports.append(build_report(engine, outcome, mapping))
        engine.stop()
    in_order, unsorted = reports
    assert in_order["source_order"] == "in order"
    assert unsorted["source_order"] == "sorted"
    assert unsorted["disorder"].startswith("row 3 is reported at 2015-05-06T04:50:32+00:00, "
                                           "before row 2")
    assert _figures(unsorted) == _figures(in_order)
    assert in_order["tickets"] == 240
    assert list(tmp_path.glob("**/run-*.pickle")) == []


def test_sort_plans_is_stable_and_removes_its_runs(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sorting, "MAX_RUNS", 3)
    rng = random.Random(1)
    items = [(rng.randrange(50), i) for i in range(1000)]
    out = list(sorting.sort_plans(iter(items), lambda x: x[0], tmp_path, run_size=7))
    assert out == sorted(items, key=lambda x: x[0])  # stable: equal keys keep input order
    assert list(tmp_path.iterdir()) == []
    assert list(sorting.sort_plans([], lambda x: x, tmp_path)) == []


@dataclass(frozen=True)
class _Ev:
    at: datetime
    trigger: str
    role: str


@dataclass(eq=False)
class _Plan:  # weak-referenceable, so the test can see which plans are still alive
    row: int
    ticket_id: str
    events: list[_Ev] = field(default_factory=list)


def _plan(i: int, every: timedelta, takes: timedelta) -> _Plan:
    at = T0 + i * every
    return _Plan(i + 1, f"t{i + 1}", [
        _Ev(at, "report", "resident"), _Ev(at, "dispatch", "bureau"),
        _Ev(at + takes, "resolve", "department"), _Ev(at + takes, "close", "bureau")])


def _plans(n: int, every: timedelta, takes: timedelta) -> list[_Plan]:
    return [_plan(i, every, takes) for i in range(n)]


def _engine(tmp_path: Path) -> Engine:
    engine = Engine(tmp_path / "t.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    engine.deploy(LIFECYCLE)
    return engine


def _applier(engine: Engine) -> Callable[[_Plan, int], None]:
    def apply(plan: _Plan, index: int) -> None:
        event = plan.events[index]
        actor = Actor("test", event.role)
        if index == 0:
            engine.report("city_service_request", {"category": "x"}, actor=actor,
                          ticket_id=plan.ticket_id)
        else:
            engine.fire(plan.ticket_id, event.trigger, actor=actor)
    return apply


def test_tickets_are_released_once_their_last_event_is_applied(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    alive: weakref.WeakSet[_Plan] = weakref.WeakSet()
    most = 0
    apply = _applier(engine)

    def watching(plan: _Plan, index: int) -> None:
        nonlocal most
        most = max(most, len(alive))
        apply(plan, index)

    def lazily() -> Iterator[_Plan]:
        for i in range(400):
            plan = _plan(i, timedelta(minutes=10), timedelta(hours=2))
            alive.add(plan)
            yield plan
            del plan

    refusals: list[str] = []
    timeline = Timeline(engine, watching, lambda p, i, e: refusals.append(str(e)),
                        batch_size=50)
    timeline.run(lazily())
    assert refusals == []
    assert (timeline.tickets, timeline.events_applied) == (400, 1600)
    # a ticket is open for 2 hours and one is reported every 10 minutes: about 13 at a time
    assert 12 <= most <= 14
    assert len(alive) == 0
    assert engine.summary("city_service_request").by_state == {"closed": 400}
    engine.stop()


def test_a_refusal_rejects_that_ticket_and_the_replay_goes_on(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    plans = _plans(5, timedelta(minutes=10), timedelta(hours=1))
    plans[2].events[2] = _Ev(plans[2].events[2].at, "close", "department")  # close before resolve
    refusals: list[tuple[str, int, str]] = []
    Timeline(engine, _applier(engine),
             lambda p, i, e: refusals.append((p.ticket_id, i, type(e).__name__))).run(plans)
    assert refusals == [("t3", 2, "TriggerNotAllowed")]
    assert engine.get("t3").state == "dispatched"  # its later events were dropped
    assert [engine.get(f"t{i}").state for i in (1, 2, 4, 5)] == ["closed"] * 4
    engine.stop()


class _NotARefusal(GridwhistleError):
    """Stands for any error that is not a CommandRefused (a bug, a database failure)."""


def test_an_error_that_is_not_a_refusal_is_not_taken_for_one(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    apply = _applier(engine)

    def failing(plan: _Plan, index: int) -> None:
        apply(plan, index)
        if plan.ticket_id == "t3" and index == 0:
            raise _NotARefusal("a part of the engine failed after writing")

    refusals: list[str] = []
    with pytest.raises(_NotARefusal):
        Timeline(engine, failing, lambda p, i, e: refusals.append(p.ticket_id)).run(
            _plans(5, timedelta(minutes=10), timedelta(hours=1)))
    assert refusals == []
    # the open batch (t1 to t3) was rolled back as a whole, and nothing after it ran
    assert engine.summary("city_service_request").tickets == 0
    engine.stop()


def test_a_row_outside_the_calendars_validity_is_rejected_and_the_replay_goes_on(
        tmp_path: Path) -> None:
    # grid_incident's centre_hours calendar is valid from 2010-01-01: a request opened in 2009
    # needs working time on days the calendar does not know.
    header, rows = _boston_rows(3)
    col = {name: i for i, name in enumerate(header)}
    early = rows[1][:]
    for name, text in (("open_dt", "2009-12-30 10:00:00"), ("target_dt", "2010-01-04 10:00:00"),
                       ("closed_dt", "2010-01-02 10:00:00")):
        early[col[name]] = text
    data = _write(tmp_path / "early.csv", header, [early, rows[0], rows[2]])
    engine = Engine(tmp_path / "e.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping("boston311")
    report = build_report(engine, replay(engine, data, mapping), mapping)
    engine.stop()
    assert report["tickets"] == 2
    assert [r["row"] for r in report["rejections"]] == [1]
    assert "calendar 'centre_hours'" in report["rejections"][0]["reason"]


def test_progress_lines_come_every_five_seconds_and_at_the_end() -> None:
    now = [0.0]
    lines: list[str] = []
    show = ProgressLines(lines.append, every=5.0, clock=lambda: now[0])

    def at(seconds: float, rows: int, done: bool = False) -> None:
        now[0] = seconds
        show(ReplayProgress(rows_read=rows, rows_total=1000, tickets=rows,
                            events_applied=5 * rows, seconds=seconds, done=done))

    at(1.0, 100)
    at(4.9, 400)
    at(5.0, 500)
    at(7.0, 600)
    at(10.5, 1000, done=True)
    assert lines == [
        "replay: 500 of 1,000 rows (50%), 500 tickets, 100 tickets/s, about 5 s left",
        "replay: done, 1,000 rows, 1,000 tickets, 5,000 events in 10 s (95 tickets/s)",
    ]


def test_cli_progress_goes_to_stderr_unless_quiet(tmp_path: Path) -> None:
    header, rows = _boston_rows(20)
    data = _write(tmp_path / "twenty.csv", header, rows)
    runs = {}
    for flag in ([], ["--quiet"]):
        done = subprocess.run(
            [sys.executable, "-m", "adapters.cli", "replay", "--data", str(data),
             "--db", str(tmp_path / "p.sqlite"), "--json", *flag],
            capture_output=True, text=True, timeout=300, check=True)
        assert json.loads(done.stdout)["tickets"] == 20
        runs[bool(flag)] = done.stderr
    assert "replay: done, 20 rows, 20 tickets, 100 events in " in runs[False]
    assert runs[True] == ""
