"""The engine on PostgreSQL: the same commands, deadlines and UTC instants as on SQLite.

Skips when the server is absent, unless GRIDWHISTLE_REQUIRE_POSTGRES=1 (CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from engine import Actor, Engine, TriggerNotAllowed, VirtualClock

pytestmark = pytest.mark.postgres

URL = os.environ.get("GRIDWHISTLE_POSTGRES_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """An Engine on a schema of its own in the test database, dropped afterwards."""
    try:
        admin = create_engine(URL)
        with admin.begin() as conn:
            schema = f"gw_test_{uuid.uuid4().hex[:12]}"
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OperationalError, ImportError) as exc:
        if os.environ.get("GRIDWHISTLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {URL} is required (GRIDWHISTLE_REQUIRE_POSTGRES=1) "
                        f"but not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {URL} (set GRIDWHISTLE_POSTGRES_URL): {exc}")
    sa = create_engine(URL, connect_args={"options": f"-csearch_path={schema}"})
    engine = Engine(sa, clock=VirtualClock(datetime(2024, 5, 1, 8, tzinfo=UTC)))
    yield engine
    engine.stop()
    sa.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_lifecycle_and_deadlines_on_postgres(pg_engine: Engine) -> None:
    eng = pg_engine
    target = datetime(2024, 5, 2, 8, tzinfo=UTC)
    t = eng.report("grid_incident", {"category": "blocked drain", "target_at": target},
                   actor=Actor("gw-1", "centre"), ticket_id="pg-1")
    eng.fire(t.id, "dispatch", actor=Actor("ops", "centre"), fields={"department": "water"})
    with pytest.raises(TriggerNotAllowed):
        eng.fire(t.id, "close", actor=Actor("ops", "centre"))
    fired = eng.run_until(target + timedelta(minutes=1))
    assert [(f.timer.name, f.outcome) for f in fired] == [
        ("arrival_due", "breached"), ("resolution", "escalated")]
    got = eng.get(t.id)
    assert (got.state, got.level, got.overdue) == ("escalated", "street", True)
    assert got.fields["target_at"] == target
    history = eng.history(t.id)
    assert [h.trigger for h in history] == [
        "report", "dispatch", "arrival_due", "resolution", "escalate"]
    assert all(h.at.utcoffset() == timedelta(0) for h in history)
    assert history[3].data["due_at"] == target.isoformat()


def test_work_orders_duties_and_resolution_on_postgres(pg_engine: Engine) -> None:
    from engine import BounceNeedsApproval, Departments

    eng, centre = pg_engine, Actor("ops", "centre")
    depts = Departments(eng)
    eng.report("grid_incident", {"category": "blocked_drain", "area": "A1"},
               actor=Actor("gw-1", "centre"), ticket_id="pg-2")
    lead, co = depts.dispatch("pg-2", actor=centre)
    water = Actor("water-1", "department")
    with pytest.raises(BounceNeedsApproval):
        depts.bounce(lead.id, actor=water, reason="not ours")
    depts.approve_bounce(lead.id, actor=centre, reason="checked")
    depts.bounce(lead.id, actor=water, reason="not ours")
    new_lead = depts.designate_lead("pg-2", "roads", actor=centre, reason="road drain")
    for wid, who in ((new_lead.id, "roads-1"), (co.id, "san-1")):
        eng.fire(wid, "accept", actor=Actor(who, "department"))
        eng.fire(wid, "finish", actor=Actor(who, "department"))
    assert eng.get("pg-2").state == "resolved"
    assert depts.figures("grid_incident")["water"] == {
        "received": 1, "bounced": 1, "resolved": 0, "on_time": 0, "escalated": 0}
