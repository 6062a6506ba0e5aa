"""Deadlines on virtual time: firing once, the tie rule, stale timers, escalation, two engines."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from helpers import START, at, core_history, deadline_timers
from sqlalchemy import insert

from engine import HistoryEntry, InvalidFields, TicketNotFound
from engine.store import timers as timers_table

LC = "grid_incident"


def breaches(engine, ticket_id):
    return [h for h in engine.history(ticket_id) if h.kind == "breach"]


def pending(engine, ticket_id):
    return [(t.name, t.state, t.due_at) for t in deadline_timers(engine, ticket_id,
                                                                 status="pending")]


@pytest.mark.parametrize("how", ["run_until", "set_clock_then_run_due"])
def test_dispatch_due_fires_exactly_once(engine, clock, reporter, how):
    engine.report(LC, {"category": "blocked drain"}, actor=reporter, ticket_id="T1")
    if how == "run_until":
        fired = engine.run_until(at(9, 0))
        fired_at = at(8, 30)  # run_until fires each timer at its own due instant
    else:
        clock.set(at(9, 0))
        fired = engine.run_due()
        fired_at = at(9, 0)
    assert clock.now() == at(9, 0)
    assert len(fired) == 1
    assert fired[0].outcome == "escalated"
    timer = fired[0].timer
    assert (timer.ticket_id, timer.name, timer.state, timer.due_at, timer.status,
            timer.fired_at) == ("T1", "dispatch_due", "reported", at(8, 30), "fired", fired_at)

    assert engine.run_due() == []
    assert engine.run_due(at(10, 0)) == []
    assert engine.run_until(at(10, 0)) == []

    assert breaches(engine, "T1") == [
        HistoryEntry(2, fired_at, "breach", "dispatch_due", "reported", "reported", "community",
                     "community", "gridwhistle", "system",
                     "deadline 'dispatch_due' due 2024-05-01T08:30:00+00:00 was missed",
                     {"due_at": "2024-05-01T08:30:00+00:00", "timer_id": timer.id,
                      "on_breach": "escalate"}),
    ]
    assert breaches(engine, "T1")[0].data["due_at"] == at(8, 30).isoformat()
    t = engine.get("T1")
    assert (t.state, t.level, t.overdue) == ("escalated", "street", False)
    escalation = engine.history("T1")[-1]
    assert (escalation.kind, escalation.trigger, escalation.from_level, escalation.to_level,
            escalation.role, escalation.reason) == (
        "transition", "escalate", "community", "street", "system",
        "deadline 'dispatch_due' breached")
    assert [(tm.name, tm.status) for tm in deadline_timers(engine, "T1")] == [
        ("dispatch_due", "fired")]
    # the street level's budget (P2D) starts with the hop; the street office handles it now
    ladder = engine.ladder("T1")
    assert (ladder.level, ladder.handler, ladder.budget_due) == (
        "street", "street_office", fired_at + timedelta(days=2))
    assert [(tm.name, tm.due_at) for tm in engine.timers("T1", status="pending")
            if tm.name.startswith("ladder:")] == [("ladder:street", fired_at + timedelta(days=2))]


def test_timer_due_at_t_is_not_fired_at_t(engine, clock, reporter):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    clock.set(at(8, 30))
    assert engine.run_due() == []
    assert engine.run_due(at(8, 30)) == []
    assert engine.run_until(at(8, 30)) == []
    assert pending(engine, "T1") == [("dispatch_due", "reported", at(8, 30))]


def test_deadline_due_at_t_is_met_by_a_command_at_t(engine, clock, reporter, centre):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    assert engine.run_until(at(8, 30)) == []
    assert clock.now() == at(8, 30)
    t = engine.fire("T1", "dispatch", actor=centre)
    assert t.state == "dispatched"
    assert engine.run_due() == []
    clock.set(at(9, 0))
    assert engine.run_due() == []
    assert breaches(engine, "T1") == []
    assert [(tm.name, tm.status) for tm in deadline_timers(engine, "T1")] == [
        ("dispatch_due", "cancelled"), ("arrival_due", "pending")]
    assert engine.get("T1").level == "community"


def test_timer_of_a_ticket_that_moved_on_does_nothing(engine, clock, reporter, centre):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    clock.set(at(8, 10))
    engine.fire("T1", "dispatch", actor=centre)
    ticket, history = engine.get("T1"), engine.history("T1")
    timers = deadline_timers(engine, "T1")
    assert [(tm.name, tm.status) for tm in timers] == [
        ("dispatch_due", "cancelled"), ("arrival_due", "pending")]

    assert engine.run_until(at(9, 0)) == []
    assert engine.get("T1") == ticket
    assert engine.history("T1") == history
    assert deadline_timers(engine, "T1") == timers


def test_arrival_due_records_a_breach_without_escalating(engine, clock, reporter, centre):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    engine.fire("T1", "dispatch", actor=centre)
    fired = engine.run_until(at(11, 0))
    assert [(f.timer.name, f.outcome) for f in fired] == [("arrival_due", "breached")]
    t = engine.get("T1")
    # arrival_due is not the resolution deadline: the ticket is not overdue in reports
    assert (t.state, t.level, t.overdue, t.row_version, t.updated_at) == (
        "dispatched", "community", False, 3, at(10, 0))
    assert [(h.kind, h.trigger, h.data.get("on_breach")) for h in engine.history("T1")] == [
        ("report", "report", None), ("transition", "dispatch", None),
        ("breach", "arrival_due", "record")]


def test_pending_timer_of_a_left_state_is_marked_stale(engine, clock, reporter, centre):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    engine.fire("T1", "dispatch", actor=centre)
    with engine.db.write() as conn:
        stale_id = conn.execute(insert(timers_table).values(
            ticket_id="T1", name="dispatch_due", state="reported", due_at=at(8, 5),
            status="pending", created_at=START, fired_at=None,
        )).inserted_primary_key[0]
    ticket, history = engine.get("T1"), engine.history("T1")
    others = [tm for tm in deadline_timers(engine, "T1") if tm.id != stale_id]

    clock.set(at(8, 6))
    fired = engine.run_due()
    assert [(f.timer.id, f.outcome, f.timer.status) for f in fired] == [
        (stale_id, "stale", "stale")]
    assert engine.get("T1") == ticket
    assert engine.history("T1") == history
    assert [tm for tm in deadline_timers(engine, "T1") if tm.id != stale_id] == others
    stale = [tm for tm in deadline_timers(engine, "T1") if tm.id == stale_id]
    assert [(tm.status, tm.due_at) for tm in stale] == [("stale", at(8, 5))]
    assert engine.run_due() == []


def test_resolution_deadline_from_target_at_escalates_and_marks_overdue(
        engine, clock, reporter, centre, department):
    engine.report(LC, {"category": "x", "target_at": "2024-05-01T12:00:00+00:00"},
                  actor=reporter, ticket_id="T1")
    assert pending(engine, "T1") == [("dispatch_due", "reported", at(8, 30)),
                                     ("resolution", None, at(12, 0))]
    clock.set(at(8, 10))
    engine.fire("T1", "dispatch", actor=centre)
    clock.set(at(8, 20))
    engine.fire("T1", "arrive", actor=department)

    fired = engine.run_until(at(13, 0))
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("resolution", at(12, 0), "escalated")]
    t = engine.get("T1")
    assert (t.state, t.level, t.overdue) == ("escalated", "street", True)
    breach, escalation = engine.history("T1")[-2:]
    assert (breach.kind, breach.trigger, breach.from_state, breach.at, breach.data["due_at"]) == (
        "breach", "resolution", "on_site", at(12, 0), "2024-05-01T12:00:00+00:00")
    assert (escalation.kind, escalation.trigger, escalation.from_state, escalation.to_state,
            escalation.to_level) == ("transition", "escalate", "on_site", "escalated", "street")
    assert pending(engine, "T1") == []
    assert engine.ladder("T1").budget_due == at(12, 0) + timedelta(days=2)


def test_resolving_before_target_at_cancels_the_resolution_timer(
        engine, clock, reporter, centre, department):
    engine.report(LC, {"category": "x", "target_at": "2024-05-01T12:00:00+00:00"},
                  actor=reporter, ticket_id="T1")
    clock.set(at(8, 10))
    engine.fire("T1", "dispatch", actor=centre)
    engine.fire("T1", "arrive", actor=department)
    clock.set(at(11, 0))
    engine.fire("T1", "resolve", actor=department)

    resolution = [tm for tm in deadline_timers(engine, "T1") if tm.name == "resolution"]
    assert [(tm.status, tm.due_at) for tm in resolution] == [("cancelled", at(12, 0))]
    history = engine.history("T1")
    assert engine.run_until(at(13, 0)) == []
    assert engine.history("T1") == history
    assert breaches(engine, "T1") == []
    t = engine.get("T1")
    assert (t.state, t.level, t.overdue) == ("resolved", "community", False)
    # the ticket deadline does not restart when verification fails
    engine.fire("T1", "reject", actor=centre, reason="not fixed")
    assert [tm.name for tm in deadline_timers(engine, "T1", status="pending")] == ["arrival_due"]


def test_resolution_breach_while_resolved_is_stale(engine, clock, reporter, centre,
                                                   department):
    """A resolution timer that somehow stayed pending past `resolved` must not escalate."""
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    engine.fire("T1", "dispatch", actor=centre)
    engine.fire("T1", "arrive", actor=department)
    engine.fire("T1", "resolve", actor=department)
    with engine.db.write() as conn:
        conn.execute(insert(timers_table).values(
            ticket_id="T1", name="resolution", state=None, due_at=at(9, 0),
            status="pending", created_at=START, fired_at=None))
    ticket, history = engine.get("T1"), engine.history("T1")
    fired = engine.run_until(at(10, 0))
    assert [(f.timer.name, f.outcome) for f in fired] == [("resolution", "stale")]
    assert (engine.get("T1"), engine.history("T1")) == (ticket, history)


def test_three_hop_escalation_community_street_district_city(engine, reporter):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    fired = engine.run_until(at(12, 0, day=6))
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired
            if not f.timer.name.startswith("sla:")] == [
        ("dispatch_due", at(8, 30), "escalated"),
        ("ladder:street", at(8, 30, day=3), "escalated"),
        ("ladder:district", at(8, 30, day=5), "escalated"),
    ]
    t = engine.get("T1")
    assert (t.state, t.level, t.overdue) == ("escalated", "city", False)
    assert [(h.kind, h.trigger, h.at, h.from_level, h.to_level)
            for h in core_history(engine, "T1")] == [
        ("report", "report", START, None, "community"),
        ("breach", "dispatch_due", at(8, 30), "community", "community"),
        ("transition", "escalate", at(8, 30), "community", "street"),
        ("breach", "street_budget", at(8, 30, day=3), "street", "street"),
        ("transition", "escalate", at(8, 30, day=3), "street", "district"),
        ("breach", "district_budget", at(8, 30, day=5), "district", "district"),
        ("transition", "escalate", at(8, 30, day=5), "district", "city"),
    ]
    assert engine.ladder("T1").budget_due == at(8, 30, day=7)

    # at the top: the next breach is recorded, the level stays, no new timer
    fired = engine.run_until(at(9, 0, day=7))
    assert [(f.timer.name, f.outcome) for f in fired] == [
        ("sla:time_to_resolve:warn:0", "warned"), ("ladder:city", "top_level")]
    t = engine.get("T1")
    assert (t.state, t.level) == ("escalated", "city")
    last = core_history(engine, "T1")[-1]
    assert (last.kind, last.trigger, last.to_level, last.data["on_breach"]) == (
        "breach", "city_budget", "city", "escalate")
    assert pending(engine, "T1") == []
    assert [tm.name for tm in engine.timers("T1", status="pending")] == [
        "sla:time_to_resolve"]


def test_two_engines_on_one_file_fire_each_timer_once(engine, make_engine, clock, reporter):
    ids = [f"T{i:02d}" for i in range(24)]
    for tid in ids:
        engine.report(LC, {"category": "x"}, actor=reporter, ticket_id=tid)
    other = make_engine()
    clock.set(at(9, 0))

    results: dict[str, list] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(name, eng):
        try:
            barrier.wait(timeout=10)
            results[name] = eng.run_due()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, e))
               for n, e in (("first", engine), ("second", other))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert errors == []
    fired = results["first"] + results["second"]
    assert len(fired) == len(ids)
    assert sorted(f.timer.ticket_id for f in fired) == ids
    assert len({f.timer.id for f in fired}) == len(ids)
    assert {f.outcome for f in fired} == {"escalated"}

    for tid in ids:
        assert len(breaches(engine, tid)) == 1
        t = engine.get(tid)
        assert (t.state, t.level) == ("escalated", "street")
    assert engine.run_due() == [] and other.run_due() == []
    assert len(engine.timers(status="fired")) == len(ids)


def test_two_engines_calling_run_due_one_after_the_other(engine, make_engine, clock,
                                                         reporter):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    other = make_engine()
    clock.set(at(9, 0))
    first = other.run_due()
    assert [(f.timer.ticket_id, f.outcome) for f in first] == [("T1", "escalated")]
    assert engine.run_due() == []
    assert len(breaches(engine, "T1")) == 1


def test_setting_the_target_field_later_schedules_and_moves_the_resolution_deadline(
        engine, reporter, centre):
    t = engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="F1")
    assert [tm.name for tm in deadline_timers(engine, t.id)] == ["dispatch_due"]
    engine.fire(t.id, "dispatch", actor=centre, fields={"target_at": at(12, 0)})
    pending = {tm.name: tm.due_at for tm in deadline_timers(engine, t.id, status="pending")}
    assert pending == {"arrival_due": at(10, 0), "resolution": at(12, 0)}
    engine.fire(t.id, "escalate", actor=centre, reason="hard case",
                fields={"target_at": at(18, 0)})
    resolution = [tm for tm in deadline_timers(engine, t.id) if tm.name == "resolution"]
    assert [(tm.due_at, tm.status) for tm in resolution] == [
        (at(12, 0), "cancelled"), (at(18, 0), "pending")]
    fired = engine.run_until(at(18, 0) + timedelta(seconds=1))
    assert ("resolution", "escalated") in [(f.timer.name, f.outcome) for f in fired]
    assert engine.get(t.id).overdue is True


def test_timers_of_an_unknown_ticket_is_an_error(engine):
    with pytest.raises(TicketNotFound):
        engine.timers("nope")


def test_a_stopped_ticket_deadline_is_not_restarted_by_setting_its_field_later(
        engine, reporter, centre, department):
    # No target at report: no resolution timer. The ticket is resolved (the deadline stops),
    # then verification fails and the centre sets a target: the deadline must stay stopped.
    t = engine.report("grid_incident", {"category": "x"}, actor=reporter, ticket_id="S1")
    engine.fire(t.id, "dispatch", actor=centre)
    engine.fire(t.id, "arrive", actor=department)
    engine.fire(t.id, "resolve", actor=department)
    engine.fire(t.id, "reject", actor=centre, reason="not fixed",
                fields={"target_at": at(12, 0)})
    assert [tm.name for tm in engine.timers(t.id) if tm.name == "resolution"] == []


def test_a_ticket_id_longer_than_64_characters_is_refused(engine, reporter):
    with pytest.raises(InvalidFields, match="must be 1 to 64 characters, got 65"):
        engine.report("grid_incident", {"category": "x"}, actor=reporter,
                      ticket_id="x" * 65)


def test_a_timer_replaced_by_an_earlier_one_of_its_chunk_does_not_fire_early(
        engine, clock, centre) -> None:
    # Found by tests/test_batch_equivalence.py: two timers of one work order claimed together;
    # the first (its resolution deadline) escalates it again, which restarts the state
    # deadline of `escalated`. The second claimed row is that state deadline's old timer: it
    # is cancelled, and the new one (due a day later) must not fire in its place.
    from engine import SYSTEM, Actor

    engine.report("work_order", {"parent": "P", "department": "water", "role": "lead"},
                  actor=centre, ticket_id="W1")
    clock.set(START + timedelta(minutes=1))
    engine.fire("W1", "escalate", actor=Actor("ops", "centre"), reason="slow")
    now = START + timedelta(days=1, minutes=2)
    fired = engine.run_due(now)
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("resolution", START + timedelta(days=1), "escalated")]
    ticket = engine.get("W1")
    assert (ticket.state, ticket.level) == ("escalated", "district")
    assert pending(engine, "W1") == [("escalated_due", "escalated", now + timedelta(days=1))]
    assert [t.status for t in engine.timers("W1") if t.name == "escalated_due"] == [
        "cancelled", "pending"]
    assert [h.role for h in engine.history("W1") if h.trigger == "escalate"] == [
        "centre", SYSTEM.role]
