"""Spans: elapsed or working durations from lifecycle files, applied to instants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from engine.calendars.model import BusinessCalendar
from engine.definition.schema import WorkingSpan

__all__ = ["due_after", "measure"]


def due_after(
    calendars: Mapping[str, BusinessCalendar], span: timedelta | WorkingSpan, start: datetime
) -> datetime:
    """The instant ``span`` after ``start`` (aware UTC).

    An elapsed span (a timedelta) is plain addition. A working span counts working time of its
    calendar (``working``) or whole working days (``working_days``); outside working hours it
    starts at the calendar's next working instant.

    Raises:
        CalendarOutOfRange: the calendar's validity period does not cover the result.
    """
    if isinstance(span, timedelta):
        return start + span
    cal = calendars[span.calendar]
    if span.working is not None:
        return cal.add(start, span.working)
    return cal.add_working_days(start, span.working_days or 0)


def measure(
    calendars: Mapping[str, BusinessCalendar], span: timedelta | WorkingSpan,
    start: datetime, end: datetime,
) -> timedelta:
    """Time between ``start`` and ``end``, counted the way ``span`` counts.

    That is elapsed time for a timedelta, working time of its calendar for a working span.
    """
    if isinstance(span, timedelta):
        return max(end - start, timedelta(0))
    return calendars[span.calendar].working_between(start, end)
