"""Opening a database: any SQLAlchemy URL, SQLite tuned for a file in WAL mode by default."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, create_engine, event, func, inspect, select, text
from sqlalchemy import Engine as SAEngine
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError

from engine.errors import ConfigurationError, InvalidArgumentType
from engine.store.migrate import (
    VERSION_TABLE,
    create_fresh,
    current_revision,
    head_revision,
    new_revision,
    shipped,
    upgrade,
)
from engine.store.tables import definitions, metadata, tickets

__all__ = ["Database", "WriterQueue", "to_url"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


class WriterQueue:
    """A first-come, first-served lock for the write transactions of one SQLite file.

    SQLite has no queue for its write lock: a writer that finds it taken sleeps and polls
    (the busy timeout), and a thread that commits and begins again at once can keep
    winning — an API request would then wait behind a whole run of fired timers. Writers
    of the same file in one process therefore queue here first, in arrival order, and each
    waits for at most the transactions queued before it. Re-entrant per thread. Writers in
    other processes still meet SQLite's own lock (and its busy timeout).
    """

    def __init__(self, timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._gone: set[int] = set()  # tickets whose holder stopped waiting
        self._owner: int | None = None
        self._depth = 0
        self.timeout = timeout

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the lock for the block (waiting for the writers that came first).

        Raises:
            ConfigurationError: waited longer than the busy timeout (30 s): another writer
                of this process holds its transaction open that long.
        """
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                ticket = self._next
                self._next += 1
                if not self._cond.wait_for(lambda: self._serving == ticket, self.timeout):
                    self._gone.add(ticket)
                    raise ConfigurationError(
                        f"waited {self.timeout:.0f} s for this process's other writers of the "
                        "SQLite file; one holds its transaction open too long (a slow host "
                        "guard or action?)")
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._serving += 1
                    while self._serving in self._gone:
                        self._gone.discard(self._serving)
                        self._serving += 1
                    self._cond.notify_all()


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def _queue_for(path: str) -> WriterQueue:
    """The process's writer queue of one SQLite file (SQLite's lock is per file too)."""
    with _queues_lock:
        queue = _queues.get(path)
        if queue is None:
            queue = _queues[path] = WriterQueue()
        return queue


def to_url(target: str | Path) -> str:
    """Turn a path (``tickets.sqlite``) or URL (``postgresql+psycopg://...``) into a URL.

    Raises:
        InvalidArgumentType: ``target`` is neither text, a path nor a SQLAlchemy URL (None,
            a number), not a file name to create; also a TypeError.
    """
    if not isinstance(target, str | os.PathLike | URL):
        raise InvalidArgumentType("database", "a SQLite file's path or a SQLAlchemy URL",
                                  target, hint="e.g. Engine('tickets.sqlite') or "
                                               "Engine('postgresql+psycopg://user@host/db')")
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser()}"


class Database:
    """A SQLAlchemy engine plus the Gridwhistle schema.

    Args:
        target: a SQLAlchemy URL, a path to a SQLite file, or an existing SQLAlchemy ``Engine``
            (borrowed: :meth:`close` does not dispose what it did not create).
        create: on a database without Gridwhistle tables, create them and stamp the newest
            migration (default True). An existing database is not altered; upgrade it with
            ``gridwhistle db upgrade`` (see :mod:`engine.store.migrate`).

    On SQLite the connection uses WAL journaling, ``synchronous=NORMAL``, foreign keys and a
    busy timeout of 30 s, and write transactions (:meth:`write`) begin with
    ``BEGIN IMMEDIATE`` so that two writers queue for the lock instead of failing on upgrade.
    Savepoints work (pysqlite's own transaction handling is switched off, as SQLAlchemy's
    documentation recommends).

    Raises:
        ConfigurationError: the URL cannot be used.
        InvalidArgumentType: ``target`` is none of those (None, a number); also a TypeError.
    """

    def __init__(self, target: str | Path | SAEngine, *, create: bool = True):
        if isinstance(target, SAEngine):
            self.engine = target
            self._owned = False
        else:
            url = to_url(target)
            kwargs: dict[str, Any] = {}
            try:
                if url.startswith("sqlite"):
                    kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                              "check_same_thread": False}
                self.engine = create_engine(url, **kwargs)
            except (ArgumentError, ImportError) as exc:
                raise ConfigurationError(f"cannot use database {url!r}: {exc}") from exc
            self._owned = True
        self._writers: WriterQueue | None = None
        # the write connections' option, set once (per connection it costs a copy each time)
        self._write_engine = self.engine.execution_options(gridwhistle_write=True)
        self._writer: Connection | None = None  # a SQLite file's one write connection
        self._closing = False
        if self.engine.dialect.name == "sqlite":
            _tune_sqlite(self.engine)
            database = self.engine.url.database
            if database not in (None, "", ":memory:"):
                self._writers = _queue_for(str(Path(database).resolve()))
        if create:
            try:
                if not inspect(self.engine).has_table("gw_tickets"):
                    with self.write() as conn:  # on SQLite: BEGIN IMMEDIATE, so creators queue
                        create_fresh(conn)
            except (OperationalError, DatabaseError) as exc:
                self.close()
                raise ConfigurationError(
                    f"cannot open database {self.engine.url.render_as_string()!r}: "
                    f"{exc.orig if exc.orig is not None else exc}; check the path or URL and "
                    "that the server is running"
                ) from exc

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name (``sqlite``, ``postgresql``)."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed on success, rolled back on error.

        On a SQLite file, writers of this process queue first-come, first-served
        (:class:`WriterQueue`) and, one at a time, use one connection kept for them (checking
        a connection out of the pool and back in for every transaction cost more than the
        transaction's own ``BEGIN`` and ``COMMIT``).
        """
        if self._writers is None:
            with self._write_engine.connect() as conn, conn.begin():
                yield conn
            return
        with self._writers.turn():
            kept = self._writer
            if kept is not None and kept.in_transaction():
                # a write inside a write on this thread (the queue is re-entrant): a
                # connection of its own, as before (SQLite's lock then makes it wait)
                with self._write_engine.connect() as other, other.begin():
                    yield other
                return
            if kept is None or kept.closed or kept.invalidated:
                kept = self._writer = self._write_engine.connect()
            try:
                with kept.begin():
                    yield kept
            finally:
                if kept.invalidated or kept.in_transaction() or self._closing:
                    # lost, left half-done, or the database was closed meanwhile
                    self._writer = None
                    kept.close()

    # -- schema revisions (Alembic, engine/store/migrations) ---------------------------------

    @staticmethod
    def newest_revision() -> str:
        """The newest schema revision this Gridwhistle ships (e.g. ``0010``)."""
        return head_revision()

    def revision(self) -> str | None:
        """The schema revision the database is stamped at (None: not stamped, or empty)."""
        with self.read() as conn:
            return current_revision(conn)

    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Create or upgrade the Gridwhistle tables to ``revision`` (default: the newest).

        Returns:
            ``(before, after)``: the revisions before and after (``before`` None: it was
            empty). Back the database up first: an upgrade alters tables.

        Raises:
            ConfigurationError: an unknown revision, or one older than the database's
                (downgrades are not supported).
        """
        with self.write() as conn:
            return upgrade(conn, revision)

    def new_revision(self, message: str) -> str:
        """Write a new revision file from the declared tables; return its path (developers).

        Raises:
            ConfigurationError: the database is not at the newest revision (upgrade it first),
                or the declared tables do not differ from it (no file is written).
        """
        with self.write() as conn:
            if current_revision(conn) != head_revision():
                raise ConfigurationError(
                    f"the database is not at revision {head_revision()}; run `gridwhistle db "
                    "upgrade` on it first")
            return new_revision(conn, message)

    def require_current_schema(self) -> None:
        """Refuse a database whose Gridwhistle tables are not at this release's newest revision.

        A database without Gridwhistle tables passes (it is created, or it is not ours).

        Raises:
            ConfigurationError: its schema is older (run ``gridwhistle db upgrade``), or is at
                a revision this release does not ship (a newer Gridwhistle wrote it).
        """
        where = self.engine.url.render_as_string(hide_password=True)
        with self.read() as conn:
            if not inspect(conn).has_table("gw_tickets"):
                return
            current = current_revision(conn)
        head = self.newest_revision()
        if current == head:
            return
        if current is not None and not shipped(current):
            raise ConfigurationError(
                f"database {where!r} is at schema revision {current}, which this Gridwhistle "
                f"(newest {head}) does not know: a newer Gridwhistle wrote it; run that one")
        raise ConfigurationError(
            f"database {where!r} is at schema revision {current or '(none: before migrations)'}"
            f"; this Gridwhistle needs {head}: back it up, then run `gridwhistle db upgrade "
            f"--db {where}` (docs/operations.md, Schema migrations)")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (its transaction is rolled back at the end)."""
        with self.engine.connect() as conn:
            yield conn

    def ticket_counts(self, conn: Connection | None = None) -> dict[str, int]:
        """How many tickets the database holds, by lifecycle name (work orders included).

        Args:
            conn: read through this connection (e.g. inside a write transaction); default:
                a reading connection of its own.

        Returns:
            lifecycle name → tickets on any of its versions; empty when there is none.
        """
        query = (select(definitions.c.name, func.count())
                 .select_from(tickets.join(definitions,
                                           tickets.c.definition_id == definitions.c.id))
                 .group_by(definitions.c.name))
        if conn is not None:
            return {name: int(n) for name, n in conn.execute(query)}
        with self.read() as own:
            return {name: int(n) for name, n in own.execute(query)}

    def drop_all(self) -> None:
        """Drop and recreate every Gridwhistle table (used by ``replay --fresh``)."""
        with self.engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
            create_fresh(conn)

    def close(self) -> None:
        """Return the kept write connection; dispose the pool if this object created it.

        A write transaction in progress on another thread finishes first (``close`` waits for
        its turn in the writer queue, at most the busy timeout); one open on this thread (a
        ``close`` from inside a write) keeps its connection until it ends.
        """
        self._closing = True
        if self._writers is not None and self._writer is not None:
            try:
                with self._writers.turn():
                    writer = self._writer
                    if writer is not None and not writer.in_transaction():
                        self._writer = None
                        writer.close()
            except ConfigurationError:  # a writer held its turn past the busy timeout
                pass
        if self._owned:
            self.engine.dispose()


def _tune_sqlite(engine: SAEngine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN (savepoints work)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the lock up front (no deadlock on a read-to-write upgrade);
        # readers begin deferred and, in WAL mode, never wait for writers.
        # On the driver's connection: SQLAlchemy's execution machinery (30-40 µs per call)
        # adds nothing to a statement without parameters or results.
        immediate = conn.get_execution_options().get("gridwhistle_write", False)
        statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        dbapi = conn.dialect.loaded_dbapi
        try:
            conn.connection.dbapi_connection.execute(statement)
        except dbapi.Error as exc:  # as SQLAlchemy raises it (e.g. OperationalError: locked)
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
