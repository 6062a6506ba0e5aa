"""Benchmark 3: core overhead without I/O.

Binding: wrapping a stored ticket's state in ``Subject`` for the shared Machine (no
``add_model`` per ticket). Firing: ``Lifecycle.fire(subject, ctx)`` for ``dispatch`` vs the same
trigger on a bare ``transitions`` model (one Machine with the same states and transitions,
model state reset after each fire), timed alternately in the same run.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from _common import median, report
from transitions import Machine

from engine import Registry, load_definition
from engine.lifecycle.machine import Lifecycle, Subject
from engine.lifecycle.registry import CommandContext


class _Bare:
    state = "reported"


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=100_000, help="operations per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    definition = load_definition("grid_incident")
    lc = Lifecycle(definition, Registry())
    spec = definition.spec
    bare = _Bare()
    Machine(model=bare, states=list(spec.states), initial="reported", auto_transitions=False,
            transitions=[{"trigger": t.trigger, "source": list(t.source), "dest": t.dest}
                         for t in spec.transitions])
    now = datetime(2024, 1, 1, tzinfo=UTC)
    n = args.size
    bind_us, fire_ratio, fire_us, bare_us = [], [], [], []
    states = ["reported"] * n
    for _ in range(args.rounds):
        t = time.perf_counter()
        for s in states:
            Subject(s)
        bind_us.append((time.perf_counter() - t) / n * 1e6)

        t = time.perf_counter()
        for _i in range(n):
            ctx = CommandContext("t1", "dispatch", "reported", "", "community", {}, "ops-1",
                                 "centre", None, now)
            lc.fire(Subject("reported"), ctx)
        ours = (time.perf_counter() - t) / n * 1e6

        t = time.perf_counter()
        for _i in range(n):
            bare.state = "reported"
            bare.dispatch()  # type: ignore[attr-defined]
        theirs = (time.perf_counter() - t) / n * 1e6
        fire_us.append(ours)
        bare_us.append(theirs)
        fire_ratio.append(ours / theirs)
    figures = {"bind_us": median(bind_us), "bind_target_us": 5.0,
               "fire_us": median(fire_us), "bare_transitions_fire_us": median(bare_us),
               "fire_ratio_over_bare": median(fire_ratio), "fire_target_ratio": 1.5}
    figures["met"] = figures["bind_us"] <= 5.0 and figures["fire_ratio_over_bare"] <= 1.5
    report("b3_core", figures)
    return figures


if __name__ == "__main__":
    main()
