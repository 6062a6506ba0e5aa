"""The root ``gridwhistle`` Typer app and what its command modules share.

Exit codes: 0 success; 1 the input was refused (an invalid lifecycle or mapping, an unknown
ticket, a failed command); 2 wrong usage (Click's own).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="gridwhistle",
    help="Gridwhistle: run grid-governance tickets through YAML lifecycles.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_REPLAY_DB = "gridwhistle-replay.sqlite"
"""Where ``replay`` writes, and where the inspection commands look, unless ``--db`` says."""


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 1."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def parse_instant(text: str, zone: Any) -> datetime:
    """Parse an ISO 8601 instant; one without a zone is taken in ``zone``. Returns aware UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant") from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
