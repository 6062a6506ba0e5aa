"""Evidence references from an export's columns (issue 12): a small hook of the replay.

A mapping's ``evidence`` list names columns that say a file exists (Boston's
``has_submitted_photo`` / ``has_closed_photo`` are ``1`` or ``0``)::

    evidence:
      - {column: has_submitted_photo, trigger: report, kind: photo, tag: before}
      - {column: has_closed_photo, trigger: resolve, kind: photo, tag: after}

A row whose cell is one of ``present`` (default ``1``, ``true``, ``yes``) gives the event of
that trigger a *reference* (``{"ref": "<mapping>:<ticket id>/<column>", "kind", "tag"}``): the
ticket's history records that the city had the photo; the bytes are not in the export, so the
reference counts for no requirement. Used by :mod:`adapters.replay.source` (each planned
event's ``evidence``) and :mod:`adapters.replay.replayer` (checked against the lifecycle,
passed with the command).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EvidenceColumnSpec", "evidence_columns", "evidence_problems",
           "evidence_refs"]


class EvidenceColumnSpec(BaseModel):
    """A column saying that an event came with a file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    column: str
    trigger: str
    kind: Literal["photo", "video", "audio", "document"] = "photo"
    tag: str | None = None
    present: list[str] = Field(default_factory=lambda: ["1", "true", "yes"])


def evidence_columns(specs: Sequence[EvidenceColumnSpec]) -> set[str]:
    """The columns the evidence entries read (for the CSV's column check)."""
    return {s.column for s in specs}


def evidence_refs(specs: Sequence[EvidenceColumnSpec], trigger: str, row: Mapping[str, Any],
                  ticket_id: str, source: str) -> tuple[dict[str, Any], ...]:
    """The references an event of ``trigger`` gets from ``row`` (empty when none)."""
    out = []
    for s in specs:
        if s.trigger != trigger:
            continue
        cell = row.get(s.column)
        if isinstance(cell, str) and cell.strip().lower() in {p.lower() for p in s.present}:
            ref: dict[str, Any] = {"ref": f"{source}:{ticket_id}/{s.column}", "kind": s.kind}
            if s.tag is not None:
                ref["tag"] = s.tag
            out.append(ref)
    return tuple(out)


def evidence_problems(specs: Sequence[EvidenceColumnSpec], triggers: set[str],
                      tags: set[str]) -> list[str]:
    """Entries naming a trigger no event fires or a tag the lifecycle lacks."""
    problems = []
    for i, s in enumerate(specs):
        if s.trigger not in triggers:
            problems.append(f"evidence[{i}].trigger: {s.trigger!r} is not a trigger of the "
                            f"mapping's events; events: {', '.join(sorted(triggers))}")
        if s.tag is not None and s.tag not in tags:
            problems.append(f"evidence[{i}].tag: {s.tag!r} is not an evidence tag of the "
                            f"lifecycle; tags: {', '.join(sorted(tags)) or '(none)'}")
    return problems
