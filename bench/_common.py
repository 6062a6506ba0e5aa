"""Shared helpers of the benchmarks: machine facts, RSS, medians, a fresh SQLite file."""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

T0 = datetime(2024, 1, 1, 8, tzinfo=UTC)


def machine() -> dict[str, object]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "load": os.getloadavg()[0]}


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as d:
        yield Path(d)


def sqlite_text(value: datetime) -> str:
    """An instant as the engine stores it in SQLite (naive UTC text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def floor_connection(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection tuned like the engine's: WAL, synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def report(name: str, figures: dict[str, object]) -> None:
    """Print one benchmark's result: a readable line and a JSON line (for docs)."""
    parts = ", ".join(f"{k}={_fmt(v)}" for k, v in figures.items())
    print(f"[{name}] {parts}")
    print("JSON " + json.dumps({"bench": name, **figures, "machine": machine()}, default=str))
    sys.stdout.flush()


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
