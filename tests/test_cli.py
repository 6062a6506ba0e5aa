"""The gridwhistle command, run as a real subprocess: diagram, schema, report, tickets, timers,
serve, and the documented exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import Receiver, free_port, receiver

from adapters.diagrams import mermaid
from engine import Actor, Engine, VirtualClock, load_definition
from engine.definition.json_schema import lifecycle_json_schema_text

CLI = [sys.executable, "-m", "adapters.cli"]


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=check,
                          timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database with three tickets: dispatched (water), escalated to street, closed."""
    path = tmp_path / "cli.sqlite"
    engine = Engine(path, clock=VirtualClock(START))
    gw, centre, dept = Actor("gw", "centre"), Actor("ops", "centre"), Actor("w", "department")
    for tid in ("A", "B", "C"):
        engine.report("grid_incident", {"category": "noise"}, actor=gw, ticket_id=tid)
    engine.fire("A", "dispatch", actor=centre, fields={"department": "water"})
    for trig in ("dispatch", "arrive", "resolve", "close"):
        engine.fire("C", trig, actor=centre if trig in ("dispatch", "close") else dept,
                    fields={"department": "roads"} if trig == "dispatch" else None)
    engine.run_until(START + timedelta(minutes=31))  # B: dispatch_due → street, escalated
    engine.stop()
    return str(path)


def test_diagram_prints_mermaid_and_highlights_a_tickets_state(db: str) -> None:
    done = run("diagram", "grid_incident", check=True)
    assert done.stdout == mermaid(load_definition("grid_incident"))
    done = run("diagram", "grid_incident", "--highlight", "B", "--db", db, "--lang", "en",
               check=True)
    assert done.stdout.endswith("    class escalated current\n")
    assert 'state "Escalated" as escalated' in done.stdout
    dot_text = run("diagram", "grid_incident", "--format", "dot", "--state", "closed",
                   check=True).stdout
    assert dot_text.startswith("digraph lifecycle {")
    assert '"closed" [label="已结案 / Closed", peripheries=2, fillcolor="#ffd54f"' in dot_text
    bad = run("diagram", "grid_incident", "--highlight", "nope", "--db", db)
    assert (bad.returncode, bad.stderr.strip()) == (
        1, "error: ticket 'nope' does not exist; check the id")


def test_diagram_svg_needs_graphviz(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    done = run("diagram", "grid_incident", "--format", "svg", "--output", str(out))
    if shutil.which("dot", path="/usr/bin:/bin") is None:
        assert done.returncode == 1
        assert "Graphviz's `dot` program is not installed" in done.stderr
    else:
        assert done.returncode == 0
        assert "<svg" in out.read_text()


def test_schema_command_and_check(tmp_path: Path) -> None:
    assert run("schema", check=True).stdout == lifecycle_json_schema_text()
    target = tmp_path / "schema.json"
    target.write_text("{}")
    assert run("schema", "--output", str(target), "--check").returncode == 1
    run("schema", "--output", str(target), check=True)
    assert run("schema", "--output", str(target), "--check").returncode == 0


@pytest.mark.parametrize(("args", "says"), [
    (["diagram", "grid_incident", "-o", "{tmp}/no/such/folder/x.mmd"],
     "cannot write the diagram to {tmp}/no/such/folder/x.mmd: the folder {tmp}/no/such/folder "
     "does not exist; create it first or give another path"),
    (["diagram", "grid_incident", "-o", "{tmp}"],
     "{tmp} is a folder: give the diagram file's name (a path inside it)"),
    (["schema", "--output", "{tmp}/none/schema.json"],
     "cannot write the schema to {tmp}/none/schema.json: the folder {tmp}/none does not "
     "exist; create it first or give another path"),
    (["schema", "--check"], "--check compares a file with the schema: give it as --output "
     "FILE (e.g. --output workflows/schema.json)"),
])
def test_diagram_and_schema_refuse_an_output_they_cannot_write_in_one_line(
        tmp_path: Path, args: list[str], says: str) -> None:
    """main: a FileNotFoundError / IsADirectoryError traceback; ``schema --check`` without a
    file printed the schema and exited 0."""
    done = run(*[a.format(tmp=tmp_path) for a in args])
    assert (done.returncode, done.stderr.strip()) == (1, "error: " + says.format(tmp=tmp_path))
    assert "Traceback" not in done.stderr


def test_report_tickets_and_timers_as_json(db: str) -> None:
    figures = json.loads(run("report", "--db", db, "--json", check=True).stdout)
    assert {k: figures[k] for k in ("tickets", "closed", "overdue", "escalations", "breaches",
                                    "by_state")} == {
        "tickets": 3, "closed": 1, "overdue": 0,
        "escalations": {"street": 1, "district": 0, "city": 0},
        "breaches": {"dispatch_due": 1},
        "by_state": {"closed": 1, "dispatched": 1, "escalated": 1}}

    def ids(*args: str) -> list[str]:
        page = json.loads(run("tickets", "--db", db, "--json", *args, check=True).stdout)
        return sorted(t["id"] for t in page["items"])

    assert ids() == ["A", "B", "C"]
    assert ids("--state", "escalated") == ["B"]
    assert ids("--level", "community", "--department", "water") == ["A"]
    assert ids("--breached") == ["B"]
    assert ids("--not-breached") == ["A", "C"]
    assert ids("--due-within", "3600", "--now", "2024-05-01T09:30:00Z") == ["A"]  # arrival 10:00
    assert ids("--limit", "1", "--offset", "0") == ["B"]  # updated last (08:30)
    assert ids("--limit", "1", "--offset", "2") == ["C"]  # A and C at 08:00, then by id

    pending = json.loads(run("timers", "--db", db, "--json", check=True).stdout)
    # state and ticket deadlines, and the street level's budget (SLA timers are named sla:...)
    assert [(t["ticket_id"], t["name"], t["due_at"]) for t in pending
            if not t["name"].startswith("sla:")] == [
        ("A", "arrival_due", "2024-05-01T10:00:00+00:00"),
        ("B", "ladder:street", "2024-05-03T08:30:00+00:00")]
    fired = json.loads(run("timers", "--db", db, "--json", "--status", "fired").stdout)
    assert [(t["ticket_id"], t["name"]) for t in fired] == [("B", "dispatch_due")]


def test_exit_codes() -> None:
    assert run("tickets", "--limit", "0").returncode == 2  # a bad option value (Click's)
    assert run("tickets", "--no-such-option").returncode == 2  # wrong usage
    assert run("diagram").returncode == 2
    assert run("report", "--lifecycle", "nope", "--db", "/tmp/none.sqlite").returncode == 1


def test_serve_runs_the_api_and_delivers_webhooks(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    key = run("keys", "add", str(keys), "--actor", "ops-1", "--role", "centre",
              check=True).stdout.strip()
    port = free_port()
    with receiver([]) as hook:
        proc = subprocess.Popen([*CLI, "serve", "--api-keys", str(keys), "--db",
                                 str(tmp_path / "serve.sqlite"), "--port", str(port),
                                 "--webhook", f"ops={hook.url}"],
                                env={**os.environ, "GRIDWHISTLE_WEBHOOK_SECRET_OPS":
                                     "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _drive_served_api(f"http://127.0.0.1:{port}", hook, key)
        finally:
            proc.terminate()
            # uvicorn finishes in-flight requests, then re-raises the signal it caught
            assert proc.wait(timeout=30) in (0, -15)
    bad = run("serve", "--api-keys", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 1


def _drive_served_api(url: str, hook: Receiver, key: str) -> None:
    for _ in range(600):  # up to 30 s on a loaded machine
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    r = httpx.post(f"{url}/tickets", json={"fields": {"category": "noise"}},
                   headers={"X-API-Key": key})
    assert (r.status_code, r.json()["state"]) == (201, "reported")
    assert len(httpx.get(f"{url}/open311/v2/requests.json").json()) == 1
    for _ in range(600):  # the worker polls every second
        if hook.received:
            break
        time.sleep(0.05)
    assert [(e["body"]["type"], e["body"]["ticket_id"]) for e in hook.received] == [
        ("ticket.reported", r.json()["id"])]
