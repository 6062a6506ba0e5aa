"""Benchmark 1: a persisted transition, one command per transaction, vs the sqlite3 floor."""

from __future__ import annotations

import argparse
from pathlib import Path

import _dispatch
from _common import report, workdir
from _dispatch import interleaved


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=2000, help="commands per round")
    ap.add_argument("--rounds", type=int, default=15,
                    help="rounds (the median is reported; one round's ratio varies by "
                         "±15%% on a shared 2-core machine, so 15 rather than 5)")
    ap.add_argument("--minimal-floor", action="store_true",
                    help="the floor without the SLA and ladder statements (issue 7's)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="also write a pyinstrument text profile of one engine round here")
    ap.add_argument("--gc-live", action="store_true",
                    help="do not freeze the heap out of the garbage collector first")
    args = ap.parse_args(argv)
    _dispatch.FULL_FLOOR = not args.minimal_floor
    _dispatch.FREEZE = not args.gc_live
    with workdir() as work:
        if args.profile is not None:
            _dispatch.profile_engine(args.size, 1, work, args.profile)
        figures = interleaved(args.size, args.rounds, 1, work)
    figures["target_ratio"] = 0.5
    figures["floor"] = "full" if _dispatch.FULL_FLOOR else "minimal"
    figures["heap"] = "frozen" if _dispatch.FREEZE else "live"
    figures["met"] = figures["ratio_engine_over_floor"] >= 0.5
    report("b1_single_command", figures)
    return figures


if __name__ == "__main__":
    main()
