"""Take the screenshots in docs/console/ from the bundled replay's database.

Run from the repository root (needs Debian's chromium and the playwright package):

    .venv/bin/python docs/console/screenshots.py

It runs ``gridwhistle replay`` into a temporary database, adds a morning's live tickets on a
virtual clock (Wednesday 4 June 2025, 16:00 Beijing time: some dispatched to departments,
one escalated after its dispatch deadline, one past an SLA warning), serves the app on
loopback and photographs each page at a desktop and a phone width. The server is the app of
``gridwhistle serve`` without its scheduler (nothing fires while the pictures are taken).
Grid workers report with a photo, as grid_incident's ``requirements`` ask
(``tests/test_docs.py`` runs :func:`seed`, so the script keeps up with the lifecycle).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import chromium  # noqa: E402
from evidence_files import png_bytes  # noqa: E402
from servers import running  # noqa: E402

from adapters.http import ApiKey, create_app  # noqa: E402
from engine import Actor, Departments, Engine, VirtualClock  # noqa: E402

OUT = Path(__file__).parent
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 4, 16, 0, tzinfo=SH)
KEYS = {"k-centre": ApiKey(actor="ops-1", role="centre"),
        "k-water": ApiKey(actor="water-3", role="department", department="water")}
GW, CENTRE = Actor("gw-017", "grid_worker"), Actor("ops-1", "centre")
WATER, SAN = Actor("water-3", "department"), Actor("san-1", "department")


def seed(engine: Engine) -> None:
    """A day of live tickets before ``NOW``, run on the engine's virtual clock."""
    clock = engine.clock
    assert isinstance(clock, VirtualClock)
    depts = Departments(engine)

    def at(hours_before: float) -> None:
        engine.run_until(NOW - timedelta(hours=hours_before))

    def photo(rgb: tuple[int, int, int]) -> list[dict[str, str]]:
        """The site photo a grid worker's report needs (grid_incident's ``requirements``)."""
        return [{"upload": engine.upload(png_bytes(rgb=rgb), actor=GW).sha256}]

    clock.set(NOW - timedelta(days=1, hours=7))
    engine.report("grid_incident", {"category": "street_light", "area": "滨江-07",
                                    "description": "路灯不亮"}, actor=GW, ticket_id="GW-0601",
                  evidence=photo((40, 170, 90)))
    engine.fire("GW-0601", "dispatch", actor=CENTRE, fields={"department": "lighting"})
    at(29)
    engine.fire("GW-0601", "arrive", actor=Actor("light-2", "department"))
    at(5)
    engine.report("grid_incident", {"category": "blocked_drain", "area": "滨江-03",
                                    "description": "雨水井堵塞，路面积水"}, actor=GW,
                  ticket_id="GW-0602", evidence=photo((80, 140, 90)))
    depts.dispatch("GW-0602", actor=CENTRE, reason="按派单规则")
    engine.fire("GW-0602.1", "accept", actor=WATER)
    engine.fire("GW-0602.2", "accept", actor=SAN)
    at(4)
    engine.fire("GW-0602.1", "arrive", actor=WATER)
    at(3)
    engine.report("grid_incident", {"category": "road_damage", "area": "滨江-11",
                                    "description": "人行道塌陷"}, actor=GW,
                  ticket_id="GW-0603", evidence=photo((120, 110, 90)))
    depts.dispatch("GW-0603", actor=CENTRE)
    at(1.5)
    engine.report("grid_incident", {"category": "garbage", "area": "滨江-05",
                                    "description": "建筑垃圾堆放"}, actor=GW,
                  ticket_id="GW-0604", evidence=photo((160, 80, 90)))
    at(0.4)
    engine.report("grid_incident", {"category": "noise", "area": "滨江-02",
                                    "description": "夜间施工噪声"}, actor=GW,
                  ticket_id="GW-0605", evidence=photo((200, 50, 90)))
    engine.run_until(NOW)


def main() -> None:
    """Replay, seed, serve on loopback, photograph every page at two widths."""
    with tempfile.TemporaryDirectory(prefix="gw-shots-") as d:
        db = Path(d) / "replay.sqlite"
        subprocess.run([sys.executable, "-m", "adapters.cli", "replay", "--db", str(db)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        engine = Engine(db, clock=VirtualClock(NOW - timedelta(days=2)))
        try:
            seed(engine)
            with running(create_app(engine, api_keys=KEYS)) as url, chromium() as browser:
                shots = [("board", "/console", "k-centre"),
                         ("risk", "/console/risk", "k-centre"),
                         ("ticket", "/console/tickets/GW-0602", "k-centre"),
                         ("work-order", "/console/tickets/GW-0602.1", "k-water"),
                         ("board-department", "/console", "k-water"),
                         ("reports", "/console/reports?by=level", "k-centre"),
                         ("reports-department", "/console/reports?by=department"
                          "&from=2024-01-01&until=2024-12-31", "k-centre")]
                for width, suffix in ((1280, ""), (375, "-phone")):
                    ctx = browser.new_context(viewport={"width": width, "height": 900})
                    page = ctx.new_page()
                    page.goto(f"{url}/console/login")
                    page.screenshot(path=OUT / f"login{suffix}.png")
                    for name, path, key in shots:
                        page.set_extra_http_headers({"X-API-Key": key})
                        page.goto(url + path)
                        page.wait_for_timeout(300)
                        page.screenshot(path=OUT / f"{name}{suffix}.png", full_page=True)
                    ctx.close()
        finally:
            engine.stop()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
