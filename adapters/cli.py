"""The ``gridwhistle`` command line.

Exit codes: 0 success; 1 the input was refused (an invalid lifecycle or mapping, an unknown
ticket); 2 wrong usage (Click's own).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine import (
    Database,
    DefinitionError,
    Engine,
    GridwhistleError,
    VirtualClock,
    bundled_names,
    load_definition,
)

app = typer.Typer(
    name="gridwhistle",
    help="Gridwhistle: run grid-governance tickets through YAML lifecycles.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_REPLAY_DB = "gridwhistle-replay.sqlite"


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def _parse_instant(text: str, zone: Any) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant") from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


@app.command()
def replay(
    workflow: Annotated[str, typer.Option(help="Lifecycle: bundled name or YAML path. "
                                          "Default: the mapping's lifecycle.")] = "",
    data: Annotated[Path | None, typer.Option(help="CSV of service requests. Default: the "
                                              "bundled Boston 311 sample.")] = None,
    mapping: Annotated[str, typer.Option(help="Mapping: bundled name or YAML path.")] = "boston311",
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    fresh: Annotated[bool, typer.Option(help="Empty the database's Gridwhistle tables first "
                                        "(--append keeps them).")] = True,
    source_tz: Annotated[str, typer.Option(help="Zone of timestamps written without one.")] = "UTC",
    until: Annotated[str | None, typer.Option(help="Stop the clock at this ISO 8601 instant; "
                                              "tickets still open are judged then.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay service requests through a lifecycle on a virtual clock and report.

    With no options: the bundled grid_incident lifecycle on the bundled Boston 311 sample.
    """
    from adapters.replay import BUNDLED_SAMPLE, build_report, load_mapping, print_report
    from adapters.replay import replay as run_replay

    try:
        zone = ZoneInfo(source_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone {source_tz!r}",
                                 param_hint="--source-tz") from None
    stop = _parse_instant(until, zone) if until else None
    data = data or BUNDLED_SAMPLE
    if not data.is_file():
        _fail(f"no data file at {data}")
    try:
        spec = load_mapping(mapping)
        database = Database(db)
        if fresh:
            database.drop_all()
        clock = VirtualClock(datetime(1970, 1, 1, tzinfo=UTC))
        engine = Engine(database, clock=clock)
        quiet = as_json or not console.is_terminal
        with Progress(TextColumn("[bold]replaying"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("events"), TimeElapsedColumn(), console=err_console,
                      disable=quiet) as bar:
            task = bar.add_task("replay", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            outcome = run_replay(engine, data, spec, lifecycle=workflow or None,
                                 source_tz=zone, until=stop, progress=progress)
        report = build_report(engine, outcome, spec)
        engine.stop()
    except (GridwhistleError, ValueError) as exc:
        _fail(str(exc))
        return
    report["database"] = db
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    else:
        print_report(report, console)
        console.print(f"Tickets and their history are in [bold]{db}[/]; try "
                      f"`gridwhistle tickets --db {db}`.")


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(help="Lifecycle YAML files or bundled names.")],
) -> None:
    """Check lifecycle files; print every problem as file:line: field: message."""
    bad = 0
    for name in files:
        try:
            definition = load_definition(name)
        except DefinitionError as exc:
            bad += 1
            for problem in exc.problems:
                typer.echo(str(problem))  # one unwrapped line each, for editors and grep
        except GridwhistleError as exc:
            bad += 1
            typer.echo(f"{name}: {exc}")
        else:
            spec = definition.spec
            typer.echo(f"{definition.file}: ok — {spec.name}: {len(spec.states)} states, "
                       f"{len(spec.transitions)} transitions, {len(spec.deadlines)} deadlines")
    if bad:
        raise typer.Exit(1)


@app.command("workflows")
def list_workflows() -> None:
    """List the bundled lifecycles."""
    for name in bundled_names():
        console.print(name)


def _open(db: str) -> Engine:
    return Engine(Database(db, create=True), clock=VirtualClock())


@app.command()
def tickets(
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    state: Annotated[str | None, typer.Option(help="Only tickets in this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 20,
) -> None:
    """List tickets (id, lifecycle, state, level, overdue)."""
    from sqlalchemy import select

    from engine.store import definitions as d
    from engine.store import tickets as t

    engine = _open(db)
    query = (select(t.c.id, d.c.name, d.c.version, t.c.state, t.c.level, t.c.overdue,
                    t.c.updated_at).join(d, d.c.id == t.c.definition_id)
             .order_by(t.c.updated_at.desc()).limit(limit))
    if state:
        query = query.where(t.c.state == state)
    with engine.db.read() as conn:
        rows = conn.execute(query).all()
    table = Table("id", "lifecycle", "state", "level", "overdue", "updated (UTC)")
    for r in rows:
        table.add_row(r[0], f"{r[1]} v{r[2]}", r[3], r[4], "yes" if r[5] else "",
                      r[6].isoformat(timespec="minutes"))
    console.print(table)
    engine.stop()


@app.command()
def history(
    ticket_id: Annotated[str, typer.Argument(help="The ticket id.")],
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
) -> None:
    """Show a ticket's state and full history."""
    engine = _open(db)
    try:
        ticket = engine.get(ticket_id)
        entries = engine.history(ticket_id)
        timer_rows = engine.timers(ticket_id)
    except GridwhistleError as exc:
        _fail(str(exc))
        return
    finally:
        engine.stop()
    console.print(f"[bold]{ticket.id}[/] {ticket.lifecycle} v{ticket.version}: "
                  f"{ticket.state} at level {ticket.level}"
                  + (" [red](overdue)[/]" if ticket.overdue else ""))
    table = Table("#", "at (UTC)", "kind", "trigger", "state", "level", "by", "reason")
    for h in entries:
        table.add_row(str(h.seq), h.at.isoformat(timespec="seconds"), h.kind, h.trigger,
                      f"{h.from_state or '–'} → {h.to_state}",
                      h.to_level if h.from_level in (None, h.to_level)
                      else f"{h.from_level} → {h.to_level}",
                      f"{h.actor} ({h.role})", h.reason or "")
    console.print(table)
    if timer_rows:
        tt = Table("timer", "state", "due (UTC)", "status")
        for tm in timer_rows:
            tt.add_row(tm.name, tm.state or "(ticket)", tm.due_at.isoformat(timespec="seconds"),
                       tm.status)
        console.print(tt)


def main() -> None:
    """Entry point of the ``gridwhistle`` console script."""
    app()


if __name__ == "__main__":
    main()
