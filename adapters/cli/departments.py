"""``gridwhistle work-orders``: a ticket's departments, work orders, decisions and SLA."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from adapters.cli.app import DEFAULT_REPLAY_DB, app, console, fail, open_engine
from engine import Departments, GridwhistleError


@app.command("work-orders")
def work_orders(
    ticket_id: Annotated[str, typer.Argument(help="The ticket's id.")],
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a ticket's work orders, the centre's decisions and the SLA derived from the parts."""
    engine = open_engine(db, write=False)
    try:
        depts = Departments(engine)
        orders = depts.work_orders(ticket_id)
        actions = depts.actions(ticket_id)
        sla = depts.sla(ticket_id)
    except GridwhistleError as exc:
        fail(str(exc))
        return
    finally:
        engine.stop()
    if as_json:
        out: dict[str, Any] = {
            "ticket": ticket_id,
            "work_orders": [{"id": o.id, "department": o.department, "role": o.role,
                             "state": o.state, "level": o.level, "overdue": o.overdue,
                             "fallback": o.fallback, "issued_at": o.issued_at.isoformat()}
                            for o in orders],
            "actions": [{**a, "at": a["at"].isoformat()} for a in actions],
            "sla": {"rule": sla.rule, "quorum": sla.quorum,
                    "due_at": sla.due_at.isoformat() if sla.due_at else None,
                    "met_at": sla.met_at.isoformat() if sla.met_at else None,
                    "on_time": sla.on_time},
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Work orders of {ticket_id}")
    for name in ("id", "department", "role", "state", "level", "overdue", "issued"):
        table.add_column(name)
    for o in orders:
        table.add_row(o.id, o.department, o.role + (" (fallback)" if o.fallback else ""),
                      o.state, o.level, "yes" if o.overdue else "no", o.issued_at.isoformat())
    console.print(table)
    if actions:
        decisions = Table(title="Decisions")
        for name in ("at", "kind", "actor", "reason", "data"):
            decisions.add_column(name)
        for a in actions:
            decisions.add_row(a["at"].isoformat(), a["kind"], a["actor"], a["reason"] or "",
                              json.dumps(a["data"], ensure_ascii=False))
        console.print(decisions)
    verdict = {None: "not yet", True: "on time", False: "late"}[sla.on_time]
    console.print(f"Resolution rule {sla.rule!r}: due {sla.due_at or '–'}, met "
                  f"{sla.met_at or '–'} ({verdict}).")
