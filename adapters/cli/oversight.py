"""``gridwhistle oversight``: a ticket's extension requests, suspensions and notices."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from adapters.cli.app import DEFAULT_REPLAY_DB, app, console, fail, open_engine
from engine import GridwhistleError


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@app.command("oversight")
def oversight(
    ticket_id: Annotated[str, typer.Argument(help="The ticket's (or work order's) id.")],
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a ticket's extension requests, suspensions and supervision notices (issue 11)."""
    engine = open_engine(db, write=False)
    try:
        requests = engine.time_requests(ticket_id)
        notices = engine.supervision_notices(ticket_id)
    except GridwhistleError as exc:
        fail(str(exc))
        return
    finally:
        engine.stop()
    if as_json:
        out = {"ticket": ticket_id,
               "requests": [{k: _plain(v) for k, v in asdict(r).items()} for r in requests],
               "notices": [{k: _plain(v) for k, v in asdict(n).items()} for n in notices]}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Extensions and suspensions of {ticket_id}")
    for name in ("kind", "n", "status", "deadline/cause", "department", "asked", "due",
                 "granted/ended", "reason"):
        table.add_column(name)
    for r in requests:
        settled = r.new_due or r.ended_at
        table.add_row(r.kind, str(r.n), r.status, r.deadline or r.cause or "",
                      r.department or "", r.requested_at.isoformat(),
                      (r.proposed_due.isoformat() if r.proposed_due else ""),
                      settled.isoformat() if settled else "", r.reason)
    console.print(table)
    if notices:
        sent = Table(title="Supervision notices")
        for name in ("at", "department", "actor", "reply due", "text"):
            sent.add_column(name)
        for n in notices:
            sent.add_row(n.at.isoformat(), n.department or "", n.actor,
                         n.reply_due.isoformat() if n.reply_due else "", n.text)
        console.print(sent)
