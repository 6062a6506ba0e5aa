"""The one-statement ticket load reads what the tables hold, on SQLite and on PostgreSQL.

``engine.store.reads.load_tickets`` reads a ticket with its pending timers and its
participants' rows as JSON aggregates, one column each, and converts them back (instants,
JSON, booleans; the ticket-id column, left out of the aggregates, filled in). These tests
compare what it returns with SQLAlchemy's own reads of every table — inside a write
transaction (the SQLite cursor path) and outside one — for a ticket with rows in every
table and for one whose aggregates are all empty, and check the states built from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, store_url
from evidence_files import png_bytes
from helpers import quick_lifecycle
from sqlalchemy import Connection, select, text

from engine import Actor, Engine, VirtualClock, parse_definition
from engine.evidence.participant import EvidenceRules
from engine.ladder.ladder import Ladder, LadderState
from engine.runtime.working import PendingTimer
from engine.sla.clocks import ClockState, SlaClocks
from engine.store.reads import EagerTable, load_tickets
from engine.store.tables import tickets, timers

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)
GW, CENTRE = Actor("gw-017", "grid_worker"), Actor("ops-1", "centre")
EAGER: list[EagerTable] = [(p.state_table, p.state_column, p.state_where)
                           for p in (SlaClocks, Ladder, EvidenceRules)
                           if p.state_table is not None]
TIMER_COLUMNS = ("id", "ticket_id", "name", "state", "due_at", "claimed_by", "failures")


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with store_url(request.param, tmp_path) as url:
        e = Engine(url, clock=VirtualClock(T0), evidence_store=str(tmp_path / "blobs"))
        e.deploy(parse_definition(quick_lifecycle("PT1H")))
        yield e
        e.stop()


def _by_sqlalchemy(conn: Connection, ticket_id: str) -> tuple[dict[str, Any],
                                                               list[dict[str, Any]],
                                                               dict[str, list[dict[str, Any]]]]:
    """What load_tickets should return, read table by table through Connection.execute."""
    row = dict(conn.execute(select(tickets).where(tickets.c.id == ticket_id)).mappings().one())
    pending = [dict(r) for r in conn.execute(
        select(*(timers.c[n] for n in TIMER_COLUMNS))
        .where(timers.c.ticket_id == ticket_id, timers.c.status == "pending")).mappings()]
    tables = {}
    for table, key, where in EAGER:
        query = select(table).where(table.c[key] == ticket_id)
        if where is not None:
            query = query.where(where)
        tables[table.name] = [dict(r) for r in conn.execute(query).mappings()]
    return row, pending, tables


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: repr(sorted(r.items())))


def _check(conn: Connection, ids: list[str]) -> dict[str, Any]:
    loaded = load_tickets(conn, ids, EAGER)
    assert set(loaded) == set(ids)
    as_pending = load_tickets(conn, ids, EAGER, timers_as=PendingTimer)
    for tid in ids:
        row, pending, tables = loaded[tid]
        want_row, want_pending, want_tables = _by_sqlalchemy(conn, tid)
        # the command pipeline's form: the same timers, built as PendingTimer by name
        assert as_pending[tid][0] == row and as_pending[tid][2] == tables
        assert as_pending[tid][1] == {t["name"]: PendingTimer(
            t["name"], t["state"], t["due_at"], t["id"], t["claimed_by"], t["failures"])
            for t in want_pending}
        assert all(type(t) is PendingTimer for t in as_pending[tid][1].values())
        assert row == want_row
        assert {k: type(v) for k, v in row.items()} == {k: type(v) for k, v in want_row.items()}
        assert _ordered(pending) == _ordered(want_pending)
        assert set(tables) == set(want_tables)
        for name, rows in tables.items():
            assert _ordered(rows) == _ordered(want_tables[name]), name
        for r in [*pending, *(r for rows in tables.values() for r in rows)]:
            for value in r.values():  # instants aware and in UTC, as the column type gives
                if isinstance(value, datetime):
                    assert value.utcoffset() is not None and not value.utcoffset()
    return loaded


def test_the_load_reads_every_table_as_sqlalchemy_does(eng: Engine) -> None:
    blob = eng.upload(png_bytes(), actor=GW)
    full = eng.report("grid_incident", {"category": "blocked drain", "lat": 31.2},
                      actor=GW, ticket_id="full", evidence=[{"upload": blob.sha256}])
    eng.fire(full.id, "dispatch", actor=CENTRE, fields={"department": "water"})
    bare = eng.report("quick", {}, actor=CENTRE, ticket_id="bare")
    eng.fire(bare.id, "finish", actor=CENTRE)  # no timer left, no clock, no ladder row
    for ids in (["full"], ["bare"], ["full", "bare"]):
        with eng.db.write() as conn:  # in a transaction: SQLite's cursor path
            inside = _check(conn, ids)
        with eng.db.read() as conn:  # outside: Connection.execute on both databases
            outside = _check(conn, ids)
        assert inside == outside
    _, pending, tables = inside["full"]
    assert pending and all(tables.values())
    _, pending, tables = inside["bare"]
    assert pending == [] and tables == {t.name: [] for t, _, _ in EAGER}
    assert inside["full"][0]["fields"]["lat"] == 31.2


def test_the_states_built_from_the_load_are_whole(eng: Engine) -> None:
    """SlaClocks and Ladder build their states with tuple.__new__ (no arity check): every
    field is there, and equal to what the NamedTuple's own constructor builds."""
    t = eng.report("grid_incident", {"category": "blocked drain"}, actor=CENTRE)
    with eng.db.read() as conn:
        _, _, tables = load_tickets(conn, [t.id], EAGER)[t.id]
    clocks = SlaClocks().from_rows(tables["gw_sla_clocks"])
    assert len(clocks) == 2 and [c.name for c in clocks] == sorted(c.name for c in clocks)
    for c in clocks:
        assert type(c) is ClockState and c == ClockState(*c)
        assert isinstance(c.elapsed_seconds, float) and c.warned == ()
    place = Ladder().from_rows(tables["gw_ladder"])
    assert type(place) is LadderState and place == LadderState(*place)
    assert place.since == T0 and place.since.tzinfo is not None


def test_json_text_with_whitespace_is_read_as_json_loads_reads_it(eng: Engine) -> None:
    """The load parses JSON with json's scanner directly; text another writer stored with
    whitespace around it still reads as json.loads reads it."""
    eng.report("quick", {}, actor=CENTRE, ticket_id="ws")
    value = "CAST(:f AS json)" if eng.db.dialect == "postgresql" else ":f"
    with eng.db.write() as conn:
        conn.execute(text(f"UPDATE gw_tickets SET fields = {value} WHERE id = 'ws'"),
                     {"f": '  {"note": "y" }\n'})
    with eng.db.write() as conn:
        inside, _, _ = load_tickets(conn, ["ws"], EAGER)["ws"]
    with eng.db.read() as conn:
        outside, _, _ = load_tickets(conn, ["ws"], EAGER)["ws"]
    assert inside["fields"] == outside["fields"] == {"note": "y"}
