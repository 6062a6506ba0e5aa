"""Reading the cells of an export: times (with date-only days and sentinels), typed values.

Everything here is compiled once per replay from the mapping (:func:`time_reader`,
:func:`value_reader`), so that reading a row costs no format lookups, no YAML and no pydantic
work: each reader is a small closure over what it needs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from adapters.replay.mapping import ColumnSpec

__all__ = ["RowError", "Stamp", "TimeReader", "is_blank", "time_reader", "value_reader"]


class RowError(Exception):
    """A row cannot be replayed; the message is the rejection's reason (internal)."""


Stamp = tuple[datetime, date, bool, datetime | None]
"""A read time: (aware UTC instant, its local day in the source zone, whether date-only, the
second instant of a wall time that happened twice or None).

A local time in the hour the clocks went back (01:30 on Chicago's first Sunday of November)
names two instants; the first is the reading, the second is kept for the row's ordering
check (:meth:`adapters.replay.source.RowPlanner.plan`)."""

TimeReader = Callable[[str], Stamp | None]
"""Reads one non-blank cell; None for a sentinel date. Raises :class:`RowError`."""

_MIDNIGHT = time(0)
_LAST_MICROSECOND = timedelta(microseconds=1)
_ISO_SECONDS = "%Y-%m-%d %H:%M:%S"
_ISO_FRACTION = "%Y-%m-%d %H:%M:%S.%f"
_ISO_DATE = "%Y-%m-%d"


def is_blank(text: str | None, blanks: frozenset[str]) -> bool:
    """True for a missing cell, one of ``blanks``, or whitespace only."""
    return not text or text in blanks or text.isspace()


def _parser(fmt: str | None) -> Callable[[str], datetime | None]:
    """A parser for ``fmt``; it returns None when unsure (then strptime decides and words it).

    ``datetime.fromisoformat`` reads the ISO-like formats about 20x faster than ``strptime``;
    it is used only where the text's shape guarantees the same result.
    """
    if fmt is None:
        return _iso_any
    if fmt == _ISO_SECONDS:
        return _iso_seconds
    if fmt == _ISO_FRACTION:
        return _iso_fraction
    if fmt == _ISO_DATE:
        return _iso_date
    return _never


def _iso_any(text: str) -> datetime | None:
    return datetime.fromisoformat(text)


def _iso_seconds(text: str) -> datetime | None:
    if len(text) != 19 or text[10] != " ":
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _iso_fraction(text: str) -> datetime | None:
    if not 21 <= len(text) <= 26 or text[10] != " " or text[19] != ".":
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _iso_date(text: str) -> datetime | None:
    if len(text) != 10:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _never(text: str) -> datetime | None:
    return None


def time_reader(column: str, spec: ColumnSpec, default_format: str | None,
                zone: tzinfo) -> TimeReader:
    """A reader for the times of ``column``.

    Args:
        column: the column's name (for messages).
        spec: the column's settings (``date``, ``midnight_only``, ``format``,
            ``sentinel_dates``).
        default_format: the mapping's ``timestamp_format`` (None: ISO 8601).
        zone: the source zone, for stamps written without one and for local days.

    Returns:
        A function from a non-blank cell to a :data:`Stamp`, or None for a sentinel date. It
        raises :class:`RowError` for text it cannot read.
    """
    fmt = spec.format or default_format
    fast = _parser(fmt)
    expected = f"format {fmt!r}" if fmt else "ISO 8601"
    sentinels = frozenset(date.fromisoformat(d) for d in spec.sentinel_dates)
    day_mode = spec.date
    midnight_only = spec.midnight_only

    def read(text: str) -> Stamp | None:
        try:
            value = fast(text)
            if value is None:
                value = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            raise RowError(f"{column}: cannot read time {text!r} (expected {expected})") from None
        if value.tzinfo is not None:
            value = value.astimezone(zone).replace(tzinfo=None)
        day = value.date()
        if day in sentinels:
            return None
        if day_mode is not None and (not midnight_only or value.time() == _MIDNIGHT):
            if day_mode == "start":
                local = datetime.combine(day, _MIDNIGHT, tzinfo=zone)
                return local.astimezone(UTC), day, True, None
            following = datetime.combine(day + timedelta(days=1), _MIDNIGHT, tzinfo=zone)
            return following.astimezone(UTC) - _LAST_MICROSECOND, day, True, None
        try:
            if zone is UTC:
                return value.replace(tzinfo=UTC), day, False, None
            at = value.replace(tzinfo=zone).astimezone(UTC)
            again = value.replace(tzinfo=zone, fold=1).astimezone(UTC)
            return at, day, False, again if again > at else None
        except OverflowError:
            raise RowError(f"{column}: time {text!r} is out of range") from None

    return read


_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})


def value_reader(kind: str, column: str, times: TimeReader) -> Callable[[str], Any]:
    """A reader from a non-blank cell to a ticket field of type ``kind``.

    Integers, numbers and booleans (``1/0``, ``true/false``, ``yes/no``) are converted;
    datetimes are read with ``times`` (a sentinel date gives None); text is kept (interned:
    categories and departments repeat on every row).

    Raises (from the reader):
        RowError: the text is not of that type.
    """
    if kind == "datetime":
        def read_time(text: str) -> Any:
            stamp = times(text)
            return None if stamp is None else stamp[0]
        return read_time
    if kind == "integer":
        def read_int(text: str) -> Any:
            try:
                return int(text)
            except ValueError:
                raise RowError(f"{column}: {text!r} is not an integer") from None
        return read_int
    if kind == "number":
        def read_number(text: str) -> Any:
            try:
                return float(text)
            except ValueError:
                raise RowError(f"{column}: {text!r} is not a number") from None
        return read_number
    if kind == "boolean":
        def read_bool(text: str) -> Any:
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise RowError(f"{column}: {text!r} is not a boolean (write 1/0 or true/false)")
        return read_bool
    return sys.intern
