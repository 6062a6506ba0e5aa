"""Many departments on one ticket: routing, work orders, the three duties, bounces, joint
meetings, reopen and duplicates — on a real SQLite file and the bundled grid_incident."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import START, at

from engine import (
    SYSTEM,
    Actor,
    BounceBudgetExceeded,
    BounceLimitReached,
    BounceNeedsApproval,
    DefinitionError,
    Departments,
    Engine,
    InvalidFields,
    NoRouting,
    NotADuplicate,
    TriggerNotAllowed,
    UnknownDepartment,
    parse_definition,
)

WATER = Actor("water-3", "department")
SANITATION = Actor("san-1", "department")
ROADS = Actor("roads-2", "department")
STREET = Actor("street-9", "department")


@pytest.fixture
def depts(engine: Engine) -> Departments:
    return Departments(engine)


def report(engine: Engine, tid: str, category: str, area: str = "A1", **fields: object) -> str:
    return engine.report("grid_incident", {"category": category, "area": area, **fields},
                         actor=Actor("gw-017", "centre"), ticket_id=tid).id


def orders(depts: Departments, tid: str) -> list[tuple[str, str, str, str]]:
    return [(o.id, o.department, o.role, o.state) for o in depts.work_orders(tid)]


def finish(engine: Engine, wid: str, actor: Actor) -> None:
    engine.fire(wid, "accept", actor=actor)
    engine.fire(wid, "finish", actor=actor)


# -- routing in YAML ---------------------------------------------------------------------------


def test_routing_is_validated_against_the_declared_departments(grid_incident_text):
    text = grid_incident_text.replace(
        "    - {category: garbage, lead: sanitation}",
        "    - {category: garbage, lead: sanitaton, co: [sanitation, parks], level: town}")
    text = text.replace("  fallback: street_office\n", "  fallback: nobody\n")
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, "gi.yaml")
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines, 1) if "lead: sanitaton" in line)
    fallback = next(i for i, line in enumerate(lines, 1) if "fallback: nobody" in line)
    known = ("declared departments: lighting, roads, sanitation, street_office, "
             "traffic_police, urban_management, water")
    assert [str(p) for p in info.value.problems] == [
        f"gi.yaml:{fallback}: routing.fallback: unknown department 'nobody'; {known}",
        f"gi.yaml:{rule}: routing.rules[1].co[1]: unknown department 'parks'; {known}",
        f"gi.yaml:{rule}: routing.rules[1].lead: unknown department 'sanitaton'; {known}",
        f"gi.yaml:{rule}: routing.rules[1].level: unknown level 'town'; declared levels: "
        "city, community, district, street",
    ]


def test_quorum_rows_need_a_quorum_that_fits(grid_incident_text):
    text = grid_incident_text.replace("resolution: quorum, quorum: 2", "resolution: quorum, "
                                      "quorum: 4")
    with pytest.raises(DefinitionError, match=r"routing\.rules\[2\]\.quorum: quorum 4 is more "
                       r"than the 3 department\(s\) of this row"):
        parse_definition(text, "gi.yaml")


def test_the_route_follows_category_then_level(engine, depts):
    report(engine, "T1", "road_damage")
    report(engine, "T2", "road_damage")
    engine.escalate("T2", actor=Actor("ops-1", "centre"), reason="big hole")
    engine.escalate("T2", actor=Actor("ops-1", "centre"), reason="bigger")
    report(engine, "T3", "cats_in_trees")
    r1, r2, r3 = depts.route("T1"), depts.route("T2"), depts.route("T3")
    assert (r1.lead, r1.co, r1.resolution, r1.rule) == ("roads", ("traffic_police",), "lead", 3)
    assert (r2.lead, r2.co, r2.resolution, r2.quorum, r2.rule) == (
        "roads", ("traffic_police", "water"), "quorum", 2, 2)
    assert (r3.lead, r3.co, r3.fallback, r3.rule) == ("street_office", (), "street_office", None)


def test_a_lifecycle_without_routing_refuses_department_commands(engine, depts, centre):
    text = engine.lifecycle("grid_incident").definition.source.split("\ndepartments:")[0]
    engine.deploy(parse_definition(text.replace("name: grid_incident", "name: plain")))
    engine.report("plain", {"category": "x"}, actor=centre, ticket_id="P1")
    with pytest.raises(NoRouting, match="declares no routing table"):
        depts.dispatch("P1", actor=centre)
    assert engine.get("P1").state == "reported"


# -- work orders and resolution rules -----------------------------------------------------------


def test_dispatch_issues_lead_and_co_work_orders_in_one_step(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    issued = depts.dispatch("T1", actor=centre, reason="routine")
    assert [(o.id, o.department, o.role, o.state, o.level) for o in issued] == [
        ("T1.1", "water", "lead", "issued", "community"),
        ("T1.2", "sanitation", "co", "issued", "community")]
    t = engine.get("T1")
    assert (t.state, t.fields["department"]) == ("dispatched", "water")
    wo = engine.get("T1.1")
    assert (wo.lifecycle, wo.fields) == ("work_order", {
        "parent": "T1", "department": "water", "role": "lead", "category": "blocked_drain"})
    # each work order has its own clocks
    assert sorted((tm.ticket_id, tm.name, tm.due_at) for tm in engine.timers(status="pending")
                  if tm.ticket_id != "T1") == [
        ("T1.1", "accept_due", START + timedelta(hours=1)),
        ("T1.1", "resolution", START + timedelta(days=1)),
        ("T1.2", "accept_due", START + timedelta(hours=1)),
        ("T1.2", "resolution", START + timedelta(days=1))]
    assert depts.actions("T1")[0]["data"] == {
        "lead": "water", "co": ["sanitation"], "rule": 0, "resolution": "all", "quorum": None}


def test_a_refused_dispatch_issues_nothing(engine, depts, centre, snapshot):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    before = snapshot(engine, "T1")
    with pytest.raises(TriggerNotAllowed):
        depts.dispatch("T1", actor=centre)  # already dispatched
    assert snapshot(engine, "T1") == before
    assert [o.id for o in depts.work_orders("T1")] == ["T1.1", "T1.2"]


def test_rule_all_resolves_the_ticket_when_the_last_work_order_is_done(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    finish(engine, "T1.1", WATER)
    assert engine.get("T1").state == "dispatched"
    finish(engine, "T1.2", SANITATION)
    assert engine.get("T1").state == "resolved"
    last = engine.history("T1")[-2:]
    assert [(h.trigger, h.to_state, h.actor, h.role) for h in last] == [
        ("arrive", "on_site", "sanitation", "department"),
        ("resolve", "resolved", "sanitation", "department")]
    assert last[1].reason == "resolution rule 'all' met when work order T1.2 was done"
    engine.fire("T1", "close", actor=centre)
    assert engine.get("T1").state == "closed"


def test_rule_lead_resolves_on_the_lead_alone(engine, depts, centre):
    report(engine, "T1", "road_damage")
    depts.dispatch("T1", actor=centre)
    assert orders(depts, "T1") == [("T1.1", "roads", "lead", "issued"),
                                   ("T1.2", "traffic_police", "co", "issued")]
    finish(engine, "T1.1", ROADS)
    assert engine.get("T1").state == "resolved"
    assert engine.get("T1.2").state == "issued"  # the co-handler goes on on its own


def test_rule_quorum_resolves_on_the_second_of_three(engine, depts, centre):
    engine.report("grid_incident", {"category": "road_damage", "area": "A1"},
                  actor=centre, ticket_id="T1", level="district")
    issued = depts.dispatch("T1", actor=centre)
    assert [(o.department, o.role, o.level) for o in issued] == [
        ("roads", "lead", "district"), ("traffic_police", "co", "district"),
        ("water", "co", "district")]
    finish(engine, "T1.3", WATER)
    assert engine.get("T1").state == "dispatched"
    finish(engine, "T1.2", Actor("tp-1", "department"))
    assert engine.get("T1").state == "resolved"
    assert engine.get("T1.1").state == "issued"


def test_a_late_co_handler_escalates_alone(engine, depts, centre, clock):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    engine.fire("T1", "arrive", actor=WATER)  # the ticket's own progress
    finish(engine, "T1.1", WATER)
    engine.fire("T1.2", "accept", actor=SANITATION)
    fired = engine.run_until(START + timedelta(days=1, seconds=1))
    assert [(f.timer.ticket_id, f.timer.name, f.outcome) for f in fired] == [
        ("T1.2", "resolution", "escalated")]
    late = engine.get("T1.2")
    assert (late.state, late.level, late.overdue) == ("escalated", "street", True)
    lead = engine.get("T1.1")
    assert (lead.state, lead.level, lead.overdue) == ("done", "community", False)
    parent = engine.get("T1")
    assert (parent.state, parent.level) == ("on_site", "community")
    finish_late = engine.fire("T1.2", "finish", actor=SANITATION)
    assert finish_late.state == "done"
    assert engine.get("T1").state == "resolved"
    figures = depts.figures("grid_incident")
    assert figures == {
        "sanitation": {"received": 1, "bounced": 0, "resolved": 1, "on_time": 0,
                       "escalated": 1},
        "water": {"received": 1, "bounced": 0, "resolved": 1, "on_time": 1, "escalated": 0}}


# -- the three duties ---------------------------------------------------------------------------


def test_first_receiver_cannot_bounce_without_the_centres_approval(engine, depts, centre,
                                                                   snapshot):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    before = snapshot(engine, "T1.1"), snapshot(engine, "T1")
    with pytest.raises(BounceNeedsApproval) as info:
        depts.bounce("T1.1", actor=WATER, reason="this is a sewage pipe, not water supply")
    err = info.value
    assert (err.ticket_id, err.parent_id, err.department) == ("T1.1", "T1", "water")
    assert "without the centre's approval" in str(err)
    assert (snapshot(engine, "T1.1"), snapshot(engine, "T1")) == before
    # a co-handler is not the first receiver
    depts.bounce("T1.2", actor=SANITATION, reason="nothing to clean")
    assert engine.get("T1.2").state == "returned"
    depts.approve_bounce("T1.1", actor=centre, reason="sewage belongs to the drainage company")
    depts.bounce("T1.1", actor=WATER, reason="this is a sewage pipe, not water supply")
    # that was the ticket's second bounce: the limit; the fallback department owns it
    assert orders(depts, "T1") == [("T1.1", "water", "lead", "returned"),
                                   ("T1.2", "sanitation", "co", "returned"),
                                   ("T1.3", "street_office", "lead", "issued")]
    assert [a["kind"] for a in depts.actions("T1")] == ["dispatch", "approve_bounce",
                                                        "fallback"]


def test_a_bounce_needs_a_reason(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    with pytest.raises(InvalidFields, match="a bounce requires a reason"):
        depts.bounce("T1.2", actor=SANITATION, reason="  ")
    with pytest.raises(InvalidFields, match="trigger 'bounce' requires a reason"):
        engine.fire("T1.2", "bounce", actor=SANITATION)


def test_the_centre_designates_a_lead_at_any_time_with_a_reason(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    with pytest.raises(InvalidFields, match="designating a lead requires a reason"):
        depts.designate_lead("T1", "roads", actor=centre, reason="")
    with pytest.raises(UnknownDepartment) as info:
        depts.designate_lead("T1", "parks", actor=centre, reason="x")
    assert info.value.known[:2] == ("lighting", "roads")
    lead = depts.designate_lead("T1", "roads", actor=centre, reason="the road has collapsed")
    assert (lead.id, lead.department, lead.role) == ("T1.3", "roads", "lead")
    assert orders(depts, "T1") == [("T1.1", "water", "lead", "withdrawn"),
                                   ("T1.2", "sanitation", "co", "issued"),
                                   ("T1.3", "roads", "lead", "issued")]
    action = depts.actions("T1")[-1]
    assert (action["kind"], action["actor"], action["reason"], action["data"]) == (
        "designate", "ops-1", "the road has collapsed", {"lead": "roads"})


def test_fallback_owns_the_ticket_when_nobody_accepts_in_time(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    engine.fire("T1.2", "accept", actor=SANITATION)
    assert engine.run_until(START + timedelta(hours=1)) == []  # due at 09:00: not yet
    fired = engine.run_until(START + timedelta(hours=1, seconds=1))
    assert [(f.timer.ticket_id, f.timer.name, f.outcome) for f in fired] == [
        ("T1.1", "accept_due", "breached")]
    assert orders(depts, "T1") == [("T1.1", "water", "lead", "withdrawn"),
                                   ("T1.2", "sanitation", "co", "accepted"),
                                   ("T1.3", "street_office", "lead", "issued")]
    assert depts.work_orders("T1")[2].fallback is True
    action = depts.actions("T1")[-1]
    assert (action["kind"], action["actor"], action["reason"]) == (
        "fallback", SYSTEM.id, "no department accepted in time")
    # the fallback's own acceptance deadline does not loop
    engine.fire("T1.3", "accept", actor=STREET)
    fired = engine.run_until(START + timedelta(hours=3))
    assert [(f.timer.ticket_id, f.timer.name) for f in fired] == [("T1", "arrival_due")]
    assert len(depts.work_orders("T1")) == 3


def test_after_n_bounces_the_fallback_owns_it_and_bounces_stop(engine, depts, centre, clock):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    depts.approve_bounce("T1.1", actor=centre, reason="check")
    depts.bounce("T1.1", actor=WATER, reason="not a water pipe")          # bounce 1
    depts.designate_lead("T1", "roads", actor=centre, reason="road drain")
    assert orders(depts, "T1")[0][3] == "returned"
    clock.advance(timedelta(minutes=10))
    depts.bounce("T1.3", actor=ROADS, reason="drain is in a courtyard")   # bounce 2 = limit
    assert orders(depts, "T1") == [("T1.1", "water", "lead", "returned"),
                                   ("T1.2", "sanitation", "co", "issued"),
                                   ("T1.3", "roads", "lead", "returned"),
                                   ("T1.4", "street_office", "lead", "issued")]
    with pytest.raises(BounceLimitReached) as info:
        depts.bounce("T1.2", actor=SANITATION, reason="also not ours")
    assert (info.value.limit, info.value.count, info.value.parent_id) == (2, 2, "T1")
    with pytest.raises(BounceLimitReached):
        depts.bounce("T1.4", actor=STREET, reason="we are the fallback")
    figures = depts.figures("grid_incident")
    assert {d: (f["received"], f["bounced"]) for d, f in figures.items()} == {
        "roads": (1, 1), "sanitation": (1, 0), "street_office": (1, 0), "water": (1, 1)}


def test_a_bounced_lead_nobody_reroutes_goes_to_the_fallback(engine, depts, centre):
    report(engine, "T1", "garbage")
    depts.dispatch("T1", actor=centre)
    depts.approve_bounce("T1.1", actor=centre, reason="ok")
    depts.bounce("T1.1", actor=SANITATION, reason="private land")
    engine.run_until(START + timedelta(hours=1, seconds=1))
    assert orders(depts, "T1") == [("T1.1", "sanitation", "lead", "returned"),
                                   ("T1.2", "street_office", "lead", "issued")]
    assert depts.actions("T1")[-1]["reason"] == "bounced and not re-routed in time"


def test_a_bounce_after_the_time_budget_is_refused(engine, depts, centre, clock):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    engine.fire("T1.2", "accept", actor=SANITATION)
    clock.advance(timedelta(hours=2))
    clock.advance(timedelta(seconds=1))
    with pytest.raises(BounceBudgetExceeded) as info:
        depts.bounce("T1.2", actor=SANITATION, reason="on reflection, not ours")
    assert (info.value.department, info.value.budget_seconds) == ("sanitation", 7200.0)
    assert engine.get("T1.2").state == "accepted"


# -- joint meeting ------------------------------------------------------------------------------


def test_a_joint_meeting_records_who_came_and_applies_its_decision(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    live = depts.joint_meeting("T1", actor=centre, present=["water", "sanitation", "roads"],
                               lead="roads", co=["water"], reason="collapsed culvert")
    assert [(o.id, o.department, o.role) for o in live] == [("T1.3", "roads", "lead"),
                                                            ("T1.4", "water", "co")]
    assert orders(depts, "T1")[:2] == [("T1.1", "water", "lead", "withdrawn"),
                                       ("T1.2", "sanitation", "co", "withdrawn")]
    meeting = depts.actions("T1")[-1]
    assert (meeting["kind"], meeting["reason"], meeting["data"]) == (
        "meeting", "collapsed culvert",
        {"present": ["water", "sanitation", "roads"], "lead": "roads", "co": ["water"],
         "resolution": "all", "quorum": None})
    finish(engine, "T1.3", ROADS)
    finish(engine, "T1.4", WATER)
    assert engine.get("T1").state == "resolved"


def test_a_meeting_naming_an_unknown_department_changes_nothing(engine, depts, centre):
    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    with pytest.raises(UnknownDepartment):
        depts.joint_meeting("T1", actor=centre, present=["water", "parks"], lead="water")
    assert len(depts.work_orders("T1")) == 2
    assert [a["kind"] for a in depts.actions("T1")] == ["dispatch"]


# -- reopen and duplicates ----------------------------------------------------------------------


def test_reopen_keeps_the_resolution_clock_running(engine, depts, centre, clock):
    report(engine, "T1", "garbage", target_at=at(20, 0))
    depts.dispatch("T1", actor=centre)
    clock.set(at(9, 0))
    finish(engine, "T1.1", SANITATION)
    assert engine.get("T1").state == "resolved"
    assert [tm.status for tm in engine.timers("T1") if tm.name == "resolution"] == [
        "cancelled"]
    clock.set(at(10, 0))
    resident = Actor("resident-42", "resident")
    engine.fire("T1", "reopen", actor=resident, reason="still piled up at the gate")
    resolution = [(tm.status, tm.due_at) for tm in engine.timers("T1")
                  if tm.name == "resolution"]
    assert resolution == [("cancelled", at(20, 0)), ("pending", at(20, 0))]  # same due
    assert orders(depts, "T1")[-1] == ("T1.2", "sanitation", "lead", "issued")
    engine.fire("T1.2", "accept", actor=SANITATION)
    engine.run_until(at(20, 0, ) + timedelta(seconds=1))
    t = engine.get("T1")
    assert (t.overdue, t.level, t.state) == (True, "street", "escalated")
    engine.fire("T1.2", "finish", actor=SANITATION)
    assert engine.get("T1").state == "resolved"


def test_a_duplicate_is_merged_and_the_original_keeps_its_clocks(engine, depts, centre,
                                                                  clock):
    report(engine, "T1", "noise", area="B7")
    depts.dispatch("T1", actor=centre)
    original_timers = engine.timers("T1")
    clock.advance(timedelta(hours=3))
    report(engine, "T2", "noise", area="B7")
    depts.merge_duplicate("T2", "T1", actor=centre, reason="same karaoke bar")
    assert engine.get("T2").state == "merged"
    assert depts.duplicate_of("T2") == "T1"
    assert engine.timers("T2", status="pending") == []
    assert engine.timers("T1") == original_timers
    assert engine.get("T1").created_at == START
    assert depts.actions("T1")[-1]["data"] == {"duplicate": "T2"}


@pytest.mark.parametrize(("second", "delay", "into", "why"), [
    ({"category": "noise", "area": "C1"}, timedelta(hours=1), "T1",
     "field 'area' differs ('C1' / 'B7')"),
    ({"category": "garbage", "area": "B7"}, timedelta(hours=1), "T1",
     "field 'category' differs ('garbage' / 'noise')"),
    ({"category": "noise", "area": "B7"}, timedelta(days=1, seconds=1), "T1",
     "reported 1 day, 0:00:01 apart, more than the window 1 day, 0:00:00"),
])
def test_merging_what_is_not_a_duplicate_is_refused(engine, depts, centre, clock, snapshot,
                                                    second, delay, into, why):
    report(engine, "T1", "noise", area="B7")
    clock.advance(delay)
    engine.report("grid_incident", second, actor=centre, ticket_id="T2")
    before = snapshot(engine, "T2")
    with pytest.raises(NotADuplicate) as info:
        depts.merge_duplicate("T2", into, actor=centre, reason="looks the same")
    assert (info.value.ticket_id, info.value.original_id, info.value.why) == ("T2", "T1", why)
    assert snapshot(engine, "T2") == before


def test_the_later_report_is_merged_into_the_earlier_not_the_other_way(engine, depts, centre,
                                                                        clock):
    report(engine, "T1", "noise", area="B7")
    clock.advance(timedelta(minutes=5))
    report(engine, "T2", "noise", area="B7")
    with pytest.raises(NotADuplicate, match="the original was reported later"):
        depts.merge_duplicate("T1", "T2", actor=centre, reason="same")


def test_designating_a_lead_on_a_new_ticket_dispatches_it(engine, depts, centre):
    report(engine, "T1", "noise")
    lead = depts.designate_lead("T1", "traffic_police", actor=centre, reason="night parking")
    assert (lead.department, engine.get("T1").state) == ("traffic_police", "dispatched")
    assert orders(depts, "T1") == [("T1.1", "traffic_police", "lead", "issued")]


def test_the_parent_resolves_in_the_same_transaction_as_the_last_work_order(engine, depts,
                                                                             centre):
    report(engine, "T1", "garbage")
    depts.dispatch("T1", actor=centre)
    engine.fire("T1.1", "accept", actor=SANITATION)
    with pytest.raises(RuntimeError), engine.batch():
        engine.fire("T1.1", "finish", actor=SANITATION)
        assert engine.get("T1").state == "resolved"  # seen inside the transaction
        raise RuntimeError("the host's batch fails after the command")
    assert (engine.get("T1.1").state, engine.get("T1").state) == ("accepted", "dispatched")
    assert orders(depts, "T1") == [("T1.1", "sanitation", "lead", "accepted")]


def test_a_refused_step_inside_a_batch_rolls_back_alone(engine, depts, centre):
    report(engine, "T1", "garbage")
    report(engine, "T2", "garbage", area="A2")
    with engine.batch():  # the work-order lifecycle is deployed on first use, in the batch
        depts.dispatch("T1", actor=centre)
        with pytest.raises(UnknownDepartment):
            depts.joint_meeting("T2", actor=centre, present=["parks"], lead="sanitation")
        depts.dispatch("T2", actor=centre)
    assert [len(depts.work_orders(t)) for t in ("T1", "T2")] == [1, 1]
    assert [a["kind"] for a in depts.actions("T2")] == ["dispatch"]


def test_the_ticket_sla_derives_from_its_parts(engine, depts, centre, clock):
    engine.report("grid_incident", {"category": "road_damage", "area": "A1"},
                  actor=centre, ticket_id="T1", level="district")
    depts.dispatch("T1", actor=centre)                  # quorum 2 of roads, police, water
    clock.advance(timedelta(hours=2))
    depts.add_work_order("T1", "lighting", actor=centre)  # a later part, due later
    finish(engine, "T1.3", WATER)
    sla = depts.sla("T1")
    day = START + timedelta(days=1)
    assert [(p.work_order, p.due_at, p.on_time) for p in sla.parts] == [
        ("T1.1", day, None), ("T1.2", day, None), ("T1.3", day, True),
        ("T1.4", day + timedelta(hours=2), None)]
    assert (sla.rule, sla.quorum, sla.due_at, sla.met_at, sla.on_time) == (
        "quorum", 2, day, None, None)
    clock.advance(timedelta(days=1))                    # past the second part's due
    engine.run_until(clock.now())
    finish(engine, "T1.2", Actor("tp-1", "department"))
    sla = depts.sla("T1")
    assert (sla.due_at, sla.met_at, sla.on_time) == (day, clock.now(), False)
    assert engine.get("T1").state == "resolved"


def test_a_fallback_that_does_not_accept_is_not_replaced_again(engine, depts, centre):
    report(engine, "T1", "garbage")
    depts.dispatch("T1", actor=centre)
    engine.run_until(START + timedelta(hours=5))
    assert orders(depts, "T1") == [("T1.1", "sanitation", "lead", "withdrawn"),
                                   ("T1.2", "street_office", "lead", "issued")]


def test_re_dispatching_an_escalated_ticket_routes_it_by_its_new_level(engine, depts, centre,
                                                                       clock):
    report(engine, "T1", "road_damage")
    depts.dispatch("T1", actor=centre)
    engine.escalate("T1", actor=centre, reason="getting worse")
    engine.escalate("T1", actor=centre, reason="much worse")
    assert engine.get("T1").level == "district"
    issued = depts.dispatch("T1", actor=centre, reason="district plan")
    assert [(o.id, o.department, o.role) for o in issued] == [
        ("T1.3", "roads", "lead"), ("T1.4", "traffic_police", "co"), ("T1.5", "water", "co")]
    assert [o.state for o in depts.work_orders("T1")[:2]] == ["withdrawn", "withdrawn"]


def test_closing_a_ticket_withdraws_its_work_orders_still_open(engine, depts, centre):
    report(engine, "T1", "road_damage")
    depts.dispatch("T1", actor=centre)
    finish(engine, "T1.1", ROADS)                       # rule 'lead': resolved
    engine.fire("T1", "close", actor=centre)
    assert orders(depts, "T1") == [("T1.1", "roads", "lead", "done"),
                                   ("T1.2", "traffic_police", "co", "withdrawn")]
    assert engine.timers("T1.2", status="pending") == []


def test_only_the_centre_decides_on_departments(engine, depts, centre):
    from engine import RoleNotAllowed

    report(engine, "T1", "blocked_drain")
    depts.dispatch("T1", actor=centre)
    with pytest.raises(RoleNotAllowed) as info:
        depts.designate_lead("T1", "roads", actor=WATER, reason="we'd rather not")
    assert (info.value.trigger, info.value.role, info.value.allowed_roles) == (
        "designate", "department", ("centre",))
    with pytest.raises(RoleNotAllowed):
        depts.approve_bounce("T1.1", actor=WATER, reason="approving ourselves")
    with pytest.raises(RoleNotAllowed):
        depts.joint_meeting("T1", actor=WATER, present=["water"], lead="sanitation")
    assert [a["kind"] for a in depts.actions("T1")] == ["dispatch"]
