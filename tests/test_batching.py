"""Batches: the next-due lower bound, commands dropped alone, the cursor path of the store."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import pytest
from helpers import START
from sqlalchemy import insert, select

from engine import Actor, Change, Engine, Participant, PlanContext, TriggerNotAllowed, VirtualClock
from engine.store import statements as S
from engine.store.event_tables import outbox
from engine.store.reads import load_tickets
from engine.store.tables import tickets
from engine.store.writer import ChangeSet, TimerOp, flush


def _history(eng: Engine, tid: str) -> list[tuple[str, str, str, str]]:
    return [(h.kind, h.trigger, h.to_state, h.to_level) for h in eng.history(tid)]


def test_deadlines_inside_a_batch_fire_as_outside_it(
    make_engine: Callable[..., Engine], tmp_path: Any, reporter: Actor, centre: Actor
) -> None:
    outcomes = []
    for name, batched in (("plain.sqlite", False), ("batched.sqlite", True)):
        eng = make_engine(tmp_path / name, clock=VirtualClock(START))

        def steps(eng: Engine = eng) -> None:
            eng.report("grid_incident", {"category": "x",
                                         "target_at": (START + timedelta(hours=1)).isoformat()},
                       actor=reporter, ticket_id="a")
            eng.run_until(START + timedelta(minutes=20))  # nothing due yet
            eng.report("grid_incident", {"category": "y"}, actor=reporter, ticket_id="b")
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
    make_engine: Callable[..., Engine], reporter: Actor
) -> None:
    other, eng = make_engine(), make_engine()
    other.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="a")
    with eng.batch():
        fired = eng.run_until(START + timedelta(hours=1))
    assert [(f.timer.ticket_id, f.timer.name, f.outcome) for f in fired] == [
        ("a", "dispatch_due", "escalated")]


def test_a_refused_command_in_a_batch_changes_nothing_and_the_batch_goes_on(
    engine: Engine, reporter: Actor, centre: Actor
) -> None:
    with engine.batch():
        engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="a")
        with pytest.raises(TriggerNotAllowed):
            engine.fire("a", "close", actor=centre)
        engine.fire("a", "dispatch", actor=centre)
    assert _history(engine, "a") == [("report", "report", "reported", "community"),
                                     ("transition", "dispatch", "dispatched", "community")]


class _FailOn(Participant):
    """A participant with a bug: planning a change of one ticket (or one trigger) raises."""

    def __init__(self, ticket_id: str | None = None, *, trigger: str | None = None):
        self.ticket_id, self.trigger = ticket_id, trigger

    def plan(self, ctx: PlanContext, change: Change) -> None:
        if change.ticket_id == self.ticket_id or change.trigger == self.trigger:
            raise RuntimeError("participant bug")


def test_a_command_failing_while_planned_is_dropped_alone_and_the_batch_goes_on(
    engine: Engine, reporter: Actor
) -> None:
    engine.add_participant(_FailOn("b"))
    with engine.batch():
        engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="a")
        with pytest.raises(RuntimeError, match="participant bug"):
            engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="b")
        engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="c")
    with engine.db.read() as conn:
        assert conn.execute(select(tickets.c.id).order_by(tickets.c.id)).scalars().all() == [
            "a", "c"]
    assert {t.ticket_id for t in engine.timers()} == {"a", "c"}
    assert engine.check_invariants() == []


def test_a_batch_whose_block_raises_writes_nothing(engine: Engine, reporter: Actor) -> None:
    with pytest.raises(KeyError), engine.batch():
        engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="a")
        raise KeyError("the host's own error")
    with engine.db.read() as conn:
        assert conn.execute(select(tickets.c.id)).all() == []


def test_the_cursor_path_reads_what_sqlalchemy_does(engine: Engine, reporter: Actor) -> None:
    engine.report("grid_incident", {"category": "x", "target_at": "2024-05-02T08:00:00+00:00"},
                  actor=reporter, ticket_id="a")
    with engine.db.write() as conn:
        ours, timers, _ = load_tickets(conn, ["a"])["a"]
        theirs = dict(conn.execute(S.SELECT_TICKET, {"b_id": "a"}).mappings().one())
        many = load_tickets(conn, ["a", "nope"])
        missing = load_tickets(conn, ["nope"])
    assert ours == theirs == many["a"][0]
    assert timers == many["a"][1]
    assert {t["name"] for t in timers} == {
        "dispatch_due", "resolution", "sla:time_to_dispatch", "sla:time_to_dispatch:warn:0",
        "sla:time_to_resolve", "sla:time_to_resolve:warn:0"}
    assert ours["created_at"] == START and ours["created_at"].tzinfo is not None
    assert ours["fields"] == {"category": "x", "target_at": "2024-05-02T08:00:00+00:00"}
    assert ours["overdue"] is False
    assert missing == {}


def test_a_stored_ticket_refused_on_its_first_read_in_a_batch_is_read_again_unchanged(
    engine: Engine, reporter: Actor, centre: Actor
) -> None:
    # The command that reads a ticket first stages that record as its own: refused after
    # it changed it, the record is dropped with the command and the next command reads
    # the ticket as stored again (not the refused command's state, level or timers).
    engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="a")
    before = engine.get("a")
    timers_before = sorted((t.name, t.due_at) for t in engine.timers("a"))
    engine.add_participant(_FailOn(trigger="dispatch"))  # after the command staged it
    with engine.batch():
        with pytest.raises(RuntimeError, match="participant bug"):
            engine.fire("a", "dispatch", actor=centre, fields={"department": "water"})
        assert engine.get("a") == before
        assert sorted((t.name, t.due_at) for t in engine.timers("a")) == timers_before
        engine.fire("a", "void", actor=centre, reason="a duplicate")
    assert _history(engine, "a") == [("report", "report", "reported", "community"),
                                     ("transition", "void", "voided", "community")]
    assert engine.check_invariants() == []


def test_the_cursor_path_writes_what_sqlalchemy_does(
    make_engine: Callable[..., Engine], tmp_path: Any, reporter: Actor
) -> None:
    """The writers' rows through the SQLite cursor path (generated positional values) store
    exactly what ``Connection.execute`` stores: instants, JSON, booleans, NULLs, literals."""
    first = make_engine(tmp_path / "a.sqlite")
    first.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="a")
    first.stop()
    shutil.copy(tmp_path / "a.sqlite", tmp_path / "b.sqlite")
    ours, theirs = make_engine(tmp_path / "a.sqlite"), make_engine(tmp_path / "b.sqlite")
    with ours.db.read() as conn:
        pending = [r.id for r in conn.execute(S.PENDING_TIMERS, {"b_id": "a"})]
    east = timezone(timedelta(hours=2))
    later = (START + timedelta(hours=1, microseconds=7)).astimezone(east)
    updates = [{"b_id": "a", "b_version": 1, "b_state": "dispatched", "b_level": "community",
                "b_fields": {"category": "é\u2603", "n": None, "l": [1, 2.5, True]},
                "b_now": later, "b_new_version": 2, "b_overdue": True}]
    timer = {"ticket_id": "a", "name": "extra", "state": "dispatched", "due_at": later,
             "status": "pending", "created_at": START, "fired_at": None, "claimed_by": None,
             "lease_until": None, "failures": 0, "last_error": None}
    gone = {**timer, "name": "gone"}
    event = {"event_id": "e1", "type": "t", "ticket_id": "a", "lifecycle": "grid_incident",
             "seq": 2, "occurred_at": later, "payload": {"x": "ü", "y": [None, 1.5]}}
    ops = [TimerOp("new", row=timer), TimerOp("new", row=gone),
           TimerOp("cancel", ticket_id="a", name="gone"),
           *(TimerOp("cancel", timer_id=i) for i in pending[:2])]
    with ours.db.write() as conn:
        flush(conn, ChangeSet(ticket_updates=updates, timer_ops=ops,
                              rows=[(insert(outbox), event), (insert(outbox), {**event,
                                     "event_id": "e2", "seq": 3, "payload": None})]))
    with theirs.db.write() as conn:  # the same rows, each through Connection.execute
        conn.execute(S.UPDATE_TICKET, updates)
        for i in pending[:2]:
            conn.execute(S.CANCEL_PENDING_ID, {"b_id": i})
        conn.execute(S.INSERT_TIMER, [timer, {**gone, "status": "cancelled"}])
        conn.execute(insert(outbox), [event, {**event, "event_id": "e2", "seq": 3,
                                                "payload": None}])
    ours.stop()
    theirs.stop()

    def stored(name: str) -> list[str]:
        with sqlite3.connect(tmp_path / name) as raw:
            return [repr(row) for table in ("gw_tickets", "gw_timers", "gw_outbox")
                    for row in raw.execute(f"SELECT * FROM {table} ORDER BY rowid")]

    assert timer["status"] == "pending"  # the staged rows are not changed by the writer
    assert stored("a.sqlite") == stored("b.sqlite")
