"""Scale-out on PostgreSQL: 4 worker processes fire 10,000 due timers — none twice, none missed."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import workers
from backends import pg_schema
from helpers import START
from sqlalchemy import func, select

from engine import Actor, Engine, VirtualClock, parse_definition
from engine.store import history, timers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEADLINES = 5
TICKETS = 2_000   # x 5 deadlines = 10,000 timers
WORKERS = 4

LIFECYCLE = f"""
format: 1
name: sweep
initial: open
roles: {{centre: {{}}, system: {{}}}}
levels: [{{name: community}}, {{name: street}}]
report: {{roles: centre}}
states: {{open: {{}}, done: {{final: true}}}}
transitions:
  - {{trigger: finish, source: open, dest: done, roles: centre}}
deadlines:
{"".join(f"  d{i}: {{state: open, after: PT{i}M, on_breach: record}}{chr(10)}"
         for i in range(1, DEADLINES + 1))}
"""


def test_four_processes_fire_ten_thousand_timers_exactly_once(tmp_path: Path) -> None:
    with pg_schema() as url:
        setup = Engine(url, clock=VirtualClock(START))
        setup.deploy(parse_definition(LIFECYCLE, file="sweep.yaml"))
        centre = Actor("ops", "centre")
        for start in range(0, TICKETS, 500):
            with setup.batch():
                for i in range(start, start + 500):
                    setup.report("sweep", {}, actor=centre, ticket_id=f"S{i:05d}")
        now = START.replace(hour=9)
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
        procs = [ctx.Process(target=workers.run_due_worker,
                             args=(url, f"worker-{n}", now.isoformat(), barrier, results))
                 for n in range(WORKERS)]
        for p in procs:
            p.start()
        got = [results.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        fired_ids = [tid for _, ids, _ in got for tid in ids]
        total = TICKETS * DEADLINES
        assert len(fired_ids) == total                 # 0 missed ...
        assert len(set(fired_ids)) == total            # ... 0 fired twice
        assert {o for _, _, outcomes in got for o in outcomes} == {"breached"}
        with setup.db.read() as conn:
            statuses = dict(conn.execute(
                select(timers.c.status, func.count()).group_by(timers.c.status)).all())
            assert statuses == {"fired": total}
            per_timer = conn.execute(
                select(history.c.data).where(history.c.kind == "breach")).scalars().all()
            assert sorted(d["timer_id"] for d in per_timer) == sorted(fired_ids)
            owners = dict(conn.execute(
                select(timers.c.claimed_by, func.count()).group_by(timers.c.claimed_by)).all())
        assert sum(owners.values()) == total
        assert set(owners) <= {f"worker-{n}" for n in range(WORKERS)}
        by_worker = {name: len(ids) for name, ids, _ in got}
        assert by_worker == {name: owners.get(name, 0) for name in by_worker}
        assert setup.check_invariants() == []
        setup.stop()
