"""The fresh-user audit of the HTTP edge, each finding under a real uvicorn server on loopback
with real SQLite files: keys that must name their scope, optimistic locking with If-Match,
UTF-8 form bodies, Open311 services and fields that the lifecycle cannot hold, and the
status codes of an undeclared trigger and a body that is not JSON."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import START
from pydantic import ValidationError
from servers import busy_port, running

from adapters.http import ApiKey, KeyNotValid, create_app, load_api_keys
from engine import Actor, DefinitionError, Engine, VirtualClock, find_tickets

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


CENTRE = Actor("ops-1", "centre")

# -- 1. a key names its scope; its role is one the served lifecycles declare --------------------


def test_a_department_key_without_its_department_is_refused_where_it_is_made() -> None:
    with pytest.raises(ValidationError, match="must name its department"):
        ApiKey(actor="water-3", role="department")  # main: saw every department's tickets
    with pytest.raises(ValidationError, match="must name its organisation"):
        ApiKey(actor="metro-1", role="outside_org")
    with pytest.raises(ValidationError, match="engine's own"):
        ApiKey(actor="x", role="system")  # main: a key could fire escalate over HTTP


@pytest.mark.parametrize(("args", "says"), [
    (["--role", "department"], "must name its department"),
    (["--role", "system"], "engine's own"),
    (["--role", "bogus_role"], "'bogus_role' is not a role"),
    (["--role", "outside_org"], "must name its organisation"),
    (["--role", "outside_org", "--organisation", "metro_compny"], "'metro_compny' is not"),
    (["--role", "reporter", "--lifecycle", "grid_incident"], "'reporter' is not a role"),
])
def test_keys_add_refuses_a_key_that_could_not_be_served(tmp_path: Path, args: list[str],
                                                          says: str) -> None:
    path = tmp_path / "keys.yaml"
    made = cli("keys", "add", str(path), "--actor", "a-1", *args)
    assert made.returncode == 1, made.stdout  # main: 0, the key printed and stored
    assert says in made.stderr
    assert made.stdout == "" and not path.exists()


def test_keys_add_checks_a_role_against_the_lifecycle_given(tmp_path: Path) -> None:
    own = tmp_path / "own.yaml"
    own.write_text((REPO / "workflows/grid_incident.yaml").read_text(encoding="utf-8").replace(
        "name: grid_incident", "name: own").replace(
        "  resident: {title:", "  inspector: {title: {zh: 督查员, en: Inspector}}\n"
                               "  resident: {title:"), encoding="utf-8")
    path = tmp_path / "keys.yaml"
    refused = cli("keys", "add", str(path), "--actor", "i-1", "--role", "inspector")
    assert refused.returncode == 1 and "--lifecycle" in refused.stderr
    made = cli("keys", "add", str(path), "--actor", "i-1", "--role", "inspector",
               "--lifecycle", str(own))
    assert made.returncode == 0, made.stderr


def test_a_keys_file_with_a_department_key_without_department_is_refused_naming_it(
        tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text('keys:\n  "ops-1": {hash: "sha256:' + "a" * 64 + '", actor: ops-1, '
                    'role: centre}\n  "water-3": {hash: "sha256:' + "b" * 64 + '", '
                    'actor: water-3, role: department}\n')
    with pytest.raises(DefinitionError) as caught:
        load_api_keys(path)
    assert "keys.water-3" in str(caught.value) and "must name its department" in str(
        caught.value)
    assert ":3:" in str(caught.value)  # its line
    with busy_port() as port:  # a regression is refused as a port in use, not served
        served = cli("serve", "--api-keys", str(path), "--db", str(tmp_path / "s.sqlite"),
                     "--port", str(port))
    assert served.returncode == 1 and "water-3" in served.stderr


def test_create_app_refuses_a_role_no_served_lifecycle_declares(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text('keys:\n  "odd-1": {hash: "sha256:' + "c" * 64 + '", actor: odd-1, '
                    'role: bogus_role}\n  "metro-1": {hash: "sha256:' + "d" * 64 + '", '
                    'actor: metro-1, role: outside_org, organisation: metro_compny}\n')
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        with pytest.raises(KeyNotValid) as caught:
            create_app(engine, api_keys=load_api_keys(path))
        text = str(caught.value)
        assert f"key 'odd-1' in {path}: role 'bogus_role' is not a role" in text
        assert "organisation 'metro_compny' is not declared" in text
        assert "gas_company, metro_company, power_supply" in text  # what to use instead
        with pytest.raises(KeyNotValid, match="the key of actor 'r-1'"):  # never the key
            create_app(engine, api_keys={"secret-key": ApiKey(actor="r-1", role="reporter")})
    finally:
        engine.stop()
    with busy_port() as port:  # a regression is refused as a port in use, not served
        served = cli("serve", "--api-keys", str(path), "--db", str(tmp_path / "s.sqlite"),
                     "--port", str(port))
    assert served.returncode == 1 and "odd-1" in served.stderr


@pytest.fixture
def grid(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "audit.sqlite", clock=VirtualClock(START))
    keys = {"k-centre": ApiKey(actor="ops-1", role="centre"),
            "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
            "k-water": ApiKey(actor="water-3", role="department", department="water"),
            "k-roads": ApiKey(actor="roads-1", role="department", department="roads")}
    with running(create_app(engine, api_keys=keys)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        yield client, engine
    engine.stop()


def test_a_department_key_sees_and_acts_on_its_own_department_only(grid) -> None:
    client, engine = grid
    for tid, dept in (("G1", "roads"), ("G2", "water")):
        engine.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id=tid)
        engine.fire(tid, "dispatch", actor=CENTRE, fields={"department": dept})
    water = {"X-API-Key": "k-water"}
    listed = client.get("/tickets", headers=water).json()
    assert [t["id"] for t in listed["items"]] == ["G2"]
    assert client.post("/tickets/G1/triggers/arrive", json={}, headers=water
                       ).status_code == 403
    assert client.post("/tickets/G2/triggers/arrive", json={}, headers=water
                       ).status_code == 200


# -- 2. optimistic locking: ETag and If-Match -------------------------------------------------

COUNTER = """\
format: 1
name: counter
initial: open
roles: {centre: {}}
levels: [{name: community}]
report: {roles: [centre]}
categories:
  garbage: {title: {zh: 垃圾, en: Garbage}}
fields:
  category: {type: string}
  description: {type: string, max_length: 20}
  area: {type: string}
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: touch, source: open, dest: open, roles: [centre], internal: true}
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
"""


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    from engine import parse_definition

    engine = Engine(tmp_path / "counter.sqlite", clock=VirtualClock(START))
    engine.deploy(parse_definition(COUNTER))
    engine.report("counter", {"category": "x"}, actor=CENTRE, ticket_id="C3")
    with running(create_app(engine, api_keys={"k-centre": ApiKey(actor="ops-1", role="centre")},
                            lifecycles=["counter"])) as url:
        yield url, engine
    engine.stop()


H = {"X-API-Key": "k-centre"}


def test_tickets_carry_their_version_as_etag(counter) -> None:
    url, _engine = counter
    read = httpx.get(f"{url}/tickets/C3", headers=H)
    assert read.headers["ETag"] == '"1"'  # main: no ETag
    fired = httpx.post(f"{url}/tickets/C3/triggers/touch", json={}, headers=H)
    assert fired.headers["ETag"] == '"2"' == f'"{fired.json()["row_version"]}"'
    made = httpx.post(f"{url}/tickets", json={"fields": {"category": "x"}}, headers=H)
    assert made.status_code == 201 and made.headers["ETag"] == '"1"'


def test_thirty_commands_with_the_same_if_match_apply_once(counter) -> None:
    import collections
    import concurrent.futures

    url, engine = counter

    def touch(_: int) -> int:
        return httpx.post(f"{url}/tickets/C3/triggers/touch", json={"reason": "r"},
                          headers={**H, "If-Match": '"1"'}, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        statuses = collections.Counter(pool.map(touch, range(30)))
    assert statuses == {200: 1, 412: 29}  # main: {200: 30}
    assert engine.get("C3").row_version == 2
    stale = httpx.post(f"{url}/tickets/C3/triggers/touch", json={},
                       headers={**H, "If-Match": '"1"'})
    body = stale.json()
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["ETag"] == '"2"'
    assert (body["title"], body["expected_version"], body["actual_version"]) == (
        "ConcurrencyConflict", 1, 2)
    assert body["type"] == "urn:gridwhistle:problem:concurrency-conflict"


@pytest.mark.parametrize(("value", "status"), [
    ('"2"', 412), ('"1", "9"', 200), ('"9", "1"', 200), ("*", 200), ('W/"1"', 412),
    ('"abc"', 412), ("1", 400), ('"1', 400), ('"1" "2"', 400), ("", 400),
])
def test_if_match_forms(counter, value: str, status: int) -> None:
    url, engine = counter
    answer = httpx.post(f"{url}/tickets/C3/triggers/touch", json={},
                        headers={**H, "If-Match": value})
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["type"] == "urn:gridwhistle:problem:invalid-if-match"
    assert engine.get("C3").row_version == (2 if status == 200 else 1)


def test_a_retry_with_its_idempotency_key_answers_again_despite_if_match(counter) -> None:
    url, engine = counter
    headers = {**H, "If-Match": '"1"', "Idempotency-Key": "touch-1"}
    first = httpx.post(f"{url}/tickets/C3/triggers/touch", json={}, headers=headers)
    again = httpx.post(f"{url}/tickets/C3/triggers/touch", json={}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["row_version"] == 2 and engine.get("C3").row_version == 2


def test_if_match_is_refused_where_it_cannot_be_honoured(grid) -> None:
    client, engine = grid
    engine.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id="D1")
    answer = client.post("/tickets/D1/dispatch", json={},
                         headers={"X-API-Key": "k-centre", "If-Match": '"1"'})
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:gridwhistle:problem:if-match-not-supported"
    assert engine.get("D1").state == "reported"


def test_the_openapi_document_names_if_match_and_412(grid) -> None:
    client, _ = grid
    op = client.get("/openapi.json").json()["paths"]["/tickets/{ticket_id}/triggers/{trigger}"]
    post = op["post"]
    assert "if-match" in [p["name"].lower() for p in post["parameters"] if p["in"] == "header"]
    assert "412" in post["responses"] and "415" in post["responses"]


# -- 5. an undeclared trigger; a body that is not JSON ---------------------------------------

def test_a_trigger_the_lifecycle_does_not_declare_is_a_404(counter) -> None:
    url, _engine = counter
    nowhere = httpx.post(f"{url}/tickets/C3/triggers/tuoch", json={}, headers=H)
    assert nowhere.status_code == 404  # main: 409 TriggerNotAllowed
    body = nowhere.json()
    assert body["title"] == "UnknownTrigger" and body["known"] == ["finish", "touch"]
    assert "declares no trigger 'tuoch'" in body["detail"]
    httpx.post(f"{url}/tickets/C3/triggers/finish", json={}, headers=H)
    not_now = httpx.post(f"{url}/tickets/C3/triggers/touch", json={}, headers=H)
    assert not_now.status_code == 409 and not_now.json()["title"] == "TriggerNotAllowed"


# -- 3. form bodies are UTF-8 ----------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def _open311_post(url: str, body: bytes, content_type: str = FORM) -> httpx.Response:
    return httpx.post(f"{url}/open311/v2/requests.json", content=body,
                      headers={"content-type": content_type})


@pytest.mark.parametrize("content_type", [FORM, f"{FORM}; charset=utf-8", f"{FORM}; charset=UTF-8"])
def test_open311_keeps_raw_utf8_form_text_exactly(grid, content_type: str) -> None:
    client, engine = grid
    body = ("api_key=k-centre&service_code=garbage&address_string=上海路1号"
            "&description=垃圾堆放+在路口").encode()
    made = _open311_post(str(client.base_url), body, content_type)
    assert made.status_code == 200, made.text
    ticket = engine.get(made.json()[0]["service_request_id"])
    assert ticket.fields["address"] == "上海路1号"  # main: 'ä¸\x8aæµ·è·¯1å\x8f·'
    assert ticket.fields["description"] == "垃圾堆放 在路口"
    read = client.get(f"/open311/v2/requests/{ticket.id}.json").json()[0]
    assert (read["address"], read["description"]) == ("上海路1号", "垃圾堆放 在路口")


def test_open311_reads_percent_encoding_mixed_raw_text_and_an_explicit_charset(grid) -> None:
    client, engine = grid
    url = str(client.base_url)
    mixed = b"api_key=k-centre&service_code=garbage&address_string=%E4%B8%8A" + \
        "海路1号".encode() + b"&description=a%2Bb%26c%3D"
    made = _open311_post(url, mixed)
    ticket = engine.get(made.json()[0]["service_request_id"])
    assert (ticket.fields["address"], ticket.fields["description"]) == ("上海路1号", "a+b&c=")
    gbk = "api_key=k-centre&service_code=garbage&address_string=上海路2号".encode("gbk")
    made = _open311_post(url, gbk, f"{FORM}; charset=gbk")
    assert engine.get(made.json()[0]["service_request_id"]).fields["address"] == "上海路2号"


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"api_key=k-centre&service_code=garbage&address_string=\xff\xfe", FORM, 400),
    (b"api_key=k-centre&service_code=garbage&address_string=%FF", FORM, 400),
    (b"api_key=k-centre&service_code=garbage&address_string=x", f"{FORM}; charset=klingon",
     415),
])
def test_open311_refuses_bytes_that_are_not_text(grid, body: bytes, content_type: str,
                                                 status: int) -> None:
    client, engine = grid
    answer = _open311_post(str(client.base_url), body, content_type)
    assert answer.status_code == status
    assert answer.json()[0]["code"] == status  # the GeoReport v2 error list
    assert find_tickets(engine, limit=1).total == 0


def test_length_limits_count_characters_not_latin1_bytes(counter) -> None:
    url, engine = counter
    text = "垃圾" * 10  # 20 characters, 60 bytes: the field's max_length is 20
    made = _open311_post(url, f"api_key=k-centre&service_code=garbage&address_string=路口"
                              f"&description={text}".encode())
    assert made.status_code == 200, made.text  # main: 400, 60 Latin-1 characters
    assert engine.get(made.json()[0]["service_request_id"]).fields["description"] == text


def test_the_residents_call_back_form_keeps_raw_utf8(grid) -> None:
    client, engine = grid
    dept = Actor("san-1", "department")
    engine.report("grid_incident", {"category": "garbage"}, actor=CENTRE, ticket_id="CB1")
    engine.fire("CB1", "dispatch", actor=CENTRE, fields={"department": "sanitation"})
    engine.fire("CB1", "arrive", actor=dept)
    engine.fire("CB1", "resolve", actor=dept)
    engine.fire("CB1", "verify", actor=CENTRE)
    token = engine.callback_link("CB1", actor=CENTRE)
    body = "fixed=true&rating=5&comment=师傅很负责，谢谢".encode()
    answer = client.post(f"/callback/{token}", content=body, headers={"content-type": FORM})
    assert answer.status_code == 200, answer.text
    assert engine.get("CB1").fields["satisfaction_comment"] == "师傅很负责，谢谢"


# -- 4. Open311: services that exist, fields the lifecycle can hold ----------------------------

BARE = """\
format: 1
name: bare
initial: open
roles: {centre: {}}
levels: [{name: community}]
report: {roles: [centre]}
fields:
  category: {type: string}
  area: {type: string}
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
"""


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    from engine import parse_definition

    engine = Engine(tmp_path / "bare.sqlite", clock=VirtualClock(START))
    engine.deploy(parse_definition(BARE))
    engine.deploy(parse_definition(COUNTER))
    with running(create_app(engine, api_keys={"k-centre": ApiKey(actor="ops-1", role="centre")},
                            lifecycles=["bare", "counter"])) as url:
        yield url, engine
    engine.stop()


def test_a_service_code_that_is_not_served_is_a_400_even_with_no_services(bare) -> None:
    url, engine = bare
    assert httpx.get(f"{url}/open311/v2/services.json").json() == []
    answer = httpx.post(f"{url}/open311/v2/requests.json", data={
        "api_key": "k-centre", "service_code": "garbage", "address_string": "上海路1号"})
    assert answer.status_code == 400  # main: 200, a ticket of service 'garbage'
    assert answer.json()[0]["description"].startswith("service_code 'garbage' is not a service")
    assert find_tickets(engine, limit=1).total == 0


PLAIN = COUNTER.replace("name: counter", "name: plain").replace(
    "  description: {type: string, max_length: 20}\n", "")  # category and area only


@pytest.mark.parametrize(("form", "named"), [
    ({"description": "垃圾堆放"}, "description"),
    ({"lat": "31.2", "long": "121.4"}, "lat, long"),
    ({"address_id": "A-9"}, "address_id"),
    ({"email": "a@example.org", "first_name": "王"}, "email, first_name"),
])
def test_a_standard_field_the_lifecycle_cannot_hold_is_a_400_naming_it(
        tmp_path: Path, form: dict[str, str], named: str) -> None:
    from engine import parse_definition

    engine = Engine(tmp_path / "plain.sqlite", clock=VirtualClock(START))
    engine.deploy(parse_definition(PLAIN))
    try:
        app = create_app(engine, api_keys={"k-centre": ApiKey(actor="ops-1", role="centre")},
                         lifecycles=["plain"])
        with running(app) as url:
            answer = httpx.post(f"{url}/open311/v2/requests.json", data={
                "api_key": "k-centre", "service_code": "garbage", "address_string": "路口",
                **form})
        assert answer.status_code == 400, answer.text  # main: 200, the values dropped
        assert f"no field to keep {named}" in answer.json()[0]["description"]
        assert find_tickets(engine, limit=1).total == 0
    finally:
        engine.stop()


def test_a_form_key_georeport_does_not_define_is_a_400(counter) -> None:
    url, engine = counter
    answer = httpx.post(f"{url}/open311/v2/requests.json", data={
        "api_key": "k-centre", "service_code": "garbage", "address_string": "路口",
        "discription": "typo"})
    assert answer.status_code == 400 and "discription" in answer.json()[0]["description"]
    kept = httpx.post(f"{url}/open311/v2/requests.json", data={
        "api_key": "k-centre", "service_code": "garbage", "address_string": "路口",
        "description": "垃圾堆放", "jurisdiction_id": "sh.gov.cn", "email": ""})
    assert kept.status_code == 200, kept.text
    fields = engine.get(kept.json()[0]["service_request_id"]).fields
    assert fields == {"category": "garbage", "area": "路口", "description": "垃圾堆放"}


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8",
                                          "application/xml"])
@pytest.mark.parametrize("path", ["/tickets", "/tickets/G1/triggers/arrive",
                                  "/tickets/G1/suspensions"])
def test_a_body_that_is_not_json_on_a_json_route_is_a_415(grid, content_type: str,
                                                          path: str) -> None:
    client, engine = grid
    engine.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id="G1")
    answer = client.post(path, content='{"fields": {"category": "垃圾"}}'.encode(),
                         headers={"X-API-Key": "k-centre", "content-type": content_type})
    assert answer.status_code == 415, answer.text  # main: 422 "Input should be a valid dict"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:gridwhistle:problem:unsupported-media-type"
    assert find_tickets(engine, limit=5).total == 1 and engine.get("G1").row_version == 1
    wrong = client.post("/tickets", json={"fields": "not an object"},
                        headers={"X-API-Key": "k-centre"})
    assert wrong.status_code == 422  # JSON that does not fit stays a 422
