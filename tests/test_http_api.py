"""The HTTP API under a real uvicorn server on loopback: the whole ticket path, roles,
department scope, RFC 9457 problems, listings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import running

from adapters.http import ApiKey, create_app, load_api_keys
from engine import Engine, VirtualClock

KEYS = {
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-hotline": ApiKey(actor="hotline-1", role="centre"),  # reports: the call centre
    "k-centre": ApiKey(actor="ops-1", role="centre"),
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-roads": ApiKey(actor="roads-1", role="department", department="roads"),
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "api.sqlite", clock=VirtualClock(START))
    with running(create_app(engine, api_keys=KEYS)) as url, httpx.Client(base_url=url) as c:
        yield c, engine
    engine.stop()


def as_(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def fire(client: httpx.Client, tid: str, trigger: str, key: str, **body) -> httpx.Response:
    return client.post(f"/tickets/{tid}/triggers/{trigger}", json=body, headers=as_(key))


def test_report_dispatch_arrive_resolve_close_over_http(api) -> None:
    client, _ = api
    r = client.post("/tickets", json={"fields": {"category": "blocked_drain"},
                                      "ticket_id": "T-1"}, headers=as_("k-hotline"))
    assert r.status_code == 201
    assert r.headers["location"] == "/tickets/T-1"
    assert (r.json()["state"], r.json()["level"], r.json()["final"]) == (
        "reported", "community", False)

    # Only the centre dispatches: the grid worker's role is refused by the lifecycle.
    r = fire(client, "T-1", "dispatch", "k-gw", fields={"department": "water"})
    assert r.status_code == 403
    assert r.json()["allowed_roles"] == ["centre"]
    r = fire(client, "T-1", "dispatch", "k-centre", fields={"department": "water"})
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["fields"]["department"]) == ("dispatched", "water")

    # A department key acts only on its own department's tickets.
    r = fire(client, "T-1", "arrive", "k-roads")
    assert r.status_code == 403
    assert r.json()["type"] == "urn:gridwhistle:problem:wrong-department"
    assert fire(client, "T-1", "arrive", "k-water").json()["state"] == "on_site"
    assert fire(client, "T-1", "resolve", "k-water").json()["state"] == "resolved"
    r = fire(client, "T-1", "close", "k-water")
    assert (r.status_code, r.json()["title"], r.json()["role"]) == (
        403, "RoleNotAllowed", "department")
    r = fire(client, "T-1", "close", "k-centre")
    assert (r.status_code, r.json()["state"], r.json()["final"]) == (200, "closed", True)

    detail = client.get("/tickets/T-1", headers=as_("k-water")).json()
    assert [(h["trigger"], h["actor"], h["role"]) for h in detail["history"]] == [
        ("report", "hotline-1", "centre"), ("dispatch", "ops-1", "centre"),
        ("arrive", "water-3", "department"), ("resolve", "water-3", "department"),
        ("close", "ops-1", "centre")]
    # deadline timers (SLA clock timers, named sla:..., are checked in test_sla_ladder)
    assert [(t["name"], t["status"]) for t in detail["timers"] if ":" not in t["name"]] == [
        ("dispatch_due", "cancelled"), ("arrival_due", "cancelled")]
    assert detail["triggers"] == []
    assert client.get("/tickets/T-1", headers=as_("k-roads")).status_code == 403


def test_a_refused_command_is_an_rfc9457_problem_with_the_errors_data(api) -> None:
    client, engine = api
    client.post("/tickets", json={"fields": {"category": "noise"}, "ticket_id": "T-2"},
                headers=as_("k-hotline"))
    r = fire(client, "T-2", "close", "k-centre")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "urn:gridwhistle:problem:trigger-not-allowed",
        "title": "TriggerNotAllowed",
        "status": 409,
        "detail": "ticket 'T-2' is in state 'reported', where trigger 'close' is not allowed; "
                  "allowed triggers there: dispatch, escalate, merge, void",
        "instance": "/tickets/T-2/triggers/close",
        "ticket_id": "T-2", "state": "reported", "trigger": "close",
        "allowed": ["dispatch", "escalate", "merge", "void"],
    }
    assert engine.get("T-2").row_version == 1  # nothing changed

    r = fire(client, "T-2", "escalate", "k-centre")
    assert (r.status_code, r.json()["errors"]) == (
        422, {"reason": "trigger 'escalate' requires a reason"})
    r = client.get("/tickets/nope", headers=as_("k-centre"))
    assert (r.status_code, r.json()["title"], r.json()["ticket_id"]) == (
        404, "TicketNotFound", "nope")
    r = client.get("/tickets/T-2")
    assert (r.status_code, r.headers["content-type"], r.json()["type"]) == (
        401, "application/problem+json", "urn:gridwhistle:problem:unauthorized")
    r = client.post("/tickets", json={"fields": {}}, headers=as_("k-hotline"))
    assert (r.status_code, r.json()["errors"]) == (422, {"category": "required when reporting"})
    r = client.post("/tickets", json={"fields": {"category": "x"}, "lifecycle": "/etc/passwd"},
                    headers=as_("k-centre"))
    assert (r.status_code, r.json()["known"]) == (404, ["grid_incident"])


def test_idempotency_key_header_is_accepted(api) -> None:
    client, _ = api
    client.post("/tickets", json={"fields": {"category": "noise"}, "ticket_id": "T-3"},
                headers=as_("k-hotline"))
    r = client.post("/tickets/T-3/triggers/dispatch", json={"fields": {"department": "water"}},
                    headers={**as_("k-centre"), "Idempotency-Key": "req-1"})
    assert r.json()["state"] == "dispatched"


def test_listing_filters_and_pages(api) -> None:
    client, engine = api
    for i, dept in enumerate(["water", "water", "roads", None]):
        client.post("/tickets", json={"fields": {"category": "noise"}, "ticket_id": f"L{i}"},
                    headers=as_("k-hotline"))
        if dept:
            fire(client, f"L{i}", "dispatch", "k-centre", fields={"department": dept})
    engine.run_until(START + timedelta(minutes=31))  # L3's dispatch_due escalates it

    def ids(key: str = "k-centre", **params) -> tuple[int, list[str]]:
        body = client.get("/tickets", params=params, headers=as_(key)).json()
        return body["total"], sorted(t["id"] for t in body["items"])

    assert ids(state="dispatched") == (3, ["L0", "L1", "L2"])
    assert ids(department="water") == (2, ["L0", "L1"])
    assert ids(level="street") == (1, ["L3"])
    assert ids(breached="true") == (1, ["L3"])
    assert ids(breached="false") == (3, ["L0", "L1", "L2"])
    # arrival_due is due 2 h after dispatch (10:00); escalated_due two days after 08:30
    assert ids(due_within=3600 * 2) == (3, ["L0", "L1", "L2"])
    assert ids(due_within=60) == (0, [])
    assert ids("k-roads") == (1, ["L2"])
    assert client.get("/tickets", params={"department": "water"},
                      headers=as_("k-roads")).status_code == 403
    page = client.get("/tickets", params={"limit": 3, "offset": 3},
                      headers=as_("k-centre")).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (4, 3, 3, 1)
    assert client.get("/tickets", params={"limit": 0},
                      headers=as_("k-centre")).status_code == 422


def test_a_client_reads_the_lifecycle(api) -> None:
    client, _ = api
    assert client.get("/lifecycles", headers=as_("k-gw")).json() == ["grid_incident"]
    lc = client.get("/lifecycles/grid_incident", headers=as_("k-gw")).json()
    assert (lc["name"], lc["version"], lc["initial"], lc["report_roles"]) == (
        "grid_incident", 1, "reported", ["grid_worker", "centre", "system"])
    assert lc["levels"] == ["community", "street", "district", "city"]
    assert [(s["name"], s["final"], s["triggers"]) for s in lc["states"]][:2] == [
        ("reported", False, ["dispatch", "escalate", "merge", "void"]),
        ("dispatched", False, ["arrive", "escalate", "merge", "void"])]
    assert lc["transitions"][0] == {"trigger": "dispatch",
                                    "title": {"zh": "派遣", "en": "Dispatch"},
                                    "source": ["reported", "escalated"], "dest": "dispatched",
                                    "roles": ["centre"], "reason_required": False}
    assert lc["fields"]["category"] == {"type": "string", "required": True, "choices": None,
                                        "min": None, "max": None, "max_length": None,
                                        "title": {"zh": "问题类别", "en": "Category"}}
    assert lc["categories"]["noise"]["group"] == "public_order"
    assert lc["diagram"].startswith("---\ntitle: 网格事件处置 / Grid incident handling")
    assert client.get("/lifecycles/other", headers=as_("k-gw")).status_code == 404


def test_openapi_document_is_served(api) -> None:
    client, _ = api
    doc = client.get("/openapi.json").json()
    assert {"/tickets", "/tickets/{ticket_id}", "/tickets/{ticket_id}/triggers/{trigger}",
            "/open311/v2/requests.{fmt}"} <= set(doc["paths"])


def test_api_keys_file_is_strict(tmp_path: Path) -> None:
    from adapters.http.auth import hash_key

    good = tmp_path / "keys.yaml"
    good.write_text(f"keys:\n  a: {{hash: '{hash_key('k1')}', actor: ops-1, role: centre}}\n"
                    f"  b: {{hash: '{hash_key('k2')}', actor: w, role: department, "
                    "department: water}\n")
    ring = load_api_keys(good)
    assert (ring.find("k1"), ring.find("k2"), ring.find("k3")) == (
        ApiKey(actor="ops-1", role="centre"),
        ApiKey(actor="w", role="department", department="water"), None)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"keys:\n  k1: {{hash: '{hash_key('k1')}', actor: ops-1, role: centre, "
                   "admin: true}\n")
    from engine import DefinitionError

    with pytest.raises(DefinitionError) as info:
        load_api_keys(bad)
    assert [(p.line, p.path) for p in info.value.problems] == [(2, "keys.k1.admin")]
