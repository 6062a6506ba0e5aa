"""A key's department and organisation are ones the served lifecycles declare, its role one of
theirs or of their work orders' — checked where the key is made (`keys add --lifecycle`) and
where it is served (`create_app`, `gridwhistle serve`), on real keys files, the real CLI and a
real uvicorn server over SQLite files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import busy_port, free_port, running

from adapters.http import ApiKey, KeyNotValid, create_app, load_api_keys
from adapters.http.auth import hash_key, key_holders, new_key
from engine import Actor, ConfigurationError, Engine, VirtualClock, load_definition
from engine.definition import bundled_workflows_dir

REPO = Path(__file__).resolve().parents[1]
BUNDLED_DEPARTMENTS = ("lighting, roads, sanitation, street_office, traffic_police, "
                       "urban_management, water")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def keys_file(path: Path, **entries: str) -> Path:
    """A keys file of hashed entries: name → the rest of its flow mapping (after the hash)."""
    lines = ["keys:"]
    for i, (name, rest) in enumerate(entries.items()):
        lines.append(f'  "{name}": {{hash: "sha256:{i:064x}", {rest}}}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def serve_refusal(keys: Path, tmp_path: Path,
                  *lifecycles: str) -> subprocess.CompletedProcess[str]:
    options = [a for name in lifecycles for a in ("--lifecycle", name)]
    with busy_port() as port:  # a regression is refused as a port in use, not served
        return cli("serve", "--api-keys", str(keys), "--db", str(tmp_path / "serve.sqlite"),
                   "--port", str(port), *options)


# -- 1. create_app and serve: a department no served lifecycle declares -----------------------


def test_a_misspelt_department_stops_create_app_and_serve_naming_the_entry(
        tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    for args in (["--actor", "ops-1", "--role", "centre"],
                 ["--actor", "water-3", "--role", "department", "--department", "water"]):
        assert cli("keys", "add", str(path), *args).returncode == 0
    typo = new_key()  # an entry of a keys file made before departments were checked
    with path.open("a", encoding="utf-8") as f:
        f.write(f'  "watr-1": {{hash: "{hash_key(typo)}", actor: "watr-1", role: department, '
                'department: "watr"}\n')
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        with pytest.raises(KeyNotValid) as caught:  # main: started; the key saw no ticket
            create_app(engine, api_keys=load_api_keys(path))
        (problem,) = caught.value.problems
        assert problem.startswith(f"key 'watr-1' in {path}: department 'watr' is not declared "
                                  "by the served lifecycle(s) grid_incident"), problem
        assert f"declared: {BUNDLED_DEPARTMENTS}" in problem  # what to use instead
        assert "correct the key's department:, or declare it under departments:" in problem
        assert typo not in str(caught.value)
    finally:
        engine.stop()
    served = serve_refusal(path, tmp_path)
    assert served.returncode == 1, served.stderr
    assert "key 'watr-1'" in served.stderr and "department 'watr'" in served.stderr
    assert "water-3" not in served.stderr  # the keys that fit are not named

    # corrected, the same file is served and the key sees its department's ticket
    path.write_text(path.read_text(encoding="utf-8").replace('department: "watr"',
                                                             'department: "water"'))
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        ops = Actor("ops-1", "centre")
        for tid, dept in (("W1", "water"), ("R1", "roads")):
            engine.report("grid_incident", {"category": "noise"}, actor=ops, ticket_id=tid)
            engine.fire(tid, "dispatch", actor=ops, fields={"department": dept})
        with running(create_app(engine, api_keys=load_api_keys(path))) as url:
            listed = httpx.get(f"{url}/tickets", headers={"X-API-Key": typo}, timeout=30)
            assert [t["id"] for t in listed.json()["items"]] == ["W1"]
    finally:
        engine.stop()


def test_serve_refusing_a_key_creates_no_database(tmp_path: Path) -> None:
    keys = keys_file(tmp_path / "keys.yaml", **{
        "ops-1": "actor: ops-1, role: centre",
        "watr-1": 'actor: watr-1, role: department, department: "watr"'})
    served = serve_refusal(keys, tmp_path)
    assert served.returncode == 1, served.stderr
    assert "key 'watr-1'" in served.stderr and "department 'watr'" in served.stderr
    assert "creating it" not in served.stderr  # main: "note: no database at ...: creating it"
    # main: serve.sqlite (and its -wal, -shm) created, grid_incident deployed, then refused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yaml"]


def _versions(db: Path) -> list[tuple[str, int]]:
    engine = Engine(db, clock=VirtualClock(START))
    try:
        return [(v.name, v.version) for v in engine.versions()]
    finally:
        engine.stop()


def test_on_an_existing_database_keys_are_checked_against_what_it_serves_deploying_nothing(
        tmp_path: Path, grid_incident_text: str) -> None:
    db = tmp_path / "serve.sqlite"
    engine = Engine(db, clock=VirtualClock(START))
    engine.report("grid_incident", {"category": "noise"}, actor=Actor("ops-1", "centre"))
    engine.stop()
    assert _versions(db) == [("grid_incident", 1)]
    parks = tmp_path / "parks.yaml"  # grid_incident with a department more: a new version
    parks.write_text(grid_incident_text.replace(
        "departments:\n", "departments:\n  parks: {title: {zh: 园林绿化局, en: Parks}}\n", 1),
        encoding="utf-8")
    keys = keys_file(tmp_path / "keys.yaml", **{
        "parks-1": "actor: parks-1, role: department, department: parks",
        "watr-1": 'actor: watr-1, role: department, department: "watr"'})

    # (a free port: serve checks the port before it opens an existing database, whose keys
    # create_app checks; a port in use would be refused first)
    served = cli("serve", "--api-keys", str(keys), "--db", str(db), "--port",
                 str(free_port()), "--lifecycle", str(parks))
    assert served.returncode == 1, served.stderr
    assert "key 'watr-1'" in served.stderr and "key 'parks-1'" not in served.stderr
    assert _versions(db) == [("grid_incident", 1)]  # main: parks.yaml deployed as version 2

    engine = Engine(db, clock=VirtualClock(START))
    try:  # create_app too refuses before it deploys
        with pytest.raises(KeyNotValid):
            create_app(engine, api_keys=load_api_keys(keys), lifecycles=[str(parks)])
        assert [(v.name, v.version) for v in engine.versions()] == [("grid_incident", 1)]
        engine.deploy(parks)  # now deployed: grid_incident v2 declares parks
    finally:
        engine.stop()
    # served by name, an existing database's own newer version is what counts: the parks
    # key fits it, though the bundled grid_incident does not declare parks
    keys = keys_file(keys, **{"parks-1": "actor: parks-1, role: department, department: parks"})
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "adapters.cli", "serve", "--api-keys",
                             str(keys), "--db", str(db), "--port", str(port)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        up = False
        for _ in range(600):  # up to 60 s on a loaded machine
            if proc.poll() is not None:
                break
            try:
                up = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
            if up:
                break
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert up, err
    assert _versions(db) == [("grid_incident", 1), ("grid_incident", 2)]


def test_an_organisation_no_served_lifecycle_declares_is_refused_saying_what_to_do(
        tmp_path: Path) -> None:
    path = keys_file(tmp_path / "keys.yaml",
                     **{"metro-1": "actor: metro-1, role: outside_org, organisation: metro_co"})
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        with pytest.raises(KeyNotValid) as caught:
            create_app(engine, api_keys=load_api_keys(path))
        (problem,) = caught.value.problems
        assert problem.startswith(f"key 'metro-1' in {path}: organisation 'metro_co' is not "
                                  "declared"), problem
        assert "declared: gas_company, metro_company, power_supply" in problem
        assert "correct the key's organisation:, or declare it under organisations:" in problem
    finally:
        engine.stop()
    served = serve_refusal(path, tmp_path)
    assert served.returncode == 1 and "key 'metro-1'" in served.stderr


FREE = """\
format: 1
name: free
initial: open
roles: {centre: {}, department: {}}
levels: [{name: community}]
report: {roles: [centre]}
fields:
  department: {type: string}
states:
  open: {}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [centre, department]}
"""


@pytest.mark.parametrize(("field", "department", "refused"), [
    ("{type: string}", "anything", False),  # no departments declared: any name may match
    ("{type: string, choices: [north, south]}", "north", False),
    ("{type: string, choices: [north, south]}", "east", True),
])
def test_a_department_field_without_departments_bounds_keys_by_its_choices_only(
        tmp_path: Path, field: str, department: str, refused: bool) -> None:
    lifecycle = tmp_path / "free.yaml"
    lifecycle.write_text(FREE.replace("{type: string}", field), encoding="utf-8")
    path = keys_file(tmp_path / "keys.yaml", **{
        "d-1": f"actor: d-1, role: department, department: {department}"})
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        if refused:
            with pytest.raises(KeyNotValid, match=r"department 'east' is not declared by the "
                               r"served lifecycle\(s\) free.*declared: north, south"):
                create_app(engine, api_keys=load_api_keys(path), lifecycles=[str(lifecycle)])
        else:
            create_app(engine, api_keys=load_api_keys(path), lifecycles=[str(lifecycle)])
    finally:
        engine.stop()


# -- 2. keys add --lifecycle: the department too ----------------------------------------------


def test_keys_add_checks_the_department_against_the_lifecycle_given(
        tmp_path: Path, grid_incident_text: str) -> None:
    own = tmp_path / "own.yaml"
    own.write_text(grid_incident_text.replace("name: grid_incident", "name: own").replace(
        "departments:\n", "departments:\n  parks: {title: {zh: 园林绿化局, en: Parks}}\n", 1),
        encoding="utf-8")
    path = tmp_path / "keys.yaml"
    bundled = cli("keys", "add", str(path), "--actor", "p-1", "--role", "department",
                  "--department", "parks")
    assert bundled.returncode == 1, bundled.stdout
    assert "department 'parks' is not declared" in bundled.stderr
    assert "give --lifecycle FILE" in bundled.stderr and not path.exists()

    made = cli("keys", "add", str(path), "--actor", "p-1", "--role", "department",
               "--department", "parks", "--lifecycle", str(own))
    assert made.returncode == 0, made.stderr

    typo = cli("keys", "add", str(path), "--actor", "w-1", "--role", "department",
               "--department", "watr", "--lifecycle", str(own))
    assert typo.returncode == 1, typo.stdout  # main: 0, a key that would see no ticket
    assert "the new key of actor 'w-1': department 'watr' is not declared by the served " \
           "lifecycle(s) own" in typo.stderr
    assert "declared: lighting, parks, roads," in typo.stderr
    assert typo.stdout == ""
    assert [name for name, *_ in key_holders(path)] == ["p-1"]  # nothing stored


# -- 3. keys list: the organisation column ----------------------------------------------------


def test_keys_list_shows_each_key_s_organisation_as_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    odd = "[red]x[/red] :x:"
    for args in (["--actor", "metro-1", "--role", "outside_org", "--organisation",
                  "metro_company"],
                 ["--actor", "water-3", "--role", "department", "--department", "water"],
                 ["--actor", odd, "--role", "centre", "--name", "odd"]):
        made = cli("keys", "add", str(path), *args)
        assert made.returncode == 0, made.stderr
    listed = cli("keys", "list", str(path))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    header = next(line for line in lines if "name" in line and "hash" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "name", "actor", "role", "department", "organisation", "hash"]  # main: no organisation
    rows = {c[0]: c for line in lines if line.startswith("│")
            for c in [[x.strip() for x in line.split("│")[1:-1]]]}
    assert rows["metro-1"][1:5] == ["metro-1", "outside_org", "", "metro_company"]
    assert rows["water-3"][1:5] == ["water-3", "department", "water", ""]
    assert rows["odd"][1] == odd  # the actor as written, never Rich markup or emoji


# -- 4. the work-order lifecycle's roles ------------------------------------------------------


def contract_lifecycles(tmp_path: Path, grid_incident_text: str) -> tuple[Path, Path]:
    """``depot`` (grid_incident) whose work orders run ``contract_order``.

    ``contract_order`` is the bundled work_order with a role of its own, ``contractor``, that
    accepts, reaches and finishes work orders; ``depot`` does not declare it.
    """
    text = (bundled_workflows_dir() / "work_order.yaml").read_text(encoding="utf-8")
    text = text.replace("name: work_order", "name: contract_order").replace(
        "  department: {title: {zh: 职能部门, en: Department}}\n",
        "  department: {title: {zh: 职能部门, en: Department}}\n"
        "  contractor: {title: {zh: 外包作业队, en: Contractor}}\n").replace(
        "    roles: [department, system]", "    roles: [department, contractor, system]")
    orders = tmp_path / "contract_order.yaml"
    orders.write_text(text, encoding="utf-8")
    depot = tmp_path / "depot.yaml"
    depot.write_text(grid_incident_text.replace("name: grid_incident", "name: depot").replace(
        "work_orders: work_order", "work_orders: contract_order"), encoding="utf-8")
    assert "contractor" not in depot.read_text(encoding="utf-8")
    return depot, orders


def test_a_role_of_the_work_order_lifecycle_alone_may_hold_a_key(
        tmp_path: Path, grid_incident_text: str) -> None:
    depot, orders = contract_lifecycles(tmp_path, grid_incident_text)
    path = keys_file(tmp_path / "keys.yaml", **{
        "ops-1": "actor: ops-1, role: centre",
        "gw-1": "actor: gw-1, role: grid_worker",  # depot's role, not the work orders': fits
        "crew-1": "actor: crew-1, role: contractor, department: water"})
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        engine.deploy(load_definition(orders))  # deployed by the host, served through depot
        # main: KeyNotValid "role 'contractor' is not a role of the served lifecycle(s) depot"
        app = create_app(engine, api_keys=load_api_keys(path), lifecycles=[str(depot)])
        assert app.state.lifecycles == ("depot",)
        keys = {"k-ops": ApiKey(actor="ops-1", role="centre"),
                "k-crew": ApiKey(actor="crew-1", role="contractor", department="water")}
        with running(create_app(engine, api_keys=keys, lifecycles=[str(depot)])) as url, \
                httpx.Client(base_url=url, timeout=30) as client:
            ops, crew_h = {"X-API-Key": "k-ops"}, {"X-API-Key": "k-crew"}
            made = client.post("/tickets", json={"fields": {"category": "blocked_drain"}},
                               headers=ops)
            assert made.status_code == 201, made.text
            tid = made.json()["id"]
            assert client.post(f"/tickets/{tid}/dispatch", json={}, headers=ops
                               ).status_code == 200
            seen = client.get(f"/tickets/{tid}/work-orders", headers=crew_h).json()
            (order,) = seen["work_orders"]  # water's only, not sanitation's
            assert order["department"] == "water"
            for trigger, state in (("accept", "accepted"), ("finish", "done")):
                fired = client.post(f"/tickets/{order['id']}/triggers/{trigger}", json={},
                                    headers=crew_h)
                assert (fired.status_code, fired.json()["state"]) == (200, state), fired.text
            assert engine.history(order["id"])[-1].actor == "crew-1"

        wrong = keys_file(tmp_path / "wrong.yaml", **{
            "crew-2": "actor: crew-2, role: contractor, department: watr"})
        with pytest.raises(KeyNotValid) as caught:
            create_app(engine, api_keys=load_api_keys(wrong), lifecycles=[str(depot)])
        (problem,) = caught.value.problems
        assert ("department 'watr' is not declared by the served lifecycle(s) depot (work "
                "orders: contract_order)") in problem
    finally:
        engine.stop()


def test_a_role_no_lifecycle_declares_is_still_refused_with_work_orders_counted(
        tmp_path: Path) -> None:
    path = keys_file(tmp_path / "keys.yaml", **{"x-1": "actor: x-1, role: contractor"})
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        with pytest.raises(KeyNotValid) as caught:
            create_app(engine, api_keys=load_api_keys(path))
        assert ("role 'contractor' is not a role of the served lifecycle(s) grid_incident "
                "(work orders: work_order)") in str(caught.value)
        # the bundled work_order is read, not deployed, at start: the first dispatch does it;
        # and a refused start deploys nothing, the served grid_incident neither (it did)
        assert [v.name for v in engine.versions()] == []
    finally:
        engine.stop()


# -- 4. a work-order lifecycle nobody has: refused at start, not at the first dispatch -------


def test_serving_a_lifecycle_whose_work_order_lifecycle_is_missing_is_refused_at_start(
        tmp_path: Path, grid_incident_text: str) -> None:
    depot, orders = contract_lifecycles(tmp_path, grid_incident_text)
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        # main: the app started, and the first dispatch of a routed ticket failed on
        # UnknownDefinition 'contract_order'
        with pytest.raises(ConfigurationError) as caught:
            create_app(engine, api_keys={}, lifecycles=[str(depot)])
        text = str(caught.value)
        assert "lifecycle 'depot' sends its work orders to lifecycle 'contract_order'" in text
        assert "--lifecycle contract_order.yaml" in text
        # served together, or deployed first by the host: it starts
        assert create_app(engine, api_keys={}, lifecycles=[str(depot), str(orders)]
                          ).state.lifecycles == ("depot", "contract_order")
    finally:
        engine.stop()
    keys = keys_file(tmp_path / "keys.yaml", **{"ops-1": "actor: ops-1, role: centre"})
    # (a free port: the port is checked before the database is opened for this check)
    refused = cli("serve", "--api-keys", str(keys), "--db", str(tmp_path / "serve.sqlite"),
                  "--port", str(free_port()), "--lifecycle", str(depot))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "routing.work_orders" in refused.stderr
    assert "Traceback" not in refused.stderr
