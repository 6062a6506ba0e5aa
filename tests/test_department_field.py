"""The department field takes only departments the lifecycle declares (when it declares any).

Found by a tester: grid_incident declares its departments, yet ``fire(T, "dispatch",
fields={"department": "watr"})`` and a report with ``department: 水务局`` went in; no
department key could then see the ticket, while issuing a work order to "watr" was refused.
The rule is the engine's, so every way in gets it: Python, HTTP (422), Open311 (400).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import served_client

from adapters.http import ApiKey, create_app
from engine import (
    Actor,
    Engine,
    TicketNotFound,
    UnknownDepartment,
    VirtualClock,
    find_tickets,
    parse_definition,
)

CENTRE = Actor("ops-1", "centre")
DEPT = Actor("water-3", "department")
LC = "grid_incident"


def _unchanged(engine: Engine, tid: str) -> tuple[object, ...]:
    t = engine.get(tid)
    return (t.state, t.fields, t.row_version, len(engine.history(tid)),
            [(x.name, x.status) for x in engine.timers(tid)])


def test_a_transition_setting_an_undeclared_department_is_refused(engine) -> None:
    engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="T")
    before = _unchanged(engine, "T")
    with pytest.raises(UnknownDepartment) as err:
        engine.fire("T", "dispatch", actor=CENTRE, fields={"department": "watr"})
    assert (err.value.ticket_id, err.value.department) == ("T", "watr")
    assert "water" in err.value.known and "name one of them" in str(err.value)
    assert _unchanged(engine, "T") == before   # nothing changed
    t = engine.fire("T", "dispatch", actor=CENTRE, fields={"department": "water"})
    assert t.fields["department"] == "water"
    # moving it to another undeclared department later is refused too
    before = _unchanged(engine, "T")
    with pytest.raises(UnknownDepartment):
        engine.fire("T", "escalate", actor=CENTRE, reason="late",
                    fields={"department": "fire_brigade"})
    assert _unchanged(engine, "T") == before
    assert engine.check_invariants() == []


def test_only_lifecycles_declaring_departments_refuse_other_names(
        engine, grid_incident_text) -> None:
    with pytest.raises(UnknownDepartment):
        engine.report(LC, {"category": "noise", "department": "watr"}, actor=CENTRE)
    free = grid_incident_text.replace("name: grid_incident", "name: free_depts", 1)
    # drop the departments and the routing table: any department name is meaningful then
    start = free.index("\ndepartments:\n")
    end = free.index("\n# ----", free.index("\nrouting:\n"))
    free = free[:start] + free[end:]
    engine.deploy(parse_definition(free))
    engine.report("free_depts", {"category": "noise", "department": "水务局"}, actor=CENTRE,
                  ticket_id="F")
    assert engine.fire("F", "dispatch", actor=CENTRE, fields={"department": "watr"}
                       ).fields["department"] == "watr"

    choices = grid_incident_text.replace("name: grid_incident", "name: chosen", 1).replace(
        "  department: {type: string, title: {zh: 承办部门, en: Handling department}}",
        "  department: {type: string, choices: [water, city_water],\n"
        "               title: {zh: 承办部门, en: Handling department}}", 1)
    engine.deploy(parse_definition(choices))
    engine.report("chosen", {"category": "noise"}, actor=CENTRE, ticket_id="C")
    # a field with choices: its choices decide (city_water is one, though not declared)
    assert engine.fire("C", "dispatch", actor=CENTRE, fields={"department": "city_water"}
                       ).fields["department"] == "city_water"


def test_a_report_naming_an_undeclared_department_is_refused(engine) -> None:
    with pytest.raises(UnknownDepartment) as err:
        engine.report(LC, {"category": "noise", "department": "水务局"}, actor=CENTRE,
                      ticket_id="R")
    assert err.value.department == "水务局"
    with pytest.raises(TicketNotFound):  # nothing was created
        engine.get("R")
    assert engine.report(LC, {"category": "noise", "department": "water"}, actor=CENTRE,
                         ticket_id="R").fields["department"] == "water"


def test_a_ticket_keeping_an_imported_department_may_repeat_it(engine) -> None:
    """A replayed city's department is kept (foreign_departments); echoing it sets nothing."""
    engine.report(LC, {"category": "noise", "department": "PWDx"}, actor=CENTRE,
                  ticket_id="B", foreign_departments=True)
    t = engine.fire("B", "dispatch", actor=CENTRE, fields={"department": "PWDx"})
    assert (t.state, t.fields["department"]) == ("dispatched", "PWDx")
    with pytest.raises(UnknownDepartment):
        engine.fire("B", "escalate", actor=CENTRE, reason="late",
                    fields={"department": "BTDT"})


KEYS = {"k-centre": ApiKey(actor="ops-1", role="centre"),
        "k-water": ApiKey(actor="water-3", role="department", department="water")}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    eng = Engine(tmp_path / "api.sqlite", clock=VirtualClock(START))
    with served_client(create_app(eng, api_keys=KEYS), eng) as served:
        yield served


def test_over_http_and_open311_an_undeclared_department_is_refused(api) -> None:
    client, engine = api
    centre = {"X-API-Key": "k-centre"}
    r = client.post("/tickets", json={"fields": {"category": "noise", "department": "水务局"},
                                      "ticket_id": "H-1"}, headers=centre)
    assert (r.status_code, r.json()["title"]) == (422, "UnknownDepartment"), r.text
    assert r.json()["department"] == "水务局" and "water" in r.json()["known"]
    assert client.get("/tickets/H-1", headers=centre).status_code == 404

    r = client.post("/tickets", json={"fields": {"category": "noise"}, "ticket_id": "H-2"},
                    headers=centre)
    assert r.status_code == 201, r.text
    r = client.post("/tickets/H-2/triggers/dispatch", json={"fields": {"department": "watr"}},
                    headers=centre)
    assert (r.status_code, r.json()["title"]) == (422, "UnknownDepartment"), r.text
    assert engine.get("H-2").state == "reported"
    r = client.post("/tickets/H-2/triggers/dispatch", json={"fields": {"department": "water"}},
                    headers=centre)
    assert r.status_code == 200, r.text
    # the water department's key sees it: what a misspelt department would have hidden
    listed = client.get("/tickets", headers={"X-API-Key": "k-water"}).json()
    assert [t["id"] for t in listed["items"]] == ["H-2"]

    r = client.post("/open311/v2/requests.json", data={
        "api_key": "k-centre", "service_code": "noise", "address_string": "x",
        "attribute[department]": "watr"})
    assert r.status_code == 400, r.text
    [error] = r.json()
    assert "unknown department 'watr'" in error["description"]
    assert [t.id for t in find_tickets(engine).items] == ["H-2"]
