"""A fresh user's audit of the command line: text printed literally, clean errors for wrong
paths, options and files, and messages that name the real cause."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.cli import app
from engine import Actor, Engine, VirtualClock

RUNNER = CliRunner()
START = datetime(2024, 5, 1, 8, tzinfo=UTC)
ODD = "[/oops] closing tag :x: [red]a[/red]"


def run(args: list[str]) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) of one command; never a Python exception."""
    result = RUNNER.invoke(app, args, terminal_width=200)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def odd_db(tmp_path: Path) -> str:
    """A database whose ticket carries markup and emoji codes in its reason and actor."""
    path = tmp_path / "odd.sqlite"
    with Engine(path, clock=VirtualClock(START)) as eng:
        eng.report("grid_incident", {"category": "noise"}, actor=Actor("[bold]h", "centre"),
                   ticket_id="MK-1")
        eng.fire("MK-1", "void", actor=Actor("ops-1", "centre"), reason=ODD)
    return str(path)


# -- 1. text is printed literally ------------------------------------------------------------

def test_history_prints_markup_and_emoji_codes_of_a_reason_literally(odd_db: str) -> None:
    code, output = run(["history", "MK-1", "--db", odd_db])
    assert code == 0, output  # main: MarkupError traceback
    assert ODD in output
    assert "[bold]h (centre)" in output
    assert "❌" not in output


@pytest.mark.parametrize("ticket", ["[/x]", ":x:", "[red]a[/red]"])
def test_an_unknown_ticket_id_is_printed_as_given(odd_db: str, ticket: str) -> None:
    code, output = run(["history", ticket, "--db", odd_db])
    assert (code, output.strip()) == (1, f"error: ticket {ticket!r} does not exist; check the id")


def test_replay_prints_csv_headers_literally(tmp_path: Path) -> None:
    data = tmp_path / "odd.csv"
    data.write_text("a:x:b,[bold]c[/bold],:smile:\n1,2,3\n", encoding="utf-8")
    code, output = run(["replay", "--data", str(data), "--db", str(tmp_path / "r.sqlite"),
                        "--quiet"])
    assert code == 1
    assert "a:x:b" in output and "[bold]c[/bold]" in output, output
    assert "❌" not in output and "😄" not in output


def test_tables_print_cells_literally(odd_db: str) -> None:
    code, output = run(["tickets", "--db", odd_db, "--state", ":x:"])
    assert code == 0
    code, output = run(["work-orders", "MK-1", "--db", odd_db])
    assert code == 0, output
    with sqlite3.connect(odd_db) as conn:
        conn.execute("UPDATE gw_tickets SET state = '[/s] :x:'")
    code, output = run(["tickets", "--db", odd_db])
    assert "[/s] :x:" in output, output
