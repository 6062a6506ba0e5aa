"""Reading tickets for a command: in one statement, the ticket, its timers, its parts' state.

The command pipeline (:mod:`engine.runtime.commands`) loads every ticket it acts on through
:func:`load_tickets`: one ``SELECT`` returns the ``gw_tickets`` row with, as JSON arrays
aggregated in correlated subqueries, its pending timers and the rows of every participant
table keyed by the ticket (``gw_sla_clocks``, ``gw_ladder``, …) — one read per ticket, not
one per participant. The subqueries use each database's JSON aggregation
(``json_group_array(json_array(...))`` on SQLite, ``json_agg(json_build_array(...))`` on
PostgreSQL), and their values are converted back to what the column types give
(:func:`_conversion`): aware UTC datetimes, parsed JSON, booleans. Each aggregate is a
column of its own, on both databases: wrapping them in one JSON array cost SQLite a
``json()`` re-parse of every aggregate (29 µs against 24 µs per load, measured), more than
the one parse per aggregate it saved in Python; an empty aggregate is not parsed at all. A
participant's ``state_where`` narrows its table's rows to those holding its state.

On SQLite inside a transaction (every command's load, a firing chunk's) a ticket is decoded
from the driver's row by one function generated per statement (:func:`_raw_decoder`), which converts
each column as its type does, inline; the command pipeline also has the pending timers built
as its own ``PendingTimer`` tuples straight from the aggregate (``timers_as``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Table,
    Text,
    bindparam,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.expression import ColumnElement

from engine.store import _cursor
from engine.store import statements as S
from engine.store.tables import tickets, timers
from engine.store.types import UTCDateTime

__all__ = ["IN_CHUNK", "EagerTable", "Loaded", "in_chunks", "load_tickets", "rows_of",
           "ticket_exists", "ticket_version"]

Loaded = tuple[dict[str, Any], Any, dict[str, list[dict[str, Any]]]]
"""A loaded ticket: ``(gw_tickets row, its pending gw_timers, {table name: its rows})``; the
pending timers as a list of row dicts, or (``load_tickets(timers_as=...)``) a dict of name to
the given tuple type."""

EagerTable = tuple[Table, str, "ColumnElement[bool] | None"]
"""A participant table read with the ticket: ``(table, ticket-id column, condition)``; the
condition, if not None, picks the rows that hold the participant's state."""

_TIMER_COLUMNS = [timers.c[n] for n in ("id", "ticket_id", "name", "state", "due_at",
                                        "claimed_by", "failures")]


# json's own scanner (C in CPython), called directly: json.loads runs three Python frames
# and two regex matches around it (1.1 µs of the 3.3 µs a timer aggregate takes to parse)
_scan: Callable[[str, int], tuple[Any, int]] = (
    json.decoder.JSONDecoder().scan_once)  # type: ignore[attr-defined]  # not in typeshed


def _pending_as(parsed: list[list[Any]], cls: type[tuple[Any, ...]]) -> dict[str, Any]:
    """A timer aggregate's arrays (id, name, state, due_at, claimed_by, failures) as ``cls``.

    ``cls`` is a tuple type of the fields ``(name, state, due_at, id, claimed_by, failures)``
    in that order (the runtime's ``PendingTimer``), built with ``tuple.__new__`` as its
    generated ``__new__`` would build it given every field: 0.15 µs against 0.5 µs, and no
    row dict in between (1.4 µs for a ticket's five timers, measured).
    """
    new, known, utc = tuple.__new__, _cursor.utc_known, _cursor.utc_value
    out = {}
    for timer_id, name, state, due, holder, failures in parsed:  # (unpacked: 20 % less)
        out[name] = new(cls, (name, state, known(due) or utc(due), timer_id, holder,
                              failures or 0))
    return out


def _timers(raw: Any, tid: str, timers_as: type[tuple[Any, ...]] | None,
            timer_rows: _Rows) -> Any:
    """A ticket's pending timers from their aggregate: as ``timers_as``, else as row dicts.

    An empty aggregate (``'[]'`` on SQLite, ``[]`` from PostgreSQL's coalesce) is not parsed.
    """
    if not raw or raw == "[]":
        return {} if timers_as is not None else []
    if timers_as is not None:
        return _pending_as(_parsed(raw), timers_as)
    return timer_rows(_parsed(raw), tid)


def _parsed(value: Any) -> Any:
    """A JSON aggregate's value, parsed as ``json.loads`` parses it.

    PostgreSQL's driver hands ``json`` columns over parsed (not ``str``): kept as they are.
    """
    if not isinstance(value, str):
        return value
    try:
        parsed, end = _scan(value, 0)
        if end == len(value):
            return parsed
    except StopIteration:
        pass
    return json.loads(value)  # whitespace around it, or not JSON: json.loads' own answer


def _conversion(column: Column[Any]) -> str:
    """How a column's value inside a JSON aggregate becomes what its type gives.

    A Python expression of the parsed value ``{x}``: instants become aware UTC datetimes
    (through the store's memo), booleans ``bool``; JSON columns are nested as JSON by the
    aggregate, so parsed with it; the rest is what JSON gives.
    """
    if isinstance(column.type, UTCDateTime):
        # no call for the many empty instants, nor for one the memo knows
        return "None if {x} is None else (_known({x}) or _utc({x}))"
    if isinstance(column.type, Boolean):
        return "None if {x} is None else bool({x})"
    return "{x}"


_Rows = Callable[[list[list[Any]], str], list[dict[str, Any]]]
"""An aggregate's parsed arrays and the ticket id → the table's rows as dicts."""


def _row_builder(cols: Sequence[Column[Any]], key: str) -> _Rows:
    """The rows of an aggregate of ``cols`` without ``key`` (the ticket-id column).

    Generated once per table (as ``collections.namedtuple`` generates its methods): one
    list comprehension with a dict display per row and every conversion inline. Measured
    against ``dict(zip(names, values))`` after converting in place (what it replaces):
    0.24 µs against 0.6-1.1 µs per row, and no call per row; a ticket brings about ten.
    The key column is left out of the aggregate (SQLite then builds and Python parses one
    value less per row) and filled in with the ticket's id, which it equals.
    """
    items = []
    position = 0
    for c in cols:
        if c.name == key:
            items.append(f"{c.name!r}: tid")
            continue
        value = _conversion(c).format(x=f"v[{position}]")
        items.append(f"{c.name!r}: {value}")
        position += 1
    source = f"lambda parsed, tid: [{{{', '.join(items)}}} for v in parsed]"
    built: _Rows = eval(source, _GENERATED)  # names and positions only
    return built


_SQLITE = sqlite.dialect()
"""The dialect whose result processors :func:`_raw_decoder` writes out."""

_GENERATED: dict[str, Any] = {"_utc": _cursor.utc_value, "_known": _cursor.utc_known}
"""What the generated row builders and decoders refer to."""


def _raw_decoder(stmt: Any, ticket_json: Sequence[str],
                 named: Sequence[tuple[str, str, _Rows]],
                 timer_rows: _Rows) -> Callable[[Sequence[Any], Any], Loaded] | None:
    """A :meth:`_Plan.decode` of the statement's SQLite driver row (a tuple), generated once.

    What ``_cursor.rows`` and :meth:`_Plan.decode` do together — convert each column as its
    type's result processor does, build the ticket row's dict, parse the aggregates — in one
    function with the conversions inline: 2.8 µs less per ticket loaded (measured, of about
    10 µs). None when a column needs a conversion it does not know (then the usual path runs).
    """
    columns = list(stmt.exported_columns.items())
    labels = {label: (name, build) for label, name, build in named}
    items, tables, timers = [], [], None
    for i, (name, col) in enumerate(columns):
        x = f"v[{i}]"
        if name == "_t0":
            timers = x
        elif name in labels:
            table, _ = labels[name]
            tables.append(f"{table!r}: _b_{name}(_parsed({x}), tid) if {x} and {x} != '[]' "
                          f"else []")
        elif name in ticket_json:
            items.append(f"{name!r}: _parsed({x})")
        elif isinstance(col.type, UTCDateTime):
            items.append(f"{name!r}: None if {x} is None else (_known({x}) or _utc({x}))")
        elif isinstance(col.type, Boolean):
            items.append(f"{name!r}: None if {x} is None else bool({x})")
        elif col.type.dialect_impl(_SQLITE).result_processor(_SQLITE, None) is not None:
            return None  # a conversion not written out here: the usual path
        else:
            items.append(f"{name!r}: {x}")
    if timers is None or columns[0][0] != "id":
        return None
    source = (
        "def decode(v, timers_as):\n"
        "    tid = v[0]\n"
        f"    return ({{{', '.join(items)}}}, _timers({timers}, tid, timers_as, _timer_rows),\n"
        f"            {{{', '.join(tables)}}})\n")
    scope = {**_GENERATED, "_parsed": _parsed, "_timers": _timers,
             "_timer_rows": timer_rows, **{f"_b_{k}": b for k, (_, b) in labels.items()}}
    exec(source, scope)  # names and positions only, as _row_builder
    decode: Callable[[Sequence[Any], Any], Loaded] = scope["decode"]
    return decode


def _aggregate(dialect: str, table: Table, cols: Sequence[Column[Any]],
               *where: ColumnElement[bool]) -> Any:
    """A correlated scalar subquery: the rows of ``table`` as a JSON array of arrays.

    A JSON column's value is nested as JSON (not as text holding JSON), so one parse of the
    aggregate gives every value: PostgreSQL's ``json_build_array`` does so by itself; on
    SQLite the column is passed through ``json()``.
    """
    if dialect == "postgresql":
        agg: Any = func.coalesce(func.json_agg(func.json_build_array(*cols)),
                                 literal("[]").cast(JSON))
    else:
        agg = func.json_group_array(func.json_array(
            *(func.json(c) if isinstance(c.type, JSON) else c for c in cols)))
    return select(agg).where(*where).correlate(tickets).scalar_subquery()


class _Plan:
    """One composite SELECT for a set of participant tables, built once per dialect."""

    def __init__(self, dialect: str, tables: Sequence[EagerTable]):
        aggregates: list[Any] = [_aggregate(
            dialect, timers, [c for c in _TIMER_COLUMNS if c.name != "ticket_id"],
            timers.c.ticket_id == tickets.c.id, timers.c.status == "pending")]
        self.timer_rows = _row_builder(_TIMER_COLUMNS, "ticket_id")
        self.named: list[tuple[str, str, _Rows]] = []
        for i, (table, key, where) in enumerate(tables):
            conditions = [table.c[key] == tickets.c.id] + ([where] if where is not None else [])
            aggregates.append(_aggregate(dialect, table, [c for c in table.c if c.name != key],
                                         *conditions))
            self.named.append((f"_t{i + 1}", table.name, _row_builder(list(table.c), key)))
        # one column per aggregate (module docstring); PostgreSQL's driver parses each itself
        parts = [a.label(f"_t{i}") for i, a in enumerate(aggregates)]
        # the ticket's JSON columns are read as text and parsed with the aggregates (the
        # JSON type's processor, json.loads, costs a microsecond more per ticket)
        self.ticket_json = [c.name for c in tickets.c if isinstance(c.type, JSON)]
        head = [type_coerce(c, Text).label(c.name) if c.name in self.ticket_json else c
                for c in tickets.c]
        self.one = select(*head, *parts).where(tickets.c.id == bindparam("b_id"))
        self.raw_decode = (_raw_decoder(self.one, self.ticket_json, self.named,
                                        self.timer_rows) if dialect == "sqlite" else None)
        self.many = select(*head, *parts).where(
            tickets.c.id.in_(bindparam("b_ids", expanding=True)))
        self._select = select(*head, *parts)
        self._few: dict[int, Any] = {}

    def few(self, count: int) -> Any:
        """The statement for exactly ``count`` ids (``b0``, ``b1``, ...): the fast path."""
        stmt = self._few.get(count)
        if stmt is None:
            stmt = self._few.setdefault(count, self._select.where(
                tickets.c.id.in_([bindparam(f"b{i}") for i in range(count)])))
        return stmt

    def decode(self, row: dict[str, Any], timers_as: type[tuple[Any, ...]] | None) -> Loaded:
        for name in self.ticket_json:
            row[name] = _parsed(row[name])
        tid = row["id"]
        pop = row.pop
        found = _timers(pop("_t0"), tid, timers_as, self.timer_rows)
        extra = {}
        for label, name, build in self.named:
            raw = pop(label)
            extra[name] = build(_parsed(raw), tid) if raw and raw != "[]" else []
        return row, found, extra


IN_CHUNK = 500
"""The most values one ``IN (...)`` list binds (below every driver's parameter limit)."""


def in_chunks(values: Iterable[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    """``values`` in lists of at most ``size``, in order: one ``IN (...)`` query each."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start:start + size]


FEW = 32
"""Up to this many tickets are read with a prebuilt statement per count (the fast path)."""

_plans: dict[tuple[str, tuple[tuple[str, str, int], ...]], _Plan] = {}
_lock = threading.Lock()


_recent: dict[tuple[str, int], tuple[Sequence[EagerTable], _Plan]] = {}
"""The plan of a ``tables`` sequence seen before, by its identity (the command handler passes
the same list for every load); the entry holds the sequence, so its id is not reused."""


def _plan(dialect: str, tables: Sequence[EagerTable]) -> _Plan:
    seen = _recent.get((dialect, id(tables)))
    if seen is not None and seen[0] is tables:
        return seen[1]
    key = (dialect, tuple((t.name, c, id(w)) for t, c, w in tables))
    plan = _plans.get(key)
    if plan is None:
        with _lock:
            plan = _plans.setdefault(key, _Plan(dialect, tables))
    if len(_recent) < 64:  # bounded: a handler's list changes only when one registers
        _recent[(dialect, id(tables))] = (tables, plan)
    return plan


def load_tickets(conn: Connection, ids: Sequence[str],
                 tables: Sequence[EagerTable] = (), *,
                 timers_as: type[tuple[Any, ...]] | None = None) -> dict[str, Loaded]:
    """Tickets with their pending timers and their rows of ``tables``, in one statement.

    Args:
        conn: a connection.
        ids: the ticket ids (one, or many); ids not found are left out.
        tables: ``(table, ticket-id column, condition)`` of the participants' per-ticket
            tables (:data:`EagerTable`).
        timers_as: None, or a tuple type of the fields ``(name, state, due_at, id,
            claimed_by, failures)``: the pending timers are then given as a dict of name to
            that type (the command pipeline's ``PendingTimer``), not as row dicts.

    Returns:
        ticket id → :data:`Loaded`: the ``gw_tickets`` row, its pending ``gw_timers`` rows
        (id, ticket_id, name, state, due_at, claimed_by, failures; see ``timers_as``) and,
        per table name, the table's rows of the ticket; instants as aware UTC datetimes.
    """
    plan = _plan(conn.dialect.name, tables)
    if len(ids) == 1:
        if plan.raw_decode is not None:  # one ticket on SQLite (every command's load)
            raw = _cursor.raw_rows(conn, plan.one, {"b_id": ids[0]})
            if raw is not None:
                return {ids[0]: plan.raw_decode(raw[0], timers_as)} if raw else {}
        found = _cursor.rows(conn, plan.one, {"b_id": ids[0]})
        return {ids[0]: plan.decode(found[0], timers_as)} if found else {}
    out: dict[str, Loaded] = {}
    wanted = list(dict.fromkeys(ids))
    if len(wanted) <= FEW:  # a firing chunk's tickets: one prebuilt statement
        stmt, params = plan.few(len(wanted)), {f"b{i}": t for i, t in enumerate(wanted)}
        raw = (_cursor.raw_rows(conn, stmt, params) if plan.raw_decode is not None
               else None)  # (its columns are the one-ticket statement's: the same decoder)
        if raw is not None and plan.raw_decode is not None:
            for values in raw:
                loaded = plan.raw_decode(values, timers_as)
                out[loaded[0]["id"]] = loaded
            return out
        for hit in _cursor.rows(conn, stmt, params):
            loaded = plan.decode(hit, timers_as)
            out[loaded[0]["id"]] = loaded
        return out
    for part in in_chunks(wanted):
        for r in conn.execute(plan.many, {"b_ids": part}).mappings():
            loaded = plan.decode(dict(r), timers_as)
            out[loaded[0]["id"]] = loaded
    return out


def ticket_exists(conn: Connection, ticket_id: str) -> bool:
    """Whether a ticket with this id is stored."""
    return bool(_cursor.rows(conn, S.TICKET_EXISTS, {"b_id": ticket_id}))


def ticket_version(conn: Connection, ticket_id: str) -> int | None:
    """The stored ``row_version`` of a ticket (None: no such ticket)."""
    found = _cursor.rows(conn, S.TICKET_VERSION, {"b_id": ticket_id})
    return int(found[0]["row_version"]) if found else None


_BY_KEY: dict[tuple[int, str], Any] = {}


def rows_of(conn: Connection, table: Table, ids: Sequence[str], *,
            column: str = "ticket_id", order_by: Column[Any] | None = None
            ) -> list[dict[str, Any]]:
    """The rows of a participant's ``table`` whose ``column`` is one of ``ids``.

    For the participants' :meth:`~engine.runtime.participant.Participant.load`: one id (the
    usual case) runs a prebuilt statement on the store's fast path; several, one ``IN``.

    Args:
        conn: the transaction's connection.
        table: a ``gw_*`` table with a ticket-id column.
        ids: the ticket ids.
        column: that column's name (default ``ticket_id``).
        order_by: a column to order the rows by (e.g. the id, for issue order).
    """
    if len(ids) == 1:
        key = (id(table), column + ("" if order_by is None else f"/{order_by.name}"))
        stmt = _BY_KEY.get(key)
        if stmt is None:
            stmt = select(table).where(table.c[column] == bindparam("b_key"))
            if order_by is not None:
                stmt = stmt.order_by(order_by)
            _BY_KEY[key] = stmt
        return _cursor.rows(conn, stmt, {"b_key": ids[0]})
    query = select(table).where(table.c[column].in_(list(ids)))
    if order_by is not None:
        query = query.order_by(order_by)
    return [dict(r) for r in conn.execute(query).mappings()]
