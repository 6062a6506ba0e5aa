"""``gridwhistle diagram`` and ``gridwhistle schema``: for lifecycle authors."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.app import DEFAULT_REPLAY_DB, app, fail
from engine import GridwhistleError, load_definition


class DiagramFormat(StrEnum):
    """Output formats of ``gridwhistle diagram``."""

    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"
    png = "png"


class Lang(StrEnum):
    """Title languages."""

    both = "both"
    zh = "zh"
    en = "en"


@app.command()
def diagram(
    lifecycle: Annotated[str, typer.Argument(help="Lifecycle: bundled name or YAML path.")],
    fmt: Annotated[DiagramFormat, typer.Option(
        "--format", "-f", help="mermaid (text), dot (Graphviz text), or svg/png (needs "
        "Graphviz's `dot` program).")] = DiagramFormat.mermaid,
    lang: Annotated[Lang, typer.Option(help="Titles in zh, en or both.")] = Lang.both,
    highlight: Annotated[str | None, typer.Option(
        help="Highlight this ticket's current state (read from --db).")] = None,
    state: Annotated[str | None, typer.Option(help="Highlight this state.")] = None,
    db: Annotated[str, typer.Option(help="Database for --highlight: SQLite file or "
                                    "SQLAlchemy URL.")] = DEFAULT_REPLAY_DB,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of standard output (required for png).")
    ] = None,
) -> None:
    """Draw a lifecycle: states, transitions (with roles) and deadlines.

    Mermaid text renders on GitHub and in most Markdown viewers; svg and png need Graphviz.
    Exit code 1 when the lifecycle is invalid, the ticket is unknown, or Graphviz is missing.
    """
    from adapters.diagrams import dot, mermaid, render_with_graphviz

    try:
        definition = load_definition(lifecycle)
        current = state
        if highlight is not None:
            from adapters.cli.app import open_engine

            engine = open_engine(db, events=False, write=False)
            try:
                current = engine.get(highlight).state
            finally:
                engine.stop()
        if fmt is DiagramFormat.mermaid:
            data = mermaid(definition, highlight=current, lang=lang.value).encode("utf-8")
        else:
            text = dot(definition, highlight=current, lang=lang.value)
            data = (text.encode("utf-8") if fmt is DiagramFormat.dot
                    else render_with_graphviz(text, fmt.value))
    except (GridwhistleError, ValueError) as exc:
        fail(str(exc))
        return
    if output is not None:
        _write(output, data, "diagram")
    elif fmt is DiagramFormat.png:
        fail("png is binary: give --output FILE")
    else:
        sys.stdout.write(data.decode("utf-8"))


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here (e.g. workflows/schema.json) instead of standard "
        "output.")] = None,
    check: Annotated[bool, typer.Option(
        help="Exit 1 if --output differs from the generated schema (for CI).")] = False,
) -> None:
    """Print the JSON Schema of the lifecycle format (for editor completion and validation)."""
    from engine.definition.json_schema import lifecycle_json_schema_text

    text = lifecycle_json_schema_text()
    if output is None:
        if check:
            fail("--check compares a file with the schema: give it as --output FILE "
                 "(e.g. --output workflows/schema.json)")
            return
        sys.stdout.write(text)
        return
    if check:
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            fail(f"{output} is stale; run: gridwhistle schema --output {output}")
        return
    _write(output, text.encode("utf-8"), "schema")


def _write(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path``, or fail with one line saying what to change (exit 1)."""
    try:
        path.write_bytes(data)
    except IsADirectoryError:
        fail(f"{path} is a folder: give the {what} file's name (a path inside it)")
    except FileNotFoundError:
        fail(f"cannot write the {what} to {path}: the folder {path.parent} does not exist; "
             "create it first or give another path")
    except OSError as exc:
        fail(f"cannot write the {what} to {path}: {exc.strerror or exc}")
