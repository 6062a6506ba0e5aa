"""Small helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
"""The fixture clock's starting instant: 2024-05-01T08:00Z."""


def at(hour: int, minute: int = 0, *, day: int = 1) -> datetime:
    """An instant in May 2024, UTC."""
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def is_utc(value: datetime) -> bool:
    """Aware, with a zero UTC offset."""
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)
