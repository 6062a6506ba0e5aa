"""Replay mappings: how the columns of a service-request export become tickets and events.

A mapping is a small YAML file (see ``adapters/replay/mappings/boston311.yaml``), loaded with
the same guarantees as a lifecycle: safe YAML (``engine/definition/yaml_source.py``), strict
keys and types, then named checks; every problem with file, line and field path. The loaded
:class:`MappingSpec` remembers where each of its nodes was, so that later checks against the
lifecycle (:func:`adapters.replay.replayer.check_mapping`) name the line too.

The format, key by key, is in ``docs/yaml-reference.md`` ("Replay mapping format").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from adapters.replay.evidence import EvidenceColumnSpec
from engine import DefinitionError, UnknownDefinition
from engine.definition.loader import read_text, validate_document
from engine.definition.yaml_source import ParsedDocument, parse_yaml

__all__ = [
    "ColumnSpec",
    "EventSpec",
    "MappingSpec",
    "TriggerMap",
    "VerdictSpec",
    "bundled_mappings",
    "load_mapping",
]

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}$"


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


OneOrMany = Annotated[list[str], BeforeValidator(_one_or_many)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ColumnSpec(_Spec):
    """How to read the cells of one column (``columns: {NAME: {...}}``).

    Attributes:
        date: the column holds dates (``2011-05-24`` or ``2011-05-24 00:00:00``), each meaning
            the ``start`` (00:00) or the ``end`` (the last microsecond) of that local day in
            the source zone. A deadline "due on that day" wants ``end``; an inspection done
            "on that day" wants ``start``. Events at a date-only stamp never make their row
            go backwards in time within that day (see ``docs/replay.md``).
        midnight_only: with ``date``: only stamps at exactly 00:00:00 are dates; others are
            instants (for columns that mix both).
        format: a ``strptime`` format for this column (default: the mapping's
            ``timestamp_format``).
        blank: cell texts meaning "empty" in this column, besides the mapping's
            ``blank_values``.
        sentinel_dates: dates (``YYYY-MM-DD``) that stand for "no date" in this time column,
            e.g. ``1900-01-01``: any stamp on such a (local) day is read as an empty cell.
    """

    date: Literal["start", "end"] | None = None
    midnight_only: bool = False
    format: str | None = None
    blank: OneOrMany = Field(default_factory=list)
    sentinel_dates: Annotated[list[Annotated[str, Field(pattern=_DATE_TEXT)]],
                              BeforeValidator(_one_or_many)] = Field(default_factory=list)


class TriggerMap(_Spec):
    """A trigger chosen by the value of a column (``trigger_from: {column: STATUS, map: ...}``).

    A value not in ``map`` fires ``default``; without a default the event is skipped for that
    row (as if its condition did not hold).
    """

    column: str
    map: dict[str, str] = Field(min_length=1)
    default: str | None = None


class EventSpec(_Spec):
    """One event a row produces: fire ``trigger`` as ``role`` at the time in column ``at``.

    ``trigger: report`` creates the ticket (it must come first). Instead of ``trigger``,
    ``trigger_from`` chooses the trigger by a column's value (a :class:`TriggerMap`). ``set``
    copies columns into ticket fields with the command (field name → column). ``when`` /
    ``unless``: the event happens only on rows whose columns hold (``when``) or do not hold
    (``unless``) one of the listed values (``{STATUS: [CANCEL, Cancel]}``; every column
    listed must match); an event whose condition fails is skipped and the row goes on with
    its next event.

    ``if_empty`` says what an empty ``at`` cell means: ``end`` (default: the event has not
    happened yet, e.g. a request still open: it and every later event of the row are
    skipped), ``skip`` (only this event is skipped) or ``reject`` (the row is rejected).
    ``required: true`` is the older spelling of ``if_empty: reject``.
    """

    trigger: str | None = None
    trigger_from: TriggerMap | None = None
    at: str
    role: str
    actor: str = "replay"
    set: dict[str, str] = Field(default_factory=dict)
    required: bool = False
    if_empty: Literal["end", "skip", "reject"] | None = None
    when: dict[str, OneOrMany] = Field(default_factory=dict)
    unless: dict[str, OneOrMany] = Field(default_factory=dict)

    @property
    def empty_means(self) -> Literal["end", "skip", "reject"]:
        """What an empty ``at`` cell means (``if_empty``, or ``reject`` when ``required``)."""
        return "reject" if self.required else (self.if_empty or "end")

    def triggers(self) -> list[str]:
        """Every trigger this event can fire."""
        if self.trigger_from is None:
            return [self.trigger] if self.trigger else []
        out = list(dict.fromkeys(self.trigger_from.map.values()))
        default = self.trigger_from.default
        if default is not None and default not in out:
            out.append(default)
        return out


class VerdictSpec(_Spec):
    """The source system's on-time verdict, read (``field``) or computed (``deadline``).

    Read: ``field`` is the ticket field the source's verdict was copied into; a ticket whose
    value is in ``overdue`` should be overdue in the engine too, one in ``on_time`` should
    not; other values (blank, unknown) are not compared.

    Computed, for sources without a verdict column: ``deadline`` is the ticket field (a
    datetime) holding the deadline and ``ended_by`` the triggers whose event ends the
    request's clock (its resolution or cancellation). A row is overdue when that event comes
    after the deadline; a row without it (still open) when the deadline is before the end of
    the replay (``--until``, or the last event). Tie rule: ended exactly at the deadline is on
    time (``ended <= deadline``), as the engine's deadlines. A row without a deadline is on
    time.
    """

    field: str | None = None
    overdue: OneOrMany = Field(default_factory=list)
    on_time: OneOrMany = Field(default_factory=list)
    deadline: str | None = None
    ended_by: OneOrMany = Field(default_factory=list)

    @property
    def computed(self) -> bool:
        """True for a computed verdict (``deadline``), False for a read one (``field``)."""
        return self.deadline is not None


class MappingSpec(_Spec):
    """A whole replay mapping file (see the module docstring and ``docs/yaml-reference.md``)."""

    format: Literal[1]
    name: str
    description: str = ""
    lifecycle: str = "grid_incident"
    sample: str | None = None
    id_column: str
    timezone: str | None = None
    timestamp_format: str | None = None
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    events: list[EventSpec] = Field(min_length=1)
    verdict: VerdictSpec | None = None
    blank_values: list[str] = Field(default_factory=lambda: [""])
    # issue 12: columns that say an event came with a file (adapters/replay/evidence.py)
    evidence: list[EvidenceColumnSpec] = Field(default_factory=list)

    _file: str = PrivateAttr(default="<string>")
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    def where(self, *path: str | int) -> str:
        """``file:line`` of the node at ``path`` (or its nearest ancestor), for messages."""
        key = tuple(path)
        while key and key not in self._lines:
            key = key[:-1]
        line = self._lines.get(key, 0)
        return f"{self._file}:{line}" if line else self._file

    def zone(self, override: tzinfo | None = None) -> tzinfo:
        """The source zone: ``override`` (``--source-tz``), else ``timezone``, else UTC."""
        if override is not None:
            return override
        return ZoneInfo(self.timezone) if self.timezone else UTC

    def column(self, name: str) -> ColumnSpec:
        """The settings of column ``name`` (defaults when the mapping gives none)."""
        return self.columns.get(name) or _PLAIN

    def named_columns(self) -> set[str]:
        """Every column the mapping reads or sets up (``columns:`` included)."""
        return set(self.column_uses())

    def column_uses(self) -> dict[str, list[tuple[Where, str]]]:
        """Where the mapping names each column: ``{column: [(path, words), ...]}``.

        ``path`` is the node's path in the file (for :meth:`where`) and ``words`` the dotted
        field with the column (``events[1].at: closed``), for messages about columns a file
        lacks.
        """
        uses: dict[str, list[tuple[Where, str]]] = {}

        def use(column: str, *path: str | int, key: bool = False) -> None:
            words = _dotted(path) if key else f"{_dotted(path)}: {column}"
            uses.setdefault(column, []).append((path, words))

        use(self.id_column, "id_column")
        for column in self.columns:
            use(column, "columns", column, key=True)
        for name, column in self.fields.items():
            use(column, "fields", name)
        for i, e in enumerate(self.events):
            use(e.at, "events", i, "at")
            for name, column in e.set.items():
                use(column, "events", i, "set", name)
            for cond in ("when", "unless"):
                for column in getattr(e, cond):
                    use(column, "events", i, cond, column, key=True)
            if e.trigger_from is not None:
                use(e.trigger_from.column, "events", i, "trigger_from", "column")
        for i, s in enumerate(self.evidence):
            use(s.column, "evidence", i, "column")
        return uses


_PLAIN = ColumnSpec()

Where = tuple[str | int, ...]


def _dotted(path: Where) -> str:
    """``("events", 1, "at")`` as ``events[1].at``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def bundled_mappings() -> list[str]:
    """Names of the bundled mappings."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


def load_mapping(name_or_path: str | Path) -> MappingSpec:
    """Load a mapping by bundled name (``boston311``) or path.

    A relative ``lifecycle`` or ``sample`` path is taken from the mapping file's folder when a
    file is there (so a bundled mapping can name a bundled lifecycle and sample).

    Raises:
        UnknownDefinition: neither a bundled name nor a file.
        DefinitionError: the file has problems (all listed with file:line: field; its
            ``kind`` is ``mapping`` and its message names the mapping file).
        FileNotReadable: the file exists but cannot be read (also an OSError).
    """
    path = Path(name_or_path)
    if not path.is_file():
        path = MAPPINGS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UnknownDefinition(str(name_or_path), bundled_mappings(), kind="mapping")
    try:
        # a UTF-8 byte-order mark is allowed
        doc = parse_yaml(read_text(path, what="mapping file"), str(path))
        spec = validate_document(doc, MappingSpec)
    except DefinitionError as exc:  # said of a lifecycle ("in definition"): name the mapping
        raise DefinitionError(exc.problems, kind="mapping") from None
    problems = [doc.problem(where, message) for where, message in _checks(spec)]
    if problems:
        raise DefinitionError(problems, kind="mapping")
    updates: dict[str, str] = {}
    for key in ("lifecycle", "sample"):
        value = getattr(spec, key)
        if value and value.endswith((".yaml", ".yml", ".csv", ".json")):
            beside = path.parent / value
            if not Path(value).is_absolute() and beside.is_file():
                updates[key] = str(beside.resolve())
    if updates:
        spec = spec.model_copy(update=updates)
    _remember(spec, doc)
    return spec


def _remember(spec: MappingSpec, doc: ParsedDocument) -> None:
    spec._file = doc.file
    spec._lines = dict(doc.lines)


def _checks(spec: MappingSpec) -> Iterator[tuple[Where, str]]:
    """The mapping's own rules, beyond keys and types (each: where, what to write instead)."""
    if spec.timezone is not None:
        try:
            ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            yield ("timezone",), (f"unknown time zone {spec.timezone!r}; write an IANA name "
                                  "such as America/Chicago or Asia/Shanghai")
    first = spec.events[0]
    if first.trigger != "report":
        yield ("events", 0, "trigger"), ("the first event must be the report "
                                         "(trigger: report), which creates the ticket")
    if first.when or first.unless:
        yield ("events", 0), "the report event cannot have when / unless conditions"
    for i, event in enumerate(spec.events):
        if (event.trigger is None) == (event.trigger_from is None):
            yield ("events", i), ("give trigger (a trigger of the lifecycle) or trigger_from "
                                  "(one chosen by a column's value), one of the two")
        if event.required and event.if_empty not in (None, "reject"):
            yield ("events", i, "if_empty"), (f"required: true means if_empty: reject; "
                                              f"remove one of them (got {event.if_empty!r})")
        if i and event.trigger == "report":
            yield ("events", i, "trigger"), "only the first event can be the report"
        if event.trigger_from is not None and "report" in event.triggers():
            yield ("events", i, "trigger_from"), "a value map cannot choose the report"
        for key in ("when", "unless"):
            for column, values in getattr(event, key).items():
                if not values:
                    yield ("events", i, key, column), "list at least one value"
    for name, column in spec.columns.items():
        if column.midnight_only and column.date is None:
            yield ("columns", name, "midnight_only"), ("midnight_only needs date: start or "
                                                       "date: end")
    if spec.verdict is not None:
        v = spec.verdict
        if v.field is not None and v.deadline is not None:
            yield ("verdict",), ("give either field (the source's own verdict) or deadline "
                                 "(a computed verdict), not both")
        elif v.field is not None:
            if not v.overdue or not v.on_time:
                yield ("verdict",), "a verdict read from a field needs overdue and on_time"
            if v.ended_by:
                yield ("verdict", "ended_by"), "ended_by belongs to a computed verdict (deadline)"
        elif v.deadline is not None:
            if not v.ended_by:
                yield ("verdict",), ("a computed verdict needs ended_by: the triggers that end "
                                     "the request (e.g. [resolve, cancel])")
            if v.overdue or v.on_time:
                yield ("verdict",), "overdue / on_time belong to a verdict read from a field"
            elif v.deadline not in spec.fields:
                yield ("verdict", "deadline"), (f"{v.deadline!r} is not one of the mapping's "
                                                "fields; map the deadline column to a field "
                                                "first")
        else:
            yield ("verdict",), ("give field (the source's own verdict) or deadline "
                                 "(a computed verdict)")
