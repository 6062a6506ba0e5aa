"""Benchmark 9: working-time arithmetic, cumulative index vs the day-by-day walk.

grid_incident's ``centre_hours`` (Asia/Shanghai, split shift 08:30-12:00 / 13:30-17:30, CN
public holidays and make-up workdays, valid 2010-2030). ``--size`` random start instants
(fixed seed) between 2011 and 2027; for each span (1 day, 1 year, 3 years)
``working_between(start, start + span)`` and ``add(start, that much working time)``, through
``BusinessCalendar`` (the index, warm) and through ``engine/calendars/_walking.py`` (the walk
the index replaced), in alternating rounds; the median µs per call and the walk / index ratio.
Every result of the index is checked against the walk's. Also: the index's first build (the
years a 3-year computation needs, then all 21 years) on a fresh calendar, and its size.
Target: O(log days) — the index's 3-year call costs at most twice its 1-day call.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import median, report

from engine import load_definition
from engine.calendars import BusinessCalendar, _walking, compile_calendars

SPANS = {"1d": timedelta(days=1), "1y": timedelta(days=365), "3y": timedelta(days=3 * 365)}


def centre_hours() -> BusinessCalendar:
    return compile_calendars(load_definition("grid_incident").spec.calendars)["centre_hours"]


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=200, help="start instants per span and round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    rng = random.Random(9)
    lo, hi = datetime(2011, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    starts = [lo + timedelta(seconds=rng.randrange(int((hi - lo).total_seconds())))
              for _ in range(args.size)]

    figures: dict[str, object] = {}
    cold = centre_hours()
    t = time.perf_counter()
    cold.working_between(starts[0], starts[0] + SPANS["3y"])
    first_ms = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    cold.working_between(datetime(2010, 1, 1, tzinfo=UTC), datetime(2030, 12, 1, tzinfo=UTC))
    figures["first_3y_call_ms"] = first_ms
    figures["full_build_ms"] = (time.perf_counter() - t) * 1e3 + first_ms
    stats = cold.index_stats()
    figures["index_days"], figures["index_kb"] = stats["days"], stats["bytes"] / 1024

    cal = centre_hours()
    work = {name: [_walking.working_between(cal, s, s + span) for s in starts]
            for name, span in SPANS.items()}
    for name, span in SPANS.items():  # warm the index; it must agree with the walk
        assert [cal.working_between(s, s + span) for s in starts] == work[name]
        assert [cal.add(s, w) for s, w in zip(starts, work[name], strict=True)] == [
            _walking.add(cal, s, w) for s, w in zip(starts, work[name], strict=True)]

    per: dict[str, list[float]] = {}

    def timed(key: str, fn: Callable[[datetime, Any], object],
              pairs: Sequence[tuple[datetime, Any]]) -> float:
        t0 = time.perf_counter()
        for a, b in pairs:
            fn(a, b)
        us = (time.perf_counter() - t0) / len(pairs) * 1e6
        per.setdefault(key, []).append(us)
        return us

    for _ in range(args.rounds):
        for name, span in SPANS.items():
            ends = [(s, s + span) for s in starts]
            adds = list(zip(starts, work[name], strict=True))
            ours = timed(f"working_between_{name}_index_us", cal.working_between, ends)
            walk = timed(f"working_between_{name}_walk_us",
                         lambda a, b: _walking.working_between(cal, a, b), ends)
            per.setdefault(f"working_between_{name}_speedup", []).append(walk / ours)
            ours = timed(f"add_{name}_index_us", cal.add, adds)
            walk = timed(f"add_{name}_walk_us", lambda a, b: _walking.add(cal, a, b), adds)
            per.setdefault(f"add_{name}_speedup", []).append(walk / ours)
    medians = {key: median(values) for key, values in per.items()}
    figures.update(medians)
    figures["met"] = all(medians[f"{op}_3y_index_us"] <= 2 * medians[f"{op}_1d_index_us"]
                         for op in ("working_between", "add"))
    report("b9_calendar", figures)
    return figures


if __name__ == "__main__":
    main()
