"""An outside organisation's key sees only the tickets it holds — on every read, not only
``/tickets`` (audit of issue 12), and a department without work orders gets its reports page.

Issue 12: the organisation "acts through its own API key, which sees only the tickets it
currently holds". The REST ticket routes kept to that, but the same key got the full Open311
notes (actor ids, roles, reasons) of every ticket, any ticket's work orders and the centre's
decisions, the district's reports, and in the console the whole board and every ticket page.
And the console's reports page was a 500 for a department key whose department has no work
orders yet (its empty row had no figures). Real server on loopback, real SQLite file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Departments, Engine, VirtualClock

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)  # Wed 09:00 in Shanghai
KEYS = {
    "k-ops": ApiKey(actor="ops-1", role="centre"),
    "k-district": ApiKey(actor="dist-1", role="district_office"),
    "k-metro": ApiKey(actor="metro-1", role="outside_org", organisation="metro_company"),
    "k-lighting": ApiKey(actor="light-1", role="department", department="lighting"),
}
OPS = Actor("ops-1", "centre")


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "t.sqlite", clock=VirtualClock(T0))
    engine.report("grid_incident", {"category": "road_damage"}, actor=OPS, ticket_id="HELD")
    engine.escalate("HELD", actor=OPS, reason="beside the metro site")
    engine.fire("HELD", "hand_off", actor=Actor("dist-1", "district_office"),
                fields={"outside_org": "metro_company"})
    engine.report("grid_incident", {"category": "blocked_drain"}, actor=OPS,
                  ticket_id="OTHER")
    Departments(engine).dispatch("OTHER", actor=OPS, reason="routine")
    try:
        with running(create_app(engine, api_keys=KEYS)) as url, \
                httpx.Client(base_url=url, timeout=30) as client:
            yield client, engine
    finally:
        engine.stop()


def _notes(client: httpx.Client, tid: str, key: str) -> list[str]:
    r = client.get(f"/open311/v2/requests/{tid}.json", params={"extensions": "true"},
                   headers=h(key))
    assert r.status_code == 200, r.text
    return [n["description"] for n in r.json()[0]["notes"]]


def test_open311_shows_an_organisation_full_notes_of_its_own_tickets_only(site) -> None:
    client, _ = site
    assert any(" by dist-1 (district_office)" in n for n in _notes(client, "HELD", "k-metro"))
    # before: "reported -> dispatched (community) by ops-1 (centre): routine" — every ticket's
    other = _notes(client, "OTHER", "k-metro")
    assert other and not any(" by " in n for n in other), other
    assert any(" by ops-1 (centre)" in n for n in _notes(client, "OTHER", "k-ops"))


def test_an_organisation_reads_no_work_orders_or_reports_but_its_own(site) -> None:
    client, _ = site
    # before: 200 with the work orders and the centre's decisions of a ticket it never held
    r = client.get("/tickets/OTHER/work-orders", headers=h("k-metro"))
    assert (r.status_code, r.json()["type"]) == (403, "urn:gridwhistle:problem:not-held")
    assert client.get("/tickets/HELD/work-orders", headers=h("k-metro")).status_code == 200
    # before: 200, the district's figures by department
    rep = client.get("/reports", params={"by": "department"}, headers=h("k-metro"))
    assert (rep.status_code, rep.json()["type"]) == (403, "urn:gridwhistle:problem:not-held")
    assert rep.headers["content-type"] == "application/problem+json"


def test_the_console_shows_an_organisation_only_what_it_holds(site) -> None:
    client, _ = site
    board = client.get("/console", headers=h("k-metro"))
    assert board.status_code == 200
    # before: every open ticket and work order of the district
    assert set(re.findall(r'id="card-([^"]+)"', board.text)) == {"HELD"}
    page = client.get("/console/tickets/OTHER", headers=h("k-metro"))
    assert page.status_code == 403 and "metro_company" in page.text
    assert client.get("/console/tickets/HELD", headers=h("k-metro")).status_code == 200
    assert client.get("/console/reports", headers=h("k-metro")).status_code == 403
    centre = set(re.findall(r'id="card-([^"]+)"', client.get("/console", headers=h("k-ops")).text))
    assert {"HELD", "OTHER"} <= centre


def test_a_department_without_work_orders_gets_its_reports_page(site) -> None:
    client, _ = site
    # before: 500 (KeyError 'closure_rate': its empty row carried no figures)
    page = client.get("/console/reports", headers=h("k-lighting"))
    assert page.status_code == 200, page.text[:300]
    values = client.get("/reports", headers=h("k-lighting")).json()["total"]["values"]
    assert (values["received"], values["closure_rate"]) == (0, None)
    assert client.get("/console/reports.csv", headers=h("k-lighting")).status_code == 200
