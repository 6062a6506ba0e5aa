"""Hot-path writes on SQLite straight through the DBAPI cursor (issue 7: per-command cost).

Executing a prebuilt statement with ``Connection.execute`` costs SQLAlchemy 40-60 µs of Python
per call (cache lookup, execution context, result setup, events) while SQLite itself needs
5-15 µs; a command runs five or six statements, so that machinery was most of a replayed
event's time (see docs/performance.md). :func:`execute` runs the same statement with the
SQL text and bind processors SQLAlchemy compiled for it — so the values stored are exactly
the ones ``Connection.execute`` would store (UTC text for instants, JSON text, 0/1) — on the
connection's own ``sqlite3`` cursor, inside the transaction SQLAlchemy began.

Writes whose result is just a row count go this way (:func:`execute`), and single-row reads
by key and the timer claims (:func:`fetch_all`, with SQLAlchemy's result processors); only on
SQLite, and only inside a transaction. Anything else (another dialect, a statement with an
expanding ``IN``) falls back to ``Connection.execute``. Each (statement, set of parameter
names) is compiled once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Insert

__all__ = ["execute", "fetch_all", "fetch_one"]

_Plan = tuple[
    str,  # the SQL text
    list[str],  # bind names, in placeholder order
    dict[str, Callable[[Any], Any]],  # bind processors by name
    Callable[..., dict[str, Any]],  # the compiled statement's construct_params
    dict[str, Any],  # fixed values of binds the caller does not pass (e.g. status='pending')
]
_plans: dict[tuple[int, str, tuple[str, ...]], _Plan | None] = {}


def _plan(conn: Connection, stmt: Any, keys: tuple[str, ...]) -> _Plan | None:
    cache_key = (id(stmt), conn.dialect.name, keys)
    if cache_key in _plans:
        return _plans[cache_key]
    column_keys = list(keys) if isinstance(stmt, Insert) else None
    compiled = stmt.compile(dialect=conn.dialect, column_keys=column_keys)
    sql = str(compiled)
    plan: _Plan | None = None
    if ("POSTCOMPILE" not in sql and compiled.positiontup is not None
            and not compiled.escaped_bind_names
            and not compiled.insert_prefetch and not compiled.update_prefetch):
        # (prefetch: column defaults computed in Python at execution; not on this path)
        fixed = {name: bind.value for name, bind in compiled.binds.items()
                 if not bind.required and bind.callable is None}
        plan = (sql, list(compiled.positiontup), dict(compiled._bind_processors),
                compiled.construct_params, fixed)
    _plans[cache_key] = plan
    return plan


def _row(plan: _Plan, params: Mapping[str, Any]) -> tuple[Any, ...]:
    _, order, processors, construct, fixed = plan
    try:  # the usual case: every bind is passed or fixed (what construct_params would do)
        values = {name: params[name] if name in params else fixed[name] for name in order}
    except KeyError:
        values = construct(params)  # raises SQLAlchemy's own error for a missing value
    out = []
    for name in order:
        value = values[name]
        proc = processors.get(name)
        out.append(proc(value) if proc is not None else value)
    return tuple(out)


def execute(
    conn: Connection, stmt: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> int:
    """Execute a prebuilt write statement with one parameter dict (or a list of them).

    Args:
        conn: a connection inside a transaction (the command's).
        stmt: a prebuilt INSERT/UPDATE from :mod:`engine.store.statements` (or alike),
            with bound parameters.
        params: a dict of parameter values, or a non-empty list of dicts with the same keys
            (executemany).

    Returns:
        The number of rows the statement changed.
    """
    rows: Sequence[Mapping[str, Any]] = [params] if isinstance(params, Mapping) else params
    many = not isinstance(params, Mapping)
    first = rows[0]
    plan = None
    if conn.dialect.name == "sqlite" and conn.in_transaction():
        plan = _plan(conn, stmt, tuple(first))
    if plan is None:
        return int(conn.execute(stmt, params).rowcount)
    dbapi = conn.dialect.loaded_dbapi
    raw = conn.connection.dbapi_connection
    assert raw is not None  # inside a transaction the connection is checked out
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(plan[0], [_row(plan, p) for p in rows])
        else:
            cursor.execute(plan[0], _row(plan, first))
        return int(cursor.rowcount)
    except dbapi.Error as exc:  # the same exception classes Connection.execute raises
        raise DBAPIError.instance(plan[0], None, exc, dbapi.Error) from exc
    finally:
        cursor.close()


_Columns = list[tuple[str, Callable[[Any], Any] | None]]
_select_plans: dict[tuple[int, str], tuple[_Plan, _Columns] | None] = {}


def _select_plan(conn: Connection, stmt: Any) -> tuple[_Plan, _Columns] | None:
    cache_key = (id(stmt), conn.dialect.name)
    if cache_key not in _select_plans:
        plan = _plan(conn, stmt, ())
        compiled = stmt.compile(dialect=conn.dialect)
        columns: _Columns = [
            (rc[0], rc[3]._cached_result_processor(conn.dialect, None))
            for rc in compiled._result_columns
        ]
        _select_plans[cache_key] = None if plan is None else (plan, columns)
    return _select_plans[cache_key]


def fetch_all(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a prebuilt SELECT (or ``... RETURNING``) as dicts of column name to value.

    Values are converted as ``Connection.execute`` converts them (aware datetimes, parsed
    JSON, booleans). Off SQLite or outside a transaction, ``Connection.execute`` runs it.
    """
    plan = None
    if conn.dialect.name == "sqlite" and conn.in_transaction():
        plan = _select_plan(conn, stmt)
    if plan is None:
        return [dict(row) for row in conn.execute(stmt, params).mappings()]
    select, columns = plan
    raw = conn.connection.dbapi_connection
    assert raw is not None  # inside a transaction the connection is checked out
    dbapi = conn.dialect.loaded_dbapi
    cursor = raw.cursor()
    try:
        cursor.execute(select[0], _row(select, params))
        found = cursor.fetchall()
    except dbapi.Error as exc:
        raise DBAPIError.instance(select[0], None, exc, dbapi.Error) from exc
    finally:
        cursor.close()
    return [{name: (proc(value) if proc is not None and value is not None else value)
             for (name, proc), value in zip(columns, row, strict=True)} for row in found]


def fetch_one(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first row of :func:`fetch_all`, or None (for statements that match one row)."""
    rows = fetch_all(conn, stmt, params)
    return rows[0] if rows else None
