"""The department being rated may not write the resident's rating (audit of issues 11 and 12).

Issue 11: "which roles may set each field, on which triggers"; issue 12: the resident says
whether it is fixed and rates it 1-5, or the centre records the call. In the bundled
grid_incident the fields `satisfaction` and `satisfaction_comment` had no permission, so
they fell to "whoever may fire the trigger": a department could send `satisfaction: 5` with
its own `arrive` or `resolve` — before the call-back, or over the resident's 2 after a
"not fixed" — and that value then also met the `confirm` requirement, so the centre could
close the call-back without recording any rating. Likewise `outside_org`, the hand-off field
that decides which organisation's key sees a ticket, could be set by a department with any
trigger. Real server on loopback, real SQLite file and evidence directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from evidence_files import photo
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, FieldNotAllowed, VirtualClock

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)  # Wed 09:00 in Shanghai, a working day
KEYS = {
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-ops": ApiKey(actor="ops-1", role="centre"),
    "k-san": ApiKey(actor="san-3", role="department", department="sanitation"),
    "k-district": ApiKey(actor="dist-1", role="district_office"),
    "k-metro": ApiKey(actor="metro-1", role="outside_org", organisation="metro_company"),
}


class Site:
    def __init__(self, engine: Engine, url: str) -> None:
        self.engine, self.http = engine, httpx.Client(base_url=url, timeout=30)

    def fire(self, key: str, tid: str, trigger: str, **body: Any) -> httpx.Response:
        return self.http.post(f"/tickets/{tid}/triggers/{trigger}",
                              headers={"X-API-Key": key}, json=body)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    engine = Engine(tmp_path / "t.sqlite", clock=VirtualClock(T0),
                    evidence_store=str(tmp_path / "evidence"))
    try:
        with running(create_app(engine, api_keys=KEYS, console=False)) as url:
            yield Site(engine, url)
    finally:
        engine.stop()


def _on_site(s: Site, tmp: Path) -> str:
    png = photo(tmp, "site.png")
    r = s.http.post("/tickets/with-evidence", headers={"X-API-Key": "k-gw"},
                    data={"command": '{"fields": {"category": "garbage"}}'},
                    files={"file": (png.name, png.read_bytes(), "image/png")})
    assert r.status_code == 201, r.text
    tid = str(r.json()["id"])
    assert s.fire("k-ops", tid, "dispatch", fields={"department": "sanitation"}).status_code \
        == 200
    return tid


def _resolve_with_after_photo(s: Site, tmp: Path, tid: str, **fields: Any) -> httpx.Response:
    after = photo(tmp, f"after-{len(fields)}.png", rgb=(0, 200, 9))
    return s.http.post(f"/tickets/{tid}/triggers/resolve/with-evidence",
                       headers={"X-API-Key": "k-san"},
                       data={"tag": "after", "command": _json({"fields": fields})},
                       files={"file": (after.name, after.read_bytes(), "image/png")})


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _refused(r: httpx.Response, fields: list[str]) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert (r.json()["title"], r.json()["fields"]) == ("FieldNotAllowed", fields)


def test_a_department_cannot_rate_its_own_work(site: Site, tmp_path: Path) -> None:
    tid = _on_site(site, tmp_path)
    # before: 200, and the ticket said satisfaction 5 before the resident was ever asked
    _refused(site.fire("k-san", tid, "arrive", fields={"satisfaction": 5}), ["satisfaction"])
    _refused(site.fire("k-san", tid, "arrive", fields={"satisfaction_comment": "great"}),
             ["satisfaction_comment"])
    assert site.fire("k-san", tid, "arrive").status_code == 200
    _refused(_resolve_with_after_photo(site, tmp_path, tid, satisfaction=5), ["satisfaction"])
    assert _resolve_with_after_photo(site, tmp_path, tid).status_code == 200
    assert "satisfaction" not in site.engine.get(tid).fields
    # so the call-back's requirement is met only by a rating given with it
    assert site.fire("k-ops", tid, "verify").json()["state"] == "callback"
    r = site.fire("k-ops", tid, "confirm")
    assert (r.status_code, r.json()["title"]) == (422, "InvalidFields"), r.text
    done = site.fire("k-ops", tid, "confirm", fields={"satisfaction": 3})  # the centre's call
    assert (done.status_code, done.json()["fields"]["satisfaction"]) == (200, 3)


def test_the_residents_not_fixed_rating_stays_the_residents(site: Site, tmp_path: Path) -> None:
    tid = _on_site(site, tmp_path)
    site.fire("k-san", tid, "arrive")
    assert _resolve_with_after_photo(site, tmp_path, tid).status_code == 200
    site.fire("k-ops", tid, "verify")
    token = site.http.post(f"/tickets/{tid}/callback-link",
                           headers={"X-API-Key": "k-ops"}).json()["token"]
    r = site.http.post(f"/callback/{token}", json={"fixed": False, "rating": 2,
                                                   "comment": "still there"})
    assert (r.status_code, r.json()["state"]) == (200, "dispatched")
    # before: the department's next arrive could overwrite the resident's 2 with a 5
    _refused(site.fire("k-san", tid, "arrive", fields={"satisfaction": 5}), ["satisfaction"])
    assert site.engine.get(tid).fields["satisfaction"] == 2


def test_only_the_hand_off_names_the_outside_organisation(site: Site) -> None:
    engine = site.engine
    engine.report("grid_incident", {"category": "road_damage"}, actor=Actor("ops-1", "centre"),
                  ticket_id="H-1")
    engine.fire("H-1", "dispatch", actor=Actor("ops-1", "centre"),
                fields={"department": "sanitation"})
    engine.escalate("H-1", actor=Actor("ops-1", "centre"), reason="beyond the street")
    # before: a department's resolve (or arrive) could name the organisation in advance
    with pytest.raises(FieldNotAllowed):
        engine.fire("H-1", "arrive", actor=Actor("san-3", "department"),
                    fields={"outside_org": "metro_company"})
    r = site.fire("k-district", "H-1", "hand_off", fields={"outside_org": "metro_company"})
    assert (r.status_code, r.json()["state"]) == (200, "handed_off")
    # the organisation cannot pass the ticket on to another one on its way back
    _refused(site.fire("k-metro", "H-1", "org_return", reason="not ours",
                       fields={"outside_org": "power_supply"}), ["outside_org"])
    back = site.fire("k-metro", "H-1", "org_return", reason="not ours")
    assert (back.status_code, back.json()["state"]) == (200, "escalated")
