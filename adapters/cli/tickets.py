"""``gridwhistle tickets`` and ``gridwhistle history``: reading what is stored."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.app import DEFAULT_REPLAY_DB, app, console, fail, open_engine
from engine import GridwhistleError

_open = open_engine


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
                      r[6].strftime("%Y-%m-%d %H:%M"))
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
        fail(str(exc))
        return
    finally:
        engine.stop()
    console.print(f"[bold]{ticket.id}[/] {ticket.lifecycle} v{ticket.version}: "
                  f"{ticket.state} at level {ticket.level}"
                  + (" [red](overdue)[/]" if ticket.overdue else ""))
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


