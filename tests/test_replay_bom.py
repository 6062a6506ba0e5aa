"""Replay inputs saved as "UTF-8 with BOM", and the words of a mapping file's problems.

Excel's "CSV UTF-8 (comma delimited)" and many Chinese government systems write a UTF-8
byte-order mark (EF BB BF) before the header. Read as plain UTF-8 it became part of the
first column's name (``\\ufeffcase_enquiry_id``), so the replay refused the file: the
mapping's id column was "not in the file". The mark is dropped now, in CSV exports and in
Open311 JSON and JSON Lines dumps (mappings and lifecycles already allowed it), and line and
byte numbers in messages still count from the start of the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.replay import BUNDLED_SAMPLE, build_report, load_mapping, replay
from adapters.replay.open311 import CHICAGO_SAMPLE, DumpError, iter_requests
from adapters.replay.source import read_header
from engine import DefinitionError, Engine, VirtualClock, find_tickets, parse_definition

BOM = codecs.BOM_UTF8
MAPPING = Path(__file__).parents[1] / "adapters/replay/mappings/boston311.yaml"
VARIES = ("seconds", "tickets_per_s", "database")  # wall time of the run, where it went


def _sample_bytes(rows: int) -> bytes:
    """The bundled sample's header and first ``rows`` rows, byte for byte (no BOM)."""
    with BUNDLED_SAMPLE.open("rb") as f:
        lines = [f.readline() for _ in range(rows + 1)]
    assert not lines[0].startswith(BOM) and all(lines)
    return b"".join(lines)


def _replayed(data: Path, db: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The report of a replay of ``data`` and every ticket with its history."""
    engine = Engine(db, clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        mapping = load_mapping("boston311")
        report = build_report(engine, replay(engine, data, mapping), mapping)
        tickets = sorted(
            (t.id, t.state, t.level, t.overdue, t.fields,
             [(h.kind, h.trigger, h.to_state, h.at) for h in engine.history(t.id)])
            for t in find_tickets(engine, limit=500).items)
    finally:
        engine.stop()
    return {k: v for k, v in report.items() if k not in VARIES}, tickets


def test_a_csv_with_a_bom_replays_the_same_tickets_as_without(tmp_path: Path) -> None:
    body = _sample_bytes(60)
    plain, marked = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_bytes(body)
    marked.write_bytes(BOM + body)  # as Excel's "CSV UTF-8" saves it
    assert read_header(marked)[0] == "case_enquiry_id"  # main: '\ufeffcase_enquiry_id'
    assert read_header(marked) == read_header(plain)

    report, tickets = _replayed(marked, tmp_path / "bom.sqlite")  # main: ValueError, id column
    expected, expected_tickets = _replayed(plain, tmp_path / "plain.sqlite")
    assert (report["rows"], report["tickets"], report["rejected"]) == (60, 60, 0)
    assert report == expected
    assert tickets == expected_tickets
    assert tickets[0][0] == "101001242696"  # the first row's id, read from the first column


def test_line_numbers_in_reasons_count_from_the_start_of_a_file_with_a_bom(tmp_path: Path
                                                                           ) -> None:
    """The mark is no line: a row cut short is still row 2, an open quote still line 6."""
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header, rows = next(reader), [next(reader) for _ in range(5)]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerows([header, rows[0], rows[1][:7], *rows[2:4]])  # row 2: 7 cells
    text.write(",".join(rows[4][:-1]) + ',"0\n')                   # line 6: never closed
    data = tmp_path / "marked.csv"
    data.write_bytes(BOM + text.getvalue().encode("utf-8"))
    report, _ = _replayed(data, tmp_path / "r.sqlite")
    assert (report["rows"], report["tickets"], report["rejected"]) == (5, 3, 2)
    reasons = {r["row"]: (r["id"], r["reason"]) for r in report["rejections"]}
    assert reasons[2] == (rows[1][0], f"the row has 7 cells, the header {len(header)}: a cell "
                                      "with an unquoted comma, quote or line break?")
    assert reasons[5][0] == rows[4][0]
    assert reasons[5][1].startswith(f"{data}:6: the file ends inside a quoted cell (column "
                                    "'has_closed_photo') that starts on line 6:")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_cli_replay_reads_a_csv_and_a_mapping_saved_with_a_bom(tmp_path: Path) -> None:
    body = _sample_bytes(40)
    (tmp_path / "plain.csv").write_bytes(body)
    (tmp_path / "bom.csv").write_bytes(BOM + body)
    mapping = tmp_path / "boston-bom.yaml"  # a copy of the bundled mapping, saved with BOM
    mapping.write_bytes(BOM + MAPPING.read_bytes())
    reports = []
    for data, mapping_arg in (("plain.csv", "boston311"), ("bom.csv", str(mapping))):
        done = _cli("replay", "--data", data, "--mapping", mapping_arg, "--db",
                    f"{data}.sqlite", "--json", "--quiet", cwd=tmp_path)
        assert done.returncode == 0, done.stderr  # main: exit 1, columns case_enquiry_id ...
        reports.append({k: v for k, v in json.loads(done.stdout).items() if k not in VARIES})
    plain, marked = reports
    assert (marked["tickets"], marked["rejected"], marked["verdicts"]["compared"]) == (40, 0, 40)
    assert marked == plain


def test_open311_json_and_json_lines_with_a_bom(tmp_path: Path) -> None:
    requests = json.loads(CHICAGO_SAMPLE.read_bytes())[:6]
    dump = json.dumps(requests).encode("utf-8")
    (tmp_path / "dump.json").write_bytes(BOM + dump)
    lines = b"\n".join(json.dumps(r).encode("utf-8") for r in requests) + b"\n"
    (tmp_path / "dump.jsonl").write_bytes(BOM + lines)
    for name in ("dump.json", "dump.jsonl"):  # main: DumpError, not JSON / "Unexpected BOM"
        assert list(iter_requests(tmp_path / name)) == requests, name

    # where a message says the text stopped still counts the mark's three bytes
    (tmp_path / "bad.json").write_bytes(BOM + b'[{"a": 1},\n x]')
    with pytest.raises(DumpError, match=r"between bytes 0 and 17 \(lines 1-2\)"):
        list(iter_requests(tmp_path / "bad.json"))
    (tmp_path / "bad.jsonl").write_bytes(BOM + lines + b"{x\n")
    with pytest.raises(DumpError, match=rf"bad.jsonl:{len(requests) + 1}: not JSON"):
        list(iter_requests(tmp_path / "bad.jsonl"))
    (tmp_path / "blank.json").write_bytes(BOM + b"  \n")
    assert list(iter_requests(tmp_path / "blank.json")) == []

    done = _cli("replay", "--format", "open311-json", "--data", "dump.json", "--db",
                "o311.sqlite", "--json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == len(requests)


# -- a mapping file's problems name the mapping file --------------------------------------------

def test_a_mapping_files_problems_say_mapping_file_not_definition(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("format: 1\nname: x\nid_column: id\nevents:\n  - {trigger: report, at: t}\n"
                   "colour: blue\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_mapping(bad)
    lines = str(info.value).splitlines()
    # main: "2 problems in definition; fix them and load again:"
    assert lines[0] == f"2 problems in mapping file {bad}; fix them and load again:"
    assert lines[1:] == [f"  {p}" for p in info.value.problems]
    assert info.value.kind == "mapping"

    # the mapping's own rules, and a file that is not UTF-8, are said the same way
    rules = tmp_path / "zone.yaml"
    rules.write_bytes(MAPPING.read_bytes().replace(b"lifecycle: grid_incident",
                                                   b"lifecycle: grid_incident\n"
                                                   b"timezone: Mars/Olympus"))
    with pytest.raises(DefinitionError, match=rf"^1 problem in mapping file {rules}; "):
        load_mapping(rules)
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(MAPPING.read_bytes().replace(b"description: City of Boston",
                                                 "description: 波士顿".encode("gbk")))
    with pytest.raises(DefinitionError, match=rf"^1 problem in mapping file {gbk}; ") as info:
        load_mapping(gbk)
    assert "not UTF-8 text" in str(info.value)

    done = _cli("replay", "--mapping", str(bad), "--db", "x.sqlite", "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    assert "2 problems in mapping file" in done.stderr and "in definition" not in done.stderr
    assert f"{bad}:6: colour: unknown field" in done.stderr


def test_a_lifecycles_problems_keep_their_words() -> None:
    with pytest.raises(DefinitionError,
                       match=r"^6 problems in lifecycle file x.yaml; fix them") as info:
        parse_definition("format: 1\nname: x\n", file="x.yaml")
    assert info.value.kind == "definition"


def test_an_empty_or_bom_only_csv_says_the_file_is_empty(tmp_path: Path) -> None:
    """Not thirteen missing columns first: the file has no header row at all."""
    for name, content in (("empty.csv", b""), ("bom-only.csv", BOM)):
        (tmp_path / name).write_bytes(content)
        done = _cli("replay", "--data", name, "--db", f"{name}.sqlite", cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "the file is empty (not even a header row)" in done.stderr, done.stderr
        assert "export the file again with its header" in done.stderr
        assert "Traceback" not in done.stderr
