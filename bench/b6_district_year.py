"""Benchmark 6: a district's year.

Generates ``--tickets`` (default 143,452) service requests with the Boston sample's mix: each
one copies a sample row chosen at random (its type, department, queue, channel, area and the
city's verdict) and keeps that row's time of day, SLA window (target - open) and time to close
(closed - open, which also keeps the share closed late); the report day is spread evenly over
2024, and the rows are written in order of report time (as an export sorted by open date;
one day's rows at a time, so generating holds no more than a day). The CSV is replayed with
``gridwhistle replay``'s code path (adapters/replay/replayer.py: ``Engine.batch`` +
``Engine.run_until``, every grid_incident deadline on the virtual clock) into a fresh SQLite
file. Target (issue 10): <= 60 s wall and <= 200 MB peak RSS. The replay streams
(it holds the tickets open at a time, not the input), so the peak RSS does not grow with
``--tickets``: at 143,452 and at 286,904 tickets it should differ by <= 10 %.

In the same run, the sqlite3 floor of benchmark 2 (the statements of one command, in batches of
500) is timed on 5,000 commands, to say how long the same number of commands would take at the
floor's rate. ``--profile FILE`` writes a pyinstrument text profile of the replay.
"""

from __future__ import annotations

import argparse
import csv
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import median, peak_rss_mb, report, rss_mb, workdir
from _dispatch import interleaved

from adapters.replay.mapping import load_mapping
from adapters.replay.replayer import replay
from engine import Engine, VirtualClock

SAMPLE = Path(__file__).resolve().parent.parent / "adapters/replay/data/boston311_sample.csv"
FMT = "%Y-%m-%d %H:%M:%S"


def generate(out: Path, tickets: int, seed: int = 7) -> None:
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    rng = random.Random(seed)
    year = datetime(2024, 1, 1)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        today: list[dict[str, str]] = []
        current = None
        for i in range(tickets):
            src = rng.choice(rows)
            opened = datetime.strptime(src["open_dt"], FMT)
            day = year + timedelta(days=366 * i // tickets)
            if day != current:
                writer.writerows(sorted(today, key=lambda r: r["open_dt"]))
                today, current = [], day
            new_open = day.replace(hour=opened.hour, minute=opened.minute, second=opened.second)
            row = dict(src)
            row["case_enquiry_id"] = str(900_000_000_000 + i)
            row["open_dt"] = new_open.strftime(FMT)
            for col in ("target_dt", "closed_dt"):
                if src[col].strip():
                    delta = datetime.strptime(src[col], FMT) - opened
                    row[col] = (new_open + delta).strftime(FMT)
            today.append(row)
        writer.writerows(sorted(today, key=lambda r: r["open_dt"]))


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tickets", type=int, default=143_452)
    ap.add_argument("--floor-commands", type=int, default=5000)
    ap.add_argument("--profile", type=Path, default=None, help="pyinstrument text output")
    args = ap.parse_args(argv)
    with workdir() as work:
        data = work / "district.csv"
        generate(data, args.tickets)
        floor_before = interleaved(args.floor_commands, 1, 500, work / "f1")
        rss_start = rss_mb()
        eng = Engine(work / "district.sqlite",
                     clock=VirtualClock(datetime(1970, 1, 1, tzinfo=UTC)))
        profiler = None
        if args.profile is not None:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        t = time.perf_counter()
        outcome = replay(eng, data, load_mapping("boston311"))
        wall = time.perf_counter() - t
        peak = peak_rss_mb()  # before a profiler renders its (large) tree
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_text(unicode=False, color=False,
                                                          show_all=False))
        eng.stop()
        conn = sqlite3.connect(work / "district.sqlite")
        transitions = conn.execute("SELECT count(*) FROM gw_history").fetchone()[0]
        fired = conn.execute("SELECT count(*) FROM gw_timers WHERE status IN "
                             "('fired', 'stale')").fetchone()[0]
        conn.close()
        floor_after = interleaved(args.floor_commands, 1, 500, work / "f2")
    floor_rate = median([floor_before["floor_cmd_per_s"], floor_after["floor_cmd_per_s"]])
    commands = outcome.events_applied + fired
    floor_s = commands / floor_rate
    figures: dict[str, object] = {
        "tickets": outcome.planned, "events_applied": outcome.events_applied,
        "source_order": outcome.source_order,
        "timers_fired": fired, "history_rows": transitions,
        "wall_s": wall, "tickets_per_s": outcome.planned / wall,
        "transitions_per_s": transitions / wall,
        "peak_rss_mb": round(peak, 1), "rss_mb_before_replay": round(rss_start, 1),
        "floor_cmd_per_s": floor_rate, "floor_estimate_s": floor_s,
        "ratio_floor_over_engine": floor_s / wall,
        "target_wall_s_scaled": 60.0 * args.tickets / 143_452,
    }
    figures["met"] = wall <= figures["target_wall_s_scaled"] and peak <= 200  # type: ignore[operator]
    report("b6_district_year", figures)
    return figures


if __name__ == "__main__":
    main()
