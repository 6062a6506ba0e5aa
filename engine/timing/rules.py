"""Time rules, checked on every command: validity, duty hours, time lags.

* **Validity period** (``valid_from`` / ``valid_until`` of a lifecycle): a report runs on the
  newest version valid then (:meth:`engine.runtime.catalog.Catalog.valid_version`); if none
  is, it is refused with :class:`LifecycleNotValid`.
* **Duty hours** (``during: CALENDAR`` on a transition): firing it outside that calendar's
  working time is refused with :class:`OutsideWorkingHours`.
* **Minimum lag** (``lags.NAME.min``): ``until`` fired sooner than ``min`` after the latest
  ``since`` of the ticket is refused with :class:`MinimumLagNotReached`. No ``since`` yet: no
  lag applies.
* **Maximum lag** (``lags.NAME.max``): each ``since`` (re)starts a ``lag:NAME`` timer and
  ``until`` cancels it; when it falls due, a breach (trigger ``NAME``) is recorded and, with
  ``on_breach: escalate``, the ticket escalates.

Refusals are raised in :meth:`TimeRules.check`, before anything of the command is written.
"""

from __future__ import annotations

from datetime import datetime

from engine.calendars.spans import due_after
from engine.lifecycle.machine import Lifecycle
from engine.runtime.catalog import is_valid_at
from engine.runtime.changes import Change
from engine.runtime.participant import CheckContext, FireContext, Participant, PlanContext
from engine.runtime.working import PendingTimer, TicketRecord
from engine.timing.errors import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours

__all__ = ["TimeRules"]


class TimeRules(Participant):
    """The participant that enforces validity periods, duty hours and time lags."""

    timer_prefix = "lag"

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles with a validity period, lags or duty hours on a transition."""
        spec = lifecycle.spec
        return bool(spec.lags or spec.valid_from or spec.valid_until
                    or any(t.during for t in spec.transitions))

    def check(self, ctx: CheckContext, change: Change) -> None:
        """Refuse ``change`` if a time rule forbids it."""
        lc = change.lifecycle
        if change.kind == "report":
            self._validity(change)
        if change.kind != "transition" or change.from_state is None:
            return
        for t in lc.transitions_for(change.from_state, change.trigger):
            if t.during is not None and t.dest == change.to_state:
                cal = lc.calendars[t.during]
                if not cal.is_working_time(change.at):
                    raise OutsideWorkingHours(change.ticket_id, change.trigger, t.during,
                                              cal.next_working_instant(change.at))
        for name, lag in lc.spec.lags.items():
            if change.trigger != lag.until or lag.min is None:
                continue
            since_at = ctx.last_fired(change.ticket_id, lag.since, before=change.seq)
            if since_at is None:
                continue
            earliest = due_after(lc.calendars, lag.min, since_at)
            if change.at < earliest:
                raise MinimumLagNotReached(change.ticket_id, change.trigger, name, lag.since,
                                           since_at, earliest)

    @staticmethod
    def _validity(change: Change) -> None:
        spec = change.lifecycle.spec
        if not is_valid_at(change.lifecycle, change.at):
            start = datetime.fromisoformat(spec.valid_from) if spec.valid_from else None
            end = datetime.fromisoformat(spec.valid_until) if spec.valid_until else None
            raise LifecycleNotValid(change.ticket_id, spec.name, change.at, start, end)

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Start and stop maximum-lag timers."""
        lc = change.lifecycle
        lags = lc.spec.lags
        if not lags or change.kind not in ("report", "transition"):
            return
        tid = change.ticket_id
        for name, lag in lags.items():
            if lag.max is None:
                continue
            if change.trigger == lag.until:
                ctx.cancel(tid, f"lag:{name}")
            if change.trigger == lag.since:
                ctx.schedule(tid, f"lag:{name}", due_after(lc.calendars, lag.max, change.at))
        if change.to_state in lc.final_states:
            ctx.cancel(tid, "lag")  # a finished ticket has no lag to keep

    def fire(self, ctx: FireContext, timer: PendingTimer, ticket: TicketRecord) -> str:
        """A claimed maximum-lag timer: record the breach (and escalate if configured)."""
        name = timer.name.split(":", 1)[1]
        lc = ticket.lifecycle
        lag = lc.spec.lags.get(name)
        if lag is None or ticket.state in lc.final_states:
            return "stale"
        outcome = ctx.record(
            ticket.id, "breach", name,
            f"{lag.until!r} did not follow {lag.since!r} by {timer.due_at.isoformat()} "
            f"(lag {name!r})",
            {"due_at": timer.due_at.isoformat(), "timer_id": timer.id,
             "on_breach": lag.on_breach}, escalate=lag.on_breach == "escalate")
        return "breached" if outcome == "recorded" else outcome

    def timer_problem(self, name: str, state: str, level: str,
                      lifecycle: Lifecycle) -> str | None:
        """A lag timer of a lag rule the lifecycle does not have."""
        owner = name.split(":", 1)[1]
        if owner not in lifecycle.spec.lags:
            return f"no lag rule {owner!r} in {lifecycle.name}"
        return None
