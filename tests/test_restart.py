"""A real restart: a process is SIGKILLed before its deadlines fall due; after the downtime
two new processes start on the same SQLite file and every due timer fires exactly once, with
its original due time in the history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import Engine, VirtualClock

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)  # Wed 09:00 in Shanghai (the centre's hours)
AFTER = T0 + timedelta(hours=3)

BEFORE_SCRIPT = """
import sys, time
from datetime import datetime
from engine import Actor, Engine, VirtualClock
db, t0 = sys.argv[1], datetime.fromisoformat(sys.argv[2])
eng = Engine(db, clock=VirtualClock(t0), sweep_seconds=0.2)
eng.start()
for i in range(4):
    eng.report("grid_incident", {"category": "drain"}, actor=Actor("gw", "centre"),
               ticket_id=f"T{i}")
eng.fire("T3", "dispatch", actor=Actor("ops", "centre"))
eng.run_due()
print("ready", flush=True)
time.sleep(600)  # killed long before this
"""

AFTER_SCRIPT = """
import json, sys, time
from datetime import datetime
from engine import Engine, VirtualClock
db, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
eng = Engine(db, clock=VirtualClock(now), sweep_seconds=0.2)
eng.start()  # the scheduler's start-up sweep fires what fell due while we were down
while True:
    nxt = eng.next_due()
    if nxt is None or nxt >= now:
        break
    time.sleep(0.05)
again = eng.run_due()
eng.stop()
print(json.dumps({"again": len(again)}), flush=True)
"""


def _run(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_deadlines_due_during_downtime_fire_exactly_once_after_restart(tmp_path: Path):
    db = tmp_path / "restart.sqlite"
    first = _run(BEFORE_SCRIPT, str(db), T0.isoformat())
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line.strip() == "ready", first.stderr.read() if first.stderr else ""
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    probe = Engine(db, clock=VirtualClock(AFTER))
    due = {(t.ticket_id, t.name): t.due_at for t in probe.timers(status="pending")
           if t.due_at < AFTER}
    probe.stop()
    assert due == {
        **{(f"T{i}", "dispatch_due"): T0 + timedelta(minutes=30) for i in range(3)},
        **{(f"T{i}", "sla:time_to_dispatch:warn:0"): T0 + timedelta(minutes=45)
           for i in range(3)},
        **{(f"T{i}", "sla:time_to_dispatch"): T0 + timedelta(hours=1) for i in range(3)},
        ("T3", "arrival_due"): T0 + timedelta(hours=2),
    }

    # downtime is over: two processes restart on the same file at once
    restarted = [_run(AFTER_SCRIPT, str(db), AFTER.isoformat()) for _ in range(2)]
    for proc in restarted:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out) == {"again": 0}       # nothing left to fire a second time

    eng = Engine(db, clock=VirtualClock(AFTER))
    try:
        fired = {(t.ticket_id, t.name): t for t in eng.timers(status="fired")}
        assert set(fired) == set(due)
        assert all(fired[k].due_at == due[k] and fired[k].fired_at == AFTER for k in due)
        consequences = [h for tid in ("T0", "T1", "T2", "T3") for h in eng.history(tid)
                        if h.kind in ("breach", "sla_warning", "sla_breach")]
        # exactly one history row per fired timer, none repeated, each with its due time
        per_timer = Counter(h.data["timer_id"] for h in consequences)
        assert sorted(per_timer.values()) == [1] * len(due)
        by_id = {t.id: t for t in fired.values()}
        assert set(per_timer) == set(by_id)
        for h in consequences:
            assert h.data["due_at"] == by_id[h.data["timer_id"]].due_at.isoformat()
            assert h.at == AFTER
        for tid in ("T0", "T1", "T2"):
            t = eng.get(tid)
            assert (t.state, t.level) == ("escalated", "street")   # one hop, not two
            assert [h.trigger for h in eng.history(tid) if h.kind == "transition"] == [
                "escalate"]
        # T3 left `reported` before the kill: its dispatch deadline never fires
        t3 = {t.name: t.status for t in eng.timers("T3")}
        assert t3["dispatch_due"] == "cancelled"
        assert t3["arrival_due"] == "fired"
        assert eng.get("T3").state == "dispatched"
    finally:
        eng.stop()
