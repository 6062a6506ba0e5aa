"""Benchmark 11: an API write's wait on SQLite while 10,000 due timers fire.

``--timers`` (default 10,000) tickets whose ``dispatch_due`` is already past are stored; one
engine (the worker, as in ``gridwhistle serve``: same process) fires them with ``run_due``,
a few per transaction (``Engine(timers_per_transaction=...)``, default 20), while a second
engine on the same file in the same process — the API — reports a new ticket every
``--every`` seconds (default 0.01) until the firing is done. Each report's wait is the time
from calling ``Engine.report`` to its return. Prints the worst and p99 wait and how long the
firing took. Target (issue 10): worst wait <= 50 ms. Like ``gridwhistle serve`` once started,
it freezes the heap built so far out of the cyclic garbage collector (``gc.freeze()``): else a
full collection now and then pauses every thread for 60-90 ms, which is then the worst wait.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
from datetime import timedelta

from _common import T0, report, workdir
from _dispatch import WORKER

from engine import Engine, VirtualClock


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--timers", type=int, default=10_000)
    ap.add_argument("--every", type=float, default=0.01, help="seconds between API writes")
    ap.add_argument("--per-transaction", type=int, default=20)
    args = ap.parse_args(argv)
    n = args.timers
    with workdir() as work:
        path = work / "wait.sqlite"
        clock = VirtualClock(T0)
        setup = Engine(path, clock=clock)
        for start in range(0, n, 1000):
            with setup.batch():
                for i in range(start, min(n, start + 1000)):
                    setup.report("grid_incident", {"category": "x"}, actor=WORKER,
                                 ticket_id=f"t{i}")
        setup.stop()
        later = VirtualClock(T0 + timedelta(hours=1))  # every dispatch_due (30 min) is due
        worker = Engine(path, clock=later, timers_per_transaction=args.per_transaction)
        api = Engine(path, clock=later)
        gc.collect()  # as `gridwhistle serve` does once started (adapters/cli/serve.py)
        gc.freeze()
        waits: list[float] = []
        firing = threading.Event()
        done = threading.Event()

        def write() -> None:
            firing.wait()
            i = 0
            while not done.is_set():
                began = time.perf_counter()
                api.report("grid_incident", {"category": "api"}, actor=WORKER,
                           ticket_id=f"api-{i}")
                waits.append(time.perf_counter() - began)
                i += 1
                time.sleep(args.every)

        writer = threading.Thread(target=write)
        writer.start()
        began = time.perf_counter()
        firing.set()
        fired = worker.run_due(T0 + timedelta(hours=1))
        firing_s = time.perf_counter() - began
        done.set()
        writer.join()
        worker.stop()
        api.stop()
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(0.99 * len(waits)))] if waits else float("nan")
    worst = waits[-1] if waits else float("nan")
    figures: dict[str, object] = {
        "timers": n, "fired": len([f for f in fired if f.timer.ticket_id.startswith("t")]),
        "firing_s": firing_s, "api_writes": len(waits), "p99_wait_s": p99,
        "worst_wait_s": worst, "per_transaction": args.per_transaction,
        "target_worst_s": 0.05, "met": worst <= 0.05}
    report("b11_writer_wait", figures)
    return figures


if __name__ == "__main__":
    main()
