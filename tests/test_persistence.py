"""Persistence: tickets survive a fresh Engine, instants stay UTC, lifecycle versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from helpers import START, at, deadline_timers, is_utc

from engine import load_definition, parse_definition
from engine.definition import bundled_workflows_dir

LC = "grid_incident"
TARGET_LOCAL = datetime(2024, 5, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))  # 12:00Z


def _escalated_ticket(engine, clock, reporter, centre):
    engine.report(LC, {"category": "blocked drain", "target_at": TARGET_LOCAL},
                  actor=reporter, ticket_id="T1")
    clock.set(at(8, 10))
    engine.fire("T1", "dispatch", actor=centre, fields={"department": "water"})
    clock.set(at(8, 20))
    engine.escalate("T1", actor=centre, reason="needs the street office")


def test_fresh_engine_sees_state_level_fields_history_and_timers(
        engine, make_engine, clock, reporter, centre):
    _escalated_ticket(engine, clock, reporter, centre)
    ticket, history, timers = engine.get("T1"), engine.history("T1"), engine.timers("T1")
    assert (ticket.state, ticket.level) == ("escalated", "street")

    fresh = make_engine()
    again = fresh.get("T1")
    assert again == ticket
    assert again.state == "escalated"  # not reset to the initial state `reported`
    assert again.level == "street"
    assert again.fields == {"category": "blocked drain", "department": "water",
                            "target_at": at(12, 0)}
    assert again.version == 1
    assert fresh.history("T1") == history
    assert [(h.kind, h.trigger, h.to_state) for h in history] == [
        ("report", "report", "reported"), ("transition", "dispatch", "dispatched"),
        ("transition", "escalate", "escalated")]
    assert fresh.timers("T1") == timers


def test_fresh_engine_continues_the_ticket(
        engine, make_engine, clock, reporter, centre, department):
    _escalated_ticket(engine, clock, reporter, centre)
    engine.stop()

    fresh = make_engine()
    clock.set(at(9, 0))
    t = fresh.fire("T1", "arrive", actor=department)
    assert (t.state, t.level, t.row_version) == ("on_site", "street", 4)
    clock.set(at(9, 30))
    assert fresh.fire("T1", "resolve", actor=department).state == "resolved"

    newest = make_engine()
    assert newest.get("T1").state == "resolved"
    assert [h.trigger for h in newest.history("T1")] == [
        "report", "dispatch", "escalate", "arrive", "resolve"]
    # the ticket deadline stopped at `resolved`; the street budget stopped on arrival
    assert [(tm.name, tm.status) for tm in deadline_timers(newest, "T1")] == [
        ("dispatch_due", "cancelled"), ("arrival_due", "cancelled"),
        ("resolution", "cancelled")]
    assert [tm.status for tm in newest.timers("T1") if tm.name == "ladder:street"] == [
        "cancelled"]


def test_fresh_engine_fires_timers_created_by_another(
        engine, make_engine, clock, reporter):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    engine.stop()
    fresh = make_engine()
    fired = fresh.run_until(at(9, 0))
    assert [(f.timer.name, f.outcome) for f in fired] == [("dispatch_due", "escalated")]
    assert (fresh.get("T1").state, fresh.get("T1").level) == ("escalated", "street")


def _instants(eng, ticket_id):
    t = eng.get(ticket_id)
    out = [t.created_at, t.updated_at, t.fields["target_at"]]
    for h in eng.history(ticket_id):
        out.append(h.at)
    for tm in eng.timers(ticket_id):
        out.append(tm.due_at)
        if tm.fired_at is not None:
            out.append(tm.fired_at)
    return out


def test_all_instants_are_utc_also_after_reload(
        engine, make_engine, clock, reporter, centre):
    reported = engine.report(LC, {"category": "x", "target_at": TARGET_LOCAL},
                             actor=reporter, ticket_id="T1")
    assert reported.fields["target_at"] == at(12, 0)
    assert all(is_utc(v) for v in (reported.created_at, reported.updated_at,
                                   reported.fields["target_at"]))
    fired = engine.run_until(at(9, 0))  # dispatch_due escalates at 08:30
    assert [f.outcome for f in fired] == ["escalated"]
    assert is_utc(fired[0].timer.due_at) and is_utc(fired[0].timer.fired_at)
    fired_at = [tm.fired_at for tm in engine.timers("T1") if tm.fired_at is not None]
    assert fired_at == [at(8, 30)]

    instants = _instants(engine, "T1")
    # created, updated, target, 3 history, 1 fired, 2 deadline + 1 ladder + 4 SLA timers due
    assert len(instants) == 14
    assert all(is_utc(v) for v in instants), instants
    assert is_utc(engine.next_due())

    fresh = make_engine()
    reloaded = _instants(fresh, "T1")
    assert reloaded == instants
    assert all(is_utc(v) for v in reloaded), reloaded
    assert all(v.tzinfo is not None for v in reloaded)
    assert fresh.next_due() == at(12, 0)
    assert is_utc(fresh.next_due())


def test_naive_target_at_is_refused_not_guessed(engine, reporter):
    from engine import InvalidFields

    with pytest.raises(InvalidFields) as info:
        engine.report(LC, {"category": "x", "target_at": datetime(2024, 5, 1, 12)},
                      actor=reporter, ticket_id="T1")
    assert info.value.errors == {
        "target_at": "instant 2024-05-01T12:00:00 has no time zone; add one (e.g. +00:00)"}


# -- versions -----------------------------------------------------------------------------------


def test_deploying_the_same_lifecycle_twice_gives_the_same_version(engine, grid_incident_text):
    first = engine.deploy("grid_incident")
    assert first.version == 1
    assert engine.deploy("grid_incident") == first
    assert engine.deploy(load_definition(bundled_workflows_dir() / "grid_incident.yaml")) == first
    assert engine.deploy(parse_definition(grid_incident_text)) == first
    assert [(v.name, v.version) for v in engine.versions()] == [("grid_incident", 1)]


def test_same_version_across_engines(engine, make_engine):
    first = engine.deploy("grid_incident")
    assert make_engine().deploy("grid_incident") == first


def test_changed_yaml_gives_version_2_and_running_tickets_stay_on_1(
        engine, clock, reporter, centre, department, grid_incident_text):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="OLD")
    assert engine.get("OLD").version == 1

    changed = grid_incident_text.replace("after: PT30M", "after: PT45M")
    assert changed != grid_incident_text
    v2 = engine.deploy(parse_definition(changed))
    assert (v2.name, v2.version) == ("grid_incident", 2)
    assert [(v.name, v.version) for v in engine.versions()] == [
        ("grid_incident", 1), ("grid_incident", 2)]
    assert engine.deploy(parse_definition(changed)) == v2  # idempotent too

    assert engine.get("OLD").version == 1
    new = engine.report(LC, {"category": "y"}, actor=reporter, ticket_id="NEW")
    assert new.version == 2
    assert engine.get("NEW").version == 2
    # each ticket's deadline follows its own version
    assert [tm.due_at for tm in deadline_timers(engine, "OLD")] == [
        START + timedelta(minutes=30)]
    assert [tm.due_at for tm in deadline_timers(engine, "NEW")] == [
        START + timedelta(minutes=45)]
    # the old ticket keeps running on version 1
    assert engine.fire("OLD", "dispatch", actor=centre).version == 1
    assert engine.get("OLD").version == 1


def test_fresh_engine_reports_on_the_newest_deployed_version(
        engine, make_engine, reporter, grid_incident_text):
    engine.deploy("grid_incident")
    engine.deploy(parse_definition(grid_incident_text.replace("after: PT30M", "after: PT45M")))
    fresh = make_engine()
    assert fresh.report(LC, {"category": "x"}, actor=reporter, ticket_id="T9").version == 2


def test_tickets_of_both_versions_reload_in_a_fresh_engine(
        engine, make_engine, reporter, grid_incident_text):
    engine.report(LC, {"category": "x"}, actor=reporter, ticket_id="OLD")
    engine.deploy(parse_definition(grid_incident_text.replace("after: PT30M", "after: PT45M")))
    engine.report(LC, {"category": "y"}, actor=reporter, ticket_id="NEW")
    fresh = make_engine()
    assert (fresh.get("OLD").version, fresh.get("NEW").version) == (1, 2)
    fired = fresh.run_until(datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    assert [(f.timer.ticket_id, f.timer.due_at) for f in fired] == [
        ("OLD", at(8, 30)), ("NEW", at(8, 45))]
