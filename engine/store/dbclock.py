"""The database server's clock, for workers whose own clocks may disagree.

Several workers on one PostgreSQL database decide deadlines: a worker whose clock runs ten
minutes fast would claim and fire a deadline ten minutes early, and stamp its commands ten
minutes in the future. :class:`DatabaseClock` makes every worker tell the time of the one
database server instead.

It does not ask the server on every ``now()`` (the engine reads the time several times per
command): it measures the offset between the local clock and the server's
``clock_timestamp()`` — the server's wall clock, not the start of a transaction — once, then
again every ``refresh_seconds``, and returns the local clock plus that offset. The offset is
taken at the midpoint of the query's round trip, so it is off by at most half a round trip
(well under a millisecond on a local network); between measurements it follows the local
clock's rate, which drifts by at most milliseconds a minute. Time never goes back: after a
new measurement ``now()`` returns at least the last instant it returned.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine as SAEngine
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.clock import Clock, SystemClock, ensure_utc
from engine.errors import ConfigurationError, InvalidArgument

__all__ = ["DatabaseClock"]

log = logging.getLogger("gridwhistle.clock")

_SERVER_NOW = {"postgresql": "SELECT clock_timestamp()"}
_RETRY_SECONDS = 5.0  # after a failed measurement, wait this long before trying again


class DatabaseClock:
    """``now()`` as the database server tells it: the local clock plus a measured offset.

    Args:
        engine: the SQLAlchemy engine of the database (PostgreSQL).
        local: the clock the offset is applied to (default :class:`SystemClock`).
        refresh_seconds: how often the offset is measured again (seconds, default 60).

    Raises:
        ConfigurationError: the database has no clock of its own to read (SQLite runs on
            this machine: use the local clock), or the first measurement failed.
        InvalidArgument: ``refresh_seconds`` is not positive (also a ValueError).
    """

    def __init__(self, engine: SAEngine, local: Clock | None = None, *,
                 refresh_seconds: float = 60.0):
        statement = _SERVER_NOW.get(engine.dialect.name)
        if statement is None:
            raise ConfigurationError(
                f"the {engine.dialect.name} database has no server clock to read; use the "
                "local clock (time_source='local')")
        if refresh_seconds <= 0:
            raise InvalidArgument("refresh_seconds", f"refresh_seconds must be positive, got "
                                                     f"{refresh_seconds}; give e.g. 60")
        self.engine = engine
        self.local: Clock = local or SystemClock()
        self.refresh_seconds = refresh_seconds
        self._statement = text(statement)
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)
        try:
            self._offset = self._measure()
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"cannot read the database server's clock: {exc}; check that the server is "
                "running, or use the local clock (time_source='local')") from exc
        self._next_measure = time.monotonic() + refresh_seconds

    @property
    def offset(self) -> timedelta:
        """The server's clock minus the local clock, as last measured."""
        return self._offset

    def now(self) -> datetime:
        """The server's current instant (aware UTC), never earlier than the last one returned.

        Measures the offset again when it is older than ``refresh_seconds``; if that fails
        (the server is briefly unreachable), the last offset is kept and a warning logged.
        """
        if time.monotonic() >= self._next_measure and self._lock.acquire(blocking=False):
            try:  # one thread measures; the others go on with the last offset meanwhile
                self._offset = self._measure()
                self._next_measure = time.monotonic() + self.refresh_seconds
            except SQLAlchemyError as exc:
                log.warning("cannot read the database server's clock (%s); keeping the "
                            "offset of %s", exc, self._offset)
                self._next_measure = time.monotonic() + _RETRY_SECONDS
            finally:
                self._lock.release()
        instant = self.local.now() + self._offset
        if instant < self._last:  # a new measurement moved the offset back a little
            return self._last
        self._last = instant
        return instant

    def measure(self) -> timedelta:
        """Measure the offset now (server minus local clock) and use it; returns it.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the server could not be asked.
        """
        with self._lock:
            self._offset = self._measure()
            self._next_measure = time.monotonic() + self.refresh_seconds
        return self._offset

    def _measure(self) -> timedelta:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # the connection is ready before we time it
            before = self.local.now()
            server = conn.execute(self._statement).scalar_one()
            after = self.local.now()
            conn.rollback()
        server = ensure_utc(server, what="the database server's clock")
        offset: timedelta = server - (before + (after - before) / 2)
        return offset
