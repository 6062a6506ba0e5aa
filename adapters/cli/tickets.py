"""``gridwhistle tickets``, ``timers`` and ``history``: reading what is stored."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.app import (
    DEFAULT_REPLAY_DB,
    app,
    bad_option,
    console,
    fail,
    open_engine,
    parse_instant,
    styled,
)
from engine import Engine, GridwhistleError, UnknownValue


class TimerStatus(StrEnum):
    """The statuses ``gridwhistle timers --status`` lists (``all``: every one)."""

    pending = "pending"
    fired = "fired"
    cancelled = "cancelled"
    stale = "stale"
    all = "all"


MAX_LIMIT = 500
"""The largest page ``find_tickets`` answers (``--limit``)."""


def _open(db: str) -> Engine:
    return open_engine(db, events=False, write=False)


@app.command()
def tickets(
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    lifecycle: Annotated[str | None, typer.Option(
        help="Only this lifecycle (one deployed in the database).")] = None,
    state: Annotated[str | None, typer.Option(
        help="Only tickets in this state (one a deployed version declares).")] = None,
    level: Annotated[str | None, typer.Option(
        help="Only tickets at this level (one a deployed version declares).")] = None,
    department: Annotated[str | None, typer.Option(
        help="Only tickets whose department field is this.")] = None,
    due_within: Annotated[float | None, typer.Option(
        min=0, help="Only tickets with a pending deadline due within this many seconds of "
             "--now (or already past due).")] = None,
    now: Annotated[str | None, typer.Option(
        help="The instant --due-within counts from (ISO 8601); default: the wall clock.")
    ] = None,
    breached: Annotated[bool | None, typer.Option(
        "--breached/--not-breached", help="Only tickets with / without a deadline breach.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT,
                                       help="At most this many rows.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many rows first.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List tickets (id, lifecycle, state, level, overdue), most recently updated first.

    A --lifecycle, --state or --level that names nothing deployed is a usage error (exit 2)
    naming the ones there are, not an empty list.
    """
    from datetime import UTC

    from engine import find_tickets

    at = parse_instant(now, UTC, option="--now") if now else datetime.now(UTC)
    engine = _open(db)
    try:
        page = find_tickets(engine, lifecycle=lifecycle, state=state, level=level,
                            department=department, due_within=due_within, breached=breached,
                            now=at, limit=limit, offset=offset)
    except UnknownValue as exc:
        bad_option(f"--{exc.argument}", str(exc))
        return
    except (GridwhistleError, ValueError) as exc:
        fail(str(exc))
        return
    finally:
        engine.stop()
    if as_json:
        sys.stdout.write(json.dumps({
            "total": page.total, "limit": page.limit, "offset": page.offset,
            "items": [{"id": t.id, "lifecycle": t.lifecycle, "version": t.version,
                       "state": t.state, "level": t.level, "overdue": t.overdue,
                       "department": t.fields.get("department"),
                       "updated_at": t.updated_at.isoformat()} for t in page.items],
        }, ensure_ascii=False) + "\n")
        return
    table = Table("id", "lifecycle", "state", "level", "overdue", "updated (UTC)",
                  caption=f"{len(page.items)} of {page.total} (offset {page.offset})")
    for t in page.items:
        table.add_row(t.id, f"{t.lifecycle} v{t.version}", t.state, t.level,
                      "yes" if t.overdue else "", t.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@app.command()
def timers(
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    ticket: Annotated[str | None, typer.Option(help="Only this ticket's timers.")] = None,
    status: Annotated[TimerStatus, typer.Option(
        help="Only timers in this status (all: every status).")] = TimerStatus.pending,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only timers whose firing failed (retried with backoff).")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """List deadline timers by due time (default: the pending ones).

    A timer whose firing failed shows how often and its last error; it is retried after a
    growing delay (``lease_until``) while the other timers fire.
    """
    engine = _open(db)
    try:
        chosen = None if status is TimerStatus.all else status.value
        rows = [t for t in engine.timers(ticket, status=chosen)
                if t.failures or not failed][:limit]
    except GridwhistleError as exc:
        fail(str(exc))
        return
    finally:
        engine.stop()
    if as_json:
        sys.stdout.write(json.dumps([
            {"id": t.id, "ticket_id": t.ticket_id, "name": t.name, "state": t.state,
             "due_at": t.due_at.isoformat(), "status": t.status,
             "fired_at": t.fired_at.isoformat() if t.fired_at else None,
             "failures": t.failures, "last_error": t.last_error} for t in rows
        ]) + "\n")
        return
    table = Table("ticket", "timer", "state", "due (UTC)", "status", "fired (UTC)", "failures")
    for t in rows:
        table.add_row(t.ticket_id, t.name, t.state or "(ticket)",
                      t.due_at.isoformat(timespec="seconds"), t.status,
                      t.fired_at.isoformat(timespec="seconds") if t.fired_at else "",
                      f"{t.failures}: {t.last_error}" if t.failures else "")
    console.print(table)


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
        fail(str(exc))
        return
    finally:
        engine.stop()
    console.print(styled((ticket.id, "bold"), f" {ticket.lifecycle} v{ticket.version}: "
                         f"{ticket.state} at level {ticket.level}",
                         (" (overdue)", "red") if ticket.overdue else ""))
    table = Table("#", "at (UTC)", "kind", "trigger", "state", "level", "by", "reason")
    for h in entries:
        table.add_row(str(h.seq), h.at.strftime("%Y-%m-%d %H:%M:%S"), h.kind, h.trigger,
                      f"{h.from_state or '–'} → {h.to_state}",
                      h.to_level if h.from_level in (None, h.to_level)
                      else f"{h.from_level} → {h.to_level}",
                      f"{h.actor} ({h.role})", h.reason or "")
    console.print(table)
    if timer_rows:
        tt = Table("timer", "state", "due (UTC)", "status")
        for tm in timer_rows:
            tt.add_row(tm.name, tm.state or "(ticket)", tm.due_at.strftime("%Y-%m-%d %H:%M:%S"),
                       tm.status)
        console.print(tt)


