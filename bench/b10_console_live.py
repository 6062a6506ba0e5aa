"""Benchmark 9: how soon a report by another client reaches an open console board.

A real uvicorn server on loopback serves the app (the console included) over a SQLite file on
the system clock. ``--boards`` (default 3) clients hold the board's event stream open
(``GET /console/events``, as the page's ``EventSource`` does); another client then reports
``--reports`` (default 50) tickets over the JSON API, one every ``--gap`` seconds. Delay =
the instant a board receives the ticket's ``card`` event - the instant the report's POST was
sent. It covers the commit, the stream's outbox poll (every 0.15 s), rendering the card and
the network. Target: p99 under 1 s.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
from typing import Any

import httpx
import uvicorn
from _common import report, workdir

from adapters.http import ApiKey, create_app
from engine import Engine

KEYS = {"k-centre": ApiKey(actor="ops-1", role="centre"),
        "k-gw": ApiKey(actor="gw-017", role="centre")}


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def board(url: str, seen: dict[str, float], ready: threading.Event, stop: threading.Event,
          want: int) -> None:
    with httpx.stream("GET", f"{url}/console/events", headers={"X-API-Key": "k-centre"},
                      timeout=httpx.Timeout(5.0, read=None)) as r:
        ready.set()
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "card":
                tid = json.loads(line[6:])["id"]
                seen.setdefault(tid, time.perf_counter())
                if len(seen) >= want or stop.is_set():
                    return


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reports", type=int, default=50)
    ap.add_argument("--boards", type=int, default=3)
    ap.add_argument("--gap", type=float, default=0.1, help="seconds between reports")
    args = ap.parse_args(argv)
    with workdir() as work:
        engine = Engine(work / "live.sqlite")
        server, thread, url = serve(create_app(engine, api_keys=KEYS))
        stop = threading.Event()
        boards = []
        for _ in range(args.boards):
            seen: dict[str, float] = {}
            ready = threading.Event()
            t = threading.Thread(target=board, args=(url, seen, ready, stop, args.reports),
                                 daemon=True)
            t.start()
            ready.wait(10)
            boards.append((t, seen))
        time.sleep(0.5)  # the streams have read the outbox's end
        sent: dict[str, float] = {}
        with httpx.Client(base_url=url, headers={"X-API-Key": "k-gw"}) as client:
            for i in range(args.reports):
                tid = f"T-{i}"
                sent[tid] = time.perf_counter()
                r = client.post("/tickets", json={"ticket_id": tid,
                                                  "fields": {"category": "noise"}})
                r.raise_for_status()
                time.sleep(args.gap)
        for t, _ in boards:
            t.join(timeout=10)
        stop.set()
        server.should_exit = True
        thread.join(timeout=10)
        engine.stop()
    delays = sorted(seen[tid] - sent[tid] for _, seen in boards for tid in sent if tid in seen)
    missed = args.reports * args.boards - len(delays)
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))] if delays else float("nan")
    figures: dict[str, object] = {
        "reports": args.reports, "boards": args.boards, "received": len(delays),
        "missed": missed,
        "delay_median_s": statistics.median(delays) if delays else float("nan"),
        "delay_p99_s": p99, "delay_max_s": delays[-1] if delays else float("nan"),
        "target_p99_s": 1.0, "met": bool(delays) and missed == 0 and p99 < 1.0,
    }
    report("b10_console_live", figures)
    return figures


if __name__ == "__main__":
    main()
