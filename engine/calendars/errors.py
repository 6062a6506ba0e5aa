"""The calendars' error: arithmetic that needed a day outside a calendar's validity period."""

from __future__ import annotations

from datetime import date

from engine.errors import GridwhistleError

__all__ = ["CalendarOutOfRange"]


class CalendarOutOfRange(GridwhistleError):
    """Working-time arithmetic needed a day outside the calendar's validity period.

    Extend the calendar's ``valid_from`` / ``valid_until`` (and check its extra holidays and
    working days for the new years), then deploy the lifecycle again.

    Attributes:
        calendar: the calendar's name.
        day: the local date that was needed.
        valid_from, valid_until: the calendar's validity period (None: open at that end).
    """

    def __init__(self, calendar: str, day: date, valid_from: date | None,
                 valid_until: date | None):
        self.calendar = calendar
        self.day = day
        self.valid_from = valid_from
        self.valid_until = valid_until
        super().__init__(
            f"calendar {calendar!r} is valid from {valid_from or 'the beginning'} to "
            f"{valid_until or 'the end'}, but {day.isoformat()} was needed; extend its "
            "validity period (and its extra holidays / working days), deploy again and move "
            "the running tickets to the new version (`gridwhistle migrate`)"
        )
