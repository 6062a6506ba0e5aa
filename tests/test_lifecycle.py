"""The grid_incident lifecycle through the Engine: every transition and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import START, at, deadline_timers

from engine import (
    SYSTEM,
    Actor,
    CommandRefused,
    Engine,
    HistoryEntry,
    InvalidFields,
    RoleNotAllowed,
    Ticket,
    TicketExists,
    TicketNotFound,
    Timer,
    TopLevelReached,
    TriggerNotAllowed,
    UnknownTrigger,
    VirtualClock,
    parse_definition,
)

LC = "grid_incident"


def last(engine, ticket_id):
    return engine.history(ticket_id)[-1]


def pending(engine, ticket_id):
    return [(t.name, t.state, t.due_at) for t in deadline_timers(engine, ticket_id,
                                                                 status="pending")]


# -- report -------------------------------------------------------------------------------------


def test_report_creates_ticket_history_and_first_timer(engine, reporter):
    ticket = engine.report(LC, {"category": "blocked drain", "area": "A-07"},
                           actor=reporter, ticket_id="T1", reason="seen on patrol")
    expected = Ticket("T1", "grid_incident", 1, "reported", "community",
                      {"category": "blocked drain", "area": "A-07"}, False, START, START, 1)
    assert ticket == expected
    assert engine.get("T1") == expected
    assert engine.history("T1") == [
        HistoryEntry(1, START, "report", "report", None, "reported", None, "community",
                     "hotline-1", "centre", "seen on patrol",
                     {"fields": {"category": "blocked drain", "area": "A-07"}}),
    ]
    assert deadline_timers(engine, "T1") == [
        Timer(1, "T1", "dispatch_due", "reported", at(8, 30), "pending", None),
    ]


def test_report_by_centre_at_a_given_level(engine, centre):
    ticket = engine.report(LC, {"category": "gas smell"}, actor=centre, ticket_id="T1",
                           level="district")
    assert (ticket.state, ticket.level) == ("reported", "district")
    assert engine.history("T1")[0].to_level == "district"


def test_report_generates_an_id_when_omitted(engine, reporter):
    a = engine.report(LC, {"category": "x"}, actor=reporter)
    b = engine.report(LC, {"category": "x"}, actor=reporter)
    assert a.id != b.id
    assert engine.get(a.id).state == "reported"


def test_duplicate_report_id_raises_ticket_exists(engine, reporter, centre, snapshot):
    engine.report(LC, {"category": "blocked drain"}, actor=reporter, ticket_id="T1")
    before = snapshot(engine, "T1")
    with pytest.raises(TicketExists) as info:
        engine.report(LC, {"category": "other"}, actor=centre, ticket_id="T1")
    assert info.value.ticket_id == "T1"
    assert "'T1' already exists" in str(info.value)
    assert snapshot(engine, "T1") == before


def test_report_without_required_category_raises_invalid_fields(engine, reporter):
    with pytest.raises(InvalidFields) as info:
        engine.report(LC, {"description": "no category"}, actor=reporter, ticket_id="T1")
    assert info.value.ticket_id == "T1"
    assert info.value.errors == {"category": "required when reporting"}
    with pytest.raises(TicketNotFound):
        engine.get("T1")
    assert engine.timers() == []


@pytest.mark.parametrize(("fields", "errors"), [
    ({"category": ""}, {"category": "required when reporting"}),
    ({"category": 7}, {"category": "expected text, got 7"}),
    ({"category": "x", "colour": "red"},
     {"colour": "unknown field; declared: address, area, category, channel, city_verdict, "
                "department, description, lat, long, outside_org, patrol, queue, satisfaction, "
                "satisfaction_comment, target_at"}),
])
def test_report_with_bad_fields_raises_invalid_fields(engine, reporter, fields, errors):
    with pytest.raises(InvalidFields) as info:
        engine.report(LC, fields, actor=reporter, ticket_id="T1")
    assert info.value.errors == errors
    with pytest.raises(TicketNotFound):
        engine.get("T1")


def test_report_by_a_role_not_allowed_to_report(engine, department):
    with pytest.raises(RoleNotAllowed) as info:
        engine.report(LC, {"category": "x"}, actor=department, ticket_id="T1")
    assert info.value.role == "department"
    assert info.value.allowed_roles == ("centre", "grid_worker", "system")
    with pytest.raises(TicketNotFound):
        engine.get("T1")


def test_unknown_ticket_raises_ticket_not_found(engine, centre):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    for call in (lambda: engine.get("nope"), lambda: engine.history("nope"),
                 lambda: engine.fire("nope", "dispatch", actor=centre),
                 lambda: engine.escalate("nope", actor=centre, reason="why")):
        with pytest.raises(TicketNotFound) as info:
            call()
        assert info.value.ticket_id == "nope"
        assert str(info.value) == "ticket 'nope' does not exist; check the id"


# -- the happy path -----------------------------------------------------------------------------


def test_full_path_report_dispatch_arrive_resolve_reject_close(
        engine, clock, reporter, centre, department):
    engine.report(LC, {"category": "blocked drain"}, actor=reporter, ticket_id="T1")

    clock.set(at(8, 10))
    t = engine.fire("T1", "dispatch", actor=centre, fields={"department": "water"})
    assert (t.state, t.level, t.row_version, t.updated_at) == ("dispatched", "community", 2,
                                                               at(8, 10))
    assert t.fields == {"category": "blocked drain", "department": "water"}
    assert last(engine, "T1") == HistoryEntry(
        2, at(8, 10), "transition", "dispatch", "reported", "dispatched", "community",
        "community", "ops-1", "centre", None, {"fields": {"department": "water"}})
    assert [(tm.name, tm.state, tm.due_at, tm.status)
            for tm in deadline_timers(engine, "T1")] == [
        ("dispatch_due", "reported", at(8, 30), "cancelled"),
        ("arrival_due", "dispatched", at(10, 10), "pending"),
    ]

    clock.set(at(9, 0))
    t = engine.fire("T1", "arrive", actor=department)
    assert (t.state, t.row_version) == ("on_site", 3)
    assert pending(engine, "T1") == []
    assert deadline_timers(engine, "T1")[1].status == "cancelled"

    clock.set(at(9, 30))
    assert engine.fire("T1", "resolve", actor=department).state == "resolved"

    clock.set(at(9, 40))
    t = engine.fire("T1", "reject", actor=centre, reason="photo shows water still standing")
    assert (t.state, t.level) == ("dispatched", "community")
    assert last(engine, "T1").reason == "photo shows water still standing"
    assert pending(engine, "T1") == [("arrival_due", "dispatched", at(11, 40))]

    clock.set(at(10, 0))
    engine.fire("T1", "arrive", actor=department)
    engine.fire("T1", "resolve", actor=department)
    clock.set(at(10, 30))
    t = engine.fire("T1", "close", actor=centre)
    assert (t.state, t.level, t.overdue, t.row_version) == ("closed", "community", False, 8)
    assert engine.get("T1") == t

    assert [(h.seq, h.kind, h.trigger, h.from_state, h.to_state, h.actor, h.role)
            for h in engine.history("T1")] == [
        (1, "report", "report", None, "reported", "hotline-1", "centre"),
        (2, "transition", "dispatch", "reported", "dispatched", "ops-1", "centre"),
        (3, "transition", "arrive", "dispatched", "on_site", "water-3", "department"),
        (4, "transition", "resolve", "on_site", "resolved", "water-3", "department"),
        (5, "transition", "reject", "resolved", "dispatched", "ops-1", "centre"),
        (6, "transition", "arrive", "dispatched", "on_site", "water-3", "department"),
        (7, "transition", "resolve", "on_site", "resolved", "water-3", "department"),
        (8, "transition", "close", "resolved", "closed", "ops-1", "centre"),
    ]
    assert pending(engine, "T1") == []


@pytest.mark.parametrize("source", ["reported", "dispatched", "on_site"])
def test_centre_escalates_with_reason_one_level_up(
        engine, clock, centre, department, source):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    if source in ("dispatched", "on_site"):
        engine.fire("T1", "dispatch", actor=centre)
    if source == "on_site":
        engine.fire("T1", "arrive", actor=department)
    clock.set(at(8, 20))

    t = engine.escalate("T1", actor=centre, reason="needs the street office")
    assert (t.state, t.level) == ("escalated", "street")
    assert engine.get("T1") == t
    assert last(engine, "T1") == HistoryEntry(
        len(engine.history("T1")), at(8, 20), "transition", "escalate", source, "escalated",
        "community", "street", "ops-1", "centre", "needs the street office", {})
    assert pending(engine, "T1") == []
    ladder = engine.ladder("T1")
    assert (ladder.level, ladder.handler, ladder.since, ladder.budget_due) == (
        "street", "street_office", at(8, 20), at(8, 20) + timedelta(days=2))


def test_escalate_by_fire_and_again_from_escalated_climbs_the_ladder(engine, centre):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    levels = []
    for _ in range(3):
        t = engine.fire("T1", "escalate", actor=centre, reason="still unsolved")
        levels.append((t.state, t.level))
    assert levels == [("escalated", "street"), ("escalated", "district"),
                      ("escalated", "city")]
    assert [(h.from_level, h.to_level) for h in engine.history("T1")[1:]] == [
        ("community", "street"), ("street", "district"), ("district", "city")]
    # each hop starts the new level's budget: exactly one pending budget timer
    assert [(tm.name, tm.due_at) for tm in engine.timers("T1", status="pending")
            if tm.name.startswith("ladder:")] == [("ladder:city", START + timedelta(days=2))]


@pytest.mark.parametrize(("trigger", "role", "dest"), [
    ("dispatch", "centre", "dispatched"),
    ("arrive", "department", "on_site"),
    ("resolve", "department", "resolved"),
])
def test_from_escalated(engine, clock, centre, trigger, role, dest):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    engine.escalate("T1", actor=centre, reason="urgent")
    clock.set(at(9, 0))
    t = engine.fire("T1", trigger, actor=Actor("someone", role))
    assert (t.state, t.level) == (dest, "street")
    entry = last(engine, "T1")
    assert (entry.trigger, entry.from_state, entry.to_state, entry.from_level,
            entry.to_level, entry.role) == (trigger, "escalated", dest, "street", "street", role)
    # taking the escalated ticket on acknowledges the level: its budget stops
    statuses = {(tm.name, tm.status) for tm in engine.timers("T1")}
    assert ("ladder:street", "cancelled") in statuses
    assert ("ladder:street", "pending") not in statuses
    assert engine.ladder("T1").acknowledged_by == "someone"


def test_system_may_escalate(engine, centre):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    t = engine.fire("T1", "escalate", actor=SYSTEM, reason="deadline missed")
    assert (t.state, t.level) == ("escalated", "street")
    assert last(engine, "T1").actor == "gridwhistle"


# -- refusals -----------------------------------------------------------------------------------


def _to(engine, state, centre, department):
    """Bring a fresh ticket T1 into ``state``."""
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    paths = {
        "reported": [],
        "dispatched": [("dispatch", centre, None)],
        "on_site": [("dispatch", centre, None), ("arrive", department, None)],
        "resolved": [("dispatch", centre, None), ("arrive", department, None),
                     ("resolve", department, None)],
        "escalated": [("escalate", centre, "why")],
        "closed": [("dispatch", centre, None), ("arrive", department, None),
                   ("resolve", department, None), ("close", centre, None)],
    }
    for trigger, actor, reason in paths[state]:
        engine.fire("T1", trigger, actor=actor, reason=reason)
    assert engine.get("T1").state == state


@pytest.mark.parametrize(("state", "trigger", "allowed"), [
    ("reported", "arrive", ("dispatch", "escalate", "merge", "void")),
    ("reported", "close", ("dispatch", "escalate", "merge", "void")),
    ("dispatched", "resolve", ("arrive", "escalate", "merge", "void")),
    ("on_site", "dispatch", ("ask_reporter", "escalate", "merge", "resolve", "void")),
    ("resolved", "escalate", ("close", "reject", "reopen", "verify")),
    ("escalated", "close", ("acknowledge", "arrive", "dispatch", "escalate", "hand_off", "merge",
                            "resolve", "void")),
    ("closed", "reject", ()),
    ("reported", "no_such_trigger", ("dispatch", "escalate", "merge", "void")),
])
def test_trigger_not_allowed_names_ticket_state_trigger_and_allowed(
        engine, clock, centre, department, snapshot, state, trigger, allowed):
    _to(engine, state, centre, department)
    clock.advance(timedelta(minutes=5))
    before = snapshot(engine, "T1")
    with pytest.raises(TriggerNotAllowed) as info:
        engine.fire("T1", trigger, actor=centre, reason="because")
    err = info.value
    assert (err.ticket_id, err.state, err.trigger, err.allowed) == ("T1", state, trigger, allowed)
    choices = ", ".join(allowed) if allowed else "none (the state is final)"
    if trigger == "no_such_trigger":  # declared nowhere: the subclass UnknownTrigger
        assert isinstance(err, UnknownTrigger) and "close" in err.known
        assert str(err).startswith("the lifecycle of ticket 'T1' declares no trigger "
                                   "'no_such_trigger'; check its spelling")
        assert str(err).endswith(f"allowed in state {state!r} now: {choices}")
    else:
        assert not isinstance(err, UnknownTrigger)
        assert str(err) == (f"ticket 'T1' is in state {state!r}, where trigger {trigger!r} is "
                            f"not allowed; allowed triggers there: {choices}")
    assert snapshot(engine, "T1") == before


@pytest.mark.parametrize(("state", "trigger", "role", "allowed_roles"), [
    ("reported", "dispatch", "grid_worker", ("centre",)),
    ("reported", "dispatch", "department", ("centre",)),
    ("dispatched", "arrive", "centre", ("department",)),
    ("on_site", "resolve", "grid_worker", ("department",)),
    ("resolved", "close", "department", ("centre",)),
    ("resolved", "reject", "department", ("centre",)),
    ("reported", "escalate", "department", ("centre", "system")),
    ("escalated", "escalate", "grid_worker", ("centre", "system")),
])
def test_role_not_allowed_names_the_allowed_roles(
        engine, clock, centre, department, snapshot, state, trigger, role, allowed_roles):
    _to(engine, state, centre, department)
    clock.advance(timedelta(minutes=5))
    before = snapshot(engine, "T1")
    with pytest.raises(RoleNotAllowed) as info:
        engine.fire("T1", trigger, actor=Actor("intruder", role), reason="because")
    err = info.value
    assert (err.ticket_id, err.state, err.trigger, err.role, err.allowed_roles) == (
        "T1", state, trigger, role, allowed_roles)
    assert str(err) == (f"role {role!r} may not fire {trigger!r} on ticket 'T1' in state "
                        f"{state!r}; roles allowed: {', '.join(allowed_roles)}")
    assert snapshot(engine, "T1") == before


@pytest.mark.parametrize(("state", "trigger", "reason"), [
    ("resolved", "reject", None),
    ("resolved", "reject", ""),
    ("resolved", "reject", "   "),
    ("reported", "escalate", None),
    ("on_site", "escalate", "\t"),
    ("escalated", "escalate", None),
])
def test_reason_required_without_reason_raises_invalid_fields(
        engine, clock, centre, department, snapshot, state, trigger, reason):
    _to(engine, state, centre, department)
    clock.advance(timedelta(minutes=5))
    before = snapshot(engine, "T1")
    with pytest.raises(InvalidFields) as info:
        engine.fire("T1", trigger, actor=centre, reason=reason)
    assert info.value.ticket_id == "T1"
    assert info.value.errors == {"reason": f"trigger {trigger!r} requires a reason"}
    assert snapshot(engine, "T1") == before


def test_escalate_method_without_reason_raises_invalid_fields(
        engine, centre, department, snapshot):
    _to(engine, "dispatched", centre, department)
    before = snapshot(engine, "T1")
    with pytest.raises(InvalidFields) as info:
        engine.escalate("T1", actor=centre, reason="")
    assert info.value.errors == {"reason": "trigger 'escalate' requires a reason"}
    assert snapshot(engine, "T1") == before


@pytest.mark.parametrize(("fields", "errors"), [
    ({"colour": "red"},
     {"colour": "unknown field; declared: address, area, category, channel, city_verdict, "
                "department, description, lat, long, outside_org, patrol, queue, satisfaction, "
                "satisfaction_comment, target_at"}),
    ({"department": 12}, {"department": "expected text, got 12"}),
    ({"target_at": "2024-05-02T10:00:00"},
     {"target_at": "instant 2024-05-02T10:00:00 has no time zone; add one (e.g. +00:00)"}),
    ({"target_at": "tomorrow"},
     {"target_at": "expected an ISO 8601 instant with a zone, got 'tomorrow'"}),
])
def test_bad_field_update_raises_invalid_fields(
        engine, centre, department, snapshot, fields, errors):
    _to(engine, "reported", centre, department)
    before = snapshot(engine, "T1")
    with pytest.raises(InvalidFields) as info:
        engine.fire("T1", "dispatch", actor=centre, fields=fields)
    assert info.value.errors == errors
    assert snapshot(engine, "T1") == before


@pytest.mark.parametrize("how", ["escalate", "fire"])
def test_escalating_at_the_top_level_raises_top_level_reached(
        engine, clock, centre, snapshot, how):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1", level="city")
    clock.advance(timedelta(minutes=5))
    before = snapshot(engine, "T1")
    with pytest.raises(TopLevelReached) as info:
        if how == "escalate":
            engine.escalate("T1", actor=centre, reason="more help")
        else:
            engine.fire("T1", "escalate", actor=centre, reason="more help")
    assert isinstance(info.value, CommandRefused)
    assert (info.value.ticket_id, info.value.level) == ("T1", "city")
    assert snapshot(engine, "T1") == before


def test_top_level_reached_after_climbing(engine, centre, snapshot):
    engine.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    for _ in range(3):
        engine.escalate("T1", actor=centre, reason="up")
    assert engine.get("T1").level == "city"
    before = snapshot(engine, "T1")
    with pytest.raises(TopLevelReached):
        engine.escalate("T1", actor=centre, reason="up again")
    assert snapshot(engine, "T1") == before


def test_refused_command_does_not_block_the_next_one(engine, centre, department):
    _to(engine, "reported", centre, department)
    with pytest.raises(RoleNotAllowed):
        engine.fire("T1", "dispatch", actor=department)
    t = engine.fire("T1", "dispatch", actor=centre)
    assert (t.state, t.row_version) == ("dispatched", 2)
    assert [h.seq for h in engine.history("T1")] == [1, 2]


BRANCHING = """format: 1
name: branching
initial: open
roles: {centre: {}, department: {}, resident: {}, system: {}}
levels: [{name: community}]
report: {roles: [centre]}
states: {open: {}, review: {}, done: {final: true}}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [centre]}
  - {trigger: finish, source: open, dest: review, roles: [department]}
  - {trigger: approve, source: review, dest: done, roles: [centre, department]}
"""


def test_one_trigger_from_one_state_takes_each_role_to_its_own_transition(tmp_path) -> None:
    """Transitions of one state and trigger that differ in roles: each role takes its own
    (the Machine keeps the role as a condition there), another role is refused."""
    eng = Engine(tmp_path / "b.sqlite", clock=VirtualClock(START))
    try:
        eng.deploy(parse_definition(BRANCHING))
        for tid in ("B-1", "B-2", "B-3"):
            eng.report("branching", {}, actor=Actor("ops-1", "centre"), ticket_id=tid)
        assert eng.fire("B-1", "finish", actor=Actor("ops-1", "centre")).state == "done"
        assert eng.fire("B-2", "finish", actor=Actor("w-1", "department")).state == "review"
        with pytest.raises(RoleNotAllowed):
            eng.fire("B-3", "finish", actor=Actor("r-1", "resident"))
        assert eng.get("B-3").state == "open"
        assert eng.fire("B-2", "approve", actor=Actor("w-1", "department")).state == "done"
    finally:
        eng.stop()
