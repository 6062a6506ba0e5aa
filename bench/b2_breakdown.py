"""Benchmark 2's batched ``dispatch``, taken apart: where a command's time goes.

Not a benchmark with a target but the measurement behind docs/performance.md's account of
benchmark 2. Three figures, each from its own run on its own fresh files:

* **phases**: the engine's steps timed with ``perf_counter`` around them (the ticket's load,
  the record built from it, ``transitions``, the history rows' staging, the participants'
  check and plan, the flush and its statements), per command; wrappers included, so the
  sum is a little above an unwrapped run;
* **the engine's own SQL**: every statement the engine hands the driver in one batched run,
  recorded at the driver and replayed alone (``BEGIN``/``COMMIT`` where the engine's
  transactions were) on a copy of the database taken before the run — what the engine's
  SQL costs without any of its Python; next to it the floor on the same data;
* **the garbage collector**: the time its collections take during a run, per command.

The hooks it installs are for measuring only (they wrap the store's driver access and a few
functions of the pipeline from outside); nothing here is used by the engine.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _dispatch
from _common import T0, floor_connection, report, workdir
from _dispatch import engine_runner, floor_runner, seeded_engine

from engine import Engine, VirtualClock
from engine.lifecycle import machine
from engine.runtime import commands, unit_of_work
from engine.store import _cursor


def _timed(owner: Any, name: str, label: str, acc: dict[str, float]) -> Callable[[], None]:
    """Wrap ``owner.name`` to add its wall time to ``acc[label]``; return the undo."""
    original = getattr(owner, name)
    clock = time.perf_counter

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return original(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0.0) + clock() - started

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def phases(work: Path, size: int, batch: int) -> dict[str, float]:
    """µs per command of each step of the engine, and of the whole engine and the floor."""
    eng = seeded_engine(work / "phases.sqlite", size)
    seeded_engine(work / "phases-floor.sqlite", size).stop()
    acc: dict[str, float] = {}
    undo = [_timed(commands, "load_tickets", "load", acc),
            _timed(commands.CommandHandler, "_record", "record", acc),
            _timed(machine.Lifecycle, "fire", "transitions", acc),
            _timed(commands, "_stage_rows", "stage_rows", acc),
            _timed(commands.CommandHandler, "_pass", "check_and_plan", acc),
            _timed(unit_of_work.UnitOfWork, "_flush", "flush", acc),
            _timed(_cursor.Runner, "run_many", "flush_statements", acc)]
    run_engine, run_floor = engine_runner(eng, batch), floor_runner(
        work / "phases-floor.sqlite", batch)
    ids = [f"t{i}" for i in range(size)]
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    run_engine(ids)
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    run_floor(ids)
    floor_s = time.perf_counter() - started
    for step in undo:
        step()
    eng.stop()
    out = {f"phase_{k}_us": v / size * 1e6 for k, v in acc.items()}
    out["phases_engine_us"] = engine_s / size * 1e6
    out["phases_floor_us"] = floor_s / size * 1e6
    return out


class _Recorder:
    """The driver connection, recording every statement and its values on the way."""

    def __init__(self, raw: Any, log: list[tuple[str, str, Any]]):
        self._raw, self._log = raw, log

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._log.append(("one", sql, list(params)))
        return self._raw.execute(sql, params)

    def executemany(self, sql: str, seq: Any) -> Any:
        rows = [list(p) for p in seq]
        self._log.append(("many", sql, rows))
        return self._raw.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def engine_sql(work: Path, size: int, batch: int) -> dict[str, float]:
    """µs per command of the engine's statements replayed on their own, and of the floor."""
    path, copy = work / "sql.sqlite", work / "sql-copy.sqlite"
    seeded_engine(path, size).stop()
    seeded_engine(work / "sql-floor.sqlite", size).stop()
    shutil.copy(path, copy)
    log: list[tuple[str, str, Any]] = []
    raw_of = _cursor._raw
    _cursor._raw = lambda conn: _Recorder(raw_of(conn), log)  # type: ignore[assignment]
    try:
        eng = Engine(path, clock=VirtualClock(T0))
        engine_runner(eng, batch)([f"t{i}" for i in range(size)])
        eng.stop()
    finally:
        _cursor._raw = raw_of  # type: ignore[assignment]
    conn = floor_connection(copy)
    gc.collect()
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    previous = "one"
    for i, (kind, sql, params) in enumerate(log):
        if kind == "one":
            if previous == "many" and i:  # a batch's flush ended: the engine committed
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, params).fetchall()
        else:
            conn.executemany(sql, params)
        previous = kind
    conn.execute("COMMIT")
    replay_s = time.perf_counter() - started
    conn.close()
    run_floor = floor_runner(work / "sql-floor.sqlite", batch)
    started = time.perf_counter()
    run_floor([f"t{i}" for i in range(size)])
    floor_s = time.perf_counter() - started
    return {"engine_sql_alone_us": replay_s / size * 1e6,
            "engine_sql_floor_us": floor_s / size * 1e6,
            "engine_sql_statements": float(len(log))}


def collector(work: Path, size: int, batch: int) -> dict[str, float]:
    """µs per command spent in the garbage collector's collections during a batched run."""
    eng = seeded_engine(work / "gc.sqlite", size)
    run = engine_runner(eng, batch)
    gc.collect()
    gc.freeze()
    spent = [0.0, 0.0]  # total, start of the current collection

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]

    gc.callbacks.append(note)
    try:
        started = time.perf_counter()
        run([f"t{i}" for i in range(size)])
        total = time.perf_counter() - started
    finally:
        gc.callbacks.remove(note)
        eng.stop()
    return {"gc_us": spent[0] / size * 1e6, "gc_engine_us": total / size * 1e6}


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=5000, help="commands per run")
    ap.add_argument("--batch", type=int, default=500, help="commands per transaction")
    args = ap.parse_args(argv)
    _dispatch.FULL_FLOOR = True
    with workdir() as work:
        figures = {**phases(work, args.size, args.batch),
                   **engine_sql(work, args.size, args.batch),
                   **collector(work, args.size, args.batch)}
    report("b2_breakdown", figures)
    return figures


if __name__ == "__main__":
    main()
