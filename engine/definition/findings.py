"""What the definition checks yield, and the lists of names their messages show.

Shared by :mod:`engine.definition.checks` and the checks of the later sections
(:mod:`~engine.definition.permission_checks`, :mod:`~engine.definition.evidence_checks`,
:mod:`~engine.definition.oversight_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LISTED", "Finding", "known_names", "listed_names"]

Finding = tuple[tuple[str | int, ...], str]
"""``(path, message)``: where in the YAML (keys and list positions) and what is wrong."""

LISTED = 30
"""A message lists at most this many names (a lifecycle of 10,000 states stays readable)."""


def listed_names(names: Iterable[str]) -> str:
    """``a, b, c`` sorted, at most :data:`LISTED` of them, then how many there are in all."""
    ordered = sorted(names)
    shown = ", ".join(ordered[:LISTED])
    return shown + (f", ... ({len(ordered):,} in all)" if len(ordered) > LISTED else "")


def known_names(kind: str, names: Iterable[str]) -> str:
    """``declared states: a, b, c`` — the names an unknown one could have been."""
    return f"declared {kind}: {listed_names(names) or '(none)'}"
