"""Small refusals of the HTTP API, under a real uvicorn server on loopback: a list filter that
names nothing, a form endpoint sent JSON, a chunked body over the limit, a report refused
before it had an id."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import served_client

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, Limits, VirtualClock, find_tickets

KEYS = {"k-hotline": ApiKey(actor="hotline-1", role="centre")}
CENTRE = {"X-API-Key": "k-hotline"}
FORM_TYPES = "application/x-www-form-urlencoded, multipart/form-data"

PARKING_V1 = """\
format: 1
name: parking
initial: open
roles: {centre: {}}
levels: [{name: community}, {name: street}]
report: {roles: [centre]}
fields:
  category: {type: string}
states:
  open: {}
  parked: {}
  closed: {final: true}
transitions:
  - {trigger: park, source: open, dest: parked, roles: [centre]}
  - {trigger: finish, source: [open, parked], dest: closed, roles: [centre]}
"""
# version 2 drops the state parked and the level street: tickets may still be on version 1
PARKING_V2 = (PARKING_V1.replace("  parked: {}\n", "")
              .replace("  - {trigger: park, source: open, dest: parked, roles: [centre]}\n", "")
              .replace("source: [open, parked]", "source: open")
              .replace(", {name: street}", ""))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "refusals.sqlite", clock=VirtualClock(START))
    with served_client(create_app(engine, api_keys=KEYS, limits=Limits(body_bytes=20_000)),
                       engine) as both:
        yield both


# -- 1. a list filter that names nothing -----------------------------------------------------

@pytest.mark.parametrize(("query", "argument", "known"), [
    ({"state": "nosuch"}, "state", ["callback", "closed", "dispatched"]),
    ({"level": "galaxy"}, "level", ["city", "community", "district", "street"]),
    ({"state": "nosuch", "lifecycle": "grid_incident"}, "state", ["callback", "closed"]),
])
def test_an_unknown_state_or_level_is_a_422_naming_the_known_ones(
        served, query: dict[str, str], argument: str, known: list[str]) -> None:
    client, _ = served
    r = client.get("/tickets", params=query, headers=CENTRE)
    assert r.status_code == 422, r.text  # main: 200 {"items": [], "total": 0}
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:gridwhistle:problem:unknown-value"
    assert (body["title"], body["argument"], body["value"]) == (
        "UnknownValue", argument, query[argument])
    assert body["known"][:len(known)] == known
    assert f"{argument} {query[argument]!r} is not one" in body["detail"]
    assert "give one of: " in body["detail"]


def test_a_state_or_level_of_an_older_version_still_lists_its_tickets(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1" / "parking.yaml", tmp_path / "parking.yaml"
    v1.parent.mkdir()
    v1.write_text(PARKING_V1, encoding="utf-8")
    v2.write_text(PARKING_V2, encoding="utf-8")
    engine = Engine(tmp_path / "versions.sqlite", clock=VirtualClock(START))
    engine.deploy(v1)
    centre = Actor("hotline-1", "centre")
    engine.report("parking", {"category": "car"}, actor=centre, ticket_id="P-1",
                  level="street")
    engine.fire("P-1", "park", actor=centre)
    app = create_app(engine, api_keys=KEYS, lifecycles=[str(v2)])  # deploys version 2
    with served_client(app, engine) as (client, _):
        assert engine.lifecycle("parking").spec.states.keys() == {"open", "closed"}
        for query in ({"state": "parked"}, {"level": "street"},
                      {"state": "parked", "lifecycle": "parking"}):
            r = client.get("/tickets", params=query, headers=CENTRE)
            assert r.status_code == 200, (query, r.text)
            assert [t["id"] for t in r.json()["items"]] == ["P-1"]
        r = client.get("/tickets", params={"state": "reported"}, headers=CENTRE)
        assert r.status_code == 422  # grid_incident's state: not one parking declares
        assert r.json()["known"] == ["closed", "open", "parked"]


# -- 4. an Open311 report sent as JSON ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_open311_report_in_json_is_a_415_naming_the_form_types(served, fmt: str) -> None:
    client, engine = served
    body = {"api_key": "k-hotline", "service_code": "noise", "address_string": "A1"}
    r = client.post(f"/open311/v2/requests.{fmt}", json=body)
    # main: 403 "api_key is missing, unknown or may not report requests" (a valid key)
    assert r.status_code == 415, r.text
    assert r.headers["accept-post"] == FORM_TYPES
    if fmt == "json":
        [error] = r.json()
        code, description = error["code"], error["description"]
    else:
        root = ET.fromstring(r.content)
        code, description = int(root.findtext("error/code") or 0), root.findtext(
            "error/description") or ""
    assert code == 415
    assert ("send the body as application/x-www-form-urlencoded or multipart/form-data"
            in description)
    assert "not application/json" in description
    r = client.post("/open311/v2/requests.json", content=b"<request/>",
                    headers={"Content-Type": "application/xml"})
    assert (r.status_code, r.json()[0]["code"]) == (415, 415)
    assert find_tickets(engine, limit=1).total == 0
    # the form itself still reports, and a POST without a body is still the key's 403
    r = client.post("/open311/v2/requests.json", data=body)
    assert r.status_code == 200, r.text
    assert client.post("/open311/v2/requests.json").status_code == 403


def test_the_call_back_form_sent_as_text_is_a_415(served) -> None:
    client, _ = served
    r = client.post("/callback/nosuch", content=b"fixed=true&rating=5",
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text  # main: 422 "give fixed (true or false) and rating"
    assert r.headers["accept-post"] == f"{FORM_TYPES}, application/json"


# -- 5. a chunked body over the limit ----------------------------------------------------------

def test_a_chunked_body_over_the_limit_is_the_same_413_as_a_declared_one(served) -> None:
    client, engine = served
    declared = client.post("/tickets", headers=CENTRE, json={
        "fields": {"category": "noise", "description": "x" * 30_000}})

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"fields": {"category": "noise", "description": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}}'

    chunked = client.post("/tickets", content=chunks(),
                          headers={**CENTRE, "Content-Type": "application/json"})
    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert chunked.headers["content-type"] == "application/problem+json"
    # main: the chunked one's title was the whole detail sentence
    assert chunked.json() == declared.json()
    assert chunked.json()["title"] == "Content Too Large"
    assert "larger than 20,000 bytes" in chunked.json()["detail"]
    assert find_tickets(engine, limit=1).total == 0


# -- 6. a report refused before it had an id ---------------------------------------------------

def test_a_report_without_an_id_refused_for_its_fields_names_no_generated_id(served) -> None:
    client, engine = served
    r = client.post("/tickets", json={"fields": {}}, headers=CENTRE)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["title"] == "InvalidFields"
    # main: "ticket 'f2c109f5…' has invalid fields" for a ticket that was never made
    assert body["detail"] == "the report has invalid fields: category: required when reporting"
    assert body["ticket_id"] == "(new)"
    assert body["errors"] == {"category": "required when reporting"}
    r = client.post("/tickets", json={"fields": {}, "ticket_id": "T-9"}, headers=CENTRE)
    assert r.json()["detail"] == (
        "ticket 'T-9' has invalid fields: category: required when reporting")
    r = client.post("/tickets", json={"fields": {"category": "noise"}, "level": "galaxy"},
                    headers=CENTRE)
    assert r.json()["detail"].startswith("the report has invalid fields: level: unknown level")
    assert find_tickets(engine, limit=1).total == 0
