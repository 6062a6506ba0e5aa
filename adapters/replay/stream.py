"""Applying planned tickets to an engine in time order, while the input is still being read.

The input arrives in order of report time (see :mod:`adapters.replay.sorting` for inputs that
are not). A ticket's later events (dispatch, arrival, closure) lie in the future of its
report; they wait in a heap that holds one entry per open ticket, its next event. Before a
newly read ticket is reported, every waiting event that comes before it is applied; a
ticket's plan is dropped once its last event is applied (or a command of it is refused). So
memory holds the tickets open at a time, never the whole input.

The order is exactly that of sorting every event of every row by (time, row, event index):
a later row cannot have an event before its own report, which is at or after the report of
the row before it.

Before each event the engine's virtual clock moves to it (:meth:`Engine.run_until`), firing
every deadline that fell due on the way. Commands are written in batches
(:meth:`Engine.batch`: one transaction per ``batch_size`` commands), in which a refused
command (:class:`~engine.CommandRefused`, whatever component refuses it) rolls back alone:
its ticket's remaining events are dropped and the replay goes on. Any other error (a bug, a
database failure) is not a refusal: the batch rolls back and the error propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from heapq import heappop, heappush
from typing import Any, Protocol

from adapters.replay.progress import ReplayProgress
from engine import CommandRefused, Engine, VirtualClock

__all__ = ["BATCH_SIZE", "Timeline"]

BATCH_SIZE = 500
"""Commands per transaction."""


class _Event(Protocol):
    @property
    def at(self) -> datetime: ...


class _Plan(Protocol):
    @property
    def row(self) -> int: ...

    @property
    def ticket_id(self) -> str: ...

    @property
    def events(self) -> Sequence[Any]: ...


class Timeline:
    """Applies plans' events in time order (see the module docstring).

    Args:
        engine: the engine (its clock must be a :class:`~engine.VirtualClock`).
        apply: ``apply(plan, index)`` applies event ``index`` of ``plan``; it raises
            :class:`~engine.CommandRefused` when the engine refuses it.
        refused: ``refused(plan, index, error)`` is told of a refusal (the ticket's later
            events are dropped).
        until: apply no event after this instant (aware); None: every event.
        progress: called after every batch and once at the end.
        rows_total: the number of input rows, when known (for ``progress``).
        batch_size: commands per transaction.
        started: when the replay started (``time.perf_counter()``; default: now), for the
            wall time ``progress`` reports.

    Raises:
        TypeError: the engine's clock is not a VirtualClock.

    After :meth:`run`, the counters are: ``rows`` (plans taken in, plus the rows the caller
    counts itself: rejections, repeats), ``planned`` (plans taken in), ``tickets`` (reports
    applied), ``events_applied``, ``events_after_until`` (events later than ``until``, not
    applied), ``first_at`` / ``last_at`` (the first and last event time kept, or None).
    """

    def __init__(self, engine: Engine, apply: Callable[[Any, int], None],
                 refused: Callable[[Any, int, CommandRefused], None], *,
                 until: datetime | None = None,
                 progress: Callable[[ReplayProgress], None] | None = None,
                 rows_total: Callable[[], int | None] = lambda: None,
                 batch_size: int = BATCH_SIZE, started: float | None = None) -> None:
        if not isinstance(engine.clock, VirtualClock):
            raise TypeError("a replay needs an engine with a VirtualClock")
        self._engine = engine
        self._clock: VirtualClock = engine.clock
        self._apply = apply
        self._refused = refused
        self._until = until
        self._progress = progress
        self._rows_total = rows_total
        self._batch_size = batch_size
        self._heap: list[tuple[datetime, int, int, Any]] = []
        self._batch: AbstractContextManager[None] | None = None
        self._in_batch = 0
        self._started = time.perf_counter() if started is None else started
        self.rows = 0
        self.planned = 0
        self.tickets = 0
        self.events_applied = 0
        self.events_after_until = 0
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None
        self.last_report: tuple[datetime, int] | None = None

    # -- input ------------------------------------------------------------------------------

    def take(self, plan: _Plan) -> None:
        """Take in the next plan (in order of report time, then row; see the module doc).

        Raises:
            ValueError: the plan's report is earlier than the previous plan's (the input is
                not in order; sort it first).
        """
        events = plan.events
        at = events[0].at
        row = plan.row
        self.rows += 1
        self.planned += 1
        if self.last_report is not None and (at, row) < self.last_report:
            raise ValueError(
                f"row {row} (reported {at.isoformat()}) comes after a row reported "
                f"{self.last_report[0].isoformat()}: the input is not in order of report time")
        self.last_report = (at, row)
        until = self._until
        if until is not None and at > until:
            self.events_after_until += len(events)
            return
        last = events[-1].at
        if until is not None and last > until:
            last = max(e.at for e in events if e.at <= until)
        if self.last_at is None or last > self.last_at:
            self.last_at = last
        heap = self._heap
        while heap and (heap[0][0] < at or (heap[0][0] == at and heap[0][1] < row)):
            self._next()
        heappush(heap, (at, row, 0, plan))

    def run(self, plans: Iterable[_Plan]) -> None:
        """Take in every plan, apply what is left, and run the clock to the end.

        The clock ends at ``until``, or at the last event's time; deadlines due before it fire.
        On any error but a refusal the open batch is rolled back and the error propagates.
        """
        try:
            for plan in plans:
                self.take(plan)
            while self._heap:
                self._next()
            self._commit()
            end = self._until or self.last_at or self._clock.now()
            with self._engine.batch():
                self._engine.run_until(max(end, self._clock.now()))
        except BaseException as exc:
            batch, self._batch = self._batch, None
            if batch is not None:
                batch.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._report(done=True)

    # -- the timeline -----------------------------------------------------------------------

    def _next(self) -> None:
        at, row, index, plan = heappop(self._heap)
        events = plan.events
        if self._until is not None and at > self._until:
            self.events_after_until += len(events) - index
            return
        if self._batch is None:
            if self.first_at is None:
                self.first_at = at
                self._clock.set(max(self._clock.now(), at))
            self._batch = self._engine.batch()
            self._batch.__enter__()
        self._engine.run_until(at)
        try:
            self._apply(plan, index)
        except CommandRefused as exc:
            self._refused(plan, index, exc)
        else:
            self.events_applied += 1
            if index == 0:
                self.tickets += 1
            if index + 1 < len(events):
                heappush(self._heap, (events[index + 1].at, row, index + 1, plan))
        self._in_batch += 1
        if self._in_batch >= self._batch_size:
            self._commit()
            self._report()

    def _commit(self) -> None:
        batch, self._batch = self._batch, None
        self._in_batch = 0
        if batch is not None:
            batch.__exit__(None, None, None)

    def _report(self, done: bool = False) -> None:
        if self._progress is not None:
            self._progress(ReplayProgress(
                rows_read=self.rows, rows_total=self._rows_total(), tickets=self.tickets,
                events_applied=self.events_applied,
                seconds=time.perf_counter() - self._started, done=done))
