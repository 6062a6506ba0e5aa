"""`gridwhistle replay --fresh` refuses bad input before it empties the database.

The preflight decoded the data file but did not parse it, so an Open311 dump whose JSON was
malformed (cut short, a comma missing, a bad JSON Lines line, a page of a folder) was found
only by the replay itself, after `--fresh` had emptied the database: the tickets were gone
and nothing had been replayed in their place. A CSV export that Python's csv reader cannot
read on (a quote never closed, so that a cell runs over the rest of the file past the csv
module's limit of 131,072 characters) did the same, and ended in a traceback of `_csv.Error`.

Now the preflight reads the whole input as the replay reads it (the dump through the same
streaming ijson reader, a request at a time; the CSV through the same csv reader, a record
at a time), so such a file is refused in one message naming the file, where, and what to
do, exit 1, and the database keeps its tickets.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.replay import BUNDLED_SAMPLE, MalformedCsv, load_mapping, preflight, replay
from adapters.replay.open311 import CHICAGO_SAMPLE, DumpError, check_dump, replay_open311
from adapters.replay.source import read_header
from engine import Engine, GridwhistleError, VirtualClock, find_tickets

REPO = Path(__file__).resolve().parents[1]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _tickets(db: Path) -> list[tuple[str, str, int]]:
    """Every ticket of ``db``: id, state and the length of its history."""
    engine = Engine(db, clock=VirtualClock(EPOCH))
    try:
        return sorted((t.id, t.state, len(engine.history(t.id)))
                      for t in find_tickets(engine, limit=500).items)
    finally:
        engine.stop()


def _chicago(count: int) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = json.loads(CHICAGO_SAMPLE.read_text(encoding="utf-8"))
    return requests[:count]


def _filled_with_chicago(tmp_path: Path) -> list[tuple[str, str, int]]:
    """A database ``o.sqlite`` holding four replayed Chicago requests; its tickets."""
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in _chicago(4)), encoding="utf-8")
    engine = Engine(tmp_path / "o.sqlite", clock=VirtualClock(EPOCH))
    try:
        replay_open311(engine, good)
    finally:
        engine.stop()
    tickets = _tickets(tmp_path / "o.sqlite")
    assert len(tickets) >= 4
    return tickets


def _malformed(tmp_path: Path, case: str) -> tuple[str, str]:
    """A malformed dump in ``tmp_path``: (its --data name, how the error line must begin)."""
    requests = _chicago(12)
    text = json.dumps(requests, indent=1)
    if case == "cut short":
        (tmp_path / "cut.json").write_text(text[:len(text) * 2 // 3], encoding="utf-8")
        return "cut.json", "error: cut.json: not JSON (it ends inside a value, at byte "
    if case == "comma missing":
        at = text.index("},\n {", len(text) // 2)
        (tmp_path / "comma.json").write_text(text[:at] + "}\n {" + text[at + 4:],
                                             encoding="utf-8")
        return "comma.json", "error: comma.json: not JSON between bytes "
    if case == "json lines":
        lines = [json.dumps(r) for r in requests]
        lines[7] = lines[7][:40]  # line 8 stops in the middle of a request
        (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return "bad.jsonl", "error: bad.jsonl:8: not JSON ("
    if case == "second page":
        pages = tmp_path / "pages"
        pages.mkdir()
        (pages / "page-1.json").write_text(json.dumps(requests[:6]), encoding="utf-8")
        (pages / "page-2.json").write_text(json.dumps(requests[6:])[:-30], encoding="utf-8")
        return "pages", f"error: {Path('pages') / 'page-2.json'}: not JSON (it ends inside "
    assert case == "not requests"
    (tmp_path / "numbers.json").write_text(json.dumps([*requests[:6], 17]), encoding="utf-8")
    return "numbers.json", ("error: numbers.json: expected Open311 service requests (JSON "
                            "objects), found int; give Open311 GeoReport v2")


# -- 1. Open311 JSON: malformed JSON is refused before --fresh empties the database ---------


@pytest.mark.parametrize("case", ["cut short", "comma missing", "json lines", "second page",
                                  "not requests"])
def test_cli_a_malformed_open311_dump_leaves_the_database_as_it_was(tmp_path: Path,
                                                                    case: str) -> None:
    before = _filled_with_chicago(tmp_path)
    name, begins = _malformed(tmp_path, case)
    done = _cli("replay", "--format", "open311-json", "--fresh", "--data", name, "--db",
                "o.sqlite", "--quiet", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    # main: the database had been emptied first (no tickets left, none replayed)
    assert _tickets(tmp_path / "o.sqlite") == before
    assert done.stdout == ""
    assert done.stderr.startswith(begins), done.stderr
    assert "Traceback" not in done.stderr
    if case != "not requests":  # where it stops, and what to do
        assert ("fix the JSON there, or export the file again" in done.stderr
                or "the file is cut short? Export it again" in done.stderr), done.stderr


def test_cli_a_syntax_error_names_the_bytes_and_lines_where_the_parser_stopped(
        tmp_path: Path) -> None:
    _filled_with_chicago(tmp_path)
    name, _ = _malformed(tmp_path, "comma missing")
    done = _cli("replay", "--format", "open311-json", "--data", name, "--db", "o.sqlite",
                "--quiet", cwd=tmp_path)
    first = done.stderr.splitlines()[0]
    assert first.startswith("error: comma.json: not JSON between bytes 0 and ")
    assert "(lines 1-" in first and "parse error: after array element, I expect ',' or ']'; " \
        "fix the JSON there, or export the file again" in first, first
    assert "(right here) ------^" in done.stderr  # yajl's excerpt of the text, below


def test_check_dump_parses_the_whole_dump_as_a_stream(tmp_path: Path) -> None:
    requests = _chicago(50)
    many = [{**r, "service_request_id": f"{r['service_request_id']}-{i}"}
            for i in range(200) for r in requests]  # 10,000 requests, about 9 MB
    dump = tmp_path / "many.json"
    dump.write_text(json.dumps(many), encoding="utf-8")
    assert dump.stat().st_size > 8_000_000
    tracemalloc.start()
    try:
        count = check_dump(dump)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000  # main: None, the JSON not parsed at all
    assert peak < 2_000_000, peak  # a request at a time: json.loads would hold the file

    broken = tmp_path / "broken.json"  # the fault at the very end: the whole file is parsed
    broken.write_text(json.dumps(many)[:-1] + "}", encoding="utf-8")  # "]" mistyped
    with pytest.raises(DumpError) as caught:
        check_dump(broken)
    assert str(caught.value).startswith(f"{broken}: not JSON between bytes ")
    assert isinstance(caught.value, GridwhistleError) and isinstance(caught.value, ValueError)


# -- 2. CSV: a record the csv reader cannot read on ------------------------------------------


def _boston(rows: int) -> tuple[list[str], list[list[str]]]:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [next(reader) for _ in range(rows)]


def _csv(path: Path, header: list[str], body: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *body])
    return path


def _open_quote(path: Path, rows: int = 1200, at: int = 3) -> Path:
    """The Boston sample's first ``rows`` rows, row ``at`` (line ``at + 1``) with a quote that
    is never closed: its cell runs on over the rest of the file, more than 131,072 chars."""
    header, body = _boston(rows)
    _csv(path, header, body)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[at] = lines[at].replace(",Closed,", ',"Closed,', 1)
    path.write_text("\n".join(lines), encoding="utf-8")
    assert path.stat().st_size > 150_000
    return path


def test_cli_a_quote_never_closed_in_a_large_csv_leaves_the_database_as_it_was(
        tmp_path: Path) -> None:
    header, body = _boston(20)
    _csv(tmp_path / "good.csv", header, body)
    done = _cli("replay", "--data", "good.csv", "--db", "r.sqlite", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = _tickets(tmp_path / "r.sqlite")
    assert len(before) == 20
    _open_quote(tmp_path / "quote.csv")
    done = _cli("replay", "--data", "quote.csv", "--fresh", "--db", "r.sqlite", "--quiet",
                cwd=tmp_path)
    # main: a traceback ending "_csv.Error: field larger than field limit (131072)", after
    # the database had been emptied
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: quote.csv:4: the row that starts on line 4 has a cell, "
                               "run on to line "), lines[0]
    assert "longer than the 131,072 characters a CSV cell may hold" in lines[0]
    assert "close the quote" in lines[0]
    assert _tickets(tmp_path / "r.sqlite") == before


def test_preflight_and_replay_raise_a_typed_error_naming_the_line(tmp_path: Path) -> None:
    mapping = load_mapping("boston311")
    quote = _open_quote(tmp_path / "quote.csv", at=5)
    with pytest.raises(MalformedCsv) as caught:
        preflight(quote, mapping, "grid_incident")
    err = caught.value
    assert isinstance(err, GridwhistleError) and isinstance(err, ValueError)
    assert (err.path, err.line) == (quote, 6) and err.stopped > 6
    assert err.reason.startswith("field larger than field limit")

    engine = Engine(tmp_path / "py.sqlite", clock=VirtualClock(EPOCH))
    try:  # without the preflight: the first pass meets it, before any ticket is written
        with pytest.raises(MalformedCsv, match=rf"^{quote}:6: the row that starts on line 6"):
            replay(engine, quote, mapping)
        assert find_tickets(engine, limit=10).items == []
    finally:
        engine.stop()

    header, body = _boston(2)  # a header cell over the limit: line 1
    huge = _csv(tmp_path / "huge.csv", [*header[:-1], "x" * 140_000], body)
    with pytest.raises(MalformedCsv, match=rf"^{huge}:1: the row that starts on line 1 "):
        read_header(huge)

    # under the csv module's limit a quote left open is no refusal: the replay rejects that
    # row (it runs to the end of the file) and replays the rows before it
    header, body = _boston(6)
    small = _csv(tmp_path / "small.csv", header, body)
    lines = small.read_text(encoding="utf-8").split("\n")
    lines[5] = lines[5].replace(",Closed,", ',"Closed,', 1)
    small.write_text("\n".join(lines), encoding="utf-8")
    preflight(small, mapping, "grid_incident")
    engine = Engine(tmp_path / "small.sqlite", clock=VirtualClock(EPOCH))
    try:
        outcome = replay(engine, small, mapping)
    finally:
        engine.stop()
    assert outcome.rows == 5
    assert [r.row for r in outcome.rejections] == [5]
    assert "the file ends inside a quoted cell" in outcome.rejections[0].reason

