"""Moving running tickets to another version of their lifecycle.

``Engine.deploy`` keeps every version (by content digest) and running tickets stay on the
version they were reported on. An administrator who wants chosen tickets to follow a new
version moves them with :meth:`Engine.migrate` (``gridwhistle migrate``). For each ticket, in
one transaction with the others:

* its state becomes ``state_map.get(state, state)``, which must exist in the new version; its
  level must exist there, and its fields must satisfy the new field declarations;
* its pending timers are cancelled and its deadlines recomputed under the new version:
  ``after`` deadlines of the (mapped) state count from when the ticket entered its state;
  ticket deadlines (``stop_in``) that still run count from the report (``after``) or take their
  field (``at_field``); a ticket deadline already breached is not started again. A recomputed
  deadline already in the past falls due at the next ``run_due``;
* a history row of kind ``migration`` (trigger ``migrate``) records the versions, the state
  change and the new deadlines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from engine.lifecycle.machine import Lifecycle
from engine.runtime.fields import check_fields
from engine.store.tables import history, tickets, timers

__all__ = ["plan_migration"]

_ENTRY_KINDS = ("report", "transition", "migration")

MOVE_TICKET = (
    update(tickets)
    .where(tickets.c.id == bindparam("b_id"), tickets.c.row_version == bindparam("b_version"))
    .values(definition_id=bindparam("b_def"), state=bindparam("b_state"),
            row_version=bindparam("b_new_version"),
            updated_at=bindparam("b_now", type_=tickets.c.updated_at.type))
)
"""Move a ticket to another definition version (optimistic, like every ticket update)."""

CANCEL_ALL = (
    update(timers)
    .where(timers.c.ticket_id == bindparam("b_id"), timers.c.status == "pending")
    .values(status="cancelled")
)


def plan_migration(
    conn: Connection, row: Any, old: Lifecycle, new: Lifecycle, state_map: dict[str, str],
    now: datetime,
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Work out one ticket's move: ``(new state, timer rows to create, problems)``.

    Args:
        conn: the transaction's connection (reads the ticket's history and timers).
        row: the ticket's ``gw_tickets`` row.
        old: the ticket's current lifecycle version.
        new: the target lifecycle version.
        state_map: old state → new state; unmapped states keep their name.
        now: the migration instant (aware UTC).

    An empty ``problems`` list means the move is possible.
    """
    tid = row["id"]
    state = row["state"]
    dest = state_map.get(state, state)
    problems: list[str] = []
    if dest not in new.spec.states:
        problems.append(f"state {dest!r} does not exist in {new.name} (states: "
                        f"{', '.join(new.spec.states)})")
    if row["level"] not in new.levels:
        problems.append(f"level {row['level']!r} does not exist in {new.name}")
    _, errors = check_fields(new.spec.fields, row["fields"], require=True)
    problems += [f"field {k}: {v}" for k, v in sorted(errors.items())]
    if problems:
        return dest, [], problems

    rows = conn.execute(
        select(history.c.kind, history.c.at).where(history.c.ticket_id == tid)
        .order_by(history.c.seq)
    ).all()
    entered = next((r.at for r in reversed(rows) if r.kind in _ENTRY_KINDS), row["created_at"])
    breached = set(conn.execute(
        select(timers.c.name).where(timers.c.ticket_id == tid, timers.c.state.is_(None),
                                    timers.c.status.in_(("fired", "stale")))
    ).scalars())
    out: list[dict[str, Any]] = []
    for d in new.state_deadlines.get(dest, ()):
        if d.spec.after is not None:
            out.append(_timer(tid, d.name, dest, entered + d.spec.after, now))
    if dest not in new.final_states:
        for d in new.ticket_deadlines:
            if dest in (d.spec.stop_in or ()) or d.name in breached:
                continue
            if d.spec.after is not None:
                due = row["created_at"] + d.spec.after
            else:
                raw = row["fields"].get(d.spec.at_field or "")
                if raw is None:
                    continue
                due = datetime.fromisoformat(raw)
            out.append(_timer(tid, d.name, None, due, now))
    return dest, out, []


def _timer(tid: str, name: str, state: str | None, due: datetime, now: datetime
           ) -> dict[str, Any]:
    return dict(ticket_id=tid, name=name, state=state, due_at=due, status="pending",
                created_at=now, fired_at=None)
