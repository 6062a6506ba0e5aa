"""Domain events: one outbox row per history row, in the same transaction; listeners after
the commit only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import START, at

from engine import EVENT_TYPES, Actor, DomainEvent, Engine, Registry, TriggerNotAllowed
from engine.events import read_events
from engine.testing import temporary_engine


def events_of(engine: Engine, ticket_id: str | None = None) -> list[DomainEvent]:
    with engine.db.read() as conn:
        return [e for _, e in read_events(conn, ticket_id=ticket_id)]


def test_every_history_row_has_one_event(engine, clock, reporter, centre) -> None:
    engine.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="E1")
    engine.fire("E1", "dispatch", actor=centre, fields={"department": "water"})
    engine.run_until(at(10, 1))  # arrival_due (record) at 10:00
    engine.escalate("E1", actor=centre, reason="no one came")
    events = events_of(engine, "E1")
    assert [(e.seq, e.type) for e in events] == [
        (1, "ticket.reported"), (2, "ticket.transitioned"), (3, "deadline.breached"),
        (4, "ticket.escalated")]
    assert [h.seq for h in engine.history("E1")] == [1, 2, 3, 4]
    assert len({e.event_id for e in events}) == 4
    dispatch = events[1]
    assert dispatch.occurred_at == START
    assert dispatch.payload == {
        "event_id": dispatch.event_id, "type": "ticket.transitioned",
        "occurred_at": "2024-05-01T08:00:00+00:00", "ticket_id": "E1",
        "lifecycle": "grid_incident", "seq": 2, "kind": "transition", "trigger": "dispatch",
        "from_state": "reported", "to_state": "dispatched", "from_level": "community",
        "to_level": "community", "actor": "ops-1", "role": "centre", "reason": None,
        "data": {"fields": {"department": "water"}},
        "fields": {"category": "drain", "department": "water"},
    }
    assert events[2].payload["data"]["due_at"] == "2024-05-01T10:00:00+00:00"
    assert set(e.type for e in events) <= set(EVENT_TYPES)


def test_a_breach_that_escalates_gives_two_events(engine, reporter) -> None:
    engine.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="E2")
    engine.run_until(at(8, 31))
    assert [(e.type, e.payload["trigger"], e.payload["to_level"])
            for e in events_of(engine, "E2")] == [
        ("ticket.reported", "report", "community"),
        ("deadline.breached", "dispatch_due", "community"),
        ("ticket.escalated", "escalate", "street")]


def test_a_refused_command_writes_no_event(engine, reporter, centre) -> None:
    engine.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="E3")
    with pytest.raises(TriggerNotAllowed):
        engine.fire("E3", "close", actor=centre)
    assert len(events_of(engine, "E3")) == 1


def test_listeners_by_type_run_after_commit_only(make_engine, reporter, centre) -> None:
    seen: list[tuple[str, str]] = []
    registry = Registry()
    registry.listener("all")(lambda e: seen.append(("all", e.type)))
    registry.listener("escalations", types=["ticket.escalated"])(
        lambda e: seen.append(("esc", e.ticket_id)))

    @registry.listener("broken")
    def broken(event: DomainEvent) -> None:
        raise RuntimeError("listener bug")  # logged; the change stays committed

    eng = make_engine(registry=registry)
    eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="E4")
    assert seen == [("all", "ticket.reported")]
    with eng.batch():
        eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="E5")
        with pytest.raises(TriggerNotAllowed):
            eng.fire("E5", "close", actor=centre)
        eng.escalate("E5", actor=centre, reason="urgent")
        assert seen == [("all", "ticket.reported")]  # nothing before the batch commits
    assert seen == [("all", "ticket.reported"), ("all", "ticket.reported"),
                    ("all", "ticket.escalated"), ("esc", "E5")]
    with pytest.raises(RuntimeError), eng.batch():
        eng.fire("E4", "dispatch", actor=centre)
        raise RuntimeError("host aborts the batch")
    assert len(seen) == 4  # rolled back: no listener call, no outbox row
    assert len(events_of(eng, "E4")) == 1


def test_two_engines_in_one_process_keep_their_own_listeners(tmp_path, clock) -> None:
    heard: dict[str, list[str]] = {"a": [], "b": []}
    engines = []
    for name in ("a", "b"):
        registry = Registry()
        registry.listener("log")(lambda e, name=name: heard[name].append(e.ticket_id))
        engines.append(Engine(tmp_path / f"{name}.sqlite", clock=clock, registry=registry))
    try:
        engines[0].report("grid_incident", {"category": "x"}, actor=Actor("g", "centre"),
                          ticket_id="A1")
        engines[1].report("grid_incident", {"category": "x"}, actor=Actor("g", "centre"),
                          ticket_id="B1")
    finally:
        for eng in engines:
            eng.stop()
    assert heard == {"a": ["A1"], "b": ["B1"]}


def test_the_testing_harness_shows_events() -> None:
    with temporary_engine() as harness:
        t = harness.engine.report("grid_incident", {"category": "x"},
                                  actor=Actor("g", "centre"))
        harness.advance(timedelta(minutes=31))
        assert [e.type for e in harness.events(t.id)] == [
            "ticket.reported", "deadline.breached", "ticket.escalated"]


def test_events_can_be_switched_off(make_engine, reporter, tmp_path) -> None:
    eng = make_engine(tmp_path / "quiet.sqlite", events=False)
    eng.report("grid_incident", {"category": "drain"}, actor=reporter)
    eng.run_until(START + timedelta(hours=1))
    assert events_of(eng) == []


def test_a_refused_keyed_command_in_a_batch_keeps_the_batch_s_earlier_events(
        make_engine, reporter, centre) -> None:
    """A keyed command inside a batch runs in its own savepoint; when it is refused, only its
    own changes are dropped (main: the after-commit listeners lost every earlier command of
    the batch too, while their rows and outbox events were committed)."""
    seen: list[tuple[str, str]] = []
    registry = Registry()
    registry.listener("all")(lambda e: seen.append((e.ticket_id, e.type)))
    eng = make_engine(registry=registry)
    with eng.batch():
        eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="K1")
        eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="K2")
        with pytest.raises(TriggerNotAllowed):
            eng.fire("K2", "close", actor=centre, idempotency_key="close-k2")
        eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="K3")
    assert seen == [("K1", "ticket.reported"), ("K2", "ticket.reported"),
                    ("K3", "ticket.reported")]
    assert [len(events_of(eng, t)) for t in ("K1", "K2", "K3")] == [1, 1, 1]


def test_events_are_written_once_each_across_a_batch_s_flushes(make_engine, reporter,
                                                                centre) -> None:
    """The outbox's rows are built from the changes at each flush (``event_rows``): a read
    inside a batch flushes the window, and the next flush writes only the changes planned
    since; refused commands (a keyed one in its savepoint too) write none. One event per
    history row, in the order the rows were planned."""
    eng = make_engine()
    with eng.batch():
        eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="F1")
        eng.fire("F1", "dispatch", actor=centre, fields={"department": "water"})
        assert [h.seq for h in eng.history("F1")] == [1, 2]  # a read: the window is flushed
        with pytest.raises(TriggerNotAllowed):
            eng.fire("F1", "close", actor=centre)
        eng.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="F2")
        with pytest.raises(TriggerNotAllowed):
            eng.fire("F2", "close", actor=centre, idempotency_key="close-f2")
        eng.fire("F2", "dispatch", actor=centre, fields={"department": "water"})
        eng.get("F2")  # flushed again
        eng.fire("F1", "arrive", actor=Actor("w-1", "department"))
    with eng.db.read() as conn:
        rows = read_events(conn)
    assert [(e.ticket_id, e.seq, e.type) for _, e in rows] == [
        ("F1", 1, "ticket.reported"), ("F1", 2, "ticket.transitioned"),
        ("F2", 1, "ticket.reported"), ("F2", 2, "ticket.transitioned"),
        ("F1", 3, "ticket.transitioned")]
    for tid in ("F1", "F2"):
        assert [h.seq for h in eng.history(tid)] == [e.seq for e in events_of(eng, tid)]
