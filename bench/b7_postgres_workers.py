"""Benchmark 7: PostgreSQL, one vs two worker processes firing the same due timers.

``--timers`` (default 4,000) tickets are reported into a schema of their own in the database
at ``GRIDWHISTLE_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
each has a ``dispatch_due`` timer. Then 1, and (on a fresh schema with the same tickets) 2,
worker processes each run ``Engine.run_due`` on a virtual clock past the due time until no
timer is left. Throughput = timers / wall time from the workers' common start. Duplicates =
breach history rows beyond one per timer (must be 0). Rounds alternate 1 and 2 workers. Also
printed: timers per CPU-second of the worker processes, which tells contention between the
workers apart from a machine without a free core; and, when the PostgreSQL server runs on this
machine, the cores the firing kept busy (workers' CPU plus the server processes' CPU, from
``/proc``, over the wall time): one worker with its server backend already keeps about 1.1 of
the 2 cores busy, so two can reach at most ``2 / that`` (``ceiling_two_over_one``) before any
contention between them — the floor this ratio is measured against.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
import uuid
from datetime import timedelta

from _common import T0, median, report
from _dispatch import WORKER
from sqlalchemy import create_engine, text

from engine import Engine, VirtualClock

URL = os.environ.get("GRIDWHISTLE_POSTGRES_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _engine(schema: str, at: object) -> Engine:
    sa = create_engine(URL, connect_args={"options": f"-csearch_path={schema}"})
    return Engine(sa, clock=VirtualClock(at))  # type: ignore[arg-type]


def _worker(schema: str, start: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    eng = _engine(schema, T0 + timedelta(hours=1))
    eng.next_due()  # connect and load before the common start
    while time.time() < start:
        time.sleep(0.001)
    fired = 0
    cpu = time.process_time()
    while True:
        done = eng.run_due()
        if not done:
            break
        fired += len(done)
    out.put((fired, time.time(), time.process_time() - cpu))
    eng.stop()


def server_cpu_s() -> float | None:
    """CPU seconds used so far by the ``postgres`` processes of this machine (their exited
    children's included), or None where /proc is unreadable. Differences only mean something
    with the server on this machine (``127.0.0.1``)."""
    if "127.0.0.1" not in URL and "localhost" not in URL:
        return None  # the server's CPU is not this machine's
    total = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if not stat[stat.index("(") + 1:stat.rindex(")")].startswith("postgres"):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def one_round(workers: int, timers: int) -> tuple[float, int, int, float, float | None]:
    admin = create_engine(URL)
    schema = f"gw_bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        eng = _engine(schema, T0)
        for s in range(0, timers, 500):
            with eng.batch():
                for i in range(s, min(timers, s + 500)):
                    eng.report("grid_incident", {"category": "x"}, actor=WORKER,
                               ticket_id=f"t{i}")
        eng.stop()
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        start = time.time() + 2.0
        procs = [mp.Process(target=_worker, args=(schema, start, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        while time.time() < start:
            time.sleep(0.001)
        server_before = server_cpu_s()
        results = [out.get(timeout=600) for _ in procs]
        server_after = server_cpu_s()
        for p in procs:
            p.join()
        wall = max(r[1] for r in results) - start
        fired = sum(r[0] for r in results)
        cpu = sum(r[2] for r in results)
        busy = (None if server_before is None or server_after is None
                else (cpu + server_after - server_before) / wall)
        with admin.begin() as conn:
            conn.execute(text(f'SET search_path TO "{schema}"'))
            dupes = conn.execute(text(
                "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM gw_history "
                "WHERE kind = 'breach' GROUP BY ticket_id, \"trigger\") AS c")).scalar()
        return timers / wall, fired, int(dupes or 0), timers / cpu, busy
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--timers", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds of 1 then 2 workers (the median ratio is reported)")
    args = ap.parse_args(argv)
    ratios, one, two, dupes, fired_ok = [], [], [], 0, True
    cpu_one, cpu_two, busy_one, busy_two = [], [], [], []
    for _ in range(args.rounds):
        r1, f1, d1, c1, b1 = one_round(1, args.timers)
        r2, f2, d2, c2, b2 = one_round(2, args.timers)
        if b1 is not None and b2 is not None:
            busy_one.append(b1)
            busy_two.append(b2)
        cpu_one.append(c1)
        cpu_two.append(c2)
        one.append(r1)
        two.append(r2)
        ratios.append(r2 / r1)
        dupes += d1 + d2
        fired_ok = fired_ok and f1 == args.timers and f2 == args.timers
    figures: dict[str, object] = {
        "timers": args.timers, "one_worker_timers_per_s": median(one),
        "two_workers_timers_per_s": median(two), "ratio_two_over_one": median(ratios),
        "target_ratio": 1.6, "duplicates": dupes, "all_fired_once": fired_ok,
        # timers per CPU-second of the worker processes: equal for 1 and 2 workers means the
        # workers do not get in each other's way, and the wall-clock ratio is set by free CPU
        "one_worker_timers_per_cpu_s": median(cpu_one),
        "two_workers_timers_per_cpu_s": median(cpu_two),
        "load_average": os.getloadavg()[0]}
    if busy_one:
        cores = os.cpu_count() or 1
        figures["one_worker_cores_busy"] = median(busy_one)
        figures["two_workers_cores_busy"] = median(busy_two)
        figures["ceiling_two_over_one"] = min(2.0, cores / median(busy_one))
    figures["met"] = median(ratios) >= 1.6 and dupes == 0 and fired_ok
    report("b7_postgres_workers", figures)
    return figures


if __name__ == "__main__":
    main()
