"""SLA clocks, kept by a participant in each command's transaction.

Rules, applied to every report and transition of a ticket, for each clock of its lifecycle:

* **start**: a clock that does not exist yet starts when ``start`` matches (default: the
  report). If the ticket is then in a ``pause`` state, it starts paused.
* **stop**: a running or paused clock stops when ``stop`` matches or the ticket reaches a
  final state; its outcome is ``met`` unless it was already ``breached`` (or is stopped past
  its due instant). The elapsed (working) time is recorded.
* **pause / resume**: a running clock pauses when ``pause`` matches; a paused clock resumes
  when ``resume`` matches, or, without ``resume``, when the ticket enters a state that is not
  one of ``pause.states``.
* **reopen**: a stopped clock *continues* from its elapsed time (it does not restart) when its
  ``start`` matches again, or when the ticket leaves one of ``stop.states`` for a state that
  is neither a stop state nor final (resolved → on site); a breach stays recorded and is not
  repeated.
* A change matches a condition when its trigger is one of ``triggers`` or it *enters* one of
  ``states`` (a self-transition enters nothing).

Elapsed time is counted in the target's calendar (working time) for a working target, else in
elapsed time. While a clock runs it has a breach timer at the instant the remaining target is
used up, and a timer for each warning not yet given (``percent`` of the target, or ``before``
the breach). Pausing or stopping cancels them; resuming schedules them again from what is left.
A clock with ``at_field`` is due at that instant and cannot pause; a command that changes the
field moves its breach and warnings (clearing it leaves the clock without a due instant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from engine.definition.schema import ConditionSpec, SlaSpec, WorkingSpan
from engine.durations import format_duration
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import FiredTimer, Timer
from engine.store import statements as S
from engine.store.tables import definitions, sla_clocks, tickets
from engine.timing import timers as T
from engine.timing.breach import history_row, record

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["SlaClock", "SlaClocks", "clocks_of", "fire_sla", "sla_outcomes"]

_ZERO = timedelta(0)


@dataclass(frozen=True)
class SlaClock:
    """One SLA clock of a ticket, as stored.

    Attributes:
        ticket_id, name: whose and which clock.
        status: ``running``, ``paused`` or ``stopped``.
        started_at: when it first started; ``stopped_at``: when it last stopped (or None).
        elapsed: (working) time run so far, up to the last start/pause/stop (a timedelta).
        due_at: while running, the instant it will be breached (aware UTC), else None.
        outcome: None (never stopped), ``met`` or ``breached``; ``breached_at``: the breach's
            due instant.
    """

    ticket_id: str
    name: str
    status: str
    started_at: datetime
    stopped_at: datetime | None
    elapsed: timedelta
    due_at: datetime | None
    outcome: str | None
    breached_at: datetime | None


def _matches(cond: ConditionSpec | None, change: Change) -> bool:
    if cond is None:
        return False
    entered = change.to_state if change.from_state != change.to_state else None
    return change.trigger in cond.triggers or (entered is not None and entered in cond.states)


def _stops(sla: SlaSpec, change: Change) -> bool:
    """``stop`` matches, or the ticket reaches a final state (which stops every clock)."""
    return _matches(sla.stop, change) or (
        change.from_state != change.to_state and change.to_state in change.lifecycle.final_states)


def _left_stop_states(sla: SlaSpec, change: Change) -> bool:
    """A reopen: the ticket leaves a stop state for a state that neither stops nor ends it."""
    return (change.from_state in sla.stop.states
            and change.to_state not in sla.stop.states
            and change.to_state not in change.lifecycle.final_states)


def _measure(lc: Lifecycle, sla: SlaSpec, a: datetime, b: datetime) -> timedelta:
    if isinstance(sla.target, WorkingSpan):
        return lc.calendars[sla.target.calendar].working_between(a, b)
    return max(b - a, _ZERO)


def _after(lc: Lifecycle, sla: SlaSpec, start: datetime, amount: timedelta) -> datetime:
    amount = max(amount, _ZERO)
    if isinstance(sla.target, WorkingSpan):
        return lc.calendars[sla.target.calendar].add(start, amount)
    return start + amount


def _target(sla: SlaSpec) -> timedelta | None:
    if isinstance(sla.target, WorkingSpan):
        return sla.target.working
    return sla.target


_SELECT = select(sla_clocks).where(sla_clocks.c.ticket_id == bindparam("b_tid"))
_BY_NAME = select(sla_clocks).where(sla_clocks.c.ticket_id == bindparam("b_tid"),
                                    sla_clocks.c.name == bindparam("b_name"))
_INSERT = insert(sla_clocks)
_UPDATE = update(sla_clocks).where(sla_clocks.c.id == bindparam("b_cid"))
"""SET columns come from the parameters given with it (prebuilt: the hot path of replays)."""


class SlaClocks:
    """The participant that keeps SLA clocks (registered by every Engine)."""

    def on_change(self, conn: Connection, change: Change) -> None:
        """Start, pause, resume or stop the ticket's clocks for ``change``."""
        specs = change.lifecycle.spec.slas
        if not specs or change.kind not in ("report", "transition"):
            return
        rows = ({} if change.kind == "report" else
                {r["name"]: r for r in conn.execute(_SELECT, {"b_tid": change.ticket_id})
                 .mappings()})
        new_timers: list[dict[str, Any]] = []
        for name, sla in specs.items():
            self._step(conn, change, name, sla, rows.get(name), new_timers)
        if new_timers:
            conn.execute(S.INSERT_TIMERS, new_timers)

    def _step(self, conn: Connection, change: Change, name: str, sla: SlaSpec,
              row: Any, new_timers: list[dict[str, Any]]) -> None:
        lc, at, tid = change.lifecycle, change.at, change.ticket_id
        if row is None:
            if not _matches(sla.start, change):
                return
            paused = sla.pause is not None and change.to_state in sla.pause.states
            values: dict[str, Any] = dict(
                ticket_id=tid, name=name, status="paused" if paused else "running",
                started_at=at, running_since=None if paused else at, elapsed_seconds=0.0,
                due_at=None, outcome=None, breached_at=None, stopped_at=None, warned=[])
            if not paused:
                values["due_at"] = self._arm(change, name, sla, values, new_timers)
            conn.execute(_INSERT, values)
            return
        status = row["status"]
        elapsed = timedelta(seconds=row["elapsed_seconds"])
        if status == "running":
            elapsed += _measure(lc, sla, row["running_since"], at)
            if _stops(sla, change):
                # met at its due instant (the tie rule); past it, breached even if the
                # breach timer has not fired yet
                late = row["due_at"] is not None and at > row["due_at"]
                conn.execute(_UPDATE, dict(
                    b_cid=row["id"], status="stopped", running_since=None,
                    elapsed_seconds=elapsed.total_seconds(), due_at=None, stopped_at=at,
                    outcome=row["outcome"] or ("breached" if late else "met"),
                    breached_at=row["breached_at"] or (row["due_at"] if late else None)))
            elif _matches(sla.pause, change):
                conn.execute(_UPDATE, dict(b_cid=row["id"], status="paused", running_since=None,
                                           elapsed_seconds=elapsed.total_seconds(),
                                           due_at=None))
            elif sla.at_field is not None and sla.at_field in (change.data.get("fields") or {}):
                # the due instant's field changed: the clock follows it (like at_field deadlines)
                T.cancel(conn, tid, f"sla:{name}")
                due = self._arm(change, name, sla, dict(row), new_timers)
                conn.execute(_UPDATE, dict(b_cid=row["id"], due_at=due))
                return
            else:
                return
            T.cancel(conn, tid, f"sla:{name}")
        elif status == "paused":
            if _stops(sla, change):
                conn.execute(_UPDATE, dict(b_cid=row["id"], status="stopped", stopped_at=at,
                                           outcome=row["outcome"] or "met"))
            elif _matches(sla.resume, change) or (
                sla.resume is None and sla.pause is not None
                and change.from_state != change.to_state
                and change.to_state not in sla.pause.states
            ):
                values = dict(row) | {"status": "running", "running_since": at}
                due = self._arm(change, name, sla, values, new_timers)
                conn.execute(_UPDATE, dict(b_cid=row["id"], status="running",
                                           running_since=at, due_at=due))
        elif status == "stopped" and not _stops(sla, change) and (
            _matches(sla.start, change) or _left_stop_states(sla, change)
        ):
            values = dict(row) | {"status": "running", "running_since": at}
            due = self._arm(change, name, sla, values, new_timers)
            conn.execute(_UPDATE, dict(
                b_cid=row["id"], status="running", running_since=at, stopped_at=None,
                due_at=due, outcome="breached" if row["outcome"] == "breached" else None))

    @staticmethod
    def _arm(change: Change, name: str, sla: SlaSpec, values: dict[str, Any],
             new_timers: list[dict[str, Any]]) -> datetime | None:
        """Plan the timers of a clock that (re)starts now; return its breach instant.

        The breach timer (unless already breached) and the warnings not yet given.
        """
        lc, tid, now = change.lifecycle, change.ticket_id, change.at
        since: datetime = values["running_since"]
        elapsed = timedelta(seconds=values["elapsed_seconds"])
        target = _target(sla)
        if target is not None:
            due = _after(lc, sla, since, target - elapsed)
        else:
            raw = change.fields.get(sla.at_field or "")
            if raw is None:
                return None
            due = datetime.fromisoformat(raw)
        if values["outcome"] != "breached":
            new_timers.append(T.timer_row(tid, f"sla:{name}", due, now))
        for i, w in enumerate(sla.warn):
            if i in (values["warned"] or []):
                continue
            if w.percent is not None and target is not None:
                left = target * (w.percent / 100) - elapsed
                if left < _ZERO:
                    continue
                warn_at = _after(lc, sla, since, left)
            elif w.before is not None and target is not None:
                left = target - w.before - elapsed
                if left < _ZERO:
                    continue
                warn_at = _after(lc, sla, since, left)
            elif w.before is not None:
                warn_at = due - w.before
            else:
                continue
            if warn_at < due:
                new_timers.append(T.timer_row(tid, f"sla:{name}:warn:{i}", max(warn_at, now),
                                              now))
        return due


def fire_sla(engine: Engine, conn: Connection, timer: Timer, row: Any, lc: Lifecycle,
             now: datetime) -> FiredTimer:
    """A claimed SLA timer: record the warning or the breach (and escalate if configured)."""
    parts = timer.name.split(":")
    name = parts[1]
    sla = lc.spec.slas.get(name)
    clock = conn.execute(_BY_NAME, {"b_tid": timer.ticket_id, "b_name": name}).mappings().first()
    if sla is None or clock is None or clock["status"] != "running" \
            or row["state"] in lc.final_states:
        return T.stale(conn, timer, now)
    elapsed = timedelta(seconds=clock["elapsed_seconds"]) + _measure(
        lc, sla, clock["running_since"], timer.due_at)
    target = _target(sla)
    data: dict[str, Any] = {"due_at": timer.due_at.isoformat(), "timer_id": timer.id,
                            "elapsed_seconds": elapsed.total_seconds()}
    if target is not None:
        data["target_seconds"] = target.total_seconds()
    if len(parts) == 4:  # a warning
        index = int(parts[3])
        warned = list(clock["warned"] or [])
        if index in warned:
            return T.stale(conn, timer, now)
        conn.execute(_UPDATE, {"b_cid": clock["id"], "warned": [*warned, index]})
        w = sla.warn[index]
        what = f"{w.percent}% of its target used" if w.percent is not None else (
            f"{format_duration(w.before or _ZERO)} before its breach")
        entry = history_row(row, now, "sla_warning", name,
                            f"SLA {name!r} warning: {what}", data | {"warning": index})
        record(engine, conn, row, lc, entry, escalate=False)
        return FiredTimer(timer, "warned")
    if clock["outcome"] == "breached":
        return T.stale(conn, timer, now)
    conn.execute(_UPDATE, {"b_cid": clock["id"], "outcome": "breached",
                           "breached_at": timer.due_at})
    entry = history_row(row, now, "sla_breach", name,
                        f"SLA {name!r} due {timer.due_at.isoformat()} was breached",
                        data | {"on_breach": sla.on_breach})
    outcome = record(engine, conn, row, lc, entry, escalate=sla.on_breach == "escalate")
    return FiredTimer(timer, "breached" if outcome == "recorded" else outcome)


def clocks_of(conn: Connection, ticket_id: str) -> list[SlaClock]:
    """The ticket's SLA clocks, by name."""
    rows = conn.execute(select(sla_clocks).where(sla_clocks.c.ticket_id == ticket_id)
                        .order_by(sla_clocks.c.name)).mappings().all()
    return [SlaClock(r["ticket_id"], r["name"], r["status"], r["started_at"], r["stopped_at"],
                     timedelta(seconds=r["elapsed_seconds"]), r["due_at"], r["outcome"],
                     r["breached_at"]) for r in rows]


def sla_outcomes(conn: Connection, lifecycle: str) -> dict[str, dict[str, int]]:
    """Outcome counts per SLA clock name over every ticket of ``lifecycle``.

    ``{"met": n, "breached": n, "open": n}``; open = not stopped yet and not breached.
    """
    ids = select(definitions.c.id).where(definitions.c.name == lifecycle).scalar_subquery()
    mine = select(tickets.c.id).where(tickets.c.definition_id.in_(ids))
    out: dict[str, dict[str, int]] = {}
    for name, outcome, count in conn.execute(
        select(sla_clocks.c.name, sla_clocks.c.outcome, func.count())
        .where(sla_clocks.c.ticket_id.in_(mine))
        .group_by(sla_clocks.c.name, sla_clocks.c.outcome)
    ).all():
        entry = out.setdefault(name, {"met": 0, "breached": 0, "open": 0})
        entry[outcome or "open"] += int(count)
    return dict(sorted(out.items()))
