"""The Engine: the public facade over the kernel, its participants and services.

A command (report, fire, escalate), a fired timer and a department decision each run one way
— load, decide, check, plan, one write, after-commit — in one database transaction (see
:mod:`engine.runtime.commands` and docs/architecture.md). If anything refuses — a trigger,
role, guard, field, host callback, a participant's rule, a business calendar out of range —
nothing has been written, and the ticket, its history and its timers are as they were.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.callbacks import Callbacks, answer_link, issue_link, link_ticket
from engine.clock import Clock, SystemClock, VirtualClock, ensure_utc
from engine.definition.loader import Definition
from engine.errors import (
    InvalidArgument,
    InvalidArgumentType,
    UnknownDefinition,
    VirtualClockRequired,
)
from engine.events.outbox import OutboxParticipant
from engine.evidence import (
    Attachment,
    Blob,
    BlobStore,
    EvidenceRules,
    FileSource,
    Uploads,
    attachments_of,
)
from engine.evidence import evidence_counts as _evidence_counts
from engine.evidence import read_attachment as _read_attachment
from engine.evidence import upload as _upload
from engine.evidence.service import is_attachment_id
from engine.handoffs import Handoffs
from engine.ladder.ladder import Ladder, LadderPosition, ladder_position
from engine.lifecycle.machine import Lifecycle
from engine.lifecycle.registry import Registry
from engine.oversight import Oversight, SupervisionNotice, TimeRequest
from engine.oversight import service as _oversight
from engine.patrols import PatrolLinks
from engine.periodic.runner import add_periodic_jobs
from engine.reports.summary import Summary, summarize
from engine.reports.units import milestones_of
from engine.runtime.availability import available_triggers as _available_triggers
from engine.runtime.availability import settable_fields as _settable_fields
from engine.runtime.invariants import Violation
from engine.runtime.kernel import Kernel
from engine.runtime.model import (
    SYSTEM,
    Actor,
    DefinitionVersion,
    FiredTimer,
    HistoryEntry,
    Ticket,
    Timer,
)
from engine.runtime.participant import Participant, Unit
from engine.runtime.queries import Queries, must_exist
from engine.runtime.scheduler import WakeUpScheduler
from engine.sla.clocks import SlaClock, SlaClocks, clocks_of
from engine.store.database import Database
from engine.store.dbclock import DatabaseClock
from engine.store.evidence_tables import attachments
from engine.store.tables import definitions
from engine.timing.rules import TimeRules
from engine.validation import Limits
from engine.versions.impact import TicketImpact, compare_stores, impact_of
from engine.versions.migration import move_tickets
from engine.workorders.participant import WorkOrders

__all__ = ["Engine"]


class Engine:
    """Runs tickets through their lifecycles and persists every step.

    Args:
        database: a SQLAlchemy URL, a SQLite file path, a SQLAlchemy ``Engine`` (borrowed), or
            a :class:`~engine.store.Database`. Default: ``gridwhistle.sqlite`` in the working
            directory.
        clock: where ``now`` comes from (default :class:`~engine.clock.SystemClock`).
        registry: the host app's named guards, actions and listeners.
        events: write a domain event to the ``gw_outbox`` table for every history row, in
            the same transaction, and call the registry's listeners after each commit
            (default True; see :mod:`engine.events`).
        sweep_seconds: with :meth:`start`, how often the scheduler also sweeps for due timers
            in case a wake-up was missed (seconds, default 30).
        worker_id: this engine's name when claiming timers (``gw_timers.claimed_by``, up to
            128 characters). Default: ``host:pid:random``, unique per Engine.
        lease_seconds: how long this engine's claim on a due timer holds before another
            engine may take the timer over (seconds, default 60). Keep it well above the time
            one claimed chunk (200 timers) takes to fire.
        timers_per_transaction: due timers fired per transaction outside a batch (default
            20): an API write on SQLite waits for at most one such transaction.
        limits: the sizes every command's inputs are checked against, the same for Python,
            the CLI, HTTP, Open311 and replays (default :class:`~engine.Limits`; see
            :mod:`engine.validation`).
        evidence_store: where uploaded evidence is stored: a directory, an fsspec URL
            (``s3://bucket/prefix``, ``memory://x``) or a
            :class:`~engine.evidence.BlobStore`. Default: ``<database file>.evidence/``
            beside a SQLite file, else ``gridwhistle-evidence/`` in the working directory.
        time_source: whose clock decides deadlines and stamps commands: ``"database"`` —
            the database server's (:class:`~engine.store.dbclock.DatabaseClock`: the clock
            plus the offset to PostgreSQL's ``clock_timestamp()``, measured every minute),
            so workers with skewed clocks agree; ``"local"`` — the clock as given;
            ``"auto"`` (default) — the database's on PostgreSQL when the clock is a
            :class:`~engine.clock.SystemClock`, the local one otherwise (SQLite runs on one
            machine; a :class:`~engine.clock.VirtualClock` is never replaced).

    Use as a context manager, or call :meth:`start` / :meth:`stop`, to have APScheduler fire
    deadlines in real time. Several engines may live in one process; there is no global state.

    Raises:
        ConfigurationError: the database cannot be opened or is at an older schema revision
            (run ``gridwhistle db upgrade``), the evidence store cannot be used, or
            ``time_source="database"`` on a database without a server clock (SQLite).
        InvalidArgument: ``lease_seconds`` is not positive, ``timers_per_transaction`` is
            below 1, ``time_source`` is not one of the three, or ``"database"`` is asked for
            with a VirtualClock (also a ValueError, as before).
        InvalidArgumentType: ``database`` is none of those (None, a number); also a
            TypeError.
    """

    def __init__(
        self,
        database: str | Path | Any = "gridwhistle.sqlite",
        *,
        clock: Clock | None = None,
        registry: Registry | None = None,
        sweep_seconds: float = 30.0,
        events: bool = True,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
        timers_per_transaction: int = 20,
        limits: Limits | None = None,
        evidence_store: str | Path | BlobStore | None = None,
        time_source: str = "auto",
    ):
        self.db = database if isinstance(database, Database) else Database(database)
        try:
            self.db.require_current_schema()  # else its writes would fail, one by one
            self.evidence_store = (evidence_store if isinstance(evidence_store, BlobStore)
                                   else BlobStore(evidence_store or _default_store(self.db)))
            self.clock: Clock = _choose_clock(self.db, clock or SystemClock(), time_source)
            self.registry = registry or Registry()
            self.sweep_seconds = sweep_seconds
            self.worker_id = (worker_id
                              or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
            if lease_seconds <= 0:
                raise InvalidArgument("lease_seconds", f"the claim lease must be positive, got "
                                                       f"{lease_seconds} s; give e.g. 60")
            self.kernel = Kernel(self.db, self.clock, self.registry, worker_id=self.worker_id,
                                 lease=timedelta(seconds=lease_seconds),
                                 timers_per_transaction=timers_per_transaction, limits=limits)
            self.limits = self.kernel.limits
            self.queries = Queries(self.kernel)
            self._scheduler: WakeUpScheduler | None = None
            # The engine's own participants: time rules first (their refusals), SLA clocks,
            # the ladder, the outbox, work orders (see engine/runtime/participant.py).
            for participant in (TimeRules(), SlaClocks(), Ladder()):
                self.kernel.add_participant(participant)
            if events:
                self.kernel.add_participant(OutboxParticipant(self.registry))
            self.kernel.add_participant(WorkOrders())
            # issue 12: what each trigger needs and the attachments of history rows
            self.evidence_rules = EvidenceRules()
            self.callbacks = Callbacks()
            for extra in (self.evidence_rules, self.callbacks, Handoffs(), PatrolLinks()):
                self.kernel.add_participant(extra)
            # issue 11: extension requests, suspensions, supervision notices
            self.oversight = Oversight()
            self.kernel.add_participant(self.oversight)
        except BaseException:
            if self.db is not database:  # opened here: closed again (no pool, no file kept)
                self.db.close()
            raise

    # -- lifecycle of the engine ------------------------------------------------------------

    def start(self) -> Engine:
        """Start the APScheduler wake-up clock that fires deadlines in real time.

        Also schedules the ``periodic`` rules of the deployed lifecycles (cron jobs).
        """
        if self._scheduler is None:
            scheduler = WakeUpScheduler(self.kernel, sweep_seconds=self.sweep_seconds,
                                        jobs=lambda aps: add_periodic_jobs(aps, self))
            self.kernel.wake = scheduler.wake_at
            scheduler.start()
            self._scheduler = scheduler
        return self

    def stop(self) -> None:
        """Stop the scheduler (if started) and release the database if this engine opened it.

        Not a close: the engine stays usable. A later command or read opens the database
        again, and deadlines then fire only through :meth:`run_due` / :meth:`run_until`, or
        in real time again after :meth:`start`. A host shutting down stops it last.
        """
        if self._scheduler is not None:
            self.kernel.wake = None
            self._scheduler.stop()
            self._scheduler = None
        self.kernel.stop()
        self.db.close()

    @property
    def scheduler(self) -> WakeUpScheduler | None:
        """The running wake-up scheduler (None unless :meth:`start` was called)."""
        return self._scheduler

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_participant(self, participant: Participant) -> None:
        """Register a participant (see :mod:`engine.runtime.participant`); before commands."""
        self.kernel.add_participant(participant)

    def drain_listeners(self, timeout: float | None = None) -> bool:
        """Wait until the listeners of fired timers (run on their own thread) have run.

        Returns False if ``timeout`` seconds passed first.
        """
        return self.kernel.executor.drain(timeout)

    # -- definitions ------------------------------------------------------------------------

    def deploy(self, lifecycle: str | Path | Definition) -> DefinitionVersion:
        """Register a lifecycle version (bundled name, YAML path or loaded Definition).

        Deploying the same content again returns the existing version; changed content gets
        the next version number. New reports use the newest version; running tickets stay
        on the version they started with. Inside :meth:`batch` it joins the batch.

        Raises:
            UnknownDefinition, DefinitionError: the lifecycle cannot be loaded.
            FileNotReadable: its file cannot be read (also an OSError).
            InvalidArgumentType: ``lifecycle`` is none of the three (also a TypeError).
        """
        if not isinstance(lifecycle, str | Path | Definition):
            raise InvalidArgumentType(
                "lifecycle", "a bundled lifecycle's name, a YAML file's path or a Definition",
                lifecycle, hint="e.g. deploy('grid_incident') or deploy(load_definition(path))")
        return self.kernel.deploy(lifecycle)

    def lifecycle(self, name: str) -> Lifecycle:
        """The compiled current version of lifecycle ``name`` (deploying the bundled one if new).

        Raises:
            UnknownDefinition: never deployed and not bundled.
        """
        return self.kernel.lifecycle(name)

    def lifecycle_of(self, ticket: Ticket) -> Lifecycle:
        """The compiled lifecycle version a ticket runs on.

        Raises:
            UnknownDefinition: that version is not deployed in this store.
        """
        def_id = self.kernel.catalog.id_of(ticket.lifecycle, ticket.version)
        if def_id is None:
            with self.kernel.reading() as conn:
                def_id = conn.execute(select(definitions.c.id).where(
                    definitions.c.name == ticket.lifecycle,
                    definitions.c.version == ticket.version)).scalar()
        if def_id is None:
            raise UnknownDefinition(f"{ticket.lifecycle} version {ticket.version}", [])
        return self.kernel.lifecycle_by_id(int(def_id))

    def versions(self) -> list[DefinitionVersion]:
        """Every deployed lifecycle version, by name then version."""
        return self.queries.versions()

    def lifecycle_versions(self, name: str | None = None) -> list[Lifecycle]:
        """Every deployed version of lifecycle ``name`` (None: of every lifecycle), compiled.

        By name, then oldest version first; old versions count (tickets may still run on
        them). Empty when nothing is deployed (or ``name`` never was).
        """
        return self.queries.lifecycle_versions(name)

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply the commands issued inside this block in one transaction (replays, imports).

        A refused command is dropped alone — nothing of it was written — and the batch goes
        on; the whole batch commits at the end of the block (or rolls back if the block
        raises). Per thread, not shared across threads. Nested batches join the outer one.
        """
        with self.kernel.batch():
            yield

    @contextmanager
    def atomic(self) -> Iterator[Unit]:
        """Apply several commands as one: all of them are written, or none is.

        Commands issued in the block (through the engine or the yielded unit) are decided,
        checked and staged one after another; if one raises, everything staged in the block
        is dropped. Inside a :meth:`batch` the block is part of the batch's transaction.
        """
        with self.kernel.compound() as unit:
            yield unit

    # -- commands ---------------------------------------------------------------------------

    def report(
        self,
        lifecycle: str,
        fields: dict[str, Any],
        *,
        actor: Actor,
        ticket_id: str | None = None,
        level: str | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
        evidence: Sequence[Mapping[str, Any]] | None = None,
        foreign_departments: bool = False,
    ) -> Ticket:
        """Create a ticket in the lifecycle's initial state.

        Args:
            lifecycle: the lifecycle name (its newest deployed version valid now is used; the
                bundled one of that name is deployed on first use).
            fields: ticket fields (``required`` ones must be present).
            actor: who reports; the role must be in the lifecycle's ``report.roles``.
            ticket_id: the id to use (1 to 64 characters); generated when omitted.
            level: initial whistle level (default: the lowest).
            reason: free text kept in history.
            idempotency_key: names this command for its actor (1 to 128 characters);
                sending the same report again with the same key returns the first result and
                creates nothing (see :mod:`engine.runtime.idempotency`).
            evidence: attachments the report carries: ``{"upload": sha256, "tag": ...,
                "taken_at": ISO instant}`` for a file stored with :meth:`upload`, or
                ``{"ref": text, "kind": "photo", ...}`` for one held elsewhere (see
                :mod:`engine.evidence`). The lifecycle's ``requirements`` say what a
                trigger needs.
            foreign_departments: let the ``department`` field name a department the
                lifecycle does not declare. Only for importing another system's records
                (the replays keep a city's own agency names); leave it False otherwise.

        Returns:
            The new ticket.

        Raises:
            RoleNotAllowed, TicketExists, InvalidFields, LifecycleNotValid, OutsideCalendar:
                nothing was created.
            FieldNotAllowed: ``fields`` sets a field the role may not set when reporting
                (the lifecycle's ``field_permissions``); nothing was created.
            UnknownDepartment: the ``department`` field names a department the lifecycle
                does not declare under ``departments`` (when it declares any); nothing was
                created.
            IdempotencyKeyReused: the key was used for another command; nothing was created.
            EvidenceMissing, EvidenceInvalid: the lifecycle's requirements are not met, or an
                attachment is malformed (nothing was created).
            InvalidFields: also for ``fields`` that are not a mapping, an ``actor`` that is
                not an Actor, or an idempotency key that is empty or longer than the limit
                (128 characters).
            UnknownDefinition: no such lifecycle.
        """
        return self.kernel.report(lifecycle, fields, actor=actor, ticket_id=ticket_id,
                                  level=level, reason=reason, idempotency_key=idempotency_key,
                                  evidence=evidence, foreign_departments=foreign_departments)

    def fire(
        self,
        ticket_id: str,
        trigger: str,
        *,
        actor: Actor,
        reason: str | None = None,
        fields: dict[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        evidence: Sequence[Mapping[str, Any]] | None = None,
        foreign_departments: bool = False,
    ) -> Ticket:
        """Fire ``trigger`` on a ticket as ``actor``; optionally update fields at the same time.

        Firing the lifecycle's escalation trigger (``escalate``) also moves the ticket one
        whistle level up.

        Args:
            ticket_id: the ticket.
            trigger: the trigger to fire.
            actor: who fires it (their role must be allowed).
            reason: free text kept in history (required by ``reason_required`` transitions).
            fields: field updates applied with the transition; ``None`` clears a field.
            expected_version: the ``row_version`` the caller decided on (e.g. from
                :meth:`get`); if the ticket has changed since, nothing is applied and
                :class:`ConcurrencyConflict` is raised (optimistic locking across requests).
            idempotency_key: names this command for its actor (1 to 128 characters);
                sending it again with the same key returns the first result and applies
                nothing.
            evidence: attachments the command carries (as in :meth:`report`).
            foreign_departments: as in :meth:`report` (imports only).

        Returns:
            The ticket after the transition.

        Raises:
            TicketNotFound, TriggerNotAllowed, RoleNotAllowed, GuardRejected, InvalidFields,
            HostCallbackFailed, TopLevelReached, IdempotencyKeyReused, OutsideCalendar and
            the participants' refusals (MinimumLagNotReached, OutsideWorkingHours, the bounce
            duties, ...): refused; nothing changed.
            FieldNotAllowed: ``fields`` sets a field the role may not set with this trigger
                (the lifecycle's ``field_permissions``); NotTheHandler: the ticket is at a
                ``handler_only`` level and the role is not its handler. Nothing changed.
            UnknownDepartment: ``fields`` sets the ``department`` field to a department the
                lifecycle does not declare (when it declares any); nothing changed.
            WorkOrdersOpen: ``resolve`` on a ticket whose open work orders do not yet meet
                its routing's resolution rule; nothing changed.
            ConcurrencyConflict: another command changed the ticket first (or since
                ``expected_version``); reload and retry.
            InvalidFields: also for an idempotency key that is empty or longer than the limit
                (128 characters); EvidenceInvalid: a malformed attachment.
        """
        return self.kernel.fire(ticket_id, trigger, actor=actor, reason=reason, fields=fields,
                                expected_version=expected_version,
                                idempotency_key=idempotency_key, evidence=evidence,
                                foreign_departments=foreign_departments)

    def escalate(
        self, ticket_id: str, *, actor: Actor, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Ticket:
        """Escalate a ticket by hand ("level-up handling"): one level up, with a reason.

        Fires the lifecycle's escalation trigger as ``actor``; the reason is always kept in
        history, and is mandatory when the lifecycle marks that transition ``reason_required``
        (the bundled grid_incident does).

        ``expected_version`` and ``idempotency_key`` work as in :meth:`fire`.

        Raises:
            InvalidFields: the reason is empty where required. Otherwise as :meth:`fire`.
        """
        return self.kernel.escalate(ticket_id, actor=actor, reason=reason,
                                    expected_version=expected_version,
                                    idempotency_key=idempotency_key)

    # -- versions ---------------------------------------------------------------------------

    def migrate(
        self,
        lifecycle: str | Definition,
        ticket_ids: Sequence[str] | None = None,
        *,
        version: int | None = None,
        state_map: dict[str, str] | None = None,
        actor: Actor = SYSTEM,
        reason: str | None = None,
    ) -> list[Ticket]:
        """Move tickets of ``lifecycle`` to another deployed version, recomputing deadlines.

        See :mod:`engine.versions.migration` for what a move does. All chosen tickets move
        in one transaction, or none does.

        Args:
            lifecycle: the lifecycle name (move to a deployed version); or the new version
                itself (a :class:`Definition`, e.g. ``load_definition("new.yaml")``), which
                is then deployed in the same transaction as the move, after every move has
                been checked against it: a refused migration deploys nothing (unlike
                :meth:`deploy` followed by ``migrate``, where the deploy stands).
            ticket_ids: the tickets to move; default: every ticket of the lifecycle that is
                on another version and not in a final state.
            version: the target version number (default: the newest deployed); not with a
                Definition.
            state_map: old state name → new state name, for states renamed or removed.
            actor: who moves them (recorded in history; default the system).
            reason: free text kept in history.

        Returns:
            The moved tickets (a ticket already on the target version is returned unchanged).

        Raises:
            ConfigurationError: no such lifecycle version (or a Definition and ``version``).
            DefinitionError: the Definition names a guard or action the registry lacks.
            TicketNotFound: a ticket does not exist.
            MigrationRefused: a ticket's state, level or fields do not fit the target version,
                or it belongs to another lifecycle; nothing was moved (nor deployed).
            ConcurrencyConflict: a ticket changed meanwhile; nothing was moved (nor
                deployed).
        """
        return move_tickets(self.kernel, lifecycle, ticket_ids, version, state_map or {},
                            actor, reason)

    def impact(self, new: Definition, *, until: datetime | None = None) -> list[TicketImpact]:
        """What ``new`` would change for the stored tickets of its lifecycle (dry run).

        Replays the stored history on each ticket's current version and on ``new`` in
        throw-away stores and compares them (see :mod:`engine.versions.impact`). Nothing in
        this engine's store changes.

        Args:
            new: the candidate version (e.g. ``load_definition("new.yaml")``).
            until: run both replays to this instant (default: this engine's ``now``).

        Returns:
            One :class:`TicketImpact` per ticket, by id.

        Raises:
            InvalidArgument: ``until`` is naive (also a ValueError); InvalidArgumentType: it
                is not a datetime.
        """
        if until is not None:
            until = ensure_utc(until, what="impact's until")
        return impact_of(self, new, until=until, engine_factory=Engine)

    def compare(self, other: Engine) -> list[TicketImpact]:
        """Compare the tickets of this store (before) with those of ``other`` (after), by id."""
        return compare_stores(self, other)

    # -- timers -----------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest due time of a pending timer, or None (aware UTC).

        A timer another engine holds a claim on counts from the end of that claim's lease,
        when this engine may take it over; a failed timer from its retry time.
        """
        return self.kernel.next_due()

    def run_due(self, now: datetime | None = None) -> list[FiredTimer]:
        """Claim and fire every pending timer that is due strictly before ``now``.

        The rule for ties: a deadline due at instant *t* is met by a command at *t*; it is
        breached only once the clock is past *t*. Due timers are claimed under a lease
        (:mod:`engine.store.claims`) and fired a few per transaction
        (:mod:`engine.runtime.dispatcher`); a timer fires once even with several engines. The
        ticket's state is re-checked; a timer whose ticket has moved on is marked ``stale``.
        A timer whose firing fails is marked failed and retried later; the others fire.

        Args:
            now: the instant to fire up to (aware UTC); default: the engine's clock.

        Returns:
            What happened to each timer, in the order fired.

        Raises:
            InvalidArgument: ``now`` is naive (also a ValueError); InvalidArgumentType: it is
                not a datetime.
        """
        if now is not None:
            if isinstance(now, datetime) and (now.tzinfo is None or now.utcoffset() is None):
                raise InvalidArgument("now", f"run_due needs an aware instant (UTC), got "
                                             f"{now.isoformat()}; give e.g. "
                                             "datetime(2024, 5, 1, 8, tzinfo=UTC)")
            now = ensure_utc(now, what="run_due's now")
        return self.kernel.run_due(now or self.clock.now(), inclusive=False)

    def run_until(self, until: datetime) -> list[FiredTimer]:
        """Move a :class:`~engine.clock.VirtualClock` to ``until``, firing timers on the way.

        Each timer due before ``until`` fires at its own due instant, in due order, so a
        breach's consequences (an escalation and its new deadline) start when they would have
        in real time. Timers due exactly at ``until`` do not fire yet: commands at ``until``
        come first (see :meth:`run_due` for the tie rule).

        Nothing fires and the clock stays where it is when ``until`` is refused.

        Raises:
            VirtualClockRequired: the engine's clock is not a VirtualClock (also a TypeError):
                build it with ``clock=VirtualClock(start)``, or use :meth:`start`.
            InvalidArgument: ``until`` is naive, or before the clock's now (time does not go
                back); also a ValueError. InvalidArgumentType: it is not a datetime.
        """
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise VirtualClockRequired("run_until", clock)
        until = ensure_utc(until, what="run_until's instant")
        now = clock.now()
        if until < now:
            raise InvalidArgument(
                "run_until's instant", f"run_until's instant {until.isoformat()} is before the "
                f"clock's now {now.isoformat()}; a virtual clock does not go back: give an "
                "instant at or after now (a new engine, or a new VirtualClock, starts earlier)")
        return self.kernel.dispatcher.run_until(clock, until)

    # -- reads ------------------------------------------------------------------------------

    def get(self, ticket_id: str) -> Ticket:
        """Read a ticket as stored (inside a batch or atomic block: as staged there).

        Raises:
            TicketNotFound: no such ticket.
        """
        return self.queries.get(ticket_id)

    def history(self, ticket_id: str) -> list[HistoryEntry]:
        """The ticket's history, oldest first.

        Raises:
            TicketNotFound: no such ticket.
        """
        return self.queries.history(ticket_id)

    def timers(self, ticket_id: str | None = None, *, status: str | None = None) -> list[Timer]:
        """Timers, by due time; optionally of one ticket and/or one status.

        ``status``: ``pending``, ``fired``, ``cancelled`` or ``stale``.

        Raises:
            TicketNotFound: ``ticket_id`` is given and no such ticket exists.
            UnknownValue: ``status`` is not one of those four (also a ValueError).
        """
        return self.queries.timers(ticket_id, status=status)

    def available_triggers(self, ticket_id: str, actor: Actor) -> list[str]:
        """The triggers ``actor`` may fire on the ticket now, sorted (nothing is fired).

        From the ticket's own lifecycle version and state: transitions the actor's role may
        fire, not kept to another role by a ``handler_only`` level, not an escalation at the
        top level, whose guards say yes (see :mod:`engine.runtime.availability`).

        Raises:
            TicketNotFound: no such ticket.
        """
        return _available_triggers(self.kernel, ticket_id, actor)

    def settable_fields(self, ticket_id: str, trigger: str, actor: Actor) -> list[str]:
        """The fields ``actor`` may set on the ticket with ``trigger``, sorted.

        By the lifecycle's ``field_permissions`` (and their defaults); empty when the actor
        may not fire ``trigger`` there at all.

        Raises:
            TicketNotFound: no such ticket.
        """
        return _settable_fields(self.kernel, ticket_id, trigger, actor)

    def sla_clocks(self, ticket_id: str) -> list[SlaClock]:
        """The ticket's SLA clocks, by name (see :mod:`engine.sla.clocks`).

        Raises:
            TicketNotFound: no such ticket.
        """
        with self.kernel.reading() as conn:
            must_exist(conn, ticket_id)
            return clocks_of(conn, ticket_id)

    def ladder(self, ticket_id: str) -> LadderPosition | None:
        """The ticket's level, handler role, budget and acknowledgement.

        None when its lifecycle's levels name no handler and no budget.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self.kernel.reading() as conn:
            must_exist(conn, ticket_id)
            return ladder_position(conn, ticket_id)

    def summary(self, lifecycle: str, *, verdict_field: str | None = None) -> Summary:
        """Figures over every ticket of lifecycle ``lifecycle`` (all its versions).

        Args:
            lifecycle: the lifecycle name.
            verdict_field: a ticket field holding a source system's verdict, to pair with the
                engine's overdue flag in ``Summary.verdict_pairs``.
        """
        lc = self.lifecycle(lifecycle)
        milestones = milestones_of(lc)  # the reports' rule of what counts as closed
        with self.kernel.reading() as conn:
            return summarize(conn, lifecycle, final_states=lc.final_states,
                             escalation_trigger=lc.spec.escalation_trigger, levels=lc.levels,
                             verdict_field=verdict_field, void_states=milestones.void_states,
                             merged_states=milestones.excluded_states)

    # -- evidence (issue 12) ------------------------------------------------------------------

    def upload(self, data: FileSource, *, actor: Actor, media_type: str | None = None,
               lifecycle: str | None = None) -> Blob:
        """Check and store a file of evidence; a command then refers to it by ``sha256``.

        The file stays in the store whether or not a command uses it; for the files of one
        command, :meth:`uploads` removes them again if the command is refused.

        Args:
            data: the file, as one of
                ``bytes`` (or ``bytearray``, ``memoryview``) — its content;
                ``pathlib.Path`` (any ``os.PathLike``) — a file on disk, read here;
                a binary file object (``open(path, "rb")``, ``io.BytesIO``) — read from
                where it stands to its end.
                A plain ``str`` is refused (``EvidenceRejected``, ``why="not_a_file"``): it
                could be a file name or the content; pass ``Path(name)`` or
                ``text.encode()``.
            actor: who uploads it (recorded with the blob).
            media_type: the type the sender declared; it must agree with the content (None:
                the content's type is taken).
            lifecycle: whose ``evidence`` limits (size, media types) apply; default the
                built-in ones (20 MiB; JPEG, PNG, WebP, HEIC, MP4, MP3, M4A, PDF).

        Returns:
            The stored :class:`~engine.evidence.Blob` (the same bytes again: the same blob,
            with ``new`` False).

        Raises:
            EvidenceRejected: not a file (``not_a_file``: a ``str``, another type, a file
                object opened as text), a path that cannot be read (``unreadable``), too
                large, of a type not accepted, or its content is not what it was declared
                to be; nothing was stored.
            UnknownDefinition: no such ``lifecycle``.
        """
        return _upload(self.kernel, self.evidence_store, self.evidence_rules, data,
                       media_type=media_type, actor=actor, lifecycle=lifecycle)

    @contextmanager
    def uploads(self, *, actor: Actor, lifecycle: str | None = None,
                keep: bool = False) -> Iterator[Uploads]:
        """A block whose uploads serve the commands in it: a refusal leaves no file behind.

        Use it when a command carries files::

            with engine.uploads(actor=gw, lifecycle="grid_incident") as files:
                before = files.upload(Path("before.jpg"))
                after = files.upload(Path("after.jpg"))
                engine.fire(tid, "resolve", actor=gw, evidence=[
                    {"upload": before.sha256, "tag": "before"},
                    {"upload": after.sha256, "tag": "after"}])

        When the block ends, the files its uploads stored first (``Blob.new``) that no
        attachment refers to are removed — bytes and ``gw_blobs`` row — so if a file is
        refused (``EvidenceRejected``) or the command is (any exception), the evidence store
        is as it was. Files stored before the block, or by another request meanwhile, and
        files any ticket's attachment names, are never removed. The HTTP API, Open311 and
        the console's forms upload this way. Which race this rule accepts when two requests
        send the same bytes at once: docs/decisions.md.

        Args:
            actor: who uploads (recorded with each blob).
            lifecycle: whose ``evidence`` limits apply (default: the built-in ones).
            keep: keep every file uploaded when the block ends normally — files for a later
                command (``POST /uploads``); a block that raises removes them all the same.

        Yields:
            An :class:`~engine.evidence.Uploads`: ``upload(data, media_type=None)`` (as
            :meth:`upload`), ``blobs``, and after the block ``removed``.

        Upload before opening :meth:`atomic` or :meth:`batch` inside the block, not in them
        (``ConfigurationError``). A removal that fails is logged (``gridwhistle.evidence``)
        and never hides the exception that ended the block.
        """
        scope = Uploads(self.kernel, self.evidence_store, self.evidence_rules, actor,
                        lifecycle, keep)
        try:
            yield scope
        except BaseException:
            scope.close(failed=True)
            raise
        scope.close(failed=False)

    def attachments(self, ticket_id: str) -> list[Attachment]:
        """The ticket's attachments, in history order.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self.kernel.reading() as conn:
            must_exist(conn, ticket_id)
            return attachments_of(conn, [ticket_id])

    def evidence_counts(self, lifecycle: str) -> dict[str, int]:
        """How many attachments the tickets of ``lifecycle`` carry (all its versions).

        Returns:
            ``{"stored": N, "references": M}``: checked files, and references to files kept
            elsewhere (a replayed export's photos).
        """
        with self.kernel.reading() as conn:
            return _evidence_counts(conn, lifecycle)

    def attachment_ticket(self, attachment_id: int) -> str | None:
        """The ticket an attachment belongs to (None: no such attachment)."""
        if not is_attachment_id(attachment_id):
            return None
        with self.kernel.reading() as conn:
            found = conn.execute(select(attachments.c.ticket_id).where(
                attachments.c.id == attachment_id)).scalar()
        return str(found) if found is not None else None

    def read_attachment(self, ticket_id: str, attachment_id: int
                        ) -> tuple[Attachment, Iterator[bytes]]:
        """One stored attachment of a ticket and its bytes (in chunks, for streaming).

        Raises:
            TicketNotFound: the ticket has no such stored attachment.
            FileNotFoundError: the evidence store lost the file.
        """
        with self.kernel.reading() as conn:
            return _read_attachment(conn, self.evidence_store, ticket_id, attachment_id)

    # -- the resident's verdict (issue 12) ----------------------------------------------------

    def callback_link(self, ticket_id: str, *, actor: Actor) -> str:
        """Issue a single-use call-back token for a ticket in its call-back step.

        The token goes into the link sent to the resident; only its SHA-256 is stored, and
        a new token replaces the ticket's earlier one (see :mod:`engine.callbacks.service`).

        Raises:
            TicketNotFound: no such ticket.
            CallbackLinkInvalid: the ticket is not in its call-back step.
        """
        return issue_link(self.kernel, self.callbacks, ticket_id, actor=actor)

    def callback_ticket(self, token: str) -> str | None:
        """The id of the ticket a call-back token was issued for (used or not), or None."""
        return link_ticket(self.kernel, token)

    def answer_callback(self, token: str, *, fixed: bool, rating: int,
                        comment: str | None = None) -> Ticket:
        """The resident's verdict through a call-back link (fires confirm or not_fixed).

        Raises:
            CallbackLinkInvalid: the link is unknown, used, expired, or its ticket left the
                call-back step.
            InvalidFields: the rating is not 1–5.
        """
        return answer_link(self.kernel, self.callbacks, token, fixed=fixed, rating=rating,
                           comment=comment)

    # -- oversight (issue 11) -----------------------------------------------------------------

    def request_extension(self, ticket_id: str, deadline: str, *, proposed_due: datetime,
                          reason: str, actor: Actor,
                          department: str | None = None) -> TimeRequest:
        """A department asks for more time on a running deadline (延期申请).

        At most one request per ticket and deadline waits for the centre's decision; the
        lifecycle's ``oversight.extension`` says which deadlines, which roles, how many
        extensions and how long (see :mod:`engine.oversight`).

        Args:
            ticket_id: the ticket (or work order).
            deadline: the deadline's name.
            proposed_due: the due instant asked for (aware datetime; UTC is stored).
            reason: why (required).
            actor: who asks (a role of ``extension.request_roles``).
            department: the department asking (default: the ticket's ``department``).

        Returns:
            The open request; its ``n`` names it in :meth:`decide_extension`.

        Raises:
            InvalidFields: blank reason, naive instant.
            TicketNotFound, RoleNotAllowed, OversightRefused: nothing was changed.
        """
        return _oversight.request_extension(self.kernel, self.oversight, ticket_id, deadline,
                                            proposed_due=proposed_due, reason=reason,
                                            actor=actor, department=department)

    def decide_extension(self, ticket_id: str, n: int, *, approve: bool, reason: str,
                         actor: Actor, due_at: datetime | None = None) -> TimeRequest:
        """The centre approves or refuses extension request ``n`` of a ticket.

        Approved, the deadline's timer moves to ``due_at`` (default: the instant asked
        for): its breach, the overdue flag and Open311's ``expected_datetime`` follow; a
        deadline due at a field (its ``at_field``) has that field set to the new instant in
        the same command; the request keeps the original due instant and the time added.

        Raises:
            InvalidFields, TicketNotFound, RoleNotAllowed, OversightRefused: nothing changed.
        """
        return _oversight.decide_extension(self.kernel, self.oversight, ticket_id, n,
                                           approve=approve, reason=reason, actor=actor,
                                           due_at=due_at)

    def suspend(self, ticket_id: str, cause: str, *, reason: str, actor: Actor,
                until: datetime | None = None, department: str | None = None) -> TimeRequest:
        """Suspend a ticket (挂起) for a documented cause: deadlines, SLA clocks, budget stop.

        The ladder's level budget is held with the deadlines.

        The system resumes it at ``until`` (aware; default and at most now + the
        lifecycle's ``suspension.max_duration``). While suspended only a transition into a
        final state moves it.

        Raises:
            InvalidFields, TicketNotFound, RoleNotAllowed, OversightRefused: nothing changed.
        """
        return _oversight.suspend(self.kernel, self.oversight, ticket_id, cause,
                                  reason=reason, actor=actor, until=until,
                                  department=department)

    def resume(self, ticket_id: str, *, reason: str, actor: Actor) -> TimeRequest:
        """Resume a suspended ticket: its deadlines run again, due later by the time held.

        Raises:
            InvalidFields, TicketNotFound, RoleNotAllowed, OversightRefused
            (``not_suspended``): nothing was changed.
        """
        return _oversight.resume(self.kernel, self.oversight, ticket_id, reason=reason,
                                 actor=actor)

    def send_supervision_notice(self, ticket_id: str, *, text: str, actor: Actor,
                                department: str | None = None,
                                reply_due: datetime | None = None) -> SupervisionNotice:
        """The centre sends a supervision notice (督办) about a ticket to a department.

        Kept in the ticket's history (kind ``supervision_notice``, the text as its reason)
        and in ``gw_supervision_notices``; counted in reports.

        Args:
            ticket_id: the ticket (or work order).
            text: what it says (required).
            actor: who sends it (a role of ``supervision.roles``).
            department: to whom (default: the ticket's ``department``).
            reply_due: when the department must reply (aware); default now + the
                lifecycle's ``supervision.reply_within``, if any.

        Raises:
            InvalidFields, TicketNotFound, RoleNotAllowed, OversightRefused.
        """
        return _oversight.send_notice(self.kernel, self.oversight, ticket_id, text=text,
                                      actor=actor, department=department,
                                      reply_due=reply_due)

    def time_requests(self, ticket_id: str, kind: str | None = None) -> list[TimeRequest]:
        """A ticket's extension requests and suspensions (``kind``: one of them), in order.

        Raises:
            TicketNotFound: no such ticket.
        """
        return _oversight.requests_of(self.kernel, ticket_id, kind)

    def supervision_notices(self, ticket_id: str) -> list[SupervisionNotice]:
        """A ticket's supervision notices, oldest first.

        Raises:
            TicketNotFound: no such ticket.
        """
        return _oversight.notices_of(self.kernel, ticket_id)

    def check_invariants(self, ticket_ids: list[str] | None = None) -> list[Violation]:
        """Check that every ticket's state, level and timers agree with its history.

        See :mod:`engine.runtime.invariants` for the rules. Returns the violations (empty
        when all hold), by ticket id.
        """
        return self.queries.check(ticket_ids)


def _choose_clock(db: Database, clock: Clock, time_source: str) -> Clock:
    """The engine's clock for ``time_source`` (see :class:`Engine`).

    Raises:
        InvalidArgument: an unknown ``time_source``, or ``"database"`` with a VirtualClock.
        ConfigurationError: ``"database"`` on a database without a server clock (SQLite).
    """
    if time_source not in ("auto", "database", "local"):
        raise InvalidArgument("time_source", f"time_source must be 'auto', 'database' or "
                                             f"'local', got {time_source!r}")
    if time_source == "auto":
        use_db = db.dialect == "postgresql" and isinstance(clock, SystemClock)
    else:
        use_db = time_source == "database"
    if not use_db or isinstance(clock, DatabaseClock):
        return clock
    if isinstance(clock, VirtualClock):
        raise InvalidArgument("time_source", "time_source='database' cannot replace a "
                                             "VirtualClock; tests and replays move virtual "
                                             "time themselves: leave time_source at 'auto'")
    return DatabaseClock(db.engine, clock)


def _default_store(db: Database) -> str:
    """``<file>.evidence`` beside a SQLite file; ``gridwhistle-evidence`` otherwise."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return str(Path(url.database).resolve()) + ".evidence"
    return str(Path("gridwhistle-evidence").resolve())
