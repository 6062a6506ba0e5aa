"""Generated files and documentation stay current: the JSON Schema, the diagrams, the YAML
reference's coverage of the schema, and the embedding example (which is run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest

from adapters.diagrams import markdown_page
from engine import bundled_names, load_definition
from engine.definition.json_schema import lifecycle_json_schema, lifecycle_json_schema_text
from engine.definition.yaml_source import parse_yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_workflows_schema_json_is_current() -> None:
    assert (ROOT / "workflows" / "schema.json").read_text(encoding="utf-8") == (
        lifecycle_json_schema_text()), "stale: run `make docs`"


def _properties(node: object, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        found.update(node.get("properties", {}))
        for value in node.values():
            _properties(value, found)
    elif isinstance(node, list):
        for value in node:
            _properties(value, found)
    return found


def test_every_schema_key_is_in_the_yaml_reference() -> None:
    reference = (DOCS / "yaml-reference.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", reference, re.MULTILINE))
    keys = _properties(lifecycle_json_schema(), set())
    assert {"format", "categories", "group", "on_breach", "reason_required"} <= keys
    assert sorted(keys - documented) == []


def test_the_schema_accepts_the_bundled_lifecycles_and_the_reference_example() -> None:
    validator = jsonschema_rs.validator_for(lifecycle_json_schema())
    for name in bundled_names():
        definition = load_definition(name)
        assert validator.is_valid(parse_yaml(definition.source, name).data), name
    reference = (DOCS / "yaml-reference.md").read_text(encoding="utf-8")
    complete = reference.split("## A complete example", 1)[1].split("```yaml\n", 1)[1]
    example = parse_yaml(complete.split("```", 1)[0], "example").data
    assert validator.is_valid(example)
    bad = dict(example, states={"Open": {}}, roles={"centre": {"colour": "red"}})
    assert {e.instance_path[0] for e in validator.iter_errors(bad)} == {"roles", "states"}
    assert not validator.is_valid(dict(example, deadlines={"d": {"state": "fixed",
                                                               "after": "P1M"}}))


@pytest.mark.parametrize("name", bundled_names())
def test_diagram_pages_are_current(name: str) -> None:
    page = DOCS / "diagrams" / f"{name}.md"
    assert page.read_text(encoding="utf-8") == markdown_page(load_definition(name)), (
        "stale: run `make docs`")


def test_embedding_example_fits_in_15_lines_and_runs(tmp_path: Path) -> None:
    text = (DOCS / "embedding.md").read_text(encoding="utf-8")
    code = text.split("## In 15 lines", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.splitlines()) <= 15
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=True)
    ticket_id = done.stdout.split()[1]
    assert done.stdout == f"escalated: {ticket_id} to street\nescalated street\n"
    assert (tmp_path / "tickets.sqlite").exists()


def test_every_cli_command_has_help_and_is_documented() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ["validate", "workflows", "schema", "diagram", "replay", "serve", "report",
                    "tickets", "timers", "history", "webhooks dead", "webhooks replay",
                    "webhooks deliver"]:
        assert f"| `{command}" in cli, command
        done = subprocess.run([sys.executable, "-m", "adapters.cli", *command.split(),
                               "--help"], capture_output=True, text=True, check=True)
        assert "Usage: " in done.stdout


def _cli_commands() -> dict[str, object]:
    """Every command of the ``gridwhistle`` app by its full name (``webhooks deliver``)."""
    import typer

    from adapters.cli import app

    found: dict[str, object] = {}

    def walk(command: object, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            found[" ".join(path)] = command
            return
        for name, sub in subcommands.items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def _table_rows(text: str) -> dict[str, str]:
    """docs/cli.md's command table: each row by the command it starts with."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        usage = re.match(r"\| `([^`]+)`", line)
        if usage is None:
            continue
        words = []
        for word in usage.group(1).split():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                break
            words.append(word)
        rows.setdefault(" ".join(words), line)
    return rows


def test_the_cli_table_names_every_option_of_every_command() -> None:
    """Each option in a command's --help is in its row of docs/cli.md (main: migrate --reason,
    check --limit, impact --mapping and --limit were missing). A row that says ``[...]`` and
    links a page (replay) leaves its options to that page's table."""
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    rows = _table_rows(cli)
    missing = []
    for name, command in _cli_commands().items():
        row = rows.get(name)
        if row is None:
            missing.append(f"{name}: no row")
            continue
        where = row
        page = re.search(r"\[\.\.\.\]`.*?\]\(([a-z-]+\.md)\)", row)
        if page is not None:
            where = (DOCS / page.group(1)).read_text(encoding="utf-8")
        for param in getattr(command, "params", []):
            opts = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
            if not opts or not opts[0].startswith("-") or "--help" in opts:
                continue
            if not any(re.search(rf"{re.escape(o)}(?![a-z0-9-])", where) for o in opts):
                missing.append(f"{name} {opts[0]}")
    assert missing == [], f"add them to docs/cli.md's table: {missing}"


def test_the_console_screenshot_script_seeds_the_bundled_lifecycle(tmp_path: Path) -> None:
    """docs/console/screenshots.py must keep working as the bundled lifecycle grows (its
    grid workers report with a photo, as ``requirements:`` asks), or the pictures go stale."""
    import importlib.util
    from datetime import timedelta

    from engine import Engine, VirtualClock

    spec = importlib.util.spec_from_file_location("screenshots", DOCS / "console" /
                                                  "screenshots.py")
    assert spec is not None and spec.loader is not None
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    engine = Engine(tmp_path / "shots.sqlite", clock=VirtualClock(shots.NOW - timedelta(days=2)))
    try:
        engine.deploy("grid_incident")
        shots.seed(engine)
        states = {t: engine.get(t).state for t in ("GW-0601", "GW-0602", "GW-0603",
                                                    "GW-0604", "GW-0605")}
        assert states == {"GW-0601": "on_site", "GW-0602": "dispatched",
                          "GW-0603": "dispatched", "GW-0604": "escalated",
                          "GW-0605": "reported"}
        assert engine.get("GW-0602.1").state == "on_site"
        assert [(a.trigger, a.kind) for a in engine.attachments("GW-0605")] == [("report", "photo")]
    finally:
        engine.stop()
