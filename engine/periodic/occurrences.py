"""When a periodic rule falls due: cron occurrences across daylight saving, and catch-up.

Pure functions (no database, no clock). The rule's five crontab fields name *local wall-clock*
times in the calendar's zone. They are matched by APScheduler's ``CronTrigger`` in a frame
without daylight saving (wall times written as UTC), where time only moves forward, and each
wall time is then placed on the zone's timeline:

* an ordinary wall time is one instant;
* a wall time that does not exist (the hour skipped when clocks spring forward) is the
  instant the clocks show it shifted by the gap: ``02:30`` becomes ``03:30`` of the new time;
  two rule times that land on one instant make one occurrence;
* a wall time that happens twice (the hour repeated when clocks fall back) is **one**
  occurrence, the first, for a rule at fixed hours (``30 2 * * *``: a daily job runs once a
  day); a rule whose hour field is ``*`` or ``*/n`` (every few minutes or hours) runs in both
  passes, since both are real elapsed time.

Because the walk is in a frame without folds and steps forward by cron matches, it always
ends: a working-days-only rule skips days, it never loops at a fall-back.

An occurrence's ticket id (:func:`occurrence_id`) is ``<rule>-<local YYYY-MM-DDTHH:MM>``, with
the UTC offset added for the second pass of a repeated hour (``-2024-11-03T01:15-05:00``), so
ids are unique.

Catch-up (``catch_up`` of a rule, :func:`due_now`): of the occurrences that came due since the
rule's last one, ``all`` creates each, ``latest`` (the default) only the most recent one, and
``none`` only one that came due within :data:`ON_TIME` of the run (a real-time engine runs each
rule at its occurrence), so missed ones are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

__all__ = ["CATCH_UP", "ON_TIME", "due_now", "occurrence_id", "occurrences",
           "repeats_in_both_passes"]

CatchUp = Literal["latest", "all", "none"]
CATCH_UP: tuple[CatchUp, ...] = ("latest", "all", "none")

ON_TIME = timedelta(minutes=1)
"""How late a run may come and still count an occurrence as on time (``catch_up: none``)."""

_MARGIN = timedelta(hours=3)
"""How far the wall clock can stand from an instant's, beyond its usual offset (DST shifts are
at most two hours anywhere): the walk starts and ends this much wider, then filters."""


def repeats_in_both_passes(cron: str) -> bool:
    """Whether a rule runs in both passes of a repeated hour: its hour field is ``*`` or ``*/n``."""
    hour = cron.split()[1]
    return hour == "*" or hour.startswith("*/")


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The zone's wall-clock time of ``instant``, written as a UTC datetime (no DST)."""
    return instant.astimezone(zone).replace(tzinfo=UTC, fold=0)


def _instants(wall: datetime, zone: ZoneInfo, both: bool) -> list[datetime]:
    naive = wall.replace(tzinfo=None)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first > second:  # in a gap (PEP 495: fold=0 reads it with the offset before)
        return [first]
    return [first, second] if both else [first]


def occurrences(
    cron: str, zone: ZoneInfo, after: datetime, until: datetime, *,
    working_day: Callable[[date], bool] | None = None,
) -> Iterator[datetime]:
    """The rule's occurrences in ``(after, until]``, as aware UTC instants, in order.

    Args:
        cron: five crontab fields, read in ``zone``.
        zone: the calendar's zone.
        after: occurrences strictly after this aware instant...
        until: ...up to and including this one.
        working_day: when given, occurrences on local days for which it is False are skipped
            (``working_days_only``).
    """
    trigger = CronTrigger.from_crontab(cron, timezone=UTC)
    both = repeats_in_both_passes(cron)
    cursor = _wall(after, zone) - _MARGIN
    end = _wall(until, zone) + _MARGIN
    found: list[datetime] = []
    previous: datetime | None = None
    while True:
        wall = trigger.get_next_fire_time(previous, cursor)
        if wall is None or wall > end:
            break
        previous, cursor = wall, wall + timedelta(seconds=1)
        if working_day is not None and not working_day(wall.date()):
            continue
        found += [t for t in _instants(wall, zone, both) if after < t <= until]
    yield from sorted(set(found))


def occurrence_id(rule: str, at: datetime, zone: ZoneInfo) -> str:
    """The ticket id of an occurrence: ``<rule>-<local YYYY-MM-DDTHH:MM>``.

    The second pass of a repeated hour adds the UTC offset (``...T01:15-05:00``).
    """
    local = at.astimezone(zone)
    label = f"{rule}-{local:%Y-%m-%dT%H:%M}"
    if local.fold:
        offset = local.strftime("%z")
        label += f"{offset[:3]}:{offset[3:]}"
    return label


def due_now(due: Sequence[datetime], policy: CatchUp, now: datetime) -> list[datetime]:
    """Which of the occurrences ``due`` since a rule's last one to create at ``now``.

    Args:
        due: occurrences in order, all at or before ``now``.
        policy: ``all`` (each), ``latest`` (the most recent only), ``none`` (only one due
            within :data:`ON_TIME` before ``now``).
        now: the instant of the run (aware).
    """
    if not due:
        return []
    if policy == "all":
        return list(due)
    if policy == "latest":
        return [due[-1]]
    return [due[-1]] if now - due[-1] <= ON_TIME else []
