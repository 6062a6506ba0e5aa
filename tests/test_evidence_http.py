"""Issue 12 end to end: a real server (uvicorn on loopback), real files on disk, the fsspec
local backend — photo evidence, the resident's verdict, hand-offs, void, the patrol."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from evidence_files import pdf_bytes, photo, png_bytes
from servers import running
from sqlalchemy import select

from adapters.http import ApiKey, create_app
from adapters.http.open311 import Open311Privacy
from engine import Engine, VirtualClock, run_periodic
from engine.store.department_tables import ticket_links
from engine.store.evidence_tables import blobs, handoffs

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)  # Wed 09:00 in Shanghai, a working day

KEYS = {
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-ops": ApiKey(actor="ops-1", role="centre"),
    "k-san": ApiKey(actor="san-3", role="department", department="sanitation"),
    "k-roads": ApiKey(actor="roads-1", role="department", department="roads"),
    "k-district": ApiKey(actor="dist-1", role="district_office"),
    "k-metro": ApiKey(actor="metro-1", role="outside_org", organisation="metro_company"),
    "k-power": ApiKey(actor="power-1", role="outside_org", organisation="power_supply"),
}


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


class Served:
    def __init__(self, engine: Engine, url: str, store: Path, clock: VirtualClock):
        self.engine, self.url, self.store, self.clock = engine, url, store, clock
        self.http = httpx.Client(base_url=url, timeout=30)

    def upload(self, key: str, path: Path, media_type: str = "image/png") -> dict[str, Any]:
        r = self.http.post("/uploads", headers=h(key),
                           files={"file": (path.name, path.read_bytes(), media_type)})
        assert r.status_code == 201, r.text
        [blob] = r.json()
        return dict(blob)

    def report(self, key: str, fields: dict[str, Any], **body: Any) -> httpx.Response:
        return self.http.post("/tickets", headers=h(key), json={"fields": fields, **body})

    def fire(self, key: str, tid: str, trigger: str, **body: Any) -> httpx.Response:
        return self.http.post(f"/tickets/{tid}/triggers/{trigger}", headers=h(key), json=body)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    clock = VirtualClock(T0)
    store = tmp_path / "evidence"
    engine = Engine(tmp_path / "t.sqlite", clock=clock, evidence_store=str(store))
    app = create_app(engine, api_keys=KEYS, lifecycles=("grid_incident", "grid_patrol"),
                     console=False)
    try:
        with running(app) as url:
            yield Served(engine, url, store, clock)
    finally:
        engine.stop()


def _on_disk(store: Path, sha: str) -> Path:
    return store / sha[:2] / sha[2:4] / sha


def test_a_grid_worker_reports_with_a_photo_over_http(served: Served, tmp_path: Path) -> None:
    site = photo(tmp_path, "site.png")
    # without a photo the grid worker's report is refused, naming what is missing
    r = served.report("k-gw", {"category": "garbage"})
    assert r.status_code == 422
    assert (r.json()["title"], r.json()["missing"]) == ("EvidenceMissing", ["1 photo"])
    # upload, then a report referring to it; location kept
    blob = served.upload("k-gw", site)
    sha = hashlib.sha256(site.read_bytes()).hexdigest()
    assert (blob["sha256"], blob["media_type"], blob["kind"], blob["size"]) == (
        sha, "image/png", "photo", site.stat().st_size)
    assert _on_disk(served.store, sha).read_bytes() == site.read_bytes()  # fsspec local
    r = served.report("k-gw", {"category": "garbage", "lat": 39.95, "long": 116.41,
                               "address": "和平里东街 11 号", "area": "g01"},
                      evidence=[{"upload": sha, "taken_at": "2024-06-05T08:55:00+08:00"}])
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    detail = served.http.get(f"/tickets/{tid}", headers=h("k-ops")).json()
    assert {k: detail["ticket"]["fields"][k] for k in ("lat", "long", "address", "area")} == {
        "lat": 39.95, "long": 116.41, "address": "和平里东街 11 号", "area": "g01"}
    [att] = detail["evidence"]
    assert (att["seq"], att["trigger"], att["kind"], att["sha256"], att["actor"],
            att["role"], att["taken_at"]) == (1, "report", "photo", sha, "gw-017",
                                               "grid_worker", "2024-06-05T00:55:00Z")
    assert detail["history"][0]["data"]["evidence"] == [
        {"upload": sha, "taken_at": "2024-06-05T08:55:00+08:00"}]
    got = served.http.get(att["download"], headers=h("k-ops"))
    assert (got.status_code, got.content, got.headers["content-type"]) == (
        200, site.read_bytes(), "image/png")
    assert got.headers["etag"] == f'"{sha}"'
    # downloads need a key with access to the ticket
    assert served.http.get(att["download"]).status_code == 401
    served.fire("k-ops", tid, "dispatch", fields={"department": "sanitation"})
    assert served.http.get(att["download"], headers=h("k-san")).status_code == 200
    denied = served.http.get(att["download"], headers=h("k-roads"))
    assert (denied.status_code, denied.json()["title"]) == (403, "Wrong department")
    # one request doing both: multipart command + file
    second = photo(tmp_path, "second.png", rgb=(10, 20, 30))
    r = served.http.post("/tickets/with-evidence", headers=h("k-gw"), data={
        "command": json.dumps({"fields": {"category": "noise", "area": "g02"}}),
        "tag": "before"}, files={"file": ("second.png", second.read_bytes(), "image/png")})
    assert r.status_code == 201, r.text
    [att2] = served.engine.attachments(r.json()["id"])
    assert (att2.tag, att2.sha256, att2.size) == (
        "before", hashlib.sha256(second.read_bytes()).hexdigest(), second.stat().st_size)
    # the same bytes again are one blob
    assert served.upload("k-gw", site)["new"] is False
    with served.engine.kernel.reading() as conn:
        assert len(conn.execute(select(blobs)).all()) == 2


def test_a_file_whose_declared_type_and_content_disagree_is_refused(
        served: Served, tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(png_bytes())
    r = served.http.post("/uploads", headers=h("k-gw"),
                         files={"file": ("fake.jpg", fake.read_bytes(), "image/jpeg")})
    assert r.status_code == 422
    assert (r.json()["why"], r.json()["declared"], r.json()["detected"]) == (
        "mismatch", "image/jpeg", "image/png")
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    r = served.http.post("/uploads", headers=h("k-gw"),
                         files={"file": ("notes.txt", text.read_bytes(), "image/png")})
    assert (r.status_code, r.json()["why"]) == (422, "unknown_content")
    big = served.engine.lifecycle("grid_incident").spec.evidence
    assert big is not None and big.max_bytes == 20 * 1024 * 1024
    assert not served.store.exists() or not any(served.store.rglob("*.part"))
    # a PDF is a document: accepted, but it is not the photo a report needs
    doc = served.http.post("/uploads", headers=h("k-gw"),
                           files={"file": ("plan.pdf", pdf_bytes(), "application/pdf")})
    assert doc.json()[0]["kind"] == "document"
    r = served.report("k-gw", {"category": "garbage"}, evidence=[{"upload": doc.json()[0][
        "sha256"]}])
    assert (r.status_code, r.json()["missing"]) == (422, ["1 photo"])
    unknown = served.report("k-gw", {"category": "garbage"}, evidence=[{"upload": "0" * 64}])
    assert (unknown.status_code, unknown.json()["title"]) == (422, "EvidenceInvalid")


def test_a_grid_worker_reports_with_a_photo_over_open311(tmp_path: Path) -> None:
    site = photo(tmp_path, "pothole.png", rgb=(90, 90, 90))
    for privacy in (Open311Privacy(), Open311Privacy(evidence="public")):
        clock = VirtualClock(T0)
        engine = Engine(tmp_path / f"o-{privacy.evidence}.sqlite", clock=clock,
                        evidence_store=str(tmp_path / f"ev-{privacy.evidence}"))
        app = create_app(engine, api_keys=KEYS, console=False, open311_privacy=privacy)
        try:
            with running(app) as url, httpx.Client(base_url=url) as http:
                refused = http.post("/open311/v2/requests.json", data={
                    "api_key": "k-gw", "service_code": "road_damage", "lat": "39.9",
                    "long": "116.4"})
                assert refused.status_code == 400
                assert "needs evidence: 1 photo" in refused.json()[0]["description"]
                r = http.post("/open311/v2/requests.json", data={
                    "api_key": "k-gw", "service_code": "road_damage", "lat": "39.9",
                    "long": "116.4", "address_string": "安定路 5 号", "description": "坑洼"},
                    files={"media": ("pothole.png", site.read_bytes(), "image/png")})
                assert r.status_code == 200, r.text
                rid = r.json()[0]["service_request_id"]
                [att] = engine.attachments(rid)
                assert (att.kind, att.role, att.size) == ("photo", "grid_worker",
                                                          site.stat().st_size)
                keyless = http.get(f"/open311/v2/requests/{rid}.json").json()[0]
                keyed = http.get(f"/open311/v2/requests/{rid}.json",
                                 params={"api_key": "k-ops"}).json()[0]
                assert (keyed["lat"], keyed["long"], keyed["address"]) == (
                    39.9, 116.4, "安定路 5 号")
                assert keyed["media_url"] == f"{url}/open311/v2/media/{att.id}"
                if privacy.evidence == "key":
                    assert keyless["media_url"] is None
                    assert http.get(f"/open311/v2/media/{att.id}").status_code == 403
                else:
                    assert keyless["media_url"] == keyed["media_url"]
                media = http.get(keyed["media_url"], params={"api_key": "k-ops"})
                assert (media.status_code, media.content) == (200, site.read_bytes())
                # a media_url naming this server's upload attaches that upload
                sha = http.post("/uploads", headers=h("k-gw"), files={
                    "file": ("p.png", site.read_bytes(), "image/png")}).json()[0]["sha256"]
                r = http.post("/open311/v2/requests.json", data={
                    "api_key": "k-gw", "service_code": "garbage", "address_string": "x",
                    "media_url": f"{url}/uploads/{sha}"})
                assert r.status_code == 200, r.text
                [again] = engine.attachments(r.json()[0]["service_request_id"])
                assert again.sha256 == sha
                # any other media_url is kept as a reference (not fetched), returned as is
                r = http.post("/open311/v2/requests.json", data={
                    "api_key": "k-ops", "service_code": "garbage", "address_string": "y",
                    "media_url": "https://photos.example.org/a/123.jpg"})
                ref_id = r.json()[0]["service_request_id"]
                [ref] = engine.attachments(ref_id)
                assert (ref.ref, ref.sha256, ref.kind, ref.media_type) == (
                    "https://photos.example.org/a/123.jpg", None, "photo", "image/jpeg")
                got = http.get(f"/open311/v2/requests/{ref_id}.json",
                               params={"api_key": "k-ops"}).json()[0]
                assert got["media_url"] == "https://photos.example.org/a/123.jpg"
        finally:
            engine.stop()


def _to_callback(s: Served, tmp: Path, name: str, target_hours: int = 48) -> str:
    site = s.upload("k-gw", photo(tmp, f"{name}.png", rgb=(len(name) * 9 % 255, 1, 2)))
    target = (s.clock.now() + timedelta(hours=target_hours)).isoformat()
    r = s.report("k-gw", {"category": "garbage"}, evidence=[{"upload": site["sha256"]}])
    tid = r.json()["id"]
    # the resolution target is the centre's to set (issue 11: a grid worker may not)
    s.fire("k-ops", tid, "dispatch", fields={"department": "sanitation", "target_at": target})
    s.fire("k-san", tid, "arrive")
    after = photo(tmp, f"{name}-after.png", rgb=(0, 200, len(name)))
    r = s.http.post(f"/tickets/{tid}/triggers/resolve/with-evidence", headers=h("k-san"),
                    data={"tag": "after"},
                    files={"file": (after.name, after.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    assert s.fire("k-ops", tid, "verify").json()["state"] == "callback"
    return tid


def test_the_department_resolves_with_an_after_photo_and_the_resident_rates_it(
        served: Served, tmp_path: Path) -> None:
    site = served.upload("k-gw", photo(tmp_path, "a.png"))
    tid = served.report("k-gw", {"category": "garbage"},
                        evidence=[{"upload": site["sha256"]}]).json()["id"]
    served.fire("k-ops", tid, "dispatch", fields={"department": "sanitation"})
    served.fire("k-san", tid, "arrive")
    r = served.fire("k-san", tid, "resolve")
    assert (r.status_code, r.json()["missing"]) == (422, ["1 photo tagged 'after'"])
    before = served.upload("k-san", photo(tmp_path, "b.png", rgb=(1, 1, 1)))
    r = served.fire("k-san", tid, "resolve", evidence=[{"upload": before["sha256"],
                                                         "tag": "before"}])
    assert r.json()["missing"] == ["1 photo tagged 'after'"]
    after = served.upload("k-san", photo(tmp_path, "c.png", rgb=(0, 255, 0)))
    r = served.fire("k-san", tid, "resolve", evidence=[{"upload": after["sha256"],
                                                         "tag": "after"}])
    assert (r.status_code, r.json()["state"]) == (200, "resolved")
    assert [(a.trigger, a.tag, a.role) for a in served.engine.attachments(tid)] == [
        ("report", None, "grid_worker"), ("resolve", "after", "department")]
    # the centre verifies and sends the resident a single-use link
    served.fire("k-ops", tid, "verify")
    assert served.http.post(f"/tickets/{tid}/callback-link",
                            headers=h("k-san")).status_code == 403
    link = served.http.post(f"/tickets/{tid}/callback-link", headers=h("k-ops"))
    assert link.status_code == 201
    token, url = link.json()["token"], link.json()["url"]
    assert url == f"{served.url}/callback/{token}"
    with served.engine.kernel.reading() as conn:  # only the token's hash is stored
        from engine.store.evidence_tables import callback_links

        [row] = conn.execute(select(callback_links)).mappings().all()
    assert row["token_hash"] == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps({k: str(v) for k, v in row.items()})
    page = served.http.get(url)  # no key: the resident has no account
    assert page.status_code == 200 and "满意度" in page.text and 'name="rating"' in page.text
    done = served.http.post(url, data={"fixed": "true", "rating": "4",
                                       "comment": "清理干净了"})
    assert done.status_code == 200 and "Thank you" in done.text
    t = served.engine.get(tid)
    assert (t.state, t.fields["satisfaction"], t.fields["satisfaction_comment"]) == (
        "closed", 4, "清理干净了")
    last = served.engine.history(tid)[-1]
    assert (last.trigger, last.role, last.actor) == ("confirm", "resident", f"resident:{tid}")
    again = served.http.post(url, json={"fixed": True, "rating": 5})
    assert (again.status_code, again.json()["why"]) == (409, "used")
    # the call-back figures reach the reports
    rep = served.http.get("/reports", headers=h("k-ops")).json()["total"]["values"]
    assert (rep["callbacks"], rep["callback_answered"], rep["callback_by_link"],
            rep["satisfaction_mean"], rep["satisfied_rate"]) == (1, 1, 1, 0.8, 1.0)


def test_not_fixed_goes_back_to_work_with_the_clock_continuing_and_silence_closes(
        served: Served, tmp_path: Path) -> None:
    tid = _to_callback(served, tmp_path, "nf")
    [stopped] = [t for t in served.engine.timers(tid) if t.name == "resolution"]
    token = served.http.post(f"/tickets/{tid}/callback-link", headers=h("k-ops")).json()[
        "token"]
    r = served.http.post(f"/callback/{token}", json={"fixed": False, "rating": 2,
                                                     "comment": "还有垃圾"})
    assert (r.status_code, r.json()["state"]) == (200, "dispatched")
    [pending] = served.engine.timers(tid, status="pending")[-1:]
    resumed = [t for t in served.engine.timers(tid, status="pending")
               if t.name == "resolution"]
    assert [t.due_at for t in resumed] == [stopped.due_at]  # the resolution clock continues
    assert pending is not None
    reopen = served.engine.history(tid)[-1]
    assert (reopen.trigger, reopen.role, reopen.reason) == ("reopen", "resident", "还有垃圾")
    # a second ticket: nobody answers by the call-back deadline (3 working days)
    quiet = _to_callback(served, tmp_path, "quiet")
    served.clock.set(served.clock.now())
    fired = served.engine.run_until(served.clock.now() + timedelta(days=8))  # 10 June: a holiday
    assert ("callback_due", "breached") in [(f.timer.name, f.outcome) for f in fired], [
        (f.timer.name, f.timer.ticket_id, f.outcome) for f in fired]
    t = served.engine.get(quiet)
    assert t.state == "closed"
    last = served.engine.history(quiet)[-1]
    assert (last.trigger, last.role) == ("callback_expired", "system")
    assert last.reason is not None and last.reason.startswith(
        "no answer by the call-back deadline")
    rep = served.http.get("/reports", headers=h("k-ops")).json()["total"]["values"]
    assert (rep["callbacks"], rep["callback_not_fixed"], rep["callback_unanswered"],
            rep["callback_rate"]) == (2, 1, 1, 0.5)


def test_a_case_goes_to_an_outside_organisation_and_back(served: Served) -> None:
    tid = served.report("k-ops", {"category": "road_damage",
                                  "description": "逆行骑车隐患，地铁施工旁"}).json()["id"]
    served.http.post(f"/tickets/{tid}/triggers/escalate", headers=h("k-ops"),
                     json={"reason": "beyond the street"})
    # the hand-off must name a declared organisation
    bad = served.fire("k-district", tid, "hand_off", fields={"outside_org": "mars_base"})
    assert (bad.status_code, bad.json()["title"]) == (422, "UnknownOrganisation")
    r = served.fire("k-district", tid, "hand_off", fields={"outside_org": "metro_company"})
    assert r.json()["state"] == "handed_off"
    # the metro company's key sees it; another organisation's key does not
    listed = served.http.get("/tickets", headers=h("k-metro")).json()
    assert [t["id"] for t in listed["items"]] == [tid]
    assert served.http.get("/tickets", headers=h("k-power")).json()["items"] == []
    assert served.http.get(f"/tickets/{tid}", headers=h("k-power")).status_code == 403
    assert served.http.get(f"/tickets/{tid}", headers=h("k-metro")).status_code == 200
    # it returns the ticket with a reason (退回): the district has it again
    assert served.fire("k-metro", tid, "org_return").status_code == 422  # a reason is needed
    r = served.fire("k-metro", tid, "org_return", reason="not on our site")
    assert r.json()["state"] == "escalated"
    assert served.http.get(f"/tickets/{tid}", headers=h("k-metro")).status_code == 403
    # handed again, it answers: signs added, the road reopened
    served.fire("k-district", tid, "hand_off", fields={"outside_org": "metro_company"})
    r = served.fire("k-metro", tid, "org_answer", reason="signs added, road reopened")
    assert r.json()["state"] == "resolved"
    assert served.http.get("/tickets", headers=h("k-metro")).json()["items"] == []
    with served.engine.kernel.reading() as conn:
        rows = conn.execute(select(handoffs.c.organisation, handoffs.c.outcome)
                            .order_by(handoffs.c.id)).all()
    assert [tuple(r) for r in rows] == [("metro_company", "returned"),
                                        ("metro_company", "answered")]
    [clock] = [c for c in served.engine.sla_clocks(tid) if c.name == "time_outside"]
    assert (clock.status, clock.outcome) == ("stopped", "met")
    # the history kept every step; the ticket's own clocks ran throughout
    triggers = [e.trigger for e in served.engine.history(tid)]
    assert triggers[-4:] == ["hand_off", "org_return", "hand_off", "org_answer"]


def test_the_organisations_own_deadline_is_a_breach_on_the_ticket(served: Served) -> None:
    tid = served.report("k-ops", {"category": "street_light"}).json()["id"]
    served.http.post(f"/tickets/{tid}/triggers/escalate", headers=h("k-ops"),
                     json={"reason": "gas smell near the lamp"})
    served.fire("k-district", tid, "hand_off", fields={"outside_org": "gas_company"})
    fired = served.engine.run_until(T0 + timedelta(hours=12, seconds=1))
    assert [(f.timer.name, f.outcome) for f in fired
            if f.timer.name.startswith("handoff")] == [("handoff:due", "breached")]
    breach = served.engine.history(tid)[-1]
    assert (breach.kind, breach.trigger, breach.data["organisation"], breach.to_state) == (
        "breach", "handoff_due", "gas_company", "handed_off")


def test_a_voided_report_leaves_the_closure_rate_right(served: Served, tmp_path: Path) -> None:
    ids = [served.report("k-ops", {"category": "noise"}).json()["id"] for _ in range(3)]
    refused = served.fire("k-ops", ids[0], "void")
    assert (refused.status_code, refused.json()["errors"]) == (
        422, {"reason": "trigger 'void' requires a reason"})
    assert served.fire("k-ops", ids[0], "void", reason="prank call").json()["state"] == "voided"
    served.fire("k-ops", ids[1], "dispatch", fields={"department": "sanitation"})
    served.fire("k-san", ids[1], "arrive")
    served.fire("k-san", ids[1], "resolve")  # the centre's report: no after photo needed
    served.fire("k-ops", ids[1], "close")
    rep = served.http.get("/reports", headers=h("k-ops")).json()["total"]["values"]
    # closed ÷ (all − voided) = 1 ÷ (3 − 1)
    assert (rep["received"], rep["closed"], rep["voided"], rep["closure_rate"]) == (
        3, 1, 1, 0.5)
    summary = served.engine.summary("grid_incident")
    assert (summary.closed, summary.voided, summary.closure_rate) == (1, 1, 0.5)
    assert served.engine.history(ids[0])[-1].reason == "prank call"


def test_each_grid_gets_its_two_patrols_a_day_and_findings_link_to_them(
        served: Served, tmp_path: Path) -> None:
    # the lifecycle was deployed at 09:00 on 5 June; at 15:00 on 6 June the rounds since
    # then are due: 5 June afternoon, 6 June morning and afternoon, for every grid
    served.clock.set(datetime(2024, 6, 6, 7, 0, tzinfo=UTC))
    created = run_periodic(served.engine)
    assert sorted(created) == sorted(
        [f"afternoon-{g}-2024-06-05T14:00" for g in ("g01", "g02", "g03")]
        + [f"{rule}-{g}-2024-06-06T{hh}:00" for rule, hh in (("morning", "08"),
                                                              ("afternoon", "14"))
           for g in ("g01", "g02", "g03")])
    assert run_periodic(served.engine) == []  # each occurrence once
    page = served.http.get("/tickets", headers=h("k-ops"),
                           params={"lifecycle": "grid_patrol", "limit": 50}).json()
    by_grid: dict[str, list[str]] = {}
    for item in page["items"]:
        if "-2024-06-06T" in item["id"]:
            by_grid.setdefault(item["fields"]["area"], []).append(item["fields"]["round"])
    assert {g: sorted(r) for g, r in by_grid.items()} == {
        g: ["afternoon", "morning"] for g in ("g01", "g02", "g03")}
    assert {i["fields"]["grid_worker"] for i in page["items"]} == {"gw-017", "gw-023",
                                                                    "gw-031"}
    # gw-017 walks g01's afternoon round and finds a problem: reported, linked, counted
    rid = "afternoon-g01-2024-06-06T14:00"
    assert served.fire("k-gw", rid, "start").json()["state"] == "on_patrol"
    site = served.upload("k-gw", photo(tmp_path, "found.png"))
    r = served.report("k-gw", {"category": "garbage", "area": "g01", "patrol": rid},
                      evidence=[{"upload": site["sha256"]}])
    assert r.status_code == 201, r.text
    round_ = served.http.get(f"/tickets/{rid}", headers=h("k-ops")).json()
    assert round_["ticket"]["fields"]["findings"] == 1
    assert round_["history"][-1]["trigger"] == "record_finding"
    with served.engine.kernel.reading() as conn:
        links = conn.execute(select(ticket_links.c.ticket_id, ticket_links.c.other_id,
                                    ticket_links.c.kind)).all()
    assert [tuple(x) for x in links] == [(r.json()["id"], rid, "patrol")]
    # a round not on patrol takes no findings
    idle = served.report("k-gw", {"category": "garbage",
                                  "patrol": "morning-g02-2024-06-06T08:00"},
                         evidence=[{"upload": site["sha256"]}])
    assert (idle.status_code, idle.json()["title"]) == (409, "PatrolNotOnRound")
