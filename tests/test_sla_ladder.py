"""SLA clocks, the whistle ladder and time rules on the virtual clock (lifecycle: timed.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Actor, Engine, VirtualClock
from engine.timing import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours

TIMED = Path(__file__).parent / "definitions" / "timed.yaml"
NY = ZoneInfo("America/New_York")
REPORTER = Actor("r-1", "reporter")
CENTRE = Actor("ops-1", "centre")
DEPT = Actor("water-3", "department")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)


@pytest.fixture
def make(tmp_path: Path):
    opened: list[Engine] = []

    def start(at: datetime, text: str | None = None) -> Engine:
        eng = Engine(tmp_path / f"e{len(opened)}.sqlite", clock=VirtualClock(at))
        if text is None:
            eng.deploy(TIMED)
        else:
            p = tmp_path / "timed.yaml"
            p.write_text(text)
            eng.deploy(p)
        opened.append(eng)
        return eng

    yield start
    for eng in opened:
        eng.stop()


def sla_rows(eng: Engine, tid: str) -> list[tuple]:
    return [(h.kind, h.trigger, h.at, h.data.get("due_at")) for h in eng.history(tid)
            if h.kind.startswith("sla_")]


@pytest.mark.parametrize(("reported", "warn", "due"), [
    # spring forward (Sun 2024-03-10): Fri 16:00 EST + 2 working hours = Mon 10:00 EDT
    (ny(2024, 3, 8, 16), ny(2024, 3, 8, 17), datetime(2024, 3, 11, 14, tzinfo=UTC)),
    # fall back (Sun 2024-11-03): Fri 16:00 EDT + 2 working hours = Mon 10:00 EST
    (ny(2024, 11, 1, 16), ny(2024, 11, 1, 17), datetime(2024, 11, 4, 15, tzinfo=UTC)),
])
def test_working_hours_sla_across_both_dst_changes_warns_then_breaches(make, reported, warn,
                                                                      due):
    eng = make(reported)
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    clock = {c.name: c for c in eng.sla_clocks("T1")}["time_to_dispatch"]
    assert (clock.status, clock.due_at) == ("running", due)
    fired = eng.run_until(due + timedelta(minutes=5))
    mine = [(f.timer.name, f.outcome, f.timer.due_at) for f in fired
            if f.timer.name.startswith("sla:time_to_dispatch")]
    assert mine == [("sla:time_to_dispatch:warn:0", "warned", warn),
                    ("sla:time_to_dispatch", "breached", due)]
    assert [r for r in sla_rows(eng, "T1") if r[1] == "time_to_dispatch"] == [
        ("sla_warning", "time_to_dispatch", warn, warn.isoformat()),
        ("sla_breach", "time_to_dispatch", due, due.isoformat()),
    ]
    eng.fire("T1", "dispatch", actor=CENTRE)
    clock = {c.name: c for c in eng.sla_clocks("T1")}["time_to_dispatch"]
    assert (clock.status, clock.outcome, clock.breached_at) == ("stopped", "breached", due)
    assert eng.get("T1").level == "community"           # on_breach: record


def test_report_outside_working_hours_starts_the_clock_next_working_morning(make):
    eng = make(ny(2024, 6, 8, 20))                      # Saturday evening
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    clocks = {c.name: c for c in eng.sla_clocks("T1")}
    assert clocks["time_to_dispatch"].due_at == ny(2024, 6, 10, 11)   # Mon 09:00 + 2 h
    assert clocks["time_to_resolve"].due_at == ny(2024, 6, 11, 10)    # Mon 7 h, Tue 09-10
    pending = {t.name: t.due_at for t in eng.timers("T1", status="pending")}
    assert pending == {"sla:time_to_dispatch:warn:0": ny(2024, 6, 10, 10),
                       "sla:time_to_dispatch": ny(2024, 6, 10, 11),
                       "sla:time_to_resolve:warn:0": ny(2024, 6, 10, 17),
                       "sla:time_to_resolve": ny(2024, 6, 11, 10)}


def test_pause_resume_stop_and_reopen_continues_the_clock(make):
    clock = VirtualClock(ny(2024, 6, 5, 9))
    eng = make(clock.now())
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    eng.run_until(ny(2024, 6, 5, 9, 30))
    eng.fire("T1", "dispatch", actor=CENTRE)
    eng.run_until(ny(2024, 6, 5, 10))
    eng.fire("T1", "arrive", actor=DEPT)
    eng.run_until(ny(2024, 6, 5, 11))
    eng.fire("T1", "ask_reporter", actor=DEPT)          # 2 working hours used
    resolve = {c.name: c for c in eng.sla_clocks("T1")}["time_to_resolve"]
    assert (resolve.status, resolve.elapsed, resolve.due_at) == (
        "paused", timedelta(hours=2), None)
    assert not [t for t in eng.timers("T1", status="pending")
                if t.name.startswith("sla:time_to_resolve")]
    assert eng.run_until(ny(2024, 6, 6, 10)) == []       # paused overnight: nothing fires
    eng.fire("T1", "answer", actor=REPORTER)            # resumes Thu 10:00 with 6 h left
    resolve = {c.name: c for c in eng.sla_clocks("T1")}["time_to_resolve"]
    assert (resolve.status, resolve.due_at) == ("running", ny(2024, 6, 6, 17))
    assert {t.name: t.due_at for t in eng.timers("T1", status="pending")} == {
        "sla:time_to_resolve:warn:0": ny(2024, 6, 6, 16), "sla:time_to_resolve": ny(2024, 6, 6, 17)}
    eng.run_until(ny(2024, 6, 6, 15))
    eng.fire("T1", "resolve", actor=DEPT)
    resolve = {c.name: c for c in eng.sla_clocks("T1")}["time_to_resolve"]
    assert (resolve.status, resolve.outcome, resolve.elapsed) == (
        "stopped", "met", timedelta(hours=6))
    eng.run_until(ny(2024, 6, 6, 15, 30))
    eng.fire("T1", "reopen", actor=CENTRE, reason="still leaking")
    resolve = {c.name: c for c in eng.sla_clocks("T1")}["time_to_resolve"]
    # continues with 6 h used: 15:30-17:00, then Fri 09:00-09:30
    assert (resolve.status, resolve.outcome, resolve.elapsed, resolve.due_at) == (
        "running", None, timedelta(hours=6), ny(2024, 6, 7, 9, 30))
    fired = eng.run_until(ny(2024, 6, 7, 12))
    assert [(f.timer.name, f.outcome) for f in fired] == [
        ("sla:time_to_resolve:warn:0", "warned"), ("sla:time_to_resolve", "breached")]
    assert eng.get("T1").overdue is False               # SLA breaches do not set overdue


def test_three_hop_escalation_to_the_top_with_handlers_and_budgets(make):
    eng = make(ny(2024, 6, 5, 9))
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    assert eng.ladder("T1").handler == "centre"
    with pytest.raises(Exception, match="requires a reason"):
        eng.escalate("T1", actor=CENTRE, reason=" ")
    eng.escalate("T1", actor=CENTRE, reason="key whistle: burst main")
    pos = eng.ladder("T1")
    assert (pos.level, pos.handler, pos.budget_due) == ("street", "street_office",
                                                        ny(2024, 6, 5, 14))
    fired = eng.run_until(ny(2024, 6, 5, 23))
    ladder = [(f.timer.name, f.outcome, f.timer.due_at) for f in fired
              if f.timer.name.startswith("ladder:")]
    assert ladder == [("ladder:street", "escalated", ny(2024, 6, 5, 14)),
                      ("ladder:district", "escalated", ny(2024, 6, 5, 16)),
                      ("ladder:city", "top_level", ny(2024, 6, 5, 17))]
    pos = eng.ladder("T1")
    assert (pos.level, pos.handler, pos.budget_due) == ("city", "city_office", None)
    hops = [(h.kind, h.trigger, h.from_level, h.to_level, h.role) for h in eng.history("T1")
            if h.kind == "transition" or h.trigger.endswith("_budget")]
    assert hops == [
        ("transition", "escalate", "community", "street", "centre"),
        ("breach", "street_budget", "street", "street", "system"),
        ("transition", "escalate", "street", "district", "system"),
        ("breach", "district_budget", "district", "district", "system"),
        ("transition", "escalate", "district", "city", "system"),
        ("breach", "city_budget", "city", "city", "system"),
    ]
    summary = eng.summary("timed")
    assert summary.escalations == {"street": 1, "district": 1, "city": 1}
    assert summary.budget_breaches == {"community": 0, "street": 1, "district": 1, "city": 1}
    assert summary.slas == {"time_to_dispatch": {"met": 0, "breached": 1, "open": 0},
                            "time_to_resolve": {"met": 0, "breached": 0, "open": 1}}


def test_acknowledging_stops_the_ladder(make):
    eng = make(ny(2024, 6, 5, 9))
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1", level="street")
    assert eng.ladder("T1").budget_due == ny(2024, 6, 5, 14)
    eng.run_until(ny(2024, 6, 5, 14, 1))
    assert eng.ladder("T1").level == "district"
    eng.fire("T1", "acknowledge", actor=Actor("d-1", "district_office"))
    pos = eng.ladder("T1")
    assert (pos.level, pos.acknowledged_by, pos.budget_due) == ("district", "d-1", None)
    assert [f for f in eng.run_until(ny(2024, 6, 9)) if f.timer.name.startswith("ladder")] == []
    assert eng.get("T1").level == "district"


def test_minimum_lag_refuses_an_early_close_and_duty_hours_refuse_a_late_one(make):
    eng = make(ny(2024, 6, 5, 10))
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    eng.fire("T1", "dispatch", actor=CENTRE)
    eng.fire("T1", "arrive", actor=DEPT)
    eng.run_until(ny(2024, 6, 5, 10, 5))
    eng.fire("T1", "resolve", actor=DEPT)
    eng.run_until(ny(2024, 6, 5, 10, 8))
    before = (eng.get("T1"), eng.history("T1"), eng.timers("T1"), eng.sla_clocks("T1"))
    with pytest.raises(MinimumLagNotReached) as info:
        eng.fire("T1", "close", actor=CENTRE)
    err = info.value
    assert (err.ticket_id, err.trigger, err.lag, err.since, err.since_at, err.earliest) == (
        "T1", "close", "verify_after_arrival", "arrive", ny(2024, 6, 5, 10),
        ny(2024, 6, 5, 10, 10))
    assert "allows it from 2024-06-05T14:10:00+00:00" in str(err)
    assert (eng.get("T1"), eng.history("T1"), eng.timers("T1"), eng.sla_clocks("T1")) == before
    eng.run_until(ny(2024, 6, 5, 18))
    with pytest.raises(OutsideWorkingHours) as late:
        eng.fire("T1", "close", actor=CENTRE)
    assert (late.value.calendar, late.value.next_opening) == ("office", ny(2024, 6, 6, 9))
    eng.run_until(ny(2024, 6, 6, 9))
    assert eng.fire("T1", "close", actor=CENTRE).state == "closed"


def test_validity_period_of_a_lifecycle_version(make):
    text = TIMED.read_text().replace(
        "format: 1\n", "format: 1\nvalid_from: 2025-01-01T00:00:00-05:00\n")
    eng = make(ny(2024, 12, 31, 23), text)
    with pytest.raises(LifecycleNotValid, match="deploy a version valid now"):
        eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    eng.run_until(ny(2025, 1, 1))
    assert eng.report("timed", {}, actor=REPORTER, ticket_id="T1").state == "reported"


def test_working_hours_deadline_across_a_public_holiday_and_a_weekend(make):
    text = TIMED.read_text() + (
        "deadlines:\n"
        "  first_look:\n"
        "    state: reported\n"
        "    after: {working: PT8H, calendar: office}\n"
        "    on_breach: record\n")
    # Wed 2024-07-03 16:30 EDT: 0.5 h; Thu 07-04 Independence Day; Fri 7 h; Sat, Sun; Mon 0.5 h
    eng = make(ny(2024, 7, 3, 16, 30), text)
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    [timer] = [t for t in eng.timers("T1") if t.name == "first_look"]
    assert timer.due_at == ny(2024, 7, 8, 9, 30) == datetime(2024, 7, 8, 13, 30, tzinfo=UTC)
    before = eng.run_until(ny(2024, 7, 8, 9, 30))        # due at 09:30: met by a command then
    assert "first_look" not in [f.timer.name for f in before]
    fired = eng.run_until(ny(2024, 7, 8, 9, 31))
    assert [(f.timer.name, f.outcome) for f in fired if f.timer.name == "first_look"] == [
        ("first_look", "breached")]


def test_at_field_clock_follows_its_field_and_a_stale_timer_does_nothing(make):
    from sqlalchemy import insert

    from engine.store import timers as timers_table

    promised = ("  promised:\n    stop: {states: [resolved]}\n    at_field: promised_at\n"
                "    warn: [{before: PT30M}]\n")
    text = TIMED.read_text().replace("lags:\n", promised + "lags:\n", 1)  # one more SLA
    eng = make(ny(2024, 6, 5, 9), text)
    # the promise drives a deadline: the centre's to set (issue 11), not the reporter's
    eng.report("timed", {"promised_at": ny(2024, 6, 5, 12)}, actor=CENTRE, ticket_id="T1")
    clock = {c.name: c for c in eng.sla_clocks("T1")}["promised"]
    assert clock.due_at == ny(2024, 6, 5, 12)
    eng.fire("T1", "dispatch", actor=CENTRE, fields={"promised_at": ny(2024, 6, 5, 15)})
    pending = {t.name: t.due_at for t in eng.timers("T1", status="pending")
               if t.name.startswith("sla:promised")}
    assert pending == {"sla:promised": ny(2024, 6, 5, 15),
                       "sla:promised:warn:0": ny(2024, 6, 5, 14, 30)}
    eng.fire("T1", "arrive", actor=DEPT)
    eng.fire("T1", "resolve", actor=DEPT)
    assert {c.name: c for c in eng.sla_clocks("T1")}["promised"].outcome == "met"
    # a rogue timer of the stopped clock: claimed, marked stale, nothing written
    with eng.db.write() as conn:
        conn.execute(insert(timers_table).values(
            ticket_id="T1", name="sla:promised", state=None, due_at=ny(2024, 6, 5, 10),
            status="pending", created_at=ny(2024, 6, 5, 9), fired_at=None))
    before = (eng.get("T1"), eng.history("T1"), eng.sla_clocks("T1"))
    fired = eng.run_until(ny(2024, 6, 5, 16))
    assert [(f.timer.name, f.outcome) for f in fired] == [("sla:promised", "stale")]
    assert (eng.get("T1"), eng.history("T1"), eng.sla_clocks("T1")) == before


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gaps=st.lists(st.integers(min_value=1, max_value=60 * 30), min_size=2, max_size=8))
def test_paused_time_never_counts(make, gaps):
    """Ask/answer the reporter at random instants: the resolution clock's elapsed time is the
    office's working time while not waiting for the reporter, whatever the pattern."""
    from engine.calendars import compile_calendars
    from engine.definition import load_definition

    office = compile_calendars(load_definition(TIMED).spec.calendars)["office"]
    start = ny(2024, 6, 3, 8)
    eng = make(start)
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    eng.fire("T1", "dispatch", actor=CENTRE)
    eng.fire("T1", "arrive", actor=DEPT)
    running, expected, now = True, timedelta(0), start
    for gap in gaps:
        later = now + timedelta(minutes=gap)
        if running:
            expected += office.working_between(now, later)
        eng.clock.set(later)  # type: ignore[attr-defined]
        eng.fire("T1", "ask_reporter" if running else "answer",
                 actor=DEPT if running else REPORTER)
        running, now = not running, later
    if running:
        eng.fire("T1", "resolve", actor=DEPT)
        clock = {c.name: c for c in eng.sla_clocks("T1")}["time_to_resolve"]
        assert clock.status == "stopped"
    else:
        clock = {c.name: c for c in eng.sla_clocks("T1")}["time_to_resolve"]
        assert clock.status == "paused"
    assert clock.elapsed == expected


def test_grid_incident_sla_runs_into_a_chinese_make_up_saturday(tmp_path):
    sh = ZoneInfo("Asia/Shanghai")
    # Fri 2024-05-10 17:00 Beijing: 0.5 h left today; Sat 05-11 is a make-up workday (调休)
    eng = Engine(tmp_path / "cn.sqlite",
                 clock=VirtualClock(datetime(2024, 5, 10, 17, tzinfo=sh)))
    try:
        eng.report("grid_incident", {"category": "drain"}, actor=Actor("gw", "centre"),
                   ticket_id="G1")
        clocks = {c.name: c for c in eng.sla_clocks("G1")}
        assert clocks["time_to_dispatch"].due_at == datetime(2024, 5, 11, 9, tzinfo=sh)
        # 15 working hours: Fri 0.5, Sat 7.5, (Sun off), Mon 7 → Mon 05-13 17:00
        assert clocks["time_to_resolve"].due_at == datetime(2024, 5, 13, 17, tzinfo=sh)
    finally:
        eng.stop()


def test_a_version_deployed_ahead_takes_over_on_its_valid_from(make):
    from engine import parse_definition

    v1_text = TIMED.read_text().replace(
        "format: 1\n", "format: 1\nvalid_until: 2025-01-01T00:00:00-05:00\n")
    v2_text = TIMED.read_text().replace(
        "format: 1\n", "format: 1\nvalid_from: 2025-01-01T00:00:00-05:00\n").replace(
        "min: PT10M", "min: PT20M")
    eng = make(ny(2024, 12, 31, 9), v1_text)
    v2 = eng.deploy(parse_definition(v2_text))                # deployed ahead of its date
    assert v2.version == 2
    assert eng.report("timed", {}, actor=REPORTER, ticket_id="OLD").version == 1
    eng.run_until(ny(2025, 1, 1))
    assert eng.report("timed", {}, actor=REPORTER, ticket_id="NEW").version == 2
    assert eng.get("OLD").version == 1                       # running tickets stay


def test_a_final_state_stops_every_clock_and_nothing_fires_afterwards(make):
    text = TIMED.read_text().replace(
        "  - {trigger: arrive,",
        "  - {trigger: withdraw, source: reported, dest: closed, roles: centre}\n"
        "  - {trigger: arrive,", 1)
    eng = make(ny(2024, 6, 5, 9), text)
    eng.report("timed", {}, actor=REPORTER, ticket_id="T1")
    eng.run_until(ny(2024, 6, 5, 10))
    eng.fire("T1", "withdraw", actor=CENTRE)
    assert {c.name: (c.status, c.outcome, c.elapsed) for c in eng.sla_clocks("T1")} == {
        "time_to_dispatch": ("stopped", "met", timedelta(hours=1)),
        "time_to_resolve": ("stopped", "met", timedelta(hours=1))}
    assert [t for t in eng.timers("T1", status="pending")] == []
    assert eng.run_until(ny(2024, 6, 12)) == []


def test_maximum_lag_breaches_once_and_is_cancelled_by_its_until(make):
    text = TIMED.read_text().replace(
        "    min: PT10M\n", "    min: PT10M\n    max: {working: PT2H, calendar: office}\n")
    eng = make(ny(2024, 6, 5, 9), text)
    for tid in ("T1", "T2"):
        eng.report("timed", {}, actor=REPORTER, ticket_id=tid)
        eng.fire(tid, "dispatch", actor=CENTRE)
        eng.fire(tid, "arrive", actor=DEPT)                 # both lags start at 09:00
        eng.fire(tid, "resolve", actor=DEPT)
    eng.run_until(ny(2024, 6, 5, 10))
    eng.fire("T2", "close", actor=CENTRE)                    # in time: its lag timer goes
    assert [t.status for t in eng.timers("T2") if t.name == "lag:verify_after_arrival"] == [
        "cancelled"]
    fired = eng.run_until(ny(2024, 6, 5, 13))
    assert [(f.timer.ticket_id, f.timer.name, f.outcome, f.timer.due_at) for f in fired] == [
        ("T1", "lag:verify_after_arrival", "breached", ny(2024, 6, 5, 11))]
    [breach] = [h for h in eng.history("T1") if h.kind == "breach"]
    assert (breach.trigger, breach.data["due_at"]) == (
        "verify_after_arrival", ny(2024, 6, 5, 11).isoformat())
