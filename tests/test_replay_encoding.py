"""Replay inputs that are not UTF-8: GB18030 / GBK exports, and a clear error for the rest.

Many Chinese government systems, and Excel on a Chinese Windows, save CSV in GB18030 / GBK.
Fed to ``gridwhistle replay`` such a file stopped with a bare ``error: 'utf-8' codec can't
decode byte 0xc9 in position 841`` (a position inside an 8 KiB chunk, no file, no line), and
when the byte lay past the header the database had been emptied first. Now:

* a byte that is not text in the file's encoding is an ``UndecodableData`` (a
  ``GridwhistleError``; for an Open311 dump an ``UndecodableDump``, a ``DumpError`` too)
  naming the file, the line and the byte offset, saying the file is not UTF-8 and what to
  do; the command line prints it as one line, exit 1, and the preflight finds it before the
  database is touched;
* ``--encoding`` (``encoding=`` in Python) reads any codec Python knows; ``utf-8`` stays the
  default and still allows a byte-order mark; an unknown name is a usage error (exit 2).
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

from adapters.replay import BUNDLED_SAMPLE, build_report, load_mapping, preflight, replay
from adapters.replay.encoding import (
    UndecodableData,
    UnknownEncoding,
    check_decodes,
    text_codec,
)
from adapters.replay.open311 import (
    CHICAGO_SAMPLE,
    DumpError,
    UndecodableDump,
    iter_requests,
    replay_open311,
)
from adapters.replay.scratch import Scratch
from adapters.replay.source import CsvExport, read_header
from engine import Engine, GridwhistleError, VirtualClock, find_tickets

VARIES = ("seconds", "tickets_per_s", "database")  # wall time of the run, where it went
CHINESE = {"type": "下水道堵塞", "neighborhood": "上海路1号", "reason": "排水设施",
           "department": "市政排水"}


def _sample(rows: int) -> tuple[list[str], list[list[str]]]:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [next(reader) for _ in range(rows)]


def _csv_text(rows: int, *, chinese_from: int = 0, every: int = 3) -> str:
    """The sample's first ``rows`` rows, every ``every``-th from ``chinese_from`` in Chinese."""
    header, body = _sample(rows)
    for i in range(chinese_from, rows, every):
        for column, value in CHINESE.items():
            body[i][header.index(column)] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([header, *body])
    return out.getvalue()


def _first_non_ascii(data: bytes) -> tuple[int, int]:
    """(byte offset, 1-based line) of the first byte >= 0x80: what the message must name."""
    offset = next(i for i, b in enumerate(data) if b >= 0x80)
    return offset, data[:offset].count(b"\n") + 1


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _tickets(db: Path) -> list[tuple[Any, ...]]:
    engine = Engine(db, clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        return sorted(
            (t.id, t.state, t.level, t.overdue, t.fields,
             [(h.kind, h.trigger, h.to_state, h.at) for h in engine.history(t.id)])
            for t in find_tickets(engine, limit=500).items)
    finally:
        engine.stop()


# -- 1. an undecodable byte: file, line, offset, what to do; nothing written ------------------

def test_cli_a_gbk_csv_is_one_clear_line_and_the_database_is_left_alone(tmp_path: Path
                                                                        ) -> None:
    good = tmp_path / "good.csv"
    good.write_text(_csv_text(20, chinese_from=99), encoding="utf-8")
    gbk = tmp_path / "gbk.csv"
    data = _csv_text(60, chinese_from=40).encode("gbk")  # past the first 8 KiB chunk
    gbk.write_bytes(data)
    offset, line = _first_non_ascii(data)
    assert offset > 8192 and line == 42  # header, then row 41: its first cell in Chinese

    done = _cli("replay", "--data", "good.csv", "--db", "r.sqlite", "--json", "--quiet",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = _tickets(tmp_path / "r.sqlite")
    assert len(before) == 20

    done = _cli("replay", "--data", "gbk.csv", "--db", "r.sqlite", "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    # main: "error: 'utf-8' codec can't decode byte 0xc5 in position 2581: invalid
    # continuation byte" (a position in an 8 KiB chunk), and the database had been emptied:
    # the preflight read only the header
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"error: gbk.csv:{line}: the file is not UTF-8 text: byte {data[offset]:#04x} at "
        f"byte offset {offset:,} cannot be read as UTF-8 (")
    assert "save it as UTF-8 (Excel: Save As → CSV UTF-8)" in lines[0]
    assert "--encoding gb18030" in lines[0]
    assert "Traceback" not in done.stderr and "codec can't decode" not in done.stderr
    assert _tickets(tmp_path / "r.sqlite") == before  # not emptied, nothing written


def test_a_byte_in_the_header_or_cut_at_the_end_is_named_too(tmp_path: Path) -> None:
    mapping = load_mapping("boston311")
    header = tmp_path / "header.csv"  # Chinese column names: line 1
    header.write_bytes("编号,".encode("gb18030") + _csv_text(3).encode("utf-8"))
    with pytest.raises(UndecodableData, match=rf"^{header}:1: the file is not UTF-8 text: "
                                              r"byte 0xb1 at byte offset 0 "):
        read_header(header)
    with pytest.raises(UndecodableData, match=rf"^{header}:1: "):
        preflight(header, mapping, "grid_incident")

    cut = tmp_path / "cut.csv"  # a UTF-8 file cut inside its last character
    text = _csv_text(5).encode("utf-8") + "上海".encode()[:-1]
    cut.write_bytes(text)  # ... 上 and two of the three bytes of 海
    with pytest.raises(UndecodableData) as info:
        preflight(cut, mapping, "grid_incident")
    err = info.value
    assert (err.line, err.offset, err.byte) == (7, len(text) - 2, None)
    assert str(err).startswith(f"{cut}:7: the file is not UTF-8 text: the file ends at byte "
                               f"offset {len(text) - 2:,} inside a character")


def test_the_python_api_raises_a_typed_error_before_any_ticket_is_written(tmp_path: Path
                                                                          ) -> None:
    gbk = tmp_path / "gbk.csv"
    data = _csv_text(30, chinese_from=25).encode("gbk")
    gbk.write_bytes(data)
    offset, line = _first_non_ascii(data)
    mapping = load_mapping("boston311")
    engine = Engine(tmp_path / "api.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        with pytest.raises(UndecodableData) as info:  # main: a bare UnicodeDecodeError
            replay(engine, gbk, mapping)
        assert find_tickets(engine, limit=10).items == []
    finally:
        engine.stop()
    err = info.value
    assert isinstance(err, GridwhistleError) and isinstance(err, ValueError)
    assert (err.path, err.encoding, err.line, err.offset, err.byte) == (
        gbk, "utf-8", line, offset, data[offset])
    assert str(err).startswith(f"{gbk}:{line}: the file is not UTF-8 text: byte ")


def test_a_file_that_changes_between_the_passes_says_the_replay_stopped(tmp_path: Path
                                                                        ) -> None:
    """The first pass reads every byte; should the second meet one it cannot read, the file
    changed in between: the message says so and that earlier batches stay."""
    path = tmp_path / "moving.csv"
    path.write_bytes(_csv_text(12).encode("utf-8"))
    mapping = load_mapping("boston311")
    engine = Engine(tmp_path / "x.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        lc = engine.lifecycle(engine.deploy("grid_incident").name)
    finally:
        engine.stop()
    with Scratch() as scratch:
        export = CsvExport(path, mapping, lc, UTC)
        survey = export.survey(scratch)
        data = _csv_text(12, chinese_from=6).encode("gbk")
        path.write_bytes(data)
        with pytest.raises(UndecodableData) as info:
            list(export.items(survey))
    offset, line = _first_non_ascii(data)
    assert (info.value.line, info.value.offset) == (line, offset)
    assert "it changed during the replay, which stops here" in str(info.value)
    assert "what it wrote before stays in the database" in str(info.value)


def _dumps(codec: str) -> tuple[bytes, bytes, list[dict[str, Any]]]:
    requests = json.loads(CHICAGO_SAMPLE.read_bytes())[:8]
    for r in requests[5:]:
        r["service_name"] = CHINESE["type"]
        r["address"] = CHINESE["neighborhood"]
    whole = json.dumps(requests, ensure_ascii=False, indent=1).encode(codec)
    lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in requests) + "\n"
    return whole, lines.encode(codec), requests


def test_open311_json_and_json_lines_in_gbk_name_file_line_and_offset(tmp_path: Path) -> None:
    whole, lines, _ = _dumps("gbk")
    (tmp_path / "dump.json").write_bytes(whole)
    (tmp_path / "dump.jsonl").write_bytes(lines)
    for name, data in (("dump.json", whole), ("dump.jsonl", lines)):
        offset, line = _first_non_ascii(data)
        # main: "not JSON between bytes 0 and 16,384 ... invalid bytes in UTF8 string", and
        # for JSON Lines a bare "'utf-8' codec can't decode byte ..."
        with pytest.raises(UndecodableDump) as info:
            list(iter_requests(tmp_path / name))
        err = info.value
        assert isinstance(err, DumpError) and isinstance(err, UndecodableData)
        assert (err.line, err.offset) == (line, offset), name
        assert str(err).startswith(f"{tmp_path / name}:{line}: the file is not UTF-8 text: "
                                   f"byte {data[offset]:#04x} at byte offset {offset:,} ")
        assert "Save As → CSV UTF-8" not in str(err)  # the Excel hint is for CSV

    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in json.loads(CHICAGO_SAMPLE.read_bytes())[:4]),
                    encoding="utf-8")
    assert _cli("replay", "--format", "open311-json", "--data", "good.jsonl", "--db",
                "o.sqlite", "--quiet", cwd=tmp_path).returncode == 0
    before = _tickets(tmp_path / "o.sqlite")
    for name, data in (("dump.json", whole), ("dump.jsonl", lines)):
        offset, line = _first_non_ascii(data)
        done = _cli("replay", "--format", "open311-json", "--data", name, "--db", "o.sqlite",
                    "--quiet", cwd=tmp_path)
        assert done.returncode == 1, name
        out = done.stderr.strip().splitlines()
        assert len(out) == 1 and out[0].startswith(
            f"error: {name}:{line}: the file is not UTF-8 text: byte "), done.stderr
        assert "--encoding gb18030" in out[0]
        assert _tickets(tmp_path / "o.sqlite") == before  # the preflight decoded it: untouched


# -- 2. --encoding / encoding= ----------------------------------------------------------------

def test_cli_a_gb18030_csv_replays_to_the_same_tickets_as_its_utf8_twin(tmp_path: Path
                                                                        ) -> None:
    text = _csv_text(40)
    (tmp_path / "utf8.csv").write_text(text, encoding="utf-8", newline="")
    (tmp_path / "gb.csv").write_bytes(text.encode("gb18030"))
    reports = {}
    for name, extra in (("utf8.csv", ()), ("gb.csv", ("--encoding", "gb18030"))):
        done = _cli("replay", "--data", name, *extra, "--db", f"{name}.sqlite", "--json",
                    "--quiet", cwd=tmp_path)
        assert done.returncode == 0, done.stderr  # main: "No such option: --encoding"
        reports[name] = {k: v for k, v in json.loads(done.stdout).items() if k not in VARIES}
    assert reports["gb.csv"] == reports["utf8.csv"]
    assert (reports["gb.csv"]["tickets"], reports["gb.csv"]["rejected"]) == (40, 0)
    assert "市政排水" in reports["gb.csv"]["departments"]
    tickets = _tickets(tmp_path / "gb.csv.sqlite")
    assert tickets == _tickets(tmp_path / "utf8.csv.sqlite")
    fields = next(t[4] for t in tickets if t[4]["category"] == CHINESE["type"])
    assert (fields["category"], fields["area"], fields["description"], fields["department"]
            ) == ("下水道堵塞", "上海路1号", "排水设施", "市政排水")


@pytest.mark.parametrize("codec", ["gbk", "utf-16", "utf-16-le", "big5"])
def test_the_python_api_reads_other_encodings_the_same(tmp_path: Path, codec: str) -> None:
    text = _csv_text(15)
    if codec == "big5":
        text = text.replace("下水道堵塞", "下水道").replace("上海路1号", "上海路1號") \
                   .replace("排水设施", "排水").replace("市政排水", "市政")
    (tmp_path / "utf8.csv").write_text(text, encoding="utf-8", newline="")
    raw = text.encode(codec)
    if codec == "utf-16-le":
        raw = codecs.BOM_UTF16_LE + raw  # a mark the codec leaves in the text: dropped
    (tmp_path / "other.csv").write_bytes(raw)
    mapping = load_mapping("boston311")
    assert read_header(tmp_path / "other.csv", codec) == read_header(tmp_path / "utf8.csv")
    preflight(tmp_path / "other.csv", mapping, "grid_incident", encoding=codec)
    results = []
    for name, encoding in (("utf8.csv", "utf-8"), ("other.csv", codec)):
        engine = Engine(tmp_path / f"{name}.sqlite",
                        clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
        try:
            report = build_report(engine, replay(engine, tmp_path / name, mapping,
                                                 encoding=encoding), mapping)
        finally:
            engine.stop()
        results.append(({k: v for k, v in report.items() if k not in VARIES},
                        _tickets(tmp_path / f"{name}.sqlite")))
    assert results[1] == results[0]
    assert results[1][0]["tickets"] == 15


def test_open311_dumps_in_gb18030_read_and_replay_like_utf8(tmp_path: Path) -> None:
    whole, lines, requests = _dumps("gb18030")
    (tmp_path / "dump.json").write_bytes(whole)
    (tmp_path / "dump.jsonl").write_bytes(lines)
    (tmp_path / "utf8.json").write_bytes(_dumps("utf-8")[0])
    for name in ("dump.json", "dump.jsonl"):
        assert list(iter_requests(tmp_path / name, "gb18030")) == requests, name
    outcomes = []
    for name, encoding in (("utf8.json", "utf-8"), ("dump.json", "gb18030"),
                           ("dump.jsonl", "gb18030")):
        engine = Engine(tmp_path / f"{name}.sqlite",
                        clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
        try:
            outcome = replay_open311(engine, tmp_path / name, encoding=encoding)
            report = build_report(engine, outcome, None)
        finally:
            engine.stop()
        outcomes.append({k: v for k, v in report.items() if k not in VARIES})
    assert outcomes[0] == outcomes[1] == outcomes[2] and outcomes[0]["tickets"] == 8

    done = _cli("replay", "--format", "open311-json", "--data", "dump.json", "--encoding",
                "gb18030", "--db", "c.sqlite", "--json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {k: v for k, v in json.loads(done.stdout).items() if k not in VARIES} == outcomes[0]
    categories = {t[4]["category"] for t in _tickets(tmp_path / "c.sqlite")}
    assert CHINESE["type"] in categories


def test_utf8_stays_the_default_and_still_allows_a_byte_order_mark(tmp_path: Path) -> None:
    data = tmp_path / "bom.csv"
    data.write_bytes(codecs.BOM_UTF8 + _csv_text(5).encode("utf-8"))
    for name in ("utf-8", "UTF8", "utf_8", "utf-8-sig"):
        assert text_codec(name) == "utf-8-sig"
        assert read_header(data, name)[0] == "case_enquiry_id"
    assert text_codec("GB18030") == "gb18030" and text_codec("cp936") == "gbk"
    done = _cli("replay", "--data", "bom.csv", "--encoding", "UTF-8", "--db", "b.sqlite",
                "--json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 5


def test_an_unknown_encoding_is_a_usage_error_with_examples(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(_csv_text(3), encoding="utf-8")
    for name, words in (("gbx", "unknown text encoding 'gbx' (did you mean gbk?)"),
                        ("base64", "'base64' is a codec of Python, but not a text encoding")):
        done = _cli("replay", "--data", "a.csv", "--encoding", name, "--db", "u.sqlite",
                    "--quiet", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        flat = " ".join(part.strip(" │╭╮╰╯─") for part in done.stderr.splitlines())
        assert "--encoding" in flat and words in " ".join(flat.split()), done.stderr
        assert "gb18030" in flat and "utf-16" in flat
        assert not (tmp_path / "u.sqlite").exists()
    with pytest.raises(UnknownEncoding, match=r"e\.g\. utf-8, gb18030, gbk") as info:
        text_codec("klingon")
    assert isinstance(info.value, LookupError) and isinstance(info.value, GridwhistleError)
    engine = Engine(tmp_path / "e.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        with pytest.raises(UnknownEncoding):
            replay(engine, tmp_path / "a.csv", load_mapping("boston311"), encoding="klingon")
        with pytest.raises(UnknownEncoding):
            replay_open311(engine, CHICAGO_SAMPLE, encoding="klingon")
    finally:
        engine.stop()


def test_a_wrong_encoding_given_says_so(tmp_path: Path) -> None:
    data = tmp_path / "u16.csv"  # a UTF-16 file (with its mark) read as GBK
    data.write_bytes(_csv_text(3).encode("utf-16"))
    with pytest.raises(UndecodableData, match=rf"^{data}:1: the file is not gbk text: byte "
                                              r".* cannot be read as gbk \(.*\); check which "
                                              r"encoding the file is in"):
        check_decodes(data, "gbk")


@pytest.mark.parametrize("codec", ["utf-8", "gb18030", "utf-16"])
def test_offsets_and_lines_are_exact_across_chunks(tmp_path: Path, codec: str) -> None:
    """The 1 MiB chunks of the check split characters and CR LF pairs; the place is exact."""
    unit = "上海路1号,下水道堵塞\r\n" + "plain ascii line\n" + "old mac\r"
    text = unit * 40_000  # ~1.5 MiB in UTF-8: the bad byte lies in the second chunk
    body = text.encode(codec)  # (UTF-16: a byte-order mark, then little-endian)
    tail = codec if codec != "utf-16" else "utf-16-le"
    bad = b"\xff"  # never in UTF-8 or GB18030; in UTF-16 a lone low surrogate instead
    if codec == "utf-16":
        bad = "\udc00".encode(tail, "surrogatepass")
    data = body + bad + "tail\n".encode(tail)
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    with pytest.raises(UndecodableData) as info:
        check_decodes(path, codec)
    assert info.value.offset == len(body)
    assert info.value.line == 3 * 40_000 + 1  # each unit ends three lines (CR LF, LF, CR)


def test_cli_impact_reads_its_data_file_with_the_encoding_too(tmp_path: Path) -> None:
    (tmp_path / "gb.csv").write_bytes(_csv_text(12).encode("gb18030"))
    done = _cli("impact", "--workflow", "grid_incident", "--data", "gb.csv", "--encoding",
                "gb18030", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 12
    done = _cli("impact", "--workflow", "grid_incident", "--data", "gb.csv", "--json",
                cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: gb.csv:2: the file is not UTF-8 "
                                                   "text: byte "), done.stderr
