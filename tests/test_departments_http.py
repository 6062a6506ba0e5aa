"""Work orders over the existing HTTP API: a work order is a ticket carrying its department,
so department keys act on their own work orders, and the duties refuse as problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Departments, Engine, VirtualClock

KEYS = {
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-san": ApiKey(actor="san-1", role="department", department="sanitation"),
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "api.sqlite", clock=VirtualClock(START))
    with running(create_app(engine, api_keys=KEYS)) as url, httpx.Client(base_url=url) as c:
        yield c, engine
    engine.stop()


def test_departments_work_their_own_work_orders_over_http(api) -> None:
    client, engine = api
    centre = Actor("ops-1", "centre")
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=centre,
                  ticket_id="T-1")
    lead, co = Departments(engine).dispatch("T-1", actor=centre)
    water, san = {"X-API-Key": "k-water"}, {"X-API-Key": "k-san"}

    r = client.post(f"/tickets/{lead.id}/triggers/bounce", json={"reason": "sewer"},
                    headers=water)
    assert (r.status_code, r.json()["title"]) == (409, "BounceNeedsApproval")
    assert "without the centre's approval" in r.json()["detail"]
    r = client.post(f"/tickets/{co.id}/triggers/accept", json={}, headers=water)
    assert (r.status_code, r.json()["type"]) == (
        403, "urn:gridwhistle:problem:wrong-department")

    for key, wid in ((water, lead.id), (san, co.id)):
        for trigger in ("accept", "finish"):
            r = client.post(f"/tickets/{wid}/triggers/{trigger}", json={}, headers=key)
            assert r.status_code == 200, r.text
    assert engine.get("T-1").state == "resolved"
