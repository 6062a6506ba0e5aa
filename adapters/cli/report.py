"""``gridwhistle report``: the figures of a database's tickets, by department, level or period."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from adapters.cli.app import DEFAULT_REPLAY_DB, app, console, fail, open_engine, parse_instant
from engine import GridwhistleError


class By(StrEnum):
    """Groupings of ``gridwhistle report``."""

    all = "all"
    department = "department"
    level = "level"
    period = "period"


class Period(StrEnum):
    """Period lengths for ``--by period``."""

    day = "day"
    week = "week"
    month = "month"


class Lang(StrEnum):
    """Title languages."""

    zh = "zh"
    en = "en"


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"
    csv = "csv"


def human(value: Any, kind: str) -> str:
    """A figure for people: rates as percentages, seconds as hours, counts with separators."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "seconds":
        return f"{value / 3600:.1f} h"
    return f"{value:,}"


@app.command()
def report(
    lifecycle: Annotated[str, typer.Option(help="Lifecycle name.")] = "grid_incident",
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    since: Annotated[str | None, typer.Option(
        "--from", help="Tickets reported at or after this ISO 8601 instant (UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option(
        help="Tickets reported before this ISO 8601 instant (UTC if no zone).")] = None,
    by: Annotated[By, typer.Option(help="Group by department (work orders), level (the "
                                   "ticket's whistle level) or period.")] = By.all,
    period: Annotated[Period, typer.Option(help="Period length for --by period, in the "
                                           "lifecycle calendar's zone.")] = Period.month,
    lang: Annotated[Lang, typer.Option(help="Titles in zh or en (from the lifecycle).")
                    ] = Lang.zh,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")
                   ] = Format.table,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Figures over a lifecycle's tickets: closure, on time, times, escalations, bounces.

    Closure and on-time rates, times to dispatch, site and resolution (median, 90th
    percentile), escalations by level, bounce-backs. The same figures as ``GET /reports``
    and the console's reports page (engine/reports). JSON also carries the lifecycle's
    summary (states, levels, breaches). Exit code 1 for an unknown lifecycle or database.
    """
    from engine import build_report

    start = parse_instant(since, UTC, option="--from") if since else None
    stop = parse_instant(until, UTC, option="--until") if until else None
    engine = open_engine(db, events=False, write=False)
    try:
        s = engine.summary(lifecycle)
        rep = build_report(engine, lifecycle, by=by.value, period=period.value, since=start,
                           until=stop, lang=lang.value)
    except (GridwhistleError, ValueError) as exc:
        fail(str(exc))
        return
    finally:
        engine.stop()
    if as_json:
        fmt = Format.json
    if fmt is Format.csv:
        sys.stdout.write(rep.as_csv())
        return
    if fmt is Format.json:
        out: dict[str, Any] = {
            "lifecycle": lifecycle, "tickets": s.tickets, "transitions": s.transitions,
            "closed": s.closed, "voided": s.voided, "closure_rate": round(s.closure_rate, 4),
            "overdue": s.overdue,
            "escalations": s.escalations, "breaches": dict(sorted(s.breaches.items())),
            "by_state": dict(sorted(s.by_state.items())), "by_level": s.by_level,
            "median_close_seconds": s.median_close_seconds, "database": db,
            "report": rep.as_dict(),
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    span = f"{rep.since.isoformat() if rep.since else '…'} → " \
           f"{rep.until.isoformat() if rep.until else '…'}"
    table = Table(title=f"{rep.title} ({lifecycle}) in {db}, reported {span}")
    table.add_column("figure" if lang is Lang.en else "指标")
    for g in (rep.total, *rep.groups):
        table.add_column(g.title, justify="right")
    for f in rep.figures:
        table.add_row(f.label(lang.value),
                      *(human(g.values[f.name], f.kind) for g in (rep.total, *rep.groups)))
    console.print(table)
