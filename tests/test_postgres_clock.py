"""Deadlines judged on the database server's clock, whatever a worker's own clock says.

A worker whose clock runs ten minutes fast must not breach a deadline ten minutes early, nor
stamp its commands ten minutes in the future: on PostgreSQL with the real clock the engine
tells the time of the database server (:class:`~engine.DatabaseClock`). The skewed worker
is a :class:`~engine.SystemClock` that runs fast or slow, as a machine's would.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from sqlalchemy import Engine as SAEngine
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from test_postgres import URL

from engine import (
    Actor,
    ConfigurationError,
    DatabaseClock,
    Engine,
    SystemClock,
    VirtualClock,
)

SKEW = timedelta(minutes=10)
CENTRE = Actor("ops", "centre")


class SkewedClock(SystemClock):
    """This machine's clock, running ``skew`` ahead (negative: behind) of the true time."""

    def __init__(self, skew: timedelta):
        self.skew = skew

    def now(self) -> datetime:
        return super().now() + self.skew


@pytest.fixture
def pg() -> Iterator[SAEngine]:
    """A SQLAlchemy engine on a schema of its own in the test database, dropped afterwards."""
    try:
        admin = create_engine(URL)
        with admin.begin() as conn:
            schema = f"gw_test_{uuid.uuid4().hex[:12]}"
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OperationalError, ImportError) as exc:
        if os.environ.get("GRIDWHISTLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {URL} is required but not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {URL}: {exc}")
    sa = create_engine(URL, connect_args={"options": f"-csearch_path={schema}"})
    yield sa
    sa.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def server_now(sa: SAEngine) -> datetime:
    with sa.connect() as conn:
        value: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return value.astimezone(UTC)


def wait_for_server(sa: SAEngine, instant: datetime) -> None:
    while server_now(sa) <= instant:
        time.sleep(0.05)


def report_due(eng: Engine, ticket_id: str, due: datetime) -> None:
    """A ticket whose ``resolution`` deadline is due at ``due`` (its ``target_at``)."""
    eng.report("grid_incident", {"category": "blocked drain", "target_at": due},
               actor=Actor("gw-1", "centre"), ticket_id=ticket_id)


@pytest.mark.postgres
def test_a_fast_worker_breaches_a_deadline_only_when_the_database_clock_reaches_it(
        pg: SAEngine) -> None:
    eng = Engine(pg, clock=SkewedClock(SKEW))  # the default time source: the database's
    try:
        assert isinstance(eng.clock, DatabaseClock)
        assert abs(eng.clock.offset + SKEW) < timedelta(seconds=1)
        due = server_now(pg) + timedelta(seconds=3)
        report_due(eng, "fast-1", due)
        stamped = eng.history("fast-1")[0].at
        assert abs(stamped - server_now(pg)) < timedelta(seconds=2)  # not 10 minutes ahead
        # the worker's own clock is 10 minutes past the deadline; the database's is not
        assert eng.clock.local.now() > due + SKEW - timedelta(seconds=5)
        assert eng.run_due() == []
        assert eng.get("fast-1").overdue is False
        wait_for_server(pg, due)
        fired = eng.run_due()
        assert [(f.timer.name, f.outcome) for f in fired] == [("resolution", "escalated")]
        breach = next(h for h in eng.history("fast-1") if h.trigger == "resolution")
        assert due <= breach.at < due + timedelta(seconds=2)
        assert eng.get("fast-1").overdue is True
    finally:
        eng.stop()


@pytest.mark.postgres
def test_two_workers_a_fast_and_a_slow_one_fire_a_deadline_once_on_time(
        pg: SAEngine) -> None:
    fast = Engine(pg, clock=SkewedClock(SKEW), worker_id="fast")
    slow = Engine(pg, clock=SkewedClock(-SKEW), worker_id="slow")
    try:
        due = server_now(pg) + timedelta(seconds=2)
        report_due(slow, "two-1", due)
        assert fast.run_due() == [] and slow.run_due() == []
        wait_for_server(pg, due)
        assert [(f.timer.name, f.outcome) for f in slow.run_due()] == [
            ("resolution", "escalated")]
        assert fast.run_due() == []
        stamps = [h.at for h in fast.history("two-1")]
        assert stamps == sorted(stamps)  # the slow worker's report is not after the breach
    finally:
        fast.stop()
        slow.stop()


@pytest.mark.postgres
def test_the_running_scheduler_of_a_fast_worker_wakes_on_the_database_clock(
        pg: SAEngine) -> None:
    eng = Engine(pg, clock=SkewedClock(SKEW), sweep_seconds=3600)
    try:
        eng.start()
        due = server_now(pg) + timedelta(seconds=2)
        report_due(eng, "run-1", due)
        deadline = time.monotonic() + 20
        while not eng.get("run-1").overdue and time.monotonic() < deadline:
            time.sleep(0.05)
        breach = next(h for h in eng.history("run-1") if h.trigger == "resolution")
        assert due <= breach.at < due + timedelta(seconds=2)
    finally:
        eng.stop()


@pytest.mark.postgres
def test_the_local_time_source_keeps_the_workers_own_clock(pg: SAEngine) -> None:
    eng = Engine(pg, clock=SkewedClock(SKEW), time_source="local")
    try:
        assert isinstance(eng.clock, SkewedClock)
        due = server_now(pg) + timedelta(minutes=5)
        report_due(eng, "local-1", due)
        # what a skewed worker did before: five minutes early on the database's clock
        assert [(f.timer.name, f.outcome) for f in eng.run_due()] == [
            ("resolution", "escalated")]
    finally:
        eng.stop()


@pytest.mark.postgres
def test_a_virtual_clock_stays_virtual_on_postgres(pg: SAEngine) -> None:
    clock = VirtualClock(datetime(2024, 5, 1, 8, tzinfo=UTC))
    eng = Engine(pg, clock=clock)
    try:
        assert eng.clock is clock
        with pytest.raises(ValueError, match="VirtualClock"):
            Engine(pg, clock=clock, time_source="database")
    finally:
        eng.stop()


def test_sqlite_keeps_the_local_clock(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "t.sqlite")
    try:
        assert type(eng.clock) is SystemClock
        with pytest.raises(ConfigurationError, match="no server clock"):
            Engine(tmp_path / "t.sqlite", time_source="database")
        with pytest.raises(ValueError, match="time_source"):
            Engine(tmp_path / "t.sqlite", time_source="server")
    finally:
        eng.stop()


def test_a_clock_behind_this_machines_wakes_once_when_it_reaches_the_due_time(
        tmp_path: Path) -> None:
    """The wake-up waits on this machine's clock: it must wait for the engine's instead.

    Before, a clock two minutes behind woke the scheduler two minutes early, found nothing
    due, and re-armed for the same past instant: it spun until the clock caught up.
    """
    clock = SkewedClock(-timedelta(minutes=2))
    eng = Engine(tmp_path / "t.sqlite", clock=clock, sweep_seconds=3600)
    runs: list[datetime] = []
    lock = threading.Lock()

    def count(_event: object) -> None:
        with lock:
            runs.append(datetime.now(UTC))

    try:
        eng.start()
        scheduler = eng.scheduler
        assert scheduler is not None
        scheduler.aps.add_listener(count, EVENT_JOB_EXECUTED)
        due = clock.now() + timedelta(seconds=1)
        report_due(eng, "behind-1", due)
        time.sleep(2.5)
        breach = next(h for h in eng.history("behind-1") if h.trigger == "resolution")
        assert due <= breach.at < due + timedelta(seconds=1)
        assert len(runs) <= 3  # the wake-up, and perhaps the start-up run
    finally:
        eng.stop()


def test_periodic_work_runs_again_when_a_clock_behind_reaches_its_wake_up(
        tmp_path: Path) -> None:
    """A cron job wakes on this machine's clock; on a clock 2 minutes behind, the
    occurrence is due only 2 minutes later, so the work is run once more then."""
    from engine.periodic.runner import _safe_run

    eng = Engine(tmp_path / "t.sqlite", clock=SkewedClock(-timedelta(minutes=2)),
                 sweep_seconds=3600)
    try:
        eng.start()
        scheduler = eng.scheduler
        assert scheduler is not None
        woke = datetime.now(UTC)
        _safe_run(eng, scheduler.aps)
        late = [j for j in scheduler.aps.get_jobs()
                if j.id == "periodic:again" and j.next_run_time is not None]
        assert len(late) == 1
        again = late[0].next_run_time - woke
        assert timedelta(minutes=2) <= again < timedelta(minutes=2, seconds=1)
    finally:
        eng.stop()
