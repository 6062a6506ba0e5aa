"""How far a replay has come, and a plain progress line for outputs that are not terminals.

The replay calls its ``progress`` callback with a :class:`ReplayProgress` after every batch
(500 commands) and once at the end (``done``). ``gridwhistle replay`` shows a Rich bar on a
terminal, prints a :class:`ProgressLines` line every 5 s otherwise (a CI log, a pipe), and
nothing with ``--quiet``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressLines", "ReplayProgress"]


@dataclass(frozen=True)
class ReplayProgress:
    """A replay's progress.

    Attributes:
        rows_read: input rows (CSV rows, Open311 requests) taken in so far.
        rows_total: every input row, when known (a CSV is counted before the replay starts,
            an Open311 dump once it is sorted); None when not.
        tickets: tickets reported so far.
        events_applied: commands applied so far.
        seconds: wall time since the replay started.
        done: True on the last call.
    """

    rows_read: int
    rows_total: int | None
    tickets: int
    events_applied: int
    seconds: float
    done: bool = False

    @property
    def tickets_per_s(self) -> float:
        """Tickets reported per second of wall time so far (0 before the first second)."""
        return self.tickets / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Wall time left at the rate so far (rows per second), or None when unknown."""
        if self.rows_total is None or self.rows_read <= 0 or self.seconds <= 0:
            return None
        rate = self.rows_read / self.seconds
        return max(self.rows_total - self.rows_read, 0) / rate


def _count(n: int, word: str) -> str:
    """``1 row``, ``2,000 rows``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe(p: ReplayProgress) -> str:
    """One line of text for ``p`` (rows, tickets/s, time left; or the totals when done)."""
    if p.done:
        return (f"replay: done, {_count(p.rows_read, 'row')}, {_count(p.tickets, 'ticket')}, "
                f"{_count(p.events_applied, 'event')} in {_duration(p.seconds)} "
                f"({p.tickets_per_s:,.0f} tickets/s)")
    if p.rows_total:
        rows = (f"{p.rows_read:,} of {_count(p.rows_total, 'row')} "
                f"({p.rows_read / p.rows_total:.0%})")
    else:
        rows = _count(p.rows_read, "row")
    left = p.seconds_left
    tail = f", about {_duration(left)} left" if left is not None else ""
    return (f"replay: {rows}, {_count(p.tickets, 'ticket')}, {p.tickets_per_s:,.0f} tickets/s"
            f"{tail}")


class ProgressLines:
    """A progress callback that writes a line at most every ``every`` seconds, and at the end.

    Args:
        write: where a line goes (e.g. ``print`` to stderr); it gets the text without a
            newline.
        every: seconds between two lines (default 5).
        clock: monotonic seconds (tests give their own).
    """

    def __init__(self, write: Callable[[str], None], every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._every = every
        self._clock = clock
        self._last = clock()

    def __call__(self, progress: ReplayProgress) -> None:
        """Write a line if ``every`` seconds have passed since the last one, or when done."""
        now = self._clock()
        if progress.done or now - self._last >= self._every:
            self._last = now
            self._write(describe(progress))
