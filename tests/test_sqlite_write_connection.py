"""The SQLite file's kept write connection (engine/store/database.py, issue 10's speed work).

Writers of one file queue in the process and use one connection kept across transactions;
these tests check that what the pool used to guarantee still holds: a failed transaction
leaves nothing and the next one works, writers on several threads all land, closing returns
the connection (after a write in progress), and a locked file is SQLAlchemy's error.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine import Actor, Engine
from engine.errors import InvalidArgument
from engine.store import database
from engine.store.database import Database


def _db(tmp_path: Path) -> Database:
    db = Database(tmp_path / "w.sqlite")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
    return db


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_a_failed_write_leaves_nothing_and_the_next_write_works(tmp_path: Path) -> None:
    db = _db(tmp_path)
    try:
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("refused after a write")
        assert _count(db) == 0
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        assert _count(db) == 1
        # and a statement error (the driver's) does not poison the kept connection
        with pytest.raises(Exception, match="no such table"), db.write() as conn:
            conn.execute(text("INSERT INTO missing VALUES (3)"))
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (4)"))
        assert _count(db) == 2
    finally:
        db.close()


def test_writers_on_several_threads_all_land(tmp_path: Path) -> None:
    db = _db(tmp_path)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(50):
                with db.write() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": k * 1000 + i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert _count(db) == 200
    finally:
        db.close()


def test_the_write_connection_is_kept_and_returned_on_close(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.write() as first:
        pass
    with db.write() as second:
        pass
    assert first is second  # kept across transactions
    assert db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    db.close()
    assert first.closed


def test_a_locked_file_gives_sqlalchemys_error_and_the_next_write_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``BEGIN IMMEDIATE`` runs on the driver's connection; its failure is still raised as
    SQLAlchemy's ``OperationalError`` (what callers and the CLI catch), not the driver's."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    db = _db(tmp_path)
    other = sqlite3.connect(tmp_path / "w.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(OperationalError, match="locked"), db.write():
            pass
        other.execute("ROLLBACK")
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _count(db) == 1
    finally:
        other.close()
        db.close()


def test_closing_waits_for_a_write_in_progress_on_another_thread(tmp_path: Path) -> None:
    db = _db(tmp_path)
    inside, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def write() -> None:
        try:
            with db.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
                inside.set()
                release.wait(5)
                conn.execute(text("INSERT INTO t VALUES (2)"))
            outcome.append("committed")
        except BaseException as exc:  # pragma: no cover - the failure reported below
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert inside.wait(5)
    closer = threading.Thread(target=db.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # waiting for the writer's turn
    release.set()
    writer.join(5)
    closer.join(5)
    assert outcome == ["committed"]
    check = Database(tmp_path / "w.sqlite")
    try:
        assert _count(check) == 2
    finally:
        check.close()


def _open_fds(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path`` or its -wal/-shm."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if str(fd.readlink()) in names:
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_an_engine_that_refuses_its_arguments_closes_the_database_it_opened(
        tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    with pytest.raises(InvalidArgument) as refused:  # after the file was opened and created
        Engine(path, lease_seconds=0)
    # the traceback (kept in `refused`) still holds the half-built engine: its database must
    # be closed all the same, not left to the garbage collector
    assert refused.traceback and _open_fds(path) == 0


def test_the_wal_stays_bounded_under_a_steady_write_load(tmp_path: Path) -> None:
    """SQLite restarts the log only after a checkpoint that copied all of it before the next
    write began; a checkpoint beside the writers never does under a steady load (tried in
    commits 28dab5c-b62b4a8 and reverted: the log grew to gigabytes in a minute)."""
    path = tmp_path / "w.sqlite"
    eng = Engine(path)
    try:
        centre = Actor("cc-1", "centre")
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            eng.report("grid_incident", {"category": "drain"}, actor=centre)
        wal = Path(f"{path}-wal").stat().st_size
        assert wal < 32 * 2**20, f"the -wal file grew to {wal / 2**20:.0f} MiB in 2 s"
    finally:
        eng.stop()
