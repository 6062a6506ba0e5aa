"""The centre's department commands over HTTP, problem+json carrying the errors' data, and
GET /reports giving the figures `gridwhistle report` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from helpers import START
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, VirtualClock

ROOT = Path(__file__).parent.parent
TIMED = Path(__file__).parent / "definitions" / "timed.yaml"
KEYS = {
    "k-centre": ApiKey(actor="ops-1", role="centre"),
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-hotline": ApiKey(actor="hotline-1", role="centre"),  # reports: the call centre
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-san": ApiKey(actor="san-1", role="department", department="sanitation"),
}
Api = tuple[httpx.Client, Engine, Path]
CENTRE, GW = {"X-API-Key": "k-centre"}, {"X-API-Key": "k-gw"}
WATER, SAN = {"X-API-Key": "k-water"}, {"X-API-Key": "k-san"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine, Path]]:
    db = tmp_path / "api.sqlite"
    engine = Engine(db, clock=VirtualClock(START))
    with running(create_app(engine, api_keys=KEYS)) as url, httpx.Client(base_url=url) as c:
        yield c, engine, db
    engine.stop()


def report(client: httpx.Client, tid: str, category: str, area: str = "A1") -> None:
    r = client.post("/tickets", json={"ticket_id": tid, "fields": {"category": category,
                                                                   "area": area}},
                    headers={"X-API-Key": "k-hotline"})
    assert r.status_code == 201, r.text


def test_dispatch_lead_meeting_and_work_orders_over_http(api: Api) -> None:
    client, engine, _ = api
    report(client, "T-1", "blocked_drain")
    r = client.post("/tickets/T-1/dispatch", json={"reason": "routine"}, headers=CENTRE)
    assert r.status_code == 200, r.text
    assert [(o["id"], o["department"], o["role"]) for o in r.json()] == [
        ("T-1.1", "water", "lead"), ("T-1.2", "sanitation", "co")]
    assert engine.get("T-1").fields["department"] == "water"

    # a department key sees its own work orders only, and no decisions
    mine = client.get("/tickets/T-1/work-orders", headers=SAN).json()
    assert [o["id"] for o in mine["work_orders"]] == ["T-1.2"]
    assert mine["actions"] == []
    every = client.get("/tickets/T-1/work-orders", headers=CENTRE).json()
    assert [o["id"] for o in every["work_orders"]] == ["T-1.1", "T-1.2"]
    assert [a["kind"] for a in every["actions"]] == ["dispatch"]

    r = client.post("/tickets/T-1/lead", json={"department": "sanitation",
                                              "reason": "it is a garbage blockage"},
                    headers=CENTRE)
    assert r.status_code == 200, r.text
    assert (r.json()["department"], r.json()["role"]) == ("sanitation", "lead")

    r = client.post("/tickets/T-1/meetings", json={
        "present": ["water", "sanitation", "roads"], "lead": "roads", "co": ["water"],
        "reason": "minutes"}, headers=CENTRE)
    assert r.status_code == 200, r.text
    assert sorted((o["department"], o["role"]) for o in r.json()) == [
        ("roads", "lead"), ("water", "co")]

    r = client.post("/tickets/T-1/work-orders", json={"department": "lighting"},
                    headers=CENTRE)
    assert (r.status_code, r.json()["department"], r.json()["role"]) == (201, "lighting", "co")


def test_department_refusals_carry_their_data(api: Api) -> None:
    client, _, _ = api
    report(client, "T-1", "blocked_drain")
    r = client.post("/tickets/T-1/lead", json={"department": "fire_brigade", "reason": "x"},
                    headers=CENTRE)
    body = r.json()
    assert (r.status_code, body["title"], body["department"]) == (
        422, "UnknownDepartment", "fire_brigade")
    assert "water" in body["known"]
    # a grid worker may not dispatch: the role rule, with the roles that may
    r = client.post("/tickets/T-1/dispatch", json={}, headers=GW)
    assert (r.status_code, r.json()["title"], r.json()["allowed_roles"]) == (
        403, "RoleNotAllowed", ["centre"])
    client.post("/tickets/T-1/dispatch", json={}, headers=CENTRE)
    r = client.post("/tickets/T-1.1/triggers/bounce", json={"reason": "sewer"}, headers=WATER)
    body = r.json()
    assert (r.status_code, body["title"], body["parent_id"], body["department"]) == (
        409, "BounceNeedsApproval", "T-1", "water")
    r = client.post("/work-orders/T-1.1/approve-bounce", json={"reason": "ok"}, headers=WATER)
    assert (r.status_code, r.json()["type"]) == (403, "urn:gridwhistle:problem:wrong-department")
    r = client.post("/work-orders/T-1.1/approve-bounce", json={"reason": "ok"}, headers=CENTRE)
    assert r.status_code == 204, r.text
    r = client.post("/tickets/T-1.1/triggers/bounce", json={"reason": "sewer"}, headers=WATER)
    assert (r.status_code, r.json()["state"]) == (200, "bounced")

    report(client, "T-2", "garbage", area="A9")
    r = client.post("/tickets/T-2/merge", json={"original_id": "T-1", "reason": "same"},
                    headers=CENTRE)
    body = r.json()
    assert (r.status_code, body["title"], body["original_id"]) == (409, "NotADuplicate", "T-1")
    assert "category" in body["why"]


def test_a_minimum_lag_refusal_carries_its_earliest_instant(tmp_path: Path) -> None:
    ny = ZoneInfo("America/New_York")
    now = datetime(2024, 6, 5, 10, tzinfo=ny).astimezone(UTC)
    engine = Engine(tmp_path / "lag.sqlite", clock=VirtualClock(now))
    engine.deploy(TIMED)
    keys = {"k-c": ApiKey(actor="ops-1", role="centre")}
    try:
        engine.report("timed", {}, actor=Actor("r-1", "reporter"), ticket_id="T1")
        engine.fire("T1", "dispatch", actor=Actor("ops-1", "centre"))
        engine.fire("T1", "arrive", actor=Actor("w-1", "department"))
        engine.fire("T1", "resolve", actor=Actor("w-1", "department"))
        with running(create_app(engine, api_keys=keys, lifecycles=("timed",),
                                open311_api=False)) as url:
            r = httpx.post(f"{url}/tickets/T1/triggers/close", json={},
                           headers={"X-API-Key": "k-c"})
    finally:
        engine.stop()
    body = r.json()
    assert (r.status_code, body["title"], body["lag"], body["since"]) == (
        409, "MinimumLagNotReached", "verify_after_arrival", "arrive")
    assert datetime.fromisoformat(body["earliest"]) == now + timedelta(minutes=10)


def test_get_reports_gives_the_figures_of_gridwhistle_report(api: Api) -> None:
    client, engine, db = api
    for tid, category in (("T-1", "blocked_drain"), ("T-2", "garbage"), ("T-3", "noise")):
        report(client, tid, category, area=tid)
    client.post("/tickets/T-1/dispatch", json={}, headers=CENTRE)
    client.post("/tickets/T-2/dispatch", json={}, headers=CENTRE)
    assert isinstance(engine.clock, VirtualClock)
    engine.clock.advance(timedelta(minutes=20))
    for key, wid in ((WATER, "T-1.1"), (SAN, "T-1.2")):
        for trigger in ("accept", "arrive", "finish"):
            assert client.post(f"/tickets/{wid}/triggers/{trigger}", json={},
                               headers=key).status_code == 200
    assert client.post("/tickets/T-1/triggers/close", json={}, headers=CENTRE).status_code == 200
    engine.run_until(START + timedelta(hours=1))  # T-3's dispatch deadline: street

    r = client.get("/reports", params={"by": "level", "lang": "en"}, headers=CENTRE)
    assert r.status_code == 200, r.text
    rep = r.json()
    total = rep["total"]["values"]
    assert (total["received"], total["closed"], total["closure_rate"]) == (3, 1, 0.3333)
    assert (total["on_time"], total["on_time_rate"]) == (1, 1.0)
    assert total["dispatch_median_s"] == 0.0
    assert total["on_site_median_s"] == 1200.0  # the parent arrives with its last work order
    assert (total["escalations"], total["escalations_street"]) == (1, 1)
    assert [(g["key"], g["title"], g["values"]["received"]) for g in rep["groups"]] == [
        ("community", "Community", 2), ("street", "Street office", 1)]

    by_dept = client.get("/reports", params={"by": "department"}, headers=CENTRE).json()
    assert {g["key"]: (g["title"], g["values"]["received"], g["values"]["closed"])
            for g in by_dept["groups"]} == {
        "sanitation": ("区城管委环卫中心", 2, 1), "water": ("区水务局", 1, 1)}
    mine = client.get("/reports", params={"by": "department"}, headers=WATER).json()
    assert [g["key"] for g in mine["groups"]] == ["water"]

    csv_text = client.get("/reports", params={"by": "level", "lang": "en", "format": "csv"},
                          headers=CENTRE).text
    assert csv_text.splitlines()[0].startswith("group,title,received,closed,closure_rate")
    assert csv_text.splitlines()[-1].startswith("all,All,3,1,0.3333")

    # the command line computes the same figures from the same module
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "adapters.cli", "report", "--db", str(db),
                          "--by", "level", "--lang", "en", "--json"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert json.loads(out)["report"] == rep
    cli_csv = subprocess.run([sys.executable, "-m", "adapters.cli", "report", "--db", str(db),
                              "--by", "level", "--lang", "en", "--format", "csv"],
                             capture_output=True, text=True, env=env, check=True).stdout
    assert cli_csv == csv_text

    later = client.get("/reports", params={"from": "2024-05-02T00:00:00Z"},
                       headers=CENTRE).json()
    assert later["total"]["values"]["received"] == 0
    bad = client.get("/reports", params={"from": "yesterday"}, headers=CENTRE)
    assert (bad.status_code, bad.json()["parameter"]) == (422, "from")
