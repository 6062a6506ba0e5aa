"""One command, engine and floor: ``dispatch`` on a freshly reported grid_incident ticket.

The engine runs ``Engine.fire(id, "dispatch", ...)``. The floor runs, with the plain
``sqlite3`` module on a file of the same schema, the statements that command needs with the
bundled grid_incident's SLA clocks, ladder and outbox (issue 10: the targets are for the
bundled lifecycle, not a stripped one): read the ticket, its SLA clocks and its ladder row;
update state and row version if the version is unchanged; insert the history row; cancel the
timers of the state left and of the SLA clock dispatch stops; insert the timer of the state
entered; update the stopped SLA clock and the acknowledged ladder row; insert the outbox event
(one per history row, in the same transaction). Values are computed ahead where the engine
computes them (the clock's elapsed working time): the floor is the statements alone.

The floor's outbox payload is the engine's event, key for key (the same bytes written).
Before measuring, the heap built so far is frozen out of the cyclic garbage collector
(``gc.freeze()``), as ``gridwhistle serve`` does once started; ``--gc-live`` measures
without (in a batch a full collection then walks the engine's ~100,000 long-lived objects
every few thousand commands: about 10 % of a batched command's time).

``--minimal-floor`` (the figure of issue 7, before SLA clocks and the ladder existed) leaves
out the SLA and ladder statements.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from _common import T0, floor_connection, sqlite_text

from engine import Actor, Engine, VirtualClock

CENTRE = Actor("ops-1", "centre")
WORKER = Actor("gw-1", "centre")  # the intake (a grid worker reports with a photo)
DISPATCH_FIELDS = {"department": "water", "queue": "drains"}


def seeded_engine(path: Path, n: int) -> Engine:
    """An engine on ``path`` holding ``n`` reported tickets t0..t{n-1}."""
    eng = Engine(path, clock=VirtualClock(T0))
    for start in range(0, n, 1000):
        with eng.batch():
            for i in range(start, min(n, start + 1000)):
                eng.report("grid_incident", {"category": "blocked drain"}, actor=WORKER,
                           ticket_id=f"t{i}")
    return eng


def engine_runner(eng: Engine, batch: int) -> Callable[[list[str]], None]:
    def run(ids: list[str]) -> None:
        if batch <= 1:
            for tid in ids:
                eng.fire(tid, "dispatch", actor=CENTRE, fields=DISPATCH_FIELDS)
            return
        for start in range(0, len(ids), batch):
            with eng.batch():
                for tid in ids[start:start + batch]:
                    eng.fire(tid, "dispatch", actor=CENTRE, fields=DISPATCH_FIELDS)
    return run


_SELECT = "SELECT * FROM gw_tickets WHERE id = ?"
_UPDATE = ("UPDATE gw_tickets SET state = ?, level = ?, fields = ?, updated_at = ?, "
           "row_version = ?, overdue = ? WHERE id = ? AND row_version = ?")
_HISTORY = ("INSERT INTO gw_history (ticket_id, seq, at, kind, \"trigger\", from_state, "
            "to_state, from_level, to_level, actor, role, reason, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_CANCEL = ("UPDATE gw_timers SET status = 'cancelled' WHERE ticket_id = ? AND "
           "status = 'pending' AND (state = ? OR (state IS NULL AND name IN (?)))")
_TIMER = ("INSERT INTO gw_timers (ticket_id, name, state, due_at, status, created_at) "
          "VALUES (?, ?, ?, ?, 'pending', ?)")
_OUTBOX = ("INSERT INTO gw_outbox (event_id, type, ticket_id, lifecycle, seq, occurred_at, "
           "payload) VALUES (?, ?, ?, ?, ?, ?, ?)")
_SLA = "SELECT * FROM gw_sla_clocks WHERE ticket_id = ?"
_LADDER = "SELECT * FROM gw_ladder WHERE ticket_id = ?"
_CANCEL_SLA = ("UPDATE gw_timers SET status = 'cancelled' WHERE ticket_id = ? AND "
               "status = 'pending' AND name IN (?, ?)")
_STOP_SLA = ("UPDATE gw_sla_clocks SET status = 'stopped', running_since = NULL, "
             "elapsed_seconds = ?, due_at = NULL, stopped_at = ?, outcome = 'met' "
             "WHERE ticket_id = ? AND name = ?")
_ACK = ("UPDATE gw_ladder SET acknowledged_at = ?, acknowledged_by = ? WHERE ticket_id = ? "
        "AND acknowledged_at IS NULL")
FULL_FLOOR = True
FREEZE = True
"""Freeze the heap before measuring (``--gc-live``: do not)."""
_OCCURRED = T0.isoformat()


def floor_command(conn: sqlite3.Connection, tid: str, now_text: str, due_text: str) -> None:
    row = conn.execute(_SELECT, (tid,)).fetchone()
    fields = json.loads(row[4])
    fields.update(DISPATCH_FIELDS)
    version = row[8]
    fields_json = json.dumps(fields)
    cur = conn.execute(_UPDATE, ("dispatched", row[3], fields_json, now_text, version + 1,
                                 False, tid, version))
    if cur.rowcount != 1:
        raise RuntimeError("conflict")
    data = json.dumps({"fields": DISPATCH_FIELDS})
    conn.execute(_HISTORY, (tid, version + 1, now_text, "transition", "dispatch", row[2],
                            "dispatched", row[3], row[3], CENTRE.id, CENTRE.role, None, data))
    conn.execute(_CANCEL, (tid, row[2], ""))
    conn.execute(_TIMER, (tid, "arrival_due", "dispatched", due_text, now_text))
    event_id = str(uuid.uuid4())
    # the event the engine publishes, key for key (docs/events.md): the same bytes to write
    payload = json.dumps({"event_id": event_id, "type": "ticket.transitioned",
                          "occurred_at": _OCCURRED, "ticket_id": tid, "lifecycle": "grid_incident",
                          "seq": version + 1, "kind": "transition", "trigger": "dispatch",
                          "from_state": row[2], "to_state": "dispatched", "from_level": row[3],
                          "to_level": row[3], "actor": CENTRE.id, "role": CENTRE.role,
                          "reason": None, "data": {"fields": DISPATCH_FIELDS}, "fields": fields})
    conn.execute(_OUTBOX, (event_id, "ticket.transitioned", tid, "grid_incident",
                           version + 1, now_text, payload))
    if FULL_FLOOR:
        conn.execute(_SLA, (tid,)).fetchall()
        conn.execute(_LADDER, (tid,)).fetchone()
        conn.execute(_CANCEL_SLA, (tid, "sla:time_to_dispatch", "sla:time_to_dispatch:warn:0"))
        conn.execute(_STOP_SLA, (1800.0, now_text, tid, "time_to_dispatch"))
        conn.execute(_ACK, (now_text, CENTRE.id, tid))


def floor_runner(path: Path, batch: int) -> Callable[[list[str]], None]:
    conn = floor_connection(path)
    now_text = sqlite_text(T0)
    due_text = sqlite_text(T0 + timedelta(hours=2))

    def run(ids: list[str]) -> None:
        step = max(batch, 1)
        for start in range(0, len(ids), step):
            conn.execute("BEGIN IMMEDIATE")
            for tid in ids[start:start + step]:
                floor_command(conn, tid, now_text, due_text)
            conn.execute("COMMIT")
    return run


def profile_engine(size: int, batch: int, work: Path, out: Path) -> None:
    """Write a pyinstrument text profile of the engine running ``size`` commands to ``out``.

    A separate run after the measured rounds (the profiler slows the engine, not the floor).
    """
    from pyinstrument import Profiler

    eng = seeded_engine(work / "profile.sqlite", size)
    run = engine_runner(eng, batch)
    if FREEZE:  # as the measured rounds run (see interleaved)
        gc.collect()
        gc.freeze()
    profiler = Profiler(interval=0.0002)
    profiler.start()
    run([f"t{i}" for i in range(size)])
    profiler.stop()
    eng.stop()
    out.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")


def interleaved(size: int, rounds: int, batch: int, work: Path) -> dict[str, float]:
    """Run engine and floor alternately, ``rounds`` times ``size`` commands each."""
    work.mkdir(parents=True, exist_ok=True)
    n = size * rounds
    eng = seeded_engine(work / "engine.sqlite", n)
    seeded_engine(work / "floor.sqlite", n).stop()  # the same schema and rows for the floor
    run_engine = engine_runner(eng, batch)
    run_floor = floor_runner(work / "floor.sqlite", batch)
    if FREEZE:
        # as `gridwhistle serve` does once started (adapters/cli/serve.py, docs/operations.md):
        # the heap built so far leaves the cyclic collector's view, so that its full
        # collections do not walk the engine's compiled lifecycles and statements again
        # and again; both runs below are measured under it (the floor allocates little)
        gc.collect()
        gc.freeze()
    ratios, engine_rates, floor_rates = [], [], []
    for r in range(rounds):
        ids = [f"t{i}" for i in range(r * size, (r + 1) * size)]
        t = time.perf_counter()
        run_engine(ids)
        e = time.perf_counter() - t
        t = time.perf_counter()
        run_floor(ids)
        f = time.perf_counter() - t
        engine_rates.append(size / e)
        floor_rates.append(size / f)
        ratios.append(f / e)
    eng.stop()
    from _common import median
    return {"engine_cmd_per_s": median(engine_rates), "floor_cmd_per_s": median(floor_rates),
            "ratio_engine_over_floor": median(ratios), "ratio_lowest": min(ratios),
            "ratio_highest": max(ratios)}
