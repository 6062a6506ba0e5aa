"""WAL checkpoints of SQLite files, run off every writer's path.

In WAL mode SQLite appends each commit to the log (``<file>-wal``) and, by default, copies
the log back into the database file — a checkpoint — inside the commit that finds the log
past 1,000 pages (https://www.sqlite.org/wal.html, "Automatic Checkpoint"). Whoever commits
then waits for it: on benchmark 11 that was an API request, 20–25 ms once every few dozen
requests, while the timer worker that wrote most of the log went on.

Gridwhistle's SQLite connections turn that off (``PRAGMA wal_autocheckpoint = 0``, set by
:class:`~engine.store.database.Database`) and one thread of the process checkpoints instead:
each write transaction that commits asks for a checkpoint of its file
(:meth:`Checkpointer.request`, a set insert); the thread gathers the requests of
:attr:`Checkpointer.interval` seconds (0.2 s) and runs one ``PASSIVE`` checkpoint per file, on a
connection of its own. A passive checkpoint takes no writer lock and waits for no reader or
writer (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html): it copies what it can, and
SQLite's C code runs without Python's GIL, so the writers go on meanwhile.

What SQLite still does itself: the last connection of a file to close checkpoints the file and
deletes the log, so a short-lived process (a CLI command) leaves no log behind, and a log
that no checkpoint reached yet is recovered by the next connection after a crash (a ``kill -9``
loses nothing committed: the log is the record until it is copied).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from urllib.parse import quote

__all__ = ["Checkpointer", "checkpoint", "checkpointer"]

log = logging.getLogger("gridwhistle.store")


def checkpoint(path: str) -> tuple[int, int, int] | None:
    """Run one ``PASSIVE`` WAL checkpoint of the SQLite file at ``path``, on a new connection.

    Args:
        path: the database file's absolute path (not a URL). A file that is gone is not
            created again (the connection opens it read-write only if it exists).

    Returns:
        SQLite's ``(busy, log frames, frames checkpointed)``, or None when the file cannot be
        opened or checkpointed (the error is logged at debug level: the next request or the
        last connection's close checkpoints it). Never raises for a database error.
    """
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=0,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        log.debug("no WAL checkpoint of %s: %s", path, exc)
        return None
    try:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row is not None else None
    except sqlite3.Error as exc:
        log.debug("WAL checkpoint of %s failed: %s", path, exc)
        return None
    finally:
        conn.close()


class Checkpointer:
    """The process's WAL checkpoints: requested by committing writers, run on one thread.

    Args:
        interval: seconds the thread gathers requests before it checkpoints (default 0.2);
            the log then holds at most what the writers commit in that time (plus what a
            long-lived reader keeps SQLite from copying).

    The thread (a daemon, ``gridwhistle-checkpoints``) starts at the first request and then
    waits for requests; it holds no connection between checkpoints. It checkpoints only the
    files that an open :class:`~engine.store.database.Database` has attached
    (:meth:`attach`); once the last one detaches (:meth:`detach`, at its ``close``) none of
    its checkpoints is running or runs later, so the file's folder can be removed at once.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.runs = 0  # checkpoints run (read by tests)
        self._lock = threading.Lock()  # the requests and attachments
        self._running = threading.Lock()  # held while a checkpoint runs
        self._wake = threading.Event()
        self._pending: set[str] = set()
        self._attached: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    def attach(self, path: str) -> None:
        """Count one more open database on ``path`` (its checkpoints may run from now on)."""
        with self._lock:
            self._attached[path] = self._attached.get(path, 0) + 1

    def detach(self, path: str) -> None:
        """Count one open database on ``path`` less; after the last, no checkpoint of it runs.

        Waits for a checkpoint of the file in progress (a passive one, which waits for no
        lock: milliseconds). Detaching more often than attached is ignored.
        """
        with self._lock:
            left = self._attached.get(path, 0) - 1
            if left > 0:
                self._attached[path] = left
                return
            self._attached.pop(path, None)
            self._pending.discard(path)
        with self._running:
            pass  # one that began before the detach has ended

    def request(self, path: str) -> None:
        """Ask for a checkpoint of ``path`` (an absolute file path) within :attr:`interval`.

        Cheap when one is already pending (a set lookup); never blocks on a checkpoint.
        """
        if path in self._pending:
            return
        with self._lock:
            self._pending.add(path)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, daemon=True,
                                                name="gridwhistle-checkpoints")
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Checkpoint every file with a pending request now, on the calling thread."""
        for path in self._take():
            self._run(path)

    def _take(self) -> set[str]:
        with self._lock:
            self._wake.clear()
            paths, self._pending = self._pending, set()
        return paths

    def _run(self, path: str) -> None:
        with self._running:
            if path in self._attached:  # (read under the GIL; detach waits for this lock)
                self.runs += 1
                checkpoint(path)

    def _work(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.interval)  # gather the next commits' requests too
            for path in self._take():
                try:
                    self._run(path)
                except Exception:  # pragma: no cover - checkpoint() catches database errors
                    log.exception("WAL checkpoint of %s failed", path)


checkpointer = Checkpointer()
"""The process's one :class:`Checkpointer` (every :class:`~engine.store.database.Database`
on a SQLite file asks it)."""
