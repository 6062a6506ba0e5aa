"""Benchmark 4: timers at scale.

Two SQLite files: one with ``--pending`` (default 1,000,000) pending timers far in the future,
one with 10,000. In each round 1,000 tickets are reported in both (each gets a ``dispatch_due``
timer 30 minutes later), then ``Engine.run_until`` claims and fires those 1,000 due timers,
alternately in the small and the large store. Prints the time ratio (large over small), the
engine's RSS before and after firing among the large store, and SQLite's query plan for the
claim (it must search the ``(status, due_at)`` index, not scan the table).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from _common import T0, median, report, rss_mb, sqlite_text, workdir
from _dispatch import WORKER

from engine import Engine, VirtualClock
from engine.store.claims import _claim_statement


def fill(path: Path, pending: int) -> None:
    """Add ``pending`` future timers (raw inserts; they all hang off one ticket)."""
    eng = Engine(path, clock=VirtualClock(T0))
    eng.report("grid_incident", {"category": "x"}, actor=WORKER, ticket_id="holder")
    eng.stop()
    conn = sqlite3.connect(path)
    far = T0 + timedelta(days=3650)
    created = sqlite_text(T0)
    conn.executemany(
        "INSERT INTO gw_timers (ticket_id, name, state, due_at, status, created_at) "
        "VALUES ('holder', 'far', NULL, ?, 'pending', ?)",
        ((sqlite_text(far + timedelta(seconds=i)), created) for i in range(pending)))
    conn.commit()
    conn.close()


def claim_plan(path: Path) -> list[str]:
    eng = Engine(path, clock=VirtualClock(T0))
    compiled = _claim_statement(True, 200).compile(dialect=eng.db.engine.dialect)
    eng.stop()
    conn = sqlite3.connect(path)
    values = {"b_now": sqlite_text(T0), "b_owner": "w", "b_lease": sqlite_text(T0)}
    bound = compiled.construct_params(values)
    params = [bound[name] for name in compiled.positiontup or ()]
    rows = conn.execute("EXPLAIN QUERY PLAN " + str(compiled), params).fetchall()
    conn.close()
    return [r[-1] for r in rows]


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pending", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--due", type=int, default=1000, help="due timers fired per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    rss_start = rss_mb()
    with workdir() as work:
        small, large = work / "small.sqlite", work / "large.sqlite"
        fill(small, args.small)
        fill(large, args.pending)
        plan = claim_plan(large)
        engines = {p: Engine(p, clock=VirtualClock(T0)) for p in (small, large)}
        for eng in engines.values():  # warm up; the holder's own deadlines fire here
            eng.run_until(T0 + timedelta(days=9))
        ratios, t_small, t_large = [], [], []
        rss_before = rss_after = 0.0
        for r in range(args.rounds):
            at = T0 + timedelta(days=10 * (r + 1))
            times = {}
            for eng in engines.values():
                eng.clock.set(at)  # type: ignore[attr-defined]
                with eng.batch():
                    for i in range(args.due):
                        eng.report("grid_incident", {"category": "x"}, actor=WORKER,
                                   ticket_id=f"r{r}-{i}")
            for path, eng in engines.items():
                if path == large:
                    rss_before = rss_mb()
                t = time.perf_counter()
                fired = eng.run_until(at + timedelta(minutes=31))
                times[path] = time.perf_counter() - t
                if path == large:
                    rss_after = rss_mb()
                assert len(fired) == args.due, len(fired)
                eng.run_until(at + timedelta(days=9))  # untimed: their escalation chains
            t_small.append(times[small])
            t_large.append(times[large])
            ratios.append(times[large] / times[small])
        for eng in engines.values():
            eng.stop()
    figures: dict[str, object] = {
        "pending": args.pending, "small": args.small, "fired_per_round": args.due,
        "seconds_small": median(t_small), "seconds_large": median(t_large),
        "ratio_large_over_small": median(ratios), "target_ratio": 2.0,
        "rss_mb_at_start": round(rss_start, 1), "rss_mb_before_firing": round(rss_before, 1),
        "rss_mb_after_firing": round(rss_after, 1),
        "claim_plan": " | ".join(plan)}
    figures["met"] = median(ratios) <= 2.0 and "SCAN gw_timers" not in " ".join(plan)
    report("b4_timers_at_scale", figures)
    return figures


if __name__ == "__main__":
    main()
