"""``gridwhistle migrate`` and ``gridwhistle impact``: moving tickets between lifecycle versions."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.app import (
    DEFAULT_REPLAY_DB,
    app,
    console,
    fail,
    file_error,
    open_engine,
    parse_instant,
    plural,
)
from engine import (
    Definition,
    Engine,
    GridwhistleError,
    SystemClock,
    TicketImpact,
    VirtualClock,
    load_definition,
)

DbOption = Annotated[str, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")]


def _state_map(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise typer.BadParameter(f"{pair!r}: write OLD=NEW", param_hint="--map")
        out[old] = new
    return out


@app.command()
def migrate(
    workflow: Annotated[str, typer.Option(help="The new lifecycle: bundled name or YAML path "
                                          "(deployed as a new version if it changed).")],
    db: DbOption = DEFAULT_REPLAY_DB,
    ticket: Annotated[list[str] | None, typer.Option(help="A ticket to move (repeat); "
                                                     "default: every running ticket on "
                                                     "another version.")] = None,
    state_map: Annotated[list[str] | None, typer.Option("--map", help="OLD=NEW state "
                                                        "rename (repeat).")] = None,
    reason: Annotated[str, typer.Option(help="Kept in each ticket's history.")] = "",
) -> None:
    """Move tickets to a new lifecycle version, recomputing their deadlines."""
    mapping = _state_map(state_map or [])
    try:
        definition = load_definition(workflow)
        engine = open_engine(db, clock=SystemClock())
        try:  # deployed with the move, in its transaction: a refused move deploys nothing
            moved = engine.migrate(definition, ticket or None, state_map=mapping,
                                   reason=reason or None)
            version = next(v for v in engine.versions() if v.digest == definition.digest
                           and v.name == definition.name)
        finally:
            engine.stop()
    except GridwhistleError as exc:
        fail(str(exc))
        return
    typer.echo(f"moved {plural(len(moved), 'ticket')} to {version.name} v{version.version}")
    for t in moved:
        typer.echo(f"  {t.id}: {t.state} at {t.level}")


def _rows(impacts: list[TicketImpact]) -> dict[str, object]:
    changed = [i for i in impacts if i.changed]
    return {
        "tickets": len(impacts),
        "changed": len(changed),
        "state_changes": sum(i.state[0] != i.state[1] for i in impacts),
        "deadlines_moved": sum(bool(i.deadlines) for i in impacts),
        "would_breach": sum(bool(i.new_breaches) for i in impacts),
        "would_no_longer_breach": sum(bool(i.gone_breaches) for i in impacts),
        "refused": sum(i.refused is not None for i in impacts),
        "not_replayed": sum(i.not_replayed is not None for i in impacts),
        "details": [
            {"ticket": i.ticket_id, "state": list(i.state), "level": list(i.level),
             "deadlines": {k: [v.isoformat() if v else None for v in pair]
                           for k, pair in i.deadlines.items()},
             "new_breaches": [list(b) for b in i.new_breaches],
             "gone_breaches": [list(b) for b in i.gone_breaches], "refused": i.refused,
             "not_replayed": i.not_replayed}
            for i in changed
        ],
    }


@app.command()
def impact(
    workflow: Annotated[str, typer.Option(help="The new lifecycle: bundled name or YAML path.")],
    db: DbOption = DEFAULT_REPLAY_DB,
    data: Annotated[Path | None, typer.Option(help="Replay this CSV instead of the stored "
                                              "history (with --mapping).")] = None,
    mapping: Annotated[str, typer.Option(help="Mapping for --data.")] = "boston311",
    until: Annotated[str | None, typer.Option(help="Run the clocks to this ISO 8601 instant "
                                              "(stored history: default now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Rows of changed tickets to print.")] = 20,
    encoding: Annotated[str, typer.Option(
        help="Text encoding of --data: utf-8 (a byte-order mark is allowed) or any codec "
        "Python knows, e.g. gb18030.")] = "utf-8",
) -> None:
    """Replay history (or a data file) on a new lifecycle version and report what changes.

    Lists which tickets would end in another state, which pending deadlines move, and which
    deadlines would (or would no longer) be breached. Nothing is written to --db.
    """
    stop = parse_instant(until, UTC, option="--until") if until else None
    if data is not None:
        from adapters.replay.encoding import UnknownEncoding, text_codec

        try:
            text_codec(encoding)
        except UnknownEncoding as exc:
            raise typer.BadParameter(str(exc), param_hint="--encoding") from None
    try:
        new = load_definition(workflow)
        if data is None:
            engine = open_engine(db, events=False, clock=SystemClock(), write=False)
            try:
                impacts = engine.impact(new, until=stop)
            finally:
                engine.stop()
        else:
            impacts = _impact_of_data(new, data, mapping, stop, encoding)
    except (GridwhistleError, ValueError) as exc:
        fail(str(exc))
        return
    except OSError as exc:  # --data missing, a folder, unreadable (or the temporary folder)
        fail(_unreadable(exc, data))
        return
    report = _rows(impacts)
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return
    for key in ("tickets", "changed", "state_changes", "deadlines_moved", "would_breach",
                "would_no_longer_breach", "refused", "not_replayed"):
        typer.echo(f"{key}: {report[key]}")
    table = Table("ticket", "state now → new", "deadlines moved", "would breach", "refused")
    for i in [i for i in impacts if i.changed][:limit]:
        table.add_row(i.ticket_id, f"{i.state[0]} → {i.state[1]}",
                      ", ".join(i.deadlines), ", ".join(b[0] for b in i.new_breaches),
                      "yes" if i.refused else "not replayed" if i.not_replayed else "")
    console.print(table)
    if report["not_replayed"]:
        typer.echo(f"{report['not_replayed']} ticket(s) could not be replayed on their own "
                   "version (see --json, not_replayed): their comparison is incomplete")


def _unreadable(exc: OSError, data: Path | None) -> str:
    """One line for a file ``impact`` cannot read: ``--data`` by that name, else the file."""
    named = exc.filename is not None and data is not None and Path(exc.filename) == data
    if named:
        return file_error(exc, "data file", make="give an existing CSV export with --data")
    return file_error(exc, "file")


def _impact_of_data(new: Definition, data: Path, mapping: str, until: datetime | None,
                    encoding: str) -> list[TicketImpact]:
    from adapters.replay import load_mapping
    from adapters.replay import replay as run_replay

    spec = load_mapping(mapping)
    with tempfile.TemporaryDirectory(prefix="gridwhistle-impact-") as folder:
        engines = []
        try:
            for name, lifecycle in (("current", spec.lifecycle), ("new", new)):
                eng = Engine(Path(folder) / f"{name}.sqlite",
                             clock=VirtualClock(datetime(1970, 1, 1, tzinfo=UTC)))
                engines.append(eng)
                target = lifecycle if isinstance(lifecycle, str) else _write(folder, lifecycle)
                run_replay(eng, data, spec, lifecycle=target, until=until,
                           encoding=encoding)
            return engines[0].compare(engines[1])
        finally:
            for eng in engines:
                eng.stop()


def _write(folder: str, definition: Definition) -> str:
    path = Path(folder) / "new.yaml"
    path.write_text(definition.source, encoding="utf-8")
    return str(path)
