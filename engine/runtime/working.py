"""The staged working copy of a unit of work: tickets as commands change them, in memory.

A command never writes while it decides. It reads the tickets it acts on into
:class:`TicketRecord` objects, and every change it decides — a new state, history rows,
timers, participants' state, their rows — is *staged* in a :class:`Layer`. Layers stack:

* the **window** (the root layer) belongs to the open transaction (one command's, or a
  batch's); the unit of work flushes it with the one writer (:mod:`engine.store.writer`);
* each command, compound command (a department decision) and follow-on runs in a child
  layer pushed on top. If it is refused, its layer is dropped and nothing of it remains;
  if it succeeds, its layer is merged into the one below.

Only the top layer is written to. A ticket read from the database is kept (clean) in the
window, so that later commands of the same transaction see the staged state, not the stored
one; a ticket that a transition reads first is staged as that command's own record in its
layer (no clean copy below it: if the command is refused, the ticket is read again). What
the database holds for a ticket — whether it exists, its ``row_version``, the participants'
stored state — is a :class:`Stored` shared by every copy of its record, and moves forward
when the window is flushed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.store.writer import TimerOp

__all__ = ["Layer", "PendingTimer", "Stored", "TicketRecord"]


class PendingTimer(NamedTuple):
    """A ticket's pending timer as the working copy knows it.

    Attributes:
        name: the timer's name (a deadline, or ``sla:...``, ``ladder:...``, ``lag:...``).
        state: the state it belongs to (None: ticket-wide).
        due_at: when it falls due (aware UTC).
        id: its ``gw_timers`` id (None: created in this transaction and not yet written).
        claimed_by: the worker holding a claim on it (stored timers only).
        failures: how often firing it failed.

    A ``NamedTuple``, not a frozen dataclass: as immutable, and built in a third of the
    time (a frozen dataclass sets each field through ``object.__setattr__``); the
    pipeline builds several per command.
    """

    name: str
    state: str | None
    due_at: datetime
    id: int | None = None
    claimed_by: str | None = None
    failures: int = 0


class Stored:
    """What the database holds for one ticket; shared by every copy of its record.

    Attributes:
        exists: the ticket row is written.
        version: its stored ``row_version``.
        definition_id: its stored lifecycle version (None: not written yet).
        ext: participant key → the participant's state as stored (loaded or flushed).
    """

    __slots__ = ("definition_id", "exists", "ext", "version")

    def __init__(self, exists: bool, version: int, definition_id: int | None = None):
        self.exists = exists
        self.version = version
        self.definition_id = definition_id
        self.ext: dict[str, Any] = {}


class TicketRecord:
    """One ticket in the working copy (a copy per layer that changes it).

    Attributes:
        id, definition_id, lifecycle: the ticket and the compiled version it runs on.
        state, level: where it is now (staged).
        fields: its fields in JSON form (datetimes as ISO text); replaced, never mutated.
        overdue: its overdue flag.
        created_at, updated_at: aware UTC.
        version: its ``row_version`` after the staged changes (= seq of its last history row).
        timers: name → :class:`PendingTimer`, its pending timers (at most one per name).
        ext: participant key → state changed in this unit of work (the stored state is in
            ``stored.ext``; read both with :meth:`Layer.state`).
        stored: see :class:`Stored`.
    """

    __slots__ = ("created_at", "definition_id", "ext", "fields", "id", "level", "lifecycle",
                 "overdue", "state", "stored", "timers", "updated_at", "version")

    def __init__(self, id: str, definition_id: int, lifecycle: Lifecycle, state: str,
                 level: str, fields: dict[str, Any], overdue: bool, created_at: datetime,
                 updated_at: datetime, version: int, timers: dict[str, PendingTimer],
                 stored: Stored):
        self.id = id
        self.definition_id = definition_id
        self.lifecycle = lifecycle
        self.state = state
        self.level = level
        self.fields = fields
        self.overdue = overdue
        self.created_at = created_at
        self.updated_at = updated_at
        self.version = version
        self.timers = timers
        self.ext: dict[str, Any] = {}
        self.stored = stored

    def copy(self) -> TicketRecord:
        """A copy to change in another layer (timers and ext copied; values are immutable)."""
        out = TicketRecord(self.id, self.definition_id, self.lifecycle, self.state, self.level,
                           self.fields, self.overdue, self.created_at, self.updated_at,
                           self.version, dict(self.timers), self.stored)
        out.ext = dict(self.ext)
        return out


class Layer:
    """Staged changes of one transaction (the root) or of one command on top of it.

    Attributes:
        parent: the layer below (None for the window).
        records: tickets read or changed in this layer, by id.
        dirty: ids of the tickets this layer changed, in the order first changed (so rows
            are written in the order they were decided).
        history: history rows staged, in order (``seq`` assigned).
        timer_ops: timer changes staged, in order (see :class:`~engine.store.writer.TimerOp`).
        cancelled: ids of stored timers cancelled (pending timers read with their ticket):
            plain ints, not ``TimerOp`` objects, as the writer cancels them by id whatever their
            order (a command cancels two or three; kept until the window is flushed, an int
            is nothing for the cyclic garbage collector to walk).
        rows: participants' rows ``(statement, parameters)`` staged, in order.
        changes: the :class:`Change` of each history row, for the after-commit hooks.
        flushed: (window) how many of ``changes`` were flushed (their event rows written).
        earliest_new: the earliest due instant of a timer created in this layer.
        wake: (window) the earliest due instant of a timer flushed in this transaction.
        now: the instant of the command this layer belongs to (None: the enclosing one's).
        follow_ons: follow-on steps the participants asked for while this layer's command
            was planned, run before the layer is merged down.

    A plain class with slots (every command pushes one): built in a third of a
    dataclass's time with eleven default factories.
    """

    __slots__ = ("cancelled", "changes", "dirty", "earliest_new", "flushed", "follow_ons",
                 "history", "now", "parent", "records", "rows", "timer_ops", "wake")

    def __init__(self, parent: Layer | None = None):
        self.parent = parent
        self.records: dict[str, TicketRecord] = {}
        self.dirty: dict[str, None] = {}  # ordered: first change first
        self.history: list[dict[str, Any]] = []
        self.timer_ops: list[TimerOp] = []
        self.cancelled: list[int] = []
        self.rows: list[tuple[Any, Any]] = []
        self.changes: list[Change] = []
        self.flushed = 0
        self.earliest_new: datetime | None = None
        self.wake: datetime | None = None
        self.now: datetime | None = None
        self.follow_ons: list[Any] = []

    def find(self, ticket_id: str) -> TicketRecord | None:
        """The newest record of a ticket in this layer or below (None: not read yet)."""
        layer: Layer | None = self
        while layer is not None:
            rec = layer.records.get(ticket_id)
            if rec is not None:
                return rec
            layer = layer.parent
        return None

    def root(self) -> Layer:
        """The window (the bottom layer)."""
        layer = self
        while layer.parent is not None:
            layer = layer.parent
        return layer

    def writable(self, ticket_id: str) -> TicketRecord:
        """The ticket's record to change in this layer (copied from below on first write).

        Raises:
            KeyError: the ticket has not been read into the working copy.
        """
        rec = self.records.get(ticket_id)
        if rec is None or ticket_id not in self.dirty:
            found = rec or self.find(ticket_id)
            if found is None:
                raise KeyError(ticket_id)
            rec = found.copy()
            self.records[ticket_id] = rec
            self.dirty[ticket_id] = None
        return rec

    def add(self, rec: TicketRecord, *, dirty: bool) -> None:
        """Put a record into this layer (a new ticket, or one just read)."""
        self.records[rec.id] = rec
        if dirty:
            self.dirty[rec.id] = None

    def timer_created(self, due: datetime) -> None:
        """Note a timer created in this layer, due at ``due``."""
        if self.earliest_new is None or due < self.earliest_new:
            self.earliest_new = due

    def merge_into_parent(self) -> None:
        """Move everything staged here into the layer below (the command succeeded)."""
        parent = self.parent
        if parent is None:  # pragma: no cover - the window is flushed, not merged
            raise RuntimeError("the window has no layer below")
        records, dirty = self.records, self.dirty
        if len(records) == len(dirty):  # all changed here (a command's one ticket): no test
            parent.records.update(records)
        else:
            below = parent.records
            for tid, rec in records.items():
                if tid in dirty or tid not in below:
                    below[tid] = rec
        parent.dirty.update(dirty)  # a ticket changed below keeps its place in the order
        parent.history += self.history
        parent.timer_ops += self.timer_ops
        parent.cancelled += self.cancelled
        parent.rows += self.rows
        parent.changes += self.changes
        if self.earliest_new is not None:
            parent.timer_created(self.earliest_new)

    def staged(self) -> bool:
        """Whether anything waits to be written."""
        return bool(self.dirty or self.history or self.timer_ops or self.cancelled or self.rows)

    def clear_staged(self, *, keep_records: bool) -> None:
        """Forget what was just flushed (and, between commands, the records themselves)."""
        self.dirty = {}
        self.history = []
        self.timer_ops = []
        self.cancelled = []
        self.rows = []
        self.flushed = len(self.changes)
        if self.earliest_new is not None and (self.wake is None or self.earliest_new < self.wake):
            self.wake = self.earliest_new
        self.earliest_new = None
        if not keep_records:
            self.records = {}
