"""``gridwhistle validate`` and ``gridwhistle workflows``: for lifecycle authors."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.cli.app import app, console, plural
from engine import (
    DefinitionError,
    GridwhistleError,
    UnknownDefinition,
    bundled_names,
    load_definition,
)


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(help="Lifecycle YAML files or bundled names.")],
) -> None:
    """Check lifecycle files; print every problem as file:line: field: message."""
    bad = 0
    for name in files:
        try:
            definition = load_definition(name)
        except DefinitionError as exc:
            bad += 1
            for problem in exc.problems:
                typer.echo(str(problem))  # one unwrapped line each, for editors and grep
        except UnknownDefinition as exc:  # the message names it
            bad += 1
            typer.echo(str(exc))
        except GridwhistleError as exc:
            bad += 1
            typer.echo(f"{name}: {exc}")
        else:
            spec = definition.spec
            typer.echo(f"{definition.file}: ok — {spec.name}: "
                       f"{plural(len(spec.states), 'state')}, "
                       f"{plural(len(spec.transitions), 'transition')}, "
                       f"{plural(len(spec.deadlines), 'deadline')}")
    if bad:
        raise typer.Exit(1)


@app.command("workflows")
def list_workflows() -> None:
    """List the bundled lifecycles."""
    for name in bundled_names():
        console.print(name)


