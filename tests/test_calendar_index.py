"""The cumulative working-time index gives exactly what the day-by-day walk gives.

The walk (``engine/calendars/_walking.py``) is the arithmetic business calendars had before the
index; it is the oracle here. Random calendars in zones with daylight-saving changes (New York,
London, Lord Howe's 30-minute shift) and without (Shanghai), split and touching shifts listed
in any order, public holidays with Chinese make-up workdays, extra holidays and working days,
and validity periods; random instants and amounts, on and around shift boundaries and the
nights the clocks change, inside and outside the validity period: every method returns the
same value or raises the same ``CalendarOutOfRange`` (same day, same message).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.calendars import BusinessCalendar, CalendarOutOfRange, _walking

Shift = tuple[time, time]
Outcome = tuple[object, ...]

ZONES = {  # zone -> the holidays package's country for it
    "America/New_York": "US",
    "Europe/London": "GB",
    "Australia/Lord_Howe": "AU",
    "Asia/Shanghai": "CN",
}
FIRST, LAST = date(2022, 1, 1), date(2026, 12, 31)  # extra days and validity bounds fall here
WINDOW = (datetime(2021, 6, 1), datetime(2027, 6, 30))  # instants, a little wider
# Local times worth hitting: midnight, the small hours the clocks change in (01:00-03:00 in
# New York, London and Lord Howe), usual shift edges, the last microsecond of the day.
SPECIAL_TIMES = [time(0), time(0, 30), time(1), time(1, 30), time(1, 59), time(2), time(2, 15),
                 time(2, 30), time(2, 59), time(3), time(3, 30), time(8, 30), time(12),
                 time(13, 30), time(17, 30), time(23, 59), time.max]


def _minute(m: int) -> time:
    return time.max if m >= 24 * 60 else time(m // 60, m % 60)


@st.composite
def day_shifts(draw: st.DrawFn) -> tuple[Shift, ...]:
    """0-3 shifts of a day, as YAML allows them (ordered or not, touching allowed, no overlap),
    now and then overlapping (``make_up_shifts`` and Python callers are not checked)."""
    out: list[tuple[int, int]] = []
    at = draw(st.sampled_from([0, 60, 90, 120, 150, 510]) | st.integers(0, 24 * 60 - 1))
    for _ in range(draw(st.integers(0, 3))):
        length = draw(st.sampled_from([30, 60, 90, 210, 240]) | st.integers(1, 16 * 60))
        end = min(at + length, 24 * 60)
        if end <= at:
            break
        out.append((at, end))
        at = end + draw(st.sampled_from([0, 0, 30, 90]) | st.integers(0, 6 * 60))
        if at >= 24 * 60:
            break
    overlap: bool = draw(st.integers(0, 3)) == 0
    if out and overlap:
        a, b = out[0]
        out.append((a + (b - a) // 2, min(b + 45, 24 * 60)))  # overlaps the first shift
    shifts = [(_minute(a), _minute(b)) for a, b in out if _minute(a) < _minute(b)]
    return tuple(draw(st.permutations(shifts)))


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(sorted(ZONES)))
    week = draw(st.lists(day_shifts(), min_size=7, max_size=7))
    if draw(st.booleans()):
        week[5:] = [(), ()]  # a weekend
    if draw(st.integers(0, 20)) == 0:
        week = [()] * 7  # a calendar that never works (the ten-year give-up)
    dates = st.dates(FIRST, LAST)
    bound = st.none() | dates
    lo, hi = draw(bound), draw(bound)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    holidays = draw(st.booleans())
    return BusinessCalendar(
        name="random", zone=ZoneInfo(zone), shifts=tuple(week),
        make_up_shifts=draw(day_shifts()),
        country=ZONES[zone] if holidays else None,
        extra_holidays=draw(st.frozensets(dates, max_size=6)),
        extra_working_days=draw(st.frozensets(dates, max_size=6)),
        valid_from=lo, valid_until=hi)


def instants(cal: BusinessCalendar) -> st.SearchStrategy[datetime]:
    """Anywhere in the window, or a special local time of a day (DST nights included)."""
    anywhere = st.datetimes(*WINDOW, timezones=st.just(UTC))
    nudge = st.sampled_from([timedelta(0), timedelta(0), timedelta(microseconds=1),
                             -timedelta(microseconds=1), timedelta(minutes=30),
                             -timedelta(hours=1)])
    dst_nights = st.sampled_from([date(2024, 3, 10), date(2024, 11, 3),   # New York
                                  date(2024, 3, 31), date(2024, 10, 27),  # London
                                  date(2024, 4, 7), date(2024, 10, 6)])   # Lord Howe
    days = dst_nights | st.dates(WINDOW[0].date(), WINDOW[1].date())
    special = st.builds(
        lambda d, t, fold, n: datetime.combine(d, t, cal.zone).replace(fold=fold)
        .astimezone(UTC) + n,
        days, st.sampled_from(SPECIAL_TIMES), st.sampled_from([0, 1]), nudge)
    return anywhere | special


AMOUNTS = (st.just(timedelta(0))
           | st.builds(timedelta, minutes=st.integers(0, 24 * 60))
           | st.builds(timedelta, hours=st.integers(0, 6_500))       # up to ~3 years of work
           | st.builds(timedelta, microseconds=st.integers(0, 10**11)))


def outcome(fn: Callable[[], object]) -> Outcome:
    try:
        return ("ok", fn())
    except CalendarOutOfRange as exc:
        return ("out of range", exc.calendar, exc.day, str(exc))


def compare(cal: BusinessCalendar, op: str, t: datetime, other: datetime,
            amount: timedelta, days: int) -> None:
    pair: tuple[Callable[[], object], Callable[[], object]]
    if op == "add":
        pair = (lambda: cal.add(t, amount), lambda: _walking.add(cal, t, amount))
    elif op == "working_between":
        pair = (lambda: cal.working_between(t, other),
                lambda: _walking.working_between(cal, t, other))
    elif op == "is_working_time":
        pair = (lambda: cal.is_working_time(t), lambda: _walking.is_working_time(cal, t))
    elif op == "next_working_instant":
        pair = (lambda: cal.next_working_instant(t),
                lambda: _walking.next_working_instant(cal, t))
    else:
        pair = (lambda: cal.add_working_days(t, days),
                lambda: _walking.add_working_days(cal, t, days))
        if cal.valid_until is None and not any(cal.shifts):
            # No weekday hours and no end: after its last extra working day the walk counted
            # on to year 9999 (OverflowError, minutes later); the index gives up like the
            # other methods, on the 3,661st day in a row that is not a working day.
            ours = outcome(pair[0])
            gave_up = ours[2] if ours[0] == "out of range" else None
            if isinstance(gave_up, date) and (
                    cal.valid_from is None or gave_up > cal.valid_from + timedelta(3661)):
                assert not any(cal.is_working_day(gave_up - timedelta(k)) for k in range(3661))
                event("add_working_days: gave up")
                return
    ours, walked = outcome(pair[0]), outcome(pair[1])
    assert ours == walked, (op, t, other, amount, days)
    event(f"{op}: {ours[0]}")
    if ours[0] == "ok" and isinstance(ours[1], datetime):
        assert ours[1].tzinfo is UTC


OPS = ["add", "working_between", "is_working_time", "next_working_instant",
       "add_working_days"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cal=calendars(), data=st.data())
def test_the_index_equals_the_walk(cal: BusinessCalendar, data: st.DataObject) -> None:
    # Several computations on one calendar: the index grows left and right between them.
    for _ in range(data.draw(st.integers(1, 6), label="computations")):
        op = data.draw(st.sampled_from(OPS), label="op")
        t = data.draw(instants(cal), label="instant")
        later = AMOUNTS.map(t.__add__)
        other = data.draw(instants(cal) | later, label="other")
        amount = data.draw(AMOUNTS, label="amount")
        days = data.draw(st.integers(0, 3) | st.integers(0, 800), label="days")
        compare(cal, op, t, other, amount, days)


@settings(max_examples=60, deadline=None)
@given(cal=calendars(), day=st.dates(FIRST, LAST))
def test_day_intervals_are_the_shifts_in_utc_unless_a_clock_change_breaks_them(
        cal: BusinessCalendar, day: date) -> None:
    """Sorting, clipping and merging changes nothing on a day whose shifts, converted to UTC
    as before, are already in order and disjoint (every day but a few DST nights)."""
    try:
        shifts = cal._day_shifts(day)
    except CalendarOutOfRange:
        return
    raw = [(datetime.combine(day, a, cal.zone).astimezone(UTC),
            datetime.combine(day, b, cal.zone).astimezone(UTC)) for a, b in shifts]
    ordered = sorted(raw)
    well_formed = all(a < b for a, b in ordered) and all(
        x[1] <= y[0] for x, y in itertools.pairwise(ordered))
    if well_formed:
        assert cal.intervals(day) == tuple(ordered)
    got = cal.intervals(day)
    assert all(a < b for a, b in got)
    assert all(x[1] <= y[0] for x, y in itertools.pairwise(got))


# -- the cases the property test rarely reaches, with their values -----------------------------

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")
SPLIT = ((time(8, 30), time(12)), (time(13, 30), time(17, 30)))


def china(**kw: object) -> BusinessCalendar:
    args: dict[str, object] = {"make_up_shifts": SPLIT, "country": "CN",
                               "valid_from": date(2015, 1, 1), "valid_until": date(2030, 12, 31)}
    args.update(kw)
    return BusinessCalendar("office", SH, (SPLIT,) * 5 + ((), ()), **args)  # type: ignore[arg-type]


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)  # type: ignore[arg-type, misc]


def both(cal: BusinessCalendar, method: str, *args: object) -> Outcome:
    ours = outcome(lambda: getattr(cal, method)(*args))
    assert ours == outcome(lambda: getattr(_walking, method)(cal, *args))
    return ours


def test_long_spans_match_on_the_bundled_twenty_one_year_calendar() -> None:
    cal = china(valid_from=date(2010, 1, 1))
    start = sh(2010, 1, 4, 10, 0)
    total = both(cal, "working_between", start, sh(2030, 12, 31, 12, 30))
    assert total[0] == "ok"
    assert both(cal, "add", start, total[1]) == ("ok", sh(2030, 12, 31, 12, 0))
    stats = cal.index_stats()
    assert stats["days"] == 7_670                      # 2010-01-01 .. 2030-12-31
    assert stats["intervals"] == 2 * stats["working_days"]
    assert stats["bytes"] < 400_000                    # about 30 bytes per interval


def test_the_index_is_built_only_for_the_years_used() -> None:
    cal = china()
    assert cal.index_stats()["days"] == 0
    cal.add(sh(2024, 6, 5, 11, 0), timedelta(hours=2))
    assert cal.index_stats()["days"] == 366            # 2024 alone
    cal.working_between(sh(2024, 6, 5, 11, 0), sh(2026, 3, 1, 9, 0))
    assert cal.index_stats()["days"] == 366 + 365 + 365
    cal.next_working_instant(sh(2020, 1, 1, 0, 0))     # the day before is in 2019: built too
    assert cal.index_stats()["days"] == 365 * 6 + 366 * 2  # 2019 .. 2026


def test_out_of_range_at_both_ends_names_the_same_day() -> None:
    cal = china()
    assert both(cal, "add", sh(2030, 12, 31, 17, 0), timedelta(hours=1))[2] == date(2031, 1, 1)
    assert both(cal, "add", sh(2014, 12, 31, 9, 0), timedelta(0))[2] == date(2014, 12, 31)
    assert both(cal, "add_working_days", sh(2030, 12, 30, 9, 0), 2)[2] == date(2031, 1, 1)
    # The walk needed a working interval starting at or after the end: none is left in 2030.
    assert both(cal, "working_between", sh(2030, 12, 31, 10, 0),
                sh(2030, 12, 31, 16, 0))[2] == date(2031, 1, 1)
    assert both(cal, "working_between", sh(2030, 12, 31, 10, 0),
                sh(2030, 12, 31, 12, 30)) == ("ok", timedelta(hours=2))
    assert both(cal, "is_working_time", sh(2030, 12, 31, 18, 0))[2] == date(2031, 1, 1)


def test_a_calendar_that_never_works_gives_up_after_ten_years() -> None:
    never = BusinessCalendar("never", NY, ((),) * 7)
    start = datetime(2024, 6, 5, 12, tzinfo=UTC)
    # The walk starts the day before (2024-06-04) and stops on its 3,661st idle day.
    assert both(never, "add", start, timedelta(0))[2] == date(2024, 6, 4) + timedelta(3660)
    assert both(never, "is_working_time", start)[2] == date(2024, 6, 4) + timedelta(3660)
    bounded = BusinessCalendar("never", NY, ((),) * 7, valid_until=date(2030, 1, 1))
    assert both(bounded, "add", start, timedelta(0))[2] == date(2030, 1, 2)


def test_ten_years_between_two_working_days_gives_up_in_between() -> None:
    first, second = date(2010, 3, 1), date(2022, 3, 1)  # twelve years apart
    cal = BusinessCalendar("rare", NY, ((),) * 7, make_up_shifts=((time(9), time(17)),),
                           extra_working_days=frozenset({first, second}))
    start = datetime(2010, 1, 1, tzinfo=UTC)
    assert both(cal, "add", start, timedelta(hours=4)) == (
        "ok", datetime(2010, 3, 1, 13, tzinfo=NY).astimezone(UTC))
    assert both(cal, "working_between", start, datetime(2010, 3, 1, 8, tzinfo=NY)) == (
        "ok", timedelta(0))
    # Measuring past 09:00 made the walk look for the next shift start, twelve years on.
    assert both(cal, "working_between", start,
                datetime(2010, 3, 1, 12, tzinfo=NY))[2] == first + timedelta(3661)
    assert both(cal, "add", start, timedelta(hours=9))[2] == first + timedelta(3661)
    after = datetime(2015, 1, 1, tzinfo=UTC)  # starting inside the gap, less than ten years
    assert both(cal, "add", after, timedelta(hours=1)) == (
        "ok", datetime.combine(second, time(10), NY).astimezone(UTC))


def test_counting_working_days_without_an_end_gives_up_after_ten_years() -> None:
    # The walk counted on to year 9999 and raised OverflowError; the index raises
    # CalendarOutOfRange on the 3,661st day in a row that is not a working day.
    last = date(2024, 5, 6)
    cal = BusinessCalendar("rare", NY, ((),) * 7, make_up_shifts=((time(9), time(17)),),
                           extra_working_days=frozenset({date(2024, 5, 3), last}))
    start = datetime(2024, 5, 3, 10, tzinfo=NY)
    assert cal.add_working_days(start, 1) == datetime(2024, 5, 6, 10, tzinfo=NY)
    with pytest.raises(CalendarOutOfRange) as info:
        cal.add_working_days(start, 2)
    assert info.value.day == last + timedelta(3661)


def test_daylight_saving_nights_in_new_york() -> None:
    weekday = ((time(9), time(17)),)
    night = BusinessCalendar("night", NY, (weekday,) * 5 + ((), ((time(1), time(4)),)))
    spring = (datetime(2024, 3, 10, tzinfo=NY), datetime(2024, 3, 11, tzinfo=NY))
    fall = (datetime(2024, 11, 3, tzinfo=NY), datetime(2024, 11, 4, tzinfo=NY))
    assert both(night, "working_between", *spring) == ("ok", timedelta(hours=2))
    assert both(night, "working_between", *fall) == ("ok", timedelta(hours=4))
    # 01:30 on the fall-back night happens twice; both count, in real time.
    second_0130 = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY)
    assert both(night, "add", second_0130, timedelta(hours=1)) == (
        "ok", datetime(2024, 11, 3, 7, 30, tzinfo=UTC))  # 02:30 EST


def test_shifts_broken_by_the_skipped_hour_count_once_and_never_negative() -> None:
    # On 2024-03-10 New York skips 02:00-03:00. zoneinfo reads 02:30 as 03:30 EDT (07:30Z):
    # the walk used to count "02:30-03:15" as -15 minutes and "01:00-02:30" + "03:00-04:00"
    # (06:00-07:30Z and 07:00-08:00Z) as 2.5 hours.
    day = (datetime(2024, 3, 10, tzinfo=NY), datetime(2024, 3, 11, tzinfo=NY))
    reversed_ = BusinessCalendar("g", NY, ((),) * 6 + (((time(2, 30), time(3, 15)),),))
    assert both(reversed_, "working_between", *day) == ("ok", timedelta(0))
    overlap = BusinessCalendar(
        "o", NY, ((),) * 6 + (((time(1), time(2, 30)), (time(3), time(4))),))
    assert both(overlap, "working_between", *day) == ("ok", timedelta(hours=2))
    assert overlap.intervals(date(2024, 3, 10)) == (
        (datetime(2024, 3, 10, 6, tzinfo=UTC), datetime(2024, 3, 10, 8, tzinfo=UTC)),)


def test_shifts_listed_afternoon_first_are_worked_in_order() -> None:
    # The walk used to count the afternoon first: 08:00 + 1 h gave 14:30.
    cal = BusinessCalendar("u", SH, (tuple(reversed(SPLIT)),) * 5 + ((), ()))
    assert both(cal, "add", sh(2024, 6, 5, 8, 0), timedelta(hours=1)) == (
        "ok", sh(2024, 6, 5, 9, 30))


def test_the_day_samoa_skipped_has_no_working_time() -> None:
    # Pacific/Apia jumped from 2011-12-29 23:59 (-10) to 2011-12-31 00:00 (+14): 12-30 has no
    # instants, and its shifts, read with -10, were the very hours of 12-31 counted twice.
    apia = ZoneInfo("Pacific/Apia")
    cal = BusinessCalendar("apia", apia, (((time(9), time(17)),),) * 7)
    assert cal.intervals(date(2011, 12, 30)) == ()
    start, end = datetime(2011, 12, 29, tzinfo=apia), datetime(2012, 1, 1, tzinfo=apia)
    assert both(cal, "working_between", start, end) == ("ok", timedelta(hours=16))
    assert both(cal, "add_working_days", datetime(2011, 12, 29, 10, tzinfo=apia), 1) == (
        "ok", datetime(2011, 12, 31, 10, tzinfo=apia).astimezone(UTC))


def test_threads_building_one_index_at_once_get_the_walk_s_answers() -> None:
    cal, oracle = china(), china()
    starts = [sh(2015 + i, 3, 1 + i, 9 + i % 8, 0) for i in range(16)]
    amounts = [timedelta(hours=50 * (i + 1)) for i in range(16)]
    expected = [(_walking.add(oracle, s, a), _walking.working_between(oracle, s, s + a * 5))
                for s, a in zip(starts, amounts, strict=True)]
    got: list[object] = [None] * 16
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(k, 16, 8):
            got[i] = (cal.add(starts[i], amounts[i]),
                      cal.working_between(starts[i], starts[i] + amounts[i] * 5))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == expected


@pytest.mark.parametrize("method", ["add", "working_between", "add_working_days"])
def test_naive_and_negative_arguments_are_refused_as_before(method: str) -> None:
    cal = china()
    naive = datetime(2024, 6, 5, 9)
    arg: object = {"add": timedelta(hours=1), "working_between": sh(2024, 6, 6, 9),
                   "add_working_days": 1}[method]
    with pytest.raises(ValueError, match="has no time zone"):
        getattr(cal, method)(naive, arg)
    if method != "working_between":
        negative = -timedelta(hours=1) if method == "add" else -1
        with pytest.raises(ValueError, match="negative"):
            getattr(cal, method)(sh(2024, 6, 5, 9), negative)
