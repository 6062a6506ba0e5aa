"""The Engine: commands on tickets, each applied in one database transaction.

A command (report, fire, escalate) and a fired deadline each do, in ONE transaction: read the
ticket, run the transition on the lifecycle's shared Machine, update the ticket row (checking
its row version), append history rows, and cancel/create timer rows. If anything fails —
refused trigger, role, guard, invalid field, a host callback raising, a concurrent change —
the transaction is rolled back and the ticket, its history and its timers are as they were.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy import Engine as SAEngine
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock, SystemClock
from engine.definition.loader import Definition, load_definition
from engine.errors import (
    CommandRefused,
    ConcurrencyConflict,
    InvalidFields,
    TicketExists,
    TicketNotFound,
    TopLevelReached,
)
from engine.lifecycle.machine import Lifecycle, Subject
from engine.lifecycle.registry import CommandContext, Registry
from engine.runtime import idempotency as idem
from engine.runtime.batching import DueFloor, lean_command
from engine.runtime.changes import Change, Participant, changes_from_rows
from engine.runtime.claims import TimerClaims
from engine.runtime.fields import check_fields, load_fields
from engine.runtime.impact import TicketImpact
from engine.runtime.invariants import Violation, check_invariants
from engine.runtime.model import (
    SYSTEM,
    Actor,
    DefinitionVersion,
    FiredTimer,
    HistoryEntry,
    Ticket,
    Timer,
)
from engine.runtime.summary import Summary, summarize
from engine.runtime.timer_plan import cancel_on_exit, reschedule_field_deadlines, timers_on_entry
from engine.store import fast
from engine.store import statements as S
from engine.store.database import Database
from engine.store.tables import definitions, history, timers
from engine.timing import default_participants
from engine.timing.timers import fire_extension_timer, is_extension_timer
from engine.timing.validity import version_valid_at

if TYPE_CHECKING:
    from engine.ladder import LadderPosition
    from engine.sla import SlaClock

__all__ = ["Engine"]


_RUN_DUE_BATCH = 200
MAX_TICKET_ID = 64


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
            one batch of timers takes to fire.

    Use as a context manager, or call :meth:`start` / :meth:`stop`, to have APScheduler fire
    deadlines in real time. Several engines may live in one process; there is no global state.
    """

    def __init__(
        self,
        database: str | Path | SAEngine | Database = "gridwhistle.sqlite",
        *,
        clock: Clock | None = None,
        registry: Registry | None = None,
        sweep_seconds: float = 30.0,
        events: bool = True,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
    ):
        self.db = database if isinstance(database, Database) else Database(database)
        self.clock: Clock = clock or SystemClock()
        self.registry = registry or Registry()
        self.sweep_seconds = sweep_seconds
        self._lifecycles: dict[int, Lifecycle] = {}
        self._versions: dict[int, DefinitionVersion] = {}
        self._current: dict[str, int] = {}
        self._local = threading.local()
        self._deploy_lock = threading.Lock()
        self._scheduler: Any = None
        self._participants: list[Participant] = default_participants()  # engine/timing
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims = TimerClaims(self.worker_id, timedelta(seconds=lease_seconds))
        if events:
            from engine.events.outbox import OutboxParticipant

            self.add_participant(OutboxParticipant(self.registry))
        from engine.departments.participant import WorkOrderParticipant

        self.add_participant(WorkOrderParticipant(self))  # issue 4: work orders, duties
        # Timer rows that participants insert (SLA clocks, ladder budgets, lags, migrations)
        # reach the batch's next-due bound and the scheduler's wake-up like the engine's own.
        self._listener = self._saw_execute
        event.listen(self.db.engine, "before_execute", self._listener)

    # -- lifecycle of the engine ------------------------------------------------------------

    def start(self) -> Engine:
        """Start the APScheduler wake-up clock that fires deadlines in real time."""
        from engine.runtime.scheduler import WakeUpScheduler

        if self._scheduler is None:
            self._scheduler = WakeUpScheduler(self, sweep_seconds=self.sweep_seconds)
            self._scheduler.start()
        return self

    def stop(self) -> None:
        """Stop the scheduler (if started) and release the database if this engine opened it."""
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if event.contains(self.db.engine, "before_execute", self._listener):
            event.remove(self.db.engine, "before_execute", self._listener)
        self.db.close()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- definitions ------------------------------------------------------------------------

    def deploy(self, lifecycle: str | Path | Definition) -> DefinitionVersion:
        """Register a lifecycle version (bundled name, YAML path or loaded Definition).

        Deploying the same content again returns the existing version; changed content gets
        the next version number. New reports use the newest version; running tickets stay
        on the version they started with.

        Raises:
            UnknownDefinition, DefinitionError: the lifecycle cannot be loaded.
        """
        definition = lifecycle if isinstance(lifecycle, Definition) else load_definition(lifecycle)
        compiled = Lifecycle(definition, self.registry)  # checks host callbacks first
        with self._deploy_lock, self._tx() as conn:  # inside a batch: its connection
            row = conn.execute(
                select(definitions.c.id, definitions.c.version).where(
                    definitions.c.name == definition.name,
                    definitions.c.digest == definition.digest,
                )
            ).first()
            if row is None:
                latest = conn.execute(
                    select(func.max(definitions.c.version)).where(
                        definitions.c.name == definition.name)
                ).scalar()
                version = (latest or 0) + 1
                def_id = conn.execute(
                    insert(definitions).values(
                        name=definition.name, version=version, digest=definition.digest,
                        source=definition.source, created_at=self.clock.now(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            else:
                def_id, version = row
        info = DefinitionVersion(def_id, definition.name, version, definition.digest)
        self._lifecycles[def_id] = compiled
        self._versions[def_id] = info
        self._current[definition.name] = def_id
        return info

    def lifecycle(self, name: str) -> Lifecycle:
        """The compiled current version of lifecycle ``name`` (deploying the bundled one if new)."""
        return self._lifecycles[self._current_id(name)]

    def _current_id(self, name: str) -> int:
        if name not in self._current:
            with self._read() as conn:
                newest = conn.execute(
                    select(definitions.c.id).where(definitions.c.name == name)
                    .order_by(definitions.c.version.desc()).limit(1)
                ).scalar()
                if newest is not None:
                    self._lifecycle_by_id(conn, newest)
                    self._current[name] = newest
            if newest is None:
                self.deploy(name)  # first use: deploy the bundled lifecycle of that name
        return self._current[name]

    def _lifecycle_by_id(self, conn: Connection, def_id: int) -> Lifecycle:
        compiled = self._lifecycles.get(def_id)
        if compiled is None:
            row = conn.execute(
                select(definitions).where(definitions.c.id == def_id)
            ).mappings().one()
            from engine.definition.loader import parse_definition

            definition = parse_definition(row["source"], file=f"<{row['name']} v{row['version']}>")
            compiled = Lifecycle(definition, self.registry, strict=False)
            self._lifecycles[def_id] = compiled
            self._versions[def_id] = DefinitionVersion(def_id, row["name"], row["version"],
                                                       row["digest"])
        return compiled

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply the commands issued inside this block in one transaction (for replays, imports).

        Each command still runs in its own savepoint: a refused command rolls back alone and
        the batch goes on. The whole batch commits at the end of the block (or rolls back if
        the block raises). Not shared across threads.
        """
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        try:
            with self.db.write() as conn:
                self._local.conn = conn
                self._local.pending = []
                # issue 7: SQLite batches hold the write lock (engine/runtime/batching.py)
                self._local.floor = DueFloor() if self.db.dialect == "sqlite" else None
                try:
                    yield
                finally:
                    self._local.conn = None
                    self._local.floor = None
        except BaseException:
            self._local.wake = None
            self._local.pending = []
            raise
        self._flush_wake()
        self._committed()

    @contextmanager
    def _tx(self, *, lean: bool = False) -> Iterator[Connection]:
        """The command's transaction; inside a batch, its savepoint.

        ``lean``: the command raises every refusal before its first write, so inside a SQLite
        batch it may run without a savepoint (see :func:`engine.runtime.batching.lean_command`).
        """
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            pending: list[Change] = self._local.pending
            mark = len(pending)
            try:
                if lean and getattr(self._local, "floor", None) is not None:
                    with lean_command(conn.connection.dbapi_connection):
                        yield conn
                    return
                with conn.begin_nested():
                    yield conn
            except BaseException:
                del pending[mark:]  # the savepoint's changes were rolled back
                raise
        else:
            self._local.pending = []
            try:
                with self.db.write() as new:
                    yield new
            except BaseException:
                self._local.wake = None
                self._local.pending = []
                raise
            self._flush_wake()
            self._committed()

    def _flush_wake(self) -> None:
        """After a commit: arm the scheduler for the earliest timer the transaction created."""
        due = getattr(self._local, "wake", None)
        self._local.wake = None
        if due is not None and self._scheduler is not None:
            self._scheduler.wake_at(due)

    def _committed(self) -> None:
        """After a commit: hand the committed changes to participants with ``after_commit``."""
        pending: list[Change] = getattr(self._local, "pending", None) or []
        self._local.pending = []
        if not pending:
            return
        for participant in self._participants:
            hook = getattr(participant, "after_commit", None)
            if hook is not None:
                hook(pending)

    # -- compound commands (issue 4: work orders) -------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[Connection]:
        """Apply several commands as one: all of them commit, or none does.

        Inside a :meth:`batch` the block is one savepoint (a refusal rolls back the block
        alone); otherwise it is one transaction. Engine services that issue several commands
        (dispatching work orders, a joint meeting) use it.
        """
        with self.batch(), self._tx() as conn:
            yield conn

    @contextmanager
    def within(self, conn: Connection) -> Iterator[None]:
        """Issue commands inside ``conn``'s open transaction (for participants).

        A participant's ``on_change`` receives the command's connection; commands it issues
        in this block (e.g. resolving a parent ticket, issuing a fallback work order) run as
        savepoints of that same transaction and commit or roll back with it.
        """
        saved = getattr(self._local, "conn", None)
        self._local.conn = conn
        if getattr(self._local, "pending", None) is None:
            self._local.pending = []
        try:
            yield
        finally:
            self._local.conn = saved

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
        else:
            with self.db.read() as new:
                yield new

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
    ) -> Ticket:
        """Create a ticket in the lifecycle's initial state.

        Args:
            lifecycle: the lifecycle name (its newest deployed version valid now is used; see
                :mod:`engine.timing.validity`).
            fields: ticket fields (``required`` ones must be present).
            actor: who reports; the role must be in the lifecycle's ``report.roles``.
            ticket_id: the id to use (up to 64 characters); generated when omitted.
            level: initial whistle level (default: the lowest).
            reason: free text kept in history.
            idempotency_key: names this command (1 to 128 characters); sending the same
                report again with the same key returns the first result and creates nothing
                (see :mod:`engine.runtime.idempotency`).

        Returns:
            The new ticket.

        Raises:
            RoleNotAllowed, TicketExists, InvalidFields: nothing was created.
            IdempotencyKeyReused: the key was used for another command; nothing was created.
            ValueError: the idempotency key is empty or longer than 128 characters.
        """
        def_id = version_valid_at(self, lifecycle, self._current_id(lifecycle), self.clock.now())
        content = dict(lifecycle=lifecycle, fields=fields, actor=[actor.id, actor.role],
                       ticket_id=ticket_id, level=level, reason=reason)
        return self._keyed(idempotency_key, "report", content, lambda conn: self._report(
            conn, def_id, fields, actor, ticket_id, level, reason))

    def _report(
        self, conn: Connection, def_id: int, fields: dict[str, Any], actor: Actor,
        ticket_id: str | None, level: str | None, reason: str | None,
    ) -> Ticket:
        lc = self._lifecycles[def_id]
        tid = ticket_id or uuid.uuid4().hex
        if not 0 < len(tid) <= MAX_TICKET_ID:
            raise InvalidFields(tid[:MAX_TICKET_ID], {
                "ticket_id": f"must be 1 to {MAX_TICKET_ID} characters, got {len(tid)}"})
        if actor.role not in lc.spec.report.roles:
            from engine.errors import RoleNotAllowed

            raise RoleNotAllowed(tid, "(new)", "report", actor.role, lc.spec.report.roles)
        level = level or lc.levels[0]
        if level not in lc.levels:
            raise InvalidFields(tid, {"level": f"unknown level {level!r}; levels: "
                                      f"{', '.join(lc.levels)}"})
        stored, errors = check_fields(lc.spec.fields, fields, require=True)
        if errors:
            raise InvalidFields(tid, errors)
        stored = {k: v for k, v in stored.items() if v is not None}
        now = self.clock.now()
        state = lc.spec.initial
        exists = fast.fetch_one(conn, S.TICKET_EXISTS, {"b_id": tid})
        if exists is not None:
            raise TicketExists(tid)
        fast.execute(conn, S.INSERT_TICKET, dict(
            id=tid, definition_id=def_id, state=state, level=level, fields=stored,
            overdue=False, created_at=now, updated_at=now, row_version=1,
        ))
        report_row = dict(
            ticket_id=tid, seq=1, at=now, kind="report", trigger="report",
            from_state=None, to_state=state, from_level=None, to_level=level,
            actor=actor.id, role=actor.role, reason=reason,
            data={"fields": stored} if stored else None,  # replayable: see runtime/impact.py
        )
        fast.execute(conn, S.INSERT_HISTORY, report_row)
        new_timers = timers_on_entry(lc, tid, state, stored, now, report=True)
        if new_timers:
            fast.execute(conn, S.INSERT_TIMERS, new_timers)
        self._announce(conn, lc, [report_row], stored)
        self._notify_timers(new_timers)
        return self._snapshot(lc, def_id, tid, state, level, stored, False, now, now, 1)

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
            idempotency_key: names this command (1 to 128 characters); sending it again with
                the same key returns the first result and applies nothing.

        Returns:
            The ticket after the transition.

        Raises:
            TicketNotFound, TriggerNotAllowed, RoleNotAllowed, GuardRejected, InvalidFields,
            HostCallbackFailed, TopLevelReached, IdempotencyKeyReused: refused; nothing
            changed.
            ConcurrencyConflict: another command changed the ticket first (or since
                ``expected_version``); reload and retry.
            ValueError: the idempotency key is empty or longer than 128 characters.
        """
        content = dict(ticket_id=ticket_id, trigger=trigger, actor=[actor.id, actor.role],
                       reason=reason, fields=fields or {})
        return self._keyed(idempotency_key, "fire", content, lambda conn: self._apply(
            conn, ticket_id, trigger, actor, reason, fields or {},
            expected_version=expected_version))

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
        def run(conn: Connection) -> Ticket:
            row = self._load(conn, ticket_id)
            lc = self._lifecycle_by_id(conn, row["definition_id"])
            return self._apply(conn, ticket_id, lc.spec.escalation_trigger, actor, reason, {},
                               row=row, expected_version=expected_version)

        content = dict(ticket_id=ticket_id, actor=[actor.id, actor.role], reason=reason)
        return self._keyed(idempotency_key, "escalate", content, run)

    def _keyed(
        self, key: str | None, command: str, content: dict[str, Any],
        run: Callable[[Connection], Ticket],
    ) -> Ticket:
        """Run a command in its transaction, honouring its idempotency key if it has one."""
        if key is None:
            with self._tx(lean=True) as conn:
                return run(conn)
        idem.check_key(key)
        digest = idem.command_digest(command, content)
        try:
            with self._tx() as conn:
                first = idem.lookup(conn, key, command, digest)
                if first is not None:
                    return self._from_result(conn, first)
                ticket = run(conn)
                idem.record(conn, key, command, digest, ticket.id, self._result(ticket),
                            self.clock.now())
                return ticket
        except (IntegrityError, ConcurrencyConflict):
            # Another caller may have committed the same key first: its ticket update (or
            # the key's insert) beat ours. Then its result is ours too.
            with self._read() as conn:
                first = idem.lookup(conn, key, command, digest)
                if first is None:
                    raise
                return self._from_result(conn, first)

    def _result(self, ticket: Ticket) -> dict[str, Any]:
        def_id = next(i for i, v in self._versions.items()
                      if (v.name, v.version) == (ticket.lifecycle, ticket.version))
        fields = {k: v.isoformat() if isinstance(v, datetime) else v
                  for k, v in ticket.fields.items()}
        return dict(definition_id=def_id, id=ticket.id, state=ticket.state, level=ticket.level,
                    fields=fields, overdue=ticket.overdue,
                    created_at=ticket.created_at.isoformat(),
                    updated_at=ticket.updated_at.isoformat(), row_version=ticket.row_version)

    def _from_result(self, conn: Connection, r: dict[str, Any]) -> Ticket:
        lc = self._lifecycle_by_id(conn, r["definition_id"])
        return self._snapshot(lc, r["definition_id"], r["id"], r["state"], r["level"],
                              r["fields"], r["overdue"], datetime.fromisoformat(r["created_at"]),
                              datetime.fromisoformat(r["updated_at"]), r["row_version"])

    def _apply(
        self,
        conn: Connection,
        ticket_id: str,
        trigger: str,
        actor: Actor,
        reason: str | None,
        field_updates: dict[str, Any],
        *,
        row: Any = None,
        extra_history: list[dict[str, Any]] | None = None,
        now: datetime | None = None,
        expected_version: int | None = None,
    ) -> Ticket:
        row = row if row is not None else self._load(conn, ticket_id)
        if expected_version is not None and row["row_version"] != expected_version:
            raise ConcurrencyConflict(ticket_id, expected_version, row["row_version"])
        def_id = row["definition_id"]
        lc = self._lifecycle_by_id(conn, def_id)
        source = row["state"]
        candidates = lc.check(ticket_id, source, trigger, actor.role)
        if any(t.reason_required for t in candidates) and not (reason and reason.strip()):
            raise InvalidFields(ticket_id, {"reason": f"trigger {trigger!r} requires a reason"})
        level = row["level"]
        new_level = level
        if trigger == lc.spec.escalation_trigger:
            above = lc.next_level(level)
            if above is None:
                raise TopLevelReached(ticket_id, level)
            new_level = above
        updates, errors = check_fields(lc.spec.fields, field_updates, require=False)
        if errors:
            raise InvalidFields(ticket_id, errors)
        merged = dict(row["fields"])
        merged.update(updates)
        merged = {k: v for k, v in merged.items() if v is not None}
        now = now or self.clock.now()
        ctx = CommandContext(
            ticket_id=ticket_id, trigger=trigger, source=source, dest="", level=new_level,
            fields=load_fields(lc.spec.fields, merged), actor=actor.id, role=actor.role,
            reason=reason, now=now,
        )
        dest = lc.fire(Subject(source), ctx)

        version = row["row_version"]
        rows = list(extra_history or [])
        rows.append(dict(
            ticket_id=ticket_id, at=now, kind="transition", trigger=trigger,
            from_state=source, to_state=dest, from_level=level, to_level=new_level,
            actor=actor.id, role=actor.role, reason=reason,
            data={"fields": updates} if updates else None,
        ))
        for i, h in enumerate(rows, start=1):
            h["seq"] = version + i
        new_version = version + len(rows)
        overdue = bool(row["overdue"]) or any(h.get("_overdue") for h in rows)
        for h in rows:
            h.pop("_overdue", None)
        changed = fast.execute(conn, S.UPDATE_TICKET, dict(
            b_id=ticket_id, b_version=version, b_state=dest, b_level=new_level,
            b_fields=merged, b_now=now, b_new_version=new_version, b_overdue=overdue,
        ))
        if changed != 1:
            actual = conn.execute(S.TICKET_VERSION, {"b_id": ticket_id}).scalar()
            raise ConcurrencyConflict(ticket_id, version, actual)
        fast.execute(conn, S.INSERT_HISTORY, rows)
        cancel_on_exit(conn, lc, ticket_id, source, dest)
        new_timers = timers_on_entry(lc, ticket_id, dest, merged, now, report=False)
        new_timers += reschedule_field_deadlines(conn, lc, ticket_id, dest, updates, now)
        if new_timers:
            fast.execute(conn, S.INSERT_TIMERS, new_timers)
        self._announce(conn, lc, rows, merged)
        self._notify_timers(new_timers)
        return self._snapshot(lc, def_id, ticket_id, dest, new_level, merged, overdue,
                              row["created_at"], now, new_version)

    # -- versions ---------------------------------------------------------------------------

    def migrate(
        self,
        lifecycle: str,
        ticket_ids: Sequence[str] | None = None,
        *,
        version: int | None = None,
        state_map: dict[str, str] | None = None,
        actor: Actor = SYSTEM,
        reason: str | None = None,
    ) -> list[Ticket]:
        """Move tickets of ``lifecycle`` to another deployed version, recomputing deadlines.

        See :mod:`engine.runtime.versioning` for what a move does. All chosen tickets move in
        one transaction, or none does.

        Args:
            lifecycle: the lifecycle name.
            ticket_ids: the tickets to move; default: every ticket of the lifecycle that is
                on another version and not in a final state.
            version: the target version number (default: the newest deployed).
            state_map: old state name → new state name, for states renamed or removed.
            actor: who moves them (recorded in history; default the system).
            reason: free text kept in history.

        Returns:
            The moved tickets (a ticket already on the target version is returned unchanged).

        Raises:
            ConfigurationError: no such lifecycle version.
            TicketNotFound: a ticket does not exist.
            MigrationRefused: a ticket's state, level or fields do not fit the target version,
                or it belongs to another lifecycle; nothing was moved.
            ConcurrencyConflict: a ticket changed meanwhile; nothing was moved.
        """
        from engine.runtime.versioning import move_tickets

        with self._tx() as conn:
            moved, created = move_tickets(self, conn, lifecycle, ticket_ids, version,
                                          state_map or {}, actor, reason)
        self._notify_timers(created)
        return moved

    def impact(self, new: Definition, *, until: datetime | None = None) -> list[TicketImpact]:
        """What ``new`` would change for the stored tickets of its lifecycle (dry run).

        Replays the stored history on each ticket's current version and on ``new`` in
        throw-away stores and compares them (see :mod:`engine.runtime.impact`). Nothing in
        this engine's store changes.

        Args:
            new: the candidate version (e.g. ``load_definition("new.yaml")``).
            until: run both replays to this instant (default: this engine's ``now``).

        Returns:
            One :class:`TicketImpact` per ticket, by id.
        """
        from engine.runtime.impact import impact_of

        return impact_of(self, new, until=until)

    def compare(self, other: Engine) -> list[TicketImpact]:
        """Compare the tickets of this store (before) with those of ``other`` (after), by id."""
        from engine.runtime.impact import compare_stores

        return compare_stores(self, other)

    # -- timers -----------------------------------------------------------------------------

    def add_participant(self, participant: Participant) -> None:
        """Register an in-transaction participant (see :mod:`engine.runtime.changes`)."""
        self._participants.append(participant)

    def _announce(
        self, conn: Connection, lc: Lifecycle, rows: list[dict[str, Any]], fields: dict[str, Any]
    ) -> None:
        if not self._participants:
            return
        changes = changes_from_rows(lc, rows, fields)
        for change in changes:
            for participant in self._participants:
                participant.on_change(conn, change)
        pending = getattr(self._local, "pending", None)
        if pending is not None:
            pending.extend(changes)

    def _saw_execute(
        self, conn: Any, clause: Any, multiparams: Any, params: Any, options: Any
    ) -> None:
        """SQLAlchemy ``before_execute`` hook: notice every ``S.INSERT_TIMERS`` execution."""
        if clause is not S.INSERT_TIMERS:
            return
        rows: list[dict[str, Any]] = []
        for item in (*multiparams, params):
            if isinstance(item, dict) and "due_at" in item:
                rows.append(item)
            elif isinstance(item, list | tuple):
                rows.extend(r for r in item if isinstance(r, dict) and "due_at" in r)
        self._notify_timers(rows)

    def _notify_timers(self, new_timers: list[dict[str, Any]]) -> None:
        """Remember the earliest new due time; the scheduler is armed once the tx commits."""
        if not new_timers:
            return
        earliest = min(t["due_at"] for t in new_timers)
        floor: DueFloor | None = getattr(self._local, "floor", None)
        if floor is not None:
            floor.lower(earliest)
        if self._scheduler is not None:
            pending = getattr(self._local, "wake", None)
            self._local.wake = earliest if pending is None else min(pending, earliest)

    def next_due(self) -> datetime | None:
        """The earliest due time of a pending timer, or None (aware UTC).

        A timer another engine holds a claim on counts from the end of that claim's lease,
        when this engine may take it over (see :mod:`engine.runtime.claims`).
        """
        with self._read() as conn:
            return self._claims.next_due(conn)

    def run_due(self, now: datetime | None = None) -> list[FiredTimer]:
        """Claim and fire every pending timer that is due strictly before ``now``.

        The rule for ties: a deadline due at instant *t* is met by a command at *t*; it is
        breached only once the clock is past *t*. Due timers are claimed in chunks under a
        lease (:mod:`engine.runtime.claims`), and each chunk is fired in one transaction,
        each timer in its own savepoint (as in :meth:`batch`); taking a timer is a
        conditional update from ``pending`` to ``fired``, so a timer fires once even with
        several engines. The ticket's state is re-checked in that transaction; a timer whose
        ticket has moved on is marked ``stale`` and does nothing. Timers another live engine
        has claimed are left to it.

        Args:
            now: the instant to fire up to (aware UTC); default: the engine's clock.

        Returns:
            What happened to each timer, in due order.
        """
        return self._run_due(now or self.clock.now(), inclusive=False)

    def _run_due(self, now: datetime, *, inclusive: bool) -> list[FiredTimer]:
        done: list[FiredTimer] = []
        floor: DueFloor | None = getattr(self._local, "floor", None)
        while True:
            with self._tx(lean=True) as conn:
                due = self._claims.claim_due(conn, now, inclusive=inclusive,
                                             limit=_RUN_DUE_BATCH)
            if not due:
                return done
            if floor is not None:
                floor.mark()
            with self.batch():  # issue 7: one transaction per claimed chunk, a savepoint each
                for timer_row in due:
                    with self._tx(lean=True) as conn:
                        outcome = self._fire_timer(conn, timer_row, now)
                    if outcome is not None:
                        done.append(outcome)
            if (floor is not None and len(due) < _RUN_DUE_BATCH
                    and not floor.created_due_by(now)):
                return done  # inside a SQLite batch: all that was due is fired (batching.py)

    def run_until(self, until: datetime) -> list[FiredTimer]:
        """Move a :class:`~engine.clock.VirtualClock` to ``until``, firing timers on the way.

        Each timer due before ``until`` fires at its own due instant, in due order, so a
        breach's consequences (an escalation and its new deadline) start when they would have
        in real time. Timers due exactly at ``until`` do not fire yet: commands at ``until``
        come first (see :meth:`run_due` for the tie rule).

        Raises:
            TypeError: the engine's clock is not a VirtualClock.
        """
        from engine.clock import VirtualClock

        if not isinstance(self.clock, VirtualClock):
            raise TypeError("run_until needs a VirtualClock; with the system clock use start()")
        done: list[FiredTimer] = []
        floor: DueFloor | None = getattr(self._local, "floor", None)
        while True:
            if floor is not None and floor.nothing_due_before(until):
                break  # inside a SQLite batch: nothing can be due yet (runtime/batching.py)
            nxt = self.next_due()
            if floor is not None:
                floor.set(nxt)
            if nxt is None or nxt >= until:
                break
            self.clock.set(max(nxt, self.clock.now()))
            done.extend(self._run_due(self.clock.now(), inclusive=True))
        self.clock.set(until)
        return done

    def _fire_timer(self, conn: Connection, timer_row: Any, now: datetime) -> FiredTimer | None:
        if not self._claims.take(conn, timer_row["ticket_id"], timer_row["id"], now):
            return None  # cancelled, or fired by a worker that took the claim over
        timer = _timer(dict(timer_row) | {"status": "fired", "fired_at": now})
        row = self._load(conn, timer.ticket_id)
        lc = self._lifecycle_by_id(conn, row["definition_id"])
        if is_extension_timer(timer.name):  # SLA clocks, ladder budgets, lags: engine/timing
            return fire_extension_timer(self, conn, timer, row, lc, now)
        spec = lc.spec.deadlines.get(timer.name)
        state = row["state"]
        moved_on = (
            spec is None
            or (timer.state is not None and timer.state != state)
            or (timer.state is None and (state in (spec.stop_in or ()) or state in lc.final_states))
        )
        if moved_on:
            fast.execute(conn, S.MARK_TIMER, {"b_id": timer.id, "b_status": "stale"})
            return FiredTimer(_timer(dict(timer_row) | {"status": "stale", "fired_at": now}),
                              "stale")
        assert spec is not None
        makes_overdue = (lc.spec.resolution_deadline in (None, timer.name))
        breach = dict(
            ticket_id=timer.ticket_id, at=now, kind="breach", trigger=timer.name,
            from_state=state, to_state=state, from_level=row["level"], to_level=row["level"],
            actor=SYSTEM.id, role=SYSTEM.role,
            reason=f"deadline {timer.name!r} due {timer.due_at.isoformat()} was missed",
            data={"due_at": timer.due_at.isoformat(), "timer_id": timer.id,
                  "on_breach": spec.on_breach},
            _overdue=makes_overdue,
        )
        escalation = lc.spec.escalation_trigger
        can_escalate = (
            spec.on_breach == "escalate"
            and lc.next_level(row["level"]) is not None
            and any(SYSTEM.role in t.roles for t in lc.transitions_for(state, escalation))
        )
        refusal: str | None = None
        if can_escalate:
            try:
                self._apply(conn, timer.ticket_id, escalation, SYSTEM,
                            f"deadline {timer.name!r} breached", {}, row=row,
                            extra_history=[breach], now=now)
                return FiredTimer(timer, "escalated")
            except CommandRefused as exc:
                # e.g. a host guard on the escalation said no: the breach is still recorded
                # (refusals raise before anything is written), and other timers go on.
                refusal = str(exc)
        outcome = "breached" if spec.on_breach == "record" or refusal else "top_level"
        if refusal:
            breach["data"] = {**breach["data"], "escalation_refused": refusal}
        breach.pop("_overdue")
        breach["seq"] = row["row_version"] + 1
        changed = fast.execute(conn, S.UPDATE_TICKET, dict(
            b_id=timer.ticket_id, b_version=row["row_version"], b_state=state,
            b_level=row["level"], b_fields=row["fields"], b_now=now,
            b_new_version=row["row_version"] + 1,
            b_overdue=bool(row["overdue"]) or makes_overdue,
        ))
        if changed != 1:
            actual = conn.execute(S.TICKET_VERSION, {"b_id": timer.ticket_id}).scalar()
            raise ConcurrencyConflict(timer.ticket_id, row["row_version"], actual)
        fast.execute(conn, S.INSERT_HISTORY, breach)
        self._announce(conn, lc, [breach], row["fields"])
        return FiredTimer(timer, outcome)

    # -- reads ------------------------------------------------------------------------------

    def _load(self, conn: Connection, ticket_id: str) -> Any:
        row = fast.fetch_one(conn, S.SELECT_TICKET, {"b_id": ticket_id})
        if row is None:
            raise TicketNotFound(ticket_id)
        return row

    def _snapshot(
        self, lc: Lifecycle, def_id: int, tid: str, state: str, level: str,
        fields: dict[str, Any], overdue: bool, created: datetime, updated: datetime,
        row_version: int,
    ) -> Ticket:
        info = self._versions[def_id]
        return Ticket(tid, info.name, info.version, state, level,
                      load_fields(lc.spec.fields, fields), bool(overdue), created, updated,
                      row_version)

    def get(self, ticket_id: str) -> Ticket:
        """Read a ticket as stored.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self._read() as conn:
            row = self._load(conn, ticket_id)
            lc = self._lifecycle_by_id(conn, row["definition_id"])
        return self._snapshot(lc, row["definition_id"], row["id"], row["state"], row["level"],
                              row["fields"], row["overdue"], row["created_at"],
                              row["updated_at"], row["row_version"])

    def history(self, ticket_id: str) -> list[HistoryEntry]:
        """The ticket's history, oldest first.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self._read() as conn:
            self._load(conn, ticket_id)
            rows = conn.execute(
                select(history).where(history.c.ticket_id == ticket_id).order_by(history.c.seq)
            ).mappings().all()
        return [
            HistoryEntry(r["seq"], r["at"], r["kind"], r["trigger"], r["from_state"],
                         r["to_state"], r["from_level"], r["to_level"], r["actor"], r["role"],
                         r["reason"], r["data"] or {})
            for r in rows
        ]

    def timers(self, ticket_id: str | None = None, *, status: str | None = None) -> list[Timer]:
        """Timers, by due time; optionally of one ticket and/or one status.

        Raises:
            TicketNotFound: ``ticket_id`` is given and no such ticket exists.
        """
        query = select(timers).order_by(timers.c.due_at, timers.c.id)
        if ticket_id is not None:
            query = query.where(timers.c.ticket_id == ticket_id)
        if status is not None:
            query = query.where(timers.c.status == status)
        with self._read() as conn:
            if ticket_id is not None:
                self._load(conn, ticket_id)
            return [_timer(r) for r in conn.execute(query).mappings().all()]

    def sla_clocks(self, ticket_id: str) -> list[SlaClock]:
        """The ticket's SLA clocks, by name (see :mod:`engine.sla.clocks`).

        Raises:
            TicketNotFound: no such ticket.
        """
        from engine.sla import clocks_of

        with self._read() as conn:
            self._load(conn, ticket_id)
            return clocks_of(conn, ticket_id)

    def ladder(self, ticket_id: str) -> LadderPosition | None:
        """The ticket's level, handler role, budget and acknowledgement.

        None when its lifecycle's levels name no handler and no budget.

        Raises:
            TicketNotFound: no such ticket.
        """
        from engine.ladder import ladder_position

        with self._read() as conn:
            self._load(conn, ticket_id)
            return ladder_position(conn, ticket_id)

    def summary(self, lifecycle: str, *, verdict_field: str | None = None) -> Summary:
        """Figures over every ticket of lifecycle ``lifecycle`` (all its versions).

        Args:
            lifecycle: the lifecycle name.
            verdict_field: a ticket field holding a source system's verdict, to pair with the
                engine's overdue flag in ``Summary.verdict_pairs``.
        """
        lc = self.lifecycle(lifecycle)
        with self._read() as conn:
            return summarize(conn, lifecycle, final_states=lc.final_states,
                             escalation_trigger=lc.spec.escalation_trigger, levels=lc.levels,
                             verdict_field=verdict_field)

    def check_invariants(self, ticket_ids: list[str] | None = None) -> list[Violation]:
        """Check that every ticket's state, level and timers agree with its history.

        See :mod:`engine.runtime.invariants` for the rules. Returns the violations (empty
        when all hold), by ticket id.
        """
        with self._read() as conn:
            return check_invariants(conn, lambda def_id: self._lifecycle_by_id(conn, def_id),
                                    ticket_ids=ticket_ids)

    def versions(self) -> list[DefinitionVersion]:
        """Every deployed lifecycle version, by name then version."""
        with self._read() as conn:
            rows = conn.execute(
                select(definitions.c.id, definitions.c.name, definitions.c.version,
                       definitions.c.digest).order_by(definitions.c.name, definitions.c.version)
            ).all()
        return [DefinitionVersion(*r) for r in rows]


def _timer(r: Any) -> Timer:
    return Timer(r["id"], r["ticket_id"], r["name"], r["state"], r["due_at"], r["status"],
                 r["fired_at"])


