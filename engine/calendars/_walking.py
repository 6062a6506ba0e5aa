"""The day-by-day walking arithmetic: the reference the cumulative index is tested against.

This is the working-time arithmetic :class:`~engine.calendars.model.BusinessCalendar` had
before its cumulative index (``engine/calendars/_index.py``), kept unchanged as the oracle of
``tests/test_calendar_index.py`` and the baseline of ``bench/b9_calendar.py``. Each function
walks the calendar's working intervals (:meth:`BusinessCalendar.intervals`) one local day
after another, so it costs O(days covered): about 1.4 ms per year of a split-shift calendar.
The engine does not call it.

Every function takes the calendar first and otherwise has the signature, the results and the
errors of the method of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine.calendars.errors import CalendarOutOfRange
from engine.clock import ensure_utc
from engine.errors import InvalidArgument

if TYPE_CHECKING:
    from engine.calendars.model import BusinessCalendar

__all__ = ["add", "add_working_days", "is_working_time", "next_working_instant", "walk",
           "working_between"]

_ZERO = timedelta(0)
IDLE_DAYS = 3660
"""A walk that meets this many days in a row without working time gives up (ten years)."""


def walk(cal: BusinessCalendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals from ``start``'s local day on, clipped to begin at ``start``.

    Raises:
        CalendarOutOfRange: ``start``'s local day, or a day the walk reaches, is outside the
            validity period; or more than :data:`IDLE_DAYS` days in a row had no working time.
    """
    day = start.astimezone(cal.zone).date()
    cal._check_valid(day)
    if cal.valid_from is None or day > cal.valid_from:
        day -= timedelta(days=1)  # yesterday's shift may still run (in UTC terms)
    idle = 0
    while True:
        found = False
        for a, b in cal.intervals(day):
            if b > start:
                found = True
                yield max(a, start), b
        idle = 0 if found else idle + 1
        if idle > IDLE_DAYS:  # ten years without a working day: the calendar has no hours
            raise CalendarOutOfRange(cal.name, day, cal.valid_from, cal.valid_until)
        day += timedelta(days=1)


def is_working_time(cal: BusinessCalendar, instant: datetime) -> bool:
    """True if ``instant`` (aware) lies inside a working interval."""
    t = ensure_utc(instant)
    for a, b in walk(cal, t):
        return a <= t < b
    return False  # pragma: no cover - walk never ends


def next_working_instant(cal: BusinessCalendar, instant: datetime) -> datetime:
    """The first instant at or after ``instant`` that is working time (aware UTC)."""
    return add(cal, instant, _ZERO)


def add(cal: BusinessCalendar, start: datetime, working: timedelta) -> datetime:
    """The instant when ``working`` time of ``cal`` has passed after ``start``."""
    if working < _ZERO:
        raise InvalidArgument(
            "working", f"cannot add a negative working duration {working}; give zero or more")
    t = ensure_utc(start, what="start")
    left = working
    for a, b in walk(cal, t):
        if left == _ZERO:
            return a
        span = b - a
        if span >= left:
            return a + left
        left -= span
    raise AssertionError("unreachable")  # pragma: no cover - walk never ends


def working_between(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Working time between two aware instants (zero if ``end <= start``)."""
    a0, b0 = ensure_utc(start, what="start"), ensure_utc(end, what="end")
    total = _ZERO
    if b0 <= a0:
        return total
    for a, b in walk(cal, a0):
        if a >= b0:
            break
        total += min(b, b0) - a
    return total


def add_working_days(cal: BusinessCalendar, start: datetime, days: int) -> datetime:
    """The same local time of day, ``days`` working days later."""
    if days < 0:
        raise InvalidArgument(
            "days", f"cannot add a negative number of working days {days}; give zero or more")
    t = next_working_instant(cal, start)
    local = t.astimezone(cal.zone)
    day = local.date()
    count = 0
    while count < days:
        day += timedelta(days=1)
        if cal.is_working_day(day):
            count += 1
    target = datetime.combine(day, local.time(), cal.zone)
    return next_working_instant(cal, target)
