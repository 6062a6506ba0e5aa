"""Shortcuts that are only valid inside :meth:`Engine.batch` on SQLite (issue 7: replay speed).

A batch on SQLite holds the database's write lock (``BEGIN IMMEDIATE``) from its first to its
last statement, so nothing another connection or process does can interleave with it. Two
things follow, and the engine uses both to spend fewer statements per replayed event:

* **A lower bound of the next due time** (:class:`DueFloor`). ``Engine.run_until`` asks for the
  earliest pending timer before every replayed event. Inside the batch the answer can only
  change through this engine: a timer it creates (all timer inserts go through
  ``Engine._notify_timers``, which lowers the bound) or one it cancels or fires (which can only
  raise the true minimum, so the bound stays a lower bound). While the bound is at or after
  the instant asked for, no timer can be due and the query is skipped. Likewise, once a claim
  returned fewer timers than it asked for and firing them created none already due, nothing is
  left to claim at that instant. On PostgreSQL, or
  outside a batch, there is no bound: other workers add timers at any moment.

  Code that inserts ``gw_timers`` rows inside a batch (a participant, a migration) must hand
  them to ``Engine._notify_timers``, or the bound would miss them.

* **No savepoint for a command that cannot fail after its first write** (:func:`lean_command`).
  Every refusal (unknown ticket, trigger, role, guard, fields, top level) is raised before the
  command writes anything, and the write lock rules out a concurrent change, so a savepoint per
  command buys nothing but two statements. The command runs directly in the batch's
  transaction; SQLite's ``total_changes`` counter is read before and after. Should a command
  nevertheless raise after it changed rows (a bug in a participant, say), its partial writes
  cannot be undone alone: :class:`PartialCommandError` is raised instead of the original
  error, so the caller does not mistake it for a refusal, and the whole batch rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from engine.errors import GridwhistleError

__all__ = ["DueFloor", "PartialCommandError", "lean_command"]


class PartialCommandError(GridwhistleError):
    """A command inside a SQLite batch failed after writing; the whole batch is rolled back.

    Attributes:
        cause: the original exception (also chained as ``__cause__``).
    """

    def __init__(self, cause: BaseException):
        self.cause = cause
        super().__init__(
            f"a command failed after it had written ({type(cause).__name__}: {cause}); its "
            "batch is rolled back as a whole — fix the cause and run the batch again"
        )


class DueFloor:
    """A lower bound of the earliest pending timer's due time, kept for one batch.

    ``None`` as a bound means "unknown" (the database must be asked); :attr:`NOTHING` means no
    timer is pending.
    """

    __slots__ = ("_known", "_new", "_value")

    def __init__(self) -> None:
        self._known = False
        self._value: datetime | None = None  # None with _known: nothing pending
        self._new: datetime | None = None  # earliest timer created since mark()

    def set(self, next_due: datetime | None) -> None:
        """Record the exact next due time just read from the database (None: nothing pending)."""
        self._known = True
        self._value = next_due

    def lower(self, due: datetime) -> None:
        """A timer due at ``due`` was created in this batch."""
        if self._known and (self._value is None or due < self._value):
            self._value = due
        if self._new is None or due < self._new:
            self._new = due

    def mark(self) -> None:
        """Start watching for timers created from now on (see :meth:`created_due_by`)."""
        self._new = None

    def created_due_by(self, instant: datetime) -> bool:
        """True when a timer created since :meth:`mark` is due at or before ``instant``."""
        return self._new is not None and self._new <= instant

    def nothing_due_before(self, until: datetime) -> bool:
        """True when no pending timer can be due strictly before ``until``."""
        return self._known and (self._value is None or self._value >= until)


@contextmanager
def lean_command(dbapi_connection: Any) -> Iterator[None]:
    """Run a command inside a SQLite batch without a savepoint (see the module docstring).

    Args:
        dbapi_connection: the ``sqlite3.Connection`` under the batch's SQLAlchemy connection.

    Raises:
        PartialCommandError: the command raised after it had changed rows.
    """
    before = dbapi_connection.total_changes
    try:
        yield
    except Exception as exc:
        if dbapi_connection.total_changes != before:
            raise PartialCommandError(exc) from exc
        raise
