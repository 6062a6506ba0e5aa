"""Internal transitions: a self-transition marked ``internal: true`` (a note, a comment)
does not leave and re-enter its state, so the state's deadline runs on; an ordinary
self-transition restarts it. ``internal`` needs source = dest (file:line)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import START, deadline_timers

from engine import Actor, DefinitionError, Engine, VirtualClock, parse_definition

CENTRE = Actor("ops-1", "centre")

LIFECYCLE = """format: 1
name: notes
initial: open
roles: {centre: {}, system: {}}
levels: [{name: community}]
report: {roles: centre}
states: {open: {}, done: {final: true}}
transitions:
  - {trigger: note, source: open, dest: open, roles: centre, internal: true}
  - {trigger: touch, source: open, dest: open, roles: centre}
  - {trigger: finish, source: open, dest: done, roles: centre}
deadlines:
  open_due: {state: open, after: PT2H, on_breach: record}
"""


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    e = Engine(tmp_path / "t.sqlite", clock=VirtualClock(START))
    e.deploy(parse_definition(LIFECYCLE))
    yield e
    e.stop()


def test_an_internal_transition_keeps_the_states_deadline(engine: Engine) -> None:
    engine.report("notes", {}, actor=CENTRE, ticket_id="T-1")
    engine.run_until(START + timedelta(hours=1))
    engine.fire("T-1", "note", actor=CENTRE, reason="called the resident")
    (timer,) = deadline_timers(engine, "T-1", status="pending")
    assert (timer.name, timer.due_at) == ("open_due", START + timedelta(hours=2))
    history = engine.history("T-1")
    assert [(h.kind, h.trigger, h.from_state, h.to_state) for h in history] == [
        ("report", "report", None, "open"), ("transition", "note", "open", "open")]
    assert history[-1].data == {"internal": True}
    fired = engine.run_until(START + timedelta(hours=3))
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("open_due", START + timedelta(hours=2), "breached")]
    assert engine.check_invariants() == []


def test_an_ordinary_self_transition_restarts_the_states_deadline(engine: Engine) -> None:
    engine.report("notes", {}, actor=CENTRE, ticket_id="T-2")
    engine.run_until(START + timedelta(hours=1))
    engine.fire("T-2", "touch", actor=CENTRE)
    (timer,) = deadline_timers(engine, "T-2", status="pending")
    assert timer.due_at == START + timedelta(hours=3)
    assert engine.check_invariants() == []


def test_internal_needs_source_equal_to_dest() -> None:
    bad = LIFECYCLE.replace(
        "  - {trigger: finish, source: open, dest: done, roles: centre}\n",
        "  - {trigger: finish, source: open, dest: done, roles: centre, internal: true}\n")
    with pytest.raises(DefinitionError) as err:
        parse_definition(bad, file="bad.yaml")
    assert [str(p) for p in err.value.problems] == [
        "bad.yaml:11: transitions[2].internal: an internal transition stays in its state: "
        "source must be 'done' (its dest), not open; drop internal: true or split it"]
