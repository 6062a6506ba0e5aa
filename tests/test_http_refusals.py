"""Small refusals of the HTTP API, under a real uvicorn server on loopback: a list filter that
names nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import served_client

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, Limits, VirtualClock

KEYS = {"k-hotline": ApiKey(actor="hotline-1", role="centre")}
CENTRE = {"X-API-Key": "k-hotline"}

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
