"""Who may change what (issue 11): field permissions, handler-only ladder levels, and reads
that tell the truth (the triggers an actor may fire now, the fields it may set).

On today's main a department's `arrive` could move its own resolution deadline to 2099 or
send its ticket to another department; a grid worker could set the routing and deadline
fields over HTTP and Open311; the ladder's handler was stored but never asked; the ticket
view listed the newest version's triggers and triggers whose guards refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from evidence_files import photo
from helpers import START, at
from servers import running

from adapters.http import ApiKey, create_app
from engine import (
    SYSTEM,
    Actor,
    DefinitionError,
    Engine,
    FieldNotAllowed,
    NotTheHandler,
    Registry,
    VirtualClock,
    parse_definition,
)

LC = "grid_incident"
HERE = Path(__file__).parent
HANDLER_ONLY = HERE / "definitions" / "handler_only.yaml"
CENTRE, DEPT, GW = Actor("ops-1", "centre"), Actor("water-3", "department"), Actor(
    "gw-017", "grid_worker")
TARGET = at(18)  # START is 2024-05-01 08:00 UTC
FAR = datetime(2099, 1, 1, tzinfo=UTC)


def _dispatched(engine: Engine, tid: str = "T1") -> None:
    engine.report(LC, {"category": "blocked_drain", "target_at": TARGET}, actor=CENTRE,
                  ticket_id=tid)
    engine.fire(tid, "dispatch", actor=CENTRE, fields={"department": "water"})


def _resolution_due(engine: Engine, tid: str) -> list[datetime]:
    return [t.due_at for t in engine.timers(tid, status="pending") if t.name == "resolution"]


# -- fields: the deadline's field and the routing field are the centre's -----------------------


def test_a_department_cannot_move_its_deadline_on_arrive(engine, snapshot) -> None:
    _dispatched(engine)
    before = snapshot(engine, "T1")
    with pytest.raises(FieldNotAllowed) as refused:
        engine.fire("T1", "arrive", actor=DEPT, fields={"target_at": FAR})
    err = refused.value
    assert (err.ticket_id, err.trigger, err.role, err.fields) == (
        "T1", "arrive", "department", ["target_at"])
    assert err.allowed_roles == {"target_at": ["centre", "system"]}
    assert "ask the centre" in str(err) and "extension request" in str(err)
    assert snapshot(engine, "T1") == before  # ticket, history and timers as they were
    assert _resolution_due(engine, "T1") == [TARGET]
    # without the field the same command goes through
    assert engine.fire("T1", "arrive", actor=DEPT).state == "on_site"
    assert engine.get("T1").fields["target_at"] == TARGET


def test_a_department_cannot_send_its_ticket_to_another_department(engine, snapshot) -> None:
    _dispatched(engine)
    before = snapshot(engine, "T1")
    with pytest.raises(FieldNotAllowed) as refused:
        engine.fire("T1", "arrive", actor=DEPT, fields={"department": "roads", "queue": "q2"})
    assert (refused.value.fields, refused.value.allowed_roles) == (
        ["department"], {"department": ["centre", "system"]})
    assert snapshot(engine, "T1") == before
    # clearing it is setting it too
    with pytest.raises(FieldNotAllowed):
        engine.fire("T1", "arrive", actor=DEPT, fields={"department": None})
    # repeating the value it holds sets nothing: allowed
    t = engine.fire("T1", "arrive", actor=DEPT, fields={"department": "water", "queue": "q2"})
    assert (t.state, t.fields["department"], t.fields["queue"]) == ("on_site", "water", "q2")


def test_a_department_cannot_reclassify_or_move_the_problem(engine, snapshot) -> None:
    # its work is assessed by category and area: only the reporter and the centre set them
    _dispatched(engine)
    before = snapshot(engine, "T1")
    for fields in ({"category": "graffiti"}, {"area": "grid-9"}, {"description": "fine"},
                   {"lat": 1.5}):
        with pytest.raises(FieldNotAllowed) as refused:
            engine.fire("T1", "arrive", actor=DEPT, fields=fields)
        assert refused.value.fields == list(fields)
        assert refused.value.allowed_roles == {next(iter(fields)): [
            "centre", "grid_worker", "system"]}
    assert snapshot(engine, "T1") == before
    # the grid worker adds to the description when the department asks for more
    engine.fire("T1", "arrive", actor=DEPT)
    engine.fire("T1", "ask_reporter", actor=DEPT, reason="which manhole?")
    t = engine.fire("T1", "answer", actor=GW, fields={"description": "the one by gate 3"})
    assert t.fields["description"] == "the one by gate 3"
    # the centre corrects the category when it dispatches
    engine.report(LC, {"category": "blocked_drain"}, actor=CENTRE, ticket_id="T2")
    t = engine.fire("T2", "dispatch", actor=CENTRE,
                    fields={"department": "water", "category": "sewage_overflow"})
    assert t.fields["category"] == "sewage_overflow"


def test_the_centre_may_still_set_them(engine) -> None:
    _dispatched(engine)
    later = at(20)
    t = engine.fire("T1", "escalate", actor=CENTRE, reason="needs the street office",
                    fields={"target_at": later, "department": "roads"})
    assert (t.fields["target_at"], t.fields["department"]) == (later, "roads")
    assert _resolution_due(engine, "T1") == [later]


def test_a_grid_worker_report_may_not_carry_routing_deadline_or_channel(engine) -> None:
    for fields, refused in [({"department": "water"}, ["department"]),
                            ({"target_at": START}, ["target_at"]),
                            ({"channel": "hotline", "area": "g01"}, ["channel"]),
                            ({"city_verdict": "ONTIME", "department": "x"},
                             ["city_verdict", "department"])]:
        with pytest.raises(FieldNotAllowed) as exc:
            engine.report(LC, {"category": "garbage", **fields}, actor=GW, ticket_id="G1")
        assert (exc.value.ticket_id, exc.value.trigger, exc.value.fields) == (
            "G1", "report", refused)
    assert engine.timers() == []  # nothing was created (no ticket, no timer)


def test_channel_is_set_with_the_report_only(engine) -> None:
    engine.report(LC, {"category": "garbage", "channel": "hotline"}, actor=CENTRE,
                  ticket_id="C1")
    with pytest.raises(FieldNotAllowed) as exc:
        engine.fire("C1", "dispatch", actor=CENTRE, fields={"channel": "app"})
    assert exc.value.allowed_triggers == {"channel": ["report"]}
    assert "with report only" in str(exc.value)
    assert engine.get("C1").fields["channel"] == "hotline"


def test_the_system_may_set_any_field(engine) -> None:
    engine.report(LC, {"category": "garbage", "channel": "patrol"}, actor=SYSTEM,
                  ticket_id="S1")
    t = engine.fire("S1", "escalate", actor=SYSTEM, reason="test",
                    fields={"channel": "x", "target_at": TARGET})
    assert (t.fields["channel"], t.fields["target_at"]) == ("x", TARGET)


def test_a_refused_command_in_a_batch_is_dropped_alone(engine) -> None:
    with engine.batch():
        engine.report(LC, {"category": "a"}, actor=CENTRE, ticket_id="B1")
        with pytest.raises(FieldNotAllowed) as exc:
            engine.report(LC, {"category": "b", "target_at": FAR}, actor=GW, ticket_id="B2")
        assert exc.value.fields == ["target_at"]  # before the photo rule is even asked
        engine.report(LC, {"category": "c"}, actor=CENTRE, ticket_id="B3")
    assert sorted({t.ticket_id for t in engine.timers()}) == ["B1", "B3"]


# -- the YAML: field_permissions, centre_roles, handler_only ---------------------------------


def _handler_only_engine(path: Path, clock: VirtualClock, done: dict[str, bool]) -> Engine:
    registry = Registry()
    registry.guard("work_done")(lambda ctx: done["yes"])
    engine = Engine(path, clock=clock, registry=registry)
    engine.deploy(HANDLER_ONLY)
    return engine


@pytest.fixture
def ho(tmp_path: Path, clock: VirtualClock) -> Iterator[tuple[Engine, dict[str, bool]]]:
    done = {"yes": True}
    engine = _handler_only_engine(tmp_path / "ho.sqlite", clock, done)
    yield engine, done
    engine.stop()


H_CENTRE, H_DISPATCHER = Actor("c", "centre"), Actor("d", "dispatcher")
H_DEPT, H_STREET, H_DISTRICT = (Actor("w", "department"), Actor("s", "street_office"),
                                Actor("x", "district_office"))


def test_declared_permissions_roles_and_triggers(ho) -> None:
    engine, _ = ho
    engine.report("handler_only", {"category": "a"}, actor=Actor("r", "reporter"),
                  ticket_id="P1")
    # priority: the dispatcher's alone (not even the other centre role's)
    with pytest.raises(FieldNotAllowed) as exc:
        engine.fire("P1", "dispatch", actor=H_CENTRE, fields={"priority": 1})
    assert exc.value.allowed_roles == {"priority": ["dispatcher", "system"]}
    engine.fire("P1", "dispatch", actor=H_DISPATCHER, fields={"priority": 1, "department": "w"})
    # note: with resolve only, by whoever may resolve
    with pytest.raises(FieldNotAllowed) as exc:
        engine.fire("P1", "arrive", actor=H_DEPT, fields={"note": "on my way"})
    assert (exc.value.allowed_roles, exc.value.allowed_triggers) == (
        {"note": []}, {"note": ["resolve"]})
    assert engine.fire("P1", "arrive", actor=H_DEPT, fields={"done": True}).state == "on_site"
    # the deadline field defaults to both centre roles
    with pytest.raises(FieldNotAllowed):
        engine.fire("P1", "resolve", actor=H_DEPT, fields={"target_at": FAR})
    t = engine.fire("P1", "resolve", actor=H_DEPT, fields={"note": "fixed"})
    assert (t.state, t.fields["note"]) == ("resolved", "fixed")
    assert engine.settable_fields("P1", "resolve", H_DEPT) == []  # final: no resolve any more


def test_settable_fields(ho, engine) -> None:
    h, _ = ho
    h.report("handler_only", {"category": "a"}, actor=H_CENTRE, ticket_id="P1")
    assert h.settable_fields("P1", "dispatch", H_DISPATCHER) == [
        "category", "department", "done", "priority", "target_at"]
    assert h.settable_fields("P1", "dispatch", H_CENTRE) == [
        "category", "department", "done", "target_at"]
    assert h.settable_fields("P1", "dispatch", H_DEPT) == []  # may not dispatch at all
    _dispatched(engine)
    # what and where the problem is are the reporter's and the centre's: the department
    # sets only its work queue
    assert engine.settable_fields("T1", "arrive", DEPT) == ["queue"]
    # the resident's rating and the hand-off field are not the department's (audit1112)
    assert "outside_org" not in engine.settable_fields("T1", "escalate", CENTRE)
    assert "target_at" in engine.settable_fields("T1", "escalate", CENTRE)
    assert "channel" not in engine.settable_fields("T1", "escalate", CENTRE)


def _escalated_to(engine: Engine, tid: str, level: str) -> None:
    engine.report("handler_only", {"category": "a"}, actor=H_CENTRE, ticket_id=tid)
    engine.fire(tid, "dispatch", actor=H_CENTRE, fields={"department": "w"})
    engine.fire(tid, "escalate", actor=SYSTEM)
    if level == "district":
        engine.fire(tid, "escalate", actor=SYSTEM)
    assert engine.get(tid).level == level


def test_handler_only_level_keeps_the_ticket_to_its_handler(ho, snapshot) -> None:
    engine, _ = ho
    _escalated_to(engine, "E1", "street")
    before = snapshot(engine, "E1")
    for actor, trigger in [(H_DEPT, "arrive"), (H_DEPT, "resolve"),
                           (H_DISTRICT, "acknowledge")]:
        with pytest.raises(NotTheHandler) as exc:
            engine.fire("E1", trigger, actor=actor)
        err = exc.value
        assert (err.ticket_id, err.trigger, err.role, err.level, err.handler,
                err.allowed_roles) == ("E1", trigger, actor.role, "street", "street_office",
                                       ("centre", "dispatcher", "street_office", "system"))
    assert snapshot(engine, "E1") == before
    assert engine.available_triggers("E1", H_DEPT) == []
    assert engine.available_triggers("E1", H_STREET) == ["acknowledge", "resolve"]
    assert engine.available_triggers("E1", H_CENTRE) == ["dispatch", "escalate"]
    assert engine.settable_fields("E1", "arrive", H_DEPT) == []
    # the handler, the centre roles and the system act
    engine.fire("E1", "acknowledge", actor=H_STREET)
    engine.fire("E1", "dispatch", actor=H_DISPATCHER)
    assert engine.get("E1").state == "dispatched"
    with pytest.raises(NotTheHandler):  # still at the street level
        engine.fire("E1", "arrive", actor=H_DEPT)


def test_a_level_that_is_not_handler_only_lets_the_department_work(ho) -> None:
    engine, _ = ho
    _escalated_to(engine, "E2", "district")
    assert engine.available_triggers("E2", H_DEPT) == ["arrive", "resolve"]
    assert engine.fire("E2", "arrive", actor=H_DEPT).state == "on_site"
    assert engine.fire("E2", "resolve", actor=H_DEPT).state == "resolved"


def test_grid_incident_says_handler_only_false_and_departments_act_when_escalated(
        engine, grid_incident_text: str) -> None:
    assert grid_incident_text.count("handler_only: false") == 4
    assert not any(level.handler_only for level in engine.lifecycle(LC).spec.levels)
    _dispatched(engine)
    engine.fire("T1", "escalate", actor=CENTRE, reason="slow")
    assert engine.get("T1").level == "street"
    assert engine.fire("T1", "arrive", actor=DEPT).state == "on_site"
    assert engine.fire("T1", "resolve", actor=DEPT).state == "resolved"


def test_a_deadline_breach_escalates_as_the_system_on_a_handler_only_level(ho, clock) -> None:
    engine, _ = ho
    engine.report("handler_only", {"category": "a", "target_at": at(9)}, actor=H_CENTRE,
                  ticket_id="D1")
    engine.fire("D1", "dispatch", actor=H_CENTRE, fields={"department": "w"})
    clock.set(at(8, 30))
    engine.fire("D1", "escalate", actor=SYSTEM)  # street: handler-only
    fired = engine.run_until(at(9, 1))
    assert [(f.timer.name, f.outcome) for f in fired] == [("resolution", "escalated")]
    assert (engine.get("D1").level, engine.get("D1").state) == ("district", "escalated")


def test_definition_problems_name_file_and_line(tmp_path: Path) -> None:
    text = HANDLER_ONLY.read_text(encoding="utf-8")
    text = text.replace("centre_roles: [centre, dispatcher]", "centre_roles: [centre, boss]")
    text = text.replace("  note: {triggers: [resolve]}",
                        "  note: {triggers: [resolve, fix]}\n  nothing: {roles: [centre]}")
    text = text.replace("  priority: {roles: [dispatcher]}", "  priority: {roles: [mayor]}")
    text = text.replace("  - {name: community, handler: centre}",
                        "  - {name: community, handler_only: true}")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()

    def line(fragment: str) -> int:
        return next(i for i, x in enumerate(lines, start=1) if fragment in x)

    with pytest.raises(DefinitionError) as exc:
        parse_definition(text, str(path))
    got = sorted((p.line, p.path, p.message.split(";")[0]) for p in exc.value.problems)
    assert got == sorted([
        (line("centre_roles:"), "centre_roles[1]", "unknown role 'boss'"),
        (line("note: {triggers"), "field_permissions.note.triggers[1]",
         "unknown trigger 'fix'"),
        (line("nothing:"), "field_permissions.nothing", "unknown field 'nothing'"),
        (line("priority: {roles"), "field_permissions.priority.roles[0]",
         "unknown role 'mayor'"),
        (line("name: community"), "levels[0].handler_only",
         "level 'community' is handler_only but names no handler"),
    ])
    assert str(exc.value.problems[0]).startswith(f"{path}:")


# -- reads: the triggers an actor may fire now ----------------------------------------------


def test_guard_refused_triggers_are_not_listed(ho) -> None:
    engine, done = ho
    engine.report("handler_only", {"category": "a"}, actor=H_CENTRE, ticket_id="G1")
    engine.fire("G1", "dispatch", actor=H_CENTRE, fields={"department": "w"})
    engine.fire("G1", "arrive", actor=H_DEPT)
    done["yes"] = False
    assert engine.available_triggers("G1", H_DEPT) == []
    assert engine.available_triggers("G1", H_CENTRE) == ["escalate"]
    assert engine.history("G1")[-1].trigger == "arrive"  # reading fired nothing
    done["yes"] = True
    assert engine.available_triggers("G1", H_DEPT) == ["resolve"]


def test_no_escalation_is_offered_at_the_top_level(ho) -> None:
    engine, _ = ho
    _escalated_to(engine, "E3", "district")
    assert "escalate" not in engine.available_triggers("E3", H_CENTRE)
    assert engine.available_triggers("E3", H_CENTRE) == ["dispatch"]


# -- HTTP and Open311 -------------------------------------------------------------------------

KEYS = {
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-centre": ApiKey(actor="ops-1", role="centre"),
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
}


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine, VirtualClock]]:
    clock = VirtualClock(START)
    engine = Engine(tmp_path / "api.sqlite", clock=clock, evidence_store=str(tmp_path / "ev"))
    app = create_app(engine, api_keys=KEYS, console=False)
    with running(app) as url, httpx.Client(base_url=url) as client:
        yield client, engine, clock
    engine.stop()


def _problem(r: httpx.Response, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == f"urn:gridwhistle:problem:{slug}"
    return body


def test_a_grid_worker_over_http_may_not_set_routing_channel_or_target(api, tmp_path) -> None:
    client, engine, _ = api
    for fields in ({"department": "water"}, {"channel": "hotline"},
                   {"target_at": "2024-05-01T07:00:00+00:00"}):
        r = client.post("/tickets", headers=h("k-gw"), json={
            "ticket_id": "H1", "fields": {"category": "garbage", **fields}})
        body = _problem(r, 403, "field-not-allowed")
        assert (body["title"], body["fields"], body["role"], body["trigger"]) == (
            "FieldNotAllowed", list(fields), "grid_worker", "report")
    assert client.get("/tickets/H1", headers=h("k-centre")).status_code == 404
    assert engine.timers() == []  # the past target did not breach: nothing was created

    # on a transition too: the grid worker answers the department's question
    _dispatched(engine, "H2")
    engine.fire("H2", "arrive", actor=DEPT)
    engine.fire("H2", "ask_reporter", actor=DEPT, reason="which drain?")
    before = engine.history("H2")
    for fields in ({"department": "roads"}, {"channel": "x"},
                   {"target_at": "2024-05-01T07:00:00+00:00"}):
        r = client.post("/tickets/H2/triggers/answer", headers=h("k-gw"),
                        json={"fields": fields})
        assert _problem(r, 403, "field-not-allowed")["fields"] == list(fields)
    assert engine.history("H2") == before
    r = client.post("/tickets/H2/triggers/answer", headers=h("k-gw"),
                    json={"fields": {"description": "the one by the bus stop"}})
    assert r.status_code == 200, r.text

    # the department's own key: arrive moving the target or the department is a 403
    _dispatched(engine, "H3")
    for fields in ({"target_at": "2099-01-01T00:00:00+00:00"}, {"department": "roads"}):
        r = client.post("/tickets/H3/triggers/arrive", headers=h("k-water"),
                        json={"fields": fields})
        assert _problem(r, 403, "field-not-allowed")["allowed_roles"] == {
            next(iter(fields)): ["centre", "system"]}
    assert client.get("/tickets/H3", headers=h("k-water")).status_code == 200  # still ours


def test_the_centre_sets_them_over_http(api) -> None:
    client, _, _ = api
    r = client.post("/tickets", headers=h("k-centre"), json={
        "ticket_id": "C1", "fields": {"category": "garbage", "channel": "hotline",
                                      "target_at": "2024-05-02T08:00:00+00:00"}})
    assert r.status_code == 201, r.text
    r = client.post("/tickets/C1/triggers/dispatch", headers=h("k-centre"),
                    json={"fields": {"department": "water"}})
    assert (r.status_code, r.json()["fields"]["department"]) == (200, "water")


def test_the_ticket_view_lists_the_callers_triggers_of_the_tickets_own_version(
        api, grid_incident_text: str) -> None:
    client, engine, _ = api
    _dispatched(engine, "V1")
    view = client.get("/tickets/V1", headers=h("k-centre")).json()
    assert view["triggers"] == ["escalate", "merge", "void"]
    assert view["state_triggers"] == ["arrive", "escalate", "merge", "void"]
    assert client.get("/tickets/V1", headers=h("k-water")).json()["triggers"] == ["arrive"]
    # version 2: a department may also `start_work` from dispatched (work orders still
    # resolve a dispatched ticket through `arrive`, which the routing check asks for)
    v2 = grid_incident_text.replace(
        "  - trigger: arrive\n    title: {zh: 到场, en: Arrive on site}\n",
        "  - trigger: start_work\n    title: {zh: 开工, en: Start work}\n"
        "    source: [dispatched]\n    dest: on_site\n    roles: [department]\n"
        "  - trigger: arrive\n    title: {zh: 到场, en: Arrive on site}\n", 1)
    assert engine.deploy(parse_definition(v2)).version == 2
    _dispatched(engine, "V2")
    assert (engine.get("V1").version, engine.get("V2").version) == (1, 2)
    view1 = client.get("/tickets/V1", headers=h("k-water")).json()
    assert (view1["triggers"], view1["state_triggers"]) == (
        ["arrive"], ["arrive", "escalate", "merge", "void"])
    view2 = client.get("/tickets/V2", headers=h("k-water")).json()
    assert (view2["triggers"], view2["state_triggers"]) == (
        ["arrive", "start_work"], ["arrive", "escalate", "merge", "start_work", "void"])
    assert engine.available_triggers("V1", DEPT) == ["arrive"]


def test_open311_attributes_obey_field_permissions(api, tmp_path) -> None:
    client, engine, _ = api
    site = photo(tmp_path)
    form = {"api_key": "k-gw", "service_code": "garbage", "address_string": "x"}
    for attribute in ("attribute[department]", "attribute[channel]",
                      "attribute[target_at]"):
        with site.open("rb") as f:
            r = client.post("/open311/v2/requests.json",
                            data={**form, attribute: "2024-05-01T07:00:00+00:00"
                                  if "target" in attribute else "water"},
                            files={"media": ("site.png", f, "image/png")})
        assert r.status_code == 403, r.text
        [error] = r.json()
        assert error["code"] == 403 and "may not set field(s)" in error["description"]
    assert engine.timers() == []
    # without them the grid worker's report goes in; no channel recorded for its role
    with site.open("rb") as f:
        r = client.post("/open311/v2/requests.json", data={**form, "attribute[area]": "g01"},
                        files={"media": ("site.png", f, "image/png")})
    assert r.status_code == 200, r.text
    ticket = engine.get(r.json()[0]["service_request_id"])
    assert ticket.fields == {"category": "garbage", "address": "x", "area": "g01"}
    # the centre's key may set the department; its reports record the channel
    r = client.post("/open311/v2/requests.json",
                    data={**form, "api_key": "k-centre", "attribute[department]": "water"})
    assert r.status_code == 200, r.text
    ticket = engine.get(r.json()[0]["service_request_id"])
    assert (ticket.fields["department"], ticket.fields["channel"]) == ("water", "open311")
