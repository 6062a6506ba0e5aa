"""The CLI's one database handling, serve --lifecycle PATH, and impact's moved breaches
(issue 11)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers import at
from typer.testing import CliRunner

from adapters.cli import app
from adapters.http import ApiKey, create_app
from engine import Actor, Engine, VirtualClock, parse_definition

RUNNER = CliRunner()
WORKFLOW = str(Path(__file__).resolve().parents[1] / "workflows" / "grid_incident.yaml")

READS = [
    ["tickets"], ["timers"], ["history", "T1"], ["report"], ["check"],
    ["impact", "--workflow", WORKFLOW], ["migrate", "--workflow", WORKFLOW],
    ["webhooks", "dead"], ["webhooks", "replay"], ["work-orders", "T1"],
    ["diagram", "grid_incident", "--highlight", "T1"], ["db", "current"],
]


def run(args: list[str]) -> tuple[int, str]:
    result = RUNNER.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))  # main: SQLAlchemy tracebacks from check/impact/migrate
    return result.exit_code, result.output


@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a[:2]))
def test_a_mistyped_db_is_one_clear_error_and_creates_nothing(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = run([*args, "--db", "typo.sqlite"])
    assert code == 1, output
    assert output.strip() == (
        "error: no database at typo.sqlite; create one with `gridwhistle db upgrade --db "
        "typo.sqlite` (or fill one with `gridwhistle replay`), or check the --db option")
    assert list(tmp_path.iterdir()) == []  # main: report, webhooks dead created a database


@pytest.mark.parametrize("args", [["tickets"], ["check"], ["impact", "--workflow", WORKFLOW],
                                  ["webhooks", "dead"]], ids=lambda a: a[0])
def test_a_file_without_our_tables_is_not_taken_for_a_database(
        args: list[str], tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
    code, output = run([*args, "--db", str(other)])
    assert code == 1
    assert f"{other} holds no Gridwhistle tables; create them with `gridwhistle db upgrade" \
        in output
    with sqlite3.connect(other) as conn:  # untouched
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    code, output = run(["check", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/x"])
    assert code == 1
    assert output.startswith("error: cannot open database postgresql+psycopg://nobody@")
    assert "Traceback" not in output


def test_db_upgrade_creates_a_database_the_reads_then_open(tmp_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = run(["db", "upgrade", "--db", "new.sqlite"])
    assert code == 0, output
    code, output = run(["tickets", "--db", "new.sqlite", "--json"])
    assert (code, output.strip()) == (0, '{"total": 0, "limit": 20, "offset": 0, "items": []}')


def test_serving_a_lifecycle_given_by_path(tmp_path: Path, grid_incident_text: str) -> None:
    path = tmp_path / "district.yaml"
    path.write_text(grid_incident_text.replace("name: grid_incident", "name: district"))
    engine = Engine(tmp_path / "s.sqlite", clock=VirtualClock())
    try:
        app_ = create_app(engine, api_keys={"k": ApiKey(actor="a", role="centre")},
                          lifecycles=[str(path)])  # main: KeyError: '/…/district.yaml'
        assert app_.state.lifecycles == ("district",)
        assert [v.name for v in engine.versions()] == ["district"]
    finally:
        engine.stop()


def test_impact_counts_a_shortened_deadline_missed_either_way_as_moved(
        engine, clock, grid_incident_text) -> None:
    gw, centre = Actor("gw", "centre"), Actor("ops", "centre")
    engine.report("grid_incident", {"category": "a"}, actor=gw, ticket_id="SLOW")
    clock.set(at(9))
    engine.fire("SLOW", "dispatch", actor=centre, fields={"department": "water"})
    shorter = parse_definition(grid_incident_text.replace("    after: PT30M\n",
                                                          "    after: PT10M\n"))
    (slow,) = engine.impact(shorter, until=at(9))
    # dispatch_due was missed at 08:30 now and would be missed at 08:10: moved, not new+gone
    assert slow.deadlines["dispatch_due"] == (at(8, 30), at(8, 10))
    assert (slow.new_breaches, slow.gone_breaches) == ((), ())
