"""Reading tickets for a command: the rows of ``gw_tickets`` and their pending timers.

The command pipeline (:mod:`engine.runtime.commands`) loads every ticket it acts on through
:func:`load_tickets`: the ticket row and its pending timers, for one ticket or many at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from engine.store import _cursor
from engine.store import statements as S
from engine.store.tables import tickets, timers

__all__ = ["load_tickets", "ticket_exists", "ticket_version"]


def load_tickets(
    conn: Connection, ids: Sequence[str]
) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The ticket rows of ``ids`` with their pending timers; ids not found are left out.

    Returns:
        ticket id → ``(gw_tickets row, [pending gw_timers rows: id, ticket_id, name, state,
        due_at, claimed_by, failures])``, instants as aware UTC datetimes.
    """
    if len(ids) == 1:
        row = _cursor.rows(conn, S.SELECT_TICKET, {"b_id": ids[0]})
        if not row:
            return {}
        return {ids[0]: (row[0], _cursor.rows(conn, S.PENDING_TIMERS, {"b_id": ids[0]}))}
    out: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        for r in conn.execute(select(tickets).where(tickets.c.id.in_(part))).mappings():
            out[r["id"]] = (dict(r), [])
        for t in conn.execute(
            select(*S.PENDING_TIMERS.selected_columns)
            .where(timers.c.ticket_id.in_(part), timers.c.status == "pending")
        ).mappings():
            if t["ticket_id"] in out:
                out[t["ticket_id"]][1].append(dict(t))
    return out


def ticket_exists(conn: Connection, ticket_id: str) -> bool:
    """Whether a ticket with this id is stored."""
    return bool(_cursor.rows(conn, S.TICKET_EXISTS, {"b_id": ticket_id}))


def ticket_version(conn: Connection, ticket_id: str) -> int | None:
    """The stored ``row_version`` of a ticket (None: no such ticket)."""
    found = _cursor.rows(conn, S.TICKET_VERSION, {"b_id": ticket_id})
    return int(found[0]["row_version"]) if found else None
