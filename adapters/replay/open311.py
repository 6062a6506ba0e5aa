"""Replaying Open311 GeoReport v2 requests, with Chicago's notes or without, through work orders.

The input is Open311 GeoReport v2 ``GET requests`` answers (:func:`iter_requests`): one JSON
list of requests, several pages (a list of lists, pages one after another in one file, JSON
Lines, or a folder of page files taken in the order of the numbers in their names). Each is
read as a stream, a request at a time: a ``.json`` file by ``ijson`` (yajl's C parser), so
that memory does not grow with the file (docs/decisions.md).

A request with a timeline of ``notes`` (Chicago's extension) is read as:

* the first note (``submitted`` or ``opened``): the ticket is reported (category =
  ``service_name``, department = ``agency_responsible``, ``target_at`` =
  ``expected_datetime`` when given);
* ``opened``: the centre dispatches it, and the responsible agency gets the *lead* work
  order (accepted at once: it is the agency's own request);
* ``follow_on_created`` naming another agency: a *co-handling* work order to that agency
  (accepted at once), whose id is ``<request>/<follow-on request>``;
* ``follow_on_closed``: that work order is finished (a follow-on whose creation note is
  missing from the export is issued and finished then);
* ``closed``: the lead work order is finished, then the centre closes the ticket. The ticket
  is resolved by the resolution rule ``all`` — after its children — so a request the city
  closed while a follow-on was still open stays open in the engine: the report lists it
  under ``kept_open`` (what the city did and the lifecycle's rule disagree), not as a
  rejected row.

A request without notes (plain GeoReport v2) is reported and dispatched (lead work order)
at ``requested_datetime``; one whose ``status`` is ``closed`` is closed at
``updated_datetime`` (the standard's only time of the last change).

``activity`` notes change nothing and are not replayed. Requests are put in order of their
report (:mod:`adapters.replay.sorting`) and their events applied in time order on the
virtual clock (:class:`~adapters.replay.stream.Timeline`); deadlines (the tickets' from
``target_at``, the work orders' own from ``work_order.yaml``) fire on the way. Agency names
are kept as department names (they are not declared in the lifecycle). With
``expected_datetime``, the city's deadline, the engine's verdicts are compared with the ones
computed from it (closed, or still open at the end, after the deadline: overdue).
"""

from __future__ import annotations

import codecs
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import ijson

from adapters.replay.encoding import (
    DEFAULT_ENCODING,
    ChunkDecoder,
    UndecodableData,
    text_codec,
    text_lines,
    undecodable,
)
from adapters.replay.progress import ReplayProgress
from adapters.replay.replayer import ReplayOutcome, compare_verdicts, refusal_reason
from adapters.replay.scratch import Scratch
from adapters.replay.sorting import sort_plans
from adapters.replay.source import Rejection
from adapters.replay.stream import Timeline
from engine import (
    Actor,
    CommandRefused,
    ConfigurationError,
    Departments,
    Engine,
    GridwhistleError,
    Lifecycle,
    UnknownDefinition,
    load_definition,
)
from engine.definition.yaml_source import parse_yaml

__all__ = ["CHICAGO_SAMPLE", "REPORT_FIELDS", "DumpError", "KeptOpen", "Open311Event",
           "Open311Outcome", "Open311Plan", "UndecodableDump", "check_dump", "check_lifecycle",
           "iter_requests", "plan_request", "read_json", "replay_open311"]

CHICAGO_SAMPLE = Path(__file__).resolve().parent / "data" / "chicago311_open311_with_notes.json"
"""The bundled Chicago Open311 requests with notes (see ``data/PROVENANCE.md``)."""

BATCH_SIZE = 200
CENTRE = Actor("chicago311", "centre")
REPLAYED = "replayed from source data"


@dataclass(frozen=True)
class Open311Event:
    """One event of a request's timeline, as the replay applies it.

    Attributes:
        at: when (aware UTC); request: the request's id; row: its position in the input
        (1-based); kind: ``report``, ``dispatch``, ``follow_on_created``,
        ``follow_on_closed`` or ``close``; agency: the agency concerned; follow_on: the
        follow-on request's id; fields: the ticket fields a report sets.
    """

    at: datetime
    request: str
    row: int
    kind: str
    agency: str
    follow_on: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Open311Plan:
    """A request's events in the order they are applied, and its deadline (or None)."""

    row: int
    ticket_id: str
    events: list[Open311Event]
    deadline: datetime | None = None


@dataclass(frozen=True)
class KeptOpen:
    """A request the city closed while work orders were still open; the engine keeps it open.

    Attributes:
        row, request: where it is; reason: the refusal; open_orders: the work orders still
        open then (``"<id> (<department>)"``).
    """

    row: int
    request: str
    reason: str
    open_orders: tuple[str, ...]


@dataclass
class Open311Outcome(ReplayOutcome):
    """What an Open311 replay did.

    A replay outcome, the ids of the requests replayed (sorted), and the requests kept open by
    the lifecycle's resolution rule.
    """

    requests: list[str] = field(default_factory=list)
    kept_open: list[KeptOpen] = field(default_factory=list)


REPORT_FIELDS = {"category": ("string", "service_name"),
                 "department": ("string", "agency_responsible"),
                 "channel": ("string", "extended_attributes.channel"),
                 "target_at": ("datetime", "expected_datetime")}
"""The ticket fields an Open311 report sets: their type and the request's key they come from."""

DEPARTMENT = "department"
"""The role an agency acts in on its work orders."""


def check_lifecycle(lifecycle: Lifecycle, work_orders: Lifecycle | None) -> None:
    """Check that a lifecycle (and its work orders') has what an Open311 replay fires.

    Like :func:`~adapters.replay.replayer.check_mapping` for a CSV mapping: a lifecycle that
    lacks them would have every request refused (the replay reports, dispatches and closes
    tickets as role ``centre``, sets :data:`REPORT_FIELDS`, and gives each agency a work
    order it accepts and finishes as role ``department``).

    Args:
        lifecycle: the tickets' lifecycle.
        work_orders: its routing's work-order lifecycle, when it is known (None: not checked
            here; the replay meets it when it deploys it).

    Raises:
        ConfigurationError: listing everything missing, each with the lifecycle file's line.
    """
    problems: list[str] = []
    _tickets_problems(lifecycle, problems)
    if work_orders is not None:
        _work_order_problems(work_orders, problems)
    if problems:
        spec = lifecycle.spec
        raise ConfigurationError(
            f"lifecycle {spec.name!r} does not have what an Open311 replay needs (it reports, "
            f"dispatches and closes as role {CENTRE.role!r} and gives each agency a work "
            f"order); give one that does with --workflow (lifecycle= in Python), e.g. the "
            f"bundled grid_incident:\n  " + "\n  ".join(problems))


def _locator(lifecycle: Lifecycle) -> Callable[..., str]:
    """``where(*path)``: ``file:line`` of a node of the lifecycle's YAML (for messages)."""
    definition = lifecycle.definition
    doc = parse_yaml(definition.source, definition.file)
    return lambda *path: f"{definition.file}:{doc.line_of(path)}"


def _fires(spec: Any, trigger: str, role: str, source: str | None = None) -> bool:
    return any(t.trigger == trigger and role in t.roles
               and (source is None or source in t.source) for t in spec.transitions)


def _tickets_problems(lifecycle: Lifecycle, problems: list[str]) -> None:
    spec = lifecycle.spec
    where = _locator(lifecycle)
    centre = CENTRE.role
    if centre not in spec.roles:
        problems.append(f"{where('roles')}: roles: no role {centre!r}")
    elif centre not in spec.report.roles:
        problems.append(f"{where('report', 'roles')}: report.roles: role {centre!r} may not "
                        "report")
    for name, (kind, key) in REPORT_FIELDS.items():
        declared = spec.fields.get(name)
        if declared is None:
            problems.append(f"{where('fields')}: fields: no field {name!r} (a {kind}, from "
                            f"the request's {key})")
        elif declared.type != kind:
            problems.append(f"{where('fields', name)}: fields.{name}: a {declared.type}, but "
                            f"the replay sets a {kind} (the request's {key})")
    for name, declared in spec.fields.items():
        if declared.required and name not in REPORT_FIELDS:
            problems.append(f"{where('fields', name)}: fields.{name}: required, but an "
                            "Open311 request does not give it")
    if centre in spec.roles:
        settable = [n for n in REPORT_FIELDS if n in spec.fields]
        for name in lifecycle.permissions.refused("report", centre, settable):
            problems.append(f"{where('field_permissions', name)}: field_permissions.{name}: "
                            f"role {centre!r} may not set it with 'report'")
    if not _fires(spec, "dispatch", centre, spec.initial):
        problems.append(f"{where('transitions')}: transitions: no 'dispatch' from "
                        f"{spec.initial!r} (the initial state) for role {centre!r}")
    if not _fires(spec, "close", centre):
        problems.append(f"{where('transitions')}: transitions: no 'close' for role "
                        f"{centre!r}")
    if spec.routing is None:
        problems.append(f"{where()}: routing: none: the replay gives each agency a work "
                        "order, so the lifecycle needs departments and a routing table")


def _work_order_problems(lifecycle: Lifecycle, problems: list[str]) -> None:
    spec = lifecycle.spec
    where = _locator(lifecycle)
    if CENTRE.role not in spec.report.roles:
        problems.append(f"{where('report', 'roles')}: report.roles: role {CENTRE.role!r} may "
                        f"not issue work orders of {spec.name!r}")
    if DEPARTMENT not in spec.roles:
        problems.append(f"{where('roles')}: roles: {spec.name!r} has no role {DEPARTMENT!r}")
    for trigger in ("accept", "finish"):
        if not _fires(spec, trigger, DEPARTMENT):
            problems.append(f"{where('transitions')}: transitions: {spec.name!r} has no "
                            f"{trigger!r} for role {DEPARTMENT!r}")


def preflight_lifecycle(lifecycle: str) -> None:
    """Load ``lifecycle`` (a name or a path) and check it suits an Open311 replay.

    Its work-order lifecycle is checked too when it is bundled (a name the store alone knows
    is checked by the replay).

    Raises:
        UnknownDefinition, DefinitionError: the lifecycle cannot be loaded.
        ConfigurationError: it lacks what the replay needs (:func:`check_lifecycle`).
    """
    compiled = Lifecycle(load_definition(lifecycle), strict=False)
    routing = compiled.spec.routing
    orders = None
    if routing is not None:
        try:
            orders = Lifecycle(load_definition(routing.work_orders), strict=False)
        except UnknownDefinition:
            orders = None
    check_lifecycle(compiled, orders)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# -- reading dumps ----------------------------------------------------------------------------

_NUMBERS = re.compile(r"(\d+)")
_PAGE_FILES = (".json", ".jsonl", ".ndjson")


def _natural(path: Path) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in _NUMBERS.split(path.name)]


class DumpError(GridwhistleError, ValueError):
    """An Open311 dump cannot be read: it is not JSON, or a value in it is not a request.

    The message names the file (with the line of a JSON Lines file, or the bytes and lines
    where a ``.json`` file stops being JSON) and what is wrong; fix or export the file again.
    A ``ValueError`` too, as the replay's other input errors are.
    """


class UndecodableDump(UndecodableData, DumpError):
    """A file of an Open311 dump has bytes that are not text in its encoding.

    An :class:`~adapters.replay.encoding.UndecodableData` (file, line, byte offset, what to
    do) and a :class:`DumpError`, as the dump's other faults are.
    """


def _page_files(path: Path) -> list[Path]:
    """The files of a dump: the file itself, or a folder's page files in natural order.

    Raises:
        DumpError: a folder without page files.
    """
    if not path.is_dir():
        return [path]
    files = sorted((p for p in path.iterdir() if p.suffix in _PAGE_FILES), key=_natural)
    if not files:
        raise DumpError(f"{path}: no .json, .jsonl or .ndjson page files in this folder")
    return files


def check_dump(path: Path, encoding: str = DEFAULT_ENCODING) -> int:
    """Check, before anything is written, that the whole dump reads as the replay reads it.

    A pass of its own over every file of the dump, through :func:`iter_requests` itself: each
    file is decoded (in ``encoding``) and parsed as a stream, one request at a time, so memory
    stays flat whatever the size of the dump, and every fault the replay's reading would meet
    is met here first: a byte that is not text, JSON that is malformed or cut short, a value
    that is not a request. (Whether each request can be replayed is the replay's to say: a
    request it cannot plan is a rejected row, not a fault of the dump.)

    Returns:
        The number of requests in the dump.

    Raises:
        UndecodableDump: a byte that is not text in ``encoding`` (file, line, byte offset).
        DumpError: the text is not JSON (file, and the line of a JSON Lines file or the bytes
            and lines where a ``.json`` file stops being JSON), a value is not a request or a
            page of them, or a folder has no page files.
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: a file cannot be read.
    """
    text_codec(encoding)
    return sum(1 for _ in iter_requests(path, encoding))


def iter_requests(path: Path, encoding: str = DEFAULT_ENCODING) -> Iterator[dict[str, Any]]:
    """Every request of a GeoReport v2 dump, in input order (see the module docstring).

    Streams: one request is held at a time, whatever the size of the file.

    Args:
        path: a ``.json`` file (one list, a list of pages, an object holding them under
            ``requests`` / ``service_requests``, or several JSON values one after another;
            read by :func:`read_json`), a ``.jsonl`` / ``.ndjson`` file (one request or one
            page per line, read line by line), or a folder of such files (pages, in the
            natural order of their names: ``page-2`` before ``page-10``).
        encoding: the files' text encoding: ``utf-8`` (the default; a byte-order mark is
            allowed) or any codec Python knows (``gb18030``, ``utf-16``).

    Raises:
        DumpError: the text is not JSON, or a value is not a request, a page of them, or an
            object holding them under ``requests`` / ``service_requests``; an
            :class:`UndecodableDump`: a byte is not text in ``encoding``.
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: a file cannot be read.
    """
    codec = text_codec(encoding)
    if path.is_dir():
        for file in _page_files(path):
            yield from iter_requests(file, encoding)
        return
    if path.suffix in (".jsonl", ".ndjson"):
        try:
            with path.open(encoding=codec) as handle:  # a byte-order mark is allowed
                for number, line in enumerate(text_lines(handle), start=1):
                    if line.strip():
                        yield from _requests_in(_decode(line, path, number), path)
        except UnicodeError as exc:  # a UnicodeDecodeError, mostly
            raise undecodable(path, encoding, exc, error=UndecodableDump) from None
        return
    with path.open("rb") as handle:
        yield from read_json(handle, path, encoding)


_CHUNK = 16 * 1024
"""Bytes read at a time from a ``.json`` file (also how closely a syntax error is placed)."""

_FIX_JSON = "fix the JSON there, or export the file again"
"""What a message about malformed JSON tells the reader to do."""

_SHAPE = ("give Open311 GeoReport v2 `GET requests` answers: a list of request objects, pages "
          "of them, or one request or page a line (.jsonl)")
"""What a message about a value that is not a request tells the reader to do."""

_PAGE_KEYS = frozenset({"service_requests", "requests"})
"""The keys under which an object holds a page of requests."""

Events = Iterator[tuple[str, Any]]
"""ijson's ``basic_parse`` events: ``(event, value)``."""


def read_json(handle: IO[bytes], name: Path | str, encoding: str = DEFAULT_ENCODING
              ) -> Iterator[dict[str, Any]]:
    """Every request in a JSON text, read from ``handle`` as a stream (UTF-8 by default).

    A UTF-8 byte-order mark at the start of the text is skipped (RFC 8259, section 8.1, lets
    a parser ignore it; Excel and many government systems write one); the bytes and lines
    that messages name still count from the start of the file. Each chunk is decoded before
    the parser sees it (and, in another ``encoding``, handed to it as UTF-8), so a byte that
    is not text is an :class:`UndecodableDump` naming its line and offset.

    The text is one list of requests, a list of pages (lists, or objects holding a list under
    ``requests`` / ``service_requests``), such an object, one request, or several of these
    one after another. It is parsed by ``ijson`` (yajl, in C) 16 KiB at a time, and each
    request is built as its closing brace is read and handed on: the list around it is never
    built, so memory holds one request, not the file. An empty (or all-whitespace) text has
    no requests. Numbers are read as :mod:`json` reads them (``int``, ``float``), except
    integers beyond 64 bits, which yajl refuses.

    Args:
        handle: a binary file (or anything with ``read(size) -> bytes``).
        name: what the messages call it (the file's path).
        encoding: the text's encoding (any codec Python knows; default UTF-8).

    Raises:
        DumpError: the text is not JSON (the message says between which bytes and on which
            lines the parser stopped, with yajl's excerpt of the text; or that the text ends
            inside a value: cut short), or a value is not a request or a page of them; an
            :class:`UndecodableDump`: a byte is not text in ``encoding``.
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: the file cannot be read.
    """
    source = _Counted(handle, name, encoding)
    events: Events = ijson.basic_parse(source, buf_size=_CHUNK, multiple_values=True,
                                       use_float=True)
    try:
        for event, value in events:
            yield from _requests_of(event, value, events, name, top=True)
    except ijson.JSONError as exc:
        if source.blank:
            return  # nothing but whitespace: no requests (yajl wants a value)
        raise DumpError(f"{name}: not JSON {source.where(str(exc))}") from None


class _Counted:
    """A binary file as ijson reads it, counting bytes and lines, to say where it stopped.

    Every chunk is decoded first (:class:`~adapters.replay.encoding.ChunkDecoder`): a byte
    that is not text in the encoding is an :class:`UndecodableDump` with its line and offset
    (yajl would say "invalid bytes in UTF8 string", or nothing outside a string). UTF-8 is
    handed on as read; another encoding as its text in UTF-8, which is what yajl reads.
    Bytes count in the file as read. A byte-order mark at the start is counted as read but
    not handed on: yajl refuses it.
    """

    def __init__(self, handle: IO[bytes], name: Path | str, encoding: str) -> None:
        self._handle = handle
        self._text = ChunkDecoder(name, encoding, error=UndecodableDump)
        self._utf8 = text_codec(encoding) == "utf-8-sig"
        self._start = True      # nothing read yet: a byte-order mark may come first
        self.read_bytes = 0     # bytes read so far
        self.lines = 1          # the line the last byte read is on
        self.chunk = (0, 1)     # the last chunk read: its first byte's offset and line
        self.ended = False      # read() returned b"": the text has ended
        self.blank = True       # all the bytes read so far are whitespace

    def read(self, size: int) -> bytes:
        if not size:  # ijson asks for read(0) first, to see bytes or text
            return b""
        self.chunk = (self.read_bytes, self.lines)
        while True:
            data = self._handle.read(size)
            if not data:
                self.ended = True
            self.read_bytes += len(data)
            text = self._text.decode(data)
            self.lines = self._text.lines
            if self._utf8:
                out = data
                if self._start and data:
                    out = data.removeprefix(codecs.BOM_UTF8)
            else:
                if self._start and text:
                    text = text.removeprefix("\ufeff")
                out = text.encode("utf-8")
            if self._start and data:
                self._start = False
            if out or not data:  # b"" ends the text for ijson: read on past a chunk that
                break            # held only part of a character (or only the mark)
        if self.blank and out.strip():
            self.blank = False
        return out

    def where(self, error: str) -> str:
        """Where the parser stopped, and why (yajl's message, with its excerpt)."""
        message = error.rstrip()
        if self.ended and message.startswith("parse error: premature EOF"):
            return (f"(it ends inside a value, at byte {self.read_bytes:,}, line "
                    f"{self.lines:,}): the file is cut short? Export it again")
        first, line = self.chunk
        lines = f"line {line:,}" if line == self.lines else f"lines {line:,}-{self.lines:,}"
        reason, newline, excerpt = message.partition("\n")
        return (f"between bytes {first:,} and {self.read_bytes:,} ({lines}): {reason}; "
                f"{_FIX_JSON}{newline}{excerpt}")


def _requests_of(event: str, value: Any, events: Events, name: Path | str, *, top: bool
                 ) -> Iterator[dict[str, Any]]:
    """The requests in the value that starts with ``event`` (the rest read from ``events``)."""
    if event == "start_array":
        for item, item_value in events:
            if item == "end_array":
                return
            yield from _requests_of(item, item_value, events, name, top=False)
    elif event == "start_map":
        yield from _object(events, name)
    elif top:
        raise DumpError(f"{name}: expected a JSON list of Open311 service requests; {_SHAPE}")
    else:
        raise DumpError(f"{name}: expected Open311 service requests (JSON objects), found "
                        f"{type(value).__name__}; {_SHAPE}")


def _object(events: Events, name: Path | str) -> Iterator[dict[str, Any]]:
    """An object read from ``events`` (after its ``start_map``): a request, or a page.

    A page is an object with a list under ``service_requests`` or ``requests``: the list's
    requests are handed on as they are read, and the page's other keys are dropped (only its
    first such list is read; a later one is skipped).
    """
    built: dict[str, Any] = {}
    page = False
    for _, key in events:  # ("map_key", key) ... until ("end_map", None)
        if key is None:
            break
        event, value = next(events)
        if event == "start_array" and key in _PAGE_KEYS:
            if page:
                _build(event, value, events)  # skipped
                continue
            page = True
            yield from _requests_of(event, value, events, name, top=False)
        else:
            built[key] = _build(event, value, events)
    if not page:
        yield built


def _build(event: str, value: Any, events: Events) -> Any:
    """The value that starts with ``event``, built whole (the rest read from ``events``)."""
    if event == "start_map":
        out: dict[str, Any] = {}
        for _, key in events:
            if key is None:
                return out
            out[key] = _build(*next(events), events)
        return out
    if event == "start_array":
        items: list[Any] = []
        for item, item_value in events:
            if item == "end_array":
                return items
            items.append(_build(item, item_value, events))
        return items
    return value


def _decode(line: str, path: Path, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DumpError(f"{path}:{number}: not JSON ({exc}); {_FIX_JSON}") from None


def _requests_in(value: Any, path: Path) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        inner = value.get("service_requests", value.get("requests"))
        if isinstance(inner, list):
            yield from _requests_in(inner, path)
        else:
            yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, list | dict):
                yield from _requests_in(item, path)
            else:
                raise DumpError(f"{path}: expected Open311 service requests (JSON objects), "
                                f"found {type(item).__name__}; {_SHAPE}")
    else:
        raise DumpError(f"{path}: expected a JSON list of Open311 service requests; {_SHAPE}")


# -- planning ---------------------------------------------------------------------------------

_ORDER = {"report": 0, "dispatch": 1, "follow_on_created": 2, "follow_on_closed": 3,
          "close": 4}


def plan_request(row: int, req: dict[str, Any]) -> Open311Plan | Rejection:
    """Plan one GeoReport v2 request (with or without notes), or say why it cannot be."""
    rid = str(req.get("service_request_id") or "")
    agency = str(req.get("agency_responsible") or "")
    if not rid or not agency:
        return Rejection(row, rid or f"row {row}", "no service_request_id or agency_responsible")
    try:
        notes = sorted(req.get("notes") or [], key=lambda n: _instant(n["datetime"]))
        requested = req.get("requested_datetime")
        deadline = req.get("expected_datetime")
        fields: dict[str, Any] = {"category": str(req.get("service_name") or "unknown"),
                                  "department": agency}
        channel = (req.get("extended_attributes") or {}).get("channel")
        if channel:
            fields["channel"] = str(channel)
        target = _instant(deadline) if deadline else None
        if target is not None:
            fields["target_at"] = target
        if not notes:
            if not requested:
                return Rejection(row, rid, "no notes and no requested_datetime")
            opened = _instant(requested)
            events = [Open311Event(opened, rid, row, "report", agency, fields=fields),
                      Open311Event(opened, rid, row, "dispatch", agency)]
            if req.get("status") == "closed":
                if not req.get("updated_datetime"):
                    return Rejection(row, rid, "closed, but no updated_datetime to close it at")
                closed = _instant(str(req["updated_datetime"]))
                if closed < opened:
                    return Rejection(row, rid, f"updated_datetime {closed.isoformat()} is "
                                               f"before requested_datetime {opened.isoformat()}")
                events.append(Open311Event(closed, rid, row, "close", agency))
            return Open311Plan(row, rid, events, target)
        mine = [Open311Event(_instant(notes[0]["datetime"]), rid, row, "report", agency,
                             fields=fields)]
        for note in notes:
            kind = note.get("type")
            at = _instant(note["datetime"])
            extra = note.get("extended_attributes") or {}
            if kind == "opened":
                mine.append(Open311Event(at, rid, row, "dispatch", agency))
            elif kind in ("follow_on_created", "follow_on_closed"):
                mine.append(Open311Event(at, rid, row, kind,
                                         str(extra.get("agency_responsible") or ""),
                                         str(extra.get("service_request_id") or "")))
            elif kind == "closed":
                mine.append(Open311Event(at, rid, row, "close", agency))
    except (KeyError, TypeError, ValueError) as exc:
        return Rejection(row, rid, f"cannot read the request's times ({exc})")
    if not any(e.kind == "dispatch" for e in mine):
        return Rejection(row, rid, "no 'opened' note")
    mine.sort(key=lambda e: (e.at, _ORDER[e.kind]))
    return Open311Plan(row, rid, mine, target)


# -- the replay -------------------------------------------------------------------------------


def replay_open311(
    engine: Engine,
    data: Path,
    *,
    lifecycle: str = "grid_incident",
    until: datetime | None = None,
    progress: Callable[[ReplayProgress], None] | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> Open311Outcome:
    """Replay Open311 requests into ``engine`` (whose clock is a VirtualClock).

    Args:
        engine: the engine to replay into.
        data: the dump (see :func:`iter_requests`).
        lifecycle: the tickets' lifecycle; it needs ``departments``/``routing`` (bundled
            ``grid_incident`` has them).
        until: stop the clock here (aware); later events are not applied.
        progress: called with a :class:`~adapters.replay.progress.ReplayProgress` after every
            batch and once at the end.
        encoding: the dump's text encoding (default UTF-8; any codec Python knows).

    Raises:
        DumpError (a ValueError), OSError: the input cannot be read as Open311 JSON; an
            :class:`UndecodableDump` (a DumpError) is not text in ``encoding``. The whole
            dump is read (to sort it) before any request is applied, so either stops the
            replay before any ticket is written.
        UnknownEncoding: ``encoding`` is not a text encoding (before anything is written).
        ConfigurationError: the lifecycle (or its work orders') lacks what the replay fires
            (:func:`check_lifecycle`); before any request is applied.
    """
    started = time.perf_counter()
    text_codec(encoding)
    version = engine.deploy(lifecycle)
    name = version.name
    compiled = engine.lifecycle(name)
    routing = compiled.spec.routing
    check_lifecycle(compiled, engine.lifecycle(routing.work_orders) if routing is not None
                    else None)
    outcome = Open311Outcome(lifecycle=name)
    departments = Departments(engine)
    judged = 0

    with Scratch() as scratch:
        def apply(plan: Open311Plan, index: int) -> None:
            _apply(engine, departments, name, plan.events[index])

        def refused(plan: Open311Plan, index: int, exc: CommandRefused) -> None:
            event = plan.events[index]
            if plan.deadline is not None:
                scratch.forget(plan.ticket_id)
            why = refusal_reason(event.kind, exc)
            if event.kind == "close":
                still = tuple(f"{o.id} ({o.department})"
                              for o in departments.work_orders(event.request)
                              if o.role == "co" and o.state not in _CLOSED)
                if still:
                    outcome.kept_open.append(KeptOpen(
                        event.row, event.request,
                        f"{why}; work orders still open: {', '.join(still)}", still))
                    return
                why += "; work orders still open: none"
            outcome.rejections.append(Rejection(event.row, event.request, why))

        timeline = Timeline(engine, apply, refused, until=until, progress=progress,
                            rows_total=lambda: outcome.rows, batch_size=BATCH_SIZE,
                            started=started)

        def intake() -> Iterator[Open311Plan]:
            nonlocal judged
            for row, req in enumerate(iter_requests(data, encoding), start=1):
                outcome.rows = row
                item = plan_request(row, req)
                if isinstance(item, Rejection):
                    timeline.rows += 1
                    outcome.rejections.append(item)
                    continue
                outcome.requests.append(item.ticket_id)
                if item.deadline is not None and (until is None or item.events[0].at <= until):
                    judged += 1
                    scratch.expect(item.ticket_id, *_expected(item, until))
                yield item

        timeline.run(sort_plans(intake(), lambda p: (p.events[0].at, p.row), scratch.folder))
        outcome.planned = len(outcome.requests)
        outcome.requests.sort()
        outcome.events_applied = timeline.events_applied
        outcome.events_skipped_after_until = timeline.events_after_until
        outcome.started_at = timeline.first_at
        outcome.until = engine.clock.now()
        if judged:
            outcome.verdicts = compare_verdicts(engine, name, scratch, outcome.until)
    outcome.rejections.sort(key=lambda r: r.row)
    outcome.kept_open.sort(key=lambda r: r.row)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _expected(plan: Open311Plan, until: datetime | None
              ) -> tuple[bool | None, datetime | None]:
    deadline = plan.deadline
    assert deadline is not None
    for event in plan.events:
        if event.kind == "close" and (until is None or event.at <= until):
            return event.at > deadline, deadline  # the tie rule: closed <= deadline is on time
    return None, deadline


_CLOSED = frozenset({"done", "withdrawn", "returned", "bounced"})


def _agency_actor(agency: str) -> Actor:
    return Actor(agency[:128], "department")


def _apply(engine: Engine, departments: Departments, lifecycle: str,
           event: Open311Event) -> None:
    rid = event.request
    if event.kind == "report":
        engine.report(lifecycle, event.fields, actor=CENTRE, ticket_id=rid, reason=REPLAYED,
                      foreign_departments=True)
    elif event.kind == "dispatch":
        with engine.atomic():
            engine.fire(rid, "dispatch", actor=CENTRE, reason=REPLAYED)
            lead = departments.add_work_order(rid, event.agency, actor=CENTRE, role="lead",
                                              reason=REPLAYED, work_order_id=f"{rid}/lead",
                                              declared_only=False)
            engine.fire(lead.id, "accept", actor=_agency_actor(event.agency), reason=REPLAYED)
    elif event.kind == "follow_on_created":
        with engine.atomic():
            wo = departments.add_work_order(rid, event.agency, actor=CENTRE, role="co",
                                            reason=REPLAYED,
                                            work_order_id=f"{rid}/{event.follow_on}",
                                            declared_only=False)
            engine.fire(wo.id, "accept", actor=_agency_actor(event.agency), reason=REPLAYED)
    elif event.kind == "follow_on_closed":
        wid = f"{rid}/{event.follow_on}"
        with engine.atomic():
            if not any(o.id == wid for o in departments.work_orders(rid)):
                departments.add_work_order(rid, event.agency, actor=CENTRE, role="co",
                                           reason=f"{REPLAYED} (creation note missing)",
                                           work_order_id=wid, declared_only=False)
                engine.fire(wid, "accept", actor=_agency_actor(event.agency), reason=REPLAYED)
            engine.fire(wid, "finish", actor=_agency_actor(event.agency), reason=REPLAYED)
    elif event.kind == "close":
        with engine.atomic():
            engine.fire(f"{rid}/lead", "finish", actor=_agency_actor(event.agency),
                        reason=REPLAYED)
            engine.fire(rid, "close", actor=CENTRE, reason=REPLAYED)


def request_timelines(engine: Engine, outcome: Open311Outcome) -> list[dict[str, Any]]:
    """Per request: its state, the departments involved and the order of events.

    Departments are listed lead first, then co-handling in the order they got work orders;
    events are the ticket's and its work orders' history rows in the order written.

    Each: ``{"id", "state", "departments", "events": [{"at" (ISO 8601 UTC), "ticket",
    "department", "kind", "trigger", "to_state"}]}``. Deadline breaches are events too (their
    trigger is the deadline's name).
    """
    departments = Departments(engine)
    out: list[dict[str, Any]] = []
    for rid in outcome.requests:
        try:
            ticket = engine.get(rid)
        except CommandRefused:
            continue
        orders = departments.work_orders(rid)
        names: list[str] = []
        for order in sorted(orders, key=lambda o: o.role != "lead"):
            if order.department not in names:
                names.append(order.department)
        events = [{"at": e["at"].isoformat(), "ticket": e["ticket"],
                   "department": e["department"], "kind": e["kind"], "trigger": e["trigger"],
                   "to_state": e["to_state"]} for e in departments.timeline(rid)]
        out.append({"id": rid, "state": ticket.state, "departments": names, "events": events})
    return out
