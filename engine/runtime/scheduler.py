"""APScheduler as the wake-up clock that fires deadlines in real time.

APScheduler keeps no state of ours: timers are rows in the database, and a job here only
*wakes the engine* to call :meth:`Engine.run_due`. Two jobs, in memory:

* ``wake``: a date trigger at the next due time (plus 1 ms, since a deadline is breached only
  once the clock is past it), re-armed after each run and whenever a command creates an
  earlier timer;
* ``sweep``: an interval trigger (default every 30 s) that calls ``run_due`` anyway, in case
  another process created timers or a wake-up was missed;
* ``periodic:*``: one cron trigger per ``periodic`` rule of the deployed lifecycles (see
  :mod:`engine.periodic.runner`).

Because claiming a timer is a conditional update in the database, a timer fires once even if
both jobs (or several processes) run at the same moment.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["WakeUpScheduler"]

log = logging.getLogger("gridwhistle.scheduler")
_SLACK = timedelta(milliseconds=1)


class WakeUpScheduler:
    """Calls ``engine.run_due()`` at each next due time and every ``sweep_seconds``.

    Args:
        engine: the engine to wake.
        sweep_seconds: interval of the safety sweep (seconds).
    """

    def __init__(self, engine: Engine, *, sweep_seconds: float = 30.0):
        self.engine = engine
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._armed: datetime | None = None
        self._sweep = sweep_seconds
        self._stopping = False
        self._running = threading.Lock()  # held while a run_due is in flight

    def start(self) -> None:
        """Start the background thread, sweep once, and arm the first wake-up."""
        self._scheduler.add_job(self._run, IntervalTrigger(seconds=self._sweep), id="sweep",
                                max_instances=1, coalesce=True)
        self._scheduler.start()
        self._scheduler.add_job(self._run, id="startup", max_instances=1)
        from engine.periodic import add_periodic_jobs

        add_periodic_jobs(self._scheduler, self.engine)  # cron jobs of `periodic` rules

    def stop(self) -> None:
        """Stop the thread, waiting for a running ``run_due`` to finish.

        APScheduler's ``shutdown(wait=True)`` holds its job-store lock while waiting for the
        running job, and that job re-arms the wake-up (which needs the same lock): so we stop
        re-arming, shut down without waiting, and wait for our own run to end instead.
        """
        with self._lock:
            self._stopping = True
        self._scheduler.shutdown(wait=False)
        with self._running:
            pass

    def wake_at(self, due: datetime) -> None:
        """Make sure the engine wakes just after ``due`` (aware UTC).

        Not with a :class:`~engine.clock.VirtualClock`: it does not move by itself (tests move
        it with ``run_until``), so waking at a virtual instant would spin; the start-up run and
        the sweep still fire what is due on it.
        """
        from engine.clock import VirtualClock

        if isinstance(self.engine.clock, VirtualClock):
            return
        when = due + _SLACK
        with self._lock:
            if self._stopping or (self._armed is not None and self._armed <= when):
                return
            self._armed = when
            self._scheduler.add_job(self._run, DateTrigger(run_date=when), id="wake",
                                    replace_existing=True, max_instances=1,
                                    misfire_grace_time=None)

    def _run(self) -> None:
        with self._running:
            if self._stopping:
                return
            try:
                fired = self.engine.run_due()
                if fired:
                    log.info("fired %d timer(s)", len(fired))
                with self._lock:
                    self._armed = None
                nxt = self.engine.next_due()
            except Exception:  # the scheduler thread must survive; the next sweep retries
                log.exception("run_due failed; will retry at the next wake-up")
                return
            if nxt is not None:
                self.wake_at(nxt)
