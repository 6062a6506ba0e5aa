"""Evidence through the console's forms over real HTTP (uvicorn on loopback, a real SQLite
file, the fsspec local evidence store), and each typed refusal in its own words."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from evidence_files import png_bytes
from servers import running
from test_console import KEYS

from adapters.http import create_app
from adapters.http.console.refusals import refusal_words
from adapters.http.problems import Problem
from engine import (
    Actor,
    BounceBudgetExceeded,
    BounceLimitReached,
    BounceNeedsApproval,
    ConcurrencyConflict,
    Departments,
    Engine,
    EvidenceInvalid,
    EvidenceMissing,
    FieldNotAllowed,
    GuardRejected,
    InvalidFields,
    NotADuplicate,
    NotTheHandler,
    OversightRefused,
    RoleNotAllowed,
    TopLevelReached,
    TriggerNotAllowed,
    UnknownDepartment,
    VirtualClock,
)
from engine.errors import _OVERSIGHT_WHY

SH = ZoneInfo("Asia/Shanghai")
GW = Actor("gw-017", "grid_worker")
CENTRE = Actor("ops-1", "centre")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Engine, Path]]:
    store = tmp_path / "evidence"
    engine = Engine(tmp_path / "e.sqlite", evidence_store=str(store),
                    clock=VirtualClock(datetime(2025, 6, 4, 10, 0, tzinfo=SH)))
    with running(create_app(engine, api_keys=KEYS)) as url:
        yield url, engine, store
    engine.stop()


def _refusal(page: str) -> str:
    found = re.search(r'id="refusal">(.*?)</div>', page, re.S)
    assert found is not None
    return html.unescape(found.group(1))


def test_a_work_order_finished_with_the_after_photo_resolves_its_ticket(
        site: tuple[str, Engine, Path]) -> None:
    url, engine, store = site
    photo = engine.upload(png_bytes(), actor=GW, lifecycle="grid_incident")
    engine.report("grid_incident", {"category": "garbage", "area": "A1"}, actor=GW,
                  ticket_id="T-1", evidence=[{"upload": photo.sha256}])
    Departments(engine).dispatch("T-1", actor=CENTRE)  # sanitation alone (T-1.1)
    water = Actor("san-1", "department")
    engine.fire("T-1.1", "accept", actor=water)
    engine.fire("T-1.1", "arrive", actor=water)
    h = {"X-API-Key": "k-san"}
    page = httpx.get(f"{url}/console/tickets/T-1.1", headers=h).text
    form = re.search(r'<form[^>]*data-action="fire:finish".*?</form>', page, re.S)
    assert form is not None and 'enctype="multipart/form-data"' in form.group(0)
    assert "须附 1 张照片（标签：处置后）" in form.group(0)
    after = png_bytes(rgb=(0, 120, 0))
    r = httpx.post(f"{url}/console/tickets/T-1.1/actions", headers=h,
                   data={"action": "fire:finish",
                         "evidence_0_tag": "after"},
                   files={"evidence_0": ("after.png", after, "image/png")})
    assert r.status_code == 303, r.text
    assert (engine.get("T-1.1").state, engine.get("T-1").state) == ("done", "resolved")
    [carried] = [a for a in engine.attachments("T-1") if a.trigger == "resolve"]
    assert (carried.tag, carried.kind, carried.size) == ("after", "photo", len(after))
    assert carried.sha256 is not None
    assert (store / carried.sha256[:2] / carried.sha256[2:4] / carried.sha256
            ).read_bytes() == after


def test_a_file_the_lifecycle_does_not_accept_is_refused_as_by_the_api(
        site: tuple[str, Engine, Path]) -> None:
    url, engine, _ = site
    photo = engine.upload(png_bytes(), actor=GW, lifecycle="grid_incident")
    engine.report("grid_incident", {"category": "garbage"}, actor=GW, ticket_id="T-2",
                  evidence=[{"upload": photo.sha256}])
    engine.fire("T-2", "dispatch", actor=CENTRE, fields={"department": "sanitation"})
    engine.fire("T-2", "arrive", actor=Actor("san-1", "department"))
    h = {"X-API-Key": "k-san"}
    assert 'data-need="evidence_0"' in httpx.get(f"{url}/console/tickets/T-2", headers=h).text
    r = httpx.post(f"{url}/console/tickets/T-2/actions", headers=h,
                   data={"action": "fire:resolve",
                         "evidence_0_tag": "after"},
                   files={"evidence_0": ("notes.txt", b"just text\n", "text/plain")})
    api = httpx.post(f"{url}/uploads", headers=h,
                     files={"file": ("notes.txt", b"just text\n", "text/plain")})
    assert (r.status_code, api.status_code) == (422, 422)
    assert api.json()["why"] in _refusal(r.text) or "notes.txt" in _refusal(r.text)
    assert api.json()["detail"] in html.unescape(r.text)  # the same check, the same words
    assert engine.get("T-2").state == "on_site"


def test_each_typed_refusal_has_its_own_words(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "w.sqlite")
    try:
        lc = eng.lifecycle("grid_incident")
        errors = [
            RoleNotAllowed("T", "dispatched", "escalate", "department", ["centre", "system"]),
            FieldNotAllowed("T", "arrive", "department", ["target_at"],
                            {"target_at": ["centre"]}, {"target_at": []}),
            NotTheHandler("T", "arrive", "department", "district", "district_office",
                          ["centre"]),
            EvidenceMissing("T", "resolve", "department", ["1 photo tagged 'after'"]),
            EvidenceInvalid("T", 0, "is a text/plain file"),
            GuardRejected("T", "on_site", "resolve", ["has_photo"]),
            InvalidFields("T", {"department": "required"}),
            InvalidFields("T", {"reason": "required"}),
            TopLevelReached("T", "city"),
            ConcurrencyConflict("T", 3, 4),
            TriggerNotAllowed("T", "closed", "resolve", []),
            BounceNeedsApproval("T.1", "T", "water"),
            BounceLimitReached("T.1", "T", 2, 2),
            BounceBudgetExceeded("T.1", "water", "2025-06-04", 7200),
            NotADuplicate("T", "T0", "different category"),
            UnknownDepartment("T", "bakery", ["water"]),
            Problem(422, "evidence-rejected", "x: too large", why="too_large",
                    limit=20 * 1024 * 1024, filename="x.jpg"),
        ]
        for lang, generic in (("zh", "引擎拒绝了这个操作。"),
                              ("en", "The engine refused this action.")):
            said = [refusal_words(e, eng, ("grid_incident",), lc, lang) for e in errors]
            assert generic not in said, (lang, said)
            assert len(set(said)) == len(said), said  # each its own
        zh = {type(e).__name__ + str(i): refusal_words(e, eng, ("grid_incident",), lc, "zh")
              for i, e in enumerate(errors)}
        assert zh["EvidenceMissing3"] == (
            "“处置完毕”须附证据：须附 1 张照片（标签：处置后）。请选择文件后再提交。")
        assert zh["TopLevelReached8"].startswith("此事件已在最高层级“")
        assert "刷新页面" in zh["ConcurrencyConflict9"]
        assert "前置条件" in zh["GuardRejected5"]
        assert zh["InvalidFields6"] == "以下字段需要填写或取值不符合要求：承办部门。"
        assert zh["Problem16"] == "文件“x.jpg”太大：每个文件不超过 20 MB。"
        en = refusal_words(errors[3], eng, ("grid_incident",), lc, "en")
        assert en == ("“Resolve” needs evidence: Needs 1 photo tagged “After”. Choose the "
                      "file(s) and send again.")
    finally:
        eng.stop()


def _oversight_refusals() -> list[OversightRefused]:
    """One refusal for every ``why`` the engine's oversight rules raise, with its details."""
    details: dict[str, list[dict[str, object]]] = {
        "not_offered": [{"what": "extension"}, {"what": "suspension"},
                        {"what": "supervision notice"}],
        "deadline_not_extensible": [{"deadline": "dispatch_due"}],
        "deadline_not_running": [{"deadline": "arrival_due"}],
        "open_request": [{"deadline": "resolution", "n": 1}],
        "limit_reached": [{"limit": 2, "what": "extension of deadline 'resolution'",
                           "deadline": "resolution"},
                          {"limit": 2, "what": "suspension"}],
        "not_later": [{"due": "2025-06-04T02:00:00+00:00"}],
        "too_long": [{"what": "an extension", "limit": "P7D"},
                     {"what": "a suspension", "limit": "P15D"}],
        "unknown_request": [{"what": "extension", "n": 3}],
        "not_open": [{"what": "extension", "n": 1, "status": "approved"}],
        "unknown_cause": [{"cause": "holiday", "known": "legal_process, third_party, "
                                                        "waiting_resident, weather"}],
        "suspended": [{}], "not_suspended": [{}], "ticket_ended": [{}],
    }
    assert set(details) == set(_OVERSIGHT_WHY)  # a new rule gets its words here too
    return [OversightRefused("T", why, **d) for why, ds in details.items() for d in ds]


def test_each_oversight_refusal_has_its_own_words(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "o.sqlite")
    try:
        lc = eng.lifecycle("grid_incident")
        errors = _oversight_refusals()
        for lang, shared in (("zh", "延期、挂起或督办规则不允许此操作。"),
                             ("en", "The rules for extensions, suspension and supervision "
                                    "do not allow this.")):
            said = [refusal_words(e, eng, ("grid_incident",), lc, lang) for e in errors]
            assert shared not in said, (lang, said)  # main: every one but "suspended"
            assert len(set(said)) == len(said), said  # each its own
        zh = {(e.why, str(e.details.get("what", ""))): refusal_words(
            e, eng, ("grid_incident",), lc, "zh") for e in errors}
        assert zh[("not_offered", "supervision notice")] == "此流程不提供督办。"
        assert zh[("open_request", "")] == (
            "时限“办结时限”已有一份延期申请（第 1 号）待指挥中心审批；请等待审批结果。")
        assert zh[("limit_reached", "suspension")] == "此事件已挂起 2 次，达到上限，不能再挂起。"
        assert zh[("not_later", "")].startswith(
            "新的到期时间须晚于 2025年6月4日（周三）10:00 UTC+8")
        assert zh[("too_long", "an extension")] == "延期太长：最多可延期 7天。"
        assert "等待居民配合" in zh[("unknown_cause", "")]
        assert zh[("not_suspended", "")] == "此事件未挂起，无需恢复。"
        en = {(e.why, str(e.details.get("what", ""))): refusal_words(
            e, eng, ("grid_incident",), lc, "en") for e in errors}
        assert en[("not_open", "extension")] == (
            "Extension request 1 was decided already (approved); it cannot be decided again.")
        assert en[("deadline_not_running", "")].startswith(
            "The deadline “Arrival deadline” is not running")
    finally:
        eng.stop()
