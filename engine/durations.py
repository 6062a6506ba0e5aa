"""ISO 8601 durations as written in lifecycle files (``PT30M``, ``PT2H``, ``P3D``, ``P1W``).

Source: ISO 8601-1:2019 §5.5.2 (durations). Only units of fixed length are accepted: weeks,
days, hours, minutes and seconds (a day is 24 hours of elapsed time). Years and months have no
fixed length, so ``P1M`` is rejected with advice to write days instead.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

MAX_DURATION = timedelta(days=36_525)
"""The longest duration a lifecycle may write: 100 years (``P36525D``). Longer ones would put
deadlines past the year 9999, which no date arithmetic can represent."""

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?!$)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration of fixed-length units.

    Args:
        text: e.g. ``"PT30M"``, ``"PT2H"``, ``"P2D"``, ``"P1DT12H"``, ``"P1W"``.

    Returns:
        The duration as a positive or zero :class:`datetime.timedelta`.

    Raises:
        ValueError: the text is not such a duration, or is longer than
            :data:`MAX_DURATION` (100 years); the message says what to write.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration such as PT30M or P2D, got {text!r}")
    candidate = text.strip().upper()
    if re.match(r"^P(?:\d+Y|\d+M)", candidate) or re.match(r"^P[^T]*\d+M", candidate):
        raise ValueError(
            f"{text!r} uses years or months, which have no fixed length; "
            "write days instead (e.g. P30D)"
        )
    match = _DURATION.match(candidate)
    if not match:
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration; write e.g. PT30M (30 minutes), PT2H "
            "(2 hours), P2D (2 days) or P1DT12H"
        )
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v}
    try:
        value = timedelta(**parts)
    except OverflowError:
        value = MAX_DURATION + MAX_DURATION
    if value > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than 100 years; write at most P36525D")
    return value


def format_duration(value: timedelta) -> str:
    """Render a timedelta as a compact ISO 8601 duration (``P1DT2H30M``); inverse of parsing."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    time += f"{seconds}S" if seconds else ""
    if time:
        out += "T" + time
    return out if out not in ("P", "-P") else "PT0S"
