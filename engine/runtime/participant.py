"""The participant protocol: how the engine's parts take part in every command.

SLA clocks, the whistle ladder, the time rules, the event outbox and work orders are
*participants*. A command runs one way (see docs/architecture.md)::

    load the ticket ─► decide (lifecycle, roles, guards, fields, timers)
        ─► every participant's check (may refuse, never writes)
        ─► every participant's plan (its state, timers, rows, follow-ons)
        ─► follow-ons: decided, checked and planned the same way, in the same pass
        ─► one writer flushes the change set ─► commit ─► after-commit hooks

A participant is given a narrow context (:class:`CheckContext`, :class:`PlanContext`,
:class:`FireContext`), never the engine: it reads tickets and its own state through the
context and stages what it wants written there. Nothing it does touches
the database until every check of the command (and of its follow-ons) has passed.

Subclass :class:`Participant` and register it with ``Engine.add_participant`` (before the
first command). Its state per ticket is any immutable value (a frozen dataclass, a tuple):
the engine keeps it in the working copy, gives the participant the stored value and the
current one at flush time (:meth:`Participant.writes`), and writes the rows it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.sql.expression import ColumnElement

from engine.errors import InvalidArgument
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import Actor
from engine.runtime.working import PendingTimer, TicketRecord
from engine.store.reads import rows_of

__all__ = [
    "CheckContext",
    "FireContext",
    "Participant",
    "PlanContext",
    "RowWrite",
    "Unit",
]

T = TypeVar("T")

RowWrite = tuple[Any, Mapping[str, Any]]
"""A row to write: ``(prebuilt SQLAlchemy statement, parameters)``."""


class Participant:
    """One part of every command's pipeline. Override the methods you need.

    Class attributes:
        key: the name of this participant's per-ticket state (unique per engine; empty for
            a participant without state, such as the outbox).
        timer_prefix: timers named ``<prefix>:...`` belong to this participant: it creates and
            cancels them through its context and :meth:`fire` decides what a due one does.
            None: it has no timers. Deadline names cannot contain ``:``.
        state_table, state_column: a table whose rows with ``state_column`` = the ticket id
            hold this participant's state. The engine then reads them *with the ticket*, in
            the same statement, and hands them to :meth:`from_rows` (no :meth:`load` needed).
        state_where: a condition on ``state_table``'s columns: only the rows that hold the
            state are read with the ticket (the evidence rules need the report's
            attachments, not every later photo). :meth:`from_rows` must give the same state
            with or without the other rows (:meth:`load` reads them all).

    The engine calls, per command: :meth:`check` for every change, then :meth:`plan` for
    every change, then (after the commit) :meth:`after_commit` with the committed changes.
    :meth:`load` runs when the participant first asks for a ticket's state in a transaction.
    Participants run in registration order; the time rules, SLA clocks and the ladder come
    first, the outbox and work orders after them. The engine takes a participant's
    :meth:`check` and :meth:`plan` once per lifecycle version, as defined by its class
    (one that keeps this class's do-nothing method is not called for it), and leaves a step
    out for the reports and transitions :meth:`idle` says it does nothing for: change what a
    participant does by registering another, not by replacing its methods on the instance.
    """

    key: ClassVar[str] = ""
    timer_prefix: ClassVar[str | None] = None
    state_table: ClassVar[Table | None] = None
    state_column: ClassVar[str] = "ticket_id"
    state_where: ClassVar[ColumnElement[bool] | None] = None

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Whether this participant has anything to do with tickets of ``lifecycle``.

        Asked once per compiled lifecycle version; a participant that answers False is
        never called for its tickets. Must not raise. Default: True.
        """
        return True

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Whether :meth:`check` (``step="check"``) or :meth:`plan` does nothing for a shape.

        A shape is a report (``kind="report"``, ``trigger="report"``, ``from_state`` None)
        or a transition (``kind="transition"``) of ``trigger`` from ``from_state`` to
        ``to_state`` on ``lifecycle`` whose :attr:`Change.data` has the keys ``data_keys``
        (of ``fields``, ``internal``, ``evidence``). Answer True only when the step returns
        without reading or staging anything for *every* change of that shape, whatever the
        ticket, its levels, fields and the values in the change's data. The engine asks
        once per lifecycle version, step and shape and then leaves the step out for those
        changes (other kinds of change are always handed over). Must not raise. Default:
        False.
        """
        return False

    def empty(self, lifecycle: Lifecycle) -> Any:
        """The state of a ticket that has none stored (e.g. a ticket being reported).

        Default: None.
        """
        return None

    def from_rows(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """The state held by a ticket's rows of :attr:`state_table` (none: the empty state).

        Raises:
            NotImplementedError: the participant declares no ``state_table``.
        """
        raise NotImplementedError(f"{type(self).__name__} declares no state_table")

    def load(self, conn: Connection, ticket_ids: Sequence[str]) -> Mapping[str, Any]:
        """Read this participant's stored state of ``ticket_ids`` (read only, never write).

        Needed only without :attr:`state_table` (or for tickets read before the participant
        was registered). The default reads :attr:`state_table` and calls :meth:`from_rows`.

        Args:
            conn: the transaction's connection; what the transaction staged before is
                flushed already.
            ticket_ids: tickets whose state is asked for (at least one).

        Returns:
            ticket id → state; a ticket left out gets :meth:`empty`.
        """
        table = self.state_table
        if table is None:
            return {}
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ticket_ids}
        for r in rows_of(conn, table, ticket_ids, column=self.state_column):
            rows[r[self.state_column]].append(r)
        return {t: self.from_rows(found) for t, found in rows.items()}

    def check(self, ctx: CheckContext, change: Change) -> None:
        """Refuse ``change`` if a rule of this participant forbids it.

        Raise a :class:`~engine.errors.CommandRefused` subclass to refuse: the whole
        command (and any compound command it belongs to) is then dropped, and nothing of it
        is written. Must not stage anything: the context offers reads only.
        """

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Stage this participant's consequences of ``change`` in the context.

        Update its state (:meth:`PlanContext.set_state`), create and cancel its timers, add
        rows of its own tables, and ask for follow-on commands
        (:meth:`PlanContext.follow`). Refusals belong in :meth:`check`; should planning still
        fail (a business calendar out of range, a bug), nothing has been written and the
        command is refused or fails as a whole.
        """

    def writes(self, ticket_id: str, stored: Any, current: Any) -> Iterable[RowWrite]:
        """The rows that make the database hold ``current`` instead of ``stored``.

        Called when the transaction is flushed, for every ticket whose state this
        participant changed. ``stored`` is None when nothing is stored yet (or the stored
        value as loaded or last flushed); return nothing when the two are equal.
        """
        return ()

    def event_rows(self, changes: Sequence[Change]) -> Iterable[RowWrite]:
        """Rows that are a function of the changes alone (one event per change, say).

        Called when the transaction is flushed, with every change planned and not flushed
        yet, in the order planned (follow-ons included, refused commands' changes not; of
        every lifecycle: skip those of lifecycles you are not :meth:`interested` in). Rows
        returned here are written with the change set as rows :meth:`plan` stages are; a
        row built here instead of in :meth:`plan` keeps nothing alive until the flush but
        the change itself (in a batch of 500 commands, ~50 references fewer per command for
        the cyclic garbage collector to walk, for the outbox's event). Must not read or
        raise: it runs after every check. Default: none.
        """
        return ()

    def fire(self, ctx: FireContext, timer: PendingTimer, ticket: TicketRecord) -> str:
        """Decide what a due timer of this participant does; return its outcome.

        Args:
            ctx: what firing may do (stage, record history rows, issue commands).
            timer: the due timer (its original ``due_at``).
            ticket: the ticket as staged.

        The timer is claimed and still pending; the engine marks it fired when this returns
        (``stale`` when this returns ``stale``: the timer had nothing left to do). Outcomes:
        ``breached``, ``escalated``, ``top_level``, ``warned`` or ``stale`` (see
        :class:`~engine.runtime.model.FiredTimer`).

        Raises:
            NotImplementedError: the participant has no timers.
        """
        raise NotImplementedError(f"{type(self).__name__} has no timers")

    def timer_problem(self, name: str, state: str, level: str,
                      lifecycle: Lifecycle) -> str | None:
        """Why this participant's timer ``name`` should not be pending on a ticket now.

        Args:
            name: the pending timer's name (``<timer_prefix>:...``).
            state: the ticket's state.
            level: the ticket's level.
            lifecycle: its compiled lifecycle version.

        Used by ``Engine.check_invariants``; None when it may be pending. Default: None.
        """
        return None

    def stored_problems(self, conn: Connection, tickets: Mapping[str, Mapping[str, Any]],
                        history: Mapping[str, Sequence[Mapping[str, Any]]],
                        timers: Mapping[str, Sequence[Mapping[str, Any]]],
                        lifecycle_of: Callable[[int], Lifecycle],
                        ) -> Iterable[tuple[str, str, str]]:
        """Where this participant's own stored rows disagree with the tickets' history.

        Args:
            conn: a connection to read this participant's tables with (one query per
                table for all the tickets checked, not one per ticket).
            tickets: ticket id → its ``gw_tickets`` row, for the tickets checked.
            history: ticket id → its ``gw_history`` rows, in ``seq`` order.
            timers: ticket id → its ``gw_timers`` rows (every status).
            lifecycle_of: the compiled lifecycle of a ``gw_definitions.id``.

        Returns ``(ticket_id, rule, message)`` for each disagreement. Used by
        ``Engine.check_invariants``; must not write. Default: none.
        """
        return ()

    def after_commit(self, changes: Sequence[Change]) -> None:
        """Called after the transaction committed, with its changes in order.

        Changes of commands that were refused are not among them. Runs outside the
        transaction; it cannot refuse anything and must not raise. For changes of fired
        timers it runs on a background thread, so that it cannot hold up the deadlines.
        """


class Pipeline(Protocol):
    """What the contexts need from the command handler; participants never see it.

    Implemented by :class:`engine.runtime.commands.CommandHandler`.
    """

    def now(self) -> datetime: ...
    def ticket(self, ticket_id: str) -> TicketRecord: ...
    def state(self, participant: Participant, ticket_id: str) -> Any: ...
    def last_fired(self, ticket_id: str, trigger: str, *, before: int) -> datetime | None: ...
    def tickets(self, ticket_ids: Sequence[str]) -> list[TicketRecord]: ...
    def lifecycle(self, name: str) -> Lifecycle: ...
    def rearm(self, ticket_id: str, name: str, due_at: datetime) -> None: ...
    def move_deadline(self, ticket_id: str, name: str, due_at: datetime) -> None: ...
    def note(self, ticket_id: str, kind: str, trigger: str, *, actor: Actor,
             reason: str | None, data: dict[str, Any],
             fields: Mapping[str, Any] | None = None) -> TicketRecord: ...
    def set_state(self, participant: Participant, ticket_id: str, value: Any) -> None: ...
    def query(self, fn: Callable[[Connection], T]) -> T: ...
    def schedule(self, ticket_id: str, name: str, due_at: datetime) -> None: ...
    def cancel(self, ticket_id: str, prefix: str) -> None: ...
    def add_row(self, stmt: Any, params: Mapping[str, Any]) -> None: ...
    def follow(self, participant: Participant, step: Callable[[Unit], None], *,
               ticket_id: str, what: str, on_refusal: Literal["refuse", "record"]) -> None: ...
    def fire(self, ticket_id: str, trigger: str, *, actor: Actor, reason: str | None = None,
             fields: dict[str, Any] | None = None,
             evidence: Sequence[Mapping[str, Any]] | None = None) -> TicketRecord: ...
    def report(self, lifecycle: str, fields: dict[str, Any], *, actor: Actor,
               ticket_id: str | None = None, level: str | None = None,
               reason: str | None = None,
               evidence: Sequence[Mapping[str, Any]] | None = None) -> TicketRecord: ...
    def record(self, ticket_id: str, kind: str, trigger: str, reason: str,
               data: dict[str, Any], *, escalate: bool, overdue: bool = False,
               fields: Mapping[str, Any] | None = None) -> str: ...


class CheckContext:
    """What :meth:`Participant.check` may do: read, never stage.

    Attributes:
        participant: the participant this context serves (its state is the one
            :meth:`state` reads).
    """

    __slots__ = ("_pipe", "participant")

    def __init__(self, pipe: Pipeline, participant: Participant):
        self._pipe = pipe
        self.participant = participant

    @property
    def now(self) -> datetime:
        """The command's instant (aware UTC)."""
        return self._pipe.now()

    def ticket(self, ticket_id: str) -> TicketRecord:
        """A ticket as this command sees it (staged changes included). Do not change it.

        Raises:
            TicketNotFound: no such ticket.
        """
        return self._pipe.ticket(ticket_id)

    def state(self, ticket_id: str) -> Any:
        """The participant's state of a ticket (loaded with :meth:`Participant.load` once).

        Raises:
            TicketNotFound: no such ticket.
        """
        return self._pipe.state(self.participant, ticket_id)

    def lifecycle(self, name: str) -> Lifecycle:
        """The compiled current version of lifecycle ``name`` (deploying the bundled one).

        Raises:
            UnknownDefinition: never deployed and not bundled.
        """
        return self._pipe.lifecycle(name)

    def tickets(self, ticket_ids: Sequence[str]) -> list[TicketRecord]:
        """Several tickets as staged (read together from the database where needed).

        Raises:
            TicketNotFound: one of them does not exist.
        """
        return self._pipe.tickets(ticket_ids)

    def last_fired(self, ticket_id: str, trigger: str, *, before: int) -> datetime | None:
        """When ``trigger`` (a report or transition) last fired on the ticket, before ``seq``.

        Staged history rows count as well as stored ones. None: it never fired.
        """
        return self._pipe.last_fired(ticket_id, trigger, before=before)

    def query(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` for a read the state does not answer (rare paths only).

        What this transaction staged before the current command is flushed first; the
        current command's own staged changes are not in the database yet.
        """
        return self._pipe.query(fn)


class PlanContext(CheckContext):
    """What :meth:`Participant.plan` may do: read, and stage this participant's changes."""

    __slots__ = ()

    def set_state(self, ticket_id: str, value: Any) -> None:
        """Replace this participant's state of a ticket (an immutable value)."""
        self._pipe.set_state(self.participant, ticket_id, value)

    def schedule(self, ticket_id: str, name: str, due_at: datetime) -> None:
        """Create the pending timer ``name`` (``<timer_prefix>:...``) due at ``due_at`` (UTC).

        A pending timer of that name is cancelled first (at most one is pending).

        Raises:
            InvalidArgument: ``name`` does not start with this participant's
                ``timer_prefix:`` (also a ValueError).
        """
        prefix = self.participant.timer_prefix
        if prefix is None or not name.startswith(prefix + ":"):
            raise InvalidArgument("name", f"{type(self.participant).__name__} may only create "
                                          f"timers named '{prefix}:...', not {name!r}")
        self._pipe.schedule(ticket_id, name, due_at)

    def cancel(self, ticket_id: str, prefix: str) -> None:
        """Cancel the ticket's pending timers named ``prefix`` or ``prefix:...``."""
        self._pipe.cancel(ticket_id, prefix)

    def rearm(self, ticket_id: str, name: str, due_at: datetime) -> None:
        """Start one of the lifecycle's ticket deadlines again, due at ``due_at`` (UTC).

        For rules that continue a stopped deadline (a reopened ticket keeps its original
        due instant). A pending timer of that name is cancelled first.

        Raises:
            InvalidArgument: ``name`` is not a ticket deadline of the ticket's lifecycle (also
                a ValueError).
        """
        self._pipe.rearm(ticket_id, name, due_at)

    def move_deadline(self, ticket_id: str, name: str, due_at: datetime) -> None:
        """(Re)schedule one of the lifecycle's deadlines of the ticket due at ``due_at`` (UTC).

        For the rules that move a running deadline (an approved extension) or start a held
        one again (the end of a suspension). A state deadline belongs to the ticket's current
        state; a pending timer of that name is cancelled first. The breach is then recorded
        as for any deadline, at the new instant.

        Raises:
            InvalidArgument: ``name`` is not a deadline of the ticket's lifecycle, or a state
                deadline of another state than the ticket's (also a ValueError).
        """
        self._pipe.move_deadline(ticket_id, name, due_at)

    def add_row(self, stmt: Any, params: Mapping[str, Any]) -> None:
        """Stage a row of this participant's own tables (``stmt``: a prebuilt statement)."""
        self._pipe.add_row(stmt, params)

    def follow(self, step: Callable[[Unit], None], *, ticket_id: str, what: str,
               on_refusal: Literal["refuse", "record"]) -> None:
        """Ask for a follow-on: ``step(unit)`` issues further commands in the same pass.

        It runs after every change of the current command has been planned, before anything
        is written; its commands are decided, checked and planned like any other. If one of
        them is refused: ``refuse`` refuses the whole command; ``record`` drops what the step
        staged and writes a ``follow_on_refused`` history row on ``ticket_id`` naming
        ``what`` and the refusal. Which rule applies to which follow-on is in
        docs/architecture.md.
        """
        self._pipe.follow(self.participant, step, ticket_id=ticket_id, what=what,
                          on_refusal=on_refusal)


class Unit(PlanContext):
    """A follow-on step's (or a service's) handle: stage, and issue commands.

    Commands issued here run the whole pipeline (decide, check, plan, their own follow-ons)
    on top of what is staged so far; a refusal raises as usual and drops only what that
    command staged.
    """

    __slots__ = ()

    def fire(self, ticket_id: str, trigger: str, *, actor: Actor, reason: str | None = None,
             fields: dict[str, Any] | None = None,
             evidence: Sequence[Mapping[str, Any]] | None = None) -> TicketRecord:
        """Fire a trigger (as :meth:`Engine.fire`); returns the ticket's staged record."""
        return self._pipe.fire(ticket_id, trigger, actor=actor, reason=reason, fields=fields,
                               evidence=evidence)

    def note(self, ticket_id: str, kind: str, trigger: str, *, actor: Actor,
             reason: str | None = None, data: dict[str, Any] | None = None,
             fields: Mapping[str, Any] | None = None) -> TicketRecord:
        """Record a history row of ``kind`` by ``actor`` that keeps state and level.

        For commands that are not transitions (an extension request, a suspension, a
        supervision notice): the row is announced to every participant as a
        :class:`Change` of that kind, checked and planned like any other — a participant
        refuses it in ``check``, before anything is staged.

        Args:
            ticket_id: the ticket.
            kind: the row's kind (``extension_requested``, ``suspended``, ...).
            trigger: the row's trigger (what it is about: a deadline, a cause).
            actor: who (their role is the row's role).
            reason: the row's reason.
            data: the row's data (the command's inputs, JSON-ready).
            fields: fields the row sets, as a consequence of a rule (an approved extension
                sets the field that drives the extended deadline). They are checked as
                values (not against ``field_permissions``: the rule's own roles decide),
                staged with the row, kept in its ``data["fields"]`` (as a transition's) and
                in :attr:`Change.fields`; they move no timer — the participant whose rule it
                is moves its deadline itself.

        Returns:
            The ticket's staged record.

        Raises:
            TicketNotFound; InvalidFields (a value that does not fit its field); the
            participants' refusals (nothing is staged).
        """
        return self._pipe.note(ticket_id, kind, trigger, actor=actor, reason=reason,
                               data=dict(data or {}), fields=fields)

    def report(self, lifecycle: str, fields: dict[str, Any], *, actor: Actor,
               ticket_id: str | None = None, level: str | None = None,
               reason: str | None = None,
               evidence: Sequence[Mapping[str, Any]] | None = None) -> TicketRecord:
        """Report a ticket (as :meth:`Engine.report`); returns its staged record."""
        return self._pipe.report(lifecycle, fields, actor=actor, ticket_id=ticket_id,
                                 level=level, reason=reason, evidence=evidence)


class FireContext(Unit):
    """What :meth:`Participant.fire` may do: stage, and record the timer's consequence."""

    __slots__ = ()

    def record(self, ticket_id: str, kind: str, trigger: str, reason: str,
               data: dict[str, Any], *, escalate: bool, overdue: bool = False,
               fields: Mapping[str, Any] | None = None) -> str:
        """Record a system history row (``breach``, ``sla_warning``, ...) on the ticket.

        Args:
            ticket_id: the ticket.
            kind: the row's kind; ``trigger``: its trigger (the timer's name, say).
            trigger: see ``kind``.
            reason: the row's reason (why, in words).
            data: the row's data (e.g. ``due_at``, ``timer_id``).
            escalate: try the lifecycle's escalation first (see below).
            overdue: the row also sets the ticket's overdue flag.
            fields: field values the row sets, as :meth:`Unit.note`'s (a rule's
                consequence: checked as values, not against field permissions; not with
                ``escalate``).

        The row keeps the ticket's state and level. With ``escalate`` the lifecycle's
        escalation trigger is fired as role ``system`` with this row before it; if that is
        refused (no such transition from this state, a guard, duty hours, the top level),
        the row is recorded alone with the refusal in ``data["escalation_refused"]``; a
        calendar out of range (:class:`~engine.errors.OutsideCalendar`) is raised instead
        (the escalation is owed: a fired timer then fails and is retried).

        Returns:
            ``escalated``, ``top_level`` (escalation asked for at the top level) or
            ``recorded``.
        """
        return self._pipe.record(ticket_id, kind, trigger, reason, data, escalate=escalate,
                                 overdue=overdue, fields=fields)
