"""The kernel: the runtime's parts composed, and the commands' entry points.

:class:`Kernel` owns one engine's definition catalog, unit of work, command handler, timer
claims and dispatcher. The public :class:`~engine.Engine` is a thin facade over it; services
that issue commands (departments, periodic work, version moves) are given the kernel, never
the engine's internals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock
from engine.definition.loader import Definition
from engine.errors import ConcurrencyConflict
from engine.lifecycle.machine import Lifecycle
from engine.lifecycle.registry import Registry
from engine.runtime import idempotency as idem
from engine.runtime.catalog import Catalog
from engine.runtime.commands import CommandHandler, evidence_copy
from engine.runtime.dispatcher import TimerDispatcher
from engine.runtime.fields import load_fields
from engine.runtime.model import Actor, DefinitionVersion, FiredTimer, Ticket
from engine.runtime.participant import Participant, Unit
from engine.runtime.unit_of_work import AfterCommitExecutor, UnitOfWork
from engine.runtime.working import TicketRecord
from engine.store.claims import TimerClaims
from engine.store.database import Database
from engine.validation import Limits, check_escalate, check_fire, check_report

__all__ = ["HasKernel", "Kernel"]


class HasKernel(Protocol):
    """Anything that carries a kernel (the public Engine does)."""

    @property
    def kernel(self) -> Kernel:
        """The kernel."""


class Kernel:
    """One engine's runtime (see the module docstring).

    Args:
        db: the database.
        clock: where ``now`` comes from.
        registry: the host's guards, actions and listeners.
        worker_id: this engine's name when claiming timers.
        lease: how long a claim on a due timer holds.
        timers_per_transaction: timers fired per transaction outside a batch.
        limits: the sizes every command's inputs are checked against at the edge
            (:mod:`engine.validation`).
    """

    def __init__(self, db: Database, clock: Clock, registry: Registry, *, worker_id: str,
                 lease: timedelta, timers_per_transaction: int = 20,
                 limits: Limits | None = None):
        self.db = db
        self.limits = limits or Limits()
        self.clock = clock
        self.registry = registry
        self.catalog = Catalog(registry)
        self.executor = AfterCommitExecutor()
        self.wake: Callable[[datetime], None] | None = None
        self.uow = UnitOfWork(db, lambda: self.handler.participants, self._committed,
                              self.executor)
        self.handler = CommandHandler(self.uow, self.catalog, clock, worker_id,
                                      text_length=self.limits.text_length)
        self.handler.ensure = self.ensure
        self.claims = TimerClaims(worker_id, lease)
        self.dispatcher = TimerDispatcher(self.uow, self.handler, self.claims,
                                          per_transaction=timers_per_transaction)
        self._deploy_lock = threading.Lock()

    def _committed(self, earliest: datetime | None) -> None:
        wake = self.wake
        if earliest is not None and wake is not None:
            wake(earliest)

    # -- participants ---------------------------------------------------------------------

    def add_participant(self, participant: Participant) -> None:
        """Register a participant (see :mod:`engine.runtime.participant`)."""
        self.handler.add(participant)

    @property
    def participants(self) -> Sequence[Participant]:
        """The registered participants, in the order they run."""
        return tuple(self.handler.participants)

    # -- definitions ----------------------------------------------------------------------

    def deploy(self, lifecycle: str | Path | Definition) -> DefinitionVersion:
        """Register a lifecycle version (see :meth:`engine.Engine.deploy`).

        Raises:
            UnknownDefinition, DefinitionError: the lifecycle cannot be loaded or names a
                callback the registry lacks.
        """
        definition, compiled = self.catalog.compile(
            str(lifecycle) if isinstance(lifecycle, Path) else lifecycle)
        with self._deploy_lock, self.uow.transaction():
            return self.uow.query(lambda conn: self.catalog.store(
                conn, definition, compiled, self.clock.now(), on_insert=self.uow.on_rollback))

    @contextmanager
    def deploying(self, definition: Definition, compiled: Lifecycle
                  ) -> Iterator[DefinitionVersion]:
        """Deploy a compiled version for the block only, inside the open transaction.

        The version is stored under a savepoint: it stays when the block ends normally and
        the transaction commits; when the block raises, the savepoint is rolled back and
        the engine forgets the version (inside a batch too), and when the transaction rolls
        back later, the engine forgets it then. ``Engine.migrate`` deploys with it, so that
        a refused migration deploys nothing.

        Raises:
            RuntimeError: no transaction is open on this thread.
        """
        self.uow.flush()  # what the transaction staged before is not the block's to undo
        conn = self.uow.conn
        undo: list[Callable[[], None]] = []

        def keep(forget: Callable[[], None]) -> None:
            undo.append(forget)
            self.uow.on_rollback(forget)

        savepoint = conn.begin_nested()
        try:
            with self._deploy_lock:
                info = self.catalog.store(conn, definition, compiled, self.clock.now(),
                                          on_insert=keep)
            yield info
        except BaseException:
            savepoint.rollback()
            for forget in undo:
                forget()
            raise
        savepoint.commit()

    def ensure(self, name: str) -> int:
        """The id of the newest deployed version of ``name``, deploying the bundled one first.

        Raises:
            UnknownDefinition: never deployed, and no bundled lifecycle has that name.
        """
        current = self.catalog.cached_current(name)
        if current is not None:
            return current
        with self.uow.reading() as conn:
            current = self.catalog.current_id(conn, name)
        if current is None:
            current = self.deploy(name).id
        return current

    def lifecycle(self, name: str) -> Lifecycle:
        """The compiled current version of lifecycle ``name`` (deploying the bundled one)."""
        def_id = self.ensure(name)
        with self.uow.reading() as conn:
            return self.catalog.by_id(conn, def_id)

    def lifecycle_by_id(self, def_id: int) -> Lifecycle:
        """The compiled version ``def_id`` (compiled from the store on first use)."""
        known = self.catalog.known(def_id)
        if known is not None:
            return known
        with self.uow.reading() as conn:
            return self.catalog.by_id(conn, def_id)

    # -- commands -------------------------------------------------------------------------

    def report(self, lifecycle: str, fields: dict[str, Any], *, actor: Actor,
               ticket_id: str | None = None, level: str | None = None,
               reason: str | None = None, idempotency_key: str | None = None,
               evidence: Sequence[Mapping[str, Any]] | None = None,
               foreign_departments: bool = False) -> Ticket:
        """Report a ticket (see :meth:`engine.Engine.report`).

        ``lifecycle`` may also be the path of a YAML file: it is deployed and used by name.
        """
        check_report(self.limits, actor=actor, fields=fields, ticket_id=ticket_id,
                     reason=reason, idempotency_key=idempotency_key)
        if _is_file(lifecycle):
            lifecycle = self.deploy(lifecycle).name
        self.ensure(lifecycle)
        content: dict[str, Any] = {"lifecycle": lifecycle, "fields": fields,
                                   "actor": [actor.id, actor.role], "ticket_id": ticket_id,
                                   "level": level, "reason": reason}
        if evidence:
            content["evidence"] = evidence_copy(evidence)
        return self._keyed(idempotency_key, "report", content, actor, lambda: self.handler.report(
            lifecycle, fields, actor=actor, ticket_id=ticket_id, level=level, reason=reason,
            evidence=evidence, foreign_departments=foreign_departments))

    def fire(self, ticket_id: str, trigger: str, *, actor: Actor, reason: str | None = None,
             fields: dict[str, Any] | None = None, expected_version: int | None = None,
             idempotency_key: str | None = None,
             evidence: Sequence[Mapping[str, Any]] | None = None,
             foreign_departments: bool = False) -> Ticket:
        """Fire a trigger (see :meth:`engine.Engine.fire`)."""
        check_fire(self.limits, ticket_id=ticket_id, trigger=trigger, actor=actor,
                   fields=fields, reason=reason, idempotency_key=idempotency_key)
        if idempotency_key is None and self.uow.active:
            # the common case inside a batch (what _keyed does without a key, less the
            # closure and the digest's content built for it)
            return self.handler.snapshot(self.handler.fire(
                ticket_id, trigger, actor=actor, reason=reason, fields=fields,
                expected_version=expected_version, evidence=evidence,
                foreign_departments=foreign_departments))
        content: dict[str, Any] = {}  # the digest's content: for a keyed command only
        if idempotency_key is not None:
            content = {"ticket_id": ticket_id, "trigger": trigger,
                       "actor": [actor.id, actor.role], "reason": reason,
                       "fields": fields or {}}
            if evidence:
                content["evidence"] = evidence_copy(evidence)
        return self._keyed(idempotency_key, "fire", content, actor, lambda: self.handler.fire(
            ticket_id, trigger, actor=actor, reason=reason, fields=fields,
            expected_version=expected_version, evidence=evidence,
            foreign_departments=foreign_departments))

    def escalate(self, ticket_id: str, *, actor: Actor, reason: str,
                 expected_version: int | None = None,
                 idempotency_key: str | None = None) -> Ticket:
        """Fire the lifecycle's escalation trigger (see :meth:`engine.Engine.escalate`)."""
        check_escalate(self.limits, ticket_id=ticket_id, actor=actor, reason=reason,
                       idempotency_key=idempotency_key)
        def run() -> TicketRecord:
            trigger = self.handler.ticket(ticket_id).lifecycle.spec.escalation_trigger
            return self.handler.fire(ticket_id, trigger, actor=actor, reason=reason,
                                     expected_version=expected_version)

        content = {"ticket_id": ticket_id, "actor": [actor.id, actor.role], "reason": reason}
        return self._keyed(idempotency_key, "escalate", content, actor, run)

    def _keyed(self, key: str | None, command: str, content: dict[str, Any], actor: Actor,
               run: Callable[[], TicketRecord]) -> Ticket:
        """Run a command in its transaction, honouring its idempotency key if it has one."""
        if key is None:
            if self.uow.active:  # inside a batch: no transaction context to enter
                return self.handler.snapshot(run())
            with self.uow.transaction():
                return self.handler.snapshot(run())
        idem.check_key(key)
        digest = idem.command_digest(command, content)
        owner = actor.id
        if self.uow.in_batch:
            return self._keyed_in_batch(key, command, digest, owner, run)
        try:
            with self.uow.transaction():
                first = self.uow.query(lambda c: idem.lookup(c, owner, key, command, digest))
                if first is not None:
                    return self._from_result(first)
                ticket = self.handler.snapshot(run())
                self.handler.add_row(idem.INSERT, idem.row(
                    owner, key, command, digest, ticket.id, self._result(ticket),
                    self.clock.now()))
                return ticket
        except (IntegrityError, ConcurrencyConflict):
            # Another caller may have committed the same key first: its ticket update (or
            # the key's insert) beat ours. Then its result is ours too.
            with self.db.read() as conn:
                first = idem.lookup(conn, owner, key, command, digest)
            if first is None:
                raise
            return self._from_result(first)

    def _keyed_in_batch(self, key: str, command: str, digest: str, owner: str,
                        run: Callable[[], TicketRecord]) -> Ticket:
        """A keyed command inside a batch: its own savepoint, so a lost race drops it alone."""
        self.uow.flush()
        conn = self.uow.conn
        first = idem.lookup(conn, owner, key, command, digest)
        if first is not None:
            return self._from_result(first)
        kept = self.uow.changes_so_far()  # the batch's earlier commands: flushed, kept
        savepoint = conn.begin_nested()
        try:
            ticket = self.handler.snapshot(run())
            self.handler.add_row(idem.INSERT, idem.row(
                owner, key, command, digest, ticket.id, self._result(ticket), self.clock.now()))
            self.uow.flush()
        except IntegrityError:
            savepoint.rollback()
            self.uow.drop_window(kept)
            first = idem.lookup(conn, owner, key, command, digest)
            if first is None:
                raise
            return self._from_result(first)
        except BaseException:
            savepoint.rollback()
            self.uow.drop_window(kept)
            raise
        savepoint.commit()
        return ticket

    def _result(self, ticket: Ticket) -> dict[str, Any]:
        def_id = self.catalog.id_of(ticket.lifecycle, ticket.version)
        fields = {k: v.isoformat() if isinstance(v, datetime) else v
                  for k, v in ticket.fields.items()}
        return {"definition_id": def_id, "id": ticket.id, "state": ticket.state,
                "level": ticket.level, "fields": fields, "overdue": ticket.overdue,
                "created_at": ticket.created_at.isoformat(),
                "updated_at": ticket.updated_at.isoformat(), "row_version": ticket.row_version}

    def _from_result(self, r: dict[str, Any]) -> Ticket:
        lc = self.lifecycle_by_id(r["definition_id"])
        info = self.catalog.info(r["definition_id"])
        return Ticket(r["id"], info.name, info.version, r["state"], r["level"],
                      load_fields(lc.spec.fields, r["fields"]), bool(r["overdue"]),
                      datetime.fromisoformat(r["created_at"]),
                      datetime.fromisoformat(r["updated_at"]), r["row_version"])

    @contextmanager
    def compound(self, participant: Participant | None = None, *,
                 read_only: bool = False) -> Iterator[Unit]:
        """Several commands as one; see :meth:`CommandHandler.compound`.

        ``read_only``: a read through the working copy (staging anything is an error).
        """
        with self.handler.compound(participant, read_only=read_only) as unit:
            yield unit

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for many commands (see :meth:`engine.Engine.batch`)."""
        with self.uow.transaction(batch=True):
            yield

    # -- timers ---------------------------------------------------------------------------

    def run_due(self, now: datetime, *, inclusive: bool = False) -> list[FiredTimer]:
        """Claim and fire every timer due before ``now`` (at it too, when ``inclusive``)."""
        return self.dispatcher.run_due(now, inclusive=inclusive)

    def next_due(self) -> datetime | None:
        """The earliest instant this engine could fire a pending timer, or None."""
        return self.dispatcher.next_due()

    # -- reads ----------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection that sees everything this thread committed or staged."""
        with self.uow.reading() as conn:
            yield conn

    def stop(self) -> None:
        """Let the after-commit thread end (after its queued hooks)."""
        self.executor.stop()


def _is_file(lifecycle: str) -> bool:
    """Whether a lifecycle argument names a YAML file rather than a deployed lifecycle."""
    return lifecycle.endswith((".yaml", ".yml")) and Path(lifecycle).is_file()
