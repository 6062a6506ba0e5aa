"""Business calendars: working-time arithmetic across weekends, holidays, make-up days, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendars import BusinessCalendar, CalendarOutOfRange
from engine.definition import parse_definition
from engine.errors import DefinitionError

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
SPLIT = ((time(8, 30), time(12)), (time(13, 30), time(17, 30)))


def china() -> BusinessCalendar:
    return BusinessCalendar("office", SH, (SPLIT,) * 5 + ((), ()), make_up_shifts=SPLIT,
                            country="CN", valid_from=date(2015, 1, 1),
                            valid_until=date(2030, 12, 31))


def new_york(sunday: tuple = ()) -> BusinessCalendar:
    nine_five = ((time(9), time(17)),)
    return BusinessCalendar("ny", NY, (nine_five,) * 5 + ((), sunday), country="US",
                            subdivision="NY")


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def test_split_shift_skips_the_lunch_break():
    cal = china()
    assert cal.add(sh(2024, 6, 5, 11, 0), timedelta(hours=2)) == sh(2024, 6, 5, 14, 30)
    assert cal.working_between(sh(2024, 6, 5, 8, 0), sh(2024, 6, 5, 18, 0)) == timedelta(
        hours=7, minutes=30)


def test_across_a_weekend_and_a_public_holiday():
    # Fri 2024-06-07 16:00: 1.5 h left today; Sat, Sun off; Mon 06-10 Dragon Boat Festival.
    cal = china()
    assert cal.is_public_holiday(date(2024, 6, 10))
    due = cal.add(sh(2024, 6, 7, 16, 0), timedelta(hours=4))
    assert due == sh(2024, 6, 11, 11, 0)
    assert due == datetime(2024, 6, 11, 3, 0, tzinfo=UTC)


def test_chinese_make_up_workday_on_a_saturday():
    # Sat 2024-05-11 is a make-up workday for the Labour Day break (holidays: weekend_workdays).
    cal = china()
    assert cal.is_make_up_workday(date(2024, 5, 11))
    assert cal.is_working_day(date(2024, 5, 11))
    assert not cal.is_working_day(date(2024, 5, 2))      # a day off in the Labour Day break
    assert cal.add(sh(2024, 5, 10, 16, 0), timedelta(hours=4)) == sh(2024, 5, 11, 11, 0)


def test_explicit_extra_holidays_and_working_days_win():
    base = china()
    cal = BusinessCalendar("x", SH, base.shifts, make_up_shifts=SPLIT, country="CN",
                           extra_holidays=frozenset({date(2024, 6, 11)}),
                           extra_working_days=frozenset({date(2024, 6, 8)}))
    assert cal.add(sh(2024, 6, 7, 16, 0), timedelta(hours=4)) == sh(2024, 6, 8, 11, 0)
    assert cal.add(sh(2024, 6, 9, 0, 0), timedelta(hours=1)) == sh(2024, 6, 12, 9, 30)


def test_report_outside_working_hours_starts_at_the_next_working_instant():
    cal = china()
    saturday_evening = sh(2024, 6, 15, 20, 0)
    assert cal.next_working_instant(saturday_evening) == sh(2024, 6, 17, 8, 30)
    assert cal.add(saturday_evening, timedelta(hours=1)) == sh(2024, 6, 17, 9, 30)
    assert cal.next_working_instant(sh(2024, 6, 17, 12, 15)) == sh(2024, 6, 17, 13, 30)
    assert cal.is_working_time(sh(2024, 6, 17, 8, 30))
    assert not cal.is_working_time(sh(2024, 6, 17, 12, 0))


def test_a_duration_ending_at_the_end_of_a_shift_ends_there():
    assert china().add(sh(2024, 6, 5, 16, 30), timedelta(hours=1)) == sh(2024, 6, 5, 17, 30)


def test_working_days_keep_the_time_of_day():
    cal = china()
    # Thu 2024-06-06 10:00 + 2 working days: Fri, (weekend, Mon holiday), Tue 10:00.
    assert cal.add_working_days(sh(2024, 6, 6, 10, 0), 2) == sh(2024, 6, 11, 10, 0)


def test_new_york_spring_forward():
    # DST starts Sun 2024-03-10. Fri 15:00 EST + 4 working hours = Mon 11:00 EDT:
    # 67 real hours later, not 68.
    cal = new_york()
    start = datetime(2024, 3, 8, 15, tzinfo=NY)
    due = cal.add(start, timedelta(hours=4))
    assert due == datetime(2024, 3, 11, 15, 0, tzinfo=UTC)
    assert due - start == timedelta(hours=67)
    # a shift across the change 01:00-04:00 local lasts two real hours that Sunday
    night = new_york(sunday=((time(1), time(4)),))
    assert night.working_between(datetime(2024, 3, 10, tzinfo=NY),
                                 datetime(2024, 3, 11, tzinfo=NY)) == timedelta(hours=2)


def test_new_york_fall_back():
    cal = new_york()
    start = datetime(2024, 11, 1, 15, tzinfo=NY)            # Fri 15:00 EDT
    due = cal.add(start, timedelta(hours=4))
    assert due == datetime(2024, 11, 4, 16, 0, tzinfo=UTC)   # Mon 11:00 EST
    assert due - start == timedelta(hours=69)
    night = new_york(sunday=((time(1), time(4)),))
    assert night.working_between(datetime(2024, 11, 3, tzinfo=NY),
                                 datetime(2024, 11, 4, tzinfo=NY)) == timedelta(hours=4)


def test_validity_period_is_enforced():
    with pytest.raises(CalendarOutOfRange, match="extend its validity period") as info:
        china().add(sh(2030, 12, 31, 17, 0), timedelta(hours=1))
    assert info.value.day == date(2031, 1, 1)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2025, 12, 1),
                       timezones=st.just(UTC)),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 20),
)
def test_add_then_measure_gives_the_duration_back(start, minutes):
    for cal in (china(), new_york()):
        d = timedelta(minutes=minutes)
        end = cal.add(start, d)
        assert end >= start
        assert cal.working_between(start, end) == d
        if d:
            assert cal.is_working_time(end - timedelta(seconds=1))


CAL_HEAD = """format: 1
name: cal
initial: open
roles: {centre: {}}
levels: [{name: community}]
report: {roles: centre}
states: {open: {}, closed: {final: true}}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: centre}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="c.yaml")
    return [str(p) for p in info.value.problems]


def test_calendar_yaml_errors_name_file_line_and_field():
    text = CAL_HEAD + """calendars:
  office:
    zone: Asia/Shangai
    hours:
      monday: ["08:30-12:00", "13:30-12:00"]
      funday: ["08:00-09:00"]
    holidays: {country: XX}
    extra_holidays: [2024-13-01]
deadlines:
  finish_due: {state: open, after: 2 working days}
  other_due: {state: open, after: {working: PT4H, calendar: ofice}}
"""
    assert problems(text) == [
        "c.yaml:14: calendars.office.hours.monday[1]: '13:30-12:00': a shift must end after "
        "it starts, on the same day",
        "c.yaml:15: calendars.office.hours.funday: 'funday' is not allowed; input should be "
        "'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday' or 'sunday'",
        "c.yaml:17: calendars.office.extra_holidays[0]: '2024-13-01' is not a date; write "
        "YYYY-MM-DD",
        "c.yaml:19: deadlines.finish_due.after: '2 working days' is ambiguous (whose working "
        "hours?); write {working: PT4H, calendar: NAME} or {working_days: 2, calendar: NAME}",
    ]
    fixed = (text.replace("13:30-12:00", "13:30-17:30")
             .replace("      funday: [\"08:00-09:00\"]\n", "")
             .replace("2024-13-01", "2024-12-01").replace("2 working days", "PT2H"))
    assert problems(fixed) == [
        "c.yaml:12: calendars.office.zone: unknown time zone 'Asia/Shangai'; use an IANA name "
        "such as Asia/Shanghai or America/New_York",
        "c.yaml:15: calendars.office.holidays.country: the holidays package does not know "
        "country 'XX'; use an ISO 3166-1 alpha-2 code such as CN or US",
        "c.yaml:19: deadlines.other_due.after.calendar: unknown calendar 'ofice'; declared "
        "calendars: office",
    ]
