"""Business calendars: working hours, public holidays and working-time arithmetic.

A :class:`BusinessCalendar` knows, in its own time zone, which local days are working days
(weekday hours, public holidays from the ``holidays`` package, explicit extra holidays and
extra working days such as Chinese make-up workdays) and which hours of a working day are
worked (split shifts allowed). Its arithmetic works on aware UTC instants and real elapsed
seconds, so it is exact across daylight-saving changes, and costs O(log days) per call
through a per-calendar cumulative index built lazily (``engine/calendars/_index.py``).
"""

from engine.calendars.model import BusinessCalendar, CalendarOutOfRange, compile_calendars

__all__ = ["BusinessCalendar", "CalendarOutOfRange", "compile_calendars"]
