"""The one writer: a change set flushed to the database, ``executemany`` per table.

Every command, fired timer, migration and department decision is decided and checked in
memory first (:mod:`engine.runtime.commands`); what it changes is collected in a
:class:`ChangeSet` and written here, after every check has passed. Three writers, one per
table family, each the only code that writes its tables:

* :class:`TicketWriter` — ``gw_tickets`` and ``gw_history``. The rule ``row_version`` = the
  ``seq`` of the ticket's last history row is kept here, once: each ticket is written once
  per flush with the version it was read at (``WHERE row_version = ?``), whatever number of
  commands changed it, and a mismatch is a :class:`~engine.errors.ConcurrencyConflict`.
  Tickets are updated in id order, so that transactions on PostgreSQL take their row locks in
  one global order and never deadlock.
* :class:`TimerWriter` — ``gw_timers``: cancellations, takes, stale marks and failures of
  stored timers (by id, or by ticket and name: at most one timer per ticket and name is
  pending), then the inserts of new ones, with the status they ended the change set in.
* :class:`RowWriter` — the participants' tables (SLA clocks, the ladder, work orders, the
  outbox, department decisions, ...): the rows each participant planned, grouped by
  statement in first-seen order.

On SQLite every statement runs on the connection's cursor (:mod:`engine.store._cursor`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from engine.errors import ConcurrencyConflict
from engine.store import _cursor
from engine.store import statements as S
from engine.store.tables import tickets

__all__ = ["ChangeSet", "RowWriter", "TicketWriter", "TimerOp", "TimerWriter", "flush"]


class TimerOp(NamedTuple):
    """One change to ``gw_timers``, in the order it was decided.

    Attributes:
        kind: ``new`` (insert ``row``), ``cancel`` (the pending timer ``name`` of ``ticket_id``;
            by ``timer_id`` when it is stored and its id known),
            ``take`` (timer ``timer_id``, still pending and claimed by ``owner``, becomes
            ``status`` — ``fired`` or ``stale`` — at ``at``), ``fail`` (timer ``timer_id``
            failed: ``failures``, ``error``; retried at ``at``).

    A ``NamedTuple``, not a frozen dataclass: as immutable, and built in a third of the
    time (a frozen dataclass sets each field through ``object.__setattr__``); the
    pipeline builds several per command.
    """

    kind: str
    ticket_id: str = ""
    name: str = ""
    timer_id: int = 0
    row: Mapping[str, Any] | None = None
    owner: str | None = None
    at: datetime | None = None
    failures: int = 0
    error: str | None = None
    status: str = "fired"


@dataclass
class ChangeSet:
    """What a flush writes. Built by the unit of work from its staged changes.

    Attributes:
        ticket_inserts: full ``gw_tickets`` rows of new tickets.
        ticket_updates: ``UPDATE_TICKET`` parameters (``b_id``, ``b_version`` — the version the
            ticket was read at — ``b_state``, ``b_level``, ``b_fields``, ``b_now``,
            ``b_new_version``, ``b_overdue``; and ``b_def``, the lifecycle version, only when
            it changed).
        history: ``gw_history`` rows, in order.
        timer_ops: :class:`TimerOp` in the order they were decided.
        cancel_ids: ids of stored timers to cancel (if still pending), as a ``cancel``
            :class:`TimerOp` with its ``timer_id`` does.
        rows: ``(statement, parameters)`` of the participants' tables, in order.
    """

    ticket_inserts: list[dict[str, Any]] = field(default_factory=list)
    ticket_updates: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    timer_ops: list[TimerOp] = field(default_factory=list)
    cancel_ids: list[int] = field(default_factory=list)
    rows: list[tuple[Any, Mapping[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ticket_inserts or self.ticket_updates or self.history
                    or self.timer_ops or self.cancel_ids or self.rows)


class TicketWriter:
    """Writes ``gw_tickets`` and ``gw_history`` (the ``row_version`` rule lives here)."""

    def write(self, runner: _cursor.Runner, inserts: Sequence[Mapping[str, Any]],
              updates: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]]) -> None:
        """Insert new tickets, update changed ones (in id order), append history rows.

        Raises:
            ConcurrencyConflict: a ticket's stored ``row_version`` is no longer the one it was
                read at (another transaction changed it); roll back, reload, retry.
        """
        conn = runner.conn
        if updates:
            ordered = sorted(updates, key=lambda u: u["b_id"])
            # executemany, in id order (so PostgreSQL transactions lock tickets in one global
            # order); each update matches at most one row (its id and the version it was
            # read at), so fewer rows changed than updates means a conflict, which
            # _raise_conflict names by reading the versions back. SQLite and psycopg both
            # count the rows of an executemany exactly (SQLAlchemy's
            # supports_sane_multi_rowcount); psycopg sends the updates in one pipeline
            # instead of one round trip each.
            same = [u for u in ordered if "b_def" not in u]
            moved = [u for u in ordered if "b_def" in u] if len(same) < len(ordered) else []
            changed = (runner.run_many(S.UPDATE_TICKET, same)
                       + runner.run_many(S.UPDATE_MIGRATED_TICKET, moved))
            if changed != len(ordered):
                _raise_conflict(conn, ordered)
        if inserts:
            runner.run_many(S.INSERT_TICKET, list(inserts))
        if history:
            runner.run_many(S.INSERT_HISTORY, list(history))


def _raise_conflict(conn: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
    """Raise the conflict of a flush whose ticket updates changed fewer rows than sent."""
    ids = [u["b_id"] for u in updates]
    stored = {r.id: r.row_version for r in conn.execute(
        select(tickets.c.id, tickets.c.row_version).where(tickets.c.id.in_(ids)))}
    for u in updates:
        actual = stored.get(u["b_id"])
        if actual != u["b_new_version"]:  # this update did not apply
            raise ConcurrencyConflict(u["b_id"], u["b_version"], actual)
    # Every version reads as this transaction set it: another transaction (PostgreSQL, read
    # committed) moved the one that did not apply to the same version meanwhile.
    first = updates[0]
    if len(updates) == 1:
        raise ConcurrencyConflict(first["b_id"], first["b_version"], stored.get(first["b_id"]))
    named = ", ".join(repr(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    raise ConcurrencyConflict(first["b_id"], first["b_version"], None, message=(
        f"one of tickets {named} changed while this transaction ran; reload them and retry"))


class TimerWriter:
    """Writes ``gw_timers``: changes to stored timers first, then the new timers."""

    def write(self, runner: _cursor.Runner, ops: Sequence[TimerOp],
              stored_cancels: Sequence[int] = ()) -> None:
        """Apply ``ops`` in their order of decision; cancel the timers ``stored_cancels``.

        A ``cancel`` of a timer created earlier in the same ops only changes the status that
        timer is inserted with; a ``cancel`` of a stored timer updates it (before the
        inserts, so a timer of the same name created after it stays pending).

        Raises:
            ConcurrencyConflict: a ``take`` found its timer no longer pending or no longer
                claimed by this worker (another worker took the claim over).
        """
        # a new timer's row is inserted as it was staged, and copied only when a later op
        # cancels it (rare): no copy per new timer
        new: dict[tuple[str, str], int] = {}  # (ticket id, name) -> its place in inserts
        inserts: list[Mapping[str, Any]] = []
        cancels: list[dict[str, Any]] = []
        cancel_ids: list[dict[str, Any]] = [{"b_id": i} for i in stored_cancels]
        takes: list[dict[str, Any]] = []
        fails: list[dict[str, Any]] = []
        # unpacked, not read by attribute: a TimerOp's fields are properties (4 ops a command)
        for kind, ticket_id, name, timer_id, row, owner, at, failures, error, status in ops:
            if kind == "cancel":
                if timer_id:  # a stored timer whose id was read with the ticket
                    cancel_ids.append({"b_id": timer_id})
                    continue
                mine = new.pop((ticket_id, name), None)
                if mine is not None:
                    inserts[mine] = {**inserts[mine], "status": "cancelled"}
                else:
                    cancels.append({"b_tid": ticket_id, "b_name": name})
            elif kind == "new":
                assert row is not None
                new[(row["ticket_id"], row["name"])] = len(inserts)
                inserts.append(row)
            elif kind == "take":
                takes.append({"b_id": timer_id, "b_owner": owner, "b_now": at,
                              "b_status": status})
            elif kind == "fail":
                fails.append({"b_id": timer_id, "b_failures": failures,
                              "b_error": error, "b_retry": at})
            else:  # pragma: no cover - the unit of work only builds the kinds above
                raise ValueError(f"unknown timer op {kind!r}")
        if takes:
            taken = runner.run_many(S.TAKE_TIMER, takes)  # rows counted exactly (see above)
            if taken != len(takes):
                raise ConcurrencyConflict(
                    "(timers)", len(takes), taken,
                    message=f"{len(takes) - taken} of {len(takes)} claimed timers were taken "
                            "over or cancelled by another worker; fire them again")
        runner.run_many(S.FAIL_TIMER, fails)
        runner.run_many(S.CANCEL_PENDING_ID, cancel_ids)
        runner.run_many(S.CANCEL_PENDING, cancels)
        if inserts:
            runner.run_many(S.INSERT_TIMER, inserts)


class RowWriter:
    """Writes the participants' rows, grouped by statement in first-seen order."""

    def write(self, runner: _cursor.Runner,
              rows: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        """Execute each statement once with all its parameter dicts (grouped by their keys)."""
        groups: dict[tuple[Any, ...], tuple[Any, list[Mapping[str, Any]]]] = {}
        for stmt, params in rows:
            key = (id(stmt), *params)  # one tuple: the statement, then the parameter names
            group = groups.get(key)
            if group is None:
                groups[key] = (stmt, [params])
            else:
                group[1].append(params)
        for stmt, params_list in groups.values():
            runner.run_many(stmt, params_list)


_TICKETS = TicketWriter()
_TIMERS = TimerWriter()
_ROWS = RowWriter()


def flush(conn: Connection, changes: ChangeSet) -> None:
    """Write a change set in one go: tickets and history, timers, then the other rows.

    Raises:
        ConcurrencyConflict: see :class:`TicketWriter` and :class:`TimerWriter`.
    """
    runner = _cursor.Runner(conn)
    _TICKETS.write(runner, changes.ticket_inserts, changes.ticket_updates, changes.history)
    _TIMERS.write(runner, changes.timer_ops, changes.cancel_ids)
    _ROWS.write(runner, changes.rows)
