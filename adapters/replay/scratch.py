"""A replay's scratch file: what it must remember per row, kept on disk instead of in memory.

A replay streams its input, so its memory does not grow with the number of rows (issue 10,
item 7). Two things still need one entry per row, and they live in a temporary SQLite file
(its page cache is bounded; the file is removed when the replay ends):

* ``seen``: every ticket id with its first row and a digest of that row's cells, to tell an
  exact repeat of a row (skipped, counted) from a conflicting one (rejected);
* ``verdicts``: for a computed verdict, what the source says about each replayed ticket
  (overdue or not, or its deadline when the request was still open).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["Scratch"]

_CHUNK = 500  # ids per IN (...) query: far below SQLite's variable limit
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(instant: datetime) -> int:
    """An aware instant as whole microseconds since 1970 (exact, unlike a float)."""
    return (instant - _EPOCH) // _MICROSECOND


class Scratch:
    """A temporary SQLite file for one replay; use as a context manager (removes the file)."""

    def __init__(self, folder: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="gridwhistle-replay-", dir=folder)
        self.folder = Path(self._dir.name)
        """A private folder for other temporary files of the replay (removed with it)."""
        self._db = sqlite3.connect(self.folder / "scratch.sqlite", isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE seen (id TEXT PRIMARY KEY, row INTEGER, digest INTEGER) WITHOUT ROWID;"
            "CREATE TABLE verdicts (id TEXT PRIMARY KEY, overdue INTEGER, deadline INTEGER)"
            " WITHOUT ROWID;"
            "BEGIN;"
        )

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close and remove the file (safe to call twice)."""
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]
            self._dir.cleanup()

    # -- repeats ----------------------------------------------------------------------------

    def repeats(self, batch: Sequence[tuple[str, int, int]]) -> list[tuple[int, int, bool]]:
        """Record ``(ticket id, row, digest)`` items; return the ones whose id was seen before.

        Items are taken in order (the first row of an id is the earliest one recorded, in this
        call or an earlier one). Each repeat comes back as ``(row, first row, exact)``, exact
        when its digest equals the first row's.
        """
        known: dict[str, tuple[int, int]] = {}
        for start in range(0, len(batch), _CHUNK):
            ids = list({item[0] for item in batch[start:start + _CHUNK]})
            marks = ",".join("?" * len(ids))
            for tid, row, digest in self._db.execute(
                    f"SELECT id, row, digest FROM seen WHERE id IN ({marks})", ids):
                known[tid] = (row, digest)
        out: list[tuple[int, int, bool]] = []
        new: list[tuple[str, int, int]] = []
        for tid, row, digest in batch:
            first = known.get(tid)
            if first is None:
                known[tid] = (row, digest)
                new.append((tid, row, digest))
            else:
                out.append((row, first[0], first[1] == digest))
        self._db.executemany("INSERT INTO seen VALUES (?, ?, ?)", new)
        return out

    # -- computed verdicts ------------------------------------------------------------------

    def expect(self, ticket_id: str, overdue: bool | None, deadline: datetime | None) -> None:
        """Record the source's verdict on a replayed ticket.

        ``overdue`` is True or False, or None while the request is still open: then it is
        judged against ``deadline`` (aware) at the end of the replay.
        """
        self._db.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)",
            (ticket_id, None if overdue is None else int(overdue),
             None if deadline is None else _micros(deadline)))

    def forget(self, ticket_id: str) -> None:
        """The ticket was cut short by a refusal: its source verdict is not compared."""
        self._db.execute("DELETE FROM verdicts WHERE id = ?", (ticket_id,))

    def expectations(self, as_of: datetime) -> Iterator[list[tuple[str, bool]]]:
        """Every expected verdict, ``(ticket id, overdue)``, in chunks (of at most 500).

        A request still open is overdue when its deadline is before ``as_of`` (aware).
        """
        cursor = self._db.execute("SELECT id, overdue, deadline FROM verdicts ORDER BY id")
        limit = _micros(as_of)
        while True:
            rows = cursor.fetchmany(_CHUNK)
            if not rows:
                return
            yield [(tid, bool(overdue) if overdue is not None
                    else deadline is not None and deadline < limit)
                   for tid, overdue, deadline in rows]
