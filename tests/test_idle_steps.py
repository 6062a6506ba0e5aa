"""Steps left out per shape (Participant.idle): only where they would have done nothing.

The engine asks each participant once per lifecycle version, step and report/transition
shape whether its ``check`` or ``plan`` does nothing for it, and then does not call it for
such changes. Every ``True`` the engine's own participants give for the bundled lifecycles
is checked here against the step itself (called with a context that fails on any use and
changes of that shape with every field, evidence and a level change); and a memoised
shape still runs the steps that act on the ticket's state (a suspended ticket refuses the
dispatch that another ticket's dispatch memoised).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine import (
    Actor,
    Change,
    CheckContext,
    Engine,
    OversightRefused,
    Participant,
    PlanContext,
    VirtualClock,
)
from engine.definition import bundled_workflows_dir, load_definition
from engine.lifecycle.machine import Lifecycle

CENTRE = Actor("ops-1", "centre")
AT = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


class _Untouchable:
    """A context that fails on any use: an idle step must not read or stage anything."""

    def __init__(self, participant: Participant):
        self.participant = participant

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{type(self.participant).__name__} used ctx.{name} "
                             "in a step it says is idle")


_KEYS = ("fields", "internal", "evidence")  # what a report's or transition's data holds


def _shapes(lc: Lifecycle) -> list[tuple[str, str, str | None, str, frozenset[str]]]:
    moves: list[tuple[str, str, str | None, str]] = [
        ("report", "report", None, lc.spec.initial)]
    for t in lc.spec.transitions:
        sources = t.source if isinstance(t.source, list | tuple) else [t.source]
        for source in sources:
            moves.append(("transition", t.trigger, source, t.dest or source))
    keys = [frozenset(k for i, k in enumerate(_KEYS) if n >> i & 1) for n in range(8)]
    return [(*move, k) for move in moves for k in keys]


def _changes(lc: Lifecycle, kind: str, trigger: str, source: str | None, dest: str,
             keys: frozenset[str]) -> list[Change]:
    """Changes of the shape: no field, or every one; the same level, or another."""
    every = {name: "x" for name in lc.spec.fields}
    levels = list(lc.levels)
    out = []
    for fields, from_level in (({}, levels[0]), (every, levels[-1])):
        full: dict[str, Any] = {"fields": fields or {"category": "x"}, "internal": True,
                                "evidence": [{"kind": "photo", "ref": "r"}]}
        data = {k: v for k, v in full.items() if k in keys}
        out.append(Change("T-1", lc, 2, kind, trigger, source, dest,
                          None if kind == "report" else from_level, levels[0], "a-1", "centre",
                          "why", AT, fields, data, "id"))
    return out


@pytest.mark.parametrize("name", sorted(p.stem for p in bundled_workflows_dir().glob("*.yaml")))
def test_every_idle_step_of_the_bundled_lifecycles_does_nothing(name: str,
                                                                  tmp_path: Path) -> None:
    eng = Engine(tmp_path / "e.sqlite", clock=VirtualClock(AT))
    try:
        lc = Lifecycle(load_definition(bundled_workflows_dir() / f"{name}.yaml"))
        idle = 0
        for participant in eng.kernel.participants:
            if not participant.interested(lc):
                continue
            ctx: Any = _Untouchable(participant)
            for shape in _shapes(lc):
                for step in ("check", "plan"):
                    if not participant.idle(step, lc, *shape):
                        continue
                    idle += 1
                    method = getattr(participant, step)
                    for change in _changes(lc, *shape):
                        assert method(ctx, change) is None
        assert idle > 0 or name != "grid_incident"  # the test checks something
    finally:
        eng.stop()


class _Counting(Participant):
    """Plans only arrivals (says so); checks everything."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.checked: list[str] = []
        self.planned: list[str] = []

    def idle(self, step: Any, lifecycle: Lifecycle, kind: str, trigger: str,
             from_state: str | None, to_state: str, data_keys: frozenset[str]) -> bool:
        self.asked.append((step, trigger))
        return step == "plan" and trigger != "arrive"

    def check(self, ctx: CheckContext, change: Change) -> None:
        self.checked.append(change.trigger)

    def plan(self, ctx: PlanContext, change: Change) -> None:
        self.planned.append(change.trigger)


def test_a_step_is_left_out_only_for_the_shapes_it_is_idle_for(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "e.sqlite", clock=VirtualClock(AT))
    try:
        counting = _Counting()
        eng.add_participant(counting)
        with eng.batch():
            for tid in ("A", "B"):
                eng.report("grid_incident", {"category": "garbage"}, actor=CENTRE,
                           ticket_id=tid)
                eng.fire(tid, "dispatch", actor=CENTRE)
            eng.fire("A", "arrive", actor=Actor("w-1", "department"))
        assert counting.checked == ["report", "dispatch", "report", "dispatch", "arrive"]
        assert counting.planned == ["arrive"]
        # asked once per step and shape (report, dispatch, arrive), not per change
        assert sorted(counting.asked) == sorted(
            (step, trigger) for step in ("check", "plan")
            for trigger in ("report", "dispatch", "arrive"))
    finally:
        eng.stop()


def test_a_memoised_shape_still_refuses_a_suspended_tickets_transition(
        tmp_path: Path) -> None:
    eng = Engine(tmp_path / "e.sqlite", clock=VirtualClock(AT))
    try:
        for tid in ("A", "B"):
            eng.report("grid_incident", {"category": "garbage"}, actor=CENTRE, ticket_id=tid)
        eng.fire("A", "dispatch", actor=CENTRE)  # the dispatch shape is memoised now
        eng.suspend("B", "weather", reason="storm", actor=CENTRE)
        before = [h.seq for h in eng.history("B")]
        with pytest.raises(OversightRefused) as err:
            eng.fire("B", "dispatch", actor=CENTRE)
        assert err.value.why == "suspended"
        assert [h.seq for h in eng.history("B")] == before
        # and the plan the dispatch shape leaves out for an open ticket still runs for a
        # ticket that ends while suspended: the suspension ends with it
        eng.fire("B", "void", actor=CENTRE, reason="a prank")
        assert [t.name for t in eng.timers("B", status="pending")] == []
        assert eng.check_invariants() == []
    finally:
        eng.stop()


def test_the_timers_a_plan_cancels_are_staged_as_the_handler_stages_any_cancel(
        tmp_path: Path) -> None:
    eng = Engine(tmp_path / "e.sqlite", clock=VirtualClock(AT))
    try:
        eng.report("grid_incident", {"category": "garbage"}, actor=CENTRE, ticket_id="A")
        stored = {t.name: t.id for t in eng.timers("A", status="pending")
                  if t.name in ("dispatch_due", "sla:time_to_dispatch",
                                "sla:time_to_dispatch:warn:0")}
        assert len(stored) == 3
        with eng.batch():
            eng.fire("A", "dispatch", actor=CENTRE)  # stops time_to_dispatch: a plan cancel
            # stored timers, their ids read with the ticket: cancelled by id
            assert not [op for op in eng.kernel.uow.top.timer_ops if op.kind == "cancel"]
            assert sorted(eng.kernel.uow.top.cancelled) == sorted(stored.values())
        pending = {t.name for t in eng.timers("A", status="pending")}
        assert not pending & {"dispatch_due", "sla:time_to_dispatch",
                              "sla:time_to_dispatch:warn:0"}
        assert eng.check_invariants() == []
    finally:
        eng.stop()
