"""Listings, the event outbox and webhook deliveries on PostgreSQL (JSON field filters,
conditional claims); skipped without a server unless GRIDWHISTLE_REQUIRE_POSTGRES=1."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_postgres import pg_engine  # noqa: F401  (the fixture)

from engine import Actor, Engine, find_tickets
from engine.events import read_events

pytestmark = pytest.mark.postgres


def test_listing_and_outbox_on_postgres(pg_engine: Engine) -> None:  # noqa: F811
    eng = pg_engine
    gw, centre = Actor("gw", "centre"), Actor("ops", "centre")
    for tid, dept in [("P1", "water"), ("P2", "roads"), ("P3", None)]:
        eng.report("grid_incident", {"category": "noise"}, actor=gw, ticket_id=tid)
        if dept:
            eng.fire(tid, "dispatch", actor=centre, fields={"department": dept})
    eng.run_until(eng.clock.now() + timedelta(minutes=31))
    assert [t.id for t in find_tickets(eng, department="water").items] == ["P1"]
    assert [t.id for t in find_tickets(eng, breached=True).items] == ["P3"]
    assert find_tickets(eng, state="dispatched", limit=1).total == 2
    assert [t.id for t in find_tickets(eng, field_values={"category": ["noise"]},
                                       ids=["P2", "P3"]).items] == ["P3", "P2"]
    with eng.db.read() as conn:
        types = [e.type for _, e in read_events(conn, ticket_id="P3")]
    assert types == ["ticket.reported", "deadline.breached", "ticket.escalated"]
