"""Only its work orders resolve a routed ticket: a department may not skip the rule.

Found by a tester: grid_incident, T-2 (blocked_drain) dispatched by the routing table to
water (lead) and sanitation (co); the water department then fired ``arrive`` and ``resolve``
on T-2 itself. T-2 became resolved while both work orders were still issued, ``close``
withdrew them, and ``gridwhistle check`` said ok. Now ``resolve`` is refused
(:class:`WorkOrdersOpen`, in the work-order participant's check) while open work orders do
not meet the ticket's resolution rule, and ``check`` flags a store where it happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from backends import BACKENDS, store_url
from helpers import START
from servers import served_client
from typer.testing import CliRunner

import engine.workorders.participant as work_order_participant
from adapters.cli import app
from adapters.http import ApiKey, create_app
from engine import Actor, Departments, Engine, VirtualClock, WorkOrdersOpen

CENTRE = Actor("ops-1", "centre")
WATER = Actor("water", "department")
SAN = Actor("sanitation", "department")
LC = "grid_incident"


def _dispatched(engine: Engine, tid: str = "T-2", category: str = "blocked_drain") -> list:
    engine.report(LC, {"category": category}, actor=CENTRE, ticket_id=tid)
    return Departments(engine).dispatch(tid, actor=CENTRE)


def _snapshot(engine: Engine, *ids: str) -> list[tuple[object, ...]]:
    return [(t.state, t.level, t.fields, t.row_version, len(engine.history(i)),
             sorted((x.name, x.status) for x in engine.timers(i)))
            for i in ids for t in [engine.get(i)]]


def test_a_department_cannot_resolve_a_routed_ticket_before_its_work_orders(engine) -> None:
    lead, co = _dispatched(engine)
    assert (lead.id, lead.department, co.id, co.department) == (
        "T-2.1", "water", "T-2.2", "sanitation")
    # arriving on the ticket itself stays possible (and the follow-on's arrive is unchanged)
    assert engine.fire("T-2", "arrive", actor=WATER).state == "on_site"
    before = _snapshot(engine, "T-2", "T-2.1", "T-2.2")
    with pytest.raises(WorkOrdersOpen) as err:
        engine.fire("T-2", "resolve", actor=WATER)
    e = err.value
    assert (e.ticket_id, e.trigger, e.rule, e.quorum) == ("T-2", "resolve", "all", None)
    assert e.work_orders == {"T-2.1": "water, issued", "T-2.2": "sanitation, issued"}
    assert "T-2.1 (water, issued), T-2.2 (sanitation, issued) are still open" in str(e)
    assert "withdraw" in str(e)
    assert _snapshot(engine, "T-2", "T-2.1", "T-2.2") == before   # nothing changed

    # the work orders resolve it: the follow-on itself is not refused
    for wid, actor in (("T-2.1", WATER), ("T-2.2", SAN)):
        engine.fire(wid, "accept", actor=actor)
        engine.fire(wid, "finish", actor=actor)
        if wid == "T-2.1":
            with pytest.raises(WorkOrdersOpen, match=r"T-2\.2 \(sanitation, issued\) are"):
                engine.fire("T-2", "resolve", actor=WATER)
    t = engine.get("T-2")
    assert t.state == "resolved"
    last = engine.history("T-2")[-1]
    assert (last.trigger, last.actor) == ("resolve", "sanitation")
    assert "resolution rule 'all' met" in (last.reason or "")
    assert engine.check_invariants() == []


def test_the_centre_may_still_withdraw_void_or_redispatch(engine) -> None:
    depts = Departments(engine)
    lead, co = _dispatched(engine)
    engine.fire("T-2", "arrive", actor=WATER)
    engine.fire(lead.id, "accept", actor=WATER)
    engine.fire(lead.id, "finish", actor=WATER)   # rule all: sanitation is still open
    assert engine.get("T-2").state == "on_site"
    with pytest.raises(WorkOrdersOpen, match=r"T-2\.2 \(sanitation, issued\) are"):
        engine.fire("T-2", "resolve", actor=WATER)
    engine.fire(co.id, "withdraw", actor=CENTRE, reason="not needed after all")
    # nothing open any more: the ticket may be resolved by hand
    assert engine.fire("T-2", "resolve", actor=WATER).state == "resolved"

    _dispatched(engine, "T-3")   # voiding a ticket with open work orders withdraws them
    assert engine.fire("T-3", "void", actor=CENTRE, reason="a test call").state == "voided"
    assert {o.state for o in depts.work_orders("T-3")} == {"withdrawn"}

    _dispatched(engine, "T-4")   # a joint meeting: water alone; sanitation's is withdrawn
    depts.joint_meeting("T-4", actor=CENTRE, present=["water", "sanitation"], lead="water",
                        reason="sanitation is not needed")
    assert [o.state for o in depts.work_orders("T-4")] == ["issued", "withdrawn"]
    engine.fire("T-4.1", "accept", actor=WATER)
    engine.fire("T-4.1", "finish", actor=WATER)
    assert engine.get("T-4").state == "resolved"   # the follow-on arrives first, as before
    assert [(h.trigger, h.actor) for h in engine.history("T-4")][-3:] == [
        ("dispatch", "ops-1"), ("arrive", "water"), ("resolve", "water")]
    assert engine.check_invariants() == []


def test_a_met_rule_whose_resolution_was_refused_may_be_resolved_by_hand(engine) -> None:
    """road_damage at community: rule `lead`. If the follow-on could not resolve it (here:
    the ticket waits for the reporter), a later `resolve` is allowed: the rule is met."""
    lead, co = _dispatched(engine, "R-1", "road_damage")
    engine.fire("R-1", "arrive", actor=Actor("roads", "department"))
    with pytest.raises(WorkOrdersOpen) as err:   # the lead's is not done yet
        engine.fire("R-1", "resolve", actor=Actor("roads", "department"))
    assert (err.value.rule, list(err.value.work_orders)) == ("lead", [lead.id, co.id])
    engine.fire("R-1", "ask_reporter", actor=Actor("roads", "department"), reason="where?")
    engine.fire(lead.id, "accept", actor=Actor("roads", "department"))
    engine.fire(lead.id, "finish", actor=Actor("roads", "department"))
    assert engine.get("R-1").state == "waiting_reporter"
    assert engine.history("R-1")[-1].kind == "follow_on_refused"
    engine.fire("R-1", "answer", actor=CENTRE)
    assert engine.get(co.id).state == "issued"   # the co-handling one is still open
    assert engine.fire("R-1", "resolve", actor=Actor("roads", "department")).state == (
        "resolved")
    assert engine.check_invariants() == []


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store: a SQLite file, then a PostgreSQL schema."""
    with store_url(request.param, tmp_path) as url:
        yield url


def test_check_flags_a_ticket_resolved_against_its_rule(store, monkeypatch) -> None:
    """A store written before the refusal existed (the tester's T-2): check says so."""
    engine = Engine(store, clock=VirtualClock(START))
    _dispatched(engine)
    _dispatched(engine, "OK")
    for wid, actor in (("OK.1", WATER), ("OK.2", SAN)):
        engine.fire(wid, "accept", actor=actor)
        engine.fire(wid, "finish", actor=actor)
    with monkeypatch.context() as m:   # as the engine did before: no refusal
        m.setattr(work_order_participant, "_check_resolution", lambda ctx, change: None)
        engine.fire("T-2", "arrive", actor=WATER)
        engine.fire("T-2", "resolve", actor=WATER)
    engine.fire("T-2", "close", actor=CENTRE)   # close withdrew the work orders
    assert {o.state for o in Departments(engine).work_orders("T-2")} == {"withdrawn"}
    found = engine.check_invariants()
    assert [(v.ticket_id, v.rule) for v in found] == [("T-2", "resolution_rule")]
    assert "while its resolution rule 'all' was not met" in found[0].message
    assert "T-2.1 (water, issued), T-2.2 (sanitation, issued) were open" in found[0].message
    assert engine.check_invariants(["T-2"]) == found   # children read when not checked
    engine.stop()
    out = CliRunner().invoke(app, ["check", "--db", store])
    assert out.exit_code == 1, out.output
    assert "T-2: resolution_rule: resolved at" in out.output


KEYS = {"k-water": ApiKey(actor="water-3", role="department", department="water")}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    eng = Engine(tmp_path / "api.sqlite", clock=VirtualClock(START))
    with served_client(create_app(eng, api_keys=KEYS), eng) as served:
        yield served


def test_over_http_the_refusal_is_a_409_naming_the_open_work_orders(api) -> None:
    client, engine = api
    _dispatched(engine)
    water = {"X-API-Key": "k-water"}
    assert client.post("/tickets/T-2/triggers/arrive", json={}, headers=water
                       ).status_code == 200
    r = client.post("/tickets/T-2/triggers/resolve", json={}, headers=water)
    assert (r.status_code, r.json()["title"]) == (409, "WorkOrdersOpen"), r.text
    body = r.json()
    assert body["work_orders"] == {"T-2.1": "water, issued", "T-2.2": "sanitation, issued"}
    assert (body["rule"], body["trigger"]) == ("all", "resolve")
    assert engine.get("T-2").state == "on_site"


def test_the_console_says_which_work_orders_are_open(engine) -> None:
    from adapters.http.console.routes import refusal_words

    _dispatched(engine)
    engine.fire("T-2", "arrive", actor=WATER)
    with pytest.raises(WorkOrdersOpen) as err:
        engine.fire("T-2", "resolve", actor=WATER)
    lc, served = engine.lifecycle(LC), (LC,)
    assert refusal_words(err.value, engine, served, lc, "zh") == (
        "工单 T-2.1、T-2.2 尚未办结，还不能“处置完毕”；请各部门办结工单（办结后系统自动处置完毕），"
        "或由指挥中心撤回不再需要的工单。")
    assert refusal_words(err.value, engine, served, lc, "en").startswith(
        "Work orders T-2.1, T-2.2 are still open, so “Resolve” is not possible yet")
