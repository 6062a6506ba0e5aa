"""APScheduler as the wake-up clock that fires deadlines in real time.

APScheduler keeps no state of ours: timers are rows in the database, and a job here only
*wakes the engine* to fire what is due (:meth:`Kernel.run_due`). Jobs, in memory:

* ``wake``: runs at the next due time (plus 1 ms, since a deadline is breached only once the
  clock is past it), re-armed after each run and whenever a commit creates an earlier timer;
* ``sweep``: an interval trigger (default every 30 s) that fires what is due anyway, in case
  another process created timers or a wake-up was missed; its first run is at start-up;
* whatever the ``jobs`` callback adds (the engine adds one cron job per ``periodic`` rule,
  see :mod:`engine.periodic.runner`).

Claiming a timer is a conditional update in the database, so a timer fires once even if
both jobs (or several processes) run at the same moment. The wake-up runs no host code
after a commit: listeners of fired timers run on their own thread
(:class:`~engine.runtime.unit_of_work.AfterCommitExecutor`), so a hung listener cannot
stop the clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engine.clock import VirtualClock
from engine.runtime.kernel import Kernel

__all__ = ["WakeUpScheduler"]

log = logging.getLogger("gridwhistle.scheduler")
_SLACK = timedelta(milliseconds=1)
_DORMANT = timedelta(days=3650)
"""The wake-up job's interval: after a run it sleeps until :meth:`WakeUpScheduler.wake_at`
arms it again (long before this passes)."""


class WakeUpScheduler:
    """Fires the kernel's due timers at each next due time and every ``sweep_seconds``.

    Args:
        kernel: the engine's kernel.
        sweep_seconds: interval of the safety sweep (seconds).
        jobs: called with the APScheduler scheduler once it runs, to add more jobs.
    """

    def __init__(self, kernel: Kernel, *, sweep_seconds: float = 30.0,
                 jobs: Callable[[Any], object] | None = None):
        self.kernel = kernel
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._armed: datetime | None = None
        self._sweep = sweep_seconds
        self._jobs = jobs
        self._stopping = False
        self._armable = False  # the wake-up job exists (start() added it)
        self._running = threading.Lock()  # held while a run is in flight

    @property
    def aps(self) -> BackgroundScheduler:
        """The APScheduler scheduler underneath (to list its jobs)."""
        return self._scheduler

    def start(self) -> None:
        """Start the background thread, sweep once, and arm the first wake-up.

        Every job of ours stays in the scheduler until it shuts down: APScheduler 3 removes a
        one-off job after its run, and when ``shutdown()`` comes at that moment the removal
        fails (it marks the scheduler stopped before taking its job-store lock) and the
        scheduler's thread dies with ``JobLookupError``. So the start-up sweep is the sweep
        job's first run, and the wake-up is one long-interval job that
        :meth:`wake_at` moves (a run leaves it dormant until armed again).
        """
        now = datetime.now(UTC)
        self._scheduler.add_job(self._run, IntervalTrigger(seconds=self._sweep), id="sweep",
                                max_instances=1, coalesce=True, next_run_time=now)
        self._scheduler.add_job(self._run, IntervalTrigger(seconds=_DORMANT.total_seconds()),
                                id="wake", max_instances=1, coalesce=True,
                                misfire_grace_time=None, next_run_time=None)
        with self._lock:
            self._armable = True
        self._scheduler.start()
        if self._jobs is not None:
            self._jobs(self._scheduler)

    def stop(self) -> None:
        """Stop the thread, waiting for a running run to finish.

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
        """Make sure the engine wakes just after its clock reaches ``due`` (aware UTC).

        Not with a :class:`~engine.clock.VirtualClock`: it does not move by itself (tests move
        it with ``run_until``), so waking at a virtual instant would spin; the start-up run and
        the sweep still fire what is due on it.
        """
        if isinstance(self.kernel.clock, VirtualClock):
            return
        # APScheduler waits on this machine's clock; the engine's may differ (the database
        # server's, see engine.store.dbclock): wake when the engine's clock reaches ``due``
        ahead = self.kernel.clock.now() - datetime.now(UTC)
        when = due - ahead + _SLACK
        with self._lock:
            if (self._stopping or not self._armable
                    or (self._armed is not None and self._armed <= when)):
                return
            self._armed = when
            self._scheduler.modify_job("wake", next_run_time=when)

    def _run(self) -> None:
        with self._running:
            if self._stopping:
                return
            try:
                fired = self.kernel.run_due(self.kernel.clock.now())
                if fired:
                    log.info("fired %d timer(s)", len(fired))
                with self._lock:
                    self._armed = None
                nxt = self.kernel.next_due()
            except Exception:  # the scheduler thread must survive; the next sweep retries
                log.exception("firing due timers failed; will retry at the next wake-up")
                return
            if nxt is not None:
                self.wake_at(nxt)
