"""Oversight over HTTP on a real server on loopback: a department key asks for an
extension, the centre decides, suspends, resumes and presses; refusals are problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, VirtualClock

KEYS = {
    "k-ops": ApiKey(actor="ops-1", role="centre"),
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-san": ApiKey(actor="san-1", role="department", department="sanitation"),
}
OPS, WATER, SAN = ({"X-API-Key": k} for k in ("k-ops", "k-water", "k-san"))
H = timedelta(hours=1)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "api.sqlite", clock=VirtualClock(START))
    with running(create_app(engine, api_keys=KEYS)) as url, httpx.Client(base_url=url) as c:
        yield c, engine
    engine.stop()


def _ticket(engine: Engine) -> None:
    centre = Actor("ops-1", "centre")
    engine.report("grid_incident", {"category": "noise", "target_at": START + 4 * H},
                  actor=centre, ticket_id="T-1")
    engine.fire("T-1", "dispatch", actor=centre, fields={"department": "water"})


def test_an_extension_over_http(api) -> None:
    client, engine = api
    _ticket(engine)
    body = {"deadline": "resolution", "proposed_due": (START + 8 * H).isoformat(),
            "reason": "waiting for a part"}
    r = client.post("/tickets/T-1/extensions", json=body, headers=SAN)
    assert (r.status_code, r.json()["type"]) == (403, "urn:gridwhistle:problem:wrong-department")
    r = client.post("/tickets/T-1/extensions", json=body, headers=WATER)
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["n"], got["status"], got["department"], got["original_due"],
            got["proposed_due"]) == (1, "open", "water", "2024-05-01T12:00:00Z",
                                     "2024-05-01T16:00:00Z")
    r = client.post("/tickets/T-1/extensions", json=body, headers=WATER)
    problem = r.json()
    assert (r.status_code, r.headers["content-type"], problem["title"], problem["why"],
            problem["details"]) == (409, "application/problem+json", "OversightRefused",
                                    "open_request", {"deadline": "resolution", "n": 1})
    r = client.post("/tickets/T-1/extensions/1/decision",
                    json={"approve": True, "reason": "ok"}, headers=WATER)
    assert (r.status_code, r.json()["title"]) == (403, "RoleNotAllowed")
    for vague in ("yes", "true", 1, "1"):  # a decision is a JSON boolean, nothing else
        r = client.post("/tickets/T-1/extensions/1/decision",
                        json={"approve": vague, "reason": "ok"}, headers=OPS)
        assert (r.status_code, r.json()["type"]) == (
            422, "urn:gridwhistle:problem:request-validation"), vague
    assert engine.time_requests("T-1", "extension")[0].status == "open"
    r = client.post("/tickets/T-1/extensions/1/decision",
                    json={"approve": True, "reason": "ok"}, headers=OPS)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["new_due"], r.json()["extended_seconds"]) == (
        "approved", "2024-05-01T16:00:00Z", 14400.0)
    timers = {t.name: t.due_at for t in engine.timers("T-1", status="pending")}
    assert timers["resolution"] == START + 8 * H
    r = client.get("/tickets/T-1/extensions", headers=WATER)
    assert [e["status"] for e in r.json()] == ["approved"]
    r = client.post("/tickets/T-1/extensions",
                    json={**body, "proposed_due": "2024-05-01T20:00:00"}, headers=WATER)
    assert (r.status_code, r.json()["type"]) == (
        422, "urn:gridwhistle:problem:request-validation")


def test_suspension_and_notice_over_http(api) -> None:
    client, engine = api
    _ticket(engine)
    r = client.post("/tickets/T-1/suspensions",
                    json={"cause": "weather", "reason": "typhoon"}, headers=WATER)
    assert (r.status_code, r.json()["title"]) == (403, "RoleNotAllowed")
    r = client.post("/tickets/T-1/suspensions",
                    json={"cause": "snow", "reason": "x"}, headers=OPS)
    assert (r.status_code, r.json()["why"]) == (409, "unknown_cause")
    r = client.post("/tickets/T-1/suspensions",
                    json={"cause": "weather", "reason": "typhoon"}, headers=OPS)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["proposed_due"]) == ("active", "2024-05-16T08:00:00Z")
    r = client.post("/tickets/T-1/triggers/arrive", json={}, headers=WATER)
    assert (r.status_code, r.json()["why"]) == (409, "suspended")
    engine.clock.set(START + 2 * H)
    r = client.post("/tickets/T-1/resume", json={"reason": "over"}, headers=OPS)
    assert (r.status_code, r.json()["suspended_seconds"]) == (200, 7200.0)
    timers = {t.name: t.due_at for t in engine.timers("T-1", status="pending")}
    assert (timers["resolution"], timers["arrival_due"]) == (START + 6 * H, START + 4 * H)
    r = client.post("/tickets/T-1/supervision-notices",
                    json={"text": "report by 18:00"}, headers=OPS)
    assert r.status_code == 201, r.text
    assert (r.json()["department"], r.json()["reply_due"]) == ("water", "2024-05-02T10:00:00Z")
    r = client.get("/tickets/T-1/supervision-notices", headers=WATER)
    assert [n["text"] for n in r.json()] == ["report by 18:00"]
    r = client.get("/tickets/T-1/suspensions", headers=OPS)
    assert [s["status"] for s in r.json()] == ["ended"]
    assert engine.check_invariants() == []


def test_bad_instants_departments_and_texts_are_422_and_change_nothing(api) -> None:
    """Found by a new user's trial: a far-future instant was a 500, an unknown department
    was stored, an empty notice text was named ``reason``."""
    client, engine = api
    _ticket(engine)
    before = [(h.seq, h.kind) for h in engine.history("T-1")]
    far = "9999-12-31T23:59:59-12:00"  # past datetime's range once in UTC
    r = client.post("/tickets/T-1/extensions", headers=WATER, json={
        "deadline": "resolution", "proposed_due": far, "reason": "a part"})
    assert (r.status_code, r.json()["title"], list(r.json()["errors"])) == (
        422, "InvalidFields", ["proposed_due"])
    r = client.post("/tickets/T-1/extensions", headers=WATER, json={
        "deadline": "resolution", "proposed_due": 12345, "reason": "a part"})
    assert (r.status_code, r.json()["type"]) == (
        422, "urn:gridwhistle:problem:request-validation")  # not 1970-01-01T03:25:45Z
    r = client.post("/tickets/T-1/supervision-notices", headers=OPS,
                    json={"text": "please hurry", "reply_due": far})
    assert (r.status_code, list(r.json()["errors"])) == (422, ["reply_due"])
    r = client.post("/tickets/T-1/supervision-notices", headers=OPS,
                    json={"text": "please hurry", "department": "nope"})
    assert (r.status_code, r.json()["title"]) == (422, "UnknownDepartment")
    r = client.post("/tickets/T-1/supervision-notices", headers=OPS, json={"text": " "})
    assert (r.status_code, list(r.json()["errors"])) == (422, ["text"])
    assert [(h.seq, h.kind) for h in engine.history("T-1")] == before


def test_a_department_key_reads_its_own_figures_only(api) -> None:
    client, engine = api
    _ticket(engine)
    for by in ("all", "department", "level"):
        r = client.get("/reports", params={"by": by}, headers=SAN)
        got = r.json()
        assert (r.status_code, got["by"], [g["key"] for g in got["groups"]],
                got["total"]["key"]) == (200, "department", [], "sanitation"), by
    r = client.get("/reports", headers=OPS)
    assert (r.json()["by"], r.json()["total"]["key"]) == ("all", "all")
