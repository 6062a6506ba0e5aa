"""A fresh user's audit of the command line: text printed literally, clean errors for wrong
paths, options and files, and messages that name the real cause."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import cli_run as run
from typer.testing import CliRunner

from adapters.cli import app
from engine import Actor, Engine, VirtualClock

RUNNER = CliRunner()
START = datetime(2024, 5, 1, 8, tzinfo=UTC)
ODD = "[/oops] closing tag :x: [red]a[/red]"


@pytest.fixture
def odd_db(tmp_path: Path) -> str:
    """A database whose ticket carries markup and emoji codes in its reason and actor."""
    path = tmp_path / "odd.sqlite"
    with Engine(path, clock=VirtualClock(START)) as eng:
        eng.report("grid_incident", {"category": "noise"}, actor=Actor("[bold]h", "centre"),
                   ticket_id="MK-1")
        eng.fire("MK-1", "void", actor=Actor("ops-1", "centre"), reason=ODD)
    return str(path)


# -- 1. text is printed literally ------------------------------------------------------------

def test_history_prints_markup_and_emoji_codes_of_a_reason_literally(odd_db: str) -> None:
    code, output = run(["history", "MK-1", "--db", odd_db])
    assert code == 0, output  # main: MarkupError traceback
    assert ODD in output
    assert "[bold]h (centre)" in output
    assert "❌" not in output


@pytest.mark.parametrize("ticket", ["[/x]", ":x:", "[red]a[/red]"])
def test_an_unknown_ticket_id_is_printed_as_given(odd_db: str, ticket: str) -> None:
    code, output = run(["history", ticket, "--db", odd_db])
    assert (code, output.strip()) == (1, f"error: ticket {ticket!r} does not exist; check the id")


def test_replay_prints_csv_headers_literally(tmp_path: Path) -> None:
    data = tmp_path / "odd.csv"
    data.write_text("a:x:b,[bold]c[/bold],:smile:\n1,2,3\n", encoding="utf-8")
    code, output = run(["replay", "--data", str(data), "--db", str(tmp_path / "r.sqlite"),
                        "--quiet"])
    assert code == 1
    assert "a:x:b" in output and "[bold]c[/bold]" in output, output
    assert "❌" not in output and "😄" not in output


def test_tables_print_cells_literally(odd_db: str) -> None:
    code, output = run(["tickets", "--db", odd_db, "--state", ":x:"])
    assert code == 2  # no state is called that: refused, and said literally
    assert "state ':x:' is not one" in output and "❌" not in output, output
    code, output = run(["work-orders", "MK-1", "--db", odd_db])
    assert code == 0, output
    with sqlite3.connect(odd_db) as conn:
        conn.execute("UPDATE gw_tickets SET state = '[/s] :x:'")
    code, output = run(["tickets", "--db", odd_db])
    assert "[/s] :x:" in output, output


# -- 2. db upgrade: clean errors, no downgrade ------------------------------------------------

def _upgraded(tmp_path: Path, revision: str = "head") -> str:
    path = str(tmp_path / "up.sqlite")
    code, output = run(["db", "upgrade", "--db", path, "--revision", revision])
    assert code == 0, output
    return path


def test_db_upgrade_to_an_unknown_revision_is_one_line(tmp_path: Path) -> None:
    path = _upgraded(tmp_path)
    code, output = run(["db", "upgrade", "--db", path, "--revision", "bogus"])
    assert code == 1
    assert output.startswith("error: unknown schema revision 'bogus'; give head or one of "
                             "0001, 0002"), output  # main: CommandError traceback


def test_db_upgrade_refuses_a_downgrade(tmp_path: Path) -> None:
    from engine.store.migrate import head_revision

    path = _upgraded(tmp_path)
    code, output = run(["db", "upgrade", "--db", path, "--revision", "0005"])
    assert code == 1  # main: "already at revision 0010", exit 0
    assert output.strip() == (
        f"error: the database is at schema revision {head_revision()}, newer than 0005: "
        "downgrades are not supported; restore a backup taken before the upgrade instead")


def test_db_upgrade_of_an_older_database_to_a_later_revision_still_works(
        tmp_path: Path) -> None:
    path = _upgraded(tmp_path, "0005")
    code, output = run(["db", "upgrade", "--db", path, "--revision", "0006"])
    assert (code, output.strip()) == (0, f"{path}: upgraded from 0005 to 0006")
    code, output = run(["db", "upgrade", "--db", path, "--revision", "0006"])
    assert (code, output.strip()) == (0, f"{path}: already at revision 0006")


def test_db_upgrade_of_a_directory_says_so(tmp_path: Path) -> None:
    code, output = run(["db", "upgrade", "--db", str(tmp_path)])
    assert code == 1
    assert output.strip() == (f"error: {tmp_path} is a directory, not a database file; give "
                              "a file's path with --db (e.g. "
                              f"{tmp_path / 'gridwhistle.sqlite'})")


# -- 4. database paths: the real cause, and reading a read-only file --------------------------

READ_COMMANDS = [["tickets"], ["timers"], ["history", "MK-1"], ["check"], ["report"],
                 ["work-orders", "MK-1"], ["oversight", "MK-1"], ["db", "current"],
                 ["webhooks", "dead"], ["diagram", "grid_incident", "--highlight", "MK-1"]]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_directory_as_db_is_named_a_directory(args: list[str], tmp_path: Path) -> None:
    code, output = run([*args, "--db", str(tmp_path)])
    assert code == 1
    assert output.startswith(f"error: {tmp_path} is a directory, not a database file"), output


def test_replay_into_a_directory_says_so_without_creating_it(tmp_path: Path) -> None:
    folder = tmp_path / "d.sqlite"
    folder.mkdir()
    code, output = run(["replay", "--db", str(folder), "--quiet"])
    assert code == 1
    assert "creating it" not in output  # main: "no database at …: creating it", then failed
    assert output.startswith(f"error: {folder} is a directory, not a database file"), output


def test_replay_into_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "r.sqlite"
    code, output = run(["replay", "--db", str(target), "--quiet"])
    assert code == 1
    assert "creating it" not in output
    assert output.strip() == (f"error: cannot create database {target}: the folder "
                              f"{target.parent} does not exist; create it or check the --db "
                              "option")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder SQLite cannot write in: a read-only bind mount (as root, who ignores file
    modes), else a folder and files without write permission."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        yield folder
        for f in [folder, *folder.iterdir()]:
            f.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("as root, a read-only folder needs a bind mount, and mount is not allowed")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True,
                       capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def _seal(folder: Path, files: dict[str, Path]) -> None:
    """Put copies of ``files`` in ``folder`` and make it read-only (see read_only_folder)."""
    if os.geteuid() != 0:
        for name, source in files.items():
            shutil.copy(source, folder / name)
            (folder / name).chmod(0o444)
        folder.chmod(0o555)
        return
    # the bind mount is read-only already: copy through the folder underneath it
    subprocess.run(["umount", str(folder)], check=True, capture_output=True)
    for name, source in files.items():
        shutil.copy(source, folder / name)
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)


@pytest.mark.parametrize("args", [["tickets"], ["history", "MK-1"], ["check"], ["report"],
                                  ["timers", "--status", "cancelled"], ["db", "current"],
                                  ["webhooks", "dead"]], ids=lambda a: a[0])
def test_reading_a_database_sqlite_may_not_write(args: list[str], odd_db: str,
                                                 read_only_folder: Path) -> None:
    _seal(read_only_folder, {"r.sqlite": Path(odd_db)})
    target = str(read_only_folder / "r.sqlite")
    code, output = run([*args, "--db", target])
    assert code == 0, output  # main: "unable to open database file … server is running"
    assert "error:" not in output
    assert sorted(p.name for p in read_only_folder.iterdir()) == ["r.sqlite"]


def test_history_of_a_read_only_database_shows_the_ticket(odd_db: str,
                                                        read_only_folder: Path) -> None:
    _seal(read_only_folder, {"r.sqlite": Path(odd_db)})
    code, output = run(["history", "MK-1", "--db", str(read_only_folder / "r.sqlite")])
    assert code == 0 and ODD in output, output


@pytest.mark.parametrize("args", [["db", "upgrade"], ["replay", "--quiet"],
                                  ["migrate", "--workflow", "grid_incident"],
                                  ["webhooks", "replay"]], ids=lambda a: " ".join(a[:2]))
def test_writing_a_read_only_database_names_the_cause(args: list[str], odd_db: str,
                                                      read_only_folder: Path) -> None:
    _seal(read_only_folder, {"r.sqlite": Path(odd_db)})
    target = read_only_folder / "r.sqlite"
    code, output = run([*args, "--db", str(target)])
    why = ("it is on a read-only file system" if os.geteuid() == 0
           else "the file is not writable (check its permissions and owner)")
    assert code == 1
    assert output.strip() == (f"error: cannot write database {target}: {why}; copy it to a "
                              "writable place, or fix the mount or permissions"), output


def test_creating_a_database_in_a_read_only_folder_names_the_cause(
        read_only_folder: Path) -> None:
    target = read_only_folder / "new.sqlite"
    code, output = run(["db", "upgrade", "--db", str(target)])
    why = ("it is on a read-only file system" if os.geteuid() == 0
           else f"its folder {read_only_folder} is not writable (SQLite keeps new.sqlite-wal "
                "and new.sqlite-shm beside it)")
    assert code == 1
    assert output.strip() == (f"error: cannot create database {target}: {why}; give a --db in "
                              "a writable folder"), output


# -- 3. db revision without a schema change writes nothing ------------------------------------

def test_db_revision_without_changes_writes_nothing(tmp_path: Path) -> None:
    from engine.store.migrate import MIGRATIONS_DIR, head_revision

    versions = MIGRATIONS_DIR / "versions"
    before = {p.name for p in versions.glob("*.py")}
    path = _upgraded(tmp_path)
    try:
        code, output = run(["db", "revision", "-m", "nothing", "--db", path])
        assert code == 1, output  # main: wrote an empty 0011_nothing.py into the package
        assert output.strip() == (
            f"error: {path}: no changes detected: the declared tables (engine/store/tables.py)"
            f" match the schema at revision {head_revision()}; no revision file written")
        assert {p.name for p in versions.glob("*.py")} == before
    finally:
        for name in {p.name for p in versions.glob("*.py")} - before:
            (versions / name).unlink()
        head_revision.cache_clear()


def test_db_revision_with_a_change_still_writes_its_file(tmp_path: Path) -> None:
    from engine.store.migrate import MIGRATIONS_DIR, head_revision

    versions = MIGRATIONS_DIR / "versions"
    before = {p.name for p in versions.glob("*.py")}
    path = _upgraded(tmp_path)
    with sqlite3.connect(path) as conn:  # the declared index is missing: a difference
        conn.execute("DROP INDEX ix_gw_tickets_state")
    try:
        code, output = run(["db", "revision", "-m", "restore index", "--db", path])
        assert code == 0, output
        (written,) = {p.name for p in versions.glob("*.py")} - before
        assert "ix_gw_tickets_state" in (versions / written).read_text(encoding="utf-8")
    finally:
        for name in {p.name for p in versions.glob("*.py")} - before:
            (versions / name).unlink()
        head_revision.cache_clear()


# -- 5. timers: options are checked -----------------------------------------------------------

LIMIT_AT_LEAST_1 = "Invalid value for '--limit': Input should be greater than or equal to 1"


@pytest.mark.parametrize(("args", "message"), [
    (["--status", "bogus"], "'bogus' is not one of 'pending', 'fired', 'cancelled', 'stale', "
                            "'all'"),
    (["--limit", "-5"], LIMIT_AT_LEAST_1),
    (["--limit", "0"], LIMIT_AT_LEAST_1),
])
def test_timers_refuses_a_wrong_status_or_limit(args: list[str], message: str,
                                                odd_db: str) -> None:
    code, output = run(["timers", "--db", odd_db, *args])
    assert code == 2, output  # main: an empty table, exit 0
    assert message in " ".join(output.replace("│", " ").split()), output


def test_timers_status_all_lists_every_status(odd_db: str) -> None:
    import json

    code, output = run(["timers", "--db", odd_db, "--status", "all", "--json", "--limit", "1"])
    assert code == 0, output
    assert [t["status"] for t in json.loads(output)] == ["cancelled"]
    code, output = run(["timers", "--db", odd_db, "--json"])
    assert (code, json.loads(output)) == (0, [])  # default: the pending ones


# -- 6. rough edges ---------------------------------------------------------------------------

@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    code, output = run(["keys", "add", str(path), "--actor", "ops-1", "--role", "centre"])
    assert code == 0, output
    return path


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_serve_refuses_a_port_outside_1_to_65535(port: str, keys_file: Path,
                                                 tmp_path: Path) -> None:
    code, output = run(["serve", "--api-keys", str(keys_file), "--port", port,
                        "--db", str(tmp_path / "s.sqlite")])
    assert code == 2, output  # main: OverflowError traceback from bind() for 70000
    assert "Invalid value for '--port'" in output
    assert not (tmp_path / "s.sqlite").exists()


def test_serve_checks_the_lifecycles_before_creating_the_database(
        keys_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("keys: [\n", encoding="utf-8")
    code, output = run(["serve", "--api-keys", str(keys_file), "--lifecycle", str(broken),
                        "--db", str(tmp_path / "new.sqlite")])
    assert code == 1
    assert "creating it" not in output, output
    assert f"{broken}:2: <document>: YAML syntax error" in output
    assert not (tmp_path / "new.sqlite").exists()  # main: created, then refused


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(("options", "message"), [
    (["--webhook", "ops=http://elsewhere.example/hook", "--webhook-allow-host",
      "hooks.example.org"],
     "error: webhook endpoint 'ops': host 'elsewhere.example' is not in the allowed hosts "
     "(hooks.example.org); add it to the allow-list or use another URL"),
    (["--webhook", "ops=http://127.0.0.1:9/a", "--webhook", "ops=http://127.0.0.1:9/b"],
     "error: webhook endpoint names must be unique: ['ops', 'ops']"),
    (["--evidence-store", "nosuch://bucket/evidence"],
     "error: evidence storage 'nosuch://bucket/evidence': Protocol not known: nosuch"),
], ids=["host not allowed", "names twice", "evidence store"])
def test_serve_checks_webhooks_and_the_evidence_store_before_creating_the_database(
        options: list[str], message: str, keys_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDWHISTLE_WEBHOOK_SECRET_OPS", SECRET)
    code, output = run(["serve", "--api-keys", str(keys_file), *options,
                        "--db", str(tmp_path / "new.sqlite")])
    assert code == 1
    assert output.strip() == message, output  # main: "note: no database at ...: creating it"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yaml"]  # main: new.sqlite


def test_serve_refuses_a_port_in_use_before_creating_the_database(
        keys_file: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = run(["serve", "--api-keys", str(keys_file), "--port", str(port),
                            "--db", str(tmp_path / "new.sqlite")])
    # main: exit 3 from uvicorn ("[Errno 98] error while attempting to bind"), after the
    # database had been created and grid_incident deployed in it
    assert code == 1, output
    assert output.strip() == (f"error: cannot listen on 127.0.0.1:{port}: the port is in use "
                              "(is Gridwhistle or another server already running there?); "
                              "stop it, or give another --port"), output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yaml"]


def test_keys_add_with_an_empty_actor_is_one_clean_line(tmp_path: Path) -> None:
    code, output = run(["keys", "add", str(tmp_path / "k.yaml"), "--actor", "", "--role",
                        "centre"])
    assert code == 1
    assert output.strip() == "error: --actor: must not be empty", output
    assert not (tmp_path / "k.yaml").exists()


@pytest.mark.parametrize("command", ["list", "migrate"])
def test_keys_of_a_missing_file_says_no_such_file(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.yaml"
    code, output = run(["keys", command, str(missing)])
    assert code == 1
    assert output.strip() == (f"error: no keys file at {missing}; make one with `gridwhistle "
                              f"keys add {missing} --actor ID --role ROLE`"), output


def test_serve_with_a_missing_keys_file_says_no_such_file(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.yaml"
    code, output = run(["serve", "--api-keys", str(missing), "--db", str(tmp_path / "s.sqlite")])
    assert code == 1
    assert output.startswith(f"error: no keys file at {missing}; make one with"), output


@pytest.mark.parametrize("command", [["keys", "list"], ["serve", "--api-keys"]],
                         ids=lambda c: c[0])
def test_keys_file_problems_are_called_keys_file_problems(command: list[str],
                                                          tmp_path: Path) -> None:
    broken = tmp_path / "keys.yaml"
    broken.write_text("keys: [\n", encoding="utf-8")
    code, output = run([*command, str(broken), "--db", str(tmp_path / "s.sqlite")]
                       if command[0] == "serve" else [*command, str(broken)])
    assert code == 1
    assert output.startswith(f"error: 1 problem in keys file {broken}; fix it and try again:\n"
                             f"  {broken}:2: <document>: YAML syntax error"), output
    assert "definition" not in output


@pytest.mark.parametrize("name", ["nonexist.yaml", "nonexist.yml", "some/dir/file"])
def test_validate_of_a_missing_file_says_no_such_file(name: str) -> None:
    code, output = run(["validate", name])
    assert code == 1
    assert output.startswith(f"no such file: {name}; check the path, or give one of the "
                             "bundled lifecycle names: grid_incident"), output


def test_validate_of_an_unknown_name_still_lists_the_bundled_ones() -> None:
    code, output = run(["validate", "nonexist"])
    assert code == 1
    assert output.startswith("no lifecycle named 'nonexist': give a path to a YAML file or "
                             "one of the bundled names: grid_incident"), output


def test_help_wraps_long_words_instead_of_cutting_them() -> None:
    result = RUNNER.invoke(app, ["serve", "--help"], terminal_width=80,
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = "".join(ch for ch in result.output if ch not in "│ \n")
    assert "GRIDWHISTLE_WEBHOOK_SECRET_<NAME>" in text, result.output
    assert "$GRIDWHISTLE_WEBHOOK_ALLOWED_HOSTS" in text
    assert "…" not in result.output


@pytest.mark.parametrize("group", [[], ["keys"], ["db"], ["webhooks"]])
def test_help_lists_each_command_whole_without_touching_typer_internals(
        group: list[str]) -> None:
    import inspect

    import typer.rich_utils

    # before: the help's text maker, typer.rich_utils._make_rich_text (private), was wrapped
    assert not getattr(typer.rich_utils._make_rich_text, "_gridwhistle_folds", False)
    result = RUNNER.invoke(app, [*group, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "..." not in result.output.replace("[ARGS]...", "")
    text = " ".join(result.output.split())
    command = app if not group else next(g.typer_instance for g in app.registered_groups
                                         if g.name == group[0])
    for info in command.registered_commands:  # Click would cut each summary to one line
        first = inspect.cleandoc(info.callback.__doc__ or "").split("\n\n")[0]
        assert " ".join(first.split()) in text, (first, result.output)
    assert all(line.rstrip() == line for line in result.output.splitlines())  # no panels


def test_counts_are_pluralised(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("format: 1\nname: one\ninitial: open\nroles:\n  centre: {}\nlevels:\n"
                   "  - {name: community}\nreport:\n  roles: [centre]\nstates:\n  open: {}\n"
                   "  closed: {final: true}\ntransitions:\n  - trigger: finish\n"
                   "    source: open\n    dest: closed\n    roles: [centre]\n",
                   encoding="utf-8")
    handler_only = Path(__file__).parent / "definitions" / "handler_only.yaml"
    code, output = run(["validate", str(one), str(handler_only)])
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].endswith("ok — one: 2 states, 1 transition, 0 deadlines"), output
    assert lines[1].endswith("ok — handler_only: 5 states, 5 transitions, 1 deadline")
