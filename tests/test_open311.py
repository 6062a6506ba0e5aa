"""Open311 GeoReport v2 under a real uvicorn server, read by the `georeport` PyPI client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import xmltodict
from georeport import GeoReport
from helpers import START
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, VirtualClock

KEYS = {"k-gw": ApiKey(actor="gw-017", role="grid_worker"),
        "k-hotline": ApiKey(actor="hotline-1", role="centre"),  # reports: the call centre
        "k-water": ApiKey(actor="water-3", role="department", department="water")}
CENTRE = Actor("ops-1", "centre")
TARGET = START + timedelta(days=3)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    clock = VirtualClock(START)
    engine = Engine(tmp_path / "o311.sqlite", clock=clock)
    engine.report("grid_incident", {"category": "blocked_drain", "description": "drain",
                                    "area": "Grid 7", "target_at": TARGET},
                  actor=Actor("gw-017", "centre"), ticket_id="R-1")
    engine.fire("R-1", "dispatch", actor=CENTRE, fields={"department": "water"})
    clock.set(START + timedelta(hours=1))
    engine.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id="R-2")
    for trig, role in [("dispatch", "centre"), ("arrive", "department"),
                       ("resolve", "department"), ("close", "centre")]:
        engine.fire("R-2", trig, actor=Actor("x", role),
                    fields={"department": "traffic_police"} if trig == "dispatch" else None)
    with running(create_app(engine, api_keys=KEYS)) as url:
        yield url + "/open311/v2", engine
    engine.stop()


def test_the_georeport_client_reads_services_and_requests(served) -> None:
    root, _ = served
    client = GeoReport(root)
    services = client.get_service_list()
    assert [s["service_code"] for s in services] == [
        "blocked_drain", "garbage", "road_damage", "street_light", "illegal_parking", "noise"]
    assert services[0] == {"service_code": "blocked_drain", "service_name": "Blocked drain",
                           "description": "", "metadata": False, "type": "realtime",
                           "keywords": "", "group": "sanitation"}

    requests = client.get_service_requests()
    assert [(r["service_request_id"], r["status"], r["status_notes"]) for r in requests] == [
        ("R-2", "closed", "Closed"), ("R-1", "open", "Dispatched")]
    one = client.get_service_request("R-1")
    assert one == {
        "service_request_id": "R-1", "status": "open", "status_notes": "Dispatched",
        "service_name": "Blocked drain", "service_code": "blocked_drain",
        "description": "drain", "agency_responsible": "water", "service_notice": None,
        "requested_datetime": "2024-05-01T08:00:00+00:00",
        "updated_datetime": "2024-05-01T08:00:00+00:00",
        "expected_datetime": TARGET.isoformat(),  # the pending resolution deadline
        "address": "Grid 7", "address_id": None, "zipcode": None, "lat": None, "long": None,
        "media_url": None,
    }
    assert [r["service_request_id"] for r in client.get_service_requests(status="open")] == [
        "R-1"]
    assert [r["service_request_id"]
            for r in client.get_service_requests(service_code="noise")] == ["R-2"]
    assert [r["service_request_id"] for r in client.get_service_requests(
        service_request_id="R-1,R-2,nope")] == ["R-2", "R-1"]
    assert client.get_service_requests(start_date="2024-05-01T08:30:00Z",
                                       end_date="2024-05-02T00:00:00Z")[0][
        "service_request_id"] == "R-2"

    xml = GeoReport(root, output_format="xml")
    assert xml.get_service_request("R-2")["status"] == "closed"
    assert [s["service_code"] for s in xml.get_service_list()][:2] == ["blocked_drain",
                                                                        "garbage"]


def test_a_form_encoded_post_creates_a_ticket(served) -> None:
    root, engine = served
    r = httpx.post(f"{root}/requests.json", data={
        "api_key": "k-hotline", "service_code": "road_damage", "lat": "31.23", "long": "121.47",
        "address_string": "Nanjing Rd 100", "description": "pothole by the bus stop"})
    assert r.status_code == 200
    [created] = r.json()
    ticket = engine.get(created["service_request_id"])
    assert (ticket.state, ticket.fields) == ("reported", {
        "category": "road_damage", "description": "pothole by the bus stop",
        "address": "Nanjing Rd 100", "lat": 31.23, "long": 121.47, "channel": "open311"})
    assert [h.actor for h in engine.history(ticket.id)] == ["hotline-1"]

    r = httpx.post(f"{root}/requests.xml", data={"api_key": "k-hotline", "service_code": "noise",
                                                  "address_id": "A-9"})
    assert r.status_code == 400 and "no field to keep address_id" in r.text  # main: dropped
    r = httpx.post(f"{root}/requests.xml", data={"api_key": "k-hotline", "service_code": "noise",
                                                  "address_string": "A-9"})
    created_id = xmltodict.parse(r.text)["service_requests"]["request"]["service_request_id"]
    assert engine.get(created_id).fields["category"] == "noise"


def test_errors_are_the_specs_list_of_code_and_description(served) -> None:
    root, engine = served
    before = len(engine.versions()), [t.id for t in _all(engine)]
    for key in ("wrong", "k-water", ""):  # unknown, a role that may not report, missing
        r = httpx.post(f"{root}/requests.json", data={"api_key": key, "service_code": "noise",
                                                      "address_string": "x"})
        assert (r.status_code, r.json()[0]["code"]) == (403, 403)
    r = httpx.post(f"{root}/requests.json", data={"api_key": "k-hotline", "service_code": "nope",
                                                  "address_string": "x"})
    assert r.json() == [{"code": 400, "description":
                         "service_code 'nope' is not a service; see services.json"}]
    r = httpx.post(f"{root}/requests.json", data={"api_key": "k-hotline", "service_code": "noise"})
    assert r.status_code == 400
    assert (len(engine.versions()), [t.id for t in _all(engine)]) == before

    r = httpx.get(f"{root}/requests/nope.xml")
    assert r.status_code == 404
    assert xmltodict.parse(r.text) == {"errors": {"error": {
        "code": "404", "description": "no service request 'nope'"}}}
    r = httpx.get(f"{root}/requests.json", params={"start_date": "2024-01-01T00:00:00Z",
                                                   "end_date": "2024-05-01T00:00:00Z"})
    assert r.json() == [{"code": 400, "description":
                         "start_date and end_date may not be more than 90 days apart"}]
    r = httpx.get(f"{root}/requests.json", params={"start_date": "2024-01-01"})
    assert r.json()[0]["description"] == "start_date must carry a time zone (Z or +08:00)"
    assert httpx.get(f"{root}/requests.csv").status_code == 404


def _all(engine: Engine):
    from engine import find_tickets

    return find_tickets(engine, limit=500).items


def test_requests_default_to_the_last_90_days(served) -> None:
    root, engine = served
    engine.clock.set(START + timedelta(days=91))  # type: ignore[attr-defined]
    assert httpx.get(f"{root}/requests.json").json() == []
    assert len(httpx.get(f"{root}/requests.json", params={
        "end_date": (START + timedelta(days=1)).isoformat()}).json()) == 2
    assert isinstance(datetime.fromisoformat(
        httpx.get(f"{root}/requests/R-2.json").json()[0]["requested_datetime"]), datetime)


def test_extensions_add_the_history_as_notes(served) -> None:
    root, _ = served
    [r2] = httpx.get(f"{root}/requests/R-2.json", params={"extensions": "true"}).json()
    assert r2["extended_attributes"] == {"state": "closed", "level": "community",
                                         "overdue": False, "grid": None}
    assert [(n["type"], n["summary"]) for n in r2["notes"]] == [
        ("report", "report"), ("transition", "dispatch"), ("transition", "arrive"),
        ("transition", "resolve"), ("transition", "close")]
    # Without a key: what happened, not who (issue 11); with a key: who, too.
    assert r2["notes"][1] == {"datetime": "2024-05-01T09:00:00+00:00", "type": "transition",
                              "summary": "dispatch",
                              "description": "reported -> dispatched (community)"}
    [keyed] = httpx.get(f"{root}/requests/R-2.json",
                        params={"extensions": "true", "api_key": "k-gw"}).json()
    assert keyed["notes"][1]["description"] == "reported -> dispatched (community) by x (centre)"
    xml = xmltodict.parse(httpx.get(f"{root}/requests/R-2.xml",
                                    params={"extensions": "true"}).text)
    notes = xml["service_requests"]["request"]["notes"]["note"]
    assert [n["summary"] for n in notes] == ["report", "dispatch", "arrive", "resolve", "close"]
    assert "notes" not in httpx.get(f"{root}/requests/R-2.json").json()[0]
