"""The defects of issue 10 ("What that costs users today"), one test each, through the public API.

Each test asserts the behaviour the one-way command pipeline promises:

a. inside ``Engine.batch()`` a command refused by a time rule or a department rule *after*
   today's engine has written its first row rolls back alone; the tickets reported earlier in
   the batch survive it;
b. a command needing a calendar day outside the calendar's validity is a refusal
   (``CommandRefused``), inside a batch and outside one;
c. a deadline breached outside the duty hours (``during:``) of its escalation is recorded with
   the refusal, and the other due timers of the same run still fire;
d. a host listener that hangs does not stop deadlines on the real clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import (
    Actor,
    BounceNeedsApproval,
    CommandRefused,
    Departments,
    Engine,
    GridwhistleError,
    MinimumLagNotReached,
    OutsideWorkingHours,
    Registry,
    SystemClock,
    VirtualClock,
    parse_definition,
)

CENTRE = Actor("ops-1", "centre")
CALL_CENTRE = Actor("cc-1", "centre")  # a grid worker reports with a photo (evidence rules)
WATER = Actor("water-3", "department")

EVERY_DAY_9_TO_5 = "\n".join(
    f"      {day}: [\"09:00-17:00\"]"
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))

TIME_RULES = f"""
format: 1
name: time_rules
initial: open
roles: {{centre: {{}}, system: {{}}}}
levels: [{{name: community}}, {{name: street}}]
report: {{roles: centre}}
calendars:
  office:
    zone: UTC
    hours:
{EVERY_DAY_9_TO_5}
    valid_from: 2020-01-01
    valid_until: 2030-12-31
states: {{open: {{}}, working: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: start, source: open, dest: working, roles: centre}}
  # a minimum lag: finish at least an hour after start
  - {{trigger: finish, source: working, dest: done, roles: centre}}
  # duty hours: sign_off only inside the office's working hours
  - {{trigger: sign_off, source: working, dest: done, roles: centre, during: office}}
lags:
  settle: {{since: start, until: finish, min: PT1H}}
deadlines:
  idle: {{state: open, after: P1D, on_breach: record}}
  stuck: {{state: working, after: P1D, on_breach: record}}
"""
"""Time rules that refuse after today's engine wrote the transition (lag, duty hours)."""


def calendar_range(valid_from: str, valid_until: str) -> str:
    """A lifecycle whose ``start`` needs 4 working hours of a calendar valid only as given."""
    return f"""
format: 1
name: calendar_range
initial: open
roles: {{centre: {{}}, system: {{}}}}
levels: [{{name: community}}]
report: {{roles: centre}}
calendars:
  office:
    zone: UTC
    hours:
      monday: ["09:00-17:00"]
      tuesday: ["09:00-17:00"]
      wednesday: ["09:00-17:00"]
      thursday: ["09:00-17:00"]
      friday: ["09:00-17:00"]
    valid_from: {valid_from}
    valid_until: {valid_until}
states: {{open: {{}}, working: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: start, source: open, dest: working, roles: centre}}
  - {{trigger: finish, source: working, dest: done, roles: centre}}
deadlines:
  pickup: {{state: open, after: PT2H, on_breach: record}}
  work_due: {{state: working, after: {{working: PT4H, calendar: office}}, on_breach: record}}
"""


DUTY_ESCALATION = f"""
format: 1
name: duty_escalation
initial: open
roles: {{centre: {{}}, system: {{}}}}
levels: [{{name: community}}, {{name: street}}]
report: {{roles: centre}}
calendars:
  office:
    zone: UTC
    hours:
{EVERY_DAY_9_TO_5}
states: {{open: {{}}, escalated: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: finish, source: [open, escalated], dest: done, roles: centre}}
  # the escalation is a duty-hours transition: refused outside 09:00-17:00 UTC
  - {{trigger: escalate, source: open, dest: escalated, roles: [system, centre],
      during: office}}
deadlines:
  respond: {{state: open, after: PT1H, on_breach: escalate}}
  note: {{state: open, after: PT90M, on_breach: record}}
"""
"""A deadline that escalates through a transition restricted to the office's hours."""


@pytest.fixture
def open_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Engines on real SQLite files in the test's folder; all stopped at teardown."""
    opened: list[Engine] = []

    def make(clock: Any, *texts: str, registry: Registry | None = None,
             **kwargs: Any) -> Engine:
        eng = Engine(tmp_path / f"e{len(opened)}.sqlite", clock=clock, registry=registry,
                     **kwargs)
        opened.append(eng)
        for text in texts:
            eng.deploy(parse_definition(text, file="inline.yaml"))
        return eng

    yield make
    for eng in opened:
        eng.stop()


def snap(eng: Engine, ticket_id: str) -> tuple[Any, Any, Any]:
    """What a refused command must leave alone: the ticket, its history, its timers."""
    return eng.get(ticket_id), eng.history(ticket_id), eng.timers(ticket_id)


def kinds(eng: Engine, ticket_id: str) -> list[tuple[str, str, str]]:
    return [(h.kind, h.trigger, h.to_state) for h in eng.history(ticket_id)]


# -- a. a refusal after the first write rolls back that command alone -------------------------


def test_a_minimum_lag_refused_inside_a_batch_keeps_the_earlier_tickets(
    open_engine: Callable[..., Engine],
) -> None:
    clock = VirtualClock(datetime(2024, 5, 7, 20, 0, tzinfo=UTC))
    eng = open_engine(clock, TIME_RULES)
    eng.report("time_rules", {}, actor=CENTRE, ticket_id="R")
    eng.fire("R", "start", actor=CENTRE)
    clock.advance(timedelta(minutes=10))
    before = snap(eng, "R")
    with eng.batch():
        eng.report("time_rules", {}, actor=CENTRE, ticket_id="A")
        eng.fire("A", "start", actor=CENTRE)
        eng.report("time_rules", {}, actor=CENTRE, ticket_id="B")
        with pytest.raises(MinimumLagNotReached) as info:
            eng.fire("R", "finish", actor=CENTRE)  # 10 minutes after start; the lag is 1 h
        eng.report("time_rules", {}, actor=CENTRE, ticket_id="C")  # the batch goes on
    assert (info.value.ticket_id, info.value.lag) == ("R", "settle")
    assert snap(eng, "R") == before
    assert kinds(eng, "A") == [("report", "report", "open"),
                               ("transition", "start", "working")]
    assert kinds(eng, "B") == kinds(eng, "C") == [("report", "report", "open")]
    assert [(t.name, t.status) for t in eng.timers("A")] == [("idle", "cancelled"),
                                                             ("stuck", "pending")]
    assert eng.check_invariants() == []


def test_duty_hours_refused_inside_a_batch_keep_the_earlier_tickets(
    open_engine: Callable[..., Engine],
) -> None:
    clock = VirtualClock(datetime(2024, 5, 7, 20, 0, tzinfo=UTC))  # the office is closed
    eng = open_engine(clock, TIME_RULES)
    eng.report("time_rules", {}, actor=CENTRE, ticket_id="R")
    eng.fire("R", "start", actor=CENTRE)
    before = snap(eng, "R")
    with eng.batch():
        eng.report("time_rules", {}, actor=CENTRE, ticket_id="A")
        eng.report("time_rules", {}, actor=CENTRE, ticket_id="B")
        with pytest.raises(OutsideWorkingHours) as info:
            eng.fire("R", "sign_off", actor=CENTRE)
        eng.report("time_rules", {}, actor=CENTRE, ticket_id="C")
    assert (info.value.calendar, info.value.next_opening) == (
        "office", datetime(2024, 5, 8, 9, 0, tzinfo=UTC))
    assert snap(eng, "R") == before
    for tid in ("A", "B", "C"):
        assert kinds(eng, tid) == [("report", "report", "open")]
        assert [(t.name, t.status) for t in eng.timers(tid)] == [("idle", "pending")]
    assert eng.check_invariants() == []


def test_a_bounce_needing_approval_inside_a_batch_keeps_the_earlier_tickets(
    open_engine: Callable[..., Engine],
) -> None:
    eng = open_engine(VirtualClock(datetime(2024, 5, 7, 1, 0, tzinfo=UTC)))
    eng.deploy("work_order")  # deploying needs its own transaction (Departments' docstring)
    depts = Departments(eng)
    eng.report("grid_incident", {"category": "blocked_drain", "area": "A1"},
               actor=CALL_CENTRE, ticket_id="T1")
    depts.dispatch("T1", actor=CENTRE)  # T1.1 (water) is the first receiver
    before = snap(eng, "T1.1"), snap(eng, "T1"), depts.work_orders("T1")
    with eng.batch():
        eng.report("grid_incident", {"category": "garbage", "area": "A2"},
                   actor=CALL_CENTRE, ticket_id="T2")
        depts.dispatch("T2", actor=CENTRE)
        eng.report("grid_incident", {"category": "noise", "area": "A3"},
                   actor=CALL_CENTRE, ticket_id="T3")
        with pytest.raises(BounceNeedsApproval) as info:
            depts.bounce("T1.1", actor=WATER, reason="a sewage pipe, not water supply")
        eng.report("grid_incident", {"category": "noise", "area": "A4"},
                   actor=CALL_CENTRE, ticket_id="T4")
    assert (info.value.ticket_id, info.value.parent_id) == ("T1.1", "T1")
    assert (snap(eng, "T1.1"), snap(eng, "T1"), depts.work_orders("T1")) == before
    assert kinds(eng, "T2") == [("report", "report", "reported"),
                                ("transition", "dispatch", "dispatched")]
    assert [(o.id, o.department, o.state) for o in depts.work_orders("T2")] == [
        ("T2.1", "sanitation", "issued")]
    assert kinds(eng, "T3") == kinds(eng, "T4") == [("report", "report", "reported")]
    assert eng.check_invariants() == []


# -- b. a calendar out of range is a refusal ---------------------------------------------------

OUT_OF_RANGE = [
    # Friday 15:00: 2 working hours left on the calendar's last day, the other 2 need June
    pytest.param("2024-01-01", "2024-05-31", datetime(2024, 5, 31, 15, 0, tzinfo=UTC),
                 id="after-valid-until"),
    # a replay of a ticket from before the calendar's first day
    pytest.param("2024-06-03", "2030-12-31", datetime(2024, 5, 31, 10, 0, tzinfo=UTC),
                 id="before-valid-from"),
]


@pytest.mark.parametrize(("valid_from", "valid_until", "now"), OUT_OF_RANGE)
def test_a_calendar_out_of_range_inside_a_batch_refuses_that_command_alone(
    open_engine: Callable[..., Engine], valid_from: str, valid_until: str, now: datetime
) -> None:
    eng = open_engine(VirtualClock(now), calendar_range(valid_from, valid_until))
    eng.report("calendar_range", {}, actor=CENTRE, ticket_id="R")
    before = snap(eng, "R")
    with eng.batch():
        eng.report("calendar_range", {}, actor=CENTRE, ticket_id="A")
        try:
            eng.fire("R", "start", actor=CENTRE)  # needs a working day the calendar lacks
        except GridwhistleError as exc:  # before issue 10: PartialCommandError
            refused: GridwhistleError | None = exc
        else:
            refused = None
        eng.report("calendar_range", {}, actor=CENTRE, ticket_id="B")
    assert isinstance(refused, CommandRefused), repr(refused)
    assert "'office'" in str(refused)
    assert snap(eng, "R") == before
    for tid in ("A", "B"):
        assert kinds(eng, tid) == [("report", "report", "open")]
        assert [(t.name, t.status) for t in eng.timers(tid)] == [("pickup", "pending")]
    assert eng.check_invariants() == []


@pytest.mark.parametrize(("valid_from", "valid_until", "now"), OUT_OF_RANGE)
def test_a_calendar_out_of_range_outside_a_batch_is_a_refusal_that_writes_nothing(
    open_engine: Callable[..., Engine], valid_from: str, valid_until: str, now: datetime
) -> None:
    eng = open_engine(VirtualClock(now), calendar_range(valid_from, valid_until))
    eng.report("calendar_range", {}, actor=CENTRE, ticket_id="R")
    before = snap(eng, "R")
    with pytest.raises(GridwhistleError) as info:  # today: CalendarOutOfRange
        eng.fire("R", "start", actor=CENTRE)
    assert isinstance(info.value, CommandRefused), repr(info.value)
    assert "'office'" in str(info.value)
    assert snap(eng, "R") == before


# -- c. a breach whose escalation is outside duty hours ---------------------------------------


def test_a_breach_outside_the_escalations_duty_hours_is_recorded_and_the_rest_fire(
    open_engine: Callable[..., Engine],
) -> None:
    reported = datetime(2024, 5, 7, 19, 0, tzinfo=UTC)  # the office closed at 17:00
    eng = open_engine(VirtualClock(reported), DUTY_ESCALATION)
    ids = ["D1", "D2", "D3"]
    for tid in ids:
        eng.report("duty_escalation", {}, actor=CENTRE, ticket_id=tid)
    now = datetime(2024, 5, 7, 22, 0, tzinfo=UTC)
    fired = eng.run_due(now)
    assert sorted((f.timer.ticket_id, f.timer.name, f.outcome) for f in fired) == [
        (tid, name, "breached") for tid in ids for name in ("note", "respond")]
    assert eng.timers(status="pending") == []
    assert {t.status for t in eng.timers()} == {"fired"}
    next_opening = datetime(2024, 5, 8, 9, 0, tzinfo=UTC)
    for tid in ids:
        t = eng.get(tid)
        assert (t.state, t.level, t.overdue) == ("open", "community", True)
        breaches = {h.trigger: h for h in eng.history(tid) if h.kind == "breach"}
        assert sorted(breaches) == ["note", "respond"]
        refusal = str(OutsideWorkingHours(tid, "escalate", "office", next_opening))
        assert breaches["respond"].data["escalation_refused"] == refusal
        assert "escalation_refused" not in breaches["note"].data
        assert [h.kind for h in eng.history(tid)] == ["report", "breach", "breach"]
    assert eng.run_due(now + timedelta(hours=1)) == []
    assert eng.check_invariants() == []


CALENDAR_RUNS_OUT = """
format: 1
name: calendar_runs_out
initial: open
roles: {centre: {}, system: {}}
levels: [{name: community}, {name: street}]
report: {roles: centre}
calendars:
  office:
    zone: America/Chicago
    hours: {monday: ["09:00-17:00"], tuesday: ["09:00-17:00"], wednesday: ["09:00-17:00"],
            thursday: ["09:00-17:00"], friday: ["09:00-17:00"]}
    valid_from: 2024-01-01
    valid_until: 2024-12-31
states: {open: {}, escalated: {}, closed: {final: true}}
transitions:
  - {trigger: close, source: [open, escalated], dest: closed, roles: centre}
  - {trigger: escalate, source: open, dest: escalated, roles: [system, centre]}
deadlines:
  esc: {state: open, after: P2D, on_breach: escalate}
  # the escalated state's deadline needs the office's working hours: in 2025 it has none
  answer: {state: escalated, after: {working: PT8H, calendar: office}, on_breach: record}
"""


def test_an_escalation_past_the_calendars_end_fails_its_timer_instead_of_vanishing(
    open_engine: Callable[..., Engine],
) -> None:
    # fresh-user audit (Dec 1): the escalation was recorded as refused and the timer marked
    # fired, so the ticket stayed at the bottom level for ever with nothing pending
    reported = datetime(2024, 12, 29, 19, 0, tzinfo=UTC)
    eng = open_engine(VirtualClock(reported), CALENDAR_RUNS_OUT)
    eng.report("calendar_runs_out", {}, actor=CENTRE, ticket_id="C1")
    due = reported + timedelta(days=2)
    fired = eng.run_due(due + timedelta(minutes=1))
    assert [(f.timer.name, f.outcome) for f in fired] == [("esc", "failed")]
    (timer,) = eng.timers("C1", status="pending")
    assert (timer.name, timer.failures) == ("esc", 1)
    assert timer.last_error is not None and timer.last_error.startswith("OutsideCalendar")
    assert "2024-01-01 to 2024-12-31" in timer.last_error  # the validity, not "open end"
    t = eng.get("C1")
    assert (t.state, t.level, t.overdue) == ("open", "community", False)
    assert [h.kind for h in eng.history("C1")] == ["report"]  # nothing half done


# -- d. a hung host listener does not stop the clock ------------------------------------------

HUNG_LISTENER_WAIT = 20.0
"""Seconds to wait for every timer to fire: a liveness bound, not a speed assertion."""


def test_a_hung_listener_does_not_stop_deadlines(open_engine: Callable[..., Engine]) -> None:
    release = threading.Event()
    called = threading.Event()
    registry = Registry()

    @registry.listener("hangs", types=["deadline.breached"])
    def hang(event: Any) -> None:
        called.set()
        release.wait(60)  # a host listener stuck on a remote call

    text = """
format: 1
name: soon
initial: open
roles: {centre: {}, system: {}}
levels: [{name: community}]
report: {roles: centre}
states: {open: {}, done: {final: true}}
transitions:
  - {trigger: finish, source: open, dest: done, roles: centre}
deadlines:
  first: {state: open, after: PT1S, on_breach: record}
  second: {state: open, after: PT4S, on_breach: record}
  third: {state: open, after: PT6S, on_breach: record}
"""
    eng = open_engine(SystemClock(), text, registry=registry, sweep_seconds=1.0)
    try:
        eng.start()
        for tid in ("H1", "H2", "H3"):
            eng.report("soon", {}, actor=CENTRE, ticket_id=tid)
        assert len(eng.timers(status="pending")) == 9
        deadline = time.monotonic() + HUNG_LISTENER_WAIT
        while eng.timers(status="pending") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert called.wait(HUNG_LISTENER_WAIT)  # the listener is stuck on a breach
        assert [(t.ticket_id, t.name) for t in eng.timers(status="pending")] == []
        assert sorted((t.ticket_id, t.name) for t in eng.timers(status="fired")) == [
            (tid, name) for tid in ("H1", "H2", "H3") for name in ("first", "second", "third")]
    finally:
        release.set()


def test_a_timer_that_keeps_failing_is_retried_hourly_for_ever() -> None:
    # the stateful batch test found it: the 48th failure's doubling overflowed timedelta
    # (OverflowError in the dispatcher) once a calendar out of range failed a timer for days
    from engine.runtime.dispatcher import MAX_RETRY, retry_delay

    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 12)] == [1, 2, 4, 2048]
    assert retry_delay(13) == retry_delay(48) == retry_delay(10**6) == MAX_RETRY
    assert timedelta(hours=1) == MAX_RETRY
