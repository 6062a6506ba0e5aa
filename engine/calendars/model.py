"""The business calendar model and its working-time arithmetic.

Rules (documented for administrators in ``docs/yaml-reference.md``, section *Calendars*):

* A local day is a **working day** when, in this order: it is an extra holiday → no; it is an
  extra working day or a make-up workday known to the ``holidays`` package (Chinese 调休 days
  that fall on a weekend) → yes; it is a public holiday → no; otherwise its weekday has hours.
* A make-up workday that falls on a day without weekday hours is worked with the calendar's
  ``make_up_day_hours`` (by default Monday's hours).
* **Working time** is the union of the day's shifts, each a local ``[start, end)`` interval
  converted to UTC with the calendar's zone (``zoneinfo``). Durations are real elapsed seconds
  inside those intervals: on a daylight-saving day a shift lasts what the wall clock says it
  lasts in real time.
* **Outside working hours**: a clock started outside working time starts at the next working
  instant (``add(t, 0)``); a duration counted from a Saturday evening report starts on the
  next working morning.
* The calendar is **valid** from ``valid_from`` to ``valid_until`` (local dates, inclusive):
  arithmetic that would need a day outside that range raises :class:`CalendarOutOfRange`, so a
  stale calendar never silently invents working days.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from engine.clock import ensure_utc
from engine.errors import GridwhistleError

if TYPE_CHECKING:
    from engine.definition.schema import CalendarSpec

__all__ = ["BusinessCalendar", "CalendarOutOfRange", "compile_calendars"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ZERO = timedelta(0)

Shift = tuple[time, time]


class CalendarOutOfRange(GridwhistleError):
    """Working-time arithmetic needed a day outside the calendar's validity period.

    Extend the calendar's ``valid_from`` / ``valid_until`` (and check its extra holidays and
    working days for the new years), then deploy the lifecycle again.

    Attributes:
        calendar: the calendar's name.
        day: the local date that was needed.
    """

    def __init__(self, calendar: str, day: date, valid_from: date | None,
                 valid_until: date | None):
        self.calendar = calendar
        self.day = day
        super().__init__(
            f"calendar {calendar!r} is valid from {valid_from or 'the beginning'} to "
            f"{valid_until or 'the end'}, but {day.isoformat()} was needed; extend its "
            "validity period (and its extra holidays / working days) and deploy again"
        )


@dataclass(frozen=True)
class BusinessCalendar:
    """A business calendar: a zone, weekday shifts, holidays and a validity period.

    Attributes:
        name: the calendar's name in the lifecycle file.
        zone: the IANA time zone its hours are written in.
        shifts: local shifts per weekday (0 = Monday), each ``(start, end)`` with start < end.
        make_up_shifts: shifts worked on a make-up workday that has no weekday hours.
        country, subdivision: the ``holidays`` package's country (ISO 3166-1 alpha-2, e.g.
            ``CN``) and subdivision, or None for no public holidays.
        extra_holidays: local dates that are never worked.
        extra_working_days: local dates that are worked even if weekend or holiday.
        valid_from, valid_until: validity period (local dates, inclusive), or None.
    """

    name: str
    zone: ZoneInfo
    shifts: tuple[tuple[Shift, ...], ...]
    make_up_shifts: tuple[Shift, ...] = ()
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    valid_from: date | None = None
    valid_until: date | None = None
    _public: Any = field(default=None, compare=False, repr=False)
    _days: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.country is not None:
            public = holidays_lib.country_holidays(self.country, subdiv=self.subdivision)
            object.__setattr__(self, "_public", public)

    # -- days ------------------------------------------------------------------------------

    def is_public_holiday(self, day: date) -> bool:
        """True if the ``holidays`` package lists ``day`` as a public holiday."""
        return self._public is not None and day in self._public

    def is_make_up_workday(self, day: date) -> bool:
        """True if ``day`` is an extra working day or a make-up workday of the country."""
        if day in self.extra_working_days:
            return True
        if self._public is None:
            return False
        _ = day in self._public  # populates that year, including its weekend workdays
        return day in getattr(self._public, "weekend_workdays", ())

    def is_working_day(self, day: date) -> bool:
        """True if local date ``day`` has working hours (see the module's rules)."""
        return bool(self._day_shifts(day))

    def _day_shifts(self, day: date) -> tuple[Shift, ...]:
        self._check_valid(day)
        if day in self.extra_holidays:
            return ()
        weekday = self.shifts[day.weekday()]
        if self.is_make_up_workday(day):
            return weekday or self.make_up_shifts
        if self.is_public_holiday(day):
            return ()
        return weekday

    def _check_valid(self, day: date) -> None:
        if (self.valid_from is not None and day < self.valid_from) or (
            self.valid_until is not None and day > self.valid_until
        ):
            raise CalendarOutOfRange(self.name, day, self.valid_from, self.valid_until)

    def intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of local date ``day`` as aware UTC ``(start, end)`` pairs.

        Raises:
            CalendarOutOfRange: ``day`` is outside the validity period.
        """
        cached = self._days.get(day)
        if cached is None:
            cached = tuple(
                (datetime.combine(day, a, self.zone).astimezone(UTC),
                 datetime.combine(day, b, self.zone).astimezone(UTC))
                for a, b in self._day_shifts(day)
            )
            if len(self._days) > 20_000:
                self._days.clear()
            self._days[day] = cached
        return cached

    def _walk(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals from ``start``'s local day on, clipped to begin at ``start``."""
        day = start.astimezone(self.zone).date()
        self._check_valid(day)
        if self.valid_from is None or day > self.valid_from:
            day -= timedelta(days=1)  # yesterday's shift may still run (in UTC terms)
        idle = 0
        while True:
            found = False
            for a, b in self.intervals(day):
                if b > start:
                    found = True
                    yield max(a, start), b
            idle = 0 if found else idle + 1
            if idle > 3660:  # ten years without a working day: the calendar has no hours
                raise CalendarOutOfRange(self.name, day, self.valid_from, self.valid_until)
            day += timedelta(days=1)

    # -- instants ----------------------------------------------------------------------------

    def is_working_time(self, instant: datetime) -> bool:
        """True if ``instant`` (aware) lies inside a working interval."""
        t = ensure_utc(instant)
        for a, b in self._walk(t):
            return a <= t < b
        return False  # pragma: no cover - _walk never ends

    def next_working_instant(self, instant: datetime) -> datetime:
        """The first instant at or after ``instant`` that is working time (aware UTC)."""
        return self.add(instant, _ZERO)

    def add(self, start: datetime, working: timedelta) -> datetime:
        """The instant when ``working`` time of this calendar has passed after ``start``.

        Args:
            start: aware datetime. Outside working hours, counting starts at the next working
                instant.
            working: working time to add (non-negative).

        Returns:
            An aware UTC datetime. With ``working == 0``: the next working instant. A
            duration that ends exactly at the end of a shift returns that end (17:30, not the
            next morning).

        Raises:
            ValueError: ``working`` is negative or ``start`` is naive.
            CalendarOutOfRange: the result lies beyond the validity period.
        """
        if working < _ZERO:
            raise ValueError(f"cannot add a negative working duration {working}")
        t = ensure_utc(start, what="start")
        left = working
        for a, b in self._walk(t):
            if left == _ZERO:
                return a
            span = b - a
            if span >= left:
                return a + left
            left -= span
        raise AssertionError("unreachable")  # pragma: no cover - _walk never ends

    def working_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two aware instants (zero if ``end <= start``)."""
        a0, b0 = ensure_utc(start, what="start"), ensure_utc(end, what="end")
        total = _ZERO
        if b0 <= a0:
            return total
        for a, b in self._walk(a0):
            if a >= b0:
                break
            total += min(b, b0) - a
        return total

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time of day, ``days`` working days later.

        Counting starts from the next working instant; if that time of day is outside the
        target day's working hours, the result is the next working instant after it.

        Raises:
            ValueError: ``days`` is negative.
            CalendarOutOfRange: beyond the validity period.
        """
        if days < 0:
            raise ValueError(f"cannot add a negative number of working days {days}")
        t = self.next_working_instant(start)
        local = t.astimezone(self.zone)
        day = local.date()
        count = 0
        while count < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        target = datetime.combine(day, local.time(), self.zone)
        return self.next_working_instant(target)


def _shift(text: str) -> Shift:
    a, b = text.split("-")
    return time.fromisoformat(a.strip()), time.fromisoformat(b.strip())


def compile_calendars(specs: Mapping[str, CalendarSpec]) -> dict[str, BusinessCalendar]:
    """Build the :class:`BusinessCalendar` of each validated calendar spec, by name."""
    out: dict[str, BusinessCalendar] = {}
    for name, spec in specs.items():
        hours: dict[str, list[str]] = {str(k): v for k, v in spec.hours.items()}
        shifts = tuple(tuple(_shift(s) for s in hours.get(day, [])) for day in WEEKDAYS)
        make_up = (tuple(_shift(s) for s in spec.make_up_day_hours)
                   if spec.make_up_day_hours is not None
                   else next((s for s in shifts if s), ()))
        out[name] = BusinessCalendar(
            name=name, zone=ZoneInfo(spec.zone), shifts=shifts, make_up_shifts=make_up,
            country=spec.holidays.country if spec.holidays else None,
            subdivision=spec.holidays.subdivision if spec.holidays else None,
            extra_holidays=frozenset(date.fromisoformat(d) for d in spec.extra_holidays),
            extra_working_days=frozenset(
                date.fromisoformat(d) for d in spec.extra_working_days),
            valid_from=date.fromisoformat(spec.valid_from) if spec.valid_from else None,
            valid_until=date.fromisoformat(spec.valid_until) if spec.valid_until else None,
        )
    return out
