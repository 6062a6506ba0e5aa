"""Time rules checked in each command's transaction: validity, duty hours, time lags.

* **Validity period** (``valid_from`` / ``valid_until`` of a lifecycle): a report runs on the
  newest version valid then (:mod:`engine.timing.validity`); if none is, it is refused with
  :class:`LifecycleNotValid`.
* **Duty hours** (``during: CALENDAR`` on a transition): firing it outside that calendar's
  working time is refused with :class:`OutsideWorkingHours`.
* **Minimum lag** (``lags.NAME.min``): ``until`` fired sooner than ``min`` after the latest
  ``since`` of the ticket is refused with :class:`MinimumLagNotReached`. No ``since`` yet: no
  lag applies.
* **Maximum lag** (``lags.NAME.max``): each ``since`` (re)starts a ``lag:NAME`` timer and
  ``until`` cancels it; when it falls due, a breach (trigger ``NAME``) is recorded and, with
  ``on_breach: escalate``, the ticket escalates.

A refusal raised here rolls back the whole command (participants run inside its transaction).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import FiredTimer, Timer
from engine.store.tables import history
from engine.timing import timers as T
from engine.timing.breach import history_row, record
from engine.timing.errors import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours
from engine.timing.validity import is_valid_at

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["TimeRules", "fire_max_lag"]


class TimeRules:
    """The participant that enforces validity periods, duty hours and time lags."""

    def on_change(self, conn: Connection, change: Change) -> None:
        """Refuse ``change`` if a time rule forbids it; start and stop maximum-lag timers."""
        spec = change.lifecycle.spec
        if change.kind == "report":
            self._validity(change)
        if change.kind not in ("report", "transition"):
            return
        if change.kind == "transition" and change.from_state is not None:
            self._duty_hours(change)
        for name, lag in spec.lags.items():
            if change.trigger == lag.until and lag.min is not None:
                self._min_lag(conn, change, name)
            if change.trigger == lag.until and lag.max is not None:
                T.cancel(conn, change.ticket_id, f"lag:{name}")
            if change.trigger == lag.since and lag.max is not None:
                T.cancel(conn, change.ticket_id, f"lag:{name}")
                due = due_after(change.lifecycle.calendars, lag.max, change.at)
                T.schedule(conn, change.ticket_id, f"lag:{name}", due, change.at)
        if spec.lags and change.to_state in change.lifecycle.final_states:
            T.cancel(conn, change.ticket_id, "lag")  # a finished ticket has no lag to keep

    @staticmethod
    def _validity(change: Change) -> None:
        spec = change.lifecycle.spec
        if not is_valid_at(spec, change.at):
            start = datetime.fromisoformat(spec.valid_from) if spec.valid_from else None
            end = datetime.fromisoformat(spec.valid_until) if spec.valid_until else None
            raise LifecycleNotValid(change.ticket_id, spec.name, change.at, start, end)

    @staticmethod
    def _duty_hours(change: Change) -> None:
        lc = change.lifecycle
        for t in lc.transitions_for(change.from_state or "", change.trigger):
            if t.during is not None and t.dest == change.to_state:
                cal = lc.calendars[t.during]
                if not cal.is_working_time(change.at):
                    raise OutsideWorkingHours(change.ticket_id, change.trigger, t.during,
                                              cal.next_working_instant(change.at))

    @staticmethod
    def _min_lag(conn: Connection, change: Change, name: str) -> None:
        lag = change.lifecycle.spec.lags[name]
        since_at = conn.execute(
            select(history.c.at).where(history.c.ticket_id == change.ticket_id,
                                       history.c.trigger == lag.since,
                                       history.c.kind.in_(("report", "transition")),
                                       history.c.seq < change.seq)
            .order_by(history.c.seq.desc()).limit(1)).scalar()
        if since_at is None or lag.min is None:
            return
        earliest = due_after(change.lifecycle.calendars, lag.min, since_at)
        if change.at < earliest:
            raise MinimumLagNotReached(change.ticket_id, change.trigger, name, lag.since,
                                       since_at, earliest)


def fire_max_lag(engine: Engine, conn: Connection, timer: Timer, row: Any, lc: Lifecycle,
                 now: datetime) -> FiredTimer:
    """A claimed maximum-lag timer: record the breach (and escalate if configured)."""
    name = timer.name.split(":", 1)[1]
    lag = lc.spec.lags.get(name)
    if lag is None or row["state"] in lc.final_states:
        return T.stale(conn, timer, now)
    entry = history_row(
        row, now, "breach", name,
        f"{lag.until!r} did not follow {lag.since!r} by {timer.due_at.isoformat()} "
        f"(lag {name!r})",
        {"due_at": timer.due_at.isoformat(), "timer_id": timer.id, "on_breach": lag.on_breach})
    outcome = record(engine, conn, row, lc, entry, escalate=lag.on_breach == "escalate")
    return FiredTimer(timer, "breached" if outcome == "recorded" else outcome)
