"""Replaying real Chicago Open311 requests with notes: follow-ons to other agencies become
co-handling work orders, and the parent closes after its children."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.replay import build_report
from adapters.replay.open311 import (
    CHICAGO_SAMPLE,
    DumpError,
    iter_requests,
    read_json,
    replay_open311,
)
from engine import Departments, Engine, GridwhistleError, VirtualClock

SEEN_OPEN = "work orders still open: {} (Outside Agencies)"


@pytest.fixture(scope="module")
def chicago(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("chicago") / "chicago.sqlite"
    engine = Engine(db, clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    outcome = replay_open311(engine, CHICAGO_SAMPLE)
    report = build_report(engine, outcome)
    report["_engine"] = engine
    yield report
    engine.stop()


def test_chicago_figures(chicago: dict[str, Any]) -> None:
    r = chicago
    assert (r["rows"], r["tickets"], r["closed"], r["rejected"]) == (50, 50, 46, 0)
    # 50 reports + 50 dispatches + 52 follow-ons created + 3 created late (their creation
    # note is missing) ... applied as 249 events: every note but the 3 refused closes.
    assert r["events_applied"] == 249
    assert r["clock_from"] == "2014-01-03T20:15:56+00:00"
    # Chicago closed three requests while the utility's (Com Edison) follow-on was open:
    # under "all work orders done" the engine keeps them open. That is the lifecycle's rule
    # disagreeing with what the city did, not bad data: they are not rejections.
    assert [(x["row"], x["id"]) for x in r["kept_open"]] == [
        (18, "14-00195506"), (24, "14-00298415"), (25, "14-00323978")]
    assert r["kept_open"][0]["reason"].endswith(SEEN_OPEN.format("14-00195506/14-00214133"))
    assert r["kept_open"][0]["open_work_orders"] == ["14-00195506/14-00214133 (Outside Agencies)"]
    engine: Engine = r["_engine"]
    assert engine.get("14-00195506").state == "dispatched"
    assert r["verdicts"]["source"] is None  # Chicago's answers carry no expected_datetime


def test_chicago_figures_per_department(chicago: dict[str, Any]) -> None:
    figures = {d: tuple(f.values()) for d, f in chicago["departments"].items()}
    # (received, bounced, resolved, on time, escalated); work orders run work_order.yaml's
    # one-day deadline, which Chicago's months-long follow-ons all miss.
    assert figures == {
        "Buildings": (35, 0, 35, 0, 35),
        "Bureau of Traffic Services - S/S": (1, 0, 1, 0, 1),
        "DIM, Public Way Management - CDOT": (10, 0, 6, 0, 10),
        "DOB - Conservation": (35, 0, 35, 0, 35),
        "Division of Electrical Operations CDOT": (3, 0, 3, 0, 3),
        "Division of In-House Construction CDOT": (1, 0, 1, 0, 1),
        "Outside Agencies": (3, 0, 0, 0, 3),
        "Transportation": (10, 0, 9, 3, 7),
        "Water Management": (7, 0, 7, 0, 7),
    }


def test_each_request_shows_its_departments_and_order_of_events(chicago: dict[str, Any]) -> None:
    requests = {r["id"]: r for r in chicago["requests"]}
    assert len(requests) == 50
    first = requests["14-00011080"]
    assert (first["state"], first["departments"]) == ("closed",
                                                      ["DOB - Conservation", "Buildings"])
    moves = [(e["ticket"], e["trigger"], e["to_state"]) for e in first["events"]
             if e["kind"] in ("report", "transition") and e["trigger"] != "escalate"]
    assert moves == [
        ("14-00011080", "report", "reported"),
        ("14-00011080", "dispatch", "dispatched"),
        ("14-00011080/lead", "report", "issued"),
        ("14-00011080/lead", "accept", "accepted"),
        ("14-00011080/14-00663694", "report", "issued"),
        ("14-00011080/14-00663694", "accept", "accepted"),
        ("14-00011080/14-00663694", "finish", "done"),
        ("14-00011080/lead", "finish", "done"),
        ("14-00011080", "arrive", "on_site"),    # the rule "all" is met: the parent
        ("14-00011080", "resolve", "resolved"),  # resolves after its children
        ("14-00011080", "close", "closed"),
    ]
    two = requests["14-00684175"]
    assert two["departments"] == ["DIM, Public Way Management - CDOT", "Water Management",
                                  "Transportation"]
    still_open = requests["14-01873637"]
    assert still_open["state"] == "dispatched"
    engine: Engine = chicago["_engine"]
    assert [(o.role, o.state) for o in Departments(engine).work_orders("14-01873637")] == [
        ("lead", "escalated"), ("co", "done"), ("co", "escalated")]


def test_cli_replays_chicago_in_a_real_process(tmp_path: Path) -> None:
    db = tmp_path / "chicago.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--format", "open311-json",
         "--db", str(db), "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["tickets"], report["closed"], report["rejected"]) == (50, 46, 0)
    assert len(report["kept_open"]) == 3
    assert report["departments"]["Outside Agencies"] == {
        "received": 3, "bounced": 0, "resolved": 0, "on_time": 0, "escalated": 3}
    table = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--format", "open311-json",
         "--db", str(db)], capture_output=True, text=True, timeout=300, check=False)
    assert table.returncode == 0, table.stderr
    assert "By department (work orders" in table.stdout
    assert "kept open by the resolution rule" in table.stdout
    assert "14-00011080" in table.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "work-orders", "14-00684175", "--db", str(db),
         "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    orders = json.loads(shown.stdout)
    assert [(o["id"], o["role"], o["state"]) for o in orders["work_orders"]] == [
        ("14-00684175/lead", "lead", "done"), ("14-00684175/14-00687898", "co", "done"),
        ("14-00684175/15-04064105", "co", "done")]
    assert orders["sla"] == {"rule": "all", "quorum": None,
                             "due_at": "2015-08-14T16:03:00+00:00",
                             "met_at": "2015-10-01T13:31:13+00:00", "on_time": False}


def _without(report: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in {"seconds", "tickets_per_s", *keys}}


def test_a_paged_dump_replays_like_the_single_file(chicago: dict[str, Any], tmp_path: Path) -> None:
    requests = json.loads(CHICAGO_SAMPLE.read_text(encoding="utf-8"))
    pages = [requests[0:20], requests[20:40], requests[40:]]
    folder = tmp_path / "pages"
    folder.mkdir()
    for number, page in zip((1, 2, 10), pages, strict=True):  # page-10 after page-2
        (folder / f"page-{number}.json").write_text(json.dumps(page), encoding="utf-8")
    lines = tmp_path / "dump.jsonl"
    lines.write_text("".join(json.dumps(p) + "\n" for p in pages), encoding="utf-8")
    glued = tmp_path / "glued.json"
    glued.write_text("\n".join(json.dumps(p) for p in pages), encoding="utf-8")
    expected = _without(chicago, "_engine")
    for data in (folder, lines, glued):
        engine = Engine(tmp_path / f"{data.stem}.sqlite",
                        clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
        report = build_report(engine, replay_open311(engine, data))
        engine.stop()
        assert _without(report) == expected, data


def test_a_dump_without_notes_is_reported_dispatched_and_closed(tmp_path: Path) -> None:
    # Plain GeoReport v2: no notes. The city's deadline (expected_datetime) is set 30 days
    # after each request here, so that the computed verdicts are compared too.
    plain = []
    for req in json.loads(CHICAGO_SAMPLE.read_text(encoding="utf-8")):
        req = {k: v for k, v in req.items() if k != "notes"}
        requested = datetime.fromisoformat(req["requested_datetime"])
        req["expected_datetime"] = (requested + timedelta(days=30)).isoformat()
        plain.append(req)
    data = tmp_path / "plain.json"
    data.write_text(json.dumps(plain), encoding="utf-8")
    engine = Engine(tmp_path / "plain.sqlite",
                    clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    report = build_report(engine, replay_open311(engine, data))
    assert (report["tickets"], report["closed"], report["rejected"], len(report["kept_open"])
            ) == (50, 49, 0, 0)
    first = engine.get("14-00011080")  # requested 2014-01-03 14:18:52 -06:00, closed
    assert first.fields["target_at"] == datetime(2014, 2, 2, 20, 18, 52, tzinfo=UTC)
    steps = [(h.trigger, h.at) for h in engine.history(first.id)
             if h.kind in ("report", "transition") and h.trigger != "escalate"]
    assert steps[:2] == [("report", datetime(2014, 1, 3, 20, 18, 52, tzinfo=UTC)),
                         ("dispatch", datetime(2014, 1, 3, 20, 18, 52, tzinfo=UTC))]
    assert steps[-1] == ("close", datetime(2015, 10, 1, 17, 44, 55, tzinfo=UTC))  # updated_
    assert engine.get("14-01873637").state != "closed"  # the one open request
    assert report["verdicts"]["source"] == "computed"
    assert report["verdicts"]["compared"] == 50
    assert report["verdicts"]["disagree"] == 0
    engine.stop()


def test_unreadable_requests_are_rejected_with_their_reason(tmp_path: Path) -> None:
    data = tmp_path / "odd.jsonl"
    data.write_text(
        json.dumps({"service_request_id": "a1", "agency_responsible": "Streets",
                    "status": "open"}) + "\n"
        + json.dumps({"service_request_id": "a2"}) + "\n", encoding="utf-8")
    engine = Engine(tmp_path / "odd.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    report = build_report(engine, replay_open311(engine, data))
    engine.stop()
    assert report["rejections"] == [
        {"row": 1, "id": "a1", "reason": "no notes and no requested_datetime"},
        {"row": 2, "id": "a2", "reason": "no service_request_id or agency_responsible"}]


# -- a single large .json file streams (ijson) ------------------------------------------------


def _many_requests(count: int) -> list[dict[str, Any]]:
    """The 50 Chicago requests with their notes, then plain copies (no notes, new ids, a
    week apart, closed two hours after they were reported) up to ``count``."""
    sample = json.loads(CHICAGO_SAMPLE.read_text(encoding="utf-8"))
    out = list(sample)
    copy = 0
    while len(out) < count:
        copy += 1
        for req in sample[:count - len(out)]:
            req = {k: v for k, v in req.items() if k != "notes"}
            req["service_request_id"] = f"{req['service_request_id']}-{copy}"
            at = datetime.fromisoformat(req["requested_datetime"]) + timedelta(weeks=copy)
            req["requested_datetime"] = at.isoformat()
            req["updated_datetime"] = (at + timedelta(hours=2)).isoformat()
            out.append(req)
    return out


@pytest.mark.slow
def test_a_large_json_array_replays_like_the_same_requests_as_json_lines(tmp_path: Path
                                                                         ) -> None:
    requests = _many_requests(2000)
    array = tmp_path / "dump.json"
    array.write_text(json.dumps(requests, indent=1), encoding="utf-8")  # one list, many lines
    lines = tmp_path / "dump.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8")
    reports = []
    for data in (array, lines):
        engine = Engine(tmp_path / f"{data.suffix[1:]}.sqlite",
                        clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
        reports.append(_without(build_report(engine, replay_open311(engine, data))))
        engine.stop()
    from_array, from_lines = reports
    assert (from_array["rows"], from_array["tickets"], from_array["rejected"]) == (2000, 2000, 0)
    assert from_array == from_lines


def test_every_shape_of_json_file_reads_as_the_standard_library_reads_it(tmp_path: Path
                                                                         ) -> None:
    requests = _many_requests(5000)
    pages = [requests[i:i + 700] for i in range(0, len(requests), 700)]
    shapes = {
        "list.json": json.dumps(requests),
        "pages.json": json.dumps(pages),
        "wrapped.json": json.dumps({"count": len(requests), "service_requests": requests,
                                    "next": None}),
        "wrapped-pages.json": json.dumps([{"page": n, "requests": p}
                                          for n, p in enumerate(pages)]),
        "glued.json": "\n".join(json.dumps(p) for p in pages) + "\n\n",
        "one.json": json.dumps(requests[0], indent=2),
        "empty.json": " \n",
    }
    for name, text in shapes.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        expected = ([] if name == "empty.json" else [requests[0]] if name == "one.json"
                    else requests)
        assert list(iter_requests(tmp_path / name)) == expected, name


def test_a_json_file_is_read_a_request_at_a_time(tmp_path: Path) -> None:
    # The reader hands on the first request before it has read the end of the file, and
    # reading a 20,000-request file (about 9 MB) holds no more than a few requests.
    requests = _many_requests(20000)
    data = tmp_path / "big.json"
    data.write_text(json.dumps(requests), encoding="utf-8")
    size = data.stat().st_size
    assert size > 8_000_000
    with data.open("rb") as handle:
        first = next(read_json(handle, data))
        assert first == requests[0]
        assert handle.tell() <= 64 * 1024 < size
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_requests(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20000
    assert peak < 2_000_000, peak  # json.loads of the same text builds about 24 MB


def test_a_truncated_or_broken_json_file_is_a_clear_error(tmp_path: Path) -> None:
    text = json.dumps(_many_requests(500))
    cut = tmp_path / "cut.json"
    cut.write_text(text[:len(text) // 2], encoding="utf-8")  # a download cut short
    size = cut.stat().st_size
    engine = Engine(tmp_path / "cut.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    with pytest.raises(DumpError) as caught:
        replay_open311(engine, cut)
    engine.stop()
    assert str(caught.value) == (f"{cut}: not JSON (it ends inside a value, at byte {size:,}, "
                                 f"line 1): the file is cut short? Export it again")
    assert isinstance(caught.value, GridwhistleError) and isinstance(caught.value, ValueError)
    broken = tmp_path / "broken.json"
    at = text.index("}, {", 100_000)  # a comma missing between two requests, past 96 KiB
    broken.write_text(text[:at] + "} {" + text[at + 4:], encoding="utf-8")
    with pytest.raises(DumpError) as caught:
        list(iter_requests(broken))
    message = str(caught.value)
    assert message.startswith(f"{broken}: not JSON between bytes 98,304 and 114,688 (line 1): "
                              f"parse error: after array element, I expect ',' or ']'; "
                              f"fix the JSON there, or export the file again\n")
    assert "(right here) ------^" in message
    # The command line: one message on stderr, exit 1, no traceback.
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--format", "open311-json",
         "--data", str(cut), "--db", str(tmp_path / "cli.sqlite"), "--quiet"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    assert f"{cut}: not JSON (it ends inside a value" in done.stderr
    assert "Traceback" not in done.stderr
