"""The unit of work: transactions, the staged working copy, the flush and after-commit.

Every command runs inside a transaction of the unit of work, and on top of a stack of
:class:`~engine.runtime.working.Layer` objects (see :mod:`engine.runtime.working`):

* :meth:`UnitOfWork.transaction` opens a write transaction with an empty window (the root
  layer), or joins the one this thread has open. When the outermost block ends, the window is
  flushed with the one writer (:func:`engine.store.writer.flush`), the transaction commits,
  and the participants' ``after_commit`` hooks get the committed changes.
* :meth:`UnitOfWork.layer` pushes a layer for one command (or compound command, or
  follow-on): merged down when the block succeeds, dropped when it raises. Since nothing is
  written before a command's every check has passed, a refused command needs no savepoint:
  dropping its layer is the whole rollback, inside a batch as outside.
* A batch (:meth:`UnitOfWork.transaction` with ``batch=True``) is one transaction for many
  commands. Its window is flushed when it holds :attr:`UnitOfWork.flush_rows` history rows,
  before any read that must see what is staged (:meth:`UnitOfWork.query`,
  :meth:`UnitOfWork.reading`), and at the end.

On SQLite a batch holds the database's write lock throughout, so the engine keeps a lower
bound of the next due timer (:class:`DueFloor`) and need not ask the database while nothing
can be due. State is per thread: a transaction or batch is never shared between threads.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection

from engine.runtime.participant import Participant
from engine.runtime.working import Layer, TicketRecord
from engine.store.database import Database
from engine.store.writer import ChangeSet, flush

__all__ = ["KEPT_RECORDS", "AfterCommitExecutor", "DueFloor", "UnitOfWork"]

KEPT_RECORDS = 4000
"""Tickets a batch keeps in its working copy across flushes (memory stays bounded)."""

log = logging.getLogger("gridwhistle.engine")
T = TypeVar("T")


class DueFloor:
    """A lower bound of the earliest pending timer's due time, kept for one SQLite batch.

    Valid because the batch holds the write lock: only this engine adds timers meanwhile, and
    every timer it stages lowers the bound (staging may be dropped later; that only raises
    the true minimum, so the bound stays a lower bound).
    """

    __slots__ = ("_known", "_new", "_value")

    def __init__(self) -> None:
        self._known = False
        self._value: datetime | None = None  # None with _known: nothing pending
        self._new: datetime | None = None  # earliest timer staged since mark()

    def set(self, next_due: datetime | None) -> None:
        """Record the exact next due time just read from the database (None: nothing)."""
        self._known = True
        self._value = next_due

    def lower(self, due: datetime) -> None:
        """A timer due at ``due`` was staged."""
        if self._known and (self._value is None or due < self._value):
            self._value = due
        if self._new is None or due < self._new:
            self._new = due

    def mark(self) -> None:
        """Start watching for timers staged from now on (see :meth:`created_due_by`)."""
        self._new = None

    def created_due_by(self, instant: datetime) -> bool:
        """True when a timer staged since :meth:`mark` is due at or before ``instant``."""
        return self._new is not None and self._new <= instant

    def nothing_due_before(self, until: datetime) -> bool:
        """True when no pending timer can be due strictly before ``until``."""
        return self._known and (self._value is None or self._value >= until)


class AfterCommitExecutor:
    """Runs after-commit hooks of fired timers on a thread of their own, off the wake-up path.

    A host listener that hangs then holds up this thread only, never the timers. The queue
    is bounded (``size`` transactions); when it is full the hooks of a transaction are
    dropped with a warning — the outbox (``gw_outbox``) stays the record of every event.
    """

    def __init__(self, size: int = 10_000):
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` (must not raise; errors are logged)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="gridwhistle-after-commit",
                                                daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            log.warning("after-commit queue full: dropped the hooks of one transaction "
                        "(listeners missed its events; the outbox has them)")

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # pragma: no cover - hooks log their own errors
                log.exception("an after-commit hook failed")

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued job has run (True) or ``timeout`` seconds passed (False)."""
        done = threading.Event()
        if self._thread is None:
            return True
        try:
            self._queue.put(done.set, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def stop(self) -> None:
        """Let the thread end after the queued jobs (it does not wait for a hung one)."""
        with self._lock:
            if self._thread is not None:
                with contextlib.suppress(queue.Full):  # a daemon thread ends with the process
                    self._queue.put_nowait(None)
                self._thread = None


class _State(threading.local):
    """One thread's transaction: connection, layers, batch shortcuts, what to wake for."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.top: Layer | None = None
        self.batch = False
        self.floor: DueFloor | None = None
        self.background = False
        self.undo: list[Callable[[], None]] = []
        self.host = 0  # host guards and actions running on this thread (see in_host)


class UnitOfWork:
    """Transactions and the staged working copy of one engine (see the module docstring).

    Args:
        db: the database.
        participants: participant key → participant, for their :meth:`Participant.writes`
            at flush time (read when flushing, so later registrations count).
        on_commit: called after every commit with the earliest due instant among the timers
            it created (or None), e.g. to arm the scheduler's wake-up.
        after_commit: where to hand the committed changes of background transactions.
        flush_rows: in a batch, flush once this many history rows are staged.
    """

    def __init__(self, db: Database, participants: Callable[[], Sequence[Participant]],
                 on_commit: Callable[[datetime | None], None],
                 after_commit: AfterCommitExecutor, *, flush_rows: int = 2000):
        self.db = db
        self._participants = participants
        self._on_commit = on_commit
        self._executor = after_commit
        self.flush_rows = flush_rows
        self._state = _State()

    # -- state ----------------------------------------------------------------------------

    @property
    def top(self) -> Layer:
        """The top layer of this thread's stack.

        Raises:
            RuntimeError: no transaction is open on this thread.
        """
        top = self._state.top
        if top is None:
            raise RuntimeError("no transaction is open; run commands through the engine")
        return top

    @property
    def conn(self) -> Connection:
        """The connection of this thread's transaction.

        Raises:
            RuntimeError: no transaction is open on this thread.
        """
        conn = self._state.conn
        if conn is None:
            raise RuntimeError("no transaction is open; run commands through the engine")
        return conn

    @property
    def active(self) -> bool:
        """Whether this thread has a transaction open."""
        return self._state.conn is not None

    @property
    def in_batch(self) -> bool:
        """Whether this thread's transaction is a batch."""
        return self._state.batch

    @property
    def floor(self) -> DueFloor | None:
        """The next-due bound of this thread's SQLite batch (None outside one)."""
        return self._state.floor

    def in_host(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` with this thread marked as running host guards and actions.

        While it runs, :attr:`host_running` is true: the command handler refuses commands
        issued from there (:class:`~engine.errors.CommandInsideCallback`).
        """
        st = self._state
        st.host += 1
        try:
            return fn(*args)
        finally:
            st.host -= 1

    @property
    def host_running(self) -> bool:
        """Whether this thread is inside host guards or actions (:meth:`in_host`)."""
        return self._state.host > 0

    def note_timer(self, due: datetime) -> None:
        """A timer due at ``due`` was staged (for the batch's next-due bound)."""
        floor = self._state.floor
        if floor is not None:
            floor.lower(due)

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, batch: bool = False, background: bool = False,
                    read_only: bool = False) -> Iterator[Layer]:
        """A write transaction with an empty window, or the one this thread has open.

        Args:
            batch: many commands in one transaction (see the module docstring).
            background: run the after-commit hooks on the :class:`AfterCommitExecutor`
                (fired timers), not on this thread.
            read_only: when none is open, a read on a plain connection (no write lock);
                staging anything in it raises RuntimeError at the end.

        On success the window is flushed and committed, then the hooks run; on an exception
        the transaction rolls back and nothing of it remains.
        """
        st = self._state
        if st.conn is not None:
            yield self.top.root()
            return
        root = Layer()
        committed = False
        try:
            with self.db.read() if read_only else self.db.write() as conn:
                st.conn, st.top, st.batch = conn, root, batch
                st.background = background
                st.floor = DueFloor() if batch and self.db.dialect == "sqlite" else None
                yield root
                if st.top is not root:  # pragma: no cover - layers are context managers
                    raise RuntimeError("a command layer was left open")
                if read_only and root.staged():
                    raise RuntimeError("a read-only unit staged changes")
                self._flush(root, keep_records=False)
            committed = True
        finally:
            undo, st.undo = st.undo, []
            st.conn, st.top, st.batch, st.floor = None, None, False, None
            st.background = False
            if not committed:
                for step in reversed(undo):
                    step()
        self._committed(root, background)

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` should this thread's open transaction roll back instead of committing.

        For what lives outside the database and followed a write of the transaction (the
        catalog's cache of a version deployed in it). ``undo`` must not raise, and may run
        more than once.

        Raises:
            RuntimeError: no transaction is open on this thread.
        """
        if self._state.conn is None:
            raise RuntimeError("no transaction is open; run commands through the engine")
        self._state.undo.append(undo)

    def layer(self) -> _LayerScope:
        """A layer for one command on top of this thread's stack (see the module docstring).

        Use as ``with uow.layer() as layer:``. When the block ends normally the layer's
        changes merge into the one below; when it raises they are dropped.

        Raises:
            RuntimeError: no transaction is open on this thread.
        """
        scope = _LayerScope(self.top)
        scope.uow = self
        return scope

    def changes_so_far(self) -> int:
        """How many changes the open transaction holds for its after-commit hooks.

        A mark for :meth:`drop_window`.
        """
        return len(self.top.root().changes)

    def drop_window(self, keep_changes: int = 0) -> None:
        """Forget everything staged and read in the window (after a savepoint rollback).

        Args:
            keep_changes: how many of the transaction's changes to keep for its after-commit
                hooks (:meth:`changes_so_far` before the savepoint): those of the commands
                flushed before it, which the savepoint's rollback did not undo.
        """
        root = self.top.root()
        root.clear_staged(keep_records=False)
        root.changes = root.changes[:keep_changes]
        root.flushed = len(root.changes)  # flushed before the savepoint (by definition)

    # -- flushing and reading -------------------------------------------------------------

    def flush(self) -> None:
        """Write what the window holds now (inside the open transaction)."""
        top = self.top
        root = top.root()
        self._flush(root, keep_records=top is not root)

    def query(self, fn: Callable[[Connection], T]) -> T:
        """Run a read that must see what the window holds: flush it first."""
        self.flush()
        return fn(self.conn)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads: this thread's transaction (flushed), else a fresh one."""
        if self._state.conn is not None:
            self.flush()
            yield self._state.conn
        else:
            with self.db.read() as conn:
                yield conn

    def _flush(self, root: Layer, *, keep_records: bool) -> None:
        # Between commands the records read so far are kept (clean) for the next commands
        # of the transaction, up to KEPT_RECORDS of them; then the working copy starts over.
        keep_records = keep_records or len(root.records) <= KEPT_RECORDS
        if not root.staged():
            if not keep_records:
                root.records = {}
            return
        by_key = {p.key: p for p in self._participants() if p.key}
        records = root.records
        dirty = [records[tid] for tid in root.dirty]
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        rows: list[tuple[Any, Mapping[str, Any]]] = []
        for rec in dirty:
            stored = rec.stored
            if stored.exists:
                updates.append(_ticket_update(rec))
            else:
                inserts.append(_ticket_row(rec))
            ext = rec.ext
            if ext:
                stored_ext = stored.ext
                for key, value in ext.items():
                    before = stored_ext.get(key)
                    if value is not before:
                        rows += by_key[key].writes(rec.id, before, value)
        rows += root.rows
        if root.flushed < len(root.changes):
            new = root.changes[root.flushed:] if root.flushed else root.changes
            for p in self._event_rows():
                rows += p.event_rows(new)
        flush(self.conn, ChangeSet(inserts, updates, root.history, root.timer_ops,
                                   root.cancelled, rows))
        for rec in dirty:
            stored = rec.stored
            stored.exists = True
            stored.version = rec.version
            stored.definition_id = rec.definition_id
            if rec.ext:
                stored.ext.update(rec.ext)
        root.clear_staged(keep_records=keep_records)

    def _event_rows(self) -> list[Participant]:
        """The participants that build rows from the changes at the flush (``event_rows``)."""
        return [p for p in self._participants()
                if type(p).event_rows is not Participant.event_rows]

    def _committed(self, root: Layer, background: bool) -> None:
        self._on_commit(root.wake)
        changes = root.changes
        if not changes:
            return
        hooks = [p for p in self._participants() if type(p).after_commit
                 is not Participant.after_commit]
        if not hooks:
            return

        def run() -> None:
            for p in hooks:
                try:
                    p.after_commit(changes)
                except Exception:
                    log.exception("after_commit of %s failed", type(p).__name__)

        if background:
            self._executor.submit(run)
        else:
            run()


class _LayerScope(Layer):
    """A command's layer, and the context manager :meth:`UnitOfWork.layer` returns.

    One object per command rather than a layer and a context manager around it.
    """

    __slots__ = ("uow",)

    uow: UnitOfWork

    def __enter__(self) -> Layer:
        self.uow._state.top = self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """End the layer: merge it down if the block ended normally, else drop it.

        A batch's window is flushed once it holds ``flush_rows`` history rows.
        """
        uow, parent = self.uow, self.parent
        st = uow._state
        st.top = parent
        if exc_type is not None or parent is None:
            return
        self.merge_into_parent()
        if parent.parent is None and st.batch and len(parent.history) >= uow.flush_rows:
            uow._flush(parent, keep_records=False)


def _ticket_row(rec: TicketRecord) -> dict[str, Any]:
    return {"id": rec.id, "definition_id": rec.definition_id, "state": rec.state,
            "level": rec.level, "fields": rec.fields, "overdue": rec.overdue,
            "created_at": rec.created_at, "updated_at": rec.updated_at,
            "row_version": rec.version}


def _ticket_update(rec: TicketRecord) -> dict[str, Any]:
    update = {"b_id": rec.id, "b_version": rec.stored.version,
              "b_state": rec.state, "b_level": rec.level, "b_fields": rec.fields,
              "b_now": rec.updated_at, "b_new_version": rec.version, "b_overdue": rec.overdue}
    if rec.definition_id != rec.stored.definition_id:  # migrated (an indexed column)
        update["b_def"] = rec.definition_id
    return update
