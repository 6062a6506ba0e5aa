"""`gridwhistle replay` keeps what is not its own, and says what it refuses.

A tester found five faults:

1. `--fresh` was the default, so `gridwhistle replay --db c.sqlite --data small.csv` on a
   database holding live tickets (even one `gridwhistle serve` was using) exited 0 and left
   only the replay's tickets. Now a replay empties its database only when it holds nothing
   but replays' tickets (the replay keeps a record in the databases it fills), and refuses
   one holding others in one line, unless `--append` or an explicit `--fresh` says what to
   do. Its own database (`make demo` twice) is emptied and replayed again without a flag.
2. A CSV with a repeated column name used the last copy, silently; now a column the mapping
   reads that appears twice is refused before the database is touched, naming both places.
3. `--append` with ids already there gave an API client's advice ("omit the id to have one
   generated"); now the reason says what to do in a replay.
4. `--format open311-json --workflow volunteer_parking` emptied the database, rejected all 50
   requests and exited 0; now the lifecycle is checked first (what is missing, with its
   line), and a replay that rejects every row exits 1 after its report.
5. A UTF-16 file read as UTF-8 was told to try `--encoding gb18030` first; now the UTF-16
   byte-order mark is recognised and `--encoding utf-16` suggested.

Real SQLite files and real `gridwhistle` processes throughout.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from servers import free_port

from adapters.replay import BUNDLED_SAMPLE, RepeatedColumn, load_mapping, preflight, replay
from adapters.replay.open311 import CHICAGO_SAMPLE, check_lifecycle, replay_open311
from engine import (
    Actor,
    ConfigurationError,
    Engine,
    GridwhistleError,
    Lifecycle,
    VirtualClock,
    find_tickets,
    load_definition,
)

CLI = [sys.executable, "-m", "adapters.cli"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _sample(path: Path, rows: int, *, skip: int = 0) -> Path:
    """The bundled Boston sample's header and ``rows`` rows (after ``skip``), into ``path``."""
    lines = BUNDLED_SAMPLE.read_text(encoding="utf-8").splitlines(True)
    path.write_text("".join([lines[0], *lines[1 + skip:1 + skip + rows]]), encoding="utf-8")
    return path


def _ids(db: Path) -> list[str]:
    engine = Engine(db, clock=VirtualClock(EPOCH))
    try:
        return sorted(t.id for t in find_tickets(engine, limit=500).items)
    finally:
        engine.stop()


def _live(db: Path, count: int) -> list[str]:
    """Report ``count`` tickets into ``db`` as a hotline would (no replay); their ids."""
    with Engine(db) as engine:
        return sorted(engine.report("grid_incident", {"category": "blocked drain"},
                                    actor=Actor("hotline-1", "centre")).id
                      for _ in range(count))


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines()
             if line.strip() and not line.startswith("note: no database at ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


# -- 1. a replay does not empty a database holding tickets it did not write -------------------


def test_a_replay_refuses_to_empty_a_database_of_live_tickets(tmp_path: Path) -> None:
    small = _sample(tmp_path / "small.csv", 20)
    live = _live(tmp_path / "c.sqlite", 7)
    done = _cli("replay", "--db", "c.sqlite", "--data", str(small), "--quiet", cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    line = _one_error_line(done.stderr)
    assert line.startswith("error: c.sqlite holds 7 tickets (all grid_incident) that no "
                           "replay wrote; ")
    for way in ("--append", "--fresh", "another --db"):
        assert way in line
    assert _ids(tmp_path / "c.sqlite") == live   # nothing lost, nothing added
    # impact --data replays into temporary databases of its own: not concerned
    done = _cli("impact", "--workflow", "grid_incident", "--data", str(small), "--json",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 20
    assert not (tmp_path / "gridwhistle-replay.sqlite").exists()
    # --append adds the replay to them; the next replay without an option is refused again
    done = _cli("replay", "--db", "c.sqlite", "--data", str(small), "--append", "--json",
                "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 27
    done = _cli("replay", "--db", "c.sqlite", "--data", str(small), "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    assert ("holds 27 tickets (all grid_incident): 20 written by replays (the last of "
            f"{small}, ended ") in _one_error_line(done.stderr)
    assert " and 7 that no replay wrote; " in done.stderr
    assert len(_ids(tmp_path / "c.sqlite")) == 27
    # an explicit --fresh empties it deliberately
    done = _cli("replay", "--db", "c.sqlite", "--data", str(small), "--fresh", "--json",
                "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 20
    assert not set(live) & set(_ids(tmp_path / "c.sqlite"))


def test_a_replay_empties_its_own_database_until_another_writer_adds_a_ticket(
        tmp_path: Path) -> None:
    small = _sample(tmp_path / "small.csv", 20)
    for _ in range(2):  # as `make demo` twice: its own database, emptied and replayed again
        done = _cli("replay", "--db", "r.sqlite", "--data", str(small), "--json", "--quiet",
                    cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tickets"] == 20
    replayed = _ids(tmp_path / "r.sqlite")
    [extra] = _live(tmp_path / "r.sqlite", 1)   # a server (an engine) reports one more
    done = _cli("replay", "--db", "r.sqlite", "--data", str(small), "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    assert "holds 21 tickets (all grid_incident): 20 written by replays" in done.stderr
    assert "and 1 that no replay wrote" in _one_error_line(done.stderr)
    assert _ids(tmp_path / "r.sqlite") == sorted([*replayed, extra])


def test_a_database_a_server_is_using_is_not_emptied(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    key = _cli("keys", "add", str(keys), "--actor", "ops-1", "--role", "centre",
               cwd=tmp_path).stdout.strip()
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--api-keys", str(keys), "--db", "live.sqlite",
                               "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to 30 s on a loaded machine
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        reported = [httpx.post(f"{url}/tickets", json={"fields": {"category": "noise"}},
                               headers={"X-API-Key": key}).json()["id"] for _ in range(3)]
        small = _sample(tmp_path / "small.csv", 20)
        done = _cli("replay", "--db", "live.sqlite", "--data", str(small), "--quiet",
                    cwd=tmp_path)
        assert done.returncode == 1
        assert "live.sqlite holds 3 tickets" in _one_error_line(done.stderr)
        served = httpx.get(f"{url}/open311/v2/requests.json").json()
        assert sorted(r["service_request_id"] for r in served) == sorted(reported)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_replay_that_did_not_end_is_not_taken_for_the_replays_own(tmp_path: Path) -> None:
    small = _sample(tmp_path / "small.csv", 20)
    assert _cli("replay", "--db", "r.sqlite", "--data", str(small), "--quiet",
                cwd=tmp_path).returncode == 0
    import sqlite3  # as a replay killed outright (SIGKILL) leaves its record

    with sqlite3.connect(tmp_path / "r.sqlite") as conn:
        conn.execute("UPDATE gridwhistle_replay SET running = 1")
    done = _cli("replay", "--db", "r.sqlite", "--data", str(small), "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    assert "a replay into it has not ended (started " in _one_error_line(done.stderr)
    assert len(_ids(tmp_path / "r.sqlite")) == 20


# -- 2. a repeated column the mapping reads ---------------------------------------------------


def _with_second_type(path: Path, rows: int) -> Path:
    lines = BUNDLED_SAMPLE.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:1 + rows]
    path.write_text("\n".join([f"{header},type", *(f"{line},Second copy" for line in body)])
                    + "\n", encoding="utf-8")
    return path


def test_a_column_the_mapping_reads_twice_is_refused_before_the_database_is_touched(
        tmp_path: Path) -> None:
    small = _sample(tmp_path / "small.csv", 20)
    assert _cli("replay", "--db", "r.sqlite", "--data", str(small), "--quiet",
                cwd=tmp_path).returncode == 0
    before = _ids(tmp_path / "r.sqlite")
    twice = _with_second_type(tmp_path / "twice.csv", 10)
    header = BUNDLED_SAMPLE.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
    position, last = header.index("type") + 1, len(header) + 1
    done = _cli("replay", "--db", "r.sqlite", "--data", "twice.csv", "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert line.startswith(f"error: twice.csv:1: column 'type' appears twice (columns "
                           f"{position} and {last}), and mapping 'boston311' reads it (")
    assert "boston311.yaml:" in line and "fields.category: type" in line
    assert _ids(tmp_path / "r.sqlite") == before   # not emptied
    with pytest.raises(RepeatedColumn) as caught:   # from Python: preflight and replay()
        preflight(twice, load_mapping("boston311"), "grid_incident")
    assert caught.value.repeats == {"type": [position, last]}
    assert isinstance(caught.value, GridwhistleError) and isinstance(caught.value, ValueError)
    engine = Engine(tmp_path / "p.sqlite", clock=VirtualClock(EPOCH))
    try:
        with pytest.raises(RepeatedColumn):
            replay(engine, twice, load_mapping("boston311"))
        assert find_tickets(engine).items == []
    finally:
        engine.stop()
    # a column the mapping does not read may repeat: it is not read
    lines = BUNDLED_SAMPLE.read_text(encoding="utf-8").splitlines()
    (tmp_path / "notes.csv").write_text(
        "\n".join([f"{lines[0]},notes,notes", *(f"{line},a,b" for line in lines[1:11])])
        + "\n", encoding="utf-8")
    done = _cli("replay", "--db", "n.sqlite", "--data", "notes.csv", "--json", "--quiet",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 10


# -- 3. --append with ids already there -------------------------------------------------------


def test_append_of_rows_already_replayed_says_what_to_do_in_a_replay(tmp_path: Path) -> None:
    first = _sample(tmp_path / "first.csv", 20)
    overlap = _sample(tmp_path / "overlap.csv", 10, skip=15)   # rows 16-20 again, 21-25 new
    assert _cli("replay", "--db", "r.sqlite", "--data", str(first), "--quiet",
                cwd=tmp_path).returncode == 0
    done = _cli("replay", "--db", "r.sqlite", "--data", str(overlap), "--append", "--json",
                "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tickets"] == 25
    reasons = [r["reason"] for r in report["rejections"]]
    assert len(reasons) == 5
    for reason, rejection in zip(reasons, report["rejections"], strict=True):
        assert reason.startswith(f"report: ticket {rejection['id']!r} is already in the "
                                 "database (an earlier replay of this row, or another source, "
                                 "wrote it)")
        assert "leave the rows already replayed out of the file" in reason
        assert "another --db" in reason
        assert "omit the id" not in reason


# -- 4. an Open311 replay into a lifecycle that does not suit it ------------------------------


def test_open311_into_a_lifecycle_without_what_it_fires_is_refused_first(
        tmp_path: Path) -> None:
    assert _cli("replay", "--format", "open311-json", "--db", "o.sqlite", "--quiet",
                cwd=tmp_path).returncode == 0
    before = _ids(tmp_path / "o.sqlite")
    done = _cli("replay", "--format", "open311-json", "--workflow", "volunteer_parking",
                "--db", "o.sqlite", "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: lifecycle 'volunteer_parking' does not have what an "
                                  "Open311 replay needs")
    assert "Traceback" not in done.stderr
    parking = str(load_definition("volunteer_parking").file)
    for missing in ("roles: no role 'centre'", "fields: no field 'category'",
                    "fields: no field 'department'", "fields.task: required",
                    "transitions: no 'dispatch' from 'posted'", "transitions: no 'close'",
                    "routing: none"):
        assert any(line.strip().startswith(f"{parking}:") and missing in line
                   for line in done.stderr.splitlines()), (missing, done.stderr)
    assert _ids(tmp_path / "o.sqlite") == before   # not emptied
    # from Python too, before any request is applied
    engine = Engine(tmp_path / "p.sqlite", clock=VirtualClock(EPOCH))
    try:
        with pytest.raises(ConfigurationError, match="does not have what an Open311 replay"):
            replay_open311(engine, CHICAGO_SAMPLE, lifecycle="volunteer_parking")
        assert find_tickets(engine).items == []
    finally:
        engine.stop()
    grid = Lifecycle(load_definition("grid_incident"), strict=False)
    check_lifecycle(grid, Lifecycle(load_definition("work_order"), strict=False))  # suits


def test_a_replay_that_rejects_every_row_exits_1_after_its_report(tmp_path: Path) -> None:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))[:6]
    at = header.index("open_dt")
    with (tmp_path / "none.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows([*row[:at], "not a time", *row[at + 1:]] for row in rows)
    done = _cli("replay", "--db", "r.sqlite", "--data", "none.csv", "--json", "--quiet",
                cwd=tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout)["rejected"] == 5   # the report is printed first
    line = _one_error_line(done.stderr)
    assert line.startswith("error: the replay rejected every one of its 5 rows and wrote no "
                           "ticket into r.sqlite (the first, row 1, ")


# -- 5. a UTF-16 file read as UTF-8 -----------------------------------------------------------


@pytest.mark.parametrize("codec, mark", [("utf-16-le", "FF FE"), ("utf-16-be", "FE FF")])
def test_a_utf16_file_read_as_utf8_is_told_to_use_utf16(tmp_path: Path, codec: str,
                                                          mark: str) -> None:
    text = "\ufeff" + _sample(tmp_path / "plain.csv", 5).read_text(encoding="utf-8")
    (tmp_path / "u16.csv").write_bytes(text.encode(codec))
    done = _cli("replay", "--db", "r.sqlite", "--data", "u16.csv", "--quiet", cwd=tmp_path)
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert line.startswith("error: u16.csv:1: the file is not UTF-8 text: byte ")
    advice = line.split("); ", 1)[1]
    assert advice.startswith(f"the file starts with the byte-order mark of UTF-16 ({mark}), "
                             "so it is UTF-16 text")
    assert "--encoding utf-16" in advice
    assert "gb18030" not in advice
    assert not (tmp_path / "r.sqlite").exists()
    done = _cli("replay", "--db", "r.sqlite", "--data", "u16.csv", "--encoding", "utf-16",
                "--json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tickets"] == 5


@pytest.mark.postgres
def test_pg_explicit_fresh_names_other_sessions(tmp_path: Path) -> None:
    """On PostgreSQL, an explicit --fresh on a database holding tickets names the others."""
    pytest.importorskip("psycopg")
    from backends import pg_schema
    from sqlalchemy import create_engine, text

    with pg_schema() as url:
        _live_url(url)
        other = create_engine(url)
        with other.connect() as conn:   # another session, as a server's would be
            conn.execute(text("SELECT 1"))
            small = _sample(tmp_path / "small.csv", 5)
            refused = _cli("replay", "--db", url, "--data", str(small), "--quiet",
                           cwd=tmp_path)
            assert refused.returncode == 1
            assert "holds 2 tickets (all grid_incident) that no replay wrote" in refused.stderr
            done = _cli("replay", "--db", url, "--data", str(small), "--fresh", "--json",
                        "--quiet", cwd=tmp_path)
        other.dispose()
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tickets"] == 5
        assert "other session" in done.stderr and "pg_stat_activity" in done.stderr


def _live_url(url: str) -> None:
    with Engine(url) as engine:
        for _ in range(2):
            engine.report("grid_incident", {"category": "noise"},
                          actor=Actor("hotline-1", "centre"))

