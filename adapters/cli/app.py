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
from rich.text import Text

if TYPE_CHECKING:
    from engine import Clock, Database, Engine

app = typer.Typer(
    name="gridwhistle",
    help="Gridwhistle: run grid-governance tickets through YAML lifecycles.",
    no_args_is_help=True,
    add_completion=False,
)
# Piped output is not cut to 80 columns: tables keep their full rows for grep and files.
# Everything printed is taken literally: ticket ids, reasons, CSV headers and error messages
# are data, never Rich markup (``[/x]`` crashed, ``[red]a[/red]`` printed ``a``) nor emoji
# codes (``:x:`` printed ❌). Styling is given with Text objects (:func:`styled`).
console = Console(width=None if sys.stdout.isatty() else 200, markup=False, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False, emoji=False)

DEFAULT_REPLAY_DB = "gridwhistle-replay.sqlite"
"""Where ``replay`` writes, and where the inspection commands look, unless ``--db`` says."""


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from literal parts: a string, or ``(string, style)``; nothing is read as markup."""
    return Text.assemble(*parts)


def fail(message: str) -> None:
    """Print ``error: message`` on stderr (the message literally) and exit with code 1."""
    err_console.print(styled(("error:", "bold red"), " ", message), highlight=False)
    raise typer.Exit(1)


def _sqlite_file(db: str) -> Path | None:
    """The file of a SQLite ``--db`` (None for other databases and in-memory SQLite)."""
    from engine import to_url

    url = to_url(db)
    if not url.startswith("sqlite:"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return None if path in ("", ":memory:") or path.startswith("file:") else Path(path)


def open_database(db: str, *, create: bool = False, tables: bool = True) -> Database:
    """Open ``--db`` the one way every command does; exit 1 with one clear line if it cannot.

    Args:
        db: a SQLite file or a SQLAlchemy URL.
        create: make the database (a new SQLite file, Gridwhistle's tables) if it is missing;
            only for commands that create data (``replay``, ``serve``). Otherwise a missing
            SQLite file is refused before anything touches it, so a mistyped ``--db`` never
            leaves an empty file behind.
        tables: require Gridwhistle's tables (every command but ``db current/revision``).

    Returns:
        The open :class:`~engine.Database` (close it, or the engine built on it, when done).
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from engine import Database, GridwhistleError

    path = _sqlite_file(db)
    if path is not None and not create and not path.is_file():
        fail(f"no database at {db}; create one with `gridwhistle db upgrade --db {db}` (or "
             "fill one with `gridwhistle replay`), or check the --db option")
    if path is not None and create and not path.is_file():
        err_console.print(f"note: no database at {db}: creating it", highlight=False)
    try:
        database = Database(db, create=create)
        found = inspect(database.engine).has_table("gw_tickets")
    except GridwhistleError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        fail(f"cannot open database {db}: {str(reason).strip().splitlines()[0]}; check the "
             "path or URL and that the server is running")
        raise  # unreachable
    if tables and not found:
        database.close()
        fail(f"{db} holds no Gridwhistle tables; create them with "
             f"`gridwhistle db upgrade --db {db}`, or check the --db option")
    return database


def open_engine(db: str, *, create: bool = False, events: bool = True,
                clock: Clock | None = None, evidence_store: str | None = None) -> Engine:
    """An :class:`~engine.Engine` on ``--db`` opened by :func:`open_database`.

    Args:
        db: a SQLite file or a SQLAlchemy URL.
        create: see :func:`open_database`.
        events: write outbox events for commands (off for pure reads).
        clock: the engine's clock (default a :class:`~engine.VirtualClock`: reads and
            one-off commands do not fire deadlines on their own).
        evidence_store: where evidence files are stored (default: the engine's).
    """
    from engine import Engine, GridwhistleError, VirtualClock

    database = open_database(db, create=create)
    try:
        return Engine(database, clock=clock or VirtualClock(), events=events,
                      evidence_store=evidence_store)
    except GridwhistleError as exc:
        database.close()
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
