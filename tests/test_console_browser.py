"""The console in a real browser: Debian's chromium driven by Playwright, against a real
uvicorn server on loopback with the deadline scheduler running on the real clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from browser import chromium, need_browser
from evidence_files import png_bytes
from helpers import permits_lifecycle, quick_lifecycle
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Departments, Engine

pytestmark = pytest.mark.browser

KEYS = {
    "k-centre": ApiKey(actor="ops-1", role="centre"),
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
}
CENTRE = Actor("ops-1", "centre")
Site = tuple[str, Engine]
GW = Actor("gw-017", "centre")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    with chromium() as b:
        yield b


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    quick = tmp_path / "quick.yaml"
    quick.write_text(quick_lifecycle("PT4S"))
    engine = Engine(tmp_path / "console.sqlite")  # the real clock
    engine.deploy(quick)
    engine.start()  # the deadline scheduler fires breaches on time
    try:
        app = create_app(engine, api_keys=KEYS, lifecycles=("grid_incident", "quick"))
        with running(app) as url:
            yield url, engine
    finally:
        engine.stop()


@pytest.fixture
def page_of(browser: Any, site: tuple[str, Engine]) -> Iterator[Any]:
    """Open a new page signed in with a key (by the sign-in form), at 375 px by default."""
    url, _ = site
    contexts: list[Any] = []

    def open_page(key: str, width: int = 375) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": 800})
        contexts.append(ctx)
        page = ctx.new_page()
        page.requested = []
        page.on("request", lambda r: page.requested.append(r.url))
        page.goto(f"{url}/console")
        assert "/console/login" in page.url  # not signed in yet
        page.fill("input[name=key]", key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/console")
        return page

    yield open_page
    for ctx in contexts:
        ctx.close()


def card(page: Any, ticket_id: str) -> Any:
    return page.locator(f'[id="card-{ticket_id}"]')


def test_the_board_updates_live_when_another_client_reports(site: Site, page_of: Any) -> None:
    from playwright.sync_api import expect

    url, engine = site
    page = page_of("k-centre")
    expect(page.locator("#live")).to_have_text("实时更新中")
    assert card(page, "T-live").count() == 0
    # a grid worker's app: the photo first, then the report naming it
    [blob] = httpx.post(f"{url}/uploads", headers={"X-API-Key": "k-gw"}, files={
        "file": ("site.png", png_bytes(), "image/png")}).json()
    r = httpx.post(f"{url}/tickets", headers={"X-API-Key": "k-gw"},
                   json={"ticket_id": "T-live", "fields": {"category": "noise", "area": "A1"},
                         "evidence": [{"upload": blob["sha256"]}]})
    assert r.status_code == 201
    expect(card(page, "T-live")).to_be_visible(timeout=10_000)
    expect(card(page, "T-live").locator("h3")).to_have_text("噪声扰民")
    expect(card(page, "T-live").locator(".state")).to_have_text("已上报")
    Departments(engine).dispatch("T-live", actor=CENTRE)  # another client again
    expect(card(page, "T-live").locator(".state")).to_have_text("已派遣", timeout=10_000)
    expect(page.locator("#work_orders").locator(card(page, "T-live.1"))).to_be_visible()
    expect(page.locator('[data-count="work_order"]')).to_have_text("1")
    assert all(u.startswith(url) for u in page.requested), page.requested  # nothing else


@pytest.mark.slow
def test_an_overdue_card_turns_red_when_its_deadline_passes(site: Site, page_of: Any) -> None:
    from playwright.sync_api import expect

    _, engine = site
    engine.report("quick", {}, actor=CENTRE, ticket_id="Q-1")  # `soon` falls due in 4 s
    page = page_of("k-centre")
    red = card(page, "Q-1")
    expect(red).to_have_attribute("data-risk", "ok")
    expect(red).to_have_attribute("data-risk", "red", timeout=20_000)
    expect(red.locator(".clock")).to_contain_text("已超期")
    # the engine's own breach reached the board too: its card now comes from the server red
    page.reload()
    expect(card(page, "Q-1")).to_have_attribute("data-risk", "red")
    assert any(h.kind == "breach" for h in engine.history("Q-1"))
    page.goto(page.url + "/risk")
    expect(card(page, "Q-1")).to_be_visible()


def test_a_department_key_sees_only_its_own_work_orders(site: Site, page_of: Any) -> None:
    from playwright.sync_api import expect

    _, engine = site
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    engine.report("grid_incident", {"category": "garbage", "area": "A2"}, actor=GW,
                  ticket_id="T-2")
    Departments(engine).dispatch("T-1", actor=CENTRE)  # water leads, sanitation co-handles
    Departments(engine).dispatch("T-2", actor=CENTRE)  # sanitation alone
    page = page_of("k-water")
    orders = page.locator("#work_orders .card")
    expect(orders).to_have_count(1)
    expect(orders.first).to_have_attribute("data-id", "T-1.1")
    expect(page.locator("#tickets .card")).to_have_count(1)
    page.goto(page.url + "/tickets/T-1.2")
    expect(page.locator(".refusal")).to_contain_text("本部门（water）")
    page.goto(page.url.split("/console")[0] + "/console/tickets/T-1")
    rows = page.locator("#work-orders tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("区水务局")


def test_an_action_refused_by_its_role_shows_the_reason(site: Site, page_of: Any) -> None:
    from playwright.sync_api import expect

    url, engine = site
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    Departments(engine).dispatch("T-1", actor=CENTRE)
    page = page_of("k-water")
    page.goto(f"{url}/console/tickets/T-1")
    page.click("details.others summary")
    form = page.locator('form[data-action="escalate"]')
    form.locator("input[name=reason]").fill("too slow")
    form.locator("button[type=submit]").click()
    refusal = page.locator("#refusal")
    expect(refusal).to_contain_text("角色“职能部门”不能执行“升级处置”；可以执行的角色：指挥中心、系统。")
    expect(refusal).to_contain_text("role 'department' may not fire 'escalate'")
    assert engine.get("T-1").level == "community"


def test_every_page_fits_a_phone_without_scrolling_sideways(site: Site, page_of: Any) -> None:
    url, engine = site
    engine.report("grid_incident", {"category": "road_damage", "area": "A1",
                                    "description": "a long description " * 10},
                  actor=GW, ticket_id="T-1")
    Departments(engine).dispatch("T-1", actor=CENTRE)
    page = page_of("k-centre", width=375)
    for path in ("/console", "/console/risk", "/console/tickets/T-1",
                 "/console/tickets/T-1.1", "/console/reports?by=level",
                 "/console/reports?by=period&period=day"):
        page.goto(url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
    assert all(u.startswith(url) for u in page.requested), page.requested


def _on_site_ticket(engine: Engine, ticket_id: str) -> None:
    """A grid worker's report with a photo, dispatched to water, the department on site."""
    gw = Actor("gw-017", "grid_worker")
    photo = engine.upload(png_bytes(rgb=(9, 9, 9)), actor=gw, lifecycle="grid_incident")
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=gw,
                  ticket_id=ticket_id, evidence=[{"upload": photo.sha256}])
    engine.fire(ticket_id, "dispatch", actor=CENTRE, fields={"department": "water"})
    engine.fire(ticket_id, "arrive", actor=Actor("water-3", "department"))


def test_the_resolve_form_sends_the_after_photo(site: Site, page_of: Any,
                                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, engine = site
    _on_site_ticket(engine, "T-1")
    page = page_of("k-water")
    page.goto(f"{url}/console/tickets/T-1")
    form = page.locator('form[data-action="fire:resolve"]')
    expect(form).to_have_attribute("enctype", "multipart/form-data")
    expect(form.locator(".evidence-need")).to_contain_text("须附 1 张照片（标签：处置后）")
    expect(form.locator(".evidence-need .limits")).to_contain_text("20 MB")
    # without the photo: the engine's own rule refuses, in words
    form.locator("button[type=submit]").click()
    expect(page.locator("#refusal")).to_contain_text(
        "“处置完毕”须附证据：须附 1 张照片（标签：处置后）。请选择文件后再提交。")
    assert engine.get("T-1").state == "on_site"
    # a file whose name says PNG and whose content is a PDF: the upload's checks refuse it
    fake = tmp_path / "after.png"
    fake.write_bytes(b"%PDF-1.4\n%%EOF\n")
    form = page.locator('form[data-action="fire:resolve"]')
    form.locator("input[type=file]").set_input_files(str(fake))
    form.locator("button[type=submit]").click()
    expect(page.locator("#refusal")).to_contain_text("文件“after.png”声明为 image/png")
    assert engine.get("T-1").state == "on_site"
    # the real photo: uploaded through the API's path, the trigger fired with it
    real = tmp_path / "after-real.png"
    real.write_bytes(png_bytes(rgb=(0, 200, 0)))
    form = page.locator('form[data-action="fire:resolve"]')
    form.locator("input[type=file]").set_input_files(str(real))
    form.locator("button[type=submit]").click()
    expect(page.locator(".done")).to_be_visible()
    assert engine.get("T-1").state == "resolved"
    after = [a for a in engine.attachments("T-1") if a.trigger == "resolve"]
    assert [(a.tag, a.kind, a.role, a.actor, a.size) for a in after] == [
        ("after", "photo", "department", "water-3", real.stat().st_size)]
    expect(page.locator("#timeline")).to_contain_text("照片（处置后）")
    assert all(u.startswith(url) for u in page.requested), page.requested


def test_the_evidence_form_is_in_english_too(site: Site, page_of: Any) -> None:
    from playwright.sync_api import expect

    url, engine = site
    _on_site_ticket(engine, "T-2")
    page = page_of("k-water")
    page.goto(f"{url}/console/tickets/T-2?lang=en")
    need = page.locator('form[data-action="fire:resolve"] .evidence-need')
    expect(need).to_contain_text("Needs 1 photo tagged “After”")
    expect(need.locator("input[type=file]")).to_have_attribute(
        "accept", "image/jpeg,image/png,image/webp,image/heic")
    # a report by the centre's hotline is not bound by the photo rule: no file input
    engine.report("grid_incident", {"category": "noise"}, actor=CENTRE, ticket_id="T-3")
    engine.fire("T-3", "dispatch", actor=CENTRE, fields={"department": "water"})
    engine.fire("T-3", "arrive", actor=Actor("water-3", "department"))
    page.goto(f"{url}/console/tickets/T-3?lang=en")
    expect(page.locator('form[data-action="fire:resolve"]')).to_be_visible()
    expect(page.locator('form[data-action="fire:resolve"] .evidence-need')).to_have_count(0)


def test_a_department_without_work_orders_sees_its_own_title_on_the_reports(
        site: Site, page_of: Any) -> None:
    from playwright.sync_api import expect

    url, _ = site
    page = page_of("k-water")  # water has no work orders: its report row is empty
    page.goto(f"{url}/console/reports")
    heads = page.locator("#report-table thead th")
    expect(heads).to_have_count(2)
    expect(heads.nth(1)).to_have_text("区水务局")  # main: "water", the raw name
    expect(page.locator('#report-table tr[data-figure="received"] td')).to_have_text("0")
    page.goto(f"{url}/console/reports?lang=en")
    expect(page.locator("#report-table thead th").nth(1)).to_have_text("Water authority")


def test_an_oversized_upload_gets_a_console_page_that_says_the_limit(
        site: Site, page_of: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, engine = site
    _on_site_ticket(engine, "T-1")
    limit = 20 * 1024 * 1024 + 1_000_000  # the largest file and its form (create_app)
    big = tmp_path / "huge.png"
    big.write_bytes(png_bytes() + b"\0" * (limit + 1000))
    page = page_of("k-water")
    for lang, heading, says, back in (
            ("zh", "提交内容过大", "本服务器每次最多接收 21 MB（21,971,520 字节）", "返回事件 T-1"),
            ("en", "Too large to send", "this server accepts at most 21 MB (21,971,520 bytes)",
             "Back to ticket T-1")):
        page.goto(f"{url}/console/lang/{lang}?next=/console/tickets/T-1")  # the cookie
        form = page.locator('form[data-action="fire:resolve"]')
        form.locator("input[type=file]").set_input_files(str(big))
        with page.expect_response(f"{url}/console/tickets/T-1/actions") as answered:
            form.locator("button[type=submit]").click()
        response = answered.value
        assert response.status == 413
        assert response.headers["content-type"].startswith("text/html")  # main: problem+json
        expect(page.locator("h1")).to_have_text(heading)
        expect(page.locator("#error .refusal")).to_contain_text(says)
        # in the console's style: its stylesheet, its header, the page's language
        assert page.evaluate("getComputedStyle(document.querySelector('.top'))"
                             ".backgroundColor") == "rgb(22, 50, 79)"
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if lang == "zh"
                                                       else "en")
        expect(page.locator("#back")).to_have_text(back)
        page.locator("#back").click()
        expect(page.locator("#summary h1")).to_have_text("T-1")
        assert page.url.startswith(f"{url}/console/tickets/T-1")
    assert engine.get("T-1").state == "on_site"
    assert all(u.startswith(url) for u in page.requested), page.requested


@pytest.fixture
def zoned(tmp_path: Path, browser: Any) -> Iterator[tuple[str, Engine, Any]]:
    """grid_incident (Shanghai), a Chicago lifecycle and one without a zone, on one board."""
    from engine import VirtualClock

    now = datetime(2025, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    engine = Engine(tmp_path / "zoned.sqlite", clock=VirtualClock(now))
    for name, zone in (("chicago", "America/Chicago"), ("nocal", None)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(permits_lifecycle(name, zone))
        engine.deploy(path)
    app = create_app(engine, api_keys=KEYS, lifecycles=("grid_incident", "chicago", "nocal"))
    ctx = browser.new_context(viewport={"width": 375, "height": 800})
    try:
        with running(app) as url:
            yield url, engine, ctx.new_page()
    finally:
        ctx.close()
        engine.stop()


def test_board_risk_and_reports_show_each_lifecycle_s_own_zone(
        zoned: tuple[str, Engine, Any]) -> None:
    from playwright.sync_api import expect

    url, engine, page = zoned
    chicago = ZoneInfo("America/Chicago")
    end_of_9_june = datetime(2025, 6, 9, 23, 59, tzinfo=chicago)  # 10 June 04:59 UTC
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    Departments(engine).dispatch("T-1", actor=CENTRE)
    engine.report("chicago", {"due_by": end_of_9_june.isoformat()}, actor=CENTRE,
                  ticket_id="C-1")
    engine.report("nocal", {"due_by": end_of_9_june.isoformat()}, actor=CENTRE,
                  ticket_id="N-1")
    engine.report("chicago", {"due_by": datetime(2025, 6, 2, 17, 0, tzinfo=chicago)
                              .isoformat()}, actor=CENTRE, ticket_id="C-late")
    page.set_extra_http_headers({"X-API-Key": "k-centre"})
    page.goto(f"{url}/console?lang=en")
    when = {i: card(page, i).locator(".when") for i in ("T-1", "T-1.1", "C-1", "N-1", "C-late")}
    # main: no instant on a card, and one line saying every time is Shanghai's
    expect(when["C-1"]).to_have_text("Due Monday 9 Jun 2025 23:59 UTC−5")
    expect(when["N-1"]).to_have_text("Due Tuesday 10 Jun 2025 04:59 UTC")
    expect(when["C-late"]).to_have_text("Over since Monday 2 Jun 2025 17:00 UTC−5")
    expect(when["T-1"]).to_contain_text(" UTC+8")
    expect(when["T-1.1"]).to_contain_text(" UTC+8")  # a work order: its ticket's zone
    note = page.locator("#zone-note")
    expect(note).to_have_text(
        "Each ticket's and work order's times are in its lifecycle's zone, labelled on its "
        "card: Asia/Shanghai (UTC+8), America/Chicago (UTC−5), UTC (lifecycles without a "
        "zone).")
    page.goto(f"{url}/console/risk")  # ?lang=en above is kept for the pages after it
    expect(card(page, "C-late").locator(".when")).to_have_text(
        "Over since Monday 2 Jun 2025 17:00 UTC−5")
    page.goto(f"{url}/console/risk?lang=zh")
    expect(card(page, "C-late").locator(".when")).to_have_text(
        "超期自 2025年6月2日（周一）17:00 UTC−5")
    expect(page.locator("#zone-note")).to_contain_text("各事件、工单的时间按其所属流程的时区显示")
    expect(page.locator("#zone-note")).to_contain_text("America/Chicago（UTC−5）")
    # a report of one lifecycle: its dates are cut in that lifecycle's zone, and it says so
    page.goto(f"{url}/console/reports?lifecycle=chicago&by=period&period=day&lang=en")
    expect(page.locator("#zone-note")).to_have_text(
        "This report's dates and periods (its from and until dates too) are cut in "
        "America/Chicago time (UTC−5).")
    expect(page.locator("#report-table thead th").nth(2)).to_have_text("2025-06-03")
    page.goto(f"{url}/console/reports?lifecycle=nocal&lang=en")
    expect(page.locator("#zone-note")).to_have_text(
        "This report's dates and periods are cut in UTC: this lifecycle sets no time zone.")
    page.goto(f"{url}/console/reports?lang=zh")
    expect(page.locator("#zone-note")).to_have_text(
        "报表的日期与时段（含起止日期）按 Asia/Shanghai 时间（UTC+8）划分。")
