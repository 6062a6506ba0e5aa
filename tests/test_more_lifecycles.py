"""The second and third bundled lifecycles, end to end: volunteer tasks for a shared parking
space, and the twice-daily grid patrol."""

from __future__ import annotations

from datetime import timedelta

from helpers import START, at

from engine import Actor, Engine, load_definition

ORGANISER = Actor("org-5", "organiser")
RESIDENT = Actor("resident-42", "resident")
WORKER = Actor("gw-017", "grid_worker")


def test_bundled_lifecycles_load():
    assert load_definition("volunteer_parking").spec.initial == "posted"
    assert load_definition("grid_patrol").spec.initial == "scheduled"


def test_volunteer_task_post_take_complete_rate_earns_a_week_of_parking(engine: Engine, clock):
    t = engine.report("volunteer_parking", {"task": "clear stairwell 3", "location": "B-3"},
                      actor=ORGANISER, ticket_id="V1")
    assert [(tm.name, tm.due_at) for tm in engine.timers("V1")] == [
        ("take_due", START + timedelta(days=3))]
    clock.set(at(9, 0))
    engine.fire(t.id, "take", actor=RESIDENT, fields={"volunteer": RESIDENT.id})
    clock.set(at(16, 0))
    engine.fire(t.id, "complete", actor=RESIDENT)
    clock.set(at(17, 0))
    rated = engine.fire(t.id, "rate", actor=ORGANISER, fields={
        "rating": 5, "reward": "parking_week", "parking_space": "P-12",
        "parking_from": at(0, 0, day=2), "parking_until": at(0, 0, day=9)})
    assert rated.state == "rewarded"
    assert (rated.fields["reward"], rated.fields["parking_space"], rated.fields["rating"]) == (
        "parking_week", "P-12", 5)
    rate_row = engine.history("V1")[-1]
    assert (rate_row.trigger, rate_row.actor, rate_row.data["fields"]["reward"]) == (
        "rate", "org-5", "parking_week")
    assert [(tm.status, tm.due_at) for tm in engine.timers("V1")
            if tm.name == "parking_week"] == [("pending", at(0, 0, day=9))]
    fired = engine.run_until(at(0, 1, day=9))
    assert [(f.timer.name, f.outcome) for f in fired] == [("parking_week", "breached")]
    assert engine.get("V1").overdue is False  # the week running out is not a late task
    done = engine.fire("V1", "release", actor=ORGANISER)
    assert done.state == "finished"
    assert [h.trigger for h in engine.history("V1")] == [
        "report", "take", "complete", "rate", "parking_week", "release"]


def test_a_volunteer_who_does_not_complete_in_time_makes_the_task_overdue(engine, clock):
    engine.report("volunteer_parking", {"task": "paint railings"}, actor=ORGANISER,
                  ticket_id="V2")
    engine.fire("V2", "take", actor=RESIDENT)
    engine.run_until(START + timedelta(days=2, seconds=1))
    assert engine.get("V2").overdue is True
    engine.fire("V2", "give_up", actor=RESIDENT, reason="travelling")
    assert engine.get("V2").state == "posted"


def test_a_patrol_round_done_on_time(engine, clock):
    engine.report("grid_patrol", {"area": "G-07", "round": "morning"},
                  actor=Actor("scheduler", "system"), ticket_id="P-0501-AM")
    clock.set(at(8, 20))
    engine.fire("P-0501-AM", "start", actor=WORKER, fields={"grid_worker": WORKER.id})
    clock.set(at(9, 0))
    engine.fire("P-0501-AM", "record_finding", actor=WORKER, fields={"findings": 1})
    clock.set(at(10, 30))
    done = engine.fire("P-0501-AM", "finish", actor=WORKER)
    assert (done.state, done.overdue, done.level, done.fields["findings"]) == (
        "done", False, "community", 1)
    assert engine.timers("P-0501-AM", status="pending") == []


def test_a_round_not_started_escalates_to_the_street_office(engine, clock):
    engine.report("grid_patrol", {"area": "G-07", "round": "afternoon"},
                  actor=Actor("scheduler", "system"), ticket_id="P-PM")
    fired = engine.run_until(START + timedelta(hours=1, seconds=1))
    assert [(f.timer.name, f.outcome) for f in fired] == [("start_due", "escalated")]
    t = engine.get("P-PM")
    assert (t.state, t.level) == ("late", "street")
    engine.fire("P-PM", "start", actor=WORKER)
    engine.run_until(START + timedelta(hours=4, seconds=1))
    t = engine.get("P-PM")
    assert (t.state, t.overdue) == ("on_patrol", True)
    assert engine.fire("P-PM", "finish", actor=WORKER).state == "done"
