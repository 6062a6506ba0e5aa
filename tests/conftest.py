"""Shared fixtures: a virtual clock, an Engine on a real SQLite file, and one actor per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import START
from hypothesis import Phase, settings

from engine import Actor, Engine, Registry, VirtualClock
from engine.definition import bundled_workflows_dir

# `pytest --hypothesis-profile=no-shrink`: report a failing example as found, without
# minutes of shrinking (e.g. tests/test_batch_equivalence.py while it fails).
settings.register_profile("no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "t.sqlite"


@pytest.fixture
def engine(db_path: Path, clock: VirtualClock) -> Iterator[Engine]:
    eng = Engine(db_path, clock=clock)
    yield eng
    eng.stop()


@pytest.fixture
def make_engine(db_path: Path, clock: VirtualClock) -> Iterator[Callable[..., Engine]]:
    """Open more engines (on the test's SQLite file by default); all are stopped at teardown."""
    opened: list[Engine] = []

    def make(
        path: Path | None = None, *, registry: Registry | None = None, **kwargs: Any
    ) -> Engine:
        kwargs.setdefault("clock", clock)
        eng = Engine(path or db_path, registry=registry, **kwargs)
        opened.append(eng)
        return eng

    yield make
    for eng in opened:
        eng.stop()


@pytest.fixture
def reporter() -> Actor:
    """Who reports in tests not about evidence: the centre's intake (a hotline call).

    A grid worker's report needs a photo (the bundled grid_incident's requirements); the
    evidence tests report as grid workers with real files (tests/test_evidence.py).
    """
    return Actor("hotline-1", "centre")


@pytest.fixture
def centre() -> Actor:
    return Actor("ops-1", "centre")


@pytest.fixture
def department() -> Actor:
    return Actor("water-3", "department")


@pytest.fixture
def system() -> Actor:
    return Actor("gridwhistle", "system")


@pytest.fixture
def grid_incident_text() -> str:
    return (bundled_workflows_dir() / "grid_incident.yaml").read_text(encoding="utf-8")


@pytest.fixture
def snapshot() -> Callable[[Engine, str], tuple[Any, Any, Any]]:
    """Everything a refused command must leave alone: the ticket, its history, its timers."""

    def take(eng: Engine, ticket_id: str) -> tuple[Any, Any, Any]:
        return eng.get(ticket_id), eng.history(ticket_id), eng.timers(ticket_id)

    return take
