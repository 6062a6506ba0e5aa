"""Issue 11's defects that no other test covered (docs/issue-11-checklist.md): Idempotency-Key
scoped per key holder over HTTP, bad input on PostgreSQL refused as on SQLite, a lifecycle
given by path to ``Engine.report``, and naive instants refused at every time entry point."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import running
from test_postgres import pg_engine  # noqa: F401  (the fixture: a schema of its own)

from adapters.http import ApiKey, create_app
from engine import (
    Actor,
    Departments,
    Engine,
    InvalidFields,
    TicketNotFound,
    VirtualClock,
    load_definition,
    run_periodic,
)

CENTRE = Actor("ops-1", "centre")
WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "grid_incident.yaml"
KEYS = {
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-san": ApiKey(actor="san-1", role="department", department="sanitation"),
    "k-centre": ApiKey(actor="ops-1", role="centre"),
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(tmp_path / "api.sqlite", clock=VirtualClock(START))
    with running(create_app(engine, api_keys=KEYS)) as url, httpx.Client(base_url=url) as c:
        yield c, engine
    engine.stop()


def test_two_departments_may_send_the_same_idempotency_key(api) -> None:
    client, engine = api
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=CENTRE,
                  ticket_id="T-1")
    lead, co = Departments(engine).dispatch("T-1", actor=CENTRE)
    water, san = {"X-API-Key": "k-water"}, {"X-API-Key": "k-san"}
    same = {"Idempotency-Key": "accept-1"}
    first = client.post(f"/tickets/{lead.id}/triggers/accept", json={},
                        headers={**water, **same})
    assert first.status_code == 200, first.text
    # another department's key is its own: not a 409 naming the water work order
    other = client.post(f"/tickets/{co.id}/triggers/accept", json={}, headers={**san, **same})
    assert (other.status_code, other.json()["id"], other.json()["state"]) == (
        200, co.id, "accepted")
    again = client.post(f"/tickets/{lead.id}/triggers/accept", json={},
                        headers={**water, **same})
    assert again.json() == first.json()
    # the key holder's own reuse for another command names only its own ticket
    reused = client.post(f"/tickets/{lead.id}/triggers/finish", json={},
                         headers={**water, **same})
    assert reused.status_code == 409
    assert lead.id in reused.text and co.id not in reused.text


@pytest.mark.postgres
def test_bad_ids_and_text_are_refused_on_postgres_as_on_sqlite(
        pg_engine: Engine) -> None:  # noqa: F811
    eng = pg_engine  # before: NUL gave a raw DataError on PostgreSQL, an object a raw error
    cases: list[tuple[dict, set[str]]] = [
        ({"ticket_id": "a\x00b"}, {"ticket_id"}),
        ({"ticket_id": object()}, {"ticket_id"}),
        ({"ticket_id": ""}, {"ticket_id"}),
        ({"fields": {"category": "x", "description": "a\x00b"}}, {"description"}),
        ({"reason": "r\x00"}, {"reason"}),
        ({"actor": Actor("gw\x00", "centre")}, {"actor"}),
    ]
    for extra, names in cases:
        args: dict = {"fields": {"category": "x"}, "actor": CENTRE, **extra}
        with pytest.raises(InvalidFields) as info:
            eng.report("grid_incident", **args)
        assert set(info.value.errors) == names, (extra, info.value.errors)
    eng.report("grid_incident", {"category": "x"}, actor=CENTRE, ticket_id="T1")
    with pytest.raises(InvalidFields) as info:
        eng.fire("T1", "dispatch", actor=CENTRE, fields={"department": "wa\x00ter"})
    assert set(info.value.errors) == {"department"}
    for read in (eng.get, eng.history):
        with pytest.raises(TicketNotFound):
            read("a\x00b")
    assert [h.trigger for h in eng.history("T1")] == ["report"]


def test_report_takes_a_lifecycle_given_by_path(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "p.sqlite", clock=VirtualClock(START))
    try:  # before: a bare KeyError naming the path
        t = eng.report(str(WORKFLOW), {"category": "noise"}, actor=CENTRE, ticket_id="T1")
        assert (t.lifecycle, t.state) == ("grid_incident", "reported")
        again = eng.report(str(WORKFLOW), {"category": "noise"}, actor=CENTRE)
        assert again.version == t.version
    finally:
        eng.stop()


def test_naive_instants_are_refused_at_every_time_entry_point(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "n.sqlite", clock=VirtualClock(START))
    try:
        eng.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id="T1")
        naive = datetime(2024, 5, 2, 8)
        with pytest.raises(ValueError, match="run_due needs an aware instant"):
            eng.run_due(naive)
        # before: run_until and impact raised a raw TypeError (naive vs aware comparison),
        # run_periodic silently did nothing
        with pytest.raises(ValueError, match="has no time zone; give an aware datetime"):
            eng.run_until(naive)
        with pytest.raises(ValueError, match="has no time zone; give an aware datetime"):
            eng.impact(load_definition("grid_incident"), until=naive)
        with pytest.raises(ValueError, match="has no time zone; give an aware datetime"):
            run_periodic(eng, naive)
        assert eng.clock.now() == START
        assert [t.status for t in eng.timers("T1")].count("fired") == 0
        assert eng.run_until(datetime(2024, 5, 2, 8, tzinfo=UTC))  # aware: fires as usual
    finally:
        eng.stop()


@pytest.mark.parametrize("path", [
    "/open311/v2/media/16116380752103530496",  # found by schemathesis: a 500 before
    "/open311/v2/media/2147483648",
    "/tickets/T-1/evidence/16116380752103530496",
    "/tickets/T-1/evidence/9223372036854775808",
])
def test_an_attachment_id_past_the_databases_range_is_a_404(api, path: str) -> None:
    client, engine = api
    engine.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id="T-1")
    r = client.get(path, headers={"X-API-Key": "k-centre"})
    assert r.status_code == 404, r.text
    assert engine.attachment_ticket(2**63) is None
