"""The console's times and values as a person reads them (real uvicorn on loopback, a real
SQLite file): instants in the lifecycle's zone with the zone labelled (UTC, labelled, when no
zone is known), history values with the lifecycle's titles and in local time."""

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
from helpers import permits_lifecycle
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, VirtualClock

CHICAGO = ZoneInfo("America/Chicago")
KEYS = {"k-centre": ApiKey(actor="ops-1", role="centre"),
        "k-san": ApiKey(actor="san-1", role="department", department="sanitation")}
CENTRE = {"X-API-Key": "k-centre"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    clock = VirtualClock(datetime(2025, 6, 2, 9, 0, tzinfo=CHICAGO))
    engine = Engine(tmp_path / "d.sqlite", clock=clock,
                    evidence_store=str(tmp_path / "evidence"))
    for name, calendar in (("nocal", False), ("chicago", True)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(permits_lifecycle(name, "America/Chicago" if calendar else None))
        engine.deploy(path)
    app = create_app(engine, api_keys=KEYS, lifecycles=("grid_incident", "nocal", "chicago"))
    try:
        with running(app) as url:
            yield url, engine
    finally:
        engine.stop()


def _text(page: str, element_id: str) -> str:
    found = re.search(rf'<(section|p|div)\b[^>]*id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found is not None, element_id
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(2)))


def test_without_a_zone_instants_are_labelled_utc(site: tuple[str, Engine]) -> None:
    url, engine = site
    end_of_9_june = datetime(2025, 6, 9, 23, 59, tzinfo=CHICAGO)  # 10 June 04:59 UTC
    engine.report("nocal", {"due_by": end_of_9_june.isoformat()},
                  actor=Actor("ops-1", "centre"), ticket_id="N-1")
    page = httpx.get(f"{url}/console/tickets/N-1", params={"lang": "en"}, headers=CENTRE).text
    timers = _text(page, "timers")
    assert "Tuesday 10 Jun 2025 04:59 UTC" in timers
    assert "Times are in UTC: this lifecycle sets no time zone." in _text(page, "zone-note")
    # the report's own instant in the history, and the field's value, labelled too
    assert "Monday 2 Jun 2025 14:00 UTC" in _text(page, "timeline")
    assert "Due by = Tuesday 10 Jun 2025 04:59 UTC" in _text(page, "timeline")


def test_a_lifecycle_with_a_calendar_shows_its_own_zone_labelled(
        site: tuple[str, Engine]) -> None:
    url, engine = site
    engine.report("chicago", {"due_by": datetime(2025, 6, 9, 23, 59, tzinfo=CHICAGO)
                              .isoformat()}, actor=Actor("ops-1", "centre"), ticket_id="C-1")
    page = httpx.get(f"{url}/console/tickets/C-1", params={"lang": "en"}, headers=CENTRE).text
    assert "Monday 9 Jun 2025 23:59 UTC−5" in _text(page, "timers")
    assert "Monday 2 Jun 2025 09:00 UTC−5" in _text(page, "timeline")
    assert "Times are in America/Chicago time (UTC−5)." in _text(page, "zone-note")
    zh = httpx.get(f"{url}/console/tickets/C-1", params={"lang": "zh"}, headers=CENTRE).text
    assert "2025年6月9日（周一）23:59 UTC−5" in _text(zh, "timers")
    assert "时间均为 America/Chicago 时间（UTC−5）。" in _text(zh, "zone-note")


def test_history_shows_titles_and_local_times_not_raw_values(
        site: tuple[str, Engine]) -> None:
    url, engine = site
    gw = Actor("gw-017", "grid_worker")
    site_photo = engine.upload(png_bytes(), actor=gw, lifecycle="grid_incident")
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A1"}, actor=gw,
                  ticket_id="T-1", evidence=[{"upload": site_photo.sha256,
                                              "taken_at": "2025-06-02T08:55:00-05:00"}])
    engine.fire("T-1", "dispatch", actor=Actor("ops-1", "centre"),
                fields={"department": "sanitation",
                        "target_at": datetime(2025, 6, 9, 23, 59, tzinfo=CHICAGO).isoformat()})
    after = engine.upload(png_bytes(rgb=(0, 200, 0)), actor=gw, lifecycle="grid_incident")
    engine.fire("T-1", "arrive", actor=Actor("san-1", "department"))
    engine.fire("T-1", "resolve", actor=Actor("san-1", "department"),
                evidence=[{"upload": after.sha256, "tag": "after"}])
    page = httpx.get(f"{url}/console/tickets/T-1", headers=CENTRE).text
    timeline = _text(page, "timeline")
    assert "问题类别 = 下水道堵塞" in timeline and "blocked_drain" not in timeline
    assert "承办部门 = 区城管委环卫中心" in timeline and "sanitation" not in timeline
    # grid_incident's calendar is Beijing time: 23:59 in Chicago is 12:59 the next day
    assert "办结时限 = 2025年6月10日（周二）12:59 UTC+8" in timeline
    assert "2025-06-10T04:59" not in timeline
    assert "照片，拍摄于2025年6月2日（周一）21:55 UTC+8" in timeline
    assert "照片（处置后）" in timeline
    en = _text(httpx.get(f"{url}/console/tickets/T-1", params={"lang": "en"},
                         headers=CENTRE).text, "timeline")
    assert "Category = Blocked drain" in en and "Photo (After)" in en
    # the details box shows titles as well
    assert "区城管委环卫中心" in _text(page, "summary")
