"""``gridwhistle db``: schema migrations (Alembic, shipped in ``engine/store/migrations``)."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.cli.app import (
    DEFAULT_REPLAY_DB,
    HelpGroup,
    app,
    check_database_path,
    database_error,
    fail,
    open_database,
)
from engine import Database, GridwhistleError

db_app = typer.Typer(help="Database schema: upgrade, show the revision, add a revision.",
                     no_args_is_help=True, cls=HelpGroup)
app.add_typer(db_app, name="db")

DbOption = Annotated[str, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")]


def _open(db: str) -> Database:
    """The database to upgrade: made if it does not exist (that is what upgrade is for)."""
    target = check_database_path(db, create=True, write=True)
    try:
        return Database(target, create=False)
    except GridwhistleError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


@db_app.command("upgrade")
def upgrade(
    db: DbOption = DEFAULT_REPLAY_DB,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or upgrade Gridwhistle's tables to the newest (or the given) revision.

    Run it once after installing a new Gridwhistle, before starting the engines. Downgrades
    are not supported: restore a backup instead.
    """
    from sqlalchemy.exc import SQLAlchemyError

    database = _open(db)
    try:
        before, after = database.upgrade(revision)
    except GridwhistleError as exc:
        fail(f"{exc}")
        return
    except SQLAlchemyError as exc:
        fail(f"cannot upgrade database {db}: {database_error(exc)}")
        return
    finally:
        database.close()
    if before == after:
        typer.echo(f"{db}: already at revision {after}")
    else:
        typer.echo(f"{db}: upgraded from {before or '(empty)'} to {after}")


@db_app.command("current")
def current(db: DbOption = DEFAULT_REPLAY_DB) -> None:
    """Show the database's revision and the newest one this Gridwhistle ships."""
    database = open_database(db, tables=False, write=False)
    try:
        rev = database.revision()
    finally:
        database.close()
    head = Database.newest_revision()
    note = "up to date" if rev == head else "run `gridwhistle db upgrade`"
    typer.echo(f"{db}: revision {rev or '(none)'}; newest {head} — {note}")


@db_app.command("revision")
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    db: DbOption = DEFAULT_REPLAY_DB,
) -> None:
    """Write a new revision file from the declared tables (for Gridwhistle developers).

    ``--db`` must be a database at the current newest revision (e.g. a fresh SQLite file
    after `gridwhistle db upgrade`). Review the generated file before committing it.
    """
    database = open_database(db, tables=False)
    try:
        path = database.new_revision(message)
    except GridwhistleError as exc:
        fail(f"{db}: {exc}")
        raise  # unreachable: fail() exits
    finally:
        database.close()
    typer.echo(f"wrote {path}")
