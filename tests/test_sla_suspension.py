"""SLA clocks and the oversight suspension (issue 11), for clocks due at a field.

A clock listed in ``suspension.clocks`` is suspended and resumed; a clock that is not listed
is left alone by both — its due instant does not follow the field that the ``resumed`` row
moves for a held deadline due at the same field. A breached clock stays breached: its due
instant stays the breach's, whatever later moves its field, and it has no timer.
``check`` (``sla_clock``) finds a clock whose status, due instant and timers disagree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import START

from engine import Actor, Engine, SlaClock, VirtualClock, parse_definition

CENTRE = Actor("ops-1", "centre")
H = timedelta(hours=1)

# `resolution` (a ticket deadline) and two SLA clocks are due at `target_at`; a suspension
# stops `held` and `time_to_resolve`, not `promised`.
PROMISE = """format: 1
name: promise
initial: open
roles: {centre: {}, department: {}, system: {}}
levels: [{name: community}]
fields:
  department: {type: string}
  target_at: {type: datetime}
report: {roles: centre}
states: {open: {}, working: {}, done: {final: true}}
transitions:
  - {trigger: start, source: open, dest: working, roles: [centre]}
  - {trigger: retarget, source: working, dest: working, roles: [centre], internal: true}
  - {trigger: finish, source: working, dest: done, roles: [centre]}
deadlines:
  resolution: {stop_in: [done], at_field: target_at, on_breach: record}
resolution_deadline: resolution
slas:
  promised:
    stop: {states: [done]}
    at_field: target_at
    warn: [{before: PT30M}]
  held:
    stop: {states: [done]}
    at_field: target_at
  time_to_resolve:
    stop: {states: [done]}
    target: PT8H
oversight:
  suspension:
    causes:
      weather: {title: {zh: 恶劣天气, en: Bad weather}}
    max_duration: P1D
    max_count: 2
    clocks: [held, time_to_resolve]
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "s.sqlite", clock=VirtualClock(START))
    e.deploy(parse_definition(PROMISE))
    yield e
    e.stop()


def _at(engine: Engine, when: object) -> None:
    engine.clock.set(when)  # type: ignore[attr-defined]


def _working(engine: Engine, tid: str, target: object) -> None:
    engine.report("promise", {"department": "water", "target_at": target}, actor=CENTRE,
                  ticket_id=tid)
    engine.fire(tid, "start", actor=CENTRE)


def _clocks(engine: Engine, tid: str) -> dict[str, SlaClock]:
    return {c.name: c for c in engine.sla_clocks(tid)}


def _sla_timers(engine: Engine, tid: str, clock: str) -> dict[str, object]:
    return {t.name: t.due_at for t in engine.timers(tid, status="pending")
            if t.name == f"sla:{clock}" or t.name.startswith(f"sla:{clock}:")}


def test_a_clock_not_listed_breaches_while_suspended_and_the_resume_leaves_it_breached(
        engine: Engine) -> None:
    """The defect: ``promised`` (not listed) breached at 10:00 while suspended; the
    ``resumed`` row at 14:00 moved ``target_at`` to 15:00 for the held ``resolution``, and
    the clock followed: "running, due 15:00", outcome ``breached``, no timer — and ``check``
    said ok."""
    _working(engine, "P-1", START + 2 * H)  # 08:00, target 10:00
    _at(engine, START + H)
    engine.suspend("P-1", "weather", reason="typhoon", actor=CENTRE)
    promised = _clocks(engine, "P-1")["promised"]
    assert (promised.status, promised.due_at) == ("running", START + 2 * H)  # not suspended
    assert _sla_timers(engine, "P-1", "promised") == {
        "sla:promised": START + 2 * H, "sla:promised:warn:0": START + 1.5 * H}
    fired = engine.run_until(START + 6 * H)
    assert [(f.timer.name, f.outcome) for f in fired] == [
        ("sla:promised:warn:0", "warned"), ("sla:promised", "breached")]

    _at(engine, START + 6 * H)  # 14:00: suspended 5 h
    engine.resume("P-1", reason="lifted", actor=CENTRE)
    assert engine.get("P-1").fields["target_at"] == START + 7 * H  # 15:00: `resolution` moved
    promised = _clocks(engine, "P-1")["promised"]
    assert (promised.status, promised.outcome, promised.breached_at, promised.due_at) == (
        "running", "breached", START + 2 * H, START + 2 * H)
    assert _sla_timers(engine, "P-1", "promised") == {}
    held = _clocks(engine, "P-1")["held"]  # listed: suspended, then due at the moved field
    assert (held.status, held.outcome, held.due_at) == ("running", None, START + 7 * H)
    assert _sla_timers(engine, "P-1", "held") == {"sla:held": START + 7 * H}
    ttr = _clocks(engine, "P-1")["time_to_resolve"]  # 1 h run, 7 h left from 14:00
    assert (ttr.status, ttr.elapsed, ttr.due_at) == ("running", H, START + 13 * H)
    assert engine.check_invariants() == []

    _at(engine, START + 7 * H)
    engine.fire("P-1", "finish", actor=CENTRE)
    clocks = _clocks(engine, "P-1")
    assert {n: (c.status, c.outcome) for n, c in clocks.items()} == {
        "promised": ("stopped", "breached"), "held": ("stopped", "met"),
        "time_to_resolve": ("stopped", "met")}
    assert [h.kind for h in engine.history("P-1")].count("sla_breach") == 1
    assert engine.check_invariants() == []


def test_a_clock_not_listed_keeps_its_due_instant_through_a_suspension(engine: Engine) -> None:
    """Not suspended, so not given the suspended time: ``promised`` stays due at 16:00 and
    breaches then, while ``resolution`` and the listed ``held`` are due 2 h later."""
    _working(engine, "P-2", START + 8 * H)  # target 16:00
    _at(engine, START + H)
    engine.suspend("P-2", "weather", reason="storm", actor=CENTRE)
    assert (_clocks(engine, "P-2")["held"].status, _clocks(engine, "P-2")["held"].due_at) == (
        "suspended", None)
    assert _sla_timers(engine, "P-2", "held") == {}
    _at(engine, START + 3 * H)
    engine.resume("P-2", reason="over", actor=CENTRE)
    assert engine.get("P-2").fields["target_at"] == START + 10 * H
    clocks = _clocks(engine, "P-2")
    assert (clocks["promised"].status, clocks["promised"].due_at) == ("running", START + 8 * H)
    assert _sla_timers(engine, "P-2", "promised") == {
        "sla:promised": START + 8 * H, "sla:promised:warn:0": START + 7.5 * H}
    assert (clocks["held"].status, clocks["held"].due_at) == ("running", START + 10 * H)
    assert engine.check_invariants() == []

    fired = engine.run_until(START + 9 * H)
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("sla:promised:warn:0", START + 7.5 * H, "warned"),
        ("sla:promised", START + 8 * H, "breached")]
    fired = engine.run_until(START + 11 * H)
    assert sorted((f.timer.name, f.timer.due_at) for f in fired) == [
        ("resolution", START + 10 * H), ("sla:held", START + 10 * H),
        ("sla:time_to_resolve", START + 10 * H)]  # 1 h + 7 h after resuming at 11:00
    assert engine.check_invariants() == []


def test_the_system_resuming_at_the_limit_leaves_a_clock_not_listed_alone(
        engine: Engine) -> None:
    _working(engine, "P-3", START + 8 * H)
    engine.suspend("P-3", "weather", reason="storm", actor=CENTRE, until=START + 2 * H)
    fired = engine.run_until(START + 2 * H + timedelta(minutes=1))
    assert [(f.timer.name, f.outcome) for f in fired] == [("oversight:resume", "resumed")]
    assert engine.get("P-3").fields["target_at"] == START + 10 * H
    clocks = _clocks(engine, "P-3")
    assert clocks["promised"].due_at == START + 8 * H
    assert clocks["held"].due_at == START + 10 * H
    assert engine.check_invariants() == []


def test_a_breached_clock_does_not_follow_its_field_later(engine: Engine) -> None:
    """Once breached, a clock due at a field keeps the breach's instant: a transition that
    sets the field later gives it no new due instant (it has no timer to meet it)."""
    _working(engine, "P-4", START + 2 * H)
    engine.run_until(START + 3 * H)
    _at(engine, START + 3 * H)
    engine.fire("P-4", "retarget", actor=CENTRE, fields={"target_at": START + 9 * H})
    clocks = _clocks(engine, "P-4")
    for name in ("promised", "held"):
        assert (clocks[name].status, clocks[name].outcome, clocks[name].due_at,
                clocks[name].breached_at) == ("running", "breached", START + 2 * H,
                                              START + 2 * H)
        assert _sla_timers(engine, "P-4", name) == {}
    assert engine.check_invariants() == []
    fired = engine.run_until(START + 10 * H)  # no second breach, no warning
    assert [f.timer.name for f in fired] == ["sla:time_to_resolve"]


def test_a_breached_listed_clock_resumes_breached(engine: Engine) -> None:
    """``time_to_resolve`` (PT8H, listed) breached at 16:00, before the suspension: resumed
    at 19:00 it is still breached at 16:00, with no timer (it showed "due 19:00")."""
    _working(engine, "P-5", START + 20 * H)
    fired = engine.run_until(START + 9 * H)
    assert [(f.timer.name, f.outcome) for f in fired] == [
        ("sla:time_to_resolve", "breached")]
    _at(engine, START + 9 * H)
    engine.suspend("P-5", "weather", reason="storm", actor=CENTRE)
    ttr = _clocks(engine, "P-5")["time_to_resolve"]
    assert (ttr.status, ttr.elapsed, ttr.due_at) == ("suspended", 9 * H, None)
    _at(engine, START + 11 * H)
    engine.resume("P-5", reason="over", actor=CENTRE)
    ttr = _clocks(engine, "P-5")["time_to_resolve"]
    assert (ttr.status, ttr.outcome, ttr.breached_at, ttr.due_at) == (
        "running", "breached", START + 8 * H, START + 8 * H)
    assert _sla_timers(engine, "P-5", "time_to_resolve") == {}
    assert _clocks(engine, "P-5")["held"].due_at == START + 22 * H
    assert engine.check_invariants() == []


def test_a_field_set_while_suspended(engine: Engine) -> None:
    """A host's row in place sets ``target_at`` to 20:00 while suspended: ``promised`` runs,
    so it follows the field then — and the ``resumed`` row, which sets the field to the held
    ``resolution``'s due plus the time suspended (18:00), does not move it again; ``held``,
    suspended, is armed at resuming from the field as the ``resumed`` row leaves it."""
    _working(engine, "P-6", START + 8 * H)
    _at(engine, START + H)
    engine.suspend("P-6", "weather", reason="storm", actor=CENTRE)
    _at(engine, START + 2 * H)
    with engine.atomic() as unit:
        unit.note("P-6", "target_changed", "target_at", actor=CENTRE, reason="new promise",
                  fields={"target_at": (START + 12 * H).isoformat()})
    clocks = _clocks(engine, "P-6")
    assert (clocks["promised"].status, clocks["promised"].due_at) == (
        "running", START + 12 * H)
    assert _sla_timers(engine, "P-6", "promised") == {
        "sla:promised": START + 12 * H, "sla:promised:warn:0": START + 11.5 * H}
    assert (clocks["held"].status, clocks["held"].due_at) == ("suspended", None)
    assert _sla_timers(engine, "P-6", "held") == {}
    assert engine.check_invariants() == []

    _at(engine, START + 3 * H)
    engine.resume("P-6", reason="over", actor=CENTRE)
    assert engine.get("P-6").fields["target_at"] == START + 10 * H
    clocks = _clocks(engine, "P-6")
    assert clocks["promised"].due_at == START + 12 * H
    assert _sla_timers(engine, "P-6", "promised") == {
        "sla:promised": START + 12 * H, "sla:promised:warn:0": START + 11.5 * H}
    assert (clocks["held"].status, clocks["held"].due_at) == ("running", START + 10 * H)
    assert _sla_timers(engine, "P-6", "held") == {"sla:held": START + 10 * H}
    assert engine.check_invariants() == []


def test_check_finds_sla_clocks_that_disagree_with_their_timers(tmp_path: Path) -> None:
    """``sla_clock``: a running clock with a due instant and no pending timer (or one due
    at another instant), a breached clock with a due instant after its breach, a clock
    that is not running yet has timers, a suspended clock on a ticket that is not
    suspended, a timer of a clock that was never started."""
    eng = Engine(tmp_path / "c.sqlite", clock=VirtualClock(START))
    eng.deploy(parse_definition(PROMISE))
    for tid in ("C-1", "C-2", "C-3", "C-4", "C-5"):
        _working(eng, tid, START + 2 * H)
    eng.run_until(START + 3 * H)  # C-*: `promised` and `held` breached at 10:00
    _at(eng, START + 3 * H)
    eng.suspend("C-4", "weather", reason="storm", actor=CENTRE)
    assert eng.check_invariants() == []
    eng.stop()
    later = (START + 7 * H).replace(tzinfo=None).isoformat(" ", "microseconds")  # as stored
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        # C-1: time_to_resolve's breach timer lost; C-2: it is due at another instant
        db.execute("UPDATE gw_timers SET status = 'cancelled' WHERE ticket_id = 'C-1' "
                   "AND name = 'sla:time_to_resolve'")
        db.execute("UPDATE gw_timers SET due_at = ? WHERE ticket_id = 'C-2' "
                   "AND name = 'sla:time_to_resolve'", (later,))
        # C-3: the phantom: breached at 10:00, yet "running, due 15:00"
        db.execute("UPDATE gw_sla_clocks SET due_at = ? WHERE ticket_id = 'C-3' "
                   "AND name = 'promised'", (later,))
        # C-4 is suspended: `time_to_resolve` suspended, yet its timer pending again
        db.execute("UPDATE gw_timers SET status = 'pending' WHERE ticket_id = 'C-4' "
                   "AND name = 'sla:time_to_resolve'")
        # C-5: not suspended, yet a clock `suspended`; and a timer of no clock of the ticket
        db.execute("UPDATE gw_sla_clocks SET status = 'suspended', running_since = NULL, "
                   "due_at = NULL WHERE ticket_id = 'C-5' AND name = 'held'")
        db.execute("DELETE FROM gw_sla_clocks WHERE ticket_id = 'C-5' "
                   "AND name = 'time_to_resolve'")
    eng = Engine(tmp_path / "c.sqlite", clock=VirtualClock(START))
    try:
        found = sorted((v.ticket_id, v.rule, v.message) for v in eng.check_invariants())
        sixteen = (START + 8 * H).isoformat()
        assert found == [
            ("C-1", "sla_clock", f"clock 'time_to_resolve' is running, due {sixteen}, but "
             "has no pending timer 'sla:time_to_resolve'"),
            ("C-2", "sla_clock", f"clock 'time_to_resolve' is due {sixteen}, but its timer "
             f"'sla:time_to_resolve' is due {(START + 7 * H).isoformat()}"),
            ("C-3", "sla_clock", "clock 'promised' was breached at "
             f"{(START + 2 * H).isoformat()}, yet shows a due instant "
             f"{(START + 7 * H).isoformat()}"),
            ("C-4", "sla_clock", "clock 'time_to_resolve' is suspended, yet its timer "
             "'sla:time_to_resolve' is pending"),
            ("C-5", "sla_clock", "clock 'held' is suspended; the history says the ticket "
             "is not suspended"),
            ("C-5", "sla_clock", "timer 'sla:time_to_resolve' is pending, but the ticket "
             "has no clock 'time_to_resolve'"),
        ]
    finally:
        eng.stop()
