"""The SQLite file's kept write connection (engine/store/database.py, issue 10's speed work).

Writers of one file queue in the process and use one connection kept across transactions;
these tests check that what the pool used to guarantee still holds: a failed transaction
leaves nothing and the next one works, writers on several threads all land, and closing
returns the connection.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

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
