"""``gridwhistle replay``: the main job."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from adapters.cli.app import (
    DEFAULT_REPLAY_DB,
    app,
    console,
    err_console,
    fail,
    open_database,
    parse_instant,
    plural,
    styled,
)
from adapters.replay import ownership
from adapters.replay.ownership import Holding
from adapters.replay.progress import ProgressLines, ReplayProgress
from adapters.replay.replayer import ReplayOutcome
from engine import Database, Engine, GridwhistleError, VirtualClock

PROGRESS_EVERY = 5.0
"""Seconds between two progress lines when stderr is not a terminal."""


@contextmanager
def progress_display(quiet: bool) -> Iterator[Callable[[ReplayProgress], None] | None]:
    """The replay's progress callback (or None).

    A Rich bar on a terminal, a line every 5 s otherwise (both on stderr), none when ``quiet``.
    """
    if quiet:
        yield None
        return
    if not err_console.is_terminal:
        yield ProgressLines(lambda line: err_console.print(line, highlight=False,
                                                           soft_wrap=True),
                            every=PROGRESS_EVERY)
        return
    with Progress(TextColumn("[bold]replaying"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("rows, {task.fields[rate]} tickets/s"), TimeElapsedColumn(),
                  TextColumn("left"), TimeRemainingColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("replay", total=None, rate="0")

        def show(p: ReplayProgress) -> None:
            bar.update(task, completed=p.rows_read, total=p.rows_total,
                       rate=f"{p.tickets_per_s:,.0f}")

        yield show


@app.command()
def replay(
    workflow: Annotated[str, typer.Option(help="Lifecycle: bundled name or YAML path. "
                                          "Default: the mapping's lifecycle.")] = "",
    data: Annotated[Path | None, typer.Option(help="CSV of service requests, best in order of "
                                              "report time (or Open311 JSON with --format "
                                              "open311-json: a file, JSON Lines, or a folder "
                                              "of pages). Default: the mapping's sample, or "
                                              "the bundled Boston 311 sample (Chicago for "
                                              "open311-json).")] = None,
    data_format: Annotated[str, typer.Option(
        "--format", help="csv (with a mapping) or open311-json (Open311 GeoReport v2 "
        "requests with notes: follow-ons become co-handling work orders)")] = "csv",
    mapping: Annotated[str, typer.Option(help="Mapping: bundled name or YAML path.")] = "boston311",
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    fresh: Annotated[bool | None, typer.Option(
        "--fresh/--append", show_default=False,
        help="--fresh empties the database's Gridwhistle tables first, whatever they hold; "
        "--append keeps them and adds to them. Default: empty a database that holds only "
        "earlier replays' tickets, add to one that holds none, and refuse one that holds "
        "other tickets.")
    ] = None,
    source_tz: Annotated[str | None, typer.Option(
        help="Zone of timestamps written without one. Default: the mapping's timezone, "
        "else UTC.")] = None,
    until: Annotated[str | None, typer.Option(help="Stop the clock at this ISO 8601 instant; "
                                              "tickets still open are judged then.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress (no bar, no lines).")
                     ] = False,
    encoding: Annotated[str, typer.Option(
        help="Text encoding of the data file(s): utf-8 (a byte-order mark is allowed) or any "
        "codec Python knows, e.g. gb18030 for exports from Chinese systems and Excel (it "
        "reads GBK too), utf-16, big5, cp1252.")] = "utf-8",
) -> None:
    """Replay service requests through a lifecycle on a virtual clock and report.

    With no options: the bundled grid_incident lifecycle on the bundled Boston 311 sample.
    With --format open311-json: the bundled Chicago requests with their follow-ons.
    """
    if data_format not in ("csv", "open311-json"):
        raise typer.BadParameter(f"unknown format {data_format!r}; use csv or open311-json",
                                 param_hint="--format")
    from adapters.replay import (
        BUNDLED_SAMPLE,
        build_report,
        load_mapping,
        preflight,
        print_report,
    )
    from adapters.replay import replay as run_replay

    try:
        zone = ZoneInfo(source_tz) if source_tz else None
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone {source_tz!r}",
                                 param_hint="--source-tz") from None
    from adapters.replay.encoding import UnknownEncoding, text_codec
    from adapters.replay.open311 import (
        CHICAGO_SAMPLE,
        check_dump,
        preflight_lifecycle,
        replay_open311,
    )

    try:
        text_codec(encoding)
    except UnknownEncoding as exc:
        raise typer.BadParameter(str(exc), param_hint="--encoding") from None
    open311 = data_format == "open311-json"
    try:
        spec = None if open311 else load_mapping(mapping)
    except (GridwhistleError, ValueError, OSError) as exc:
        fail(str(exc))
        return
    stop = None
    if until:
        stop = parse_instant(until, zone or (spec.zone() if spec else UTC), option="--until")
    if data is None:
        data = CHICAGO_SAMPLE if open311 else Path(spec.sample) if spec and spec.sample \
            else BUNDLED_SAMPLE
    if not (data.is_dir() if open311 else data.is_file()) and not data.is_file():
        fail(f"no data file at {data}")
    lifecycle = workflow or (spec.lifecycle if spec is not None else "grid_incident")
    try:
        # before anything is emptied: the whole input reads as the replay will read it
        if spec is not None:  # the lifecycle, the mapping, every record of the CSV
            preflight(data, spec, lifecycle, encoding=encoding)
        else:  # the lifecycle has what the replay fires; every file decodes and parses
            preflight_lifecycle(lifecycle)
            check_dump(data, encoding)
        database = open_database(db, create=True)
        held = _emptiable(database, db, fresh)
        empty = fresh is True or (fresh is None and held.marked and held.tickets > 0)
        if empty:
            database.drop_all()
        engine = Engine(database, clock=VirtualClock(datetime(1970, 1, 1, tzinfo=UTC)))
        ownership.begin(database, held, emptied=empty, data=str(data), lifecycle=lifecycle)
    except (GridwhistleError, ValueError, OSError) as exc:
        fail(str(exc))
        return
    before = 0 if empty else held.tickets
    after: int | None = None
    try:
        with progress_display(quiet) as progress:
            outcome: ReplayOutcome
            if spec is None:
                outcome = replay_open311(engine, data, lifecycle=lifecycle,
                                         until=stop, progress=progress, encoding=encoding)
            else:
                outcome = run_replay(engine, data, spec, lifecycle=workflow or None,
                                     source_tz=zone, until=stop, progress=progress,
                                     encoding=encoding)
        after = _end(database)
        report = build_report(engine, outcome, spec)
    except (GridwhistleError, ValueError, OSError) as exc:
        fail(str(exc))
        return
    finally:
        if after is None:  # stopped on an error (or Ctrl-C): what it wrote is the replay's
            _end(database)
        engine.stop()
    report["database"] = db
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    else:
        print_report(report, console)
        if report["events_after_until"] and not report["events_applied"]:
            console.print(f"Every one of the {report['events_after_until']:,} events is later "
                          f"than --until {until}: nothing was replayed.")
        console.print(styled("Tickets and their history are in ", (db, "bold"),
                             f"; try `gridwhistle tickets --db {db}`."))
    if outcome.rejections and after is not None and after <= before:  # no ticket written
        first = outcome.rejections[0]
        rows = outcome.rows - outcome.repeats
        fail(f"the replay rejected every one of its {plural(rows, 'row')} and wrote no ticket "
             f"into {db} (the first, row {first.row:,}"
             + (f", {first.ticket_id}" if first.ticket_id else "")
             + f": {first.reason}); the report lists each rejected row with its reason: fix "
             "what they say (the data, the mapping or the lifecycle) and replay again")


def _emptiable(database: Database, db: str, fresh: bool | None) -> Holding:
    """What ``database`` holds; refuse it when the replay would empty other tickets.

    ``fresh`` is the option: None (neither given: refused when it holds tickets no replay
    wrote), True (an explicit --fresh: on PostgreSQL, other sessions on the database are
    named first) or False (--append: nothing is emptied).
    """
    held = ownership.holding(database)
    if fresh is None:
        try:
            ownership.refuse(db, held)
        except GridwhistleError:
            database.close()
            raise
    elif fresh and held.tickets:
        sessions = ownership.other_sessions(database)
        if sessions:
            err_console.print(
                f"note: {plural(sessions, 'other session')} connected to the database of "
                f"{db} (pg_stat_activity): if a `gridwhistle serve` or another engine uses "
                "these tables, it will see them emptied and then the replay's tickets; "
                f"emptying its {plural(held.tickets, 'ticket')} (--fresh)", highlight=False)
    return held


def _end(database: Database) -> int | None:
    """Record that the replay has ended (best effort); the tickets the database now holds."""
    try:
        return ownership.end(database)
    except Exception:  # the database failed: the record stays "running", and says so later
        return None


