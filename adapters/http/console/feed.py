"""Server-sent events for the live board, fed from the outbox (``gw_outbox``).

Each open board holds one ``GET /console/events`` stream. The stream reads the outbox after
a cursor with :func:`engine.events.read_events` (reads only) every :data:`POLL_SECONDS`, and
for each ticket with new events sends one ``card`` event: the card's HTML in the board's
language and the key's scope, or ``remove`` when the ticket closed or left the scope. The
event ``id`` is the outbox row id, so a reconnecting ``EventSource`` resumes after the last
event it saw (``Last-Event-ID``); a board starts from the cursor its page was rendered at.
A stream ends after :data:`STREAM_SECONDS` (browsers reconnect by themselves), so a server
stopping never waits long on open boards.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine import DomainEvent, Engine
from engine.events import read_events

__all__ = ["POLL_SECONDS", "STREAM_SECONDS", "latest_event_id", "stream_cards"]

POLL_SECONDS = 0.15
"""How often an open stream reads the outbox (a benchmark measures the resulting delay)."""

STREAM_SECONDS = 300.0
HEARTBEAT_SECONDS = 15.0


def latest_event_id(engine: Engine) -> int:
    """The id of the newest outbox row (0 when empty), with public reads only.

    ``read_events`` answers "is there a row after id N" in one indexed query; an exponential
    then binary search finds the end in O(log n) of them. (A ``latest_event_id`` in
    :mod:`engine.events` would do it in one query.)
    """
    with engine.db.read() as conn:
        def after(n: int) -> bool:
            return bool(read_events(conn, after_id=n, limit=1))

        if not after(0):
            return 0
        lo, hi = 0, 1
        while after(hi):
            lo, hi = hi, hi * 2
        # after(lo) is true, after(hi) false: the last id is in (lo, hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if after(mid):
                lo = mid
            else:
                hi = mid
        return hi


def _read(engine: Engine, cursor: int) -> list[tuple[int, DomainEvent]]:
    with engine.db.read() as conn:
        return read_events(conn, after_id=cursor, limit=500)


def _sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream_cards(
    engine: Engine, cursor: int, lifecycles: set[str],
    render: Callable[[str], dict[str, Any] | None],
    disconnected: Callable[[], Any],
) -> AsyncIterator[str]:
    """The SSE text of a board: ``card`` events for tickets of ``lifecycles`` after ``cursor``.

    Args:
        engine: whose outbox is read.
        cursor: the outbox row id to start after.
        lifecycles: the lifecycles the board shows (tickets and work orders).
        render: ticket id → ``{"id", "kind", "html"}`` or ``{"id", "remove": true}``; None to
            send nothing (out of scope and never shown). Runs in a worker thread.
        disconnected: an awaitable-returning callable, true once the browser left.
    """
    started = last_beat = time.monotonic()
    yield "retry: 1000\n\n"
    while time.monotonic() - started < STREAM_SECONDS:
        if await disconnected():
            return
        rows = await asyncio.to_thread(_read, engine, cursor)
        if rows:
            cursor = rows[-1][0]
            seen: dict[str, int] = {}
            for row_id, event in rows:
                if event.lifecycle in lifecycles:
                    seen[event.ticket_id] = row_id
            for ticket_id, row_id in seen.items():
                data = await asyncio.to_thread(render, ticket_id)
                if data is not None:
                    yield _sse("card", data, row_id)
            yield f"id: {cursor}\n: cursor\n\n"
            continue
        now = time.monotonic()
        if now - last_beat > HEARTBEAT_SECONDS:
            last_beat = now
            yield ": heartbeat\n\n"
        await asyncio.sleep(POLL_SECONDS)
