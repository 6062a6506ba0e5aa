"""Clocks: where the engine takes ``now`` from.

All instants are timezone-aware UTC :class:`datetime.datetime` values. The engine never reads
the wall clock inline; it asks its clock, so tests and replays run on virtual time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from engine.errors import InvalidArgument, InvalidArgumentType

__all__ = ["Clock", "SystemClock", "VirtualClock", "ensure_utc", "forward"]


def ensure_utc(value: datetime, *, what: str = "instant") -> datetime:
    """Return ``value`` converted to UTC.

    Args:
        value: an aware datetime.
        what: a name for the value, used in the error message.

    Raises:
        InvalidArgument: ``value`` is naive (has no time zone); give it one, e.g.
            ``tzinfo=UTC`` (also a ValueError).
        InvalidArgumentType: ``value`` is not a datetime (also a TypeError).
    """
    if not isinstance(value, datetime):
        raise InvalidArgumentType(what, "an aware datetime", value,
                                  hint="e.g. datetime(2024, 5, 1, 8, tzinfo=UTC)")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidArgument(what, f"{what} {value.isoformat()} has no time zone; give an "
                                    "aware datetime, e.g. datetime(2024, 5, 1, 8, tzinfo=UTC)")
    return value.astimezone(UTC)


class Clock(Protocol):
    """Something that tells the time: ``now()`` returns an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)``."""

    def now(self) -> datetime:
        """Return the wall-clock instant in UTC."""
        return datetime.now(UTC)


class VirtualClock:
    """A clock that moves only when told to; for tests and replays.

    Args:
        start: the initial instant (aware; converted to UTC). Defaults to 2024-01-01T00:00Z.

    Time never goes backwards: :meth:`set` to an earlier instant raises
    :class:`~engine.errors.InvalidArgument` (a ``ValueError``).

    Raises:
        InvalidArgument: ``start`` is naive; InvalidArgumentType: it is not a datetime.
    """

    def __init__(self, start: datetime | None = None):
        self._now = ensure_utc(start or datetime(2024, 1, 1, tzinfo=UTC), what="start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the virtual instant (aware UTC)."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Move the clock to ``instant`` (aware; not earlier than now).

        Raises:
            InvalidArgument: ``instant`` is naive or earlier than the current virtual time
                (also a ValueError); InvalidArgumentType: it is not a datetime.
        """
        instant = ensure_utc(instant)
        with self._lock:
            if instant < self._now:
                raise InvalidArgument(
                    "instant", f"virtual clock cannot go back from {self._now.isoformat()} "
                               f"to {instant.isoformat()}; give an instant at or after its now")
            self._now = instant

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` (non-negative) and return the new instant.

        Raises:
            InvalidArgument: ``delta`` is negative (also a ValueError).
            InvalidArgumentType: ``delta`` is not a timedelta.
        """
        self.set(self._now + forward(delta, example="timedelta(minutes=30)"))
        return self._now


def forward(delta: object, *, example: str) -> timedelta:
    """``delta`` as a step forward in virtual time (a non-negative timedelta).

    Args:
        delta: the step asked for.
        example: a call that would be right, for the refusal's hint.

    Raises:
        InvalidArgument: ``delta`` is negative (also a ValueError).
        InvalidArgumentType: ``delta`` is not a timedelta (also a TypeError).
    """
    if not isinstance(delta, timedelta):
        raise InvalidArgumentType("delta", "a timedelta", delta, hint=f"e.g. {example}")
    if delta < timedelta(0):
        raise InvalidArgument("delta", f"cannot advance by a negative duration {delta}; "
                                       "virtual time only moves forward")
    return delta
