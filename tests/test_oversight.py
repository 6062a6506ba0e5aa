"""Oversight (issue 11): extension requests, suspensions, supervision notices.

Approving an extension moves the deadline (the breach fires at the new instant, not the
old); refusing keeps it; both dues are kept and counted. A suspension holds the deadlines
and the SLA clock (the measured resolution time excludes it) within its limits; the system
resumes it at the limit. Every refusal leaves the ticket and its history as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import START, deadline_timers

from engine import (
    Actor,
    Departments,
    Engine,
    InvalidFields,
    OversightRefused,
    RoleNotAllowed,
    VirtualClock,
    build_report,
    parse_definition,
)

CENTRE = Actor("ops-1", "centre")
WATER = Actor("water-3", "department")
H = timedelta(hours=1)

MINI = """format: 1
name: mini
initial: open
roles: {centre: {}, department: {}, system: {}}
levels: [{name: community}]
fields:
  department: {type: string}
report: {roles: centre}
states: {open: {}, working: {}, done: {final: true}}
transitions:
  - {trigger: start, source: open, dest: working, roles: [centre, department]}
  - {trigger: recheck, source: working, dest: working, roles: [centre, department]}
  - {trigger: finish, source: working, dest: done, roles: [centre, department]}
deadlines:
  work_due: {state: working, after: PT4H, on_breach: record}
  resolution: {stop_in: [done], after: P1D, on_breach: record}
resolution_deadline: resolution
slas:
  time_to_resolve:
    stop: {states: [done]}
    target: PT8H
oversight:
  extension:
    deadlines: [work_due, resolution]
    max_extensions: 1
    max_length: P2D
  suspension:
    causes:
      weather: {title: {zh: 恶劣天气, en: Bad weather}}
    max_duration: P1D
    max_count: 1
  supervision: {}
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "o.sqlite", clock=VirtualClock(START))
    e.deploy(parse_definition(MINI))
    yield e
    e.stop()


def _working(engine: Engine, tid: str) -> None:
    engine.report("mini", {"department": "water"}, actor=CENTRE, ticket_id=tid)
    engine.fire(tid, "start", actor=CENTRE)


def _due(engine: Engine, tid: str) -> dict[str, object]:
    return {t.name: t.due_at for t in deadline_timers(engine, tid, status="pending")}


def _snapshot(engine: Engine, tid: str) -> tuple[object, ...]:
    return (engine.get(tid), engine.history(tid), engine.timers(tid),
            engine.time_requests(tid), engine.sla_clocks(tid))


def test_an_approved_extension_moves_the_deadline_and_the_breach_fires_then(
        engine: Engine) -> None:
    _working(engine, "T-1")
    engine.clock.set(START + H)  # type: ignore[attr-defined]
    req = engine.request_extension("T-1", "work_due", proposed_due=START + 7 * H,
                                   reason="the pump arrives at noon", actor=WATER)
    assert (req.n, req.status, req.deadline, req.department, req.original_due,
            req.proposed_due) == (1, "open", "work_due", "water", START + 4 * H, START + 7 * H)
    assert _due(engine, "T-1")["work_due"] == START + 4 * H  # asking moves nothing
    engine.clock.set(START + 2 * H)  # type: ignore[attr-defined]
    done = engine.decide_extension("T-1", 1, approve=True, reason="agreed", actor=CENTRE)
    assert (done.status, done.new_due, done.extended_seconds, done.original_due,
            done.decided_by) == ("approved", START + 7 * H, 3 * 3600.0, START + 4 * H, "ops-1")
    assert _due(engine, "T-1")["work_due"] == START + 7 * H
    assert engine.run_until(START + 6 * H) == []  # the old due passed: no breach
    fired = engine.run_until(START + 8 * H)
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("work_due", START + 7 * H, "breached")]
    rows = [(h.kind, h.trigger, h.actor, h.reason) for h in engine.history("T-1")]
    assert rows == [
        ("report", "report", "ops-1", None), ("transition", "start", "ops-1", None),
        ("extension_requested", "work_due", "water-3", "the pump arrives at noon"),
        ("extension_approved", "work_due", "ops-1", "agreed"),
        ("breach", "work_due", "gridwhistle", "deadline 'work_due' due "
         "2024-05-01T15:00:00+00:00 was missed")]
    approved = engine.history("T-1")[3].data
    assert approved == {"n": 1, "deadline": "work_due",
                        "new_due": "2024-05-01T15:00:00+00:00",
                        "original_due": "2024-05-01T12:00:00+00:00"}
    assert engine.check_invariants() == []


def test_a_refused_extension_keeps_the_deadline(engine: Engine) -> None:
    _working(engine, "T-2")
    engine.request_extension("T-2", "work_due", proposed_due=START + 6 * H,
                             reason="more time", actor=WATER)
    refused = engine.decide_extension("T-2", 1, approve=False, reason="no: urgent",
                                      actor=CENTRE)
    assert (refused.status, refused.new_due, refused.decision_reason) == (
        "refused", None, "no: urgent")
    assert _due(engine, "T-2")["work_due"] == START + 4 * H
    fired = engine.run_until(START + 5 * H)
    assert [(f.timer.name, f.timer.due_at) for f in fired] == [("work_due", START + 4 * H)]
    assert [h.kind for h in engine.history("T-2")][2:] == [
        "extension_requested", "extension_refused", "breach"]


def test_extension_refusals_leave_ticket_and_history_unchanged(engine: Engine) -> None:
    _working(engine, "T-3")
    before = _snapshot(engine, "T-3")

    def refused(why: str, **kw: object) -> None:
        args = {"deadline": "work_due", "proposed_due": START + 6 * H, "reason": "x",
                "actor": WATER, **kw}
        with pytest.raises(OversightRefused) as err:
            engine.request_extension("T-3", args.pop("deadline"), **args)  # type: ignore[arg-type]
        assert err.value.why == why
        assert _snapshot(engine, "T-3") == before

    refused("not_later", proposed_due=START + 3 * H)
    refused("too_long", proposed_due=START + 4 * H + timedelta(days=2, seconds=1))
    refused("deadline_not_extensible", deadline="nope")
    with pytest.raises(RoleNotAllowed):
        engine.request_extension("T-3", "work_due", proposed_due=START + 6 * H,
                                 reason="x", actor=CENTRE)
    with pytest.raises(InvalidFields):
        engine.request_extension("T-3", "work_due", proposed_due=START + 6 * H,
                                 reason="  ", actor=WATER)
    with pytest.raises(InvalidFields):
        engine.request_extension("T-3", "work_due",
                                 proposed_due=(START + 6 * H).replace(tzinfo=None),
                                 reason="x", actor=WATER)
    assert _snapshot(engine, "T-3") == before

    engine.request_extension("T-3", "work_due", proposed_due=START + 6 * H, reason="x",
                             actor=WATER)
    after_request = _snapshot(engine, "T-3")
    with pytest.raises(OversightRefused) as err:
        engine.request_extension("T-3", "work_due", proposed_due=START + 7 * H, reason="y",
                                 actor=WATER)
    assert err.value.why == "open_request"
    with pytest.raises(RoleNotAllowed):
        engine.decide_extension("T-3", 1, approve=True, reason="self-approved", actor=WATER)
    with pytest.raises(OversightRefused) as err:
        engine.decide_extension("T-3", 2, approve=True, reason="?", actor=CENTRE)
    assert err.value.why == "unknown_request"
    assert _snapshot(engine, "T-3") == after_request

    engine.decide_extension("T-3", 1, approve=True, reason="ok", actor=CENTRE)
    with pytest.raises(OversightRefused) as err:
        engine.decide_extension("T-3", 1, approve=True, reason="again", actor=CENTRE)
    assert err.value.why == "not_open"
    with pytest.raises(OversightRefused) as err:  # max_extensions: 1
        engine.request_extension("T-3", "work_due", proposed_due=START + 8 * H, reason="z",
                                 actor=WATER)
    assert err.value.why == "limit_reached"
    assert err.value.details["deadline"] == "work_due"  # its own detail, for the console


def test_a_suspension_holds_deadlines_and_the_sla_clock(engine: Engine) -> None:
    _working(engine, "S-1")
    engine.clock.set(START + H)  # type: ignore[attr-defined]
    sus = engine.suspend("S-1", "weather", reason="typhoon warning", actor=CENTRE)
    assert (sus.n, sus.status, sus.cause, sus.department, sus.proposed_due) == (
        1, "active", "weather", "water", START + H + timedelta(days=1))
    assert _due(engine, "S-1") == {}
    assert [(t.name, t.due_at) for t in engine.timers("S-1", status="pending")] == [
        ("oversight:resume", START + 25 * H)]
    (clock,) = engine.sla_clocks("S-1")
    assert (clock.status, clock.elapsed, clock.due_at) == ("suspended", H, None)
    before = _snapshot(engine, "S-1")
    with pytest.raises(OversightRefused) as err:
        engine.fire("S-1", "recheck", actor=WATER)
    assert err.value.why == "suspended"
    with pytest.raises(OversightRefused) as err:
        engine.suspend("S-1", "weather", reason="again", actor=CENTRE)
    assert err.value.why == "suspended"
    assert _snapshot(engine, "S-1") == before
    assert engine.check_invariants() == []

    engine.clock.set(START + 3 * H)  # type: ignore[attr-defined]
    ended = engine.resume("S-1", reason="the warning is lifted", actor=CENTRE)
    assert (ended.status, ended.ended_at, ended.suspended_seconds) == (
        "ended", START + 3 * H, 7200.0)
    assert _due(engine, "S-1") == {"work_due": START + 6 * H,
                                   "resolution": START + 26 * H}
    (clock,) = engine.sla_clocks("S-1")
    assert (clock.status, clock.due_at) == ("running", START + 10 * H)
    assert engine.check_invariants() == []
    with pytest.raises(OversightRefused) as err:  # max_count: 1
        engine.suspend("S-1", "weather", reason="once more", actor=CENTRE)
    assert err.value.why == "limit_reached"

    engine.clock.set(START + 5 * H)  # type: ignore[attr-defined]
    engine.fire("S-1", "finish", actor=WATER)
    (clock,) = engine.sla_clocks("S-1")
    assert (clock.status, clock.elapsed, clock.outcome) == ("stopped", 3 * H, "met")
    assert [h.kind for h in engine.history("S-1")] == [
        "report", "transition", "suspended", "resumed", "transition"]
    assert engine.check_invariants() == []


def test_the_system_resumes_a_suspension_at_its_limit(engine: Engine) -> None:
    _working(engine, "S-2")
    with pytest.raises(OversightRefused) as err:
        engine.suspend("S-2", "weather", reason="x", actor=CENTRE,
                       until=START + timedelta(days=1, seconds=1))
    assert err.value.why == "too_long"
    with pytest.raises(OversightRefused) as err:
        engine.suspend("S-2", "snow", reason="x", actor=CENTRE)
    assert err.value.why == "unknown_cause"
    engine.suspend("S-2", "weather", reason="storm", actor=CENTRE, until=START + 2 * H)
    fired = engine.run_until(START + 3 * H)
    assert [(f.timer.name, f.outcome) for f in fired] == [("oversight:resume", "resumed")]
    last = engine.history("S-2")[-1]
    assert (last.kind, last.actor, last.data["by"], last.data["suspended_seconds"]) == (
        "resumed", "gridwhistle", "limit", 7200.0)
    assert _due(engine, "S-2") == {"work_due": START + 6 * H, "resolution": START + 26 * H}
    (req,) = engine.time_requests("S-2", "suspension")
    assert (req.status, req.suspended_seconds) == ("ended", 7200.0)
    assert engine.check_invariants() == []


def test_a_ticket_ending_while_suspended_ends_the_suspension(engine: Engine) -> None:
    _working(engine, "S-3")
    engine.suspend("S-3", "weather", reason="storm", actor=CENTRE)
    engine.clock.set(START + H)  # type: ignore[attr-defined]
    engine.fire("S-3", "finish", actor=CENTRE)
    assert engine.timers("S-3", status="pending") == []
    (req,) = engine.time_requests("S-3")
    assert (req.status, req.ended_at, req.suspended_seconds) == ("ended", START + H, 3600.0)
    assert engine.sla_clocks("S-3")[0].status == "stopped"
    assert engine.check_invariants() == []


def test_supervision_notices_are_recorded_and_counted(engine: Engine) -> None:
    _working(engine, "N-1")
    notice = engine.send_supervision_notice("N-1", text="report progress by 17:00",
                                            actor=CENTRE, reply_due=START + 9 * H)
    assert (notice.seq, notice.department, notice.text, notice.reply_due) == (
        3, "water", "report progress by 17:00", START + 9 * H)
    assert engine.supervision_notices("N-1") == [notice]
    last = engine.history("N-1")[-1]
    assert (last.kind, last.trigger, last.reason, last.data) == (
        "supervision_notice", "supervision", "report progress by 17:00",
        {"department": "water", "reply_due": "2024-05-01T17:00:00+00:00"})
    before = _snapshot(engine, "N-1")
    with pytest.raises(RoleNotAllowed):
        engine.send_supervision_notice("N-1", text="hurry", actor=WATER)
    with pytest.raises(OversightRefused):
        engine.send_supervision_notice("N-1", text="late", actor=CENTRE,
                                       reply_due=START - H)
    assert _snapshot(engine, "N-1") == before


def test_reports_count_extensions_suspensions_and_notices(engine: Engine) -> None:
    _working(engine, "R-1")
    engine.request_extension("R-1", "resolution", proposed_due=START + 30 * H, reason="a",
                             actor=WATER)
    engine.decide_extension("R-1", 1, approve=True, reason="ok", actor=CENTRE)
    engine.request_extension("R-1", "work_due", proposed_due=START + 5 * H, reason="b",
                             actor=WATER)
    engine.decide_extension("R-1", 2, approve=False, reason="no", actor=CENTRE)
    engine.suspend("R-1", "weather", reason="c", actor=CENTRE)
    engine.clock.set(START + 90 * timedelta(minutes=1))  # type: ignore[attr-defined]
    engine.resume("R-1", reason="d", actor=CENTRE)
    engine.send_supervision_notice("R-1", text="e", actor=CENTRE)
    _working(engine, "R-2")
    engine.send_supervision_notice("R-2", text="f", actor=CENTRE)
    total = build_report(engine, "mini").total.values
    assert {k: total[k] for k in ("extensions_requested", "extensions_approved",
                                  "extensions_refused", "extended_s", "suspensions",
                                  "suspended_s", "supervision_notices")} == {
        "extensions_requested": 2, "extensions_approved": 1, "extensions_refused": 1,
        "extended_s": 6 * 3600.0, "suspensions": 1, "suspended_s": 5400.0,
        "supervision_notices": 2}


def test_work_orders_extensions_count_for_their_department(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "w.sqlite", clock=VirtualClock(START))
    try:
        engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"},
                      actor=CENTRE, ticket_id="G-1")
        lead, co = Departments(engine).dispatch("G-1", actor=CENTRE)
        assert (lead.department, co.department) == ("water", "sanitation")
        engine.request_extension(lead.id, "resolution", proposed_due=START + 30 * H,
                                 reason="pipe", actor=WATER)
        done = engine.decide_extension(lead.id, 1, approve=True, reason="ok", actor=CENTRE)
        assert (done.parent_id, done.department, done.extended_seconds) == (
            "G-1", "water", 6 * 3600.0)
        assert {t.name: t.due_at for t in deadline_timers(engine, lead.id, status="pending")
                }["resolution"] == START + 30 * H
        engine.send_supervision_notice(co.id, text="join the water team", actor=CENTRE)
        by_dept = build_report(engine, "grid_incident", by="department", lang="en")
        rows = {g.key: (g.values["extensions_approved"], g.values["extended_s"],
                        g.values["supervision_notices"]) for g in by_dept.groups}
        assert rows == {"water": (1, 21600.0, 0), "sanitation": (0, 0.0, 1)}
        assert (by_dept.total.values["extensions_approved"],
                by_dept.total.values["supervision_notices"]) == (1, 1)
        assert engine.check_invariants() == []
    finally:
        engine.stop()


def test_the_cli_shows_a_tickets_requests_and_notices(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from adapters.cli import app

    path = tmp_path / "c.sqlite"
    engine = Engine(path, clock=VirtualClock(START))
    try:
        engine.deploy(parse_definition(MINI))
        _working(engine, "C-1")
        engine.request_extension("C-1", "work_due", proposed_due=START + 5 * H, reason="a",
                                 actor=WATER)
        engine.send_supervision_notice("C-1", text="hurry", actor=CENTRE)
    finally:
        engine.stop()
    done = CliRunner().invoke(app, ["oversight", "C-1", "--db", str(path), "--json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert [(r["kind"], r["n"], r["status"], r["proposed_due"]) for r in out["requests"]] == [
        ("extension", 1, "open", "2024-05-01T13:00:00+00:00")]
    assert [n["text"] for n in out["notices"]] == ["hurry"]


@pytest.mark.postgres
def test_extension_and_suspension_on_postgres() -> None:
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    url = os.environ.get("GRIDWHISTLE_POSTGRES_URL",
                         "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OperationalError, ImportError) as exc:
        if os.environ.get("GRIDWHISTLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {url} is required: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")
    sa = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    engine = Engine(sa, clock=VirtualClock(START))
    try:
        engine.deploy(parse_definition(MINI))
        _working(engine, "P-1")
        engine.request_extension("P-1", "work_due", proposed_due=START + 6 * H, reason="a",
                                 actor=WATER)
        engine.decide_extension("P-1", 1, approve=True, reason="ok", actor=CENTRE)
        engine.suspend("P-1", "weather", reason="storm", actor=CENTRE, until=START + H)
        fired = engine.run_until(START + 8 * H)
        assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
            ("oversight:resume", START + H, "resumed"),
            ("work_due", START + 7 * H, "breached")]
        assert [(r.kind, r.status, r.extended_seconds, r.suspended_seconds)
                for r in engine.time_requests("P-1")] == [
            ("extension", "approved", 7200.0, None), ("suspension", "ended", None, 3600.0)]
        assert engine.check_invariants() == []
    finally:
        engine.stop()
        sa.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_a_lifecycle_without_oversight_refuses_it(tmp_path: Path) -> None:
    from helpers import quick_lifecycle

    engine = Engine(tmp_path / "q.sqlite", clock=VirtualClock(START))
    try:
        engine.deploy(parse_definition(quick_lifecycle("PT1H")))
        engine.report("quick", {}, actor=CENTRE, ticket_id="Q-1")
        before = (engine.get("Q-1"), engine.history("Q-1"), engine.timers("Q-1"))
        for call in (lambda: engine.suspend("Q-1", "weather", reason="x", actor=CENTRE),
                     lambda: engine.send_supervision_notice("Q-1", text="x", actor=CENTRE),
                     lambda: engine.request_extension("Q-1", "soon", reason="x", actor=WATER,
                                                      proposed_due=START + 2 * H)):
            with pytest.raises(OversightRefused) as err:
                call()
            assert err.value.why == "not_offered"
        assert (engine.get("Q-1"), engine.history("Q-1"), engine.timers("Q-1")) == before
    finally:
        engine.stop()


def test_check_finds_oversight_rows_that_disagree_with_history(tmp_path: Path) -> None:
    """``gridwhistle check`` (Engine.check_invariants) sees a lost suspension row, a lost
    resume timer and a lost notice row (found by a new user's trial: it said "ok")."""
    import sqlite3

    eng = Engine(tmp_path / "c.sqlite", clock=VirtualClock(START))
    eng.deploy(parse_definition(MINI))
    for tid in ("S-1", "S-2"):
        _working(eng, tid)
        eng.suspend(tid, "weather", reason="typhoon warning", actor=CENTRE)
    eng.send_supervision_notice("S-2", text="why so slow?", actor=CENTRE)
    assert eng.check_invariants() == []
    seq = {tid: len(eng.history(tid)) for tid in ("S-1", "S-2")}
    eng.stop()
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        db.execute("DELETE FROM gw_time_requests WHERE ticket_id = 'S-1'")
        db.execute("DELETE FROM gw_timers WHERE ticket_id = 'S-2' AND name = 'oversight:resume'")
        db.execute("DELETE FROM gw_supervision_notices WHERE ticket_id = 'S-2'")
    eng = Engine(tmp_path / "c.sqlite", clock=VirtualClock(START))
    found = sorted((v.ticket_id, v.rule, v.message) for v in eng.check_invariants())
    assert found == [
        ("S-1", "oversight_rows", "history rows without their oversight row: "
         f"[('suspension', {seq['S-1']})]; oversight rows without their history row: none "
         "(kind, seq)"),
        ("S-1", "suspension", "history says suspended; 0 active suspension row(s), 1 pending "
         "'oversight:resume' timer(s)"),
        ("S-2", "oversight_rows", "history rows without their oversight row: "
         f"[('notice', {seq['S-2']})]; oversight rows without their history row: none "
         "(kind, seq)"),
        ("S-2", "suspension", "history says suspended; 1 active suspension row(s), 0 pending "
         "'oversight:resume' timer(s)"),
    ]
    eng.stop()


# -- a suspension holds the ladder's budget too ---------------------------------------------

CLIMB = """format: 1
name: climb
initial: open
roles: {centre: {}, street_office: {}, department: {}, system: {}}
levels:
  - {name: community, handler: centre, budget: PT4H}
  - {name: street, handler: street_office, budget: PT4H}
ladder: {acknowledged_by: [acknowledge]}
report: {roles: centre}
states: {open: {}, escalated: {}, done: {final: true}}
transitions:
  - {trigger: escalate, source: [open, escalated], dest: escalated, roles: [system, centre],
     reason_required: true}
  - {trigger: acknowledge, source: escalated, dest: escalated, roles: [street_office]}
  - {trigger: finish, source: [open, escalated], dest: done, roles: [centre]}
deadlines:
  resolution: {stop_in: [done], after: P1D, on_breach: record}
resolution_deadline: resolution
oversight:
  suspension:
    causes:
      weather: {title: {zh: 恶劣天气, en: Bad weather}}
    max_duration: P1D
    max_count: 2
"""


@pytest.fixture
def climb(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "climb.sqlite", clock=VirtualClock(START))
    e.deploy(parse_definition(CLIMB))
    yield e
    e.stop()


def _budget(engine: Engine, tid: str) -> dict[str, object]:
    return {t.name: t.due_at for t in engine.timers(tid, status="pending")
            if t.name.startswith("ladder:")}


def test_a_suspension_holds_the_ladder_budget_and_resuming_moves_it_later(
        climb: Engine) -> None:
    climb.report("climb", {}, actor=CENTRE, ticket_id="L-1")
    assert _budget(climb, "L-1") == {"ladder:community": START + 4 * H}
    climb.clock.set(START + H)  # type: ignore[attr-defined]
    climb.suspend("L-1", "weather", reason="typhoon warning", actor=CENTRE)
    assert _budget(climb, "L-1") == {}  # held: no budget timer while suspended
    pos = climb.ladder("L-1")
    assert pos is not None
    assert (pos.budget_due, pos.held_at) == (START + 4 * H, START + H)
    assert climb.check_invariants() == []
    assert climb.run_until(START + 6 * H) == []  # the old budget passed: no breach
    assert [h.kind for h in climb.history("L-1")] == ["report", "suspended"]

    climb.resume("L-1", reason="the warning is lifted", actor=CENTRE)  # suspended 5 h
    assert _budget(climb, "L-1") == {"ladder:community": START + 9 * H}
    pos = climb.ladder("L-1")
    assert pos is not None
    assert (pos.level, pos.budget_due, pos.held_at) == ("community", START + 9 * H, None)
    assert climb.check_invariants() == []
    fired = climb.run_until(START + 10 * H)
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("ladder:community", START + 9 * H, "escalated")]
    assert climb.get("L-1").level == "street"
    assert _budget(climb, "L-1") == {"ladder:street": START + 13 * H}
    assert climb.check_invariants() == []


def test_the_ladder_budget_runs_on_when_the_system_resumes_at_the_limit(
        climb: Engine) -> None:
    climb.report("climb", {}, actor=CENTRE, ticket_id="L-2")
    climb.suspend("L-2", "weather", reason="storm", actor=CENTRE, until=START + 2 * H)
    fired = climb.run_until(START + 6 * H)
    assert [(f.timer.name, f.outcome) for f in fired] == [("oversight:resume", "resumed")]
    assert _budget(climb, "L-2") == {"ladder:community": START + 6 * H}
    assert climb.check_invariants() == []
    fired = climb.run_until(START + 7 * H)
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("ladder:community", START + 6 * H, "escalated")]


def test_a_ticket_ending_while_suspended_drops_its_held_budget(climb: Engine) -> None:
    climb.report("climb", {}, actor=CENTRE, ticket_id="L-3")
    climb.suspend("L-3", "weather", reason="storm", actor=CENTRE)
    climb.clock.set(START + H)  # type: ignore[attr-defined]
    climb.fire("L-3", "finish", actor=CENTRE)
    pos = climb.ladder("L-3")
    assert pos is not None
    assert (pos.budget_due, pos.held_at) == (None, None)
    assert climb.timers("L-3", status="pending") == []
    assert climb.check_invariants() == []


def test_an_acknowledged_level_has_no_budget_to_hold(climb: Engine) -> None:
    climb.report("climb", {}, actor=CENTRE, ticket_id="L-4")
    climb.fire("L-4", "escalate", actor=CENTRE, reason="by hand")  # street: its budget runs
    climb.fire("L-4", "acknowledge", actor=Actor("so-1", "street_office"))
    climb.suspend("L-4", "weather", reason="storm", actor=CENTRE)
    climb.clock.set(START + H)  # type: ignore[attr-defined]
    climb.resume("L-4", reason="over", actor=CENTRE)
    pos = climb.ladder("L-4")
    assert pos is not None
    assert (pos.budget_due, pos.held_at, pos.acknowledged_by) == (None, None, "so-1")
    assert _budget(climb, "L-4") == {}
    assert climb.check_invariants() == []


def test_check_finds_a_budget_that_runs_while_suspended(tmp_path: Path) -> None:
    """``ladder_hold``: a suspended ticket's budget timer pending, a held budget on a ticket
    that is not suspended."""
    import sqlite3

    eng = Engine(tmp_path / "h.sqlite", clock=VirtualClock(START))
    eng.deploy(parse_definition(CLIMB))
    for tid in ("H-1", "H-2"):
        eng.report("climb", {}, actor=CENTRE, ticket_id=tid)
    eng.suspend("H-1", "weather", reason="storm", actor=CENTRE)
    assert eng.check_invariants() == []
    eng.stop()
    with sqlite3.connect(tmp_path / "h.sqlite") as db:  # as a store before this rule had it
        db.execute("UPDATE gw_ladder SET held_at = NULL WHERE ticket_id = 'H-1'")
        db.execute("INSERT INTO gw_timers (ticket_id, name, state, due_at, status, created_at,"
                   " failures) SELECT ticket_id, 'ladder:community', NULL, due_at, 'pending', "
                   "created_at, 0 FROM gw_timers WHERE ticket_id = 'H-1' "
                   "AND name = 'oversight:resume'")
        db.execute("UPDATE gw_ladder SET held_at = since WHERE ticket_id = 'H-2'")
    eng = Engine(tmp_path / "h.sqlite", clock=VirtualClock(START))
    found = sorted((v.ticket_id, v.rule, v.message) for v in eng.check_invariants())
    assert found == [
        ("H-1", "ladder_hold", "suspended, yet the budget timer 'ladder:community' is pending"),
        ("H-2", "ladder_hold", "held, yet the budget timer 'ladder:community' is pending"),
        ("H-2", "ladder_hold", f"the budget is held since {START.isoformat()}; the history "
         "says not suspended")]
    eng.stop()


# -- an approved extension of a field-driven deadline sets the field ------------------------


def test_an_approved_extension_of_a_field_driven_deadline_sets_its_field(
        tmp_path: Path) -> None:
    """grid_incident's ``resolution`` is due at ``target_at``: approving its extension sets
    ``target_at`` to the new due in the same command, so the ticket, its timer and Open311's
    ``expected_datetime`` agree."""
    eng = Engine(tmp_path / "f.sqlite", clock=VirtualClock(START))
    try:
        due = START + timedelta(days=1)
        eng.report("grid_incident", {"category": "garbage", "department": "sanitation",
                                     "target_at": due}, actor=CENTRE, ticket_id="F-1")
        assert _due(eng, "F-1")["resolution"] == due
        eng.clock.set(START + H)  # type: ignore[attr-defined]
        eng.request_extension("F-1", "resolution", proposed_due=due + 2 * H,
                              reason="waiting for parts", actor=WATER)
        assert eng.get("F-1").fields["target_at"] == due  # asking moves nothing
        seq = len(eng.history("F-1"))
        done = eng.decide_extension("F-1", 1, approve=True, reason="agreed", actor=CENTRE,
                                    due_at=due + 3 * H)
        assert (done.status, done.original_due, done.new_due) == (
            "approved", due, due + 3 * H)
        assert eng.get("F-1").fields["target_at"] == due + 3 * H
        assert _due(eng, "F-1")["resolution"] == due + 3 * H
        approved = eng.history("F-1")[-1]
        assert (approved.seq, approved.kind) == (seq + 1, "extension_approved")
        assert approved.data["fields"] == {"target_at": (due + 3 * H).isoformat()}
        assert approved.data["new_due"] == (due + 3 * H).isoformat()
        assert eng.check_invariants() == []

        eng.request_extension("F-1", "resolution", proposed_due=due + 5 * H,
                              reason="more parts", actor=WATER)
        eng.decide_extension("F-1", 2, approve=False, reason="no", actor=CENTRE)
        assert eng.get("F-1").fields["target_at"] == due + 3 * H  # refused: as it was
        assert "fields" not in eng.history("F-1")[-1].data
        assert _due(eng, "F-1")["resolution"] == due + 3 * H
        assert eng.check_invariants() == []
    finally:
        eng.stop()


def test_a_refused_approval_leaves_the_deadline_field_as_it_was(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "g.sqlite", clock=VirtualClock(START))
    try:
        due = START + timedelta(days=1)
        eng.report("grid_incident", {"category": "garbage", "target_at": due}, actor=CENTRE,
                   ticket_id="F-2")
        eng.request_extension("F-2", "resolution", proposed_due=due + H, reason="parts",
                              actor=WATER)
        before = (eng.get("F-2"), eng.history("F-2"), eng.timers("F-2"))
        with pytest.raises(OversightRefused) as err:  # max_length: P7D
            eng.decide_extension("F-2", 1, approve=True, reason="ok", actor=CENTRE,
                                 due_at=due + timedelta(days=8))
        assert err.value.why == "too_long"
        assert (eng.get("F-2"), eng.history("F-2"), eng.timers("F-2")) == before
    finally:
        eng.stop()


# -- resuming moves a field-driven deadline's field with its timer --------------------------


def test_resuming_by_hand_moves_a_field_driven_deadline_and_its_field(tmp_path: Path) -> None:
    """``resolution`` is due at ``target_at``: a two-hour suspension moves both by two
    hours, in the ``resumed`` row."""
    eng = Engine(tmp_path / "r.sqlite", clock=VirtualClock(START))
    try:
        due = START + timedelta(days=1)
        eng.report("grid_incident", {"category": "garbage", "department": "sanitation",
                                     "target_at": due}, actor=CENTRE, ticket_id="R-1")
        eng.clock.set(START + H)  # type: ignore[attr-defined]
        eng.suspend("R-1", "weather", reason="typhoon", actor=CENTRE)
        assert "resolution" not in _due(eng, "R-1")  # held
        assert eng.get("R-1").fields["target_at"] == due
        eng.clock.set(START + 3 * H)  # type: ignore[attr-defined]
        eng.resume("R-1", reason="lifted", actor=CENTRE)
        assert _due(eng, "R-1")["resolution"] == due + 2 * H
        assert eng.get("R-1").fields["target_at"] == due + 2 * H
        resumed = eng.history("R-1")[-1]
        assert (resumed.kind, resumed.data["fields"]) == (
            "resumed", {"target_at": (due + 2 * H).isoformat()})
        assert eng.check_invariants() == []
    finally:
        eng.stop()


def test_resuming_at_the_limit_moves_the_deadline_field_too(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "l.sqlite", clock=VirtualClock(START))
    try:
        due = START + timedelta(days=3)
        eng.report("grid_incident", {"category": "garbage", "department": "sanitation",
                                     "target_at": due}, actor=CENTRE, ticket_id="R-2")
        eng.suspend("R-2", "third_party", reason="the utility", actor=CENTRE,
                    until=START + 5 * H)
        fired = eng.run_until(START + 5 * H + timedelta(minutes=1))  # dispatch_due: 5.5 h
        assert [(f.timer.name, f.outcome) for f in fired] == [("oversight:resume", "resumed")]
        assert _due(eng, "R-2")["resolution"] == due + 5 * H
        assert eng.get("R-2").fields["target_at"] == due + 5 * H
        last = eng.history("R-2")[-1]
        assert (last.kind, last.actor, last.data["by"]) == ("resumed", "gridwhistle", "limit")
        assert last.data["fields"] == {"target_at": (due + 5 * H).isoformat()}
        assert eng.check_invariants() == []
    finally:
        eng.stop()


def test_an_sla_clock_due_at_the_field_follows_an_approved_extension(tmp_path: Path) -> None:
    """An SLA clock due at ``target_at`` moves with the approved extension that sets the
    field (a row in place, not a transition), as it moves with a transition that sets it."""
    text = (Path(__file__).parent.parent / "workflows" / "grid_incident.yaml").read_text(
        encoding="utf-8").replace(
        "slas:\n", "slas:\n  promised:\n    stop: {states: [resolved]}\n"
                   "    at_field: target_at\n    warn: [{before: PT30M}]\n", 1)
    eng = Engine(tmp_path / "p.sqlite", clock=VirtualClock(START))
    try:
        eng.deploy(parse_definition(text))
        due = START + timedelta(days=1)
        eng.report("grid_incident", {"category": "garbage", "department": "sanitation",
                                     "target_at": due}, actor=CENTRE, ticket_id="P-1")
        assert {c.name: c for c in eng.sla_clocks("P-1")}["promised"].due_at == due
        eng.request_extension("P-1", "resolution", proposed_due=due + 2 * H,
                              reason="waiting for parts", actor=WATER)
        eng.decide_extension("P-1", 1, approve=True, reason="agreed", actor=CENTRE)
        assert eng.get("P-1").fields["target_at"] == due + 2 * H
        assert {c.name: c for c in eng.sla_clocks("P-1")}["promised"].due_at == due + 2 * H
        pending = {t.name: t.due_at for t in eng.timers("P-1", status="pending")
                   if t.name.startswith("sla:promised")}
        assert pending == {"sla:promised": due + 2 * H,
                           "sla:promised:warn:0": due + 2 * H - timedelta(minutes=30)}
        assert eng.check_invariants() == []
    finally:
        eng.stop()
