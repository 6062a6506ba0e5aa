"""``gridwhistle check``: verify that tickets, history and timers agree."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.cli.app import DEFAULT_REPLAY_DB, app, open_engine, plural
from engine import GridwhistleError


@app.command()
def check(
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    limit: Annotated[int, typer.Option(min=0, help="Print at most this many violations.")
                     ] = 50,
) -> None:
    """Check every ticket against its history (state, level, timers, fired deadlines).

    Exits 0 when all rules hold, 1 with the list of violations otherwise.
    """
    try:
        engine = open_engine(db, events=False, write=False)
        try:
            violations = engine.check_invariants()
        finally:
            engine.stop()
    except GridwhistleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not violations:
        typer.echo(f"{db}: ok — every ticket agrees with its history")
        return
    for v in violations[:limit]:
        typer.echo(str(v))
    more = len(violations) - limit
    typer.echo(plural(len(violations), "violation")
               + (f" ({more:,} not shown)" if more > 0 else ""))
    raise typer.Exit(1)
