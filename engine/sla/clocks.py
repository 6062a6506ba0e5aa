"""SLA clocks: a participant that starts, pauses, resumes and stops them on every change.

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
elapsed time. While a clock runs it has a breach timer (``sla:<clock>``) at the instant the
remaining target is used up, and a timer for each warning not yet given
(``sla:<clock>:warn:<i>``: ``percent`` of the target, or ``before`` the breach). Pausing or
stopping cancels them; resuming schedules them again from what is left. A clock with
``at_field`` is due at that instant and cannot pause; a command that changes the field moves
its breach and warnings (clearing it leaves the clock without a due instant).

* **breached**: once its breach is recorded a clock keeps running (its elapsed time still
  counts) with that breach's instant as its due instant and no timer; nothing moves it
  again — not its field changing, not resuming, reopening or a suspension's end.

* **suspension** (issue 11, a lifecycle's ``oversight.suspension``): a ``suspended`` history
  row suspends the running clocks it names (``suspension.clocks``; none named: all) — status
  ``suspended``, their elapsed time kept and their timers cancelled, as when paused — and
  the ``resumed`` row runs them on from there (a clock due at a field is armed from the
  field as the ``resumed`` row leaves it). A suspended clock ignores pause and resume
  conditions; reaching a final state stops it. A clock the suspension does not name is
  untouched by both rows: it runs, breaches and keeps its due instant, even when the
  ``resumed`` row moves the field it is due at (for a held deadline due at the same field).

``Engine.check_invariants`` asks :meth:`SlaClocks.stored_problems` for the rule
``sla_clock``: each stored clock's status, due instant and outcome agree with its pending
timers and with the ticket's suspension.

A clock's state is kept per ticket as :class:`ClockState` values (table ``gw_sla_clocks``);
a change that cannot affect any clock of the lifecycle (see :func:`_touches`) does not even
read them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from engine.definition.schema import ConditionSpec, SlaSpec, WorkingSpan
from engine.durations import format_duration
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.invariants import suspended_by_history
from engine.runtime.participant import FireContext, Participant, PlanContext, RowWrite
from engine.runtime.working import PendingTimer, TicketRecord
from engine.store.reads import in_chunks
from engine.store.tables import sla_clocks

__all__ = ["ClockState", "SlaClock", "SlaClocks", "clocks_of"]

_ZERO = timedelta(0)


@dataclass(frozen=True)
class SlaClock:
    """One SLA clock of a ticket, as stored.

    Attributes:
        ticket_id, name: whose and which clock.
        status: ``running``, ``paused``, ``suspended`` (by a suspension, issue 11) or
            ``stopped``.
        started_at: when it first started; ``stopped_at``: when it last stopped (or None).
        elapsed: (working) time run so far, up to the last start/pause/stop (a timedelta).
        due_at: while running, the instant it will be breached (aware UTC; once breached,
            the breach's instant), else None.
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


class ClockState(NamedTuple):
    """One clock in the working copy: the columns of its ``gw_sla_clocks`` row.

    A ``NamedTuple``, not a frozen dataclass: as immutable, and built in a third of the
    time (a frozen dataclass sets each field through ``object.__setattr__``); the
    pipeline builds several per command.
    """

    name: str
    status: str
    started_at: datetime
    running_since: datetime | None
    elapsed_seconds: float
    due_at: datetime | None
    outcome: str | None
    breached_at: datetime | None
    stopped_at: datetime | None
    warned: tuple[int, ...]


Clocks = tuple[ClockState, ...]
"""A ticket's clocks, by name."""

_NAME = operator.itemgetter(0)  # a ClockState's name (the sort key of Clocks)
_new = tuple.__new__


def _matches(cond: ConditionSpec | None, change: Change) -> bool:
    if cond is None:
        return False
    entered = change.entered
    return change.trigger in cond.triggers or (entered is not None and entered in cond.states)


def _stops(sla: SlaSpec, change: Change) -> bool:
    """``stop`` matches, or the ticket reaches a final state (which stops every clock)."""
    return _matches(sla.stop, change) or (
        change.entered is not None and change.to_state in change.lifecycle.final_states)


def _left_stop_states(sla: SlaSpec, change: Change) -> bool:
    """A reopen: the ticket leaves a stop state for a state that neither stops nor ends it."""
    return (change.from_state in sla.stop.states
            and change.to_state not in sla.stop.states
            and change.to_state not in change.lifecycle.final_states)


def _implicit_resume(sla: SlaSpec, change: Change) -> bool:
    """A paused clock without ``resume`` resumes on entering a state not in ``pause.states``."""
    return (sla.resume is None and sla.pause is not None and change.entered is not None
            and change.to_state not in sla.pause.states)


def _touches(sla: SlaSpec, change: Change) -> bool:
    """Whether ``change``'s trigger and states can change this clock, whatever its state.

    Every branch of :meth:`SlaClocks._step` needs this, or (a clock due at a field) the
    change setting that field (:meth:`SlaClocks._touched`); when neither holds the stored
    clock is not even read. A function of the lifecycle, the trigger and the two states
    alone, so it is memoised per transition.
    """
    if (_matches(sla.start, change) or _stops(sla, change) or _matches(sla.pause, change)
            or _matches(sla.resume, change) or _left_stop_states(sla, change)):
        return True
    if _implicit_resume(sla, change):
        pause = sla.pause
        assert pause is not None
        # paused by states only: a paused clock means the ticket is in a pause state
        return bool(pause.triggers) or change.from_state in pause.states
    return False


class _Moves(NamedTuple):
    """What a change of one shape (lifecycle, trigger, the two states) means for a clock.

    The conditions :meth:`SlaClocks._step` asks, answered once per shape (they depend on
    nothing else) instead of on every change: ~1 µs of the SLA plan's 10 µs a dispatch.
    """

    name: str
    sla: SlaSpec
    touches: bool  # _touches: the change can move the clock whatever its fields
    starts: bool  # ``start`` matches
    starts_paused: bool  # a clock starting now starts paused (the ticket in a pause state)
    stops: bool  # _stops
    pauses: bool  # ``pause`` matches
    resumes: bool  # ``resume`` matches, or the implicit resume
    reopens: bool  # _left_stop_states
    ends: bool  # the change enters a final state
    timer: str  # the clock's breach timer, ``sla:<name>`` (the prefix of its warnings)
    calendar: Any  # the target's business calendar (None: elapsed time)


def _moves(name: str, sla: SlaSpec, change: Change) -> _Moves:
    """The :class:`_Moves` of ``change``'s shape for clock ``name``."""
    lc = change.lifecycle
    pause = sla.pause
    target = sla.target
    return _Moves(
        name, sla, _touches(sla, change), _matches(sla.start, change),
        pause is not None and change.to_state in pause.states, _stops(sla, change),
        _matches(pause, change), _matches(sla.resume, change) or _implicit_resume(sla, change),
        _left_stop_states(sla, change),
        change.entered is not None and change.to_state in lc.final_states, f"sla:{name}",
        lc.calendars[target.calendar] if isinstance(target, WorkingSpan) else None)


def _measure(lc: Lifecycle, sla: SlaSpec, a: datetime, b: datetime) -> timedelta:
    target = sla.target
    return _elapsed(lc.calendars[target.calendar] if isinstance(target, WorkingSpan) else None,
                    a, b)


def _elapsed(calendar: Any, a: datetime, b: datetime) -> timedelta:
    """The clock's time from ``a`` to ``b``: working time on ``calendar``, else elapsed time."""
    if calendar is not None:
        return calendar.working_between(a, b)  # type: ignore[no-any-return]
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


_INSERT = insert(sla_clocks)
_c = sla_clocks.c
_UPDATE = (
    update(sla_clocks)
    .where(_c.ticket_id == bindparam("b_tid"), _c.name == bindparam("b_name"))
    .values(status=bindparam("b_status"),
            running_since=bindparam("b_running_since", type_=_c.running_since.type),
            elapsed_seconds=bindparam("b_elapsed", type_=_c.elapsed_seconds.type),
            due_at=bindparam("b_due_at", type_=_c.due_at.type),
            outcome=bindparam("b_outcome"),
            breached_at=bindparam("b_breached_at", type_=_c.breached_at.type),
            stopped_at=bindparam("b_stopped_at", type_=_c.stopped_at.type),
            warned=bindparam("b_warned", type_=_c.warned.type))
)
"""A clock's row after a change (one statement for every kind of change: executemany)."""


def _update_row(ticket_id: str, c: ClockState) -> dict[str, Any]:
    """The :data:`_UPDATE` parameters of clock ``c`` of ticket ``ticket_id``."""
    return {"b_tid": ticket_id, "b_name": c.name, "b_status": c.status,
            "b_running_since": c.running_since, "b_elapsed": c.elapsed_seconds,
            "b_due_at": c.due_at, "b_outcome": c.outcome,
            "b_breached_at": c.breached_at, "b_stopped_at": c.stopped_at,
            "b_warned": list(c.warned)}


class SlaClocks(Participant):
    """The participant that keeps SLA clocks (registered by every Engine)."""

    key = "sla"
    timer_prefix = "sla"
    state_table = sla_clocks

    def __init__(self) -> None:
        self._specs: dict[int, tuple[tuple[str, SlaSpec], ...]] = {}
        self._memo: dict[tuple[int, str, str | None, str],
                         tuple[tuple[_Moves, ...], tuple[_Moves, ...]]] = {}

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles that declare SLA clocks."""
        return bool(lifecycle.spec.slas)

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Its (absent) check; changes no clock can follow (see :func:`_touches`).

        Not when a clock is due at a field and the change sets fields (it may set that one).
        """
        if kind not in ("report", "transition"):
            return False
        if step == "check":
            return True
        shape = Change("", lifecycle, 0, kind, trigger, from_state, to_state, None, "", "",
                       "", None, datetime.min, {}, {})
        sets = "fields" in data_keys
        return not any((sets and s.at_field is not None) or _touches(s, shape)
                       for _, s in self._clocks_of(lifecycle))

    def empty(self, lifecycle: Lifecycle) -> Clocks:
        """No clock started yet."""
        return ()

    def from_rows(self, rows: Sequence[Mapping[str, Any]]) -> Clocks:
        """A ticket's clocks from its ``gw_sla_clocks`` rows, by name."""
        # tuple.__new__ builds the ClockState as its generated __new__ would (every field
        # given, in order) without the Python-level __new__ call: 0.15 µs against 0.5 µs
        # per clock, and every command loads its ticket's clocks
        clocks = [_new(ClockState, (
            r["name"], r["status"], r["started_at"], r["running_since"],
            float(r["elapsed_seconds"]), r["due_at"], r["outcome"], r["breached_at"],
            r["stopped_at"], tuple(r["warned"] or ()))) for r in rows]
        if len(clocks) > 1:
            clocks.sort(key=_NAME)
        return tuple(clocks)

    def writes(self, ticket_id: str, stored: Clocks | None,
               current: Clocks) -> Iterable[RowWrite]:
        """Insert new clocks, update changed ones (a list of ``(statement, row)``)."""
        out: list[RowWrite] = []
        if stored is not None and len(stored) == len(current):
            # both sorted by name: the same names pair up in order (the common case, once
            # the clocks have started), without the by-name dict; an unchanged clock is
            # mostly the very object loaded. 0.8 µs against 1.1 µs for a grid_incident
            # ticket's clocks, at every command's flush
            for was, c in zip(stored, current):  # noqa: B905 - lengths checked above
                if was is c:
                    continue
                if was[0] != c[0]:  # other names (index 0): pair them by name
                    break
                if was != c:
                    out.append((_UPDATE, _update_row(ticket_id, c)))
            else:
                return out
            out.clear()
        before = {c.name: c for c in stored or ()}
        for c in current:
            old = before.get(c.name)
            if old == c:
                continue
            if old is None:
                out.append((_INSERT, {
                    "ticket_id": ticket_id, "name": c.name, "status": c.status,
                    "started_at": c.started_at, "running_since": c.running_since,
                    "elapsed_seconds": c.elapsed_seconds, "due_at": c.due_at,
                    "outcome": c.outcome, "breached_at": c.breached_at,
                    "stopped_at": c.stopped_at, "warned": list(c.warned)}))
            else:
                out.append((_UPDATE, _update_row(ticket_id, c)))
        return out

    def _clocks_of(self, lc: Lifecycle) -> tuple[tuple[str, SlaSpec], ...]:
        found = self._specs.get(id(lc))
        if found is None:
            found = self._specs[id(lc)] = tuple(lc.spec.slas.items())
        return found

    def _touched(self, change: Change) -> tuple[_Moves, ...]:
        """The clocks ``change`` can change, in the lifecycle's order.

        Those :func:`_touches` (memoised per lifecycle version and transition, with what the
        change's shape means for each: :class:`_Moves`), and a clock due at a field
        (``at_field``) whose field the change sets.
        """
        key = (id(change.lifecycle), change.trigger, change.from_state, change.to_state)
        memo = self._memo.get(key)
        if memo is None:
            moves = [_moves(n, s, change) for n, s in self._clocks_of(change.lifecycle)]
            memo = self._memo[key] = (
                tuple(m for m in moves if m.touches),
                tuple(m for m in moves if m.touches or m.sla.at_field is not None))
        touched, maybe = memo
        if len(maybe) == len(touched):  # no clock due at a field that is not touched anyway
            return touched
        set_fields = change.data.get("fields") or {}
        return tuple(m for m in maybe if m.touches or m.sla.at_field in set_fields)

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Start, pause, resume or stop the ticket's clocks for ``change``."""
        if change.kind not in ("report", "transition"):
            if change.kind in ("suspended", "resumed"):
                # a ``resumed`` row's fields are the held deadlines' moved dues: they move
                # only the clocks it resumes (armed from the fields), never the others
                self._suspension(ctx, change)
            elif change.data.get("fields"):
                self._fields_moved(ctx, change)  # e.g. an approved extension's new due
            return
        moves = self._touched(change)
        if not moves:
            return
        tid = change.ticket_id
        current: Clocks = ctx.state(tid)
        # (dict(zip(...)), sorted(key=itemgetter): no Python-level frame per clock)
        by_name = dict(zip(map(_NAME, current), current, strict=True))
        changed = added = False
        for m in moves:
            clock = by_name.get(m.name)
            new = self._step(ctx, change, m, clock)
            if new is not None:
                by_name[m.name] = new
                changed = True
                added = added or clock is None
        if changed:
            # the clocks stay in name order unless one was added
            ctx.set_state(tid, tuple(sorted(by_name.values(), key=_NAME)) if added
                          else tuple(by_name.values()))

    def _fields_moved(self, ctx: PlanContext, change: Change) -> None:
        """A row in place set the field a running clock is due at: the clock follows it.

        As a transition setting that field does (:meth:`_step`): the clock's timers are
        armed again for the field's new instant. Paused, suspended and stopped clocks are
        left as they are (a resumed clock is armed from the ticket's fields then), and so is
        a breached one (it keeps its breach's instant).
        """
        set_fields = change.data.get("fields") or {}
        specs = [(n, s) for n, s in self._clocks_of(change.lifecycle)
                 if s.at_field is not None and s.at_field in set_fields]
        if not specs:
            return
        tid = change.ticket_id
        by_name = {c.name: c for c in ctx.state(tid)}
        changed = False
        for name, sla in specs:
            clock = by_name.get(name)
            if clock is None or clock.status != "running" or clock.outcome == "breached":
                continue
            ctx.cancel(tid, f"sla:{name}")
            by_name[name] = clock._replace(due_at=self._arm(ctx, change, name, sla, clock))
            changed = True
        if changed:
            ctx.set_state(tid, tuple(sorted(by_name.values(), key=_NAME)))

    def _suspension(self, ctx: PlanContext, change: Change) -> None:
        """Suspend the running clocks (``suspended``), run the suspended ones on (``resumed``).

        A ``suspended`` row suspends the running clocks that ``suspension.clocks`` names
        (none named: all); a ``resumed`` row runs on every ``suspended`` clock (only a
        suspension makes one, whichever version's list named it) and arms it from the
        ticket's fields as the row leaves them. Any other clock is left as it is: neither
        paused nor moved, even when the ``resumed`` row moves the field it is due at.
        """
        oversight = change.lifecycle.spec.oversight
        sus = oversight.suspension if oversight is not None else None
        if sus is None:
            return
        names = set(sus.clocks or change.lifecycle.spec.slas)
        tid, at, lc = change.ticket_id, change.at, change.lifecycle
        current: Clocks = ctx.state(tid)
        out: list[ClockState] = []
        for clock in current:
            sla = lc.spec.slas.get(clock.name)
            if sla is None:
                out.append(clock)
            elif (change.kind == "suspended" and clock.status == "running"
                  and clock.name in names):
                assert clock.running_since is not None
                elapsed = (timedelta(seconds=clock.elapsed_seconds)
                           + _measure(lc, sla, clock.running_since, at))
                ctx.cancel(tid, f"sla:{clock.name}")
                out.append(clock._replace(status="suspended", running_since=None,
                                          elapsed_seconds=elapsed.total_seconds(), due_at=None))
            elif change.kind == "resumed" and clock.status == "suspended":
                resumed = clock._replace(status="running", running_since=at)
                out.append(resumed._replace(
                    due_at=self._arm(ctx, change, clock.name, sla, resumed)))
            else:
                out.append(clock)
        if tuple(out) != current:
            ctx.set_state(tid, tuple(out))

    def _step(self, ctx: PlanContext, change: Change, m: _Moves,
              clock: ClockState | None) -> ClockState | None:
        """The clock after ``change`` (None: unchanged); ``m``: what the change's shape means."""
        at = change.at
        name, sla = m.name, m.sla
        if clock is None:
            if not m.starts:
                return None
            paused = m.starts_paused
            new = ClockState(name, "paused" if paused else "running", at,
                             None if paused else at, 0.0, None, None, None, None, ())
            if not paused:
                new = new._replace(due_at=self._arm(ctx, change, name, sla, new))
            return new
        status = clock.status
        if status == "running":
            since = clock.running_since
            assert since is not None
            # (the shape's calendar, looked up once: _measure without the lookup)
            elapsed = timedelta(seconds=clock.elapsed_seconds) + _elapsed(m.calendar, since, at)
            if m.stops:
                # met at its due instant (the tie rule); past it, breached even if the
                # breach timer has not fired yet
                due = clock.due_at
                late = due is not None and at > due
                ctx.cancel(change.ticket_id, m.timer)
                # (the hot path of a stop: tuple.__new__ as in from_rows, no _replace)
                return _new(ClockState, (
                    name, "stopped", clock.started_at, None, elapsed.total_seconds(), None,
                    clock.outcome or ("breached" if late else "met"),
                    clock.breached_at or (due if late else None), at, clock.warned))
            if m.pauses:
                ctx.cancel(change.ticket_id, m.timer)
                return clock._replace(status="paused", running_since=None,
                                      elapsed_seconds=elapsed.total_seconds(), due_at=None)
            if (sla.at_field is not None and clock.outcome != "breached"
                    and sla.at_field in (change.data.get("fields") or {})):
                # the due instant's field changed: the clock follows it (like at_field
                # deadlines, as long as it has not been breached)
                ctx.cancel(change.ticket_id, m.timer)
                return clock._replace(due_at=self._arm(ctx, change, name, sla, clock))
            return None
        if status == "suspended":  # issue 11: only the end of the ticket moves it
            if m.ends:
                return clock._replace(status="stopped", stopped_at=at,
                                      outcome=clock.outcome or "met")
            return None
        if status == "paused":
            if m.stops:
                return clock._replace(status="stopped", stopped_at=at,
                                      outcome=clock.outcome or "met")
            if m.resumes:
                resumed = clock._replace(status="running", running_since=at)
                return resumed._replace(due_at=self._arm(ctx, change, name, sla, resumed))
            return None
        if not m.stops and (m.starts or m.reopens):
            resumed = clock._replace(status="running", running_since=at, stopped_at=None,
                                     outcome="breached" if clock.outcome == "breached" else None)
            return resumed._replace(due_at=self._arm(ctx, change, name, sla, resumed))
        return None

    @staticmethod
    def _arm(ctx: PlanContext, change: Change, name: str, sla: SlaSpec,
             clock: ClockState) -> datetime | None:
        """Schedule the timers of a clock that (re)starts now; return its breach instant.

        The breach timer and the warnings not yet given. A clock already breached (resumed
        or reopened) gets no timer and keeps its breach's instant as its due instant.
        """
        if clock.outcome == "breached":
            return clock.breached_at
        lc, tid, now = change.lifecycle, change.ticket_id, change.at
        since = clock.running_since
        assert since is not None
        elapsed = timedelta(seconds=clock.elapsed_seconds)
        target = _target(sla)
        if target is not None:
            due = _after(lc, sla, since, target - elapsed)
        else:
            raw = change.fields.get(sla.at_field or "")
            if raw is None:
                return None
            due = datetime.fromisoformat(raw)
        ctx.schedule(tid, f"sla:{name}", due)
        for i, w in enumerate(sla.warn):
            if i in clock.warned:
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
                ctx.schedule(tid, f"sla:{name}:warn:{i}", max(warn_at, now))
        return due

    def fire(self, ctx: FireContext, timer: PendingTimer, ticket: TicketRecord) -> str:
        """A claimed SLA timer: record the warning or the breach (and escalate if asked)."""
        parts = timer.name.split(":")
        name = parts[1]
        lc = ticket.lifecycle
        sla = lc.spec.slas.get(name)
        clocks: Clocks = ctx.state(ticket.id)
        clock = next((c for c in clocks if c.name == name), None)
        if (sla is None or clock is None or clock.status != "running"
                or ticket.state in lc.final_states or clock.running_since is None):
            return "stale"
        elapsed = timedelta(seconds=clock.elapsed_seconds) + _measure(
            lc, sla, clock.running_since, timer.due_at)
        target = _target(sla)
        data: dict[str, Any] = {"due_at": timer.due_at.isoformat(), "timer_id": timer.id,
                                "elapsed_seconds": elapsed.total_seconds()}
        if target is not None:
            data["target_seconds"] = target.total_seconds()
        others = tuple(c for c in clocks if c.name != name)
        if len(parts) == 4:  # a warning
            index = int(parts[3])
            if index in clock.warned:
                return "stale"
            ctx.set_state(ticket.id, tuple(sorted(
                (*others, clock._replace(warned=(*clock.warned, index))),
                key=lambda c: c.name)))
            w = sla.warn[index]
            what = f"{w.percent}% of its target used" if w.percent is not None else (
                f"{format_duration(w.before or _ZERO)} before its breach")
            ctx.record(ticket.id, "sla_warning", name, f"SLA {name!r} warning: {what}",
                       data | {"warning": index}, escalate=False)
            return "warned"
        if clock.outcome == "breached":
            return "stale"
        ctx.set_state(ticket.id, tuple(sorted(
            (*others, clock._replace(outcome="breached", breached_at=timer.due_at)),
            key=lambda c: c.name)))
        outcome = ctx.record(ticket.id, "sla_breach", name,
                             f"SLA {name!r} due {timer.due_at.isoformat()} was breached",
                             data | {"on_breach": sla.on_breach},
                             escalate=sla.on_breach == "escalate")
        return "breached" if outcome == "recorded" else outcome

    def timer_problem(self, name: str, state: str, level: str,
                      lifecycle: Lifecycle) -> str | None:
        """A clock timer of a clock the lifecycle does not have."""
        owner = name.split(":")[1] if name.count(":") >= 1 else ""
        if owner not in lifecycle.spec.slas:
            return f"no SLA clock {owner!r} in {lifecycle.name}"
        return None

    def stored_problems(self, conn: Connection, tickets: Mapping[str, Mapping[str, Any]],
                        history: Mapping[str, Sequence[Mapping[str, Any]]],
                        timers: Mapping[str, Sequence[Mapping[str, Any]]],
                        lifecycle_of: Callable[[int], Lifecycle],
                        ) -> Iterable[tuple[str, str, str]]:
        """``sla_clock``: each stored clock agrees with its timers and the ticket's history.

        * a running clock not yet breached with a due instant has its pending breach timer
          ``sla:<clock>``, due at that instant; one without a due instant (its field
          empty) has none;
        * a breached clock has no pending breach timer, and its due instant, if any, is
          its breach's (no due instant after the breach);
        * a paused, suspended or stopped clock has no due instant and no pending timer;
        * a suspended clock is on a ticket the history leaves suspended (its last
          ``suspended`` row not followed by ``resumed``, and not in a final state);
        * each pending ``sla:<clock>`` timer is of a clock the ticket has.

        Reads ``gw_sla_clocks`` once for all ``tickets`` (500 at a time).
        """
        c = sla_clocks.c
        stored: dict[str, list[Any]] = {}
        for chunk in in_chunks(tickets):
            for r in conn.execute(select(c.ticket_id, c.name, c.status, c.due_at, c.outcome,
                                         c.breached_at)
                                  .where(c.ticket_id.in_(chunk))
                                  .order_by(c.ticket_id, c.name)):
                stored.setdefault(r.ticket_id, []).append(r)
        for tid, ticket in tickets.items():
            pending: dict[str, list[Any]] = {}
            for t in timers.get(tid, ()):
                if t["status"] == "pending" and t["name"].startswith("sla:"):
                    pending.setdefault(t["name"].split(":")[1], []).append(t)
            clocks = stored.get(tid, [])
            if not clocks and not pending:
                continue
            final = lifecycle_of(ticket["definition_id"]).final_states
            suspended = (suspended_by_history(history.get(tid, ()))
                         and ticket["state"] not in final)
            for clock in clocks:
                for problem in _clock_problems(clock, pending.get(clock.name, []), suspended):
                    yield tid, "sla_clock", problem
            for name in sorted(set(pending) - {clock.name for clock in clocks}):
                yield (tid, "sla_clock", f"timer {pending[name][0]['name']!r} is pending, but "
                       f"the ticket has no clock {name!r}")


def _clock_problems(clock: Any, pending: Sequence[Mapping[str, Any]],
                    suspended: bool) -> Iterable[str]:
    """What is wrong with one stored clock, given its pending timers (see stored_problems)."""
    name, due = clock.name, clock.due_at
    breach_timer = f"sla:{name}"
    breach = [t for t in pending if t["name"] == breach_timer]
    what = f"clock {name!r}"
    if clock.status == "running" and clock.outcome == "breached":
        if due is not None and due != clock.breached_at:
            at = clock.breached_at.isoformat() if clock.breached_at else "an unknown instant"
            yield f"{what} was breached at {at}, yet shows a due instant {due.isoformat()}"
        if breach:
            yield f"{what} was breached, yet its timer {breach_timer!r} is pending"
    elif clock.status == "running":
        if due is None:
            if breach:
                yield f"{what} has no due instant, yet its timer {breach_timer!r} is pending"
        elif not breach:
            yield (f"{what} is running, due {due.isoformat()}, but has no pending timer "
                   f"{breach_timer!r}")
        elif breach[0]["due_at"] != due:
            yield (f"{what} is due {due.isoformat()}, but its timer {breach_timer!r} is due "
                   f"{breach[0]['due_at'].isoformat()}")
    else:
        if due is not None:
            yield f"{what} is {clock.status}, yet shows a due instant {due.isoformat()}"
        if pending:
            yield f"{what} is {clock.status}, yet its timer {pending[0]['name']!r} is pending"
    if clock.status == "suspended" and not suspended:
        yield f"{what} is suspended; the history says the ticket is not suspended"


def clocks_of(conn: Connection, ticket_id: str) -> list[SlaClock]:
    """The ticket's SLA clocks as stored, by name."""
    rows = conn.execute(select(sla_clocks).where(sla_clocks.c.ticket_id == ticket_id)
                        .order_by(sla_clocks.c.name)).mappings().all()
    return [SlaClock(r["ticket_id"], r["name"], r["status"], r["started_at"], r["stopped_at"],
                     timedelta(seconds=r["elapsed_seconds"]), r["due_at"], r["outcome"],
                     r["breached_at"]) for r in rows]
