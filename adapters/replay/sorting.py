"""Putting planned tickets in time order with bounded memory (an external merge sort).

A replay applies events in time order while it reads, so it needs its input in order of
report time. An input that is not (an Open311 dump newest first, a CSV sorted by id) is
sorted here: up to ``run_size`` plans are sorted in memory; beyond that, sorted runs are
written to files in a scratch folder (``pickle``, in blocks of :data:`BLOCK` items) and
merged with :func:`heapq.merge`, which holds one block per run. Memory is bounded by
``run_size`` plans plus a block per run, whatever the input's length.
"""

from __future__ import annotations

import heapq
import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["RUN_SIZE", "sort_plans"]

T = TypeVar("T")

RUN_SIZE = 5000
"""Plans sorted in memory at once (a district's plan is ~2 KB: ~10 MB)."""

BLOCK = 64
"""Items written (and read back) with one ``pickle`` call: one call per item costs ~10x more."""

MAX_RUNS = 200
"""Runs merged at once; more are first merged into longer runs (open files stay few)."""


def sort_plans(plans: Iterable[T], key: Callable[[T], Any], folder: Path, *,
               run_size: int | None = None) -> Iterator[T]:
    """Yield ``plans`` sorted by ``key`` (stable), spilling sorted runs into ``folder``.

    Args:
        plans: the plans, in any order; consumed entirely before the first is yielded.
        key: the sort key (for a replay: report instant, then row number).
        folder: an existing folder for the run files (they are removed once merged).
        run_size: plans sorted in memory at once (default :data:`RUN_SIZE`).
    """
    size = run_size or RUN_SIZE
    runs: list[Path] = []
    buffer: list[T] = []
    for plan in plans:
        buffer.append(plan)
        if len(buffer) >= size:
            runs.append(_write_run(sorted(buffer, key=key), folder, len(runs)))
            buffer = []
    buffer.sort(key=key)
    if not runs:
        yield from buffer
        return
    if buffer:
        runs.append(_write_run(buffer, folder, len(runs)))
        buffer = []
    serial = len(runs)
    while len(runs) > MAX_RUNS:  # merge groups of runs into longer ones first
        merged: list[Path] = []
        for start in range(0, len(runs), MAX_RUNS):
            group = runs[start:start + MAX_RUNS]
            merged.append(_write_run(heapq.merge(*map(_read_run, group), key=key), folder,
                                     serial))
            serial += 1
        runs = merged
    yield from heapq.merge(*map(_read_run, runs), key=key)


def _write_run(plans: Iterable[Any], folder: Path, number: int) -> Path:
    path = folder / f"run-{number:06d}.pickle"
    with path.open("wb") as handle:
        block: list[Any] = []
        for plan in plans:
            block.append(plan)
            if len(block) >= BLOCK:
                pickle.dump(block, handle, protocol=pickle.HIGHEST_PROTOCOL)
                block = []
        if block:
            pickle.dump(block, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _read_run(path: Path) -> Iterator[Any]:
    """The plans of one run file, in order; the file is removed once read."""
    try:
        with path.open("rb") as handle:
            while True:
                try:
                    block = pickle.load(handle)  # our own file, written above
                except EOFError:
                    return
                yield from block
    finally:
        path.unlink(missing_ok=True)
