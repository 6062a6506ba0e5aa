"""Child process of the crash test: applies a fixed plan of commands, one transaction each.

Usage: ``python crash_child.py DB_FILE``. Every command carries an idempotency key, so a
restarted child runs the plan from the start and commands already applied return their first
result. After each command commits, its key is printed (stdout, flushed): the parent treats a
printed key as committed. Deadlines fall due on the virtual clock between commands.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta

from engine import Actor, CommandRefused, Engine, VirtualClock

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
TICKETS = 60


def plan() -> list[tuple[datetime, str, str, str, str]]:
    """(at, ticket, trigger, actor role, key) in time order; deterministic."""
    rng = random.Random(20240501)
    events: list[tuple[datetime, str, str, str, str]] = []
    for i in range(TICKETS):
        tid = f"C{i:03d}"
        t = START + timedelta(minutes=rng.randint(0, 600))
        steps = ["report", "dispatch", "arrive", "resolve", "close"][: rng.randint(1, 5)]
        for n, trigger in enumerate(steps):
            role = {"report": "grid_worker", "dispatch": "centre", "arrive": "department",
                    "resolve": "department", "close": "centre"}[trigger]
            events.append((t, tid, trigger, role, f"{tid}:{n}"))
            t += timedelta(minutes=rng.choice([5, 20, 45, 90, 200, 900, 3000]))
    events.sort(key=lambda e: (e[0], e[4]))
    return events


def main(db: str) -> None:
    events = plan()
    clock = VirtualClock(START)
    eng = Engine(db, clock=clock, worker_id="crash-child")
    for at, tid, trigger, role, key in events:
        eng.run_until(max(at, clock.now()))
        actor = Actor(f"{role}-1", role)
        try:
            if trigger == "report":
                eng.report("grid_incident", {"category": "drain",
                                             "target_at": at + timedelta(hours=6)},
                           actor=actor, ticket_id=tid, idempotency_key=key)
            else:
                fields = {"department": "water"} if trigger == "dispatch" else None
                eng.fire(tid, trigger, actor=actor, fields=fields, idempotency_key=key)
        except CommandRefused:
            continue
        sys.stdout.write(key + "\n")
        sys.stdout.flush()
    eng.run_until(events[-1][0] + timedelta(days=10))
    sys.stdout.write("done\n")
    sys.stdout.flush()
    eng.stop()


if __name__ == "__main__":
    main(sys.argv[1])
