"""What a new user ran into: hangs on stop, tracebacks on bad input, data lost on a failed run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from engine import Actor, Engine, Registry, VirtualClock, parse_definition

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "workflows" / "grid_incident.yaml"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_engine_start_stop_never_hangs(tmp_path: Path) -> None:
    # APScheduler's shutdown(wait=True) used to deadlock with a wake-up re-arming itself.
    script = textwrap.dedent(f"""
        from engine import Actor, Engine
        for i in range(40):
            with Engine({str(tmp_path / 'a.sqlite')!r}) as eng:
                eng.report("grid_incident", {{"category": "drain"}},
                           actor=Actor("gw", "centre"))
        print("done")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_validate_reports_non_utf8_and_recursive_aliases_without_traceback(
        tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.yaml"
    text = BUNDLED.read_text(encoding="utf-8")
    gbk.write_bytes(text.encode("gbk"))
    first_chinese = next(i for i, line in enumerate(text.splitlines(), 1) if not line.isascii())
    rec = tmp_path / "rec.yaml"
    rec.write_text("a: &a [*a]\n")
    done = _cli("validate", str(gbk), str(rec), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert (f"{gbk}:{first_chinese}: <document>: the file is not UTF-8 text (byte 0xcd at line "
            f"{first_chinese}); save it as UTF-8") in done.stdout
    assert (f"{rec}:1: a[0]: an alias refers to a node that contains it (a recursive alias)"
            in done.stdout)


def test_inspecting_a_missing_database_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    done = _cli("tickets", "--db", "typo.sqlite", cwd=tmp_path)
    assert done.returncode == 1
    assert "no database at typo.sqlite" in done.stderr
    assert not (tmp_path / "typo.sqlite").exists()
    bad = _cli("tickets", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/x", cwd=tmp_path)
    assert bad.returncode == 1
    assert "cannot open database" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_replay_that_fails_its_checks_leaves_the_database_alone(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    with (REPO / "adapters/replay/data/boston311_sample.csv").open(encoding="utf-8") as f:
        good.write_text("".join(f.readline() for _ in range(4)), encoding="utf-8")
    first = _cli("replay", "--data", str(good), "--db", "a.sqlite", "--json", cwd=tmp_path)
    assert json.loads(first.stdout)["tickets"] == 3
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("case_enquiry_id,open_dt\n1,2015-01-01 00:00:00\n", encoding="utf-8")
    second = _cli("replay", "--data", str(nocol), "--db", "a.sqlite", cwd=tmp_path)
    assert second.returncode == 1
    assert "named by mapping 'boston311' are not in the file" in second.stderr
    listed = _cli("tickets", "--db", "a.sqlite", cwd=tmp_path)
    assert listed.stdout.count("grid_incident v1") == 3


def test_stored_tickets_can_be_read_without_the_host_callbacks(tmp_path: Path) -> None:
    text = BUNDLED.read_text(encoding="utf-8").replace(
        "    dest: closed\n    roles: [centre]\n",
        "    dest: closed\n    roles: [centre]\n    guards: [verified]\n")
    registry = Registry()
    registry.guard("verified")(lambda ctx: True)
    host = Engine(tmp_path / "g.sqlite", clock=VirtualClock(), registry=registry)
    host.deploy(parse_definition(text))
    host.report("grid_incident", {"category": "x"}, actor=Actor("g", "centre"),
                ticket_id="T1")
    host.stop()
    reader = Engine(tmp_path / "g.sqlite", clock=VirtualClock())  # no registry
    assert reader.get("T1").state == "reported"
    assert [h.trigger for h in reader.history("T1")] == ["report"]
    reader.stop()
