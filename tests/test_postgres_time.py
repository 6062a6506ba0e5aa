"""SLA clocks, the ladder and lags on PostgreSQL (same contract as on SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_postgres import pg_engine  # noqa: F401  (the fixture: a schema of its own)

from engine import Actor, Engine, MinimumLagNotReached

pytestmark = pytest.mark.postgres

TIMED = Path(__file__).parent / "definitions" / "timed.yaml"
NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)


def test_sla_ladder_and_lag_on_postgres(pg_engine: Engine) -> None:  # noqa: F811
    eng = pg_engine
    eng.clock.set(ny(2024, 6, 5, 9))  # type: ignore[attr-defined]
    eng.deploy(TIMED)
    eng.report("timed", {}, actor=Actor("r", "reporter"), ticket_id="P2")
    eng.fire("P2", "dispatch", actor=Actor("ops", "centre"))
    eng.fire("P2", "arrive", actor=Actor("w", "department"))
    eng.fire("P2", "resolve", actor=Actor("w", "department"))
    with pytest.raises(MinimumLagNotReached):
        eng.fire("P2", "close", actor=Actor("ops", "centre"))
    eng.run_until(ny(2024, 6, 5, 9, 10))
    assert eng.fire("P2", "close", actor=Actor("ops", "centre")).state == "closed"
    assert {c.name: c.outcome for c in eng.sla_clocks("P2")} == {
        "time_to_dispatch": "met", "time_to_resolve": "met"}

    eng.report("timed", {}, actor=Actor("r", "reporter"), ticket_id="P1")
    eng.escalate("P1", actor=Actor("ops", "centre"), reason="burst main")
    fired = eng.run_until(ny(2024, 6, 5, 23))
    assert [(f.timer.name, f.outcome) for f in fired] == [
        ("sla:time_to_dispatch:warn:0", "warned"),
        ("sla:time_to_dispatch", "breached"),
        ("ladder:street", "escalated"),
        ("ladder:district", "escalated"),
        ("ladder:city", "top_level"),
    ]
    pos = eng.ladder("P1")
    assert pos is not None and (pos.level, pos.handler) == ("city", "city_office")
    clocks = {c.name: (c.status, c.outcome) for c in eng.sla_clocks("P1")}
    assert clocks == {"time_to_dispatch": ("running", "breached"),
                      "time_to_resolve": ("running", None)}
