"""``python -m adapters.diagrams [FOLDER]``: write every bundled lifecycle's diagram page.

Default folder: ``docs/diagrams``. ``make docs`` runs this and regenerates
``workflows/schema.json``; ``tests/test_docs.py`` fails when either is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adapters.diagrams.render import markdown_page
from engine import bundled_names, load_definition


def main(folder: Path) -> None:
    """Write ``<folder>/<name>.md`` for each bundled lifecycle."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in bundled_names():
        (folder / f"{name}.md").write_text(markdown_page(load_definition(name)),
                                           encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/diagrams"))
