"""Every benchmark in bench/ runs at a tiny size and prints its figures (no timings checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

URL = os.environ.get("GRIDWHISTLE_POSTGRES_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BENCH = Path(__file__).resolve().parent.parent / "bench"

CASES = {
    "b1_single_command": ["--size", "40", "--rounds", "1"],
    "b2_batch": ["--size", "60", "--rounds", "1", "--batch", "25"],
    "b2_breakdown": ["--size", "60", "--batch", "25"],
    "b3_core": ["--size", "500", "--rounds", "1"],
    "b4_timers_at_scale": ["--pending", "3000", "--small", "300", "--due", "20",
                           "--rounds", "1"],
    "b5_lateness": ["--timers", "40", "--window", "0.5"],
    "b6_district_year": ["--tickets", "60", "--floor-commands", "40"],
    "b8_peer_spiff": ["--size", "4", "--rounds", "1"],
    "b11_writer_wait": ["--timers", "30", "--every", "0.001"],
    "b9_calendar": ["--size", "3", "--rounds", "1"],
    "b10_console_live": ["--reports", "3", "--boards", "1", "--gap", "0.05"],
    "b12_replay_overhead": ["--tickets", "40", "--rounds", "1"],
}


def run_bench(name: str, args: list[str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *args], cwd=BENCH,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line[5:] for line in done.stdout.splitlines() if line.startswith("JSON ")]
    assert len(lines) == 1, done.stdout
    figures: dict[str, object] = json.loads(lines[0])
    assert figures["bench"] == name
    assert figures["machine"]["nproc"] == os.cpu_count()  # type: ignore[index]
    return figures


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_at_a_tiny_size(name: str) -> None:
    figures = run_bench(name, CASES[name])
    if name == "b4_timers_at_scale":
        assert "USING INDEX ix_gw_timers_status_due_at" in str(figures["claim_plan"])
        assert figures["fired_per_round"] == 20
    if name == "b5_lateness":
        assert figures["fired"] == 40
    if name == "b6_district_year":
        assert figures["tickets"] == 60
        assert figures["events_applied"] == 300  # report, dispatch, arrive, resolve, close
    if name == "b9_calendar":
        assert figures["index_days"] == 7_670  # centre_hours, 2010-01-01 .. 2030-12-31
    if name == "b10_console_live":
        assert (figures["received"], figures["missed"]) == (3, 0)  # every report reached it
    if name == "b12_replay_overhead":
        assert (figures["tickets"], figures["events_applied"]) == (40, 200)
        assert figures["ratio_replay_over_core"] > 0


@pytest.mark.postgres
def test_postgres_workers_benchmark_fires_each_timer_once() -> None:
    try:
        create_engine(URL).connect().close()
    except (OperationalError, ImportError) as exc:
        if os.environ.get("GRIDWHISTLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {URL} is required but not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {URL}: {exc}")
    figures = run_bench("b7_postgres_workers", ["--timers", "40", "--rounds", "1"])
    assert figures["duplicates"] == 0
    assert figures["all_fired_once"] is True
