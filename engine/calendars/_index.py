"""The cumulative working-time index of one business calendar.

How it works
------------
Every local day ``d`` of the calendar contributes its working intervals as absolute UTC
instants, in integer microseconds since 1970-01-01T00:00Z (:func:`utc_intervals`: the day's
shifts converted with the calendar's zone, then sorted, clipped to the day and merged where
they overlap). Laid end to end, day after day, they form one sorted list of disjoint
intervals, stored as parallel arrays:

* ``starts[k]``, ``ends[k]``: interval ``k``; ``days[k]``: the ordinal of its local day;
* ``cum[k]``: the working microseconds of all intervals before ``k`` (a prefix sum, so
  ``len(cum) == len(starts) + 1``);
* ``working_days``: the ordinals of the working days (days with shifts), for
  ``add_working_days``;
* ``gaps``: the (rare) ``k`` where more than ten years pass without working time between
  interval ``k - 1`` and ``k``; the walking arithmetic gave up there, and so does this.

With those, the working time before an instant ``x`` is
``cum[m] + min(x, ends[m]) - starts[m]`` for the last interval ``m`` starting at or before
``x`` (one ``bisect``), so:

* ``working_between(a, b)`` is that value at ``b`` minus that value at ``a``;
* ``add(t, w)`` bisects ``cum`` for the first interval where the prefix sum reaches the
  working time before ``t`` plus ``w``, and lands inside it;
* ``next_working_instant(t)`` and ``is_working_time(t)`` bisect ``ends`` for the first
  interval still running after ``t``;
* ``add_working_days(t, n)`` bisects ``working_days`` and steps ``n`` places.

Each costs O(log intervals) plus a few ``datetime`` conversions (about 3-6 µs), whatever the
span, instead of one step per day (1.4 ms for a year). Results and :class:`CalendarOutOfRange`
errors are those of the day-by-day walk kept in ``engine/calendars/_walking.py`` (the test
oracle, ``tests/test_calendar_index.py``): the walk looks at the day before the start's local
day, stops where it stops and raises on the first day outside the validity period it reaches,
and this index reproduces where the walk would stop and which day it would reach.

Building, memory, threads
-------------------------
The index is built lazily, one calendar year (clipped to ``valid_from`` .. ``valid_until``)
at a time, when a computation first needs a day outside the years built so far; the built
years always form one contiguous range, growing left or right. A calendar without validity
bounds grows the same way and as far as its queries reach. A year costs about 3 ms to build
(the ``holidays`` lookups and the zone conversions); a 21-year calendar with a split shift
(7,670 days, about 10,000 intervals) takes about 300 KB of ``array`` storage.

The built range is an immutable snapshot, replaced as a whole: readers take the current
snapshot without a lock; extending takes a lock, checks again, builds the missing years and
publishes a new snapshot. A calendar is compiled once per lifecycle version and shared by all
threads, so one index serves them all.

Local times that do not exist (a daylight-saving gap) follow ``zoneinfo`` (``fold=0``: the
offset before the change), as they always did; where that makes a shift end before it starts
or overlap another shift in UTC, the overlap counts once and a reversed shift counts nothing.
Shifts ending at 24:00 cannot be written (``datetime.time`` stops at 23:59:59.999999).
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.calendars.errors import CalendarOutOfRange

__all__ = ["IDLE_DAYS", "WorkingIndex", "from_us", "to_us", "utc_intervals"]

Shift = tuple[time, time]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_MIDNIGHT = time(0)
IDLE_DAYS = 3660
"""Arithmetic that meets more than this many days in a row without working time gives up."""


def to_us(instant: datetime) -> int:
    """An aware datetime as integer microseconds since 1970-01-01T00:00Z (exact)."""
    return (instant - EPOCH) // _US


def from_us(us: int) -> datetime:
    """Integer microseconds since 1970-01-01T00:00Z as an aware UTC datetime."""
    return EPOCH + _US * us  # faster than timedelta(microseconds=us), and as exact


def utc_intervals(day: date, shifts: Sequence[Shift], zone: ZoneInfo) -> list[tuple[int, int]]:
    """The working intervals of local date ``day`` in UTC microseconds, sorted and disjoint.

    Each local shift ``(start, end)`` becomes ``[start, end)`` in UTC (``zoneinfo``,
    ``fold=0``). The intervals are then clipped to the local day itself (from its midnight to
    the next), sorted, and merged where they overlap: on a day whose clocks skip an hour, a
    shift written across or into the skipped hour may otherwise end before it starts, or
    overlap the next shift. Touching intervals stay separate. For every other day this is
    exactly the shifts converted to UTC, in order.
    """
    if not shifts:
        return []
    day_start = to_us(datetime.combine(day, _MIDNIGHT, zone))
    day_end = (to_us(datetime.combine(day + _DAY, _MIDNIGHT, zone)) if day < date.max
               else to_us(datetime.combine(day, time.max, zone)) + 1)
    raw = sorted(
        (max(to_us(datetime.combine(day, a, zone)), day_start),
         min(to_us(datetime.combine(day, b, zone)), day_end))
        for a, b in shifts
    )
    out: list[tuple[int, int]] = []
    for a, b in raw:
        if b <= a:
            continue
        if out and a < out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
            continue
        out.append((a, b))
    return out


class _Snapshot:
    """The index of the contiguous local days ``lo`` .. ``hi - 1`` (ordinals); immutable."""

    __slots__ = ("cum", "days", "ends", "gaps", "hi", "lo", "starts", "working_days")

    def __init__(self, lo: int, hi: int, starts: array[int], ends: array[int],
                 cum: array[int], days: array[int], working_days: array[int],
                 gaps: tuple[int, ...]):
        self.lo, self.hi = lo, hi
        self.starts, self.ends, self.cum, self.days = starts, ends, cum, days
        self.working_days, self.gaps = working_days, gaps

    def nbytes(self) -> int:
        return sum(a.itemsize * len(a) for a in (self.starts, self.ends, self.cum, self.days,
                                                  self.working_days))


_EMPTY = _Snapshot(0, 0, array("q"), array("q"), array("q", [0]), array("i"), array("i"), ())

# find(snapshot, i0) -> index of the interval where the walk stops, or None if not built yet
_Find = Callable[[_Snapshot, int], int | None]


def _first_found(snap: _Snapshot, i0: int) -> int | None:
    return i0 if i0 < len(snap.starts) else None


def _before(snap: _Snapshot, t: int, i0: int) -> int:
    """The prefix sum where the walk from ``t`` begins.

    That is at ``t`` if ``t`` is inside interval ``i0``, else at the start of ``i0`` (every
    interval the walk yields ends after ``t``).
    """
    a = snap.starts[i0]
    return snap.cum[i0] + (t - a if t > a else 0)


def _shifted(cum: array[int], offset: int) -> array[int]:
    return array("q", (c + offset for c in cum)) if offset else cum


def _join(left: _Snapshot, right: _Snapshot, left_is_new: bool) -> _Snapshot:
    """``left`` and ``right`` (``left.hi == right.lo``) as one snapshot.

    Only the new one's prefix sums are shifted, so extending costs the new year plus a copy of
    the arrays (``array`` concatenation, no Python loop over the old ones).
    """
    if left_is_new:
        lcum = _shifted(left.cum, right.cum[0] - left.cum[-1])
        rcum = right.cum[1:]
    else:
        lcum = left.cum
        rcum = _shifted(right.cum[1:], left.cum[-1] - right.cum[0])
    n = len(left.starts)
    gaps = list(left.gaps)
    if n and right.starts and right.days[0] - left.days[-1] > IDLE_DAYS + 1:
        gaps.append(n)
    gaps.extend(k + n for k in right.gaps)
    return _Snapshot(left.lo, right.hi, left.starts + right.starts, left.ends + right.ends,
                     lcum + rcum, left.days + right.days,
                     left.working_days + right.working_days, tuple(gaps))


class WorkingIndex:
    """The lazily built cumulative index of one calendar's working time (module docstring).

    Args:
        name: the calendar's name (for :class:`CalendarOutOfRange`).
        zone: the calendar's zone.
        valid_from, valid_until: the validity period (local dates, inclusive) or None.
        shifts_of: the local shifts worked on a local date (the calendar's day rules, without
            the validity check); called once per day as the index grows.

    Instants are aware UTC datetimes, durations integer microseconds. Safe to share between
    threads.
    """

    def __init__(self, name: str, zone: ZoneInfo, valid_from: date | None,
                 valid_until: date | None, shifts_of: Callable[[date], Sequence[Shift]]):
        self._name, self._zone = name, zone
        self._valid_from, self._valid_until = valid_from, valid_until
        self._first = valid_from.toordinal() if valid_from is not None else None
        self._last = valid_until.toordinal() if valid_until is not None else None
        self._shifts_of = shifts_of
        self._lock = threading.Lock()
        self._snap = _EMPTY

    # -- what is built ---------------------------------------------------------------------

    def covered(self) -> tuple[date, date] | None:
        """The first and last local day built so far, or None before the first computation."""
        snap = self._snap
        if snap.hi == snap.lo:
            return None
        return date.fromordinal(snap.lo), date.fromordinal(snap.hi - 1)

    def stats(self) -> dict[str, int]:
        """Days and intervals built, and the bytes their arrays take."""
        snap = self._snap
        return {"days": snap.hi - snap.lo, "intervals": len(snap.starts),
                "working_days": len(snap.working_days), "bytes": snap.nbytes()}

    # -- arithmetic (the calendar's methods check their arguments first) -------------------

    def add(self, start: datetime, working: int) -> datetime:
        """The instant when ``working`` µs (>= 0) of working time have passed after ``start``.

        Raises:
            CalendarOutOfRange: as the walk would (see the module docstring).
        """
        t = to_us(start)
        d_start = self._walk_start(start)
        if working == 0:
            snap, i0, _ = self._search(d_start, t, _first_found)
            a = snap.starts[i0]
            return from_us(a if a > t else t)

        def find(snap: _Snapshot, i0: int) -> int | None:
            n = len(snap.starts)
            if i0 >= n:
                return None
            p = bisect_left(snap.cum, _before(snap, t, i0) + working, i0 + 1)
            return p - 1 if p <= n else None

        snap, i0, k = self._search(d_start, t, find)
        return from_us(snap.starts[k] + _before(snap, t, i0) + working - snap.cum[k])

    def working_between(self, start: datetime, end: datetime) -> int:
        """Working µs between ``start`` and ``end`` (``end > start``), both aware UTC."""
        t0, t1 = to_us(start), to_us(end)

        def find(snap: _Snapshot, i0: int) -> int | None:
            j = bisect_left(snap.starts, t1, i0)
            return j if j < len(snap.starts) else None

        snap, i0, j = self._search(self._walk_start(start), t0, find)
        if j == i0:
            return 0
        m = j - 1  # the last interval starting before t1, i0 <= m
        e = snap.ends[m]
        return max(0, snap.cum[m] + (e if e < t1 else t1) - snap.starts[m]
                   - _before(snap, t0, i0))

    def is_working_time(self, instant: datetime) -> bool:
        """True if ``instant`` (aware UTC) lies inside a working interval."""
        t = to_us(instant)
        snap, i0, _ = self._search(self._walk_start(instant), t, _first_found)
        return snap.starts[i0] <= t

    def nth_working_day(self, day: date, n: int) -> date:
        """The ``n``-th (>= 1) working day after local date ``day``.

        Raises:
            CalendarOutOfRange: a day outside the validity period is reached first (the first
                day after ``day``, or the day after ``valid_until``); without ``valid_until``,
                more than :data:`IDLE_DAYS` days in a row are not working days.
        """
        o = day.toordinal()
        self._check(o + 1)
        snap = self._covering(o + 1, o + 1)
        while True:
            wd = snap.working_days
            p = bisect_right(wd, o) + n - 1
            if p < len(wd):
                return date.fromordinal(wd[p])
            if self._last is not None:
                if snap.hi > self._last:
                    raise self._out(self._last + 1)
            else:
                seen = wd[-1] if wd and wd[-1] > o else o
                if snap.hi - 1 - seen > IDLE_DAYS:
                    raise self._out(seen + IDLE_DAYS + 1)
            snap = self._covering(o + 1, snap.hi)

    # -- the walk, reproduced --------------------------------------------------------------

    def _out(self, ordinal: int) -> CalendarOutOfRange:
        return CalendarOutOfRange(self._name, date.fromordinal(ordinal), self._valid_from,
                                  self._valid_until)

    def _check(self, ordinal: int) -> None:
        if (self._first is not None and ordinal < self._first) or (
                self._last is not None and ordinal > self._last):
            raise self._out(ordinal)

    def _walk_start(self, instant: datetime) -> int:
        """The first day the walk looks at, as an ordinal.

        That is the day before ``instant``'s local day (whose shifts might still run), unless
        that is before ``valid_from``. Raises if the local day itself is outside the period.
        """
        o = instant.astimezone(self._zone).date().toordinal()
        self._check(o)
        return o - 1 if self._first is None or o > self._first else o

    def _search(self, d_start: int, t: int, find: _Find) -> tuple[_Snapshot, int, int]:
        """Where the walk from instant ``t`` (first day ``d_start``) stops.

        Returns the snapshot, the first interval the walk yields (``i0``: the first of day
        ``d_start`` or later that ends after ``t``) and the interval ``find`` stops at. Builds
        more years while the stop lies beyond them; raises what the walk would raise on the
        way.
        """
        snap = self._snap
        if not snap.lo <= d_start < snap.hi:
            snap = self._covering(d_start, d_start)
        while True:
            i0 = bisect_right(snap.ends, t)
            if i0 < len(snap.days) and snap.days[i0] < d_start:
                # The walk never looks before d_start. With the day clipping this cannot
                # happen in tzdata's zones (their local midnights never go backwards in UTC);
                # kept so that the index follows the walk literally.
                i0 = bisect_left(snap.days, d_start, i0)
            j = find(snap, i0)
            if j is not None and not snap.gaps and (snap.days[i0] - d_start <= IDLE_DAYS):
                return snap, i0, j  # the usual case: found, no ten-year gap on the way
            self._idle(snap, d_start, i0, j)
            if j is not None:
                return snap, i0, j
            if self._last is not None and snap.hi > self._last:
                raise self._out(self._last + 1)
            snap = self._covering(d_start, snap.hi)

    def _idle(self, snap: _Snapshot, d_start: int, i0: int, j: int | None) -> None:
        """Raise where the walk gives up for lack of working time.

        The walk from day ``d_start`` to interval ``j`` (None: to the end of the built days)
        gives up on the first day that ends a run of more than :data:`IDLE_DAYS` days without
        working time after its start.
        """
        n = len(snap.starts)
        if i0 >= n:  # nothing found yet: the idle days run from d_start
            if d_start + IDLE_DAYS < snap.hi:
                raise self._out(d_start + IDLE_DAYS)
            return
        if snap.days[i0] - d_start > IDLE_DAYS:
            raise self._out(d_start + IDLE_DAYS)
        g = bisect_right(snap.gaps, i0)
        if g < len(snap.gaps) and (j is None or snap.gaps[g] <= j):
            raise self._out(snap.days[snap.gaps[g] - 1] + IDLE_DAYS + 1)
        if j is None and snap.days[n - 1] + IDLE_DAYS + 1 < snap.hi:
            raise self._out(snap.days[n - 1] + IDLE_DAYS + 1)

    # -- building ----------------------------------------------------------------------------

    def _covering(self, first: int, last: int) -> _Snapshot:
        """A snapshot that covers the days ``first`` .. ``last``, building missing years.

        ``first`` and ``last`` are ordinals inside the validity period.
        """
        snap = self._snap
        if snap.lo <= first and last < snap.hi:
            return snap
        with self._lock:
            snap = self._snap
            if snap.hi == snap.lo:
                snap = self._build(self._year_lo(first), self._year_hi(last))
            else:
                if first < snap.lo:
                    snap = _join(self._build(self._year_lo(first), snap.lo), snap, True)
                if last >= snap.hi:
                    snap = _join(snap, self._build(snap.hi, self._year_hi(last)), False)
            self._snap = snap
            return snap

    def _year_lo(self, ordinal: int) -> int:
        jan1 = date.fromordinal(ordinal).replace(month=1, day=1).toordinal()
        return jan1 if self._first is None else max(jan1, self._first)

    def _year_hi(self, ordinal: int) -> int:
        year = date.fromordinal(ordinal).year
        nxt = date(year + 1, 1, 1).toordinal() if year < date.max.year else ordinal + 1
        return nxt if self._last is None else min(nxt, self._last + 1)

    def _build(self, lo: int, hi: int) -> _Snapshot:
        starts, ends, cum = array("q"), array("q"), array("q", [0])
        days, working_days = array("i"), array("i")
        gaps: list[int] = []
        total = 0
        for o in range(lo, hi):
            day = date.fromordinal(o)
            shifts = self._shifts_of(day)
            if not shifts:
                continue
            working_days.append(o)
            for a, b in utc_intervals(day, shifts, self._zone):
                if days and o - days[-1] > IDLE_DAYS + 1:
                    gaps.append(len(starts))
                starts.append(a)
                ends.append(b)
                days.append(o)
                total += b - a
                cum.append(total)
        return _Snapshot(lo, hi, starts, ends, cum, days, working_days, tuple(gaps))
