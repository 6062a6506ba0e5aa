"""Small refusals of the command line: a filter value that names nothing, a bad option value
said of its option (exit 2, as Click says its own), and a file's problems headed by what the
file is."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import cli_run as run

from engine import Actor, Engine, VirtualClock

START = datetime(2024, 5, 1, 8, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def one_line(output: str) -> str:
    """Click's error line, joined again where the terminal wrapped it."""
    return " ".join(output.split())


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "t.sqlite"
    with Engine(path, clock=VirtualClock(START)) as eng:
        eng.report("grid_incident", {"category": "noise"}, actor=Actor("ops-1", "centre"),
                   ticket_id="T-1")
    return str(path)


# -- 1. a filter value that names nothing ------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "words"), [
    ("--state", "nosuch", "state 'nosuch' is not one any deployed lifecycle declares; give "
                          "one of: callback, closed, dispatched,"),
    ("--level", "galaxy", "level 'galaxy' is not one any deployed lifecycle declares; give "
                          "one of: city, community, district, street"),
    ("--lifecycle", "nosuch", "lifecycle 'nosuch' is not one deployed in this database; "
                              "give one of: grid_incident"),
])
def test_tickets_refuses_a_filter_value_nothing_declares(db: str, option: str, value: str,
                                                         words: str) -> None:
    code, output = run(["tickets", "--db", db, option, value])
    assert code == 2, output  # main: exit 0, "0 of 0"
    assert f"Invalid value for '{option}': {words}" in one_line(output)
    code, output = run(["tickets", "--db", db, "--state", "reported", "--level", "community",
                        "--lifecycle", "grid_incident"])
    assert code == 0 and "1 of 1" in output, output


def test_tickets_on_an_empty_database_says_nothing_is_deployed(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    assert run(["db", "upgrade", "--db", str(empty)])[0] == 0
    code, output = run(["tickets", "--db", str(empty), "--state", "reported"])
    assert code == 2
    assert "no lifecycle is deployed in this database yet" in one_line(output)


# -- 2. --limit and --offset are Click's bad values ------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["--limit", "0"], "Invalid value for '--limit': Input should be greater than or equal "
                       "to 1"),
    (["--limit", "1000"], "Invalid value for '--limit': Input should be less than or equal "
                          "to 500"),
    (["--offset", "-1"], "Invalid value for '--offset': Input should be greater than or "
                         "equal to 0"),
    (["--due-within", "-5"], "Invalid value for '--due-within'"),
])
def test_tickets_refuses_a_page_out_of_range_as_a_usage_error(db: str, args: list[str],
                                                              words: str) -> None:
    code, output = run(["tickets", "--db", db, *args])
    assert code == 2, output  # main: exit 1, "error: limit must be between 1 and 500"
    assert words in one_line(output)
    assert run(["tickets", "--db", db, "--limit", "500"])[0] == 0


# -- 3. a bad value is said of its option ------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "choices"), [
    ("--open311-reads", "private", "'public', 'key'"),
    ("--open311-history", "everything", "'anonymous', 'none', 'full'"),
    ("--open311-evidence", "all", "'key', 'public', 'none'"),
])
def test_serve_names_the_open311_option_and_its_choices(tmp_path: Path, option: str,
                                                        value: str, choices: str) -> None:
    target = tmp_path / "s.sqlite"
    code, output = run(["serve", "--api-keys", str(tmp_path / "k.yaml"), "--db", str(target),
                        option, value])
    assert code == 2, output
    # main: "Invalid value: Open311Privacy.reads is public or key, not 'private'"
    assert f"Invalid value for '{option}':" in one_line(output)
    assert f"{value!r} is not one of {choices}" in one_line(output)
    assert not target.exists()


def test_tickets_now_that_is_not_an_instant_is_said_of_its_option(db: str) -> None:
    code, output = run(["tickets", "--now", "yesterday", "--db", db])
    assert code == 2, output
    # main: "Invalid value: 'yesterday' is not an ISO 8601 instant"
    assert ("Invalid value for '--now': 'yesterday' is not an ISO 8601 instant"
            in one_line(output))


def test_impact_names_until_in_a_bad_instant(db: str) -> None:
    code, output = run(["impact", "--workflow", "grid_incident", "--until", "garbage",
                        "--db", db])
    assert code == 2
    # main: "Invalid value: 'garbage' is not an ISO 8601 instant"
    assert "Invalid value for '--until': 'garbage' is not an ISO 8601" in one_line(output)


@pytest.mark.parametrize("args", [
    ["tickets", "--now", "yesterday"],
    ["report", "--from", "garbage"],
    ["report", "--until", "garbage"],
    ["replay", "--until", "garbage"],
])
def test_every_bad_instant_names_its_option(db: str, args: list[str]) -> None:
    """Each command that reads an instant in its body names the option (parse_instant takes
    it): main said ``Invalid value: ...`` for some, with no option."""
    code, output = run([*args, "--db", db])
    assert code == 2
    assert f"Invalid value for '{args[-2]}': {args[-1]!r} is not an ISO 8601" in one_line(
        output)


# -- 7. a file's problems say what the file is -------------------------------------------------

def test_webhooks_deliver_says_webhooks_file(tmp_path: Path, db: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('endpoints:\n  ops: {url: "http://127.0.0.1:9/h", secret: "nope"}\n',
                   encoding="utf-8")
    code, output = run(["webhooks", "deliver", "--webhooks", str(bad), "--db", db])
    assert code == 1
    # main: "1 problem in definition; fix them and load again:"
    assert output.startswith(f"error: 1 problem in webhooks file {bad}; fix it and try "
                             f"again:\n  {bad}:2: endpoints.ops.secret: "), output
    bad.write_text(f'endpoints:\n  ops: {{url: "http://127.0.0.1:9/h", secret: "{SECRET}", '
                   f'colour: 1}}\n  dev: {{url: "http://127.0.0.1:9/d", secret: "{SECRET}", '
                   'colour: 2}\n', encoding="utf-8")
    code, output = run(["webhooks", "deliver", "--webhooks", str(bad), "--db", db])
    assert output.startswith(f"error: 2 problems in webhooks file {bad}; fix them and try "
                             "again:\n"), output
    assert "definition" not in output


def test_keys_add_says_lifecycle_file_for_its_lifecycles_problems(tmp_path: Path) -> None:
    lifecycle = tmp_path / "mine.yaml"
    lifecycle.write_text("format: 1\nname: mine\n", encoding="utf-8")
    keys = tmp_path / "keys.yaml"
    code, output = run(["keys", "add", str(keys), "--actor", "ops-1", "--role", "centre",
                        "--lifecycle", str(lifecycle)])
    assert code == 1
    # main: "6 problems in keys file mine.yaml" -- the lifecycle's, not the keys file's
    assert output.startswith(f"error: 6 problems in lifecycle file {lifecycle}; fix them "
                             "and try again:\n"), output
    assert not keys.exists()


def test_the_engine_heads_each_kind_of_file_by_what_it_is(tmp_path: Path) -> None:
    from adapters.http import load_api_keys
    from adapters.webhooks import load_endpoints
    from engine import DefinitionError, load_definition

    lifecycle = tmp_path / "mine.yaml"
    lifecycle.write_text("format: 1\nname: mine\n", encoding="utf-8")
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: [\n", encoding="utf-8")
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("endpoints: 5\n", encoding="utf-8")
    heads = []
    for load, path in ((load_definition, lifecycle), (load_api_keys, keys),
                       (load_endpoints, hooks)):
        with pytest.raises(DefinitionError) as info:
            load(path)
        heads.append((info.value.kind, str(info.value).splitlines()[0]))
    assert heads == [  # main: "... in definition; fix them ..." for all three
        ("definition", f"6 problems in lifecycle file {lifecycle}; fix them and load again:"),
        ("keys", f"1 problem in keys file {keys}; fix it and load again:"),
        ("webhooks", f"1 problem in webhooks file {hooks}; fix it and load again:"),
    ]
