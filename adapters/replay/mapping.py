"""Replay mappings: how the columns of a service-request export become tickets and events.

A mapping is a small YAML file (see ``adapters/replay/mappings/boston311.yaml``), loaded with
the same guarantees as a lifecycle: safe, strict, every problem with file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from adapters.replay.evidence import EvidenceColumnSpec
from engine import UnknownDefinition, load_yaml_model
from engine.definition.loader import read_text

__all__ = ["EventSpec", "MappingSpec", "VerdictSpec", "bundled_mappings", "load_mapping"]

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EventSpec(_Spec):
    """One event a row produces: fire ``trigger`` as ``role`` at the time in column ``at``.

    ``trigger: report`` creates the ticket (it must come first). ``set`` copies columns into
    ticket fields with the command (field name → column). An empty ``at`` cell means the
    event has not happened (e.g. a request still open): it and the events after it are
    skipped. ``required: true`` makes an empty cell a rejected row instead.
    """

    trigger: str
    at: str
    role: str
    actor: str = "replay"
    set: dict[str, str] = Field(default_factory=dict)
    required: bool = False


class VerdictSpec(_Spec):
    """Where the source system's own on-time verdict is, to compare with the engine's.

    ``field`` is the ticket field it was copied into; a ticket whose value is in ``overdue``
    should be overdue in the engine too, one in ``on_time`` should not. Other values
    (blank, unknown) are not compared.
    """

    field: str
    overdue: Annotated[list[str], BeforeValidator(_one_or_many)]
    on_time: Annotated[list[str], BeforeValidator(_one_or_many)]


class MappingSpec(_Spec):
    """A whole replay mapping file."""

    format: Literal[1]
    name: str
    description: str = ""
    lifecycle: str = "grid_incident"
    id_column: str
    timestamp_format: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    events: list[EventSpec] = Field(min_length=1)
    verdict: VerdictSpec | None = None
    blank_values: list[str] = Field(default_factory=lambda: [""])
    # issue 12: columns that say an event came with a file (adapters/replay/evidence.py)
    evidence: list[EvidenceColumnSpec] = Field(default_factory=list)


def bundled_mappings() -> list[str]:
    """Names of the bundled mappings."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


def load_mapping(name_or_path: str | Path) -> MappingSpec:
    """Load a mapping by bundled name (``boston311``) or path.

    Raises:
        UnknownDefinition: neither a bundled name nor a file.
        DefinitionError: the file has problems (all listed with file:line: field).
    """
    path = Path(name_or_path)
    if not path.is_file():
        path = MAPPINGS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UnknownDefinition(str(name_or_path), bundled_mappings(), kind="mapping")
    return load_yaml_model(read_text(path), MappingSpec, file=str(path))
