"""Queries: the reads the Engine answers — tickets, history, timers, versions, invariants.

Each read sees what this thread staged in an open transaction (inside a batch or an atomic
block) and, outside one, what is committed. Ids the id rule refuses are simply not found.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from engine.errors import TicketNotFound, UnknownValue
from engine.lifecycle.machine import Lifecycle
from engine.runtime.invariants import Violation, check_invariants
from engine.runtime.kernel import Kernel
from engine.runtime.model import DefinitionVersion, HistoryEntry, Ticket, Timer
from engine.store.reads import load_tickets, ticket_exists
from engine.store.tables import history, timers
from engine.validation import ticket_id_problem

__all__ = ["TIMER_STATUSES", "Queries", "must_exist"]

TIMER_STATUSES = ("cancelled", "fired", "pending", "stale")
"""Every status a timer row can have (``gw_timers.status``)."""


def must_exist(conn: Connection, ticket_id: str) -> None:
    """Raise :class:`TicketNotFound` unless the ticket is stored (or its id is invalid)."""
    if ticket_id_problem(ticket_id) is not None or not ticket_exists(conn, ticket_id):
        raise TicketNotFound(str(ticket_id))


class Queries:
    """The reads of one engine.

    Args:
        kernel: the engine's kernel.
    """

    def __init__(self, kernel: Kernel):
        self.kernel = kernel

    def get(self, ticket_id: str) -> Ticket:
        """A ticket as stored (as staged, inside this thread's transaction).

        Raises:
            TicketNotFound: no such ticket.
        """
        kernel = self.kernel
        valid = ticket_id_problem(ticket_id) is None
        if kernel.uow.active and valid:
            return kernel.handler.snapshot(kernel.handler.ticket(ticket_id))
        with kernel.db.read() as conn:
            found = load_tickets(conn, [ticket_id]) if valid else {}
            if not found:
                raise TicketNotFound(str(ticket_id))
            return kernel.handler.snapshot_row(conn, found[ticket_id][0])

    def history(self, ticket_id: str) -> list[HistoryEntry]:
        """The ticket's history, oldest first.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self.kernel.reading() as conn:
            must_exist(conn, ticket_id)
            rows = conn.execute(
                select(history).where(history.c.ticket_id == ticket_id).order_by(history.c.seq)
            ).mappings().all()
        return [
            HistoryEntry(r["seq"], r["at"], r["kind"], r["trigger"], r["from_state"],
                         r["to_state"], r["from_level"], r["to_level"], r["actor"], r["role"],
                         r["reason"], r["data"] or {})
            for r in rows
        ]

    def timers(self, ticket_id: str | None = None, *, status: str | None = None) -> list[Timer]:
        """Timers, by due time; optionally of one ticket and/or one status.

        Raises:
            TicketNotFound: ``ticket_id`` is given and no such ticket exists.
            UnknownValue: ``status`` is none of :data:`TIMER_STATUSES` (also a ValueError).
        """
        if status is not None and status not in TIMER_STATUSES:
            raise UnknownValue("status", status, TIMER_STATUSES, among="a timer can have")
        query = select(timers).order_by(timers.c.due_at, timers.c.id)
        if ticket_id is not None:
            query = query.where(timers.c.ticket_id == ticket_id)
        if status is not None:
            query = query.where(timers.c.status == status)
        with self.kernel.reading() as conn:
            if ticket_id is not None:
                must_exist(conn, ticket_id)
            return [Timer(r["id"], r["ticket_id"], r["name"], r["state"], r["due_at"],
                          r["status"], r["fired_at"], r["failures"] or 0, r["last_error"])
                    for r in conn.execute(query).mappings().all()]

    def lifecycle_versions(self, name: str | None = None) -> list[Lifecycle]:
        """Every deployed version (of lifecycle ``name``), compiled, by name then version."""
        kernel = self.kernel
        with kernel.reading() as conn:
            ids = [v.id for v in kernel.catalog.versions(conn) if name in (None, v.name)]
            return [kernel.catalog.by_id(conn, i) for i in ids]

    def versions(self) -> list[DefinitionVersion]:
        """Every deployed lifecycle version, by name then version."""
        with self.kernel.reading() as conn:
            return self.kernel.catalog.versions(conn)

    def check(self, ticket_ids: list[str] | None = None) -> list[Violation]:
        """The tickets' disagreements with their history (:mod:`engine.runtime.invariants`)."""
        kernel = self.kernel
        with kernel.reading() as conn:
            return check_invariants(conn, lambda def_id: kernel.catalog.by_id(conn, def_id),
                                    owner_of=kernel.handler.owner_of,
                                    participants=kernel.participants, ticket_ids=ticket_ids)
