"""SQLite under concurrent writers: host threads, the scheduler thread and another process.

None of them may ever see "database is locked": write transactions begin with BEGIN
IMMEDIATE and wait (busy timeout) for the lock, reads do not block in WAL mode, and every
transaction is short. Timers are real: deadlines of one second, fired by the APScheduler
wake-up clock while the commands go on.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import quick_lifecycle

from engine import Actor, Engine, parse_definition

pytestmark = pytest.mark.slow

LIFECYCLE = quick_lifecycle("PT0.5S")

CHILD = """
import sys
from engine import Actor, Engine, parse_definition
eng = Engine(sys.argv[1])
eng.deploy(parse_definition(sys.argv[2], file="quick.yaml"))
for i in range(150):
    t = eng.report("quick", {}, actor=Actor("proc", "centre"), ticket_id=f"P{i:03d}")
    if i % 2:
        eng.fire(t.id, "finish", actor=Actor("proc", "centre"))
    eng.get(t.id)
eng.stop()
"""


def test_threads_scheduler_and_a_process_write_together_without_lock_errors(
        tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite"
    host = Engine(path, sweep_seconds=0.05)
    host.deploy(parse_definition(LIFECYCLE, file="quick.yaml"))
    host.start()  # the scheduler thread fires the 0.5 s deadlines as they fall due
    errors: list[BaseException] = []
    centre = Actor("ops", "centre")

    def commands(prefix: str) -> None:
        eng = Engine(path)
        try:
            for i in range(150):
                t = eng.report("quick", {}, actor=centre, ticket_id=f"{prefix}{i:03d}")
                if i % 2:
                    eng.fire(t.id, "finish", actor=centre)
                eng.history(t.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.stop()

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), LIFECYCLE],
                             stderr=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=commands, args=(p,)) for p in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 0, stderr
    assert errors == []
    deadline = time.monotonic() + 120  # wait for the scheduler to catch up (not a speed test)
    while host.timers(status="pending") and time.monotonic() < deadline:
        time.sleep(0.1)
    host.stop()
    eng = Engine(path)
    try:
        timers = eng.timers()
        assert len(timers) == 450
        statuses = {t.ticket_id: t.status for t in timers}
        finished = {f"{p}{i:03d}" for p in "ABP" for i in range(1, 150, 2)}
        assert {s for tid, s in statuses.items() if tid not in finished} == {"fired"}
        assert {s for tid, s in statuses.items() if tid in finished} <= {"cancelled", "fired"}
        assert eng.check_invariants() == []
    finally:
        eng.stop()
