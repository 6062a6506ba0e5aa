"""Replaying real St. Louis requests: date-only stamps, sentinels, cancellations, repeats and a
computed verdict, all by the bundled mapping (adapters/replay/mappings/stlouis_csb.yaml)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.replay import build_report, load_mapping, replay
from engine import Engine, VirtualClock

MAPPING = Path(__file__).parents[1] / "adapters/replay/mappings/stlouis_csb.yaml"


def _replay(db: Path, mapping_path: Path | str = "stlouis_csb") -> tuple[Engine, dict[str, Any]]:
    engine = Engine(db, clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping(mapping_path)
    assert mapping.sample is not None
    report = build_report(engine, replay(engine, Path(mapping.sample), mapping), mapping)
    return engine, report


@pytest.fixture(scope="module")
def stlouis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    engine, report = _replay(tmp_path_factory.mktemp("stlouis") / "stl.sqlite")
    report["_engine"] = engine
    yield report
    engine.stop()


def test_stlouis_figures(stlouis: dict[str, Any]) -> None:
    r = stlouis
    assert r["lifecycle"] == "city_service_request"
    # 848 rows: 41 repeat an earlier row exactly (skipped), 19 are rejected, 788 replayed.
    assert (r["rows"], r["repeats_skipped"], r["rejected"], r["tickets"]) == (848, 41, 19, 788)
    assert r["source_order"] == "in order"
    # 739 closed, 46 cancelled (both final), 3 still open (STATUS SCHEDULED).
    assert r["closed"] == 785
    engine: Engine = r["_engine"]
    assert {s: n for s, n in engine.summary("city_service_request").by_state.items()} == {
        "closed": 739, "cancelled": 46, "inspected": 3}
    # The export has no on-time column: the verdict is computed from PRJCOMPLETEDATE (by the
    # end of that day), and the engine's deadlines agree on every replayed ticket.
    assert r["verdicts"] == {"compared": 788, "agree": 788, "disagree": 0, "source": "computed"}
    assert r["overdue"] == 416
    assert r["breaches"] == {"resolution": 416}
    assert r["clock_from"] == "2008-09-02T12:49:04+00:00"  # 07:49:04 in St. Louis (CDT)


def test_the_rejections_are_bad_data_said_plainly(stlouis: dict[str, Any]) -> None:
    reasons = {x["row"]: x["reason"] for x in stlouis["rejections"]}
    kinds = {"repeat": 0, "order": 0, "cancel without a date": 0}
    for reason in reasons.values():
        if reason.startswith("the same id appears on an earlier row"):
            kinds["repeat"] += 1
        elif " is before " in reason:
            kinds["order"] += 1
        elif reason == "DATECANCELLED: empty, but the 'cancel' event needs it":
            kinds["cancel without a date"] += 1
    assert kinds == {"repeat": 9, "order": 8, "cancel without a date": 2}
    # same id as row 234, but the channel differs (WEB vs empty): a conflict, not a repeat
    assert reasons[235] == "the same id appears on an earlier row (234) with other values"
    # closed a second before it was reported (the date-only inspection between them does
    # not hide it)
    assert reasons[573] == ("DATETIMECLOSED 2009-08-21T19:48:37+00:00 is before "
                            "DATETIMEINIT 2009-08-21T19:48:38+00:00")
    # an inspection dated the day before the report
    assert reasons[604] == ("DATEINVTDONE 2009-09-01T05:00:00+00:00 is before "
                            "DATETIMEINIT 2009-09-02T16:29:18+00:00")


def test_a_same_day_date_only_inspection_is_not_before_its_report(stlouis: dict[str, Any]) -> None:
    engine: Engine = stlouis["_engine"]
    # Request 2009: reported 2008-09-08 08:20 (CDT), inspected "2008-09-08 00:00:00.0".
    steps = [(h.trigger, h.at) for h in engine.history("2009")]
    reported = datetime(2008, 9, 8, 13, 20, tzinfo=UTC)
    assert steps == [("report", reported), ("dispatch", reported), ("inspect", reported),
                     ("resolve", datetime(2008, 9, 22, 19, 4, 37, tzinfo=UTC)),
                     ("close", datetime(2008, 9, 22, 19, 4, 37, tzinfo=UTC))]


def test_a_date_only_deadline_is_due_by_the_end_of_its_day(stlouis: dict[str, Any]) -> None:
    engine: Engine = stlouis["_engine"]
    # Request 53924: projected completion 2009-06-26, closed 2009-06-26 11:15:45: on time.
    ticket = engine.get("53924")
    assert ticket.fields["target_at"] == datetime(2009, 6, 27, 4, 59, 59, 999999, tzinfo=UTC)
    assert (ticket.state, ticket.overdue) == ("closed", False)


def test_sentinels_cancellations_and_open_requests(stlouis: dict[str, Any]) -> None:
    engine: Engine = stlouis["_engine"]
    # 7574: CANCEL, inspection 1900-01-01 (none): no inspection; cancelled after its due day.
    assert [h.trigger for h in engine.history("7574")] == [
        "report", "dispatch", "resolution", "cancel"]
    assert engine.get("7574").overdue is True
    # 7582: CANCEL with a DATETIMECLOSED too: the status decides, it is cancelled, not closed.
    assert engine.get("7582").state == "cancelled"
    assert "close" not in [h.trigger for h in engine.history("7582")]
    # 205678: projected completion 1900-01-01 (none): no deadline, so never overdue.
    ticket = engine.get("205678")
    assert "target_at" not in ticket.fields
    assert (ticket.state, ticket.overdue) == ("closed", False)
    # 270516: SCHEDULED, still open at the end of the replay and past its date: overdue.
    open_one = engine.get("270516")
    assert (open_one.state, open_one.overdue) == ("inspected", True)
    # a row repeated exactly is replayed once
    assert [h.trigger for h in engine.history("36342")].count("report") == 1


def test_without_the_column_settings_dates_are_midnights_and_rows_fail(tmp_path: Path) -> None:
    # The same mapping with its `columns:` block removed reads every date as local midnight:
    # same-day inspections come "before" their report, and due days end a day early.
    text = MAPPING.read_text(encoding="utf-8")
    head, rest = text.split("columns:\n", 1)
    rest = rest.split("\n\n", 1)[1]
    folder = MAPPING.parent
    plain = (head + rest).replace("../lifecycles/", f"{folder.parent}/lifecycles/") \
        .replace("../data/", f"{folder.parent}/data/")
    path = tmp_path / "midnights.yaml"
    path.write_text(plain, encoding="utf-8")
    engine, report = _replay(tmp_path / "m.sqlite", path)
    reasons = {x["row"]: x["reason"] for x in report["rejections"]}
    assert reasons[6] == ("DATEINVTDONE 2008-09-08T05:00:00+00:00 is before DATETIMEINIT "
                          "2008-09-08T13:20:00+00:00")
    assert (report["rejected"], report["tickets"]) == (84, 723)  # 65 more rows lost
    assert engine.get("53924").overdue is True  # closed on its due day, read as "after" it
    engine.stop()


def test_cli_replays_the_mappings_own_sample(tmp_path: Path) -> None:
    db = tmp_path / "stl.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--mapping", "stlouis_csb",
         "--db", str(db), "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["rows"], report["tickets"], report["repeats_skipped"]) == (848, 788, 41)
    assert report["verdicts"]["agree"] == 788
    # not a terminal: a progress line at the end (and every 5 s before it)
    assert "replay: done, 848 rows, 788 tickets" in done.stderr
