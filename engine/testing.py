"""Testing helpers for host apps: a throw-away engine on virtual time.

Example::

    from datetime import timedelta
    from engine import Actor
    from engine.testing import temporary_engine

    def test_late_dispatch_escalates():
        with temporary_engine() as harness:
            t = harness.engine.report("grid_incident", {"category": "drain"},
                                      actor=Actor("hotline-1", "centre"))
            harness.advance(timedelta(minutes=31))      # fires dispatch_due
            assert harness.engine.get(t.id).level == "street"
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.clock import VirtualClock, forward
from engine.events.model import DomainEvent
from engine.events.outbox import read_events
from engine.facade import Engine
from engine.lifecycle.registry import Registry
from engine.runtime.model import FiredTimer

__all__ = ["Harness", "temporary_engine"]


@dataclass
class Harness:
    """An engine on a temporary SQLite file and its virtual clock."""

    engine: Engine
    clock: VirtualClock
    path: Path

    def advance(self, delta: timedelta) -> list[FiredTimer]:
        """Move the virtual clock forward by ``delta``, firing every timer due on the way.

        A timer due exactly at the new instant does not fire yet (a command at that instant
        would still meet it); advance a moment more to see it breached.

        Raises:
            InvalidArgument: ``delta`` is negative (also a ValueError); nothing fires.
            InvalidArgumentType: ``delta`` is not a timedelta (also a TypeError).
        """
        step = forward(delta, example="harness.advance(timedelta(minutes=31))")
        return self.engine.run_until(self.clock.now() + step)

    def events(self, ticket_id: str | None = None) -> list[DomainEvent]:
        """The domain events in the outbox, oldest first (optionally of one ticket)."""
        with self.engine.db.read() as conn:
            return [event for _, event in read_events(conn, ticket_id=ticket_id, limit=10**9)]


@contextmanager
def temporary_engine(
    registry: Registry | None = None,
    *,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
) -> Iterator[Harness]:
    """Yield a :class:`Harness`: a fresh Engine on a temporary SQLite file, deleted afterwards.

    Args:
        registry: the host app's guards and actions.
        start: the virtual clock's first instant (aware).

    Raises:
        InvalidArgument: ``start`` is naive (also a ValueError); InvalidArgumentType: it is
            not a datetime.
    """
    with tempfile.TemporaryDirectory(prefix="gridwhistle-") as folder:
        path = Path(folder) / "test.sqlite"
        clock = VirtualClock(start)
        engine = Engine(path, clock=clock, registry=registry)
        try:
            yield Harness(engine, clock, path)
        finally:
            engine.stop()
