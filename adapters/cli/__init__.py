"""The ``gridwhistle`` command line: one Typer app, a module per group of commands.

Exit codes: 0 success; 1 the input was refused; 2 wrong usage.
"""

from adapters.cli import (  # noqa: F401  (they register commands)
    check,
    db,
    departments,
    diagram,
    keys,
    oversight,
    replay,
    report,
    serve,
    tickets,
    validate,
    versions,
    webhooks,
)
from adapters.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``gridwhistle`` console script."""
    app()
