"""The HTTP edge hardened (issue 11), under a real uvicorn server on loopback: ids that
round-trip, refused ids that commit nothing, problem+json for 500 and 405, the body limit,
Idempotency-Key, Open311 privacy, well-formed XML and typed Open311 attributes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from helpers import START
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import running, served_client
from sqlalchemy import text

from adapters.http import ApiKey, create_app
from adapters.http.open311 import Open311Privacy
from engine import Actor, Engine, Limits, VirtualClock, find_tickets, parse_definition
from engine.validation import TICKET_ID_PATTERN, ticket_id_problem

KEYS = {
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-hotline": ApiKey(actor="hotline-1", role="centre"),  # reports: the call centre
    "k-centre": ApiKey(actor="ops-1", role="centre"),
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
}
SURVEY_KEYS = {k: g for k, g in KEYS.items() if g.role == "centre"}  # roles survey declares
GW = {"X-API-Key": "k-hotline"}  # the call centre reports (no photo needed)
CENTRE = {"X-API-Key": "k-centre"}

SURVEY = """\
format: 1
name: survey
initial: open
roles: {centre: {}, reporter: {}}
levels: [{name: community}]
report: {roles: [reporter, centre]}
categories:
  pothole: {title: Pothole}
fields:
  category: {type: string}
  description: {type: string, max_length: 50}
  area: {type: string}
  lat: {type: number, min: -90, max: 90}
  long: {type: number, min: -180, max: 180}
  rating: {type: integer, min: 1, max: 5}
  urgent: {type: boolean}
  seen_at: {type: datetime}
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "edge.sqlite", clock=VirtualClock(START))
    with served_client(create_app(engine, api_keys=KEYS, limits=Limits(body_bytes=20_000)),
                       engine) as both:
        yield both


def count(engine: Engine) -> int:
    return find_tickets(engine, limit=1).total


# -- ids -------------------------------------------------------------------------------------------

ROUND_TRIP = ["14-00011080/lead", "14-00195506/14-00214133", "grid_patrol-2024-11-03T01:30-05:00",
              "T-1.2", "a~b+c", "x" * 64]


def test_ids_with_slashes_dots_and_colons_round_trip(served) -> None:
    client, engine = served
    for tid in ROUND_TRIP:
        r = client.post("/tickets", json={"fields": {"category": "noise"}, "ticket_id": tid},
                        headers=GW)
        assert r.status_code == 201, (tid, r.text)
        assert r.headers["location"] == f"/tickets/{tid}"
        got = client.get(r.headers["location"], headers=CENTRE)
        assert (got.status_code, got.json()["ticket"]["id"]) == (200, tid)  # main: 404
        fired = client.post(f"/tickets/{tid}/triggers/dispatch", headers=CENTRE,
                            json={"fields": {"department": "water"}})
        assert (fired.status_code, fired.json()["state"]) == (200, "dispatched")
        o311 = client.get(f"/open311/v2/requests/{tid}.json")
        assert o311.json()[0]["service_request_id"] == tid
    assert count(engine) == len(ROUND_TRIP)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(tid=st.from_regex(TICKET_ID_PATTERN, fullmatch=True).filter(
    lambda t: ticket_id_problem(t) is None))
def test_every_id_the_engine_accepts_is_read_back_over_http(served, tid: str) -> None:
    client, engine = served
    if not find_tickets(engine, ids=[tid], limit=1).items:
        engine.report("grid_incident", {"category": "noise"}, actor=Actor("gw", "centre"),
                      ticket_id=tid)
    got = client.get("/tickets/" + quote(tid, safe="/:~+"), headers=CENTRE)
    assert (got.status_code, got.json()["ticket"]["id"]) == (200, tid)


@pytest.mark.parametrize("tid", ["🚧-1", "工单1", "\u202eT1", "T\u200b1", "T\r\n1", "T\x001",
                                 "   ", "", "a/../b", "a//b"])
def test_refused_ids_commit_nothing_and_name_ticket_id(served, tid: str) -> None:
    client, engine = served
    r = client.post("/tickets", json={"fields": {"category": "noise"}, "ticket_id": tid},
                    headers=GW)
    # main: 500 text/plain after the commit (emoji, CJK, RTL, zero-width), a dropped
    # connection (CR/LF, NUL, spaces), or "" silently replaced by a generated id
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert set(r.json()["errors"]) == {"ticket_id"}
    assert count(engine) == 0


def test_an_id_no_ticket_can_have_is_a_404(served) -> None:
    client, _ = served
    for path in ("/tickets/%00", "/tickets/%F0%9F%9A%A7", "/tickets/a%20b"):
        r = client.get(path, headers=CENTRE)
        assert (r.status_code, r.json()["type"]) == (
            404, "urn:gridwhistle:problem:ticket-not-found")


# -- problem+json for 500 and 405 ------------------------------------------------------------------

def test_a_server_error_is_problem_json(served) -> None:
    client, engine = served
    engine.report("grid_incident", {"category": "noise"}, actor=Actor("gw", "centre"),
                  ticket_id="T1")
    with engine.db.write() as conn:  # a real failure: the timers table is gone
        conn.execute(text("DROP TABLE gw_timers"))
    r = client.get("/tickets/T1", headers=CENTRE)
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"  # main: text/plain
    body = r.json()
    assert (body["type"], body["title"], body["instance"]) == (
        "urn:gridwhistle:problem:internal-error", "Internal server error", "/tickets/T1")
    assert "gw_timers" not in r.text  # nothing internal leaks
    o311 = client.get("/open311/v2/requests/T1.json")
    assert o311.status_code == 500
    assert o311.json()[0]["code"] == 500


def test_a_405_says_which_methods_are_allowed(served) -> None:
    client, _ = served
    r = client.delete("/tickets", headers=CENTRE)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"  # main: no Allow header
    assert r.headers["content-type"] == "application/problem+json"
    r = client.put("/open311/v2/requests.json")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, POST")


# -- body size -------------------------------------------------------------------------------------

def test_bodies_over_the_limit_are_refused_before_they_are_read(served) -> None:
    client, engine = served
    big = {"fields": {"category": "noise", "description": "x" * 30_000}}
    r = client.post("/tickets", json=big, headers=GW)
    assert r.status_code == 413  # main: accepted
    assert r.headers["content-type"] == "application/problem+json"
    assert "larger than 20,000 bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"fields": {"category": "noise", "description": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}}'

    r = client.post("/tickets", content=chunks(), headers={**GW, "Content-Type":
                                                            "application/json"})
    assert r.status_code == 413
    r = client.post("/open311/v2/requests.json", data={
        "api_key": "k-hotline", "service_code": "noise", "address_string": "A1",
        "description": "x" * 30_000})
    assert (r.status_code, r.json()[0]["code"]) == (413, 413)
    assert count(engine) == 0


# -- Idempotency-Key -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["", "k" * 129, "k" * 200, "two words"])
def test_a_bad_idempotency_key_is_a_400(served, key: str) -> None:
    client, engine = served
    engine.report("grid_incident", {"category": "noise"}, actor=Actor("gw", "centre"),
                  ticket_id="T1")
    for method, path, body in (("POST", "/tickets/T1/triggers/dispatch",
                                {"fields": {"department": "water"}}),
                               ("POST", "/tickets", {"fields": {"category": "noise"}})):
        r = client.request(method, path, json=body,
                           headers={**CENTRE, "Idempotency-Key": key})
        assert r.status_code == 400, r.text  # main: 500
        assert r.json()["type"] == "urn:gridwhistle:problem:invalid-idempotency-key"
    r = client.post("/open311/v2/requests.json", headers={"Idempotency-Key": key}, data={
        "api_key": "k-hotline", "service_code": "noise", "address_string": "A1"})
    assert (r.status_code, r.json()[0]["code"]) == (400, 400)
    assert engine.get("T1").state == "reported"
    assert count(engine) == 1


def test_a_retried_report_with_its_key_creates_one_ticket(served) -> None:
    client, engine = served
    first = client.post("/tickets", json={"fields": {"category": "noise"}},
                        headers={**GW, "Idempotency-Key": "report-7f3a"})
    again = client.post("/tickets", json={"fields": {"category": "noise"}},
                        headers={**GW, "Idempotency-Key": "report-7f3a"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]  # main: a second ticket
    assert again.headers["location"] == first.headers["location"]
    form = {"api_key": "k-hotline", "service_code": "noise", "address_string": "A1"}
    a = client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "o-1"})
    b = client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "o-1"})
    assert a.json()[0]["service_request_id"] == b.json()[0]["service_request_id"]
    assert count(engine) == 2


# -- Open311: privacy, XML, attributes -------------------------------------------------------------

@pytest.fixture
def survey(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    engine = Engine(tmp_path / "survey.sqlite", clock=VirtualClock(START))
    engine.deploy(parse_definition(SURVEY))
    yield engine, str(tmp_path)
    engine.stop()


def _served_history(engine: Engine, privacy: Open311Privacy | None, **params: str) -> list:
    app = create_app(engine, api_keys=SURVEY_KEYS, lifecycles=["survey"],
                     open311_privacy=privacy)
    with running(app) as url:
        r = httpx.get(f"{url}/open311/v2/requests/S1.json", params={"extensions": "true",
                                                                     **params})
        return [r.status_code, r.json()]


def test_open311_reads_hide_who_did_what_without_a_key(survey) -> None:
    engine, _ = survey
    engine.report("survey", {"category": "pothole", "area": "A1"},
                  actor=Actor("gw-017", "centre"), ticket_id="S1", reason="call 555-0101")
    engine.fire("S1", "finish", actor=Actor("ops-1", "centre"), reason="fixed by Mr Li")
    status, [anonymous] = _served_history(engine, None)
    assert status == 200
    text_of = repr(anonymous)
    for secret in ("gw-017", "ops-1", "grid_worker", "centre", "555-0101", "Mr Li"):
        assert secret not in text_of, secret  # main: every note named the actor and reason
    assert [n["description"] for n in anonymous["notes"]] == [
        "- -> open (community)", "open -> closed (community)"]
    _, [keyed] = _served_history(engine, None, api_key="k-centre")
    assert keyed["notes"][1]["description"] == (
        "open -> closed (community) by ops-1 (centre): fixed by Mr Li")
    _, [none] = _served_history(engine, Open311Privacy(history="none"))
    assert "notes" not in none
    status, body = _served_history(engine, Open311Privacy(reads="key"))
    assert (status, body[0]["code"]) == (403, 403)
    status, body = _served_history(engine, None, api_key="not-a-key")
    assert status == 403


def test_xml_stays_well_formed_with_control_characters(survey) -> None:
    engine, _ = survey
    engine.report("survey", {"category": "pothole", "description": "bell\x07 esc\x1b ok\ttab"},
                  actor=Actor("gw", "centre"), ticket_id="S1")
    app = create_app(engine, api_keys=SURVEY_KEYS, lifecycles=["survey"])
    with running(app) as url:
        body = httpx.get(f"{url}/open311/v2/requests.xml").text
    root = ET.fromstring(body)  # main: not well-formed (raw U+0007 in the document)
    assert root.find("request/description").text == "bell\ufffd esc\ufffd ok\ttab"


def test_open311_attributes_are_typed_and_checked_like_json(survey) -> None:
    engine, _ = survey
    app = create_app(engine, api_keys=SURVEY_KEYS, lifecycles=["survey"])
    form = {"api_key": "k-hotline", "service_code": "pothole", "address_string": "A1"}
    with running(app) as url:
        def post(**extra: str) -> httpx.Response:
            return httpx.post(f"{url}/open311/v2/requests.json", data={**form, **extra})

        ok = post(**{"attribute[rating]": "4", "attribute[urgent]": "true",
                     "attribute[seen_at]": "2024-05-01T07:00:00+08:00", "lat": "31.2"})
        assert ok.status_code == 200, ok.text
        tid = ok.json()[0]["service_request_id"]
        assert engine.get(tid).fields["rating"] == 4  # main: dropped (not a string field)
        assert engine.get(tid).fields["urgent"] is True
        for extra, message in [
            ({"attribute[rating]": "7"}, "rating: 7 is more than the maximum 5"),
            ({"attribute[rating]": "four"}, "attribute[rating] must be a whole number"),
            ({"attribute[urgent]": "yes"}, "attribute[urgent] must be true or false"),
            ({"attribute[seen_at]": "yesterday"}, "seen_at: expected an ISO 8601 instant"),
            ({"attribute[colour]": "red"}, "the lifecycle declares no field 'colour'"),
            ({"attribute[description]": "x" * 51}, "text of 51 characters is longer than"),
            ({"lat": "nan"}, "lat must be a finite number"),
            ({"lat": "95"}, "lat: 95.0 is more than the maximum 90"),
        ]:
            r = post(**extra)
            assert r.status_code == 400, (extra, r.text)
            assert message in r.json()[0]["description"], (extra, r.text)
    assert count(engine) == 1


def test_nan_in_a_json_body_is_refused(survey) -> None:
    engine, _ = survey
    app = create_app(engine, api_keys=SURVEY_KEYS, lifecycles=["survey"])
    with running(app) as url:
        r = httpx.post(f"{url}/tickets", headers={**GW, "Content-Type": "application/json"},
                       content=b'{"fields": {"lat": NaN}}')
    assert r.status_code == 422
    assert r.json()["errors"]["lat"].endswith("is not a finite number; NaN and infinities "
                                              "are refused (JSON cannot carry them)")
    assert count(engine) == 0
