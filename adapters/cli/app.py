"""The root ``gridwhistle`` Typer app and what its command modules share.

Exit codes: 0 success; 1 the input was refused (an invalid lifecycle or mapping, an unknown
ticket, a failed command); 2 wrong usage (Click's own).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from engine import Engine

app = typer.Typer(
    name="gridwhistle",
    help="Gridwhistle: run grid-governance tickets through YAML lifecycles.",
    no_args_is_help=True,
    add_completion=False,
)
# Piped output is not cut to 80 columns: tables keep their full rows for grep and files.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)

DEFAULT_REPLAY_DB = "gridwhistle-replay.sqlite"
"""Where ``replay`` writes, and where the inspection commands look, unless ``--db`` says."""


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 1."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def open_engine(db: str) -> Engine:
    """Open an existing database for reading and commands (exit 1 with a message if absent)."""
    from engine import Database, Engine, GridwhistleError, VirtualClock
    from engine.store import to_url

    url = to_url(db)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        fail(f"no database at {db}; run `gridwhistle replay` first or give --db")
    try:
        return Engine(Database(db), clock=VirtualClock())
    except GridwhistleError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


def parse_instant(text: str, zone: Any, *, option: str | None = None) -> datetime:
    """Parse an ISO 8601 instant; one without a zone is taken in ``zone``. Returns aware UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant (e.g. 2024-05-01T08:00)",
                                 param_hint=option) from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
