"""The command handler: every command runs one way, and writes nothing until all have passed.

For a report, a transition, an escalation, a fired timer or a department decision::

    load    the ticket into the working copy (row and pending timers; participants' state
            when first asked for)                     engine.store.reads / Participant.load
    decide  lifecycle, role, reason, fields, guards and actions (host callbacks), the level,
            the deadline timers it cancels and creates          (pure, on the record)
    check   every participant may refuse each change           Participant.check
    plan    every participant stages its state, timers, rows   Participant.plan
    follow  follow-on commands, decided/checked/planned the same way     PlanContext.follow
    flush   one writer, executemany per table (end of the transaction or batch window)
    after   after-commit hooks (listeners)                     Participant.after_commit

Decisions are staged in layers (:mod:`engine.runtime.working`): a refused command drops its
layer and leaves nothing behind, inside a batch as outside. Nothing re-enters a command from
inside another: follow-ons run after the command that asked for them has been planned.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, select

from engine.calendars.model import CalendarOutOfRange
from engine.clock import Clock
from engine.errors import (
    NEW_TICKET,
    CommandInsideCallback,
    CommandRefused,
    ConcurrencyConflict,
    ConfigurationError,
    InvalidArgument,
    InvalidFields,
    OutsideCalendar,
    RoleNotAllowed,
    TicketExists,
    TicketNotFound,
    TopLevelReached,
    UnknownDepartment,
)
from engine.lifecycle.machine import Lifecycle, Subject
from engine.lifecycle.permissions import changed_fields
from engine.lifecycle.registry import CommandContext
from engine.runtime.catalog import Catalog
from engine.runtime.changes import Change, new_change_id
from engine.runtime.fields import (
    DEFAULT_TEXT_LENGTH,
    check_fields,
    load_fields,
    undeclared_department,
)
from engine.runtime.model import SYSTEM, Actor, FiredTimer, Ticket, Timer
from engine.runtime.participant import (
    CheckContext,
    FireContext,
    Participant,
    PlanContext,
    Unit,
)
from engine.runtime.timer_plan import entry_timers, exit_cancels, field_deadline_moves
from engine.runtime.unit_of_work import UnitOfWork
from engine.runtime.working import Layer, PendingTimer, Stored, TicketRecord
from engine.store.reads import EagerTable, load_tickets, ticket_exists
from engine.store.tables import history
from engine.store.writer import TimerOp
from engine.validation import ticket_id_problem

__all__ = ["MAX_TICKET_ID", "CommandHandler"]

MAX_TICKET_ID = 64
MAX_FOLLOW_DEPTH = 24
"""Layers deep a command's follow-ons may go before the engine says they do not converge."""

T = TypeVar("T")

_new = tuple.__new__
_CANCEL_REST = TimerOp("cancel")[4:]
"""A cancel's TimerOp fields after ``timer_id``: their defaults (see cancel)."""


class _Service(Participant):
    """Stands in for 'no participant' in the contexts given to services."""


class _Contexts:
    __slots__ = ("check", "fire", "plan", "unit")

    def __init__(self, handler: CommandHandler, participant: Participant):
        self.check = CheckContext(handler, participant)
        self.plan = PlanContext(handler, participant)
        self.fire = FireContext(handler, participant)
        self.unit = Unit(handler, participant)


class CommandHandler:
    """Decides, checks and plans commands on the staged working copy (module docstring).

    Args:
        uow: the unit of work (transactions and layers).
        catalog: the compiled lifecycle versions.
        clock: where ``now`` comes from.
        owner: this engine's worker id (the claims it may take).
        text_length: the longest text a field without its own ``max_length`` may hold.
    """

    def __init__(self, uow: UnitOfWork, catalog: Catalog, clock: Clock, owner: str, *,
                 text_length: int = DEFAULT_TEXT_LENGTH):
        self.uow = uow
        self.text_length = text_length
        self.catalog = catalog
        self.clock = clock
        self.owner = owner
        self.participants: list[Participant] = []
        self._by_prefix: dict[str, Participant] = {}
        self._active: dict[int, tuple[tuple[Participant, _Contexts], ...]] = {}
        self._steps: dict[int, tuple[list[tuple[Any, CheckContext]],
                                     list[tuple[Any, PlanContext]]]] = {}
        self._shapes: dict[tuple[int, str, str, str | None, str, tuple[str, ...]],
                           tuple[list[tuple[Any, CheckContext]],
                                 list[tuple[Any, PlanContext]]]] = {}
        self._contexts: dict[int, _Contexts] = {}
        self._service = _Contexts(self, _Service())
        self._eager: list[EagerTable] = []
        self._eager_by: dict[int, list[tuple[str, Callable[[Any], Any], str]]] = {}
        self.ensure: Callable[[str], int] | None = None
        """Deploys a bundled lifecycle on first use (set by the kernel)."""

    # -- participants ---------------------------------------------------------------------

    def add(self, participant: Participant) -> None:
        """Register a participant (see :class:`~engine.runtime.participant.Participant`).

        Raises:
            ConfigurationError: its ``key`` or ``timer_prefix`` is taken.
        """
        for other in self.participants:
            if participant.key and other.key == participant.key:
                raise ConfigurationError(f"a participant with key {participant.key!r} is "
                                         "registered already")
        prefix = participant.timer_prefix
        if prefix is not None:
            if prefix in self._by_prefix or ":" in prefix:
                raise ConfigurationError(f"timer prefix {prefix!r} is taken or has a ':'")
            self._by_prefix[prefix] = participant
        self.participants.append(participant)
        self._contexts[id(participant)] = _Contexts(self, participant)
        self._active = {}
        self._steps = {}
        self._shapes = {}
        self._eager_by = {}
        self._eager = [(p.state_table, p.state_column, p.state_where)
                       for p in self.participants if p.state_table is not None]

    def owner_of(self, timer_name: str) -> Participant | None:
        """The participant whose timer prefix ``timer_name`` carries (None: a deadline)."""
        prefix, sep, _ = timer_name.partition(":")
        return self._by_prefix.get(prefix) if sep else None

    def unit(self, participant: Participant | None = None) -> Unit:
        """A :class:`Unit` bound to ``participant`` (its state) for a service's compound."""
        if participant is None:
            return self._service.unit
        return self._contexts[id(participant)].unit

    def _participants_of(self, lc: Lifecycle) -> tuple[tuple[Participant, _Contexts], ...]:
        found = self._active.get(id(lc))
        if found is None:
            found = tuple((p, self._contexts[id(p)]) for p in self.participants
                          if p.interested(lc))
            self._active[id(lc)] = found
        return found

    def _steps_of(self, lc: Lifecycle) -> tuple[list[tuple[Any, CheckContext]],
                                                 list[tuple[Any, PlanContext]]]:
        """The bound ``check`` and ``plan`` of the participants of ``lc`` that have them.

        A participant that keeps :class:`Participant`'s do-nothing ``check`` (or ``plan``)
        is left out of that list: a command calls each of its participants twice, and most
        have only one of the two.
        """
        found = self._steps.get(id(lc))
        if found is None:
            active = self._participants_of(lc)
            found = ([(p.check, ctx.check) for p, ctx in active
                      if type(p).check is not Participant.check],
                     [(p.plan, ctx.plan) for p, ctx in active
                      if type(p).plan is not Participant.plan])
            self._steps[id(lc)] = found
        return found

    def _steps_for(self, change: Change) -> tuple[list[tuple[Any, CheckContext]],
                                                  list[tuple[Any, PlanContext]]]:
        """:meth:`_steps_of` ``change``'s lifecycle without the steps idle for its shape.

        A report or transition leaves out the steps :meth:`Participant.idle` says do
        nothing for its trigger, states and data keys (asked once per shape: the shapes are
        those the lifecycle declares, the trigger having been routed, and the keys those
        this module gives a report's or transition's data). A dispatch of grid_incident
        calls 4 steps instead of 14 (~5 µs).
        """
        kind = change.kind
        if kind != "transition" and kind != "report":
            return self._steps_of(change.lifecycle)
        lc = change.lifecycle
        data = change.data
        key = (id(lc), kind, change.trigger, change.from_state, change.to_state, tuple(data))
        found = self._shapes.get(key)
        if found is None:
            checks, plans = self._steps_of(lc)
            shape = (lc, kind, change.trigger, change.from_state, change.to_state,
                     frozenset(data))
            found = ([(check, ctx) for check, ctx in checks
                      if not ctx.participant.idle("check", *shape)],
                     [(plan, ctx) for plan, ctx in plans
                      if not ctx.participant.idle("plan", *shape)])
            self._shapes[key] = found
        return found

    # -- the pipeline's reads and stages (participant.Pipeline) ---------------------------

    def now(self) -> datetime:
        """The current command's instant (the enclosing command's, else the clock's)."""
        layer: Layer | None = self.uow.top
        while layer is not None:
            if layer.now is not None:
                return layer.now
            layer = layer.parent
        return self.clock.now()

    def ticket(self, ticket_id: str) -> TicketRecord:
        """A ticket as staged so far, read from the database on first use.

        Raises:
            TicketNotFound: no such ticket.
        """
        top = self.uow.top
        rec = top.records.get(ticket_id) or top.find(ticket_id)  # (mostly in the top layer)
        if rec is not None:
            return rec
        rec = self._load(ticket_id)
        top.root().add(rec, dirty=False)
        return rec

    def _load(self, ticket_id: str) -> TicketRecord:
        """A ticket read from the database (put in no layer yet).

        Raises:
            TicketNotFound: no such ticket.
        """
        found = (load_tickets(self.uow.conn, [ticket_id], self._eager, timers_as=PendingTimer)
                 if isinstance(ticket_id, str) else {})
        if not found:
            raise TicketNotFound(str(ticket_id))
        return self._record(*found[ticket_id])

    def tickets(self, ticket_ids: Sequence[str]) -> list[TicketRecord]:
        """Several tickets as staged, reading those not in the working copy in one go."""
        self.preload(list(ticket_ids))
        return [self.ticket(t) for t in ticket_ids]

    def last_fired(self, ticket_id: str, trigger: str, *, before: int) -> datetime | None:
        """When ``trigger`` last fired (report/transition) on the ticket, below seq ``before``."""
        layer: Layer | None = self.uow.top
        while layer is not None:
            for row in reversed(layer.history):
                if (row["ticket_id"] == ticket_id and row["trigger"] == trigger
                        and row["kind"] in ("report", "transition") and row["seq"] < before):
                    at: datetime = row["at"]
                    return at
            layer = layer.parent
        found = self.uow.conn.execute(
            select(history.c.at).where(history.c.ticket_id == ticket_id,
                                       history.c.trigger == trigger,
                                       history.c.kind.in_(("report", "transition")),
                                       history.c.seq < before)
            .order_by(history.c.seq.desc()).limit(1)).scalar()
        return found

    def preload(self, ticket_ids: list[str]) -> None:
        """Read several tickets into the working copy in one go (those not there yet)."""
        top = self.uow.top
        missing = [t for t in ticket_ids if top.find(t) is None]
        if len(missing) > 1:
            root = top.root()
            for loaded in load_tickets(self.uow.conn, missing, self._eager,
                                       timers_as=PendingTimer).values():
                root.add(self._record(*loaded), dirty=False)

    def _record(self, row: Mapping[str, Any], pending: dict[str, PendingTimer],
                tables: Mapping[str, list[dict[str, Any]]]) -> TicketRecord:
        # (pending: load_tickets built the PendingTimers, timers_as=PendingTimer)
        def_id = row["definition_id"]
        lc = self.catalog.by_id(self.uow.conn, def_id)
        version = row["row_version"]
        stored = Stored(True, version, def_id)
        ext = stored.ext
        for key, from_rows, table in self._eager_of(lc):  # their state came with the ticket
            if table in tables:
                ext[key] = from_rows(tables[table])
        return TicketRecord(row["id"], def_id, lc, row["state"], row["level"],
                            row["fields"], bool(row["overdue"]), row["created_at"],
                            row["updated_at"], version, pending, stored)

    def _eager_of(self, lc: Lifecycle) -> list[tuple[str, Callable[[Any], Any], str]]:
        """``(key, from_rows, table name)`` of the participants of ``lc`` read with a ticket."""
        found = self._eager_by.get(id(lc))
        if found is None:
            found = self._eager_by[id(lc)] = [
                (p.key, p.from_rows, p.state_table.name)
                for p, _ in self._participants_of(lc) if p.state_table is not None]
        return found

    def state(self, participant: Participant, ticket_id: str) -> Any:
        """``participant``'s state of a ticket: staged, stored, or loaded now."""
        rec = self.ticket(ticket_id)
        key = participant.key
        if key in rec.ext:
            return rec.ext[key]
        stored = rec.stored
        if key in stored.ext:
            return stored.ext[key]
        if not stored.exists:
            return participant.empty(rec.lifecycle)
        loaded = participant.load(self.uow.conn, [ticket_id])
        value = loaded[ticket_id] if ticket_id in loaded else participant.empty(rec.lifecycle)
        stored.ext[key] = value
        return value

    def set_state(self, participant: Participant, ticket_id: str, value: Any) -> None:
        """Stage ``participant``'s new state of a ticket.

        Its stored state is read first if it was not (the writer needs what is stored to
        know which rows to insert or update).
        """
        rec = self.ticket(ticket_id)
        if rec.stored.exists and participant.key not in rec.stored.ext:
            self.state(participant, ticket_id)
        self.uow.top.writable(ticket_id).ext[participant.key] = value

    def query(self, fn: Callable[[Connection], T]) -> T:
        """A read through the transaction, after flushing what the window holds."""
        return self.uow.query(fn)

    def schedule(self, ticket_id: str, name: str, due_at: datetime) -> None:
        """Stage a new pending timer (cancelling a pending one of that name first)."""
        self.ticket(ticket_id)
        top = self.uow.top
        self._new_timer(top, top.writable(ticket_id), name, None, due_at, self.now())

    def rearm(self, ticket_id: str, name: str, due_at: datetime) -> None:
        """Stage a ticket deadline again (see :meth:`PlanContext.rearm`)."""
        rec = self.ticket(ticket_id)
        if name not in {d.name for d in rec.lifecycle.ticket_deadlines}:
            raise InvalidArgument("name", f"{name!r} is not a ticket deadline of "
                                          f"{rec.lifecycle.name}")
        top = self.uow.top
        self._new_timer(top, top.writable(ticket_id), name, None, due_at, self.now())

    def move_deadline(self, ticket_id: str, name: str, due_at: datetime) -> None:
        """Stage one of the lifecycle's deadlines due at ``due_at`` (see PlanContext)."""
        rec = self.ticket(ticket_id)
        spec = rec.lifecycle.spec.deadlines.get(name)
        if spec is None:
            raise InvalidArgument("name", f"{name!r} is not a deadline of {rec.lifecycle.name}")
        if spec.state is not None and spec.state != rec.state:
            raise InvalidArgument("name", f"deadline {name!r} runs in state {spec.state!r}; "
                                          f"ticket {ticket_id!r} is in {rec.state!r}")
        top = self.uow.top
        self._new_timer(top, top.writable(ticket_id), name, spec.state, due_at, self.now())

    def lifecycle(self, name: str) -> Lifecycle:
        """The compiled current version of ``name`` (deployed on first use)."""
        def_id = self.catalog.cached_current(name)
        if def_id is None:
            def_id = self._ensure(name)
        return self.catalog.by_id(self.uow.conn, def_id)

    def _ensure(self, name: str) -> int:
        if self.ensure is None:
            raise ConfigurationError(f"lifecycle {name!r} is not deployed")
        return self.ensure(name)

    def cancel(self, ticket_id: str, prefix: str) -> None:
        """Stage the cancellation of the ticket's pending timers ``prefix`` / ``prefix:...``."""
        rec = self.ticket(ticket_id)
        mark = prefix + ":"
        names = []
        for n in rec.timers:  # (a loop, not a comprehension: one call less)
            if n == prefix or n.startswith(mark):
                names.append(n)
        if names:
            top = self.uow.top
            w = top.writable(ticket_id)
            for name in names:
                _cancel(top, w, name)

    def add_row(self, stmt: Any, params: Mapping[str, Any]) -> None:
        """Stage a row of a participant's table."""
        self.uow.top.rows.append((stmt, params))

    def follow(self, participant: Participant, step: Callable[[Unit], None], *,
               ticket_id: str, what: str, on_refusal: Literal["refuse", "record"]) -> None:
        """Queue a follow-on step on the current command (run after it is planned)."""
        self.uow.top.follow_ons.append((participant, step, ticket_id, what, on_refusal))

    # -- commands -------------------------------------------------------------------------

    def fire(self, ticket_id: str, trigger: str, *, actor: Actor, reason: str | None = None,
             fields: dict[str, Any] | None = None, expected_version: int | None = None,
             evidence: Sequence[Mapping[str, Any]] | None = None,
             foreign_departments: bool = False) -> TicketRecord:
        """Decide, check and plan a transition; stage it (inside an open transaction).

        ``evidence``: attachments the command carries (JSON objects, see
        :mod:`engine.evidence`), kept in the history row's ``data["evidence"]``, where the
        participants check and store them. ``foreign_departments``: let the department
        field take a department the lifecycle does not declare (replays of another city's
        export); default: refused with UnknownDepartment.

        Raises:
            TicketNotFound, TriggerNotAllowed, RoleNotAllowed, NotTheHandler, GuardRejected,
            InvalidFields, FieldNotAllowed, UnknownDepartment, HostCallbackFailed,
            TopLevelReached, OutsideCalendar and the participants' refusals;
            ConcurrencyConflict (``expected_version`` differs). Nothing is staged.
        """
        if self.uow.host_running:
            raise CommandInsideCallback(str(ticket_id), f"fire {trigger!r}")
        try:
            return self._transition(ticket_id, trigger, actor, reason, fields or {},
                                    expected_version=expected_version, evidence=evidence,
                                    foreign_departments=foreign_departments)
        except CalendarOutOfRange as exc:
            raise _outside(ticket_id, exc) from exc

    def report(self, lifecycle: str, fields: dict[str, Any], *, actor: Actor,
               ticket_id: str | None = None, level: str | None = None,
               reason: str | None = None,
               evidence: Sequence[Mapping[str, Any]] | None = None,
               foreign_departments: bool = False) -> TicketRecord:
        """Report a ticket on the newest version of ``lifecycle`` valid now; stage it.

        ``evidence``, ``foreign_departments``: as for :meth:`fire`.

        Raises:
            UnknownDefinition, RoleNotAllowed, TicketExists, InvalidFields, FieldNotAllowed,
            UnknownDepartment, OutsideCalendar and the participants' refusals (e.g.
            LifecycleNotValid). Nothing is staged.
        """
        if self.uow.host_running:
            raise CommandInsideCallback(ticket_id or NEW_TICKET, "report")
        def_id = self.current_version(lifecycle)
        return self._guarded(ticket_id or "(new)", lambda: self._report(
            def_id, fields, actor, ticket_id, level, reason, evidence, foreign_departments))

    def current_version(self, lifecycle: str) -> int:
        """The version a report of ``lifecycle`` made now runs on (deployed by the caller)."""
        current = self.catalog.cached_current(lifecycle)
        if current is None:
            current = self.catalog.current_id(self.uow.conn, lifecycle)
        if current is None:
            current = self._ensure(lifecycle)
        return self.catalog.valid_version(self.uow.conn, lifecycle, current, self.now())

    def _guarded(self, ticket_id: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except CalendarOutOfRange as exc:
            raise _outside(ticket_id, exc) from exc

    def _report(self, def_id: int, fields: dict[str, Any], actor: Actor,
                ticket_id: str | None, level: str | None, reason: str | None,
                evidence: Sequence[Mapping[str, Any]] | None = None,
                foreign_departments: bool = False) -> TicketRecord:
        lc = self.catalog.by_id(self.uow.conn, def_id)
        tid = uuid.uuid4().hex if ticket_id is None else ticket_id
        # a refused report given no id names no id: the one generated is never a ticket's
        shown = NEW_TICKET if ticket_id is None else tid
        problem = ticket_id_problem(tid)
        if problem is not None:
            raise InvalidFields(tid[:MAX_TICKET_ID] if isinstance(tid, str) and tid
                                else NEW_TICKET, {"ticket_id": problem})
        if actor.role not in lc.spec.report.roles:
            raise RoleNotAllowed(tid, "(new)", "report", actor.role, lc.spec.report.roles)
        level = level or lc.levels[0]
        if level not in lc.levels:
            raise InvalidFields(shown, {"level": f"unknown level {level!r}; levels: "
                                        f"{', '.join(lc.levels)}"})
        stored, errors = check_fields(lc.spec.fields, fields, require=True,
                                      text_length=self.text_length)
        if errors:
            raise InvalidFields(shown, errors)
        stored = {k: v for k, v in stored.items() if v is not None}
        # issue 11: who may set which field (engine/lifecycle/permissions.py)
        lc.permissions.check_fields(tid, "report", actor.role, stored)
        if not foreign_departments:
            _check_department(lc, tid, stored, None)
        now = self.now()
        top = self.uow.top
        if top.find(tid) is not None or ticket_exists(self.uow.conn, tid):
            raise TicketExists(tid)
        state = lc.spec.initial
        entering = entry_timers(lc, state, stored, now, report=True)
        with self.uow.layer() as layer:
            layer.now = now
            rec = TicketRecord(tid, def_id, lc, state, level, stored, False, now, now, 0, {},
                               Stored(False, 0))
            layer.add(rec, dirty=True)
            changes = _stage_rows(layer, rec, [{
                "ticket_id": tid, "at": now, "kind": "report", "trigger": "report",
                "from_state": None, "to_state": state, "from_level": None, "to_level": level,
                "actor": actor.id, "role": actor.role, "reason": reason,
                # replayable: see engine/versions/impact.py
                "data": _data({"fields": stored} if stored else None, evidence),
            }])
            for name, owner, due in entering:
                self._new_timer(layer, rec, name, owner, due, now)
            self._pass(layer, changes)
        return rec

    def _transition(
        self, ticket_id: str, trigger: str, actor: Actor, reason: str | None,
        field_updates: dict[str, Any], *, expected_version: int | None = None,
        extra: list[dict[str, Any]] | None = None, overdue: bool = False,
        now: datetime | None = None, evidence: Sequence[Mapping[str, Any]] | None = None,
        foreign_departments: bool = False,
    ) -> TicketRecord:
        # A ticket not in the working copy yet is read here and becomes this command's own
        # record (staged in its layer below; if the command is refused it is simply read
        # again later), instead of a clean record in the window and a copy to change
        rec = self.uow.top.find(ticket_id)
        fresh = rec is None
        if rec is None:
            rec = self._load(ticket_id)
        if expected_version is not None and rec.version != expected_version:
            raise ConcurrencyConflict(ticket_id, expected_version, rec.version)
        lc = rec.lifecycle
        source = rec.state
        level = rec.level
        role = actor.role
        # what the trigger from this state may do for this role: the same for every ticket,
        # kept by the lifecycle (candidates, whether a reason is required, an escalation)
        route = lc.route(ticket_id, source, trigger, role)
        lc.permissions.check_handler(ticket_id, trigger, role, level)  # issue 11
        if route.reason_required and not (reason and reason.strip()):
            raise InvalidFields(ticket_id, {"reason": f"trigger {trigger!r} requires a reason"})
        new_level = level
        if route.escalates:
            above = lc.next_level(level)
            if above is None:
                raise TopLevelReached(ticket_id, level)
            new_level = above
        if field_updates:
            updates, errors = check_fields(lc.spec.fields, field_updates, require=False,
                                           text_length=self.text_length)
            if errors:
                raise InvalidFields(ticket_id, errors)
            changed = changed_fields(updates, rec.fields)
            lc.permissions.check_fields(ticket_id, trigger, role, changed)  # issue 11
            if not foreign_departments:
                _check_department(lc, ticket_id, updates, changed)
            merged = {**rec.fields, **updates}
            if None in merged.values():  # a cleared field (None) is dropped
                merged = {k: v for k, v in merged.items() if v is not None}
        else:
            updates, merged = {}, rec.fields
        now = now or self.now()
        dest = lc.pure_dest(source, trigger)
        internal = False
        if dest is None:
            ctx = CommandContext(ticket_id, trigger, source, "", new_level,
                                 load_fields(lc.spec.fields, merged), actor.id, role, reason,
                                 now)
            # the host's guards and actions run here: a command they issue is refused
            dest = self.uow.in_host(lc.fire, Subject(source), ctx)
            internal = ctx.internal  # stays in its state: its deadlines run on
        # else a pure transition (no conditions, no callbacks: Lifecycle.pure_dest): no host
        # code to run and nothing to refuse; its destination is the Machine's, read once
        entering = entry_timers(lc, dest, merged, now, report=False, internal=internal)
        with self.uow.layer() as layer:
            layer.now = now
            if fresh:
                layer.add(rec, dirty=True)
                w = rec
            else:
                w = layer.writable(ticket_id)
            row = {
                "ticket_id": ticket_id, "at": now, "kind": "transition", "trigger": trigger,
                "from_state": source, "to_state": dest, "from_level": level,
                "to_level": new_level, "actor": actor.id, "role": role, "reason": reason,
                "data": _data(_row_data(updates, internal), evidence),
            }
            rows = [*(dict(r) for r in extra), row] if extra else [row]
            w.state, w.level, w.fields, w.updated_at = dest, new_level, merged, now
            if overdue:
                w.overdue = True
            changes = _stage_rows(layer, w, rows)
            timers = w.timers
            for name in exit_cancels(lc, timers, source, dest, internal=internal):
                _cancel(layer, w, name)
            for name, owner, due in entering:
                self._new_timer(layer, w, name, owner, due, now)
            if updates:
                for name, moved in field_deadline_moves(lc, ticket_id, dest, updates, timers,
                                                        self.query):
                    if name in timers:
                        _cancel(layer, w, name)
                    if moved is not None:
                        self._new_timer(layer, w, name, None, moved, now)
            self._pass(layer, changes)
        return w

    def _new_timer(self, layer: Layer, w: TicketRecord, name: str, state: str | None,
                   due: datetime, now: datetime) -> None:
        if name in w.timers:
            _cancel(layer, w, name)
        w.timers[name] = PendingTimer(name, state, due)
        layer.timer_ops.append(TimerOp("new", "", "", 0, {  # positional: see _cancel
            "ticket_id": w.id, "name": name, "state": state, "due_at": due,
            "status": "pending", "created_at": now, "fired_at": None, "claimed_by": None,
            "lease_until": None, "failures": 0, "last_error": None}))
        layer.timer_created(due)
        self.uow.note_timer(due)

    def _pass(self, layer: Layer, changes: list[Change]) -> None:
        """Every participant checks every change, then plans it; then the follow-ons."""
        steps = list(map(self._steps_for, changes))  # without the idle steps: 5 µs a dispatch
        for change, (checks, _) in zip(changes, steps, strict=True):
            for check, cctx in checks:
                check(cctx, change)
        for change, (_, plans) in zip(changes, steps, strict=True):
            for plan, pctx in plans:
                plan(pctx, change)
        layer.changes.extend(changes)
        if layer.follow_ons:
            if _depth(layer) > MAX_FOLLOW_DEPTH:
                raise ConfigurationError(
                    f"follow-on commands of ticket {changes[0].ticket_id!r} went "
                    f"{MAX_FOLLOW_DEPTH} levels deep; the participants' rules do not converge")
            while layer.follow_ons:
                participant, step, tid, what, policy = layer.follow_ons.pop(0)
                self._run_step(participant, step, tid, what, policy)

    def _run_step(self, participant: Participant, step: Callable[[Unit], None],
                  ticket_id: str, what: str, policy: str) -> None:
        try:
            with self.uow.layer():
                step(self._contexts[id(participant)].unit)
        except CommandRefused as exc:
            if policy == "refuse":
                raise
            self._note(ticket_id, "follow_on_refused", what,
                       f"{what} was refused: {exc}", {"refusal": type(exc).__name__})

    def note(self, ticket_id: str, kind: str, trigger: str, *, actor: Actor,
             reason: str | None, data: dict[str, Any],
             fields: Mapping[str, Any] | None = None) -> TicketRecord:
        """Stage a history row in place by ``actor`` (see :meth:`Unit.note`).

        Raises:
            TicketNotFound, InvalidFields; the participants' refusals (nothing is staged).
        """
        if self.uow.host_running:
            raise CommandInsideCallback(ticket_id, kind)
        self._guarded(ticket_id, lambda: self._note(ticket_id, kind, trigger, reason, data,
                                                    actor=actor, fields=fields))
        return self.ticket(ticket_id)

    def _note(self, ticket_id: str, kind: str, trigger: str, reason: str | None,
              data: dict[str, Any], *, overdue: bool = False, actor: Actor = SYSTEM,
              fields: Mapping[str, Any] | None = None) -> None:
        rec = self.ticket(ticket_id)
        now = self.now()
        updates: dict[str, Any] = {}
        if fields:  # a rule's consequence (Unit.note): checked as values, not permissions
            updates, errors = check_fields(rec.lifecycle.spec.fields, dict(fields),
                                           require=False, text_length=self.text_length)
            if errors:
                raise InvalidFields(ticket_id, errors)
            _check_department(rec.lifecycle, ticket_id, updates,
                              changed_fields(updates, rec.fields))
        with self.uow.layer() as layer:
            layer.now = now
            w = layer.writable(ticket_id)
            w.updated_at = now
            if overdue:
                w.overdue = True
            if updates:
                w.fields = {k: v for k, v in {**w.fields, **updates}.items() if v is not None}
                data = {**data, "fields": updates}
            changes = _stage_rows(layer, w, [{
                "ticket_id": ticket_id, "at": now, "kind": kind, "trigger": trigger,
                "from_state": rec.state, "to_state": rec.state, "from_level": rec.level,
                "to_level": rec.level, "actor": actor.id, "role": actor.role,
                "reason": reason, "data": data}])
            self._pass(layer, changes)

    def record(self, ticket_id: str, kind: str, trigger: str, reason: str,
               data: dict[str, Any], *, escalate: bool, overdue: bool = False,
               escalation_reason: str | None = None,
               fields: Mapping[str, Any] | None = None) -> str:
        """Stage a system history row, escalating first when asked (see FireContext.record).

        ``escalation_reason``: the escalation transition's reason (default ``reason``).
        ``fields``: values the row sets (only without ``escalate``).
        """
        if fields and escalate:
            raise ValueError("a recorded row sets fields only without escalation")
        rec = self.ticket(ticket_id)
        lc = rec.lifecycle
        now = self.now()
        escalation = lc.spec.escalation_trigger
        at_top = lc.next_level(rec.level) is None
        refusal: str | None = None
        if escalate and not at_top and any(
                SYSTEM.role in t.roles for t in lc.transitions_for(rec.state, escalation)):
            entry = {"ticket_id": ticket_id, "at": now, "kind": kind, "trigger": trigger,
                     "from_state": rec.state, "to_state": rec.state, "from_level": rec.level,
                     "to_level": rec.level, "actor": SYSTEM.id, "role": SYSTEM.role,
                     "reason": reason, "data": data}
            try:
                self._guarded(ticket_id, lambda: self._transition(
                    ticket_id, escalation, SYSTEM, escalation_reason or reason, {},
                    extra=[entry], overdue=overdue, now=now))
                return "escalated"
            except OutsideCalendar:
                # not the process saying no but its calendar running out: the escalation is
                # owed, so the timer fails (retried with backoff, shown by `timers --failed`
                # and `check`) until the calendar is extended and the ticket migrated
                raise
            except CommandRefused as exc:
                # e.g. a guard or duty hours on the escalation: the row is still recorded
                refusal = str(exc)
        if refusal is not None:
            data = {**data, "escalation_refused": refusal}
        self._note(ticket_id, kind, trigger, reason, data, overdue=overdue, fields=fields)
        return "top_level" if escalate and at_top and refusal is None else "recorded"

    def migrate(self, ticket_id: str, target_id: int, dest: str,
                new_timers: list[tuple[str, str | None, datetime]], *, actor: Actor,
                reason: str | None) -> TicketRecord:
        """Stage a ticket's move to lifecycle version ``target_id`` (see engine.versions).

        Its pending deadline timers are cancelled and ``new_timers`` created; participants'
        timers (``name:...``) carry over. One ``migration`` history row records it.
        """
        if self.uow.host_running:
            raise CommandInsideCallback(ticket_id, "migrate")
        rec = self.ticket(ticket_id)
        new = self.catalog.by_id(self.uow.conn, target_id)
        now = self.now()
        with self.uow.layer() as layer:
            layer.now = now
            w = layer.writable(ticket_id)
            row = {
                "ticket_id": ticket_id, "at": now, "kind": "migration", "trigger": "migrate",
                "from_state": rec.state, "to_state": dest, "from_level": rec.level,
                "to_level": rec.level, "actor": actor.id, "role": actor.role, "reason": reason,
                "data": {"from_version": self.catalog.info(rec.definition_id).version,
                         "to_version": self.catalog.info(target_id).version,
                         "deadlines": {n: due.isoformat() for n, _, due in new_timers}},
            }
            for name in [n for n in w.timers if ":" not in n]:
                _cancel(layer, w, name)
            w.definition_id, w.lifecycle, w.state, w.updated_at = target_id, new, dest, now
            changes = _stage_rows(layer, w, [row])
            for name, owner, due in new_timers:
                self._new_timer(layer, w, name, owner, due, now)
            self._pass(layer, changes)
        return w

    # -- compound commands ----------------------------------------------------------------

    @contextmanager
    def compound(self, participant: Participant | None = None, *,
                 read_only: bool = False) -> Iterator[Unit]:
        """Several commands as one (a service's decision): all are staged, or none is.

        Opens a transaction if none is open (inside a batch: one layer of it). The unit is
        bound to ``participant``'s state (services of that participant). ``read_only``: when
        no transaction is open, read on a plain connection (staging is then an error).
        """
        if not read_only and self.uow.host_running:
            raise CommandInsideCallback("(compound)", "a compound command")
        with self.uow.transaction(read_only=read_only), self.uow.layer() as layer:
            layer.now = self.now()
            try:
                yield self.unit(participant)
            except CalendarOutOfRange as exc:
                raise _outside("(compound)", exc) from exc

    # -- timers ---------------------------------------------------------------------------

    def fire_timer(self, row: Mapping[str, Any], now: datetime) -> FiredTimer | None:
        """Fire one claimed timer at ``now`` in the open transaction; stage its effects.

        Returns None when the timer is no longer pending or no longer claimed by this engine
        (a command cancelled it, another worker took the claim over).

        Raises:
            Exception: whatever a participant or host callback raised that is not a
                refusal (the caller isolates the failure; nothing of this timer is staged).
        """
        tid, name, timer_id = row["ticket_id"], row["name"], row["id"]
        if self.uow.host_running:
            raise CommandInsideCallback(tid, f"firing timer {name!r}")
        with self.uow.layer() as layer:
            layer.now = now
            rec = self.ticket(tid)
            pt = rec.timers.get(name)
            # the ticket as read must still have this timer pending and not held by another
            # worker (a record read earlier in this transaction may predate our claim: its
            # timer has no id yet, or no holder; the writer's take checks the claim again);
            # and a timer without an id that is due at another instant than the
            # claimed row was created since the claim, replacing it (an earlier timer of the
            # same claimed chunk moved the ticket on): the claimed row is cancelled, and the
            # new timer is not due yet
            if (pt is None or (pt.id is not None and pt.id != timer_id)
                    or (pt.id is None and pt.due_at != row["due_at"])
                    or pt.claimed_by not in (None, self.owner)):
                return None
            pt = PendingTimer(pt.name, pt.state, pt.due_at, timer_id, self.owner, pt.failures)
            w = layer.writable(tid)
            del w.timers[name]
            index = len(layer.timer_ops)
            layer.timer_ops.append(TimerOp("take", timer_id=timer_id, owner=self.owner, at=now))
            owner = self.owner_of(name)
            if owner is not None:
                outcome = self._guarded(tid, lambda: owner.fire(
                    self._contexts[id(owner)].fire, pt, w))
            elif ":" in name:
                outcome = "stale"  # a participant that is no longer registered
            else:
                outcome = self._fire_deadline(w, pt)
            if outcome == "stale":
                layer.timer_ops[index] = TimerOp("take", timer_id=timer_id, owner=self.owner,
                                                 at=now, status="stale")
        status = "stale" if outcome == "stale" else "fired"
        return FiredTimer(Timer(timer_id, tid, name, pt.state, pt.due_at, status, now),
                          outcome)

    def _fire_deadline(self, rec: TicketRecord, pt: PendingTimer) -> str:
        lc = rec.lifecycle
        spec = lc.spec.deadlines.get(pt.name)
        state = rec.state
        if (spec is None or (pt.state is not None and pt.state != state)
                or (pt.state is None and (state in (spec.stop_in or ())
                                          or state in lc.final_states))):
            return "stale"  # the ticket moved on; normally its timers were cancelled
        outcome = self.record(
            rec.id, "breach", pt.name,
            f"deadline {pt.name!r} due {pt.due_at.isoformat()} was missed",
            {"due_at": pt.due_at.isoformat(), "timer_id": pt.id, "on_breach": spec.on_breach},
            escalate=spec.on_breach == "escalate",
            overdue=lc.spec.resolution_deadline in (None, pt.name),
            escalation_reason=f"deadline {pt.name!r} breached")
        return {"escalated": "escalated", "top_level": "top_level"}.get(outcome, "breached")

    # -- snapshots ------------------------------------------------------------------------

    def snapshot_row(self, conn: Connection, row: Mapping[str, Any]) -> Ticket:
        """The public :class:`Ticket` of a stored ``gw_tickets`` row."""
        lc = self.catalog.by_id(conn, row["definition_id"])
        info = self.catalog.info(row["definition_id"])
        return Ticket(row["id"], info.name, info.version, row["state"], row["level"],
                      load_fields(lc.spec.fields, row["fields"]), bool(row["overdue"]),
                      row["created_at"], row["updated_at"], row["row_version"])

    def snapshot(self, rec: TicketRecord) -> Ticket:
        """The public :class:`Ticket` of a record."""
        info = self.catalog.info(rec.definition_id)
        return Ticket(rec.id, info.name, info.version, rec.state, rec.level,
                      load_fields(rec.lifecycle.spec.fields, rec.fields), bool(rec.overdue),
                      rec.created_at, rec.updated_at, rec.version)


def _outside(ticket_id: str, exc: CalendarOutOfRange) -> OutsideCalendar:
    """The refusal of a command whose calendar arithmetic left the calendar's range."""
    return OutsideCalendar(ticket_id, exc.calendar, exc.day, exc.valid_from, exc.valid_until)


def _stage_rows(layer: Layer, w: TicketRecord, rows: list[dict[str, Any]]) -> list[Change]:
    """Number the history rows after the ticket's last one and stage them (the seq rule)."""
    lc = w.lifecycle
    fields = w.fields
    out = []
    for row in rows:
        w.version += 1
        row["seq"] = w.version
        layer.history.append(row)
        out.append(Change(w.id, lc, w.version, row["kind"], row["trigger"], row["from_state"],
                          row["to_state"], row["from_level"], row["to_level"], row["actor"],
                          row["role"], row["reason"], row["at"], fields,
                          dict(row["data"]) if row["data"] else {}, new_change_id()))
    return out


def _check_department(lc: Lifecycle, ticket_id: str, values: Mapping[str, Any],
                      names: list[str] | None) -> None:
    """Refuse a department field naming a department the lifecycle does not declare."""
    department = undeclared_department(lc.spec, values, names)
    if department is not None:
        raise UnknownDepartment(ticket_id, department, list(lc.spec.departments))


def _row_data(updates: dict[str, Any], internal: bool) -> dict[str, Any] | None:
    """A transition row's data: the fields it set; ``internal: true`` for an internal one."""
    data: dict[str, Any] = {"fields": updates} if updates else {}
    if internal:
        data["internal"] = True
    return data or None


def _data(data: dict[str, Any] | None,
          evidence: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    """A history row's data with the command's evidence (``data["evidence"]``), if any."""
    if not evidence:
        return data
    return {**(data or {}), "evidence": evidence_copy(evidence)}


def evidence_copy(evidence: object) -> Any:
    """A command's attachments copied as given, before they are checked.

    A list (or tuple) of objects becomes a list of dicts; anything else is kept as it is,
    for the evidence participant to refuse with what is wrong (EvidenceInvalid), not a
    TypeError here.
    """
    if isinstance(evidence, list | tuple):
        return [dict(e) if isinstance(e, Mapping) else e for e in evidence]
    return evidence


def _cancel(layer: Layer, w: TicketRecord, name: str) -> None:
    pending = w.timers.pop(name)
    if pending.id:  # stored, its id read with the ticket: cancelled by id (Layer.cancelled)
        layer.cancelled.append(pending.id)
        return
    # the TimerOp by tuple.__new__ (as _record's PendingTimer), every field given
    layer.timer_ops.append(_new(TimerOp, ("cancel", w.id, name, 0, *_CANCEL_REST)))


def _depth(layer: Layer) -> int:
    depth = 0
    current: Layer | None = layer
    while current is not None:
        depth += 1
        current = current.parent
    return depth
