"""The SQLite cursor path of the store's reads and writers (private to ``engine.store``).

Executing a prebuilt statement with ``Connection.execute`` costs SQLAlchemy 40-60 µs of Python
per call (cache lookup, execution context, result setup, events) while SQLite itself needs
5-15 µs. The ticket reads (:mod:`engine.store.reads`) and the writers
(:mod:`engine.store.writer`) therefore run *every* statement they issue through :func:`run`,
:class:`Runner` and :func:`rows`: on SQLite, inside a transaction, they execute the SQL text
and bind/result processors SQLAlchemy compiled for the statement on the connection's own
``sqlite3`` cursor, so the values stored and read are exactly those of ``Connection.execute``
(UTC text for instants, JSON text, 0/1). On any other dialect, outside a transaction, or for
a statement SQLAlchemy must expand at execution time (``IN`` lists, Python-side defaults),
they call ``Connection.execute``. Nothing outside the store uses this module.
"""

from __future__ import annotations

import json
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Insert

from engine.store.types import UTCDateTime

__all__ = ["Runner", "raw_rows", "rows", "run", "utc_known", "utc_value"]


_TEXTS: dict[datetime, str] = {}
_VALUES: dict[str, datetime] = {}
_MEMO = 4096
"""Instants converted recently, both ways: a command's instant is stored in many columns
(updated_at, the history row, its timers, its SLA clocks, its outbox event) and a ticket's
rows share a few instants, so most conversions are a dict hit (datetimes and strings cache
their hashes). Bounded: cleared when full."""


def _utc_text(value: Any) -> Any:
    """An aware instant as SQLite stores a ``UTCDateTime`` (what SQLAlchemy's processors make).

    ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC; naive instants are refused as
    :class:`~engine.store.types.UTCDateTime` refuses them.
    """
    if value is None:
        return None
    try:
        return _TEXTS[value]
    except (KeyError, TypeError):
        pass
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"instants must be aware datetimes (UTC), got {value!r}")
    at = value.astimezone(UTC) if value.utcoffset() else value
    text = at.isoformat(" ", "microseconds")[:26]
    if len(_TEXTS) >= _MEMO:
        _TEXTS.clear()
    _TEXTS[value] = text  # naive and aware datetimes never compare equal: no false hit
    return text


def utc_value(text: Any) -> Any:
    """Stored instant text (naive UTC, or ISO 8601 with an offset) as an aware UTC datetime."""
    if text is None:
        return None
    try:
        return _VALUES[text]
    except KeyError:
        pass
    at = datetime.fromisoformat(text)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if len(_VALUES) >= _MEMO:
        _VALUES.clear()
    _VALUES[text] = at
    return at


utc_known: Callable[[str], datetime | None] = _VALUES.get
"""The memo's datetime for a stored instant text, or None (then call :func:`utc_value`).

:func:`utc_value`'s fast path without its Python call (0.05 µs against 0.15 µs; a ticket's
load converts a dozen instants, nearly all of them hits). The memo is cleared in place, never
replaced, so this bound method stays valid."""


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The C encoder ``json.dumps`` builds on every call, built once (same separators, ASCII
# escaping and NaN handling as json.dumps' defaults; no circular-reference check: the values
# are the engine's own rows, and a cycle still fails, as RecursionError).
_make = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed's stubs
_c_encoder = (_make(None, _not_json, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                    False, False, True) if _make is not None else None)


def _json_text(value: Any) -> str:
    """A JSON column's value as SQLAlchemy's JSON type stores it (None as ``null``).

    The same text as ``json.dumps(value)``, SQLAlchemy's default serializer.
    """
    if _c_encoder is None:  # pragma: no cover - CPython builds have the C encoder
        return json.dumps(value)
    return "".join(_c_encoder(value, 0))


def _converter(bind: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """What ``Connection.execute`` does to a bound value: its type's dialect impl's processor."""
    if isinstance(bind.type, UTCDateTime):
        return _utc_text
    processor: Callable[[Any], Any] | None = bind.type.dialect_impl(dialect).bind_processor(
        dialect)
    if type(bind.type) is JSON and processor is not None:
        return _json_text  # what JSON's processor does (json.dumps), without its wrapping
    return processor


class _Plan:
    """A statement compiled once for SQLite: SQL text, bind order and value converters."""

    __slots__ = ("construct", "converted", "converters", "fast", "fast_len", "fixed", "free",
                 "full", "get", "order", "shape", "sql", "template", "utc")

    def __init__(self, sql: str, order: list[str], converters: list[Callable[[Any], Any] | None],
                 construct: Callable[..., dict[str, Any]], fixed: dict[str, Any],
                 types: Sequence[Any] = ()):
        self.sql = sql
        self.order = order
        self.converters = converters
        self.construct = construct
        self.fixed = fixed
        self.shape: tuple[tuple[str, ...], list[tuple[int, Callable[[Any], Any]]]] = ((), [])
        """Result column names, and the position and converter of those to convert."""
        # instants are looked up in the memo inline (most are a hit), the rest converted
        self.utc = [i for i, c in enumerate(converters) if c is _utc_text]
        self.converted = [(i, c) for i, c in enumerate(converters)
                          if c is not None and c is not _utc_text]
        self.get = (operator.itemgetter(*order) if len(order) > 1
                    else (lambda p: (p[order[0]],)) if order else (lambda p: ()))
        # a statement's own literals (``status = 'pending'``) are bound too: a parameter
        # dict without them fills a template of the fixed values
        self.template = [fixed.get(n) for n in order]
        self.free = [(i, n) for i, n in enumerate(order) if n not in fixed]
        types = types or [None] * len(order)
        self.full = _values_function(order, converters, types, {})
        self.fast = _values_function(order, converters, types, fixed) if fixed else self.full
        self.fast_len = len(self.free) if fixed else -1

    def values(self, params: Mapping[str, Any]) -> Sequence[Any]:
        """The positional values of one parameter dict, converted as SQLAlchemy would.

        ``params``: bind name → value (the statement's literals may be left out). A tuple in
        the statement's bind order, from the generated :attr:`full` / :attr:`fast`; what they
        cannot handle (a missing name, a value of an unexpected type) goes the general way.
        """
        try:
            if len(params) == self.fast_len:  # the literals left out
                return self.fast(params)
            return self.full(params)
        except (KeyError, TypeError, ValueError):
            return self.general(params)

    def many(self, params: Sequence[Mapping[str, Any]]) -> list[Sequence[Any]]:
        """:meth:`values` of each parameter dict, in order.

        The generated functions called straight from one comprehension (no method call per
        row: 0.1 µs a row); should one row need the general way, all go through
        :meth:`values` (the functions have no side effects).
        """
        fast, full, n = self.fast, self.full, self.fast_len
        try:
            return [fast(p) if len(p) == n else full(p) for p in params]
        except (KeyError, TypeError, ValueError):
            return [self.values(p) for p in params]

    def general(self, params: Mapping[str, Any]) -> list[Any]:
        """:meth:`values` without the generated function (same values, as a list)."""
        try:
            if len(params) == len(self.free) < len(self.order):  # the literals left out
                raw = self.template.copy()
                for i, n in self.free:
                    raw[i] = params[n]
            else:
                raw = list(self.get(params))
        except KeyError:
            fixed = self.fixed
            try:
                raw = [params[n] if n in params else fixed[n] for n in self.order]
            except KeyError:
                built = self.construct(params)  # SQLAlchemy's own error for a missing value
                raw = [built[n] for n in self.order]
        if self.utc:
            texts = _TEXTS
            for i in self.utc:
                value = raw[i]
                if value is not None:
                    text = texts.get(value) if type(value) is datetime else None
                    raw[i] = _utc_text(value) if text is None else text
        for i, c in self.converted:
            raw[i] = c(raw[i])
        return raw


def _values_function(order: Sequence[str], converters: Sequence[Callable[[Any], Any] | None],
                     bind_types: Sequence[Any], fixed: Mapping[str, Any],
                     ) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A statement's positional values from one parameter dict, every conversion inline.

    Generated once per plan (as :mod:`engine.store.reads` generates its row builders): one
    tuple display, ``p[k0]`` per bind (``fixed`` ones as constants), instants looked up in
    the memo inline. Measured on a batched ``dispatch``'s rows against the itemgetter, list
    and conversion loops of :meth:`_Plan.general`: 0.35 against 0.54 µs for the ladder's
    row, 0.11 against 0.26 µs for a timer cancel (JSON text, the same work either way, is
    most of what remains: 5.5 of 7.5 µs per command). The
    source holds only generated names (``k0``, ``c0``); bind names and values are passed in
    its namespace. Raises KeyError for a missing name (the caller then goes the general way).
    """
    namespace: dict[str, Any] = {"T": _TEXTS, "U": _utc_text, "datetime": datetime}
    items = []
    for i, (name, conv) in enumerate(zip(order, converters, strict=True)):
        if name in fixed:
            # converted once here, as the general way converts the template's value
            namespace[f"k{i}"] = fixed[name] if conv is None else conv(fixed[name])
            items.append(f"k{i}")
            continue
        namespace[f"k{i}"] = name
        if conv is None:
            items.append(f"p[k{i}]")
        elif conv is _utc_text:  # a hit in the memo, else the full conversion (or None)
            items.append(f"((T.get(v) or U(v)) if type(v := p[k{i}]) is datetime"
                         f" else None if v is None else U(v))")
        elif conv is _json_text and _c_encoder is not None:
            namespace["E"] = _c_encoder
            items.append(f"''.join(E(p[k{i}], 0))")
        elif type(bind_types[i]) is Boolean:
            # a lookup of the processor's own results for None/True/False (an equal value,
            # e.g. 1, hashes alike and gets what the processor gives it; any other misses:
            # KeyError, the general way): one Boolean.bind_processor call less per ticket row
            namespace[f"c{i}"] = {v: conv(v) for v in (None, True, False)}
            items.append(f"c{i}[p[k{i}]]")
        else:
            namespace[f"c{i}"] = conv
            items.append(f"c{i}(p[k{i}])")
    source = f"lambda p: ({', '.join(items)}{',' if len(items) == 1 else ''})"
    built: Callable[[Mapping[str, Any]], tuple[Any, ...]] = eval(source, namespace)
    return built


_plans: dict[tuple[int, tuple[str, ...]], _Plan | None] = {}
_lock = threading.Lock()


def _plan(conn: Connection, stmt: Any, keys: tuple[str, ...]) -> _Plan | None:
    cache_key = (id(stmt), keys)
    try:
        return _plans[cache_key]
    except KeyError:
        pass
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
        dialect = conn.dialect
        order = list(compiled.positiontup)
        plan = _Plan(sql, order, [_converter(compiled.binds[n], dialect) for n in order],
                     compiled.construct_params, fixed, [compiled.binds[n].type for n in order])
        # the statement's result columns and their types (SQLAlchemy's public API; the
        # processors are those Connection.execute applies: the type's dialect impl's)
        exported = getattr(stmt, "exported_columns", None)
        columns = [(name, utc_value if isinstance(col.type, UTCDateTime)
                    else json.loads if type(col.type) is JSON
                    else col.type.dialect_impl(dialect).result_processor(dialect, None))
                   for name, col in (exported.items() if exported is not None else ())]
        names = tuple(n for n, _ in columns)
        plan.shape = (names, [(i, p) for i, (_, p) in enumerate(columns) if p is not None])
        if len(set(names)) < len(names):  # result names SQLAlchemy would tell apart itself
            plan = None
    with _lock:
        _plans[cache_key] = plan
    return plan


def _raw(conn: Connection) -> Any:
    raw = conn.connection.dbapi_connection
    if raw is None:  # pragma: no cover - inside a transaction the connection is checked out
        raise RuntimeError("the connection is not checked out")
    return raw


def _usable(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite" and conn.in_transaction()


def run(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> int:
    """Execute a write statement with one parameter dict; return the rows it changed."""
    plan = _plan(conn, stmt, tuple(params)) if _usable(conn) else None
    if plan is None:
        return int(conn.execute(stmt, params).rowcount)
    cursor = _raw(conn).cursor()
    try:
        cursor.execute(plan.sql, plan.values(params))
        return int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(plan.sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


class Runner:
    """The writers' statements of one flush, each executed once per parameter dict.

    The connection is looked at once: a flush runs about ten statements, and whether the
    cursor path applies, the driver's connection and its error class are the same for all.
    """

    __slots__ = ("conn", "error", "raw")

    def __init__(self, conn: Connection):
        self.conn = conn
        self.raw = _raw(conn) if _usable(conn) else None
        self.error: type[Exception] = conn.dialect.loaded_dbapi.Error

    def run_many(self, stmt: Any, params: Sequence[Mapping[str, Any]]) -> int:
        """Execute a write statement once per parameter dict (all with the same keys).

        Returns the total number of rows changed. An empty ``params`` does nothing.
        """
        if not params:
            return 0
        raw = self.raw
        plan = _plan(self.conn, stmt, tuple(params[0])) if raw is not None else None
        if raw is None or plan is None:
            return int(self.conn.execute(stmt, list(params)).rowcount)
        try:
            if len(params) == 1:  # the driver's own cursor, closed by the driver
                return int(raw.execute(plan.sql, plan.values(params[0])).rowcount)
            return int(raw.executemany(plan.sql, plan.many(params)).rowcount)
        except self.error as exc:
            raise DBAPIError.instance(plan.sql, None, exc, self.error) from exc


def rows(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a SELECT (or ``... RETURNING``), as dicts of column name to value.

    Values are converted as ``Connection.execute`` converts them (aware datetimes, parsed
    JSON, booleans).
    """
    plan = _plan(conn, stmt, ()) if _usable(conn) else None
    if plan is None:
        return [dict(r) for r in conn.execute(stmt, dict(params)).mappings()]
    try:  # the driver's own cursor (closed by the driver once fetched): as Runner.run_many
        found = _raw(conn).execute(plan.sql, plan.values(params)).fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(plan.sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
    names, procs = plan.shape
    if found and len(found[0]) != len(names):  # pragma: no cover - the plan's own columns
        raise RuntimeError(f"{len(found[0])} result columns, {len(names)} expected: {plan.sql}")
    # (zip without strict=: the lengths are checked above, once for all rows; parsing the
    # keyword costs zip more than building a ticket row's dict)
    out = []
    for values in found:
        if procs:
            row = list(values)
            for i, proc in procs:
                if row[i] is not None:
                    row[i] = proc(row[i])
            out.append(dict(zip(names, row)))  # noqa: B905
        else:
            out.append(dict(zip(names, values)))  # noqa: B905
    return out


def raw_rows(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[Any] | None:
    """The driver's rows of a SELECT (tuples, values as SQLite returns them), or None.

    None when the cursor path does not apply (another dialect, no transaction, a statement
    it cannot run): then read with :func:`rows`. For a reader that converts the values
    itself, exactly as :func:`rows` would (``engine.store.reads``' generated decoder).
    """
    plan = _plan(conn, stmt, ()) if _usable(conn) else None
    if plan is None:
        return None
    try:
        found: list[Any] = _raw(conn).execute(plan.sql, plan.values(params)).fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(plan.sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
    return found
