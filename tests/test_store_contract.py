"""The store contract, on a SQLite file and on PostgreSQL: the same behaviour on both.

Optimistic locking (threads and processes), idempotent commands, timer claims under a lease,
the resolve-versus-deadline race, and reloads from a fresh Engine.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import workers
from backends import BACKENDS, store_url
from helpers import at, quick_lifecycle
from sqlalchemy import func, select

from engine import (
    Actor,
    ConcurrencyConflict,
    Engine,
    IdempotencyKeyReused,
    Registry,
    TriggerNotAllowed,
    VirtualClock,
    parse_definition,
)
from engine.definition import bundled_workflows_dir
from engine.store import idempotency, timers

LC = "grid_incident"
GW = Actor("gw-1", "centre")
CENTRE = Actor("ops-1", "centre")
DEPT = Actor("water-3", "department")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
def open_engine(url: str) -> Iterator[Callable[..., Engine]]:
    """Engines on the test's store (each with its own clock unless given); stopped at the end."""
    opened: list[Engine] = []

    def make(**kwargs: Any) -> Engine:
        kwargs.setdefault("clock", VirtualClock(at(8)))
        eng = Engine(url, **kwargs)
        opened.append(eng)
        return eng

    yield make
    for eng in opened:
        eng.stop()


def _dispatched(eng: Engine, tid: str = "T1") -> None:
    eng.report(LC, {"category": "blocked drain"}, actor=GW, ticket_id=tid)
    eng.fire(tid, "dispatch", actor=CENTRE, fields={"department": "water"})


def _count(eng: Engine, table: Any) -> int:
    with eng.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- reloads ---------------------------------------------------------------------------------


def test_a_fresh_engine_sees_everything_and_goes_on(open_engine: Callable[..., Engine]) -> None:
    first = open_engine()
    _dispatched(first)
    ticket, hist, tms = first.get("T1"), first.history("T1"), first.timers("T1")
    first.stop()
    fresh = open_engine()
    assert (fresh.get("T1"), fresh.history("T1"), fresh.timers("T1")) == (ticket, hist, tms)
    assert fresh.fire("T1", "arrive", actor=DEPT).row_version == 3
    assert fresh.check_invariants() == []


# -- optimistic locking ----------------------------------------------------------------------


def test_expected_version_conflict_names_ticket_and_both_versions(
        open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    _dispatched(eng)
    seen = eng.get("T1").row_version
    assert seen == 2
    eng.fire("T1", "arrive", actor=DEPT, expected_version=seen)          # wins
    before = (eng.get("T1"), eng.history("T1"), eng.timers("T1"))
    with pytest.raises(ConcurrencyConflict) as err:
        eng.escalate("T1", actor=CENTRE, reason="slow", expected_version=seen)
    assert (err.value.ticket_id, err.value.expected_version, err.value.actual_version) == (
        "T1", 2, 3)
    assert "'T1'" in str(err.value) and "reload" in str(err.value)
    assert (eng.get("T1"), eng.history("T1"), eng.timers("T1")) == before
    retried = eng.escalate("T1", actor=CENTRE, reason="slow",
                           expected_version=eng.get("T1").row_version)
    assert (retried.state, retried.level, retried.row_version) == ("escalated", "street", 4)


def test_two_threads_on_one_ticket_one_wins_one_conflicts(
        open_engine: Callable[..., Engine]) -> None:
    setup = open_engine()
    _dispatched(setup)
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def worker(trigger: str, actor: Actor, reason: str | None) -> None:
        eng = open_engine()
        version = eng.get("T1").row_version
        barrier.wait(timeout=30)
        try:
            results[trigger] = eng.fire("T1", trigger, actor=actor, reason=reason,
                                        expected_version=version).row_version
        except ConcurrencyConflict as exc:
            results[trigger] = exc

    threads = [threading.Thread(target=worker, args=("arrive", DEPT, None)),
               threading.Thread(target=worker, args=("escalate", CENTRE, "slow"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    conflicts = [v for v in results.values() if isinstance(v, ConcurrencyConflict)]
    wins = [v for v in results.values() if v == 3]
    assert len(conflicts) == 1 and len(wins) == 1
    assert (conflicts[0].expected_version, conflicts[0].actual_version) == (2, 3)
    assert len(setup.history("T1")) == 3
    assert setup.check_invariants() == []


def test_two_processes_on_one_ticket_one_wins_the_other_retries(
        url: str, open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    _dispatched(eng)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=workers.fire_with_version,
                         args=(url, "T1", "arrive", "department", None, barrier, results)),
             ctx.Process(target=workers.fire_with_version,
                         args=(url, "T1", "escalate", "centre", "slow", barrier, results))]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    outcomes = sorted(g[1] for g in got)
    assert outcomes == ["conflict", "won"]
    loser = next(g for g in got if g[1] == "conflict")
    assert loser[2:] == (2, 3)
    # the loser reloads and retries: both triggers are allowed after the other one
    trigger = loser[0]
    actor, reason = (DEPT, None) if trigger == "arrive" else (CENTRE, "slow")
    retried = eng.fire("T1", trigger, actor=actor, reason=reason,
                       expected_version=eng.get("T1").row_version)
    assert retried.row_version == 4
    assert [h.trigger for h in eng.history("T1")][2:] == sorted(
        ["arrive", "escalate"], key=lambda t: t != next(g[0] for g in got if g[1] == "won"))
    assert eng.check_invariants() == []


@pytest.mark.parametrize("url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_postgres_conditional_update_catches_writers_that_read_the_same_version(
        open_engine: Callable[..., Engine]) -> None:
    # Both commands read version 2 inside their transactions (a host guard holds them there
    # until both have read); the conditional UPDATE lets one through. On SQLite the write
    # transactions are serialised by BEGIN IMMEDIATE, so the second reads version 3 instead.
    barrier = threading.Barrier(2)
    registry = Registry()
    registry.guard("both_read")(lambda ctx: barrier.wait(timeout=30) >= 0)
    text = (bundled_workflows_dir() / "grid_incident.yaml").read_text(encoding="utf-8")
    text = text.replace("    dest: on_site\n    roles: [department]",
                        "    dest: on_site\n    roles: [department]\n    guards: [both_read]")
    text = text.replace("    dest: escalated\n    roles: [system, centre]",
                        "    dest: escalated\n    roles: [system, centre]\n    guards: [both_read]")
    setup = open_engine(registry=registry)
    setup.deploy(parse_definition(text, file="grid_incident_guarded.yaml"))
    _dispatched(setup)
    results: list[Any] = []

    def worker(trigger: str, actor: Actor, reason: str | None) -> None:
        eng = open_engine(registry=registry)
        try:
            results.append(eng.fire("T1", trigger, actor=actor, reason=reason).row_version)
        except ConcurrencyConflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker, args=("arrive", DEPT, None)),
               threading.Thread(target=worker, args=("escalate", CENTRE, "slow"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert len(conflicts) == 1 and 3 in results
    assert (conflicts[0].expected_version, conflicts[0].actual_version) == (2, 3)
    assert len(setup.history("T1")) == 3
    assert setup.check_invariants() == []


# -- idempotency -----------------------------------------------------------------------------


def test_report_retried_with_its_key_creates_one_ticket(open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    first = eng.report(LC, {"category": "drain", "target_at": at(20)}, actor=GW,
                       idempotency_key="rep-1")
    again = open_engine().report(LC, {"category": "drain", "target_at": at(20)}, actor=GW,
                                 idempotency_key="rep-1")
    assert again == first  # same generated id, same snapshot (typed fields included)
    assert again.fields["target_at"] == at(20)
    assert _count(eng, idempotency) == 1
    assert [h.trigger for h in eng.history(first.id)] == ["report"]
    with eng.db.read() as conn:  # its two deadline timers (SLA and ladder timers: name:...)
        assert conn.execute(select(func.count()).select_from(timers)
                            .where(timers.c.name.not_like("%:%"))).scalar_one() == 2


def test_fire_retried_with_its_key_applies_once(open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    eng.report(LC, {"category": "drain"}, actor=GW, ticket_id="T1")
    first = eng.fire("T1", "dispatch", actor=CENTRE, fields={"department": "water"},
                     idempotency_key="k-dispatch")
    eng.fire("T1", "arrive", actor=DEPT)
    again = eng.fire("T1", "dispatch", actor=CENTRE, fields={"department": "water"},
                     idempotency_key="k-dispatch")
    assert again == first
    assert (again.state, again.row_version) == ("dispatched", 2)
    assert eng.get("T1").state == "on_site"
    assert [h.trigger for h in eng.history("T1")] == ["report", "dispatch", "arrive"]
    esc = eng.escalate("T1", actor=CENTRE, reason="slow", idempotency_key="k-esc")
    assert eng.escalate("T1", actor=CENTRE, reason="slow", idempotency_key="k-esc") == esc
    assert eng.get("T1").level == "street"
    assert eng.check_invariants() == []


def test_same_key_with_other_content_is_refused_and_changes_nothing(
        open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    _dispatched(eng)
    eng.fire("T1", "arrive", actor=DEPT, idempotency_key="k1")
    before = (eng.get("T1"), eng.history("T1"), eng.timers("T1"))
    for call in (
        lambda: eng.fire("T1", "resolve", actor=DEPT, idempotency_key="k1"),
        lambda: eng.escalate("T1", actor=DEPT, reason="x", idempotency_key="k1"),
        lambda: eng.report(LC, {"category": "drain"}, actor=DEPT, idempotency_key="k1"),
    ):
        with pytest.raises(IdempotencyKeyReused) as err:
            call()
        assert (err.value.key, err.value.ticket_id, err.value.command) == ("k1", "T1", "fire")
    assert (eng.get("T1"), eng.history("T1"), eng.timers("T1")) == before
    assert _count(eng, idempotency) == 1
    # keys are scoped per actor: another department's "k1" is a key of its own
    with pytest.raises(TriggerNotAllowed):
        eng.fire("T1", "arrive", actor=Actor("other", "department"), idempotency_key="k1")
    resolved = eng.fire("T1", "resolve", actor=Actor("other", "department"),
                        idempotency_key="k1")
    assert resolved.state == "resolved" and _count(eng, idempotency) == 2


def test_a_refused_command_leaves_its_key_unused(open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    eng.report(LC, {"category": "drain"}, actor=GW, ticket_id="T1")
    with pytest.raises(TriggerNotAllowed):
        eng.fire("T1", "arrive", actor=DEPT, idempotency_key="k2")
    assert _count(eng, idempotency) == 0
    eng.fire("T1", "dispatch", actor=CENTRE, fields={"department": "water"})
    assert eng.fire("T1", "arrive", actor=DEPT, idempotency_key="k2").state == "on_site"


def test_two_processes_sending_one_key_apply_it_once(
        url: str, open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    eng.report(LC, {"category": "drain"}, actor=GW, ticket_id="T1")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=workers.fire_keyed, args=(url, "T1", "same", barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got == [("dispatched", 2), ("dispatched", 2)]
    assert [h.trigger for h in eng.history("T1")] == ["report", "dispatch"]
    assert _count(eng, idempotency) == 1


# -- timer claims ----------------------------------------------------------------------------


def test_a_dead_workers_claim_is_taken_over_after_its_lease(
        open_engine: Callable[..., Engine]) -> None:
    a = open_engine(worker_id="worker-a", lease_seconds=60)
    b = open_engine(worker_id="worker-b", lease_seconds=60)
    a.report(LC, {"category": "drain"}, actor=GW, ticket_id="T1")   # dispatch_due 08:30
    with a.db.write() as conn:       # worker A claims the timer, then dies before firing it
        claimed = a.kernel.claims.claim_due(conn, at(8, 31), inclusive=False, limit=10)
    assert [(r["name"], r["claimed_by"], r["lease_until"]) for r in claimed] == [
        ("dispatch_due", "worker-a", at(8, 32))]
    assert b.run_due(at(8, 31, )) == []              # A's lease still holds
    assert b.run_due(at(8, 31, ) + timedelta(seconds=59)) == []
    assert b.next_due() == at(8, 32)                  # when B may take it over
    fired = b.run_due(at(8, 32))
    assert [(f.timer.name, f.outcome) for f in fired] == [("dispatch_due", "escalated")]
    assert a.run_due(at(9)) == []    # A comes back: its claim is gone, it fires nothing
    tm = next(t for t in b.timers("T1") if t.name == "dispatch_due")
    assert (tm.status, tm.fired_at) == ("fired", at(8, 32))
    assert [h.trigger for h in b.history("T1")] == ["report", "dispatch_due", "escalate"]
    assert b.check_invariants() == []


def test_resolve_committed_before_a_claimed_deadline_fires_means_no_escalation(
        open_engine: Callable[..., Engine]) -> None:
    host = open_engine()
    worker = open_engine(worker_id="worker")
    target = at(12)
    host.report(LC, {"category": "drain", "target_at": target}, actor=GW, ticket_id="T1")
    host.fire("T1", "dispatch", actor=CENTRE, fields={"department": "water"})
    host.clock.set(at(11))  # type: ignore[attr-defined]
    host.fire("T1", "arrive", actor=DEPT)
    with worker.db.write() as conn:  # the worker claims the resolution deadline (due 12:00)...
        claimed = worker.kernel.claims.claim_due(conn, target + timedelta(seconds=1),
                                           inclusive=False, limit=10)
    assert [r["name"] for r in claimed] == ["resolution"]
    host.clock.set(target)  # type: ignore[attr-defined]
    resolved = host.fire("T1", "resolve", actor=DEPT)   # ...the resolve commits at 12:00...
    assert resolved.state == "resolved"
    fired = worker.run_due(target + timedelta(seconds=1))   # ...then the worker fires
    assert fired == []
    assert [h.trigger for h in host.history("T1")] == ["report", "dispatch", "arrive", "resolve"]
    got = host.get("T1")
    assert (got.state, got.level, got.overdue) == ("resolved", "community", False)
    assert {t.name: t.status for t in host.timers("T1")}["resolution"] == "cancelled"
    assert host.check_invariants() == []


def test_concurrent_run_due_in_threads_fires_each_timer_once(
        open_engine: Callable[..., Engine]) -> None:
    setup = open_engine()
    with setup.batch():
        for i in range(60):
            setup.report(LC, {"category": "drain"}, actor=GW, ticket_id=f"T{i:03d}")
    now = at(9)
    outcomes: list[Any] = []
    barrier = threading.Barrier(3)

    def worker(name: str) -> None:
        eng = open_engine(worker_id=name)
        barrier.wait(timeout=30)
        outcomes.extend(eng.run_due(now))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    ids = [f.timer.id for f in outcomes]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert {f.outcome for f in outcomes} == {"escalated"}
    pending = [t.name for t in setup.timers(status="pending") if t.name.startswith("ladder:")]
    assert pending == ["ladder:street"] * 60  # each escalated ticket's new level budget
    assert setup.check_invariants() == []


def test_instants_from_the_claims_are_utc(open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    eng.report(LC, {"category": "drain"}, actor=GW, ticket_id="T1")
    nxt = eng.next_due()
    assert nxt == datetime(2024, 5, 1, 8, 30, tzinfo=UTC) and nxt.utcoffset() == timedelta(0)


def test_a_worker_process_killed_after_claiming_is_taken_over(
        url: str, open_engine: Callable[..., Engine]) -> None:
    eng = open_engine(worker_id="survivor")
    with eng.batch():
        for i in range(20):
            eng.report(LC, {"category": "drain"}, actor=GW, ticket_id=f"T{i:02d}")
    now = at(9)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=workers.claim_and_die, args=(url, now.isoformat()))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -9  # SIGKILL
    held = [t for t in eng.timers(status="pending") if t.due_at <= now]
    assert len(held) == 20
    with eng.db.read() as conn:
        owners = set(conn.execute(select(timers.c.claimed_by)
                                  .where(timers.c.due_at <= now)).scalars())
    assert owners == {"dying-worker"}
    assert eng.run_due(now + timedelta(seconds=59)) == []      # the lease still holds
    assert eng.next_due() == now + timedelta(seconds=60)
    fired = eng.run_due(now + timedelta(seconds=60))
    assert sorted(f.timer.ticket_id for f in fired) == [f"T{i:02d}" for i in range(20)]
    assert {f.outcome for f in fired} == {"escalated"}
    assert eng.check_invariants() == []


def test_refused_commands_and_the_tie_rule_behave_alike(
        open_engine: Callable[..., Engine]) -> None:
    eng = open_engine()
    eng.report(LC, {"category": "drain", "target_at": at(12)}, actor=GW, ticket_id="T1")
    eng.fire("T1", "dispatch", actor=CENTRE, fields={"department": "water"})
    before = (eng.get("T1"), eng.history("T1"), eng.timers("T1"))
    with pytest.raises(TriggerNotAllowed) as err:
        eng.fire("T1", "close", actor=CENTRE)
    assert err.value.allowed == ("arrive", "escalate", "merge", "void")
    assert (eng.get("T1"), eng.history("T1"), eng.timers("T1")) == before
    eng.fire("T1", "arrive", actor=DEPT)
    assert eng.run_until(at(12)) == []            # due at 12:00: not breached at 12:00
    eng.fire("T1", "resolve", actor=DEPT)         # a resolve at 12:00 meets it
    assert eng.run_until(at(13)) == []
    got = eng.get("T1")
    assert (got.state, got.overdue, got.updated_at) == ("resolved", False, at(12))
    assert got.updated_at.utcoffset() == timedelta(0)
    assert eng.check_invariants() == []


QUICK = quick_lifecycle("PT0.3S")


def test_two_started_engines_share_real_time_deadlines(url: str) -> None:
    import time

    engines = [Engine(url, sweep_seconds=0.05, worker_id=f"node-{n}") for n in range(2)]
    try:
        engines[0].deploy(parse_definition(QUICK, file="quick.yaml"))
        for eng in engines:
            eng.start()   # each process-like engine has its own APScheduler wake-up clock
        for i in range(30):
            engines[i % 2].report("quick", {}, actor=CENTRE, ticket_id=f"Q{i:02d}")
        deadline = time.monotonic() + 60   # wait for the wake-ups (not a speed test)
        while engines[0].timers(status="pending") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for eng in engines:
            eng.stop()
    eng = Engine(url)
    try:
        assert [t.status for t in eng.timers()] == ["fired"] * 30
        breaches = [h for i in range(30) for h in eng.history(f"Q{i:02d}") if h.kind == "breach"]
        assert len(breaches) == 30
        assert eng.check_invariants() == []
    finally:
        eng.stop()


@pytest.mark.parametrize("url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_postgres_workers_claim_disjoint_batches_without_waiting(
        open_engine: Callable[..., Engine]) -> None:
    a, b = open_engine(worker_id="a"), open_engine(worker_id="b")
    with a.batch():
        for i in range(10):
            a.clock.set(at(8, i))  # type: ignore[attr-defined]
            a.report(LC, {"category": "drain"}, actor=GW, ticket_id=f"T{i}")
    with a.db.write() as conn_a:
        first = a.kernel.claims.claim_due(conn_a, at(10), inclusive=False, limit=4)
        # A's claim is not committed yet: its rows are locked; B skips them, without waiting
        with b.db.write() as conn_b:
            second = b.kernel.claims.claim_due(conn_b, at(10), inclusive=False, limit=4)
    assert [r["ticket_id"] for r in first] == ["T0", "T1", "T2", "T3"]
    assert [r["ticket_id"] for r in second] == ["T4", "T5", "T6", "T7"]
    assert {r["claimed_by"] for r in second} == {"b"}
