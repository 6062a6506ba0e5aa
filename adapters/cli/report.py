"""``gridwhistle report``: the figures of a database's tickets."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from adapters.cli.app import DEFAULT_REPLAY_DB, app, console, fail, open_engine
from engine import GridwhistleError


@app.command()
def report(
    lifecycle: Annotated[str, typer.Option(help="Lifecycle name.")] = "grid_incident",
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Figures over a lifecycle's tickets: states, levels, closure, overdue, escalations."""
    engine = open_engine(db, events=False)
    try:
        s = engine.summary(lifecycle)
    except GridwhistleError as exc:
        fail(str(exc))
        return
    finally:
        engine.stop()
    figures: dict[str, Any] = {
        "lifecycle": lifecycle, "tickets": s.tickets, "transitions": s.transitions,
        "closed": s.closed, "closure_rate": round(s.closure_rate, 4), "overdue": s.overdue,
        "escalations": s.escalations, "breaches": dict(sorted(s.breaches.items())),
        "by_state": dict(sorted(s.by_state.items())), "by_level": s.by_level,
        "median_close_seconds": s.median_close_seconds, "database": db,
    }
    if as_json:
        sys.stdout.write(json.dumps(figures, ensure_ascii=False) + "\n")
        return
    table = Table("figure", "value", title=f"{lifecycle} in {db}")
    for key, value in figures.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "–"
        table.add_row(key, str(value))
    console.print(table)
