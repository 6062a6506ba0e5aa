"""WAL checkpoints run on the process's checkpoint thread, never inside a writer's commit.

A commit that found the log past 1,000 pages used to copy it back into the database file
itself (SQLite's automatic checkpoint): on benchmark 11 an API request then waited 20-25 ms
for the log the timer worker wrote. Real files, real threads: the database file alone (no
``-wal`` beside it) shows what a checkpoint copied.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from engine import Actor, Engine
from engine.store.checkpoints import Checkpointer, checkpoint, checkpointer
from engine.store.database import Database

INTAKE = Actor("cc-1", "centre")  # the centre takes the report (no photo needed)


def _tickets_in_the_file_alone(path: Path, copy: Path) -> int:
    """How many tickets the database file holds without its log (a copy of the file only)."""
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'gw_tickets'"
                        ).fetchone()[0] == 0:
            return 0
        return int(conn.execute("SELECT count(*) FROM gw_tickets").fetchone()[0])
    finally:
        conn.close()


def test_writers_never_checkpoint_in_their_own_commit(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.sqlite")
    try:
        with db.write() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        with db.read() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
    finally:
        db.close()


def test_the_checkpoint_thread_copies_committed_tickets_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    eng = Engine(path)
    try:
        for i in range(3):
            eng.report("grid_incident", {"category": "drain"}, actor=INTAKE, ticket_id=f"c{i}")
        # the writers keep their connections open, so only a checkpoint puts the tickets in
        # the file itself; the thread runs one within its interval (0.2 s)
        deadline = time.monotonic() + 10
        while _tickets_in_the_file_alone(path, tmp_path / "copy.sqlite") < 3:
            assert time.monotonic() < deadline, "no checkpoint copied the log into the file"
            time.sleep(0.05)
        assert (tmp_path / "t.sqlite-wal").exists()  # the log stays while connections are open
    finally:
        eng.stop()


def test_a_checkpoint_request_never_waits_for_the_checkpoint(tmp_path: Path) -> None:
    own = Checkpointer(interval=30)  # its thread sleeps 30 s before it runs anything
    own.attach(str(tmp_path / "t.sqlite"))
    began = time.perf_counter()
    own.request(str(tmp_path / "t.sqlite"))
    own.request(str(tmp_path / "t.sqlite"))
    assert time.perf_counter() - began < 1
    assert own.runs == 0
    own.flush()  # what is pending runs on the caller's thread when asked
    assert own.runs == 1
    own.flush()
    assert own.runs == 1  # nothing pending any more


def test_a_checkpoint_of_a_file_that_is_gone_creates_nothing(tmp_path: Path) -> None:
    gone = tmp_path / "gone.sqlite"
    assert checkpoint(str(gone)) is None
    assert not gone.exists()
    assert checkpoint(str(tmp_path / "no-folder" / "x.sqlite")) is None


def test_a_checkpoint_copies_every_committed_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    db = Database(path)
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE filler (x TEXT)"))
            for _ in range(50):
                conn.execute(text("INSERT INTO filler VALUES (:x)"), {"x": "x" * 4000})
        checkpointer.flush()
        busy, frames, copied = checkpoint(str(path)) or (None, None, None)
        assert busy == 0 and frames is not None and frames > 50 and copied == frames
    finally:
        db.close()


def test_no_checkpoint_runs_for_a_file_once_its_last_database_closed(tmp_path: Path) -> None:
    own = Checkpointer(interval=30)
    path = str(tmp_path / "t.sqlite")
    own.attach(path)
    own.attach(path)  # two databases on one file (a worker and the API, say)
    own.request(path)
    own.detach(path)
    own.flush()
    assert own.runs == 1  # one is still open
    own.request(path)
    own.detach(path)
    own.flush()
    assert own.runs == 1  # the last closed: the request is dropped
    own.detach(path)  # once more than attached: ignored
    own.request(path)
    own.flush()
    assert own.runs == 1


def test_a_stopped_engine_s_folder_can_be_removed_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for _ in range(5):
        eng = Engine(folder / "t.sqlite")
        eng.report("grid_incident", {"category": "drain"}, actor=INTAKE)
        eng.stop()  # the report's checkpoint request is still pending
        shutil.rmtree(folder)  # fails if a checkpoint opened the file again meanwhile
        time.sleep(checkpointer.interval + 0.2)
        assert not folder.exists()  # and none creates anything afterwards
        folder.mkdir()
