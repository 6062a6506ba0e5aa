"""SQLite batches: the next-due lower bound, commands without savepoints, the cursor fast path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from helpers import START
from sqlalchemy import select

from engine import Actor, Engine, TriggerNotAllowed, VirtualClock
from engine.runtime.batching import PartialCommandError
from engine.runtime.changes import Change
from engine.store import fast
from engine.store import statements as S
from engine.store.tables import tickets, timers


def _history(eng: Engine, tid: str) -> list[tuple[str, str, str, str]]:
    return [(h.kind, h.trigger, h.to_state, h.to_level) for h in eng.history(tid)]


def test_deadlines_inside_a_batch_fire_as_outside_it(
    make_engine: Callable[..., Engine], tmp_path: Any, grid_worker: Actor, centre: Actor
) -> None:
    outcomes = []
    for name, batched in (("plain.sqlite", False), ("batched.sqlite", True)):
        eng = make_engine(tmp_path / name, clock=VirtualClock(START))

        def steps(eng: Engine = eng) -> None:
            eng.report("grid_incident", {"category": "x",
                                         "target_at": (START + timedelta(hours=1)).isoformat()},
                       actor=grid_worker, ticket_id="a")
            eng.run_until(START + timedelta(minutes=20))  # nothing due yet
            eng.report("grid_incident", {"category": "y"}, actor=grid_worker, ticket_id="b")
            eng.run_until(START + timedelta(minutes=45))  # a's dispatch_due (30 min) fires
            eng.fire("b", "dispatch", actor=centre)
            eng.run_until(START + timedelta(hours=3))  # a's resolution, b's arrival_due

        if batched:
            with eng.batch():
                steps()
        else:
            steps()
        outcomes.append((_history(eng, "a"), _history(eng, "b"),
                         [(t.name, t.status) for t in eng.timers()]))
    assert outcomes[0] == outcomes[1]
    history_a, history_b, _ = outcomes[1]
    assert history_a == [
        ("report", "report", "reported", "community"),
        ("breach", "dispatch_due", "reported", "community"),
        ("transition", "escalate", "escalated", "street"),
        ("breach", "resolution", "escalated", "street"),
        ("transition", "escalate", "escalated", "district"),
    ]
    assert history_b == [
        ("report", "report", "reported", "community"),
        ("transition", "dispatch", "dispatched", "community"),
        ("breach", "arrival_due", "dispatched", "community"),
    ]


def test_a_timer_added_by_another_engine_before_the_batch_is_seen(
    make_engine: Callable[..., Engine], grid_worker: Actor
) -> None:
    other, eng = make_engine(), make_engine()
    other.report("grid_incident", {"category": "x"}, actor=grid_worker, ticket_id="a")
    with eng.batch():
        fired = eng.run_until(START + timedelta(hours=1))
    assert [(f.timer.ticket_id, f.timer.name, f.outcome) for f in fired] == [
        ("a", "dispatch_due", "escalated")]


def test_a_refused_command_in_a_batch_changes_nothing_and_the_batch_goes_on(
    engine: Engine, grid_worker: Actor, centre: Actor
) -> None:
    with engine.batch():
        engine.report("grid_incident", {"category": "x"}, actor=grid_worker, ticket_id="a")
        with pytest.raises(TriggerNotAllowed):
            engine.fire("a", "close", actor=centre)
        engine.fire("a", "dispatch", actor=centre)
    assert _history(engine, "a") == [("report", "report", "reported", "community"),
                                     ("transition", "dispatch", "dispatched", "community")]


class _FailOn:
    def __init__(self, ticket_id: str):
        self.ticket_id = ticket_id

    def on_change(self, conn: Any, change: Change) -> None:
        if change.ticket_id == self.ticket_id:
            raise RuntimeError("participant bug")


def test_a_command_failing_after_it_wrote_rolls_the_whole_batch_back(
    engine: Engine, grid_worker: Actor
) -> None:
    engine.add_participant(_FailOn("b"))
    with pytest.raises(PartialCommandError) as caught, engine.batch():
        engine.report("grid_incident", {"category": "x"}, actor=grid_worker, ticket_id="a")
        engine.report("grid_incident", {"category": "x"}, actor=grid_worker, ticket_id="b")
    assert isinstance(caught.value.cause, RuntimeError)
    with engine.db.read() as conn:
        assert conn.execute(select(tickets.c.id)).all() == []
        assert conn.execute(select(timers.c.id)).all() == []


def test_the_fast_path_stores_and_reads_what_sqlalchemy_does(
    engine: Engine, grid_worker: Actor
) -> None:
    engine.report("grid_incident", {"category": "x", "target_at": "2024-05-02T08:00:00+00:00"},
                  actor=grid_worker, ticket_id="a")
    with engine.db.write() as conn:
        ours = fast.fetch_one(conn, S.SELECT_TICKET, {"b_id": "a"})
        theirs = dict(conn.execute(S.SELECT_TICKET, {"b_id": "a"}).mappings().one())
        missing = fast.fetch_one(conn, S.SELECT_TICKET, {"b_id": "nope"})
    assert ours == theirs
    assert ours["created_at"] == START and ours["created_at"].tzinfo is not None
    assert ours["fields"] == {"category": "x", "target_at": "2024-05-02T08:00:00+00:00"}
    assert ours["overdue"] is False
    assert missing is None
