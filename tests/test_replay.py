"""The main job: replaying real Boston 311 requests through grid_incident."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.replay import BUNDLED_SAMPLE, build_report, load_mapping, replay
from engine import ConfigurationError, DefinitionError, Engine, VirtualClock


@pytest.fixture(scope="module")
def boston_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("replay") / "boston.sqlite"
    engine = Engine(db, clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping("boston311")
    outcome = replay(engine, BUNDLED_SAMPLE, mapping)
    report = build_report(engine, outcome, mapping)
    report["_engine"] = engine
    yield report
    engine.stop()


def test_every_city_verdict_is_compared_and_agrees(boston_report: dict[str, Any]) -> None:
    # 4,995 rows; one has a blank verdict. Boston's rule: OVERDUE iff closed_dt > target_dt.
    assert boston_report["verdicts"] == {"compared": 4994, "agree": 4994, "disagree": 0,
                                        "source": "column"}


def test_boston_figures(boston_report: dict[str, Any]) -> None:
    r = boston_report
    assert r["rows"] == 4995
    assert r["tickets"] == 4995
    assert r["rejected"] == 0
    assert r["closed"] == 4995
    assert r["closure_rate"] == 1.0
    # 474 OVERDUE verdicts + the blank-verdict row, which also closed after its target.
    assert r["overdue"] == 475
    assert r["breaches"]["resolution"] == 475
    # Every resolution breach escalates community -> street; those still not taken on two
    # days later climb on when the street's budget (P2D) runs out, and so on to the city.
    assert r["escalations"] == {"street": 475, "district": 333, "city": 286}
    assert r["breaches"] == {"arrival_due": 3388, "resolution": 475, "street_budget": 333,
                             "district_budget": 286, "city_budget": 253}
    assert r["budget_breaches"] == {"community": 0, "street": 333, "district": 286,
                                    "city": 253}
    # SLA clocks in the centre's working hours (Asia/Shanghai, Chinese holidays): Boston
    # dispatches at open_dt, so dispatch is always met; 1,270 took over 15 working hours.
    assert r["slas"] == {"time_to_dispatch": {"met": 4995, "breached": 0, "open": 0},
                         "time_to_resolve": {"met": 3725, "breached": 1270, "open": 0}}
    # 5 events per row, all applied; each escalation is one more transition.
    assert r["events_applied"] == 5 * 4995
    assert r["transitions"] == 4 * 4995 + sum(r["escalations"].values())
    assert r["clock_from"] == "2015-01-05T15:22:38+00:00"
    assert r["clock_until"] == "2025-01-08T03:20:36+00:00"


def test_a_replayed_ticket_has_its_whole_history(boston_report: dict[str, Any]) -> None:
    engine: Engine = boston_report["_engine"]
    # 101001242696: opened 2015-01-05 15:22:38, target 2015-01-08 03:30, closed 16:37:37.
    ticket = engine.get("101001242696")
    assert ticket.state == "closed"
    assert ticket.overdue is False
    assert ticket.fields["category"] == "Requests for Street Cleaning"
    assert ticket.fields["department"] == "PWDx"
    assert ticket.fields["target_at"] == datetime(2015, 1, 8, 3, 30, tzinfo=UTC)
    steps = [(h.kind, h.trigger, h.to_state) for h in engine.history(ticket.id)]
    assert steps == [
        ("report", "report", "reported"),
        ("transition", "dispatch", "dispatched"),
        ("transition", "arrive", "on_site"),
        ("transition", "resolve", "resolved"),
        ("transition", "close", "closed"),
    ]
    assert engine.history(ticket.id)[-1].at == datetime(2015, 1, 5, 16, 37, 37, tzinfo=UTC)
    assert {t.status for t in engine.timers(ticket.id)} == {"cancelled"}


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in header})


def _sample_rows(n: int) -> list[dict[str, str]]:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return [row for _, row in zip(range(n), reader, strict=False)]


def test_bad_rows_are_counted_listed_and_do_not_stop_the_replay(tmp_path: Path) -> None:
    rows = _sample_rows(6)
    rows[1]["closed_dt"] = "2014-01-01 00:00:00"          # closed before opened
    rows[2]["type"] = ""                                   # missing required category
    rows[3]["open_dt"] = "yesterday"                       # unparsable time
    rows[4]["case_enquiry_id"] = rows[0]["case_enquiry_id"]  # repeated id
    data = tmp_path / "bad.csv"
    _write_csv(data, rows)
    engine = Engine(tmp_path / "r.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping("boston311")
    report = build_report(engine, replay(engine, data, mapping), mapping)
    engine.stop()
    assert report["tickets"] == 2
    assert report["rejected"] == 4
    reasons = {r["row"]: r["reason"] for r in report["rejections"]}
    assert reasons == {
        2: "closed_dt 2014-01-01T00:00:00+00:00 is before open_dt 2015-01-06T21:07:09+00:00",
        3: "required field 'category' (column type) is empty",
        4: "open_dt: cannot read time 'yesterday' (expected format '%Y-%m-%d %H:%M:%S')",
        5: "the same id appears on an earlier row (1) with other values",
    }


def test_until_judges_open_tickets_then(tmp_path: Path) -> None:
    rows = _sample_rows(3)
    # Row 3 (ISD housing): opened 2015-01-07 12:06:24, target 2015-02-06 12:06:24,
    # closed 2015-01-21. Stop the clock before the close and after the target of row 1.
    data = tmp_path / "three.csv"
    _write_csv(data, rows)
    engine = Engine(tmp_path / "u.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping("boston311")
    until = datetime(2015, 1, 10, tzinfo=UTC)
    outcome = replay(engine, data, mapping, until=until)
    report = build_report(engine, outcome, mapping)
    assert report["clock_until"] == "2015-01-10T00:00:00+00:00"
    assert report["events_after_until"] == 3          # row 3's arrive, resolve, close
    assert report["closed"] == 2
    open_ticket = engine.get(rows[2]["case_enquiry_id"])
    assert open_ticket.state == "dispatched"
    assert open_ticket.overdue is False                 # its target is still ahead
    engine.stop()


def test_a_mapping_that_does_not_fit_the_lifecycle_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "adapters/replay/mappings/boston311.yaml").read_text()
    bad = tmp_path / "bad-mapping.yaml"
    bad.write_text(text.replace("trigger: arrive", "trigger: teleport"))
    engine = Engine(tmp_path / "m.sqlite", clock=VirtualClock())
    with pytest.raises(ConfigurationError, match=r"events\[2\].trigger: 'teleport'"):
        replay(engine, BUNDLED_SAMPLE, load_mapping(bad))
    engine.stop()


def test_a_malformed_mapping_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("format: 1\nname: x\nid_column: id\nevents:\n  - {trigger: report, at: t}\n"
                   "colour: blue\n")
    with pytest.raises(DefinitionError) as info:
        load_mapping(bad)
    assert [str(p) for p in info.value.problems] == [
        f"{bad}:5: events[0].role: required field is missing",
        f"{bad}:6: colour: unknown field; allowed here: blank_values, columns, description, "
        "events, evidence, fields, format, id_column, lifecycle, name, sample, timestamp_format, "
        "timezone, verdict",
    ]


def test_cli_replay_json_in_a_real_process(tmp_path: Path) -> None:
    rows = _sample_rows(40)
    data = tmp_path / "forty.csv"
    _write_csv(data, rows)
    db = tmp_path / "cli.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--data", str(data), "--db", str(db),
         "--json"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    report = json.loads(done.stdout)
    for key in ("tickets", "transitions", "closed", "closure_rate", "overdue", "escalations",
                "verdicts", "rejected", "seconds", "slas", "budget_breaches"):
        assert key in report
    assert report["tickets"] == 40
    assert report["verdicts"]["compared"] == 40
    assert report["verdicts"]["disagree"] == 0
    assert set(report["escalations"]) == {"street", "district", "city"}
    # run again: the database holds only the replay's tickets, so it is emptied first
    again = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--data", str(data), "--db", str(db),
         "--json"], capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    assert json.loads(again.stdout)["tickets"] == 40


def test_cli_validate_reports_problems_with_exit_code_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: 1\nname: x\n")
    done = subprocess.run([sys.executable, "-m", "adapters.cli", "validate", str(bad)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert f"{bad}:1: initial: required field is missing" in done.stdout
    ok = subprocess.run([sys.executable, "-m", "adapters.cli", "validate", "grid_incident"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok — grid_incident: 11 states, 19 transitions, 4 deadlines" in ok.stdout


def test_boston_figures_per_department(boston_report: dict[str, Any]) -> None:
    # Boston's `department` column: each request is one work order of that department.
    figures = boston_report["departments"]
    assert figures["PWDx"] == {"received": 2905, "bounced": 0, "resolved": 2905,
                               "on_time": 2680, "escalated": 225}
    assert figures["BTDT"] == {"received": 1094, "bounced": 0, "resolved": 1094,
                               "on_time": 974, "escalated": 120}
    totals = {k: sum(f[k] for f in figures.values())
              for k in ("received", "bounced", "resolved", "on_time", "escalated")}
    assert totals == {"received": 4995, "bounced": 0, "resolved": 4995, "on_time": 4520,
                      "escalated": 475}


def test_a_row_with_more_or_fewer_cells_than_the_header_is_rejected(tmp_path: Path) -> None:
    """A cell with an unquoted comma shifts every cell after it: such a row, read by position,
    would put a neighbourhood in the source column and so on, silently. It is rejected, as is
    a row cut short (a line broken by an unquoted newline), and the replay goes on."""
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [row for _, row in zip(range(5), reader, strict=False)]
    width = len(header)
    rows[1] = [*rows[1][:3], "Street, Lights", *rows[1][3:]]  # a comma split a cell in two
    rows[3] = rows[3][:7]                                       # the rest went to another line
    data = tmp_path / "cells.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    engine = Engine(tmp_path / "r.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping("boston311")
    report = build_report(engine, replay(engine, data, mapping), mapping)
    engine.stop()
    assert (report["rows"], report["tickets"], report["rejected"]) == (5, 3, 2)
    reasons = {r["row"]: (r["id"], r["reason"]) for r in report["rejections"]}
    assert reasons == {
        2: (rows[1][0], f"the row has {width + 1} cells, the header {width}: a cell with an "
                        f"unquoted comma, quote or line break?"),
        4: (rows[3][0], f"the row has 7 cells, the header {width}: a cell with an "
                        f"unquoted comma, quote or line break?"),
    }


def _sample_cells(count: int) -> tuple[list[str], list[list[str]]]:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        return next(reader), [row for _, row in zip(range(count), reader, strict=False)]


def _replay_csv(data: Path, db: Path) -> dict[str, Any]:
    engine = Engine(db, clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    mapping = load_mapping("boston311")
    report = build_report(engine, replay(engine, data, mapping), mapping)
    engine.stop()
    return report


def test_a_file_that_ends_inside_a_quoted_cell_rejects_that_row(tmp_path: Path) -> None:
    """A quote opened in the last row's last cell and never closed: the lenient csv module
    ends the cell at the end of the file, and the row has as many cells as the header, so
    it was replayed with a cell that was never closed. It is rejected, naming file:line."""
    header, rows = _sample_cells(5)
    data = tmp_path / "open-quote.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows[:4]])
        f.write(",".join(rows[4][:-1]) + ',"0\n')  # line 6: the quote is never closed
    report = _replay_csv(data, tmp_path / "r.sqlite")
    assert (report["rows"], report["tickets"], report["rejected"]) == (5, 4, 1)
    assert report["rejections"] == [{
        "row": 5, "id": rows[4][0],
        "reason": f"{data}:6: the file ends inside a quoted cell (column 'has_closed_photo') "
                  f"that starts on line 6: its closing quote is missing, so the rest of the "
                  f"file (line 6) was read into that one cell; close the quote (a quote "
                  f'inside a quoted cell is written twice: "")'}]


def test_a_quote_left_open_mid_file_names_the_line_its_cell_starts_on(tmp_path: Path) -> None:
    """The quote opened in row 2's `reason` cell is never closed: it swallows the rest of
    the file. Its row starts on line 3 and an earlier cell of it (quoted, as it should be)
    holds a line break, so the open cell starts on line 4; the rows it swallowed are gone,
    which the reason says (lines 4-6), rather than "too few cells"."""
    header, rows = _sample_cells(4)
    reason = header.index("reason")
    row = [*rows[1]]
    row[reason - 1] = "Public Works\nDepartment"  # subject: a quoted line break (lines 3-4)
    row[reason] = '"Street Cleaning'               # the quote that is never closed
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerows([header, rows[0]])           # lines 1-2
    text.write(",".join(f'"{c}"' if "\n" in c else c for c in row) + "\r\n")
    writer.writerows(rows[2:])                    # lines 5-6, read into the open cell
    data = tmp_path / "open-quote.csv"
    data.write_bytes(text.getvalue().encode("utf-8"))
    report = _replay_csv(data, tmp_path / "r.sqlite")
    assert (report["rows"], report["tickets"], report["rejected"]) == (2, 1, 1)
    assert report["rejections"] == [{
        "row": 2, "id": rows[1][0],
        "reason": f"{data}:4: the file ends inside a quoted cell (column 'reason') that "
                  f"starts on line 4: its closing quote is missing, so the rest of the file "
                  f"(lines 4-6) was read into that one cell; close the quote (a quote "
                  f'inside a quoted cell is written twice: "")'}]
