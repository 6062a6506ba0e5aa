"""Code run in child processes by the concurrency tests (spawned: importable, no fixtures)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine import Actor, ConcurrencyConflict, Engine, VirtualClock


def fire_with_version(url: str, ticket_id: str, trigger: str, role: str, reason: str | None,
                      barrier: Any, results: Any) -> None:
    """Read the ticket, wait for the other process, fire with the version read; report."""
    eng = Engine(url, clock=VirtualClock(datetime.fromisoformat("2024-05-01T09:00:00+00:00")))
    try:
        version = eng.get(ticket_id).row_version
        barrier.wait(timeout=60)
        try:
            t = eng.fire(ticket_id, trigger, actor=Actor(f"p-{trigger}", role), reason=reason,
                         expected_version=version)
            results.put((trigger, "won", t.row_version, None))
        except ConcurrencyConflict as exc:
            results.put((trigger, "conflict", exc.expected_version, exc.actual_version))
    finally:
        eng.stop()


def fire_keyed(url: str, ticket_id: str, key: str, barrier: Any, results: Any) -> None:
    """Fire ``dispatch`` with an idempotency key after the barrier; report the result."""
    eng = Engine(url, clock=VirtualClock(datetime.fromisoformat("2024-05-01T09:00:00+00:00")))
    try:
        barrier.wait(timeout=60)
        t = eng.fire(ticket_id, "dispatch", actor=Actor("ops", "centre"),
                     fields={"department": "water"}, idempotency_key=key)
        results.put((t.state, t.row_version))
    finally:
        eng.stop()


def run_due_worker(url: str, name: str, now_iso: str, barrier: Any, results: Any) -> None:
    """One of N workers: wait for the others, fire every due timer, report the timer ids."""
    now = datetime.fromisoformat(now_iso)
    eng = Engine(url, clock=VirtualClock(now), worker_id=name)
    try:
        eng.next_due()  # connect before the start line
        barrier.wait(timeout=120)
        fired = eng.run_due(now)
        results.put((name, [f.timer.id for f in fired], [f.outcome for f in fired]))
    finally:
        eng.stop()


def claim_and_die(url: str, now_iso: str) -> None:
    """Claim every due timer as ``dying-worker``, then get SIGKILLed before firing any."""
    import os
    import signal

    now = datetime.fromisoformat(now_iso)
    eng = Engine(url, clock=VirtualClock(now), worker_id="dying-worker", lease_seconds=60)
    with eng.db.write() as conn:
        eng.kernel.claims.claim_due(conn, now, inclusive=False, limit=1000)
    os.kill(os.getpid(), signal.SIGKILL)
