"""The root ``gridwhistle`` Typer app and what its command modules share.

Exit codes: 0 success; 1 the input was refused (an invalid lifecycle or mapping, an unknown
ticket, a failed command); 2 wrong usage (Click's own).
"""

from __future__ import annotations

import inspect
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

if TYPE_CHECKING:
    from engine import Clock, Database, DefinitionError, Engine
    from engine.evidence import BlobStore


class HelpGroup(TyperGroup):
    """A command group whose help lists each command's whole summary, wrapped, never cut.

    ``--help`` is Click's own (``rich_markup_mode=None``, Typer's documented switch): its
    text wraps to the terminal and a word longer than the column is broken across lines, not
    cut with "…" as Typer's Rich panels do (at 80 columns ``GRIDWHISTLE_WEBHOOK_SECRET_<NAME>``
    came out ``GRIDWHISTLE_WEBHOOK_SECR…``, and Typer has no public setting for it). Click
    cuts a command's summary in a group's list to one line with "..."; this list gives the
    first paragraph of each command's help whole, wrapped like the rest (the group class is
    Typer's ``cls=`` setting; ``format_commands``, ``section`` and ``write_dl`` are Click's
    help-formatting API, which Typer vendors since 0.26: hence ``Any`` for its types).
    """

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Write the ``Commands:`` section: name, and the first paragraph of its help."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            rows.append((name, _summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def bad_option(option: str, message: str) -> NoReturn:
    """Refuse an option's value as Click does (exit 2): ``Invalid value for '--x': ...``."""
    raise typer.BadParameter(message, param_hint=[option])


def _summary(command: Any) -> str:
    """The command's ``short_help``, else the first paragraph of its help, on one line."""
    text = command.short_help or (command.help or "").partition("\f")[0]
    first = inspect.cleandoc(text).split("\n\n", 1)[0]
    summary = " ".join(first.split())
    return f"(deprecated) {summary}" if command.deprecated else summary


app = typer.Typer(
    name="gridwhistle",
    help="Gridwhistle: run grid-governance tickets through YAML lifecycles.",
    no_args_is_help=True,
    add_completion=False,
    cls=HelpGroup,
    rich_markup_mode=None,  # Click's help and errors, for every command (see HelpGroup)
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


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 deadline``, ``2 deadlines`` (``many``: the plural when it is not ``word + s``)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def file_error(exc: OSError, what: str, *, make: str = "") -> str:
    """One line for a file that cannot be read or written, naming the file and the cause.

    Args:
        exc: the error of ``open`` / ``read_text``.
        what: what the file is (``keys file``).
        make: for a missing file, how to make one (appended after ``; ``).
    """
    from engine import FileNotReadable  # the engine's words for it (by errno: also for its own)

    return str(FileNotReadable(what, exc.filename if exc.filename is not None else "?", exc,
                               make=make))


def problems_text(exc: DefinitionError) -> str:
    """A file's problems (``file:line: field: message``, one a line) headed by what it is.

    What the file is comes from the error's ``kind`` (``1 problem in webhooks file
    hooks.yaml; fix it and try again:``; a lifecycle, mapping, keys or webhooks file).
    """
    count = len(exc.problems)
    return "\n".join([f"{plural(count, 'problem')} in {exc.what()}; fix "
                      f"{'it' if count == 1 else 'them'} and try again:",
                      *(f"  {p}" for p in exc.problems)])


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


def creates_database(db: str) -> bool:
    """Whether opening ``--db`` with ``create=True`` makes a new SQLite file.

    False for a file that exists, for in-memory SQLite and for other databases (a server's
    database is not created by Gridwhistle).
    """
    path = _sqlite_file(db)
    return path is not None and not path.exists()


def _read_only_filesystem(path: Path) -> bool:
    """Whether ``path`` (an existing file or folder) is on a file system mounted read-only."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:  # pragma: no cover - Windows
        return False
    try:
        return bool(statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _why_not_writable(path: Path) -> str | None:
    """Why SQLite cannot write the database file ``path`` (or create it), or None if it can.

    Writing a SQLite file also needs its folder writable (the ``-wal`` and ``-shm`` files beside
    it), unless both already exist.
    """
    folder = path.parent
    if _read_only_filesystem(path if path.exists() else folder):
        return "it is on a read-only file system"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is not writable (check its permissions and owner)"
    sidecars = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    if not all(f.exists() for f in sidecars) and not os.access(folder, os.W_OK):
        return (f"its folder {folder} is not writable (SQLite keeps {path.name}-wal and "
                f"{path.name}-shm beside it)")
    return None


def _read_only_url(path: Path) -> str:
    """A SQLite URI that opens ``path`` for reading only, even on a read-only file system.

    On a read-only file system SQLite cannot create the ``-shm`` file a WAL database needs
    even to read: with no write-ahead log left to read, the file is opened ``immutable``.
    """
    from urllib.parse import quote

    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    immutable = _read_only_filesystem(path) and not pending
    return (f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro"
            + ("&immutable=1" if immutable else "") + "&uri=true")


def check_database_path(db: str, *, create: bool, write: bool) -> str:
    """Refuse a ``--db`` SQLite path that cannot serve the command, in one clear line.

    Args:
        db: a SQLite file or a SQLAlchemy URL (only SQLite files are checked).
        create: the command may create a missing file (``replay``, ``serve``, ``db upgrade``).
        write: the command writes to the database.

    Returns:
        The URL (or path) to open: ``db`` itself, or for a command that only reads a file it
        cannot write, a read-only SQLite URI (see :func:`_read_only_url`).
    """
    path = _sqlite_file(db)
    if path is None:
        return db
    if path.is_dir():
        fail(f"{db} is a directory, not a database file; give a file's path with --db "
             f"(e.g. {path / 'gridwhistle.sqlite'})")
    if not path.exists():
        if not create:
            fail(f"no database at {db}; create one with `gridwhistle db upgrade --db {db}` "
                 "(or fill one with `gridwhistle replay`), or check the --db option")
        if not path.parent.is_dir():
            fail(f"cannot create database {db}: the folder {path.parent} does not exist; "
                 "create it or check the --db option")
        why = _why_not_writable(path)
        if why is not None:
            fail(f"cannot create database {db}: {why}; give a --db in a writable folder")
        return db
    if not path.is_file():
        fail(f"{db} is not a regular file; give a SQLite database file with --db")
    if not os.access(path, os.R_OK):
        fail(f"cannot read database {db}: permission denied (check its permissions and owner)")
    why = _why_not_writable(path)
    if why is None:
        return db
    if write:
        fail(f"cannot write database {db}: {why}; copy it to a writable place, or fix the "
             "mount or permissions")
    return _read_only_url(path)


def open_database(db: str, *, create: bool = False, tables: bool = True,
                  write: bool = True) -> Database:
    """Open ``--db`` the one way every command does; exit 1 with one clear line if it cannot.

    Args:
        db: a SQLite file or a SQLAlchemy URL.
        create: make the database (a new SQLite file, Gridwhistle's tables) if it is missing;
            only for commands that create data (``replay``, ``serve``). Otherwise a missing
            SQLite file is refused before anything touches it, so a mistyped ``--db`` never
            leaves an empty file behind.
        tables: require Gridwhistle's tables (every command but ``db current/revision``).
        write: the command writes. A command that only reads (``write=False``) opens a SQLite
            file it may not write (a read-only file system, a file of another user) read-only;
            one that writes is refused with the reason.

    Returns:
        The open :class:`~engine.Database` (close it, or the engine built on it, when done).
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from engine import Database, GridwhistleError

    target = check_database_path(db, create=create, write=write or create)
    path = _sqlite_file(db)
    if path is not None and create and not path.exists():
        err_console.print(f"note: no database at {db}: creating it", highlight=False)
    try:
        database = Database(target, create=create)
        found = inspect(database.engine).has_table("gw_tickets")
    except GridwhistleError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    except SQLAlchemyError as exc:
        fail(f"cannot open database {db}: {database_error(exc)}"
             + ("; check the file" if path is not None
                else "; check the path or URL and that the server is running"))
        raise  # unreachable
    if tables and not found:
        database.close()
        fail(f"{db} holds no Gridwhistle tables; create them with "
             f"`gridwhistle db upgrade --db {db}`, or check the --db option")
    return database


def database_error(exc: BaseException) -> str:
    """The first line of a database error's own message (the driver's, not SQLAlchemy's)."""
    reason = getattr(exc, "orig", None) or exc
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__


def open_engine(db: str, *, create: bool = False, events: bool = True,
                clock: Clock | None = None, evidence_store: str | BlobStore | None = None,
                write: bool = True) -> Engine:
    """An :class:`~engine.Engine` on ``--db`` opened by :func:`open_database`.

    Args:
        db: a SQLite file or a SQLAlchemy URL.
        create: see :func:`open_database`.
        events: write outbox events for commands (off for pure reads).
        clock: the engine's clock (default a :class:`~engine.VirtualClock`: reads and
            one-off commands do not fire deadlines on their own).
        evidence_store: where evidence files are stored, or the store itself (default: the
            engine's).
        write: see :func:`open_database` (False: the command only reads).
    """
    from engine import Engine, GridwhistleError, VirtualClock

    database = open_database(db, create=create, write=write)
    try:
        return Engine(database, clock=clock or VirtualClock(), events=events,
                      evidence_store=evidence_store)
    except GridwhistleError as exc:
        database.close()
        fail(str(exc))
        raise  # unreachable: fail() exits


def parse_instant(text: str, zone: Any, *, option: str) -> datetime:
    """Parse an ISO 8601 instant; one without a zone is taken in ``zone``. Returns aware UTC.

    Args:
        text: the option's value.
        zone: the zone of an instant written without one.
        option: the option it is the value of (``--until``), named in the refusal.

    Raises:
        typer.BadParameter: not an instant (exit 2), said of ``option``.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant (e.g. 2024-05-01T08:00)",
                                 param_hint=[option]) from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
