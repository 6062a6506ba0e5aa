"""The console over real HTTP (no browser): sign-in, cookies and CSRF, scopes, the pages'
content (timers explained, the SVG diagram, the charts), refusals in words, live events."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from servers import running

from adapters.http import ApiKey, create_app
from adapters.http.console.feed import latest_event_id
from engine import Actor, Departments, Engine, Limits, VirtualClock

SH = ZoneInfo("Asia/Shanghai")
Site = tuple[str, Engine]
KEYS = {
    "k-centre": ApiKey(actor="ops-1", role="centre"),
    "k-water": ApiKey(actor="water-3", role="department", department="water"),
    "k-san": ApiKey(actor="san-1", role="department", department="sanitation"),
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
}
CENTRE = {"X-API-Key": "k-centre"}
GW = Actor("gw-017", "centre")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    # Saturday 18 May 2024, 20:00 in Shanghai: outside the centre's hours
    engine = Engine(tmp_path / "c.sqlite",
                    clock=VirtualClock(datetime(2024, 5, 18, 20, 0, tzinfo=SH)))
    with running(create_app(engine, api_keys=KEYS)) as url:
        yield url, engine
    engine.stop()


def sign_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url)
    form = client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    r = client.post("/console/login", data={"key": key, "login_token": token.group(1),
                                            "next": "/console"})
    assert (r.status_code, r.headers["location"]) == (303, "/console")
    return client


def dispatched_to_water(url: str, engine: Engine) -> httpx.Client:
    """Ticket T-1 (a blocked drain) dispatched by routing; the water department signed in."""
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    Departments(engine).dispatch("T-1", actor=Actor("ops-1", "centre"))
    return sign_in(url, "k-water")


def escalate_as(client: httpx.Client, page: httpx.Response) -> httpx.Response:
    """Post the escalate form of T-1's page (a department may not: refused)."""
    return client.post("/console/tickets/T-1/actions",
                       data={"action": "escalate", "reason": "too slow",
                             "csrf": csrf_of(page.text)})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_sign_in_sets_an_httponly_session_cookie_and_forms_need_the_csrf_token(site: Site) -> None:
    url, engine = site
    anonymous = httpx.get(f"{url}/console")
    assert (anonymous.status_code, anonymous.headers["location"]) == (
        303, "/console/login?next=/console")
    client = httpx.Client(base_url=url)
    form = client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    bad = client.post("/console/login", data={"key": "nope", "login_token": token})
    assert bad.headers["location"].startswith("/console/login?failed=1")
    forged = httpx.post(f"{url}/console/login", data={"key": "k-centre", "login_token": "x"})
    assert forged.status_code == 403  # no double-submit cookie
    client.close()

    client = sign_in(url, "k-centre")
    cookie = next(c for c in client.cookies.jar if c.name == "gw_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/console"
    assert cookie.value and "k-centre" not in cookie.value  # a session id, never the key
    page = client.get("/console")
    assert page.status_code == 200 and "ops-1" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]

    engine.report("grid_incident", {"category": "noise"}, actor=GW, ticket_id="T-1")
    ticket = client.get("/console/tickets/T-1")
    no_token = client.post("/console/tickets/T-1/actions", data={"action": "fire:dispatch"})
    assert no_token.status_code == 403
    assert engine.get("T-1").state == "reported"
    done = client.post("/console/tickets/T-1/actions",
                       data={"action": "dispatch_routing", "csrf": csrf_of(ticket.text)})
    assert (done.status_code, done.headers["location"]) == (
        303, "/console/tickets/T-1?done=dispatch_routing")
    assert engine.get("T-1").state == "dispatched"
    assert [o.department for o in Departments(engine).work_orders("T-1")] == [
        "urban_management"]

    out = client.post("/console/logout", data={"csrf": csrf_of(client.get("/console").text)})
    assert out.status_code == 303
    assert client.get("/console").status_code == 303  # signed out


def test_the_ticket_page_explains_its_timers_with_the_calendar(site: Site) -> None:
    url, engine = site
    engine.report("grid_incident", {"category": "noise", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    html = httpx.get(f"{url}/console/tickets/T-1", headers=CENTRE).text
    # 1 working hour from Saturday 20:00: Sunday has no hours, Monday 08:30 + 1 h
    assert "从2024年5月18日（周六）20:00起1个工作小时，按指挥中心工作时间 → " \
           "2024年5月20日（周一）09:30" in html
    assert "2024年5月19日（周日）: 非工作日" in html
    assert "2024年5月20日（周一） 08:30–09:30 (1 h)" in html
    en = httpx.get(f"{url}/console/tickets/T-1", params={"lang": "en"}, headers=CENTRE).text
    assert ("15 working hours of Command centre working hours from Saturday 18 May 2024 "
            "20:00 → Tuesday 21 May 2024 17:30") in en
    assert "30 min (elapsed) from Saturday 18 May 2024 20:00 → Saturday 18 May 2024 " \
           "20:30" in en
    # the state diagram: SVG drawn on the server, the current state marked
    svg = re.search(r'<svg[^>]*class="state-diagram".*?</svg>', html, re.S)
    assert svg is not None
    assert re.search(r'class="state current" data-state="reported" aria-current="true"',
                     svg.group(0))
    assert svg.group(0).count('data-state=') == 11  # every state of grid_incident


def test_public_holidays_appear_in_the_reasoning(tmp_path: Path) -> None:
    # Saturday 8 June 2024 20:00; Monday 10 June is the Dragon Boat Festival
    engine = Engine(tmp_path / "h.sqlite",
                    clock=VirtualClock(datetime(2024, 6, 8, 20, 0, tzinfo=SH)))
    try:
        engine.report("grid_incident", {"category": "noise"}, actor=GW, ticket_id="T-1")
        with running(create_app(engine, api_keys=KEYS)) as url:
            html = httpx.get(f"{url}/console/tickets/T-1", headers=CENTRE).text
    finally:
        engine.stop()
    assert "→ 2024年6月11日（周二）09:30" in html
    assert "2024年6月10日（周一）: 法定节假日" in html


def test_department_keys_see_their_own_work_orders_only(site: Site) -> None:
    url, engine = site
    centre = Actor("ops-1", "centre")
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    engine.report("grid_incident", {"category": "garbage", "area": "A2"}, actor=GW,
                  ticket_id="T-2")
    Departments(engine).dispatch("T-1", actor=centre)  # water leads, sanitation co-handles
    Departments(engine).dispatch("T-2", actor=centre)  # sanitation
    water = httpx.get(f"{url}/console", headers={"X-API-Key": "k-water"}).text
    cards = set(re.findall(r'id="card-([^"]+)"', water))
    assert cards == {"T-1", "T-1.1"}
    san = set(re.findall(r'id="card-([^"]+)"',
                         httpx.get(f"{url}/console", headers={"X-API-Key": "k-san"}).text))
    assert san == {"T-2", "T-1.2", "T-2.1"}
    centre_cards = set(re.findall(r'id="card-([^"]+)"',
                                  httpx.get(f"{url}/console", headers=CENTRE).text))
    assert centre_cards == {"T-1", "T-2", "T-1.1", "T-1.2", "T-2.1"}
    other = httpx.get(f"{url}/console/tickets/T-1.2", headers={"X-API-Key": "k-water"})
    assert other.status_code == 403 and "本部门（water）" in other.text


def test_a_refused_action_is_shown_in_words(site: Site) -> None:
    url, engine = site
    client = dispatched_to_water(url, engine)
    page = client.get("/console/tickets/T-1")
    assert 'data-action="escalate"' in page.text  # offered under "other roles"
    r = escalate_as(client, page)
    assert r.status_code == 403
    refusal = html.unescape(re.search(r'id="refusal">(.*?)</div>', r.text, re.S).group(1))  # type: ignore[union-attr]
    assert "角色“职能部门”不能执行“升级处置”；可以执行的角色：指挥中心、系统。" in refusal
    assert "role 'department' may not fire 'escalate'" in refusal  # the engine's own words
    assert engine.get("T-1").level == "community"
    first = client.post("/console/tickets/T-1.1/actions",
                        data={"action": "fire:bounce", "reason": "sewer",
                              "csrf": csrf_of(page.text)})
    assert first.status_code == 409
    assert "without the centre's approval" in html.unescape(first.text)


def test_reports_page_draws_svg_charts_with_no_script(site: Site) -> None:
    url, engine = site
    engine.report("grid_incident", {"category": "noise"}, actor=GW, ticket_id="T-1")
    html = httpx.get(f"{url}/console/reports", params={"by": "level"}, headers=CENTRE).text
    charts = re.findall(r'<figure class="chart" data-chart="(\w+)">', html)
    assert charts == ["rates", "times", "escalations", "bounces", "volume", "satisfaction",
                      "callbacks", "oversight", "oversight_time"]
    assert "<script" not in html.split("</head>")[1]  # pygal's scripts are removed
    assert "办结率" in html and "社区吹哨" in html
    csv_text = httpx.get(f"{url}/console/reports.csv", params={"by": "level"},
                         headers=CENTRE).text
    assert csv_text.splitlines()[1].startswith("community,社区吹哨,1,0,")


def test_the_event_stream_sends_the_card_of_a_new_report(site: Site) -> None:
    url, engine = site
    cursor = latest_event_id(engine)
    engine.report("grid_incident", {"category": "noise"}, actor=GW, ticket_id="T-9")
    assert latest_event_id(engine) == cursor + 1
    with httpx.stream("GET", f"{url}/console/events", params={"after": cursor},
                      headers=CENTRE, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    assert f"id: {cursor + 1}" in lines and "event: card" in lines
    assert '"id": "T-9"' in lines[-1] and 'id=\\"card-T-9\\"' in lines[-1]


def test_a_work_order_page_shows_its_times_beside_its_tickets(site: Site) -> None:
    url, engine = site
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=GW,
                  ticket_id="T-1")
    Departments(engine).dispatch("T-1", actor=Actor("ops-1", "centre"))
    html = httpx.get(f"{url}/console/tickets/T-1.1", headers=CENTRE).text
    # work_order.yaml has no calendar: its instants are shown in the centre's zone too
    assert "从2024年5月18日（周六）20:00起1天（自然时间） → 2024年5月19日（周日）20:00" in html
    assert "下水道堵塞" in html and "主办" in html  # the parent's category title, the role


def test_issue_11_refusals_are_told_in_the_console_language(tmp_path: Path) -> None:
    from adapters.http.console.routes import refusal_words
    from engine import FieldNotAllowed, NotTheHandler, OversightRefused

    eng = Engine(tmp_path / "words.sqlite", clock=VirtualClock(datetime(2024, 5, 7, 9)
                                                             .astimezone(ZoneInfo("UTC"))))
    eng.deploy("grid_incident")
    lc = eng.lifecycle("grid_incident")
    served = ("grid_incident",)
    moved = FieldNotAllowed("T1", "arrive", "department", ["target_at"],
                            {"target_at": ["centre"]}, {"target_at": []})
    assert refusal_words(moved, eng, served, lc, "zh") == (
        "此角色不能修改字段：target_at。请联系指挥中心修改；需要更多时间请提交延期申请。")
    assert refusal_words(moved, eng, served, lc, "en").startswith(
        "This role may not change: target_at. Ask the command centre")
    handler = NotTheHandler("T1", "arrive", "department", "district", "district_office",
                            ["centre", "district_office", "system"])
    district = eng.lifecycle("grid_incident").spec.roles["district_office"].title["zh"]
    assert refusal_words(handler, eng, served, lc, "zh") == (
        f"此事件已升级到“district”级，只能由{district}或指挥中心处理。")
    assert refusal_words(OversightRefused("T1", "not_suspended"), eng, served, lc, "en") == (
        "This ticket is not suspended: there is nothing to resume.")
    eng.stop()


def test_a_console_form_over_the_body_limit_gets_a_page_and_the_api_keeps_problem_json(
        tmp_path: Path) -> None:
    engine = Engine(tmp_path / "l.sqlite",
                    clock=VirtualClock(datetime(2024, 5, 18, 20, 0, tzinfo=SH)))
    engine.report("grid_incident", {"category": "noise"}, actor=GW, ticket_id="T-1")
    app = create_app(engine, api_keys=KEYS, limits=Limits(body_bytes=20_000))
    try:
        with running(app) as url, httpx.Client(base_url=url, headers=CENTRE) as client:
            big = {"action": "escalate", "reason": "x" * 30_000}
            r = client.post("/console/tickets/T-1/actions", data=big)
            assert r.status_code == 413
            assert r.headers["content-type"].startswith("text/html")  # main: problem+json
            assert "default-src 'self'" in r.headers["content-security-policy"]
            text = html.unescape(r.text)
            assert "本服务器每次最多接收 20 KB（20,000 字节）" in text
            assert 'href="/console/tickets/T-1" id="back">返回事件 T-1<' in text

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
                yield b"action=escalate&reason="
                for _ in range(30):
                    yield b"x" * 1000

            r = client.post("/console/tickets/T-1/actions?lang=en", content=chunks(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
            assert "this server accepts at most" in html.unescape(r.text)
            # the API's routes keep their problem details
            r = client.post("/tickets", json={"fields": {"category": "noise",
                                                         "description": "x" * 30_000}})
            assert (r.status_code, r.headers["content-type"]) == (413,
                                                                  "application/problem+json")
            r = client.post("/tickets/T-1/triggers/escalate", content=chunks(),
                            headers={"Content-Type": "application/json"})
            assert (r.status_code, r.headers["content-type"]) == (413,
                                                                  "application/problem+json")
        assert engine.get("T-1").level == "community"  # nothing was done
    finally:
        engine.stop()


def _lang_link(page: str) -> str:
    found = re.search(r'<a class="lang" href="([^"]+)"', page)
    assert found is not None
    return html.unescape(found.group(1))


def test_the_language_switch_returns_to_a_page_that_can_be_fetched(site: Site) -> None:
    url, engine = site
    client = dispatched_to_water(url, engine)
    page = client.get("/console/tickets/T-1")
    refused = escalate_as(client, page)
    assert refused.status_code == 403
    # the refusal answers a POST-only URL: the switch goes back to the ticket's page
    switch = client.get(_lang_link(refused.text))
    assert (switch.status_code, switch.headers["location"]) == (303, "/console/tickets/T-1")
    back = client.get(switch.headers["location"])
    assert back.status_code == 200 and '<html lang="en">' in back.text
    # a GET page comes back with its own query, without the old ?lang=
    reports = client.get("/console/reports", params={"by": "level", "lang": "zh"})
    switch = client.get(_lang_link(reports.text))
    assert switch.headers["location"] == "/console/reports?by=level"


def test_a_language_asked_for_in_the_url_stays_for_the_form_answers_after_it(
        site: Site) -> None:
    url, engine = site
    client = dispatched_to_water(url, engine)
    page = client.get("/console/tickets/T-1", params={"lang": "en"})
    assert '<html lang="en">' in page.text
    assert client.cookies.get("gw_lang", path="/console") == "en"
    refused = escalate_as(client, page)  # the form's URL has no ?lang=
    assert refused.status_code == 403 and '<html lang="en">' in refused.text


def test_a_form_for_a_ticket_that_does_not_exist_gets_the_console_s_404_page(
        site: Site) -> None:
    url, engine = site
    engine.report("grid_incident", {"category": "noise"}, actor=GW, ticket_id="T-1")
    client = sign_in(url, "k-centre")
    csrf = csrf_of(client.get("/console/tickets/T-1").text)
    r = client.post("/console/tickets/nosuch1234/actions",
                    data={"action": "escalate", "reason": "x", "csrf": csrf})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")  # main: problem+json
    assert "nosuch1234" in r.text and '<html lang="zh-CN">' in r.text


@pytest.mark.parametrize(("asked", "sent_to"), [
    ("/console/tickets/T-1?lang=en", "/console/tickets/T-1?lang=en"),
    ("/console/reports", "/console/reports"),
    ("/console/../admin", "/console"),      # main: /console/../admin, outside the console
    ("/console/%2e%2e/admin", "/console"),  # the same, percent-encoded
    ("/consoles", "/console"),              # main: a path that only begins like ours
    ("//evil.example/console", "/console"),
    ("https://evil.example/console", "/console"),
    ("/console\\evil", "/console"),
])
def test_the_language_switch_and_sign_in_go_back_only_to_console_pages(
        site: Site, asked: str, sent_to: str) -> None:
    url, _ = site
    switched = httpx.get(f"{url}/console/lang/zh", params={"next": asked})
    assert (switched.status_code, switched.headers["location"]) == (303, sent_to)
    client = httpx.Client(base_url=url)
    form = client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    signed = client.post("/console/login", data={"key": "k-centre", "next": asked,
                                                 "login_token": token.group(1)})
    assert (signed.status_code, signed.headers["location"]) == (303, sent_to)
    client.close()
