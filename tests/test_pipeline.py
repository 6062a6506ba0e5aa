"""The one-way pipeline: failures isolated, small firing transactions, no deadlocks, follow-ons.

Issue 10: a timer whose firing fails is marked failed and retried with backoff while the rest
fire; firing commits a bounded number of timers per transaction, so a writer on SQLite is
served between them; PostgreSQL workers firing timers of the same tickets never deadlock; a
refused follow-on is never swallowed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import store_url
from helpers import START, quick_lifecycle
from sqlalchemy import event
from typer.testing import CliRunner

from adapters.cli import app
from engine import (
    Actor,
    Change,
    Departments,
    Engine,
    Participant,
    PlanContext,
    Registry,
    VirtualClock,
    parse_definition,
)

CENTRE = Actor("ops-1", "centre")


class _Boom(Participant):
    """A participant with a bug in its handling of one ticket's breach (while armed)."""

    def __init__(self, ticket_id: str):
        self.ticket_id = ticket_id
        self.armed = True

    def plan(self, ctx: PlanContext, change: Change) -> None:
        if self.armed and change.kind == "breach" and change.ticket_id == self.ticket_id:
            raise RuntimeError("boom")


def _quick(eng: Engine, after: str = "PT1M") -> None:
    eng.deploy(parse_definition(quick_lifecycle(after), file="quick.yaml"))


def test_a_failing_timer_is_marked_failed_and_retried_with_backoff_while_the_rest_fire(
    engine: Engine,
) -> None:
    boom = _Boom("bad")
    engine.add_participant(boom)
    _quick(engine)
    for tid in ("good-1", "bad", "good-2"):
        engine.report("quick", {}, actor=CENTRE, ticket_id=tid)
    due = START + timedelta(minutes=1)

    fired = engine.run_until(START + timedelta(minutes=2))

    outcomes = [(f.timer.ticket_id, f.outcome) for f in fired]
    assert ("good-1", "breached") in outcomes and ("good-2", "breached") in outcomes
    # retried at 1 s, 2 s, 4 s, 8 s, 16 s after each failure: 08:01:00, :01, :03, :07, :15,
    # :31; the next try (32 s later, 08:02:03) is after the run
    assert [o for t, o in outcomes if t == "bad"] == ["failed"] * 6
    (timer,) = engine.timers("bad")
    assert (timer.status, timer.failures) == ("pending", 6)
    assert timer.last_error == "RuntimeError: boom"
    assert engine.next_due() == due + timedelta(seconds=63)
    assert [h.kind for h in engine.history("bad")] == ["report"]  # nothing of it written
    assert [v.rule for v in engine.check_invariants()] == ["timer_failed"]

    boom.armed = False  # the bug is fixed: the next try succeeds
    fired = engine.run_until(START + timedelta(minutes=3))
    assert [(f.timer.ticket_id, f.outcome) for f in fired] == [("bad", "breached")]
    (timer,) = engine.timers("bad")
    assert (timer.status, timer.failures) == ("fired", 6)
    assert [h.kind for h in engine.history("bad")] == ["report", "breach"]
    assert engine.check_invariants() == []


def test_firing_commits_a_bounded_number_of_timers_per_transaction(
    make_engine: Callable[..., Engine],
) -> None:
    eng = make_engine(timers_per_transaction=7)
    _quick(eng)
    with eng.batch():
        for i in range(50):
            eng.report("quick", {}, actor=CENTRE, ticket_id=f"t{i}")
    commits = []
    event.listen(eng.db.engine, "commit", lambda conn: commits.append(1))
    fired = eng.run_due(START + timedelta(minutes=5))
    assert sorted(f.timer.ticket_id for f in fired) == sorted(f"t{i}" for i in range(50))
    assert {f.outcome for f in fired} == {"breached"}
    # one claim transaction (200 at a time), then at most 7 timers per transaction
    assert len(commits) >= 1 + 50 // 7 + 1
    assert eng.check_invariants() == []


class _Slow(Participant):
    """Slow work on every breach (a participant doing real work); tells when it started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.breaches = 0

    def plan(self, ctx: PlanContext, change: Change) -> None:
        if change.kind == "breach":
            self.breaches += 1
            self.started.set()
            time.sleep(0.002)


def test_a_writer_is_served_between_firing_transactions_not_after_all_of_them(
    make_engine: Callable[..., Engine], db_path: Path,
) -> None:
    worker = make_engine(timers_per_transaction=10)
    slow = _Slow()
    worker.add_participant(slow)
    _quick(worker)
    with worker.batch():
        for i in range(300):
            worker.report("quick", {}, actor=CENTRE, ticket_id=f"t{i}")
    api = make_engine(db_path)
    seen: dict[str, int] = {}

    def write() -> None:
        slow.started.wait(timeout=30)
        api.report("quick", {}, actor=CENTRE, ticket_id="from-the-api")
        seen["breaches when the api write committed"] = slow.breaches

    writer = threading.Thread(target=write)
    writer.start()
    fired = worker.run_due(START + timedelta(minutes=5))
    writer.join(timeout=60)
    breached = {f.timer.ticket_id for f in fired if f.outcome == "breached"}
    assert breached >= {f"t{i}" for i in range(300)}  # (and the API's, if due by then)
    # the API write waited for the firing transaction in flight (and the ones queued before
    # it), not for all 300 timers: each transaction holds the lock for 10 timers at most
    assert seen["breaches when the api write committed"] < 150
    assert api.get("from-the-api").state == "open"


# -- PostgreSQL: two workers, timers of the same tickets in opposite orders ------------------

TWO_DEADLINES = """
format: 1
name: twice
initial: open
roles: {centre: {}, system: {}}
levels: [{name: one}, {name: two}, {name: three}, {name: four}, {name: five}]
report: {roles: centre}
fields: {second_at: {type: datetime}}
states: {open: {}, done: {final: true}}
transitions:
  - {trigger: escalate, source: open, dest: open, roles: [system], guards: [meet]}
  - {trigger: finish, source: open, dest: done, roles: centre}
deadlines:
  first: {state: open, after: PT1M, on_breach: escalate}
  second: {stop_in: [done], at_field: second_at, on_breach: escalate}
"""


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with store_url("postgres", tmp_path) as url:
        yield url


@pytest.mark.postgres
def test_two_postgres_workers_firing_timers_of_the_same_tickets_never_deadlock(
    pg_url: str,
) -> None:
    barrier = threading.Barrier(2, timeout=10)
    registry = Registry()

    @registry.guard("meet")
    def meet(ctx: Any) -> bool:  # both workers decide their first timer at the same moment
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return True

    clock = VirtualClock(START)
    setup = Engine(pg_url, clock=clock, registry=registry)
    a = Engine(pg_url, clock=clock, registry=registry, worker_id="a")
    b = Engine(pg_url, clock=clock, registry=registry, worker_id="b")
    try:
        setup.deploy(parse_definition(TWO_DEADLINES, file="twice.yaml"))
        setup.report("twice", {"second_at": START + timedelta(minutes=2, seconds=30)},
                     actor=CENTRE, ticket_id="A")
        clock.set(START + timedelta(seconds=30))
        setup.report("twice", {"second_at": START + timedelta(minutes=2)}, actor=CENTRE,
                     ticket_id="B")
        # due: A.first 08:01:00, B.first 08:01:30, B.second 08:02:00, A.second 08:02:30:
        # worker a fires tickets A then B, worker b tickets B then A, at the same time
        now = START + timedelta(minutes=3)
        with a.db.write() as conn:
            got_a = a.kernel.claims.claim_due(conn, now, inclusive=False, limit=2)
        with b.db.write() as conn:
            got_b = b.kernel.claims.claim_due(conn, now, inclusive=False, limit=2)
        assert [(r["ticket_id"], r["name"]) for r in got_a] == [("A", "first"), ("B", "first")]
        assert [(r["ticket_id"], r["name"]) for r in got_b] == [("B", "second"),
                                                                ("A", "second")]
        results: dict[str, Any] = {}

        def fire(worker: Engine, name: str) -> None:
            try:
                results[name] = worker.run_due(now)
            except Exception as exc:
                results[name] = exc

        threads = [threading.Thread(target=fire, args=(a, "a")),
                   threading.Thread(target=fire, args=(b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(isinstance(v, Exception) for v in results.values()), results
        # no timer fired twice: by timer row (an escalation re-enters its state and arms a
        # new timer of the same name, which a worker's loop may find due and fire too)
        ids = [f.timer.id for v in results.values() for f in v]
        assert len(ids) == len(set(ids))
        # Every claimed timer was settled once: fired (a breach and an escalation each), or
        # cancelled because the other worker's escalation re-entered its state first.
        statuses = {(t.ticket_id, t.name): t.status for t in setup.timers()
                    if t.id in {r["id"] for r in (*got_a, *got_b)}}
        assert set(statuses.values()) <= {"fired", "cancelled", "stale"}
        for tid in ("A", "B"):
            rows = [(h.kind, h.trigger) for h in setup.history(tid)]
            breaches = [r for r in rows if r[0] == "breach"]
            assert len(breaches) == rows.count(("transition", "escalate")) >= 1
            assert len(breaches) == sum(1 for (t, _), s in statuses.items()
                                        if t == tid and s == "fired")
        assert setup.check_invariants() == []
    finally:
        for eng in (setup, a, b):
            eng.stop()


# -- follow-ons ------------------------------------------------------------------------------


def test_a_refused_follow_on_is_recorded_on_the_ticket_not_swallowed(
    engine: Engine, centre: Actor,
) -> None:
    depts = Departments(engine)
    engine.report("grid_incident", {"category": "garbage", "area": "A1"}, actor=centre,
                  ticket_id="T1")
    order = depts.add_work_order("T1", "sanitation", actor=centre, role="lead")
    dept = Actor("san-1", "department")
    engine.fire(order.id, "accept", actor=dept)
    engine.fire(order.id, "finish", actor=dept)  # the rule is met; the ticket is 'reported'

    ticket = engine.get("T1")
    assert ticket.state == "reported"  # resolve from 'reported' is refused...
    last = engine.history("T1")[-1]    # ...and that is in the ticket's history
    assert (last.kind, last.trigger, last.role) == ("follow_on_refused", "resolve the ticket",
                                                    "system")
    assert last.data == {"refusal": "TriggerNotAllowed"}
    assert "resolve the ticket was refused" in (last.reason or "")
    assert engine.get(order.id).state == "done"  # the department's work stands
    assert engine.check_invariants() == []


def test_failed_timers_show_in_the_cli(engine: Engine, db_path: Path) -> None:
    engine.add_participant(_Boom("bad"))
    _quick(engine)
    engine.report("quick", {}, actor=CENTRE, ticket_id="bad")
    engine.report("quick", {}, actor=CENTRE, ticket_id="good")
    engine.run_due(START + timedelta(minutes=2))
    out = CliRunner().invoke(app, ["timers", "--db", str(db_path), "--failed", "--json"])
    assert out.exit_code == 0, out.output
    assert [(t["ticket_id"], t["failures"], t["last_error"]) for t in json.loads(out.output)] == [
        ("bad", 1, "RuntimeError: boom")]
    check = CliRunner().invoke(app, ["check", "--db", str(db_path)])
    assert check.exit_code != 0 and "timer_failed" in check.output


@pytest.mark.postgres
def test_a_firing_rolled_back_by_a_conflict_at_its_commit_is_not_reported(pg_url: str) -> None:
    """The ticket's row version moves under the worker twice (its chunk, then the retry of
    that timer alone, both fail at the commit): ``run_due`` reports only what committed —
    each timer once, though c-1's rolled-back retry was decided before it fired for good."""
    clock = VirtualClock(START)
    eng = Engine(pg_url, clock=clock)
    try:
        _quick(eng)
        eng.report("quick", {}, actor=CENTRE, ticket_id="c-1")
        eng.report("quick", {}, actor=CENTRE, ticket_id="c-2")
        spoiled = []

        @event.listens_for(eng.db.engine, "before_cursor_execute", retval=True)
        def stale(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                  executemany: bool) -> tuple[str, Any]:
            # another worker's commit, as the writer sees it: the version it read is gone
            # (the updates of a flush go as one executemany: a list of parameter dicts)
            if not statement.startswith("UPDATE gw_tickets") or len(spoiled) >= 2:
                return statement, parameters
            if isinstance(parameters, dict):
                parameters = [parameters]
                one = True
            else:
                one = False
            if any(p.get("b_id") == "c-1" for p in parameters):
                spoiled.append("c-1")
                parameters = [{**p, "b_version": -1} if p.get("b_id") == "c-1" else p
                              for p in parameters]
            return statement, parameters[0] if one else parameters

        fired = eng.run_due(START + timedelta(minutes=5))
        event.remove(eng.db.engine, "before_cursor_execute", stale)
        assert spoiled == ["c-1", "c-1"]  # the chunk, then c-1 alone: both rolled back
        ids = [f.timer.id for f in fired]
        assert len(ids) == len(set(ids))
        status = {t.id: t.status for t in eng.timers()}
        assert all(status[i] == "fired" for i in ids)  # each reported firing committed
        # c-1 is still this worker's claim: the next round fires it, once
        assert sorted(f.timer.ticket_id for f in fired) == ["c-1", "c-2"]
        assert [h.kind for h in eng.history("c-1")] == ["report", "breach"]
        assert [h.kind for h in eng.history("c-2")] == ["report", "breach"]
    finally:
        eng.stop()


@pytest.mark.postgres
def test_a_postgresql_firing_reads_ahead_only_as_many_tickets_as_it_fires(pg_url: str) -> None:
    """A transaction that ends after one timer (max_hold reached) made the next one read its
    whole chunk of 20 tickets again: 20 reads a timer. Now the read-ahead follows what the
    last transaction fired, and every timer still fires once."""
    clock = VirtualClock(START)
    eng = Engine(pg_url, clock=clock)
    try:
        _quick(eng)
        with eng.batch():
            for i in range(30):
                eng.report("quick", {}, actor=CENTRE, ticket_id=f"p-{i:02d}")
        dispatcher = eng.kernel.dispatcher
        dispatcher.max_hold = 0.0  # every transaction ends after its first timer
        handler = eng.kernel.handler
        asked: list[int] = []
        preload = handler.preload

        def counted(ticket_ids: list[str]) -> None:
            asked.append(len(ticket_ids))
            preload(ticket_ids)

        handler.preload = counted  # type: ignore[method-assign]
        fired = eng.run_due(START + timedelta(minutes=5))
        assert sorted(f.timer.ticket_id for f in fired) == [f"p-{i:02d}" for i in range(30)]
        assert len(asked) == 30  # one transaction per timer
        assert asked[0] == 20 and max(asked[1:]) <= 2  # then only what it fires (before: 20)
        assert sum(asked) <= 20 + 2 * 29
    finally:
        eng.stop()
