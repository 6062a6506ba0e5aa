"""Periodic work: each ``periodic`` rule of a lifecycle reports a ticket per cron occurrence.

* Occurrences (:mod:`engine.periodic.occurrences`) are the cron rule's *local* times in the
  rule's calendar zone, so ``0 9,15 * * *`` means 09:00 and 15:00 local time across
  daylight-saving changes (a time repeated at fall-back makes one occurrence, a skipped one
  runs shifted by the gap). With ``working_days_only`` an occurrence on a non-working day of
  the calendar is skipped.
* **Exactly once**: each occurrence is a row of ``gw_occurrences`` (unique per lifecycle, rule
  and instant) written in the same transaction as the ticket it reports. A second process, or
  the same one after a restart, finds the row and skips the occurrence.
* **Catch-up**: of the occurrences due since the rule's last recorded one (or, the first time,
  since the lifecycle's first deployment), the rule's ``catch_up`` picks which are created:
  ``latest`` (default) the most recent, ``all`` each once, ``none`` only one on time. The
  ticket records the occurrence's instant in its history (``reason``) and gets the id
  ``<rule>-<local date>T<local time>`` (:func:`~engine.periodic.occurrences.occurrence_id`).
* **Per grid** (``per_grid: true``): one ticket per grid of the lifecycle's ``grids`` per
  occurrence, ``<rule>-<grid>-<local time>``, each grid's occurrences kept apart (the
  ``gw_occurrences`` rule is ``<rule>/<grid>``) — the twice-daily patrol of grid_patrol.
* In real time :func:`add_periodic_jobs` puts one cron job per rule on the engine's APScheduler
  (see :mod:`engine.runtime.scheduler`); on virtual time call :func:`run_periodic`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from engine.calendars.model import BusinessCalendar
from engine.clock import VirtualClock, ensure_utc
from engine.definition.schema import PeriodicSpec
from engine.errors import TicketExists
from engine.periodic.occurrences import ON_TIME, due_now, occurrence_id
from engine.periodic.occurrences import occurrences as wall_occurrences
from engine.runtime.kernel import HasKernel, Kernel
from engine.runtime.model import Actor
from engine.store.tables import definitions
from engine.store.tables import occurrences as occurrences_table

__all__ = ["add_periodic_jobs", "occurrences", "run_periodic"]


def occurrences(rule: PeriodicSpec, calendar: BusinessCalendar, after: datetime,
                until: datetime) -> Iterator[datetime]:
    """The rule's occurrences in ``(after, until]``, as aware UTC instants, in order.

    See :func:`engine.periodic.occurrences.occurrences` (daylight saving, working days).
    """
    yield from wall_occurrences(
        rule.cron, calendar.zone, after, until,
        working_day=calendar.is_working_day if rule.working_days_only else None)


def run_periodic(engine: HasKernel, until: datetime | None = None) -> list[str]:
    """Report one ticket per periodic occurrence due up to ``until`` (default: now).

    Covers the newest deployed version of every lifecycle known to the database.

    Returns:
        The ids of the tickets created by this call (occurrences another process or an
        earlier run already created are skipped).

    Raises:
        ValueError: ``until`` is naive.
    """
    kernel = engine.kernel
    until = ensure_utc(until, what="run_periodic's until") if until else kernel.clock.now()
    created: list[str] = []
    for version in _newest_versions(kernel):
        lc = kernel.lifecycle(version)
        for name, rule in lc.spec.periodic.items():
            for key, label, cal, fields in _targets(lc, name, rule):
                after = _last(kernel, version, key)
                if rule.catch_up == "none":  # only an occurrence on time can be created
                    after = max(after, until - ON_TIME - timedelta(microseconds=1))
                due = list(occurrences(rule, cal, after, until))
                for at in due_now(due, rule.catch_up, until):
                    tid = _create(kernel, version, key, label, rule, fields, cal, at)
                    if tid is not None:
                        created.append(tid)
    return created


def _targets(lc: Any, name: str, rule: PeriodicSpec
             ) -> Iterator[tuple[str, str, BusinessCalendar, dict[str, Any]]]:
    """``(occurrence key, ticket id prefix, calendar, fields)`` of each ticket a rule makes.

    A rule makes one ticket per occurrence; a ``per_grid`` rule one per grid of the
    lifecycle's ``grids`` (key ``<rule>/<grid>``, id ``<rule>-<grid>-<local time>``), with
    the grid in ``area``, its worker in ``grid_worker``, and the grid's own calendar (else
    the rule's) deciding its zone and working days.
    """
    if not rule.per_grid:
        yield name, name, lc.calendars[rule.calendar], dict(rule.fields)
        return
    for grid, spec in lc.spec.grids.items():
        cal = lc.calendars[spec.calendar or rule.calendar]
        yield (f"{name}/{grid}", f"{name}-{grid}", cal,
               {**rule.fields, "area": grid, "grid_worker": spec.worker})


def _newest_versions(kernel: Kernel) -> list[str]:
    with kernel.reading() as conn:
        return sorted({v.name for v in kernel.catalog.versions(conn)})


def _last(kernel: Kernel, lifecycle: str, rule: str) -> datetime:
    last: Any
    with kernel.reading() as conn:
        last = conn.execute(select(func.max(occurrences_table.c.due_at)).where(
            occurrences_table.c.lifecycle == lifecycle,
            occurrences_table.c.rule == rule)).scalar()
        if last is None:
            last = conn.execute(select(func.min(definitions.c.created_at)).where(
                definitions.c.name == lifecycle)).scalar()
    if last is None:
        return kernel.clock.now()
    if isinstance(last, str):  # aggregates lose the column type on SQLite
        last = datetime.fromisoformat(last)
    return ensure_utc(last if last.tzinfo else last.replace(tzinfo=UTC))


_INSERT_OCCURRENCE = insert(occurrences_table)
_OCCURRENCE = select(occurrences_table.c.id).where(
    occurrences_table.c.lifecycle == bindparam("b_lc"),
    occurrences_table.c.rule == bindparam("b_rule"),
    occurrences_table.c.due_at == bindparam("b_at", type_=occurrences_table.c.due_at.type))


def _create(kernel: Kernel, lifecycle: str, name: str, label: str, rule: PeriodicSpec,
            fields: dict[str, Any], cal: BusinessCalendar, at: datetime) -> str | None:
    """Report the occurrence's ticket with its ``gw_occurrences`` row, in one transaction."""
    tid = occurrence_id(label, at, cal.zone)
    try:
        with kernel.compound() as unit:
            if unit.query(lambda conn: conn.execute(
                    _OCCURRENCE, {"b_lc": lifecycle, "b_rule": name, "b_at": at}).first()):
                return None  # created already (another process, or before a restart)
            unit.report(lifecycle, fields, actor=Actor(rule.actor, rule.role),
                        ticket_id=tid, level=rule.level,
                        reason=f"periodic {name!r} due {at.isoformat()}")
            unit.add_row(_INSERT_OCCURRENCE, {"lifecycle": lifecycle, "rule": name,
                                              "due_at": at, "ticket_id": tid,
                                              "created_at": unit.now})
    except (IntegrityError, TicketExists):
        return None  # another process created this occurrence first
    return tid


def add_periodic_jobs(scheduler: Any, engine: HasKernel) -> int:
    """Add one APScheduler cron job per periodic rule of the deployed lifecycles.

    Also adds a catch-up run now, and the job that runs the work again when the engine's
    clock lags this machine's (see :func:`_safe_run`). Both are jobs that stay in the
    scheduler, moved rather than added and removed: APScheduler 3 removes a one-off job after
    its run, and a ``shutdown()`` at that moment kills its thread with ``JobLookupError``
    (see :meth:`engine.runtime.scheduler.WakeUpScheduler.start`). Returns the number of
    rules scheduled.
    """
    count = 0
    kernel = engine.kernel
    for version in _newest_versions(kernel):
        lc = kernel.lifecycle(version)
        for name, rule in lc.spec.periodic.items():
            cal = lc.calendars[rule.calendar]  # per-grid rules: each run covers every grid
            scheduler.add_job(_safe_run, CronTrigger.from_crontab(rule.cron, timezone=cal.zone),
                              args=[engine, scheduler], id=f"periodic:{version}:{name}",
                              replace_existing=True, max_instances=1, coalesce=True,
                              misfire_grace_time=None)
            count += 1
    dormant = IntervalTrigger(seconds=_DORMANT.total_seconds())
    if count:
        scheduler.add_job(_safe_run, dormant, args=[engine], id="periodic:catch-up",
                          max_instances=1, next_run_time=datetime.now(UTC))
    scheduler.add_job(_safe_run, dormant, args=[engine], id=_AGAIN, max_instances=1,
                      coalesce=True, misfire_grace_time=None, next_run_time=None)
    return count


def _safe_run(engine: HasKernel, scheduler: Any = None) -> None:
    """Run the periodic work now; again once the engine's clock reaches this instant.

    The cron jobs wake on this machine's clock. When the engine's clock is behind it (the
    database server's clock, see :mod:`engine.store.dbclock`), an occurrence is not yet due
    on the engine's clock when its job wakes, so the work runs once more when it is.
    """
    import logging

    woke, engine_now = datetime.now(UTC), engine.kernel.clock.now()
    try:
        run_periodic(engine)
    except Exception:  # the scheduler thread must survive; the next occurrence retries
        logging.getLogger("gridwhistle.periodic").exception("periodic work failed")
    behind = woke - engine_now
    if scheduler is not None and behind > _LATE and not isinstance(engine.kernel.clock,
                                                                   VirtualClock):
        when = woke + behind + _LATE
        try:
            # one run at the latest instant asked covers every earlier one (it runs all the
            # work due by then)
            pending = scheduler.get_job(_AGAIN)
            if pending is not None and pending.next_run_time is not None:
                when = max(when, pending.next_run_time)
            scheduler.modify_job(_AGAIN, next_run_time=when)
        except JobLookupError:
            pass  # the scheduler is shutting down


_LATE = timedelta(milliseconds=1)
_DORMANT = timedelta(days=3650)
"""The interval of the catch-up and run-again jobs: they run when moved, then sleep."""
_AGAIN = "periodic:again"
