"""Crash test: a child replaying real data is SIGKILLed at random points, then restarted.

After each kill: the invariant checker passes (nothing half-applied), every command the child
reported as committed is in the store (nothing committed lost). After the last restart the
store equals that of a run that was never killed: same tickets, history and timers, so every
deadline that fell due fired exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import Database, Engine, VirtualClock
from engine.store import history, idempotency, tickets, timers

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 22


def _spawn(db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(CHILD), str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def _contents(db: Path) -> tuple[list[tuple[object, ...]], ...]:
    database = Database(db, create=False)
    try:
        with database.read() as conn:
            t = conn.execute(select(tickets.c.id, tickets.c.state, tickets.c.level,
                                    tickets.c.overdue, tickets.c.row_version, tickets.c.fields)
                             .order_by(tickets.c.id)).all()
            h = conn.execute(select(history.c.ticket_id, history.c.seq, history.c.at,
                                    history.c.kind, history.c.trigger, history.c.to_state,
                                    history.c.to_level)
                             .order_by(history.c.ticket_id, history.c.seq)).all()
            m = conn.execute(select(timers.c.ticket_id, timers.c.name, timers.c.state,
                                    timers.c.due_at, timers.c.status, timers.c.created_at)
                             .order_by(timers.c.ticket_id, timers.c.due_at, timers.c.name))
            k = conn.execute(select(idempotency.c.key, idempotency.c.ticket_id,
                                    idempotency.c.digest).order_by(idempotency.c.key)).all()
            return ([tuple(r) for r in t], [tuple(r) for r in h], [tuple(r) for r in m],
                    [tuple(r) for r in k])
    finally:
        database.close()


def _check(db: Path, committed: set[str]) -> None:
    eng = Engine(Database(db, create=False), clock=VirtualClock())
    try:
        assert eng.check_invariants() == []
        with eng.db.read() as conn:
            keys = set(conn.execute(select(idempotency.c.key)).scalars())
        assert committed <= keys, sorted(committed - keys)[:5]
    finally:
        eng.stop()


def test_sigkill_at_random_points_loses_nothing_and_fires_each_deadline_once(
        tmp_path: Path) -> None:
    reference = tmp_path / "reference.sqlite"
    done = subprocess.run([sys.executable, str(CHILD), str(reference)], capture_output=True,
                          text=True, timeout=300, check=True)
    assert done.stdout.endswith("done\n")
    ref = _contents(reference)
    fired = [t for t in ref[2] if t[4] == "fired"]
    escalations = [h for h in ref[1] if h[4] == "escalate"]
    # deadlines, level budgets and SLA clock timers (warnings, breaches) do fire
    assert (len(ref[0]), len(fired), len(escalations)) == (80, 167, 34)

    db = tmp_path / "crashed.sqlite"
    rng = random.Random(5)
    committed: set[str] = set()
    kills = 0
    while kills < KILLS:
        child = _spawn(db)
        assert child.stdout is not None
        wanted = rng.randint(1, 12)  # kill after this many new commits, plus a little
        seen = 0
        finished = False
        for line in child.stdout:
            key = line.strip()
            if key == "done":
                finished = True
                break
            if key not in committed:
                committed.add(key)
                seen += 1
            if seen >= wanted:
                time.sleep(rng.uniform(0, 0.004))  # land inside the next transaction, or not
                os.kill(child.pid, signal.SIGKILL)
                break
        child.wait(timeout=60)
        if finished:
            break
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
        kills += 1
        _check(db, committed)
    assert kills == KILLS, "the plan ran out before enough kills; make it longer"

    final = _spawn(db)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert out.endswith("done\n")
    _check(db, committed)
    assert _contents(db) == _contents(reference)
