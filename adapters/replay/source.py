"""Reading a service-request CSV through a mapping: rows become planned tickets or rejections.

Nothing here touches the engine; :mod:`adapters.replay.replayer` applies the plans. The file
is read twice, never held in memory:

1. :meth:`CsvExport.survey` counts the rows, checks that they are in order of report time and
   records every ticket id (with a digest of its row) in the replay's scratch file, to find
   the rows that repeat an earlier one;
2. :meth:`CsvExport.items` reads the rows again and plans each one (a :class:`PlannedTicket`),
   or says why not (a :class:`Rejection`), or that it repeats an earlier row exactly (a
   :class:`Repeat`, skipped).

The mapping is compiled once (:class:`RowPlanner`): column positions, readers for times and
typed values, conditions as frozen sets.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from adapters.replay.columns import (
    RowError,
    Stamp,
    TimeReader,
    is_blank,
    time_reader,
    value_reader,
)
from adapters.replay.encoding import DEFAULT_ENCODING, text_codec, text_lines, undecodable
from adapters.replay.evidence import evidence_refs
from adapters.replay.mapping import MappingSpec
from adapters.replay.records import malformed_csv
from adapters.replay.scratch import Scratch
from adapters.replay.sorting import sort_plans
from engine import GridwhistleError, Lifecycle

__all__ = ["ENCODING", "CsvExport", "PlannedEvent", "PlannedTicket", "Rejection", "Repeat",
           "RepeatedColumn", "RowPlanner", "Survey", "check_header", "columns_problem",
           "missing_columns", "read_header", "read_rows"]

ENCODING = "utf-8-sig"
"""How an export is read by default: UTF-8, with or without a leading byte-order mark.

Excel's "CSV UTF-8" and many government systems write the mark (EF BB BF) first; read as
plain ``utf-8`` it would become part of the first column's name (``\ufeffcase_enquiry_id``)
and the mapping's id column would be "not in the file". ``utf-8-sig`` drops it (only at the
very start of the file); it is no line, so line and row numbers stay the same.

Another encoding may be given (``encoding="gb18030"``: :mod:`adapters.replay.encoding`); a
byte-order mark that its codec leaves in the text (U+FEFF first) is dropped as well."""

NO_FIELDS: dict[str, Any] = {}
"""The fields of an event that sets none (shared; never changed)."""


class PlannedEvent(NamedTuple):
    """One command to apply: at ``at`` (aware UTC), fire ``trigger`` as ``role``.

    (A named tuple: a district's year plans ~700,000 of them, and a tuple is built ~5x faster
    than a frozen dataclass.)
    """

    at: datetime
    trigger: str
    role: str
    actor: str
    fields: dict[str, Any]
    evidence: tuple[dict[str, Any], ...] = ()  # issue 12: adapters/replay/evidence.py


@dataclass(slots=True)
class PlannedTicket:
    """A row that passed the checks: its ticket id, report fields and ordered events."""

    row: int
    ticket_id: str
    fields: dict[str, Any]
    events: list[PlannedEvent]


@dataclass(frozen=True)
class Rejection:
    """A row (1-based data row number, ticket id if known) and why it was not replayed."""

    row: int
    ticket_id: str
    reason: str


@dataclass(frozen=True)
class Repeat:
    """A row that repeats an earlier row exactly (same id, same cells): skipped."""

    row: int
    ticket_id: str
    first_row: int


Item = PlannedTicket | Rejection | Repeat


def missing_columns(columns: list[str], mapping: MappingSpec) -> list[str]:
    """The columns the mapping names that ``columns`` lacks (sorted)."""
    return sorted(mapping.named_columns() - set(columns))


def columns_problem(header: list[str], mapping: MappingSpec) -> str | None:
    """Why a file with columns ``header`` does not fit the mapping, or None when it does.

    Names each missing column with the mapping's ``file:line`` where it is named, and the
    file's own columns, so a typo on either side shows.
    """
    missing = missing_columns(header, mapping)
    if not missing:
        return None
    if not header:
        return (f"the file is empty (not even a header row); mapping {mapping.name!r} needs "
                f"its columns {', '.join(missing)}: export the file again with its header")
    uses = mapping.column_uses()
    lines = [f"  {mapping.where(*path)}: {words}" for column in missing
             for path, words in uses[column]]
    return (f"columns {', '.join(missing)} named by mapping {mapping.name!r} are not in the "
            f"file:\n" + "\n".join(lines)
            + f"\nits columns: {', '.join(header)}")


class RepeatedColumn(GridwhistleError, ValueError):
    """A column the mapping reads appears more than once in the export's header.

    Read by name, only one copy could be used (the csv module's ``DictReader`` and a name
    index both keep the last), silently: ``...,type,...,type`` took each ticket's category
    from the second ``type``. Which one is meant cannot be told, so the file is refused
    before anything is written. A column the mapping does not read may repeat: it is not
    read. A ``ValueError`` too, as the replay's other input errors are.

    Attributes:
        path: the file; ``repeats``: ``{column: [1-based positions]}`` of every column the
            mapping reads that appears more than once.
    """

    def __init__(self, path: Path | str, repeats: dict[str, list[int]],
                 mapping: MappingSpec) -> None:
        self.path = path
        self.repeats = repeats
        uses = mapping.column_uses()
        parts = []
        for column, positions in repeats.items():
            times = "twice" if len(positions) == 2 else f"{len(positions)} times"
            at = ", ".join(str(p) for p in positions[:-1]) + f" and {positions[-1]}"
            path_, words = uses[column][0]
            parts.append(f"column {column!r} appears {times} (columns {at}), and mapping "
                         f"{mapping.name!r} reads it ({mapping.where(*path_)}: {words})")
        super().__init__(
            f"{path}:1: {'; '.join(parts)}: which copy is meant cannot be told; rename or "
            "remove the other copies in the header (or export the file again), or map "
            "another column")


def repeated_columns(header: list[str], mapping: MappingSpec) -> dict[str, list[int]]:
    """The columns the mapping reads that ``header`` has more than once, with their positions.

    Positions are 1-based; the columns in the order they first appear.
    """
    named = mapping.named_columns()
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header, start=1):
        if name in named:
            positions.setdefault(name, []).append(i)
    return {name: at for name, at in positions.items() if len(at) > 1}


def check_header(path: Path | str, header: list[str], mapping: MappingSpec) -> None:
    """Refuse a header that does not fit the mapping: a column it reads repeated, or missing.

    Raises:
        RepeatedColumn: a column the mapping reads appears more than once.
        ValueError: the header lacks columns the mapping names (:func:`columns_problem`).
    """
    repeats = repeated_columns(header, mapping)
    if repeats:
        raise RepeatedColumn(path, repeats, mapping)
    problem = columns_problem(header, mapping)
    if problem is not None:
        raise ValueError(f"{path}: {problem}")


# -- the compiled mapping ---------------------------------------------------------------------

Reader = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class _Event:
    trigger: str | None          # fixed trigger, or None: chosen by the value map
    choose: tuple[int, dict[str, str], str | None] | None   # (column index, map, default)
    at_index: int
    at_column: str
    read_at: TimeReader
    at_blanks: frozenset[str]
    role: str
    actor: str
    sets: tuple[tuple[str, int, frozenset[str], Reader], ...]
    conditions: tuple[tuple[int, frozenset[str], bool], ...]  # (index, values, must match)
    if_empty: str


class RowPlanner:
    """The mapping compiled against one file's header and a lifecycle: plans rows.

    Args:
        mapping: the mapping.
        lifecycle: the lifecycle the tickets will run in (its field types, required fields).
        header: the file's column names.
        zone: the zone of timestamps written without one (and of date-only days).

    Raises:
        ValueError: the header lacks columns the mapping names.
        RepeatedColumn: a column the mapping reads appears in it more than once.
    """

    def __init__(self, mapping: MappingSpec, lifecycle: Lifecycle, header: list[str],
                 zone: tzinfo) -> None:
        check_header("the file", header, mapping)
        self.width = len(header)
        index = {name: i for i, name in enumerate(header)}
        self.evidence = tuple(mapping.evidence)
        self.evidence_index = {s.column: index[s.column] for s in self.evidence}
        self.source = mapping.name
        declared = lifecycle.spec.fields
        base_blanks = frozenset(mapping.blank_values)
        times: dict[str, TimeReader] = {}

        def blanks(column: str) -> frozenset[str]:
            return base_blanks | frozenset(mapping.column(column).blank)

        def read_time(column: str) -> TimeReader:
            if column not in times:
                times[column] = time_reader(column, mapping.column(column),
                                            mapping.timestamp_format, zone)
            return times[column]

        def read_value(field: str, column: str) -> Reader | None:
            spec = declared.get(field)
            if spec is None:
                return None
            return value_reader(spec.type, column, read_time(column))

        def field_reader(field: str, column: str) -> tuple[str, int, frozenset[str], Reader]:
            return (field, index[column], blanks(column), read_value(field, column) or str)

        self.id_index = index[mapping.id_column]
        self.id_column = mapping.id_column
        self.fields = tuple(field_reader(f, c) for f, c in mapping.fields.items())
        self.required = tuple((name, mapping.fields.get(name, "(not mapped)"))
                              for name, spec in declared.items() if spec.required)
        events: list[_Event] = []
        for spec in mapping.events:
            choose = None
            if spec.trigger_from is not None:
                choose = (index[spec.trigger_from.column], dict(spec.trigger_from.map),
                          spec.trigger_from.default)
            conditions = tuple(
                (index[column], frozenset(values), must)
                for key, must in (("when", True), ("unless", False))
                for column, values in getattr(spec, key).items())
            events.append(_Event(
                trigger=spec.trigger, choose=choose,
                at_index=index[spec.at], at_column=spec.at, read_at=read_time(spec.at),
                at_blanks=blanks(spec.at), role=spec.role, actor=spec.actor,
                sets=tuple(field_reader(f, c) for f, c in spec.set.items()),
                conditions=conditions, if_empty=spec.empty_means))
        self.events = tuple(events)
        self._report = events[0]

    def report_time(self, cells: list[str]) -> datetime | None:
        """The row's report instant (aware UTC), or None: blank, unreadable, or a malformed row.

        A malformed row has not as many cells as the header (:func:`malformed_row`).
        """
        if len(cells) != self.width:
            return None
        ev = self._report
        text = cells[ev.at_index]
        if is_blank(text, ev.at_blanks):
            return None
        try:
            stamp = ev.read_at(text)
        except RowError:
            return None
        return None if stamp is None else stamp[0]

    def plan(self, number: int, tid: str, cells: list[str]) -> PlannedTicket:
        """Plan one row (``cells`` as long as the header).

        Raises:
            RowError: the row is rejected; the message says why. A row is rejected when a
                required field, the report time or an ``if_empty: reject`` event time is
                empty; a value or a time cannot be read; an event time is earlier than the
                event before it (a date-only stamp on the same local day is not: it takes the
                earlier event's instant, and a wall time of the hour the clocks went back is
                its second occurrence when the first is earlier); or its first event is not
                the report.
        """
        fields: dict[str, Any] = {}
        for name, i, blank, read in self.fields:
            text = cells[i]
            if text and text not in blank and not text.isspace():
                value = read(text)
                if value is not None:
                    fields[name] = value
        for name, column in self.required:
            if name not in fields:
                raise RowError(f"required field {name!r} (column {column}) is empty")
        events: list[PlannedEvent] = []
        prev_at: datetime | None = None   # the event before (a date-only one as placed)
        prev_day = None
        prev_date = False
        prev_column = ""
        timed_at: datetime | None = None  # the latest event with a time of day
        timed_column = ""
        stamps: dict[int, Stamp | None] = {}  # a column read by several events is read once
        for ev in self.events:
            if ev.conditions and not all((cells[i].strip() in values) is must
                                         for i, values, must in ev.conditions):
                continue
            trigger = ev.trigger
            if trigger is None:
                assert ev.choose is not None
                i, choices, default = ev.choose
                trigger = choices.get(cells[i].strip(), default)
                if trigger is None:
                    continue
            if ev.at_index in stamps:
                stamp = stamps[ev.at_index]
            else:
                text = cells[ev.at_index]
                stamp = None if is_blank(text, ev.at_blanks) else ev.read_at(text)
                stamps[ev.at_index] = stamp
            if stamp is None:
                if ev.if_empty == "reject":
                    raise RowError(f"{ev.at_column}: empty, but the {trigger!r} event needs it")
                if ev.if_empty == "end":
                    break  # not happened yet: this and later events are skipped
                continue
            at, day, is_date, again = stamp
            if again is not None and prev_at is not None and at < prev_at <= again:
                at = again  # the wall time came twice (clocks went back): the second time
            if prev_at is not None and at < prev_at:
                # A date-only stamp on the day of the event before it is not "before" it: it
                # takes that event's instant. A time of day must not go before another one.
                if not is_date and timed_at is not None and at < timed_at:
                    raise RowError(f"{ev.at_column} {at.isoformat()} is before "
                                   f"{timed_column} {timed_at.isoformat()}")
                if (is_date or prev_date) and day == prev_day:
                    at = prev_at
                else:
                    raise RowError(f"{ev.at_column} {at.isoformat()} is before {prev_column} "
                                   f"{prev_at.isoformat()}")
            prev_at, prev_day, prev_date, prev_column = at, day, is_date, ev.at_column
            if not is_date:
                timed_at, timed_column = at, ev.at_column
            sets = NO_FIELDS
            if ev.sets:
                sets = {}
                for name, i, blank, read in ev.sets:
                    text = cells[i]
                    if text and text not in blank and not text.isspace():
                        value = read(text)
                        if value is not None:
                            sets[name] = value
            refs = (evidence_refs(self.evidence, trigger, _cells_of(self.evidence_index, cells),
                                  tid, self.source) if self.evidence else ())
            events.append(PlannedEvent(at, trigger, ev.role, ev.actor, sets, refs))
        if not events or events[0].trigger != "report":
            raise RowError("the first event must be the report")
        return PlannedTicket(number, tid, fields, events)


def malformed_row(cells: int, width: int) -> str:
    """Why a row with ``cells`` cells under a header of ``width`` is rejected.

    Read by position, a row with a cell too many (an unquoted comma split a cell in two) puts
    every later value in the wrong column, silently; a row with too few was cut short (an
    unquoted line break). Either is rejected whole.
    """
    return (f"the row has {cells} cells, the header {width}: a cell with an unquoted comma, "
            f"quote or line break?")


def open_quote(path: Path, header: list[str], cells: list[str], start: int, last: int) -> str:
    """Why a row that the file ends inside of (a quoted cell never closed) is rejected.

    Args:
        path: the file.
        header: its column names.
        cells: the row's cells as read; the last one is the cell left open.
        start: the line the row starts on (1-based, as the file's lines).
        last: the file's last line.

    The csv module, reading leniently, ends such a cell at the end of the file, so it holds
    every line after its quote: the rows those lines were are not read at all. The reason
    names the line the cell starts on (``file:line``), its column, and the lines it took.
    """
    line = start + sum(len(_LINE_BREAK.findall(cell)) for cell in cells[:-1])
    column = (f"column {header[len(cells) - 1]!r}" if len(cells) <= len(header)
              else f"cell {len(cells)}, past the header's {len(header)} columns")
    took = f"line {line}" if line == last else f"lines {line}-{last}"
    return (f"{path}:{line}: the file ends inside a quoted cell ({column}) that starts on "
            f"line {line}: its closing quote is missing, so the rest of the file ({took}) "
            f"was read into that one cell; close the quote (a quote inside a quoted cell is "
            f"written twice: \"\")")


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""A line break as the file's lines are split when opened with ``newline=""`` (LF, CR LF, CR)."""


class _End:
    """An empty iterator that notes when it is asked for a line: the file has ended.

    Chained after a file's lines (:func:`itertools.chain`, so each line costs no Python
    call), it tells a record that :mod:`csv` completed at the end of the file — one inside a
    quoted cell that was never closed, which the lenient reader returns as if closed — from
    one completed at its own line break, before the reader asks for more.
    """

    __slots__ = ("reached",)

    def __init__(self) -> None:
        self.reached = False

    def __iter__(self) -> _End:
        return self

    def __next__(self) -> str:
        self.reached = True
        raise StopIteration


def _cells_of(columns: dict[str, int], cells: list[str]) -> dict[str, str]:
    """The evidence columns of a row, by name."""
    return {name: cells[i] for name, i in columns.items()}


# -- the file -------------------------------------------------------------------------------


def read_header(path: Path, encoding: str = DEFAULT_ENCODING) -> list[str]:
    """The column names of an export (its first record; a byte-order mark is not in them).

    Args:
        path: the CSV file.
        encoding: its text encoding (default UTF-8, a byte-order mark allowed; any codec
            Python knows, e.g. ``gb18030``).

    Raises:
        UndecodableData: the header has bytes that are not text in ``encoding`` (the message
            names the line and byte offset).
        MalformedCsv: the csv reader cannot read the header (a cell over its limit).
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: the file cannot be read.
    """
    codec = text_codec(encoding)
    try:
        with path.open(newline="", encoding=codec) as handle:
            reader = csv.reader(text_lines(handle))
            try:
                return next(reader, [])
            except csv.Error as exc:
                raise malformed_csv(path, 1, reader.line_num, exc) from None
    except UnicodeError as exc:  # a UnicodeDecodeError, mostly
        raise undecodable(path, encoding, exc) from None


@dataclass
class Survey:
    """What the first pass over a file found.

    Attributes:
        rows: data rows.
        in_order: every readable report time is at or after the one before.
        disorder: the first row out of order: ``(row, its report time, row before, that row's
            report time)``, or None.
        repeats: ``{row: (first row, exact)}`` for every row whose id an earlier row has.
    """

    rows: int = 0
    in_order: bool = True
    disorder: tuple[int, datetime, int, datetime] | None = None
    repeats: dict[int, tuple[int, bool]] | None = None


class CsvExport:
    """A CSV export (header row) read through a mapping (see the module docstring).

    Read as UTF-8 by default, a byte-order mark at the start of the file allowed
    (:data:`ENCODING`); ``encoding`` names another (``gb18030``).

    A byte that is not text in the encoding stops a pass with :class:`UndecodableData`
    (naming the line and byte offset), and a record the csv reader cannot read on (a cell over
    its limit: most often a quote never closed) with a
    :class:`~adapters.replay.records.MalformedCsv` (naming the line its row starts on). The
    first pass (:meth:`survey`) reads the whole file, so it meets either before any row is
    planned; should the second pass meet one (the file changed in between), the message says
    so.

    Raises:
        ValueError: the file lacks columns the mapping names.
        RepeatedColumn: a column the mapping reads appears more than once in the header.
        UndecodableData: the header is not text in the encoding.
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: the file cannot be read.
    """

    def __init__(self, path: Path, mapping: MappingSpec, lifecycle: Lifecycle,
                 zone: tzinfo, encoding: str = DEFAULT_ENCODING) -> None:
        self.path = path
        self.mapping = mapping
        self.encoding = encoding
        self._codec = text_codec(encoding)
        self._surveyed = False
        header = read_header(path, encoding)
        self.header = header
        self.open_row: tuple[int, str] | None = None
        """The row the file ends inside of (a quoted cell never closed) and why it is
        rejected (:func:`open_quote`), once a pass has read to the end; else None."""
        check_header(path, header, mapping)
        self.planner = RowPlanner(mapping, lifecycle, header, zone)

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """Every data row with its number; its cells as read (a malformed row's too).

        A row that the file ends inside of (an unclosed quote) is yielded too, after
        :attr:`open_row` is set to it.
        """
        number = 0
        try:
            with self.path.open(newline="", encoding=self._codec) as handle:
                end = _End()
                reader = csv.reader(chain(text_lines(handle), end))
                line = 0  # the last line read so far
                try:
                    next(reader, None)
                    line = reader.line_num
                    for cells in reader:  # (an error of the consumer is not raised in here)
                        start, line = line + 1, reader.line_num
                        if not cells:
                            continue  # a blank line is not a row (as csv.DictReader)
                        number += 1
                        if end.reached:
                            self.open_row = number, open_quote(self.path, self.header, cells,
                                                               start, line)
                        yield number, cells
                except csv.Error as exc:  # a cell over the csv module's limit, mostly
                    raise malformed_csv(self.path, line + 1, reader.line_num, exc,
                                        note=self._changed(number)) from None
        except UnicodeError as exc:  # a UnicodeDecodeError, mostly
            raise undecodable(self.path, self.encoding, exc,
                              note=self._changed(number)) from None

    def _changed(self, rows: int) -> str:
        """What an error met by the second pass adds: the file changed during the replay."""
        if not self._surveyed:  # the first pass: nothing has been written
            return ""
        return (f"; the first pass read the whole file without this error, so it changed "
                f"during the replay, which stops here after {rows:,} rows: what it wrote "
                f"before stays in the database (the open batch of commands is rolled back); "
                f"fix the file and replay it again (what this replay wrote counts as a "
                f"replay's: a database that held only replays' tickets is emptied first)")

    def survey(self, scratch: Scratch) -> Survey:
        """The first pass (see the module docstring)."""
        planner = self.planner
        id_index = planner.id_index
        out = Survey(repeats={})
        assert out.repeats is not None
        pending: list[tuple[str, int, int]] = []
        latest: tuple[datetime, int] | None = None
        width = planner.width
        for number, cells in self._rows():
            out.rows = number
            if len(cells) != width or self.open_row is not None:
                continue  # rejected when planned: neither a repeat nor in or out of order
            tid = cells[id_index].strip()
            if tid:
                pending.append((tid, number, hash(tuple(cells))))
                if len(pending) >= 2000:
                    out.repeats.update((r, (first, exact))
                                       for r, first, exact in scratch.repeats(pending))
                    pending = []
            if out.in_order:
                at = planner.report_time(cells)
                if at is not None:
                    if latest is not None and at < latest[0]:
                        out.in_order = False
                        out.disorder = (number, at, latest[1], latest[0])
                    latest = (at, number)
        out.repeats.update((r, (first, exact)) for r, first, exact in scratch.repeats(pending))
        self._surveyed = True
        return out

    def _sorted_rows(self, folder: Path) -> Iterator[tuple[int, list[str]]]:
        """The rows in order of report time (then row), sorted on disk in ``folder``.

        Rows are sorted as read (their cells), not as plans: a list of strings is quick to
        write and read back. A row whose report time cannot be read comes first (it is
        rejected when planned).
        """
        report_time = self.planner.report_time

        def keyed() -> Iterator[tuple[int, int, list[str]]]:
            for number, cells in self._rows():
                at = report_time(cells)
                yield (-1 if at is None else (at - _EPOCH) // _MICROSECOND), number, cells

        for _, number, cells in sort_plans(keyed(), _first_two, folder):
            yield number, cells

    def items(self, survey: Survey, sort_in: Path | None = None) -> Iterator[Item]:
        """Every row: a plan, a rejection or a repeat (see the module docstring).

        In file order; or, with ``sort_in`` (a folder) and rows that the survey found out of
        order, in order of report time, sorted on disk in that folder.
        """
        planner = self.planner
        id_index = planner.id_index
        repeats = survey.repeats or {}
        rows = self._rows()
        if sort_in is not None and not survey.in_order:
            rows = self._sorted_rows(sort_in)
        width = planner.width
        for number, cells in rows:
            if self.open_row is not None and self.open_row[0] == number:
                yield Rejection(number, cells[id_index].strip() if len(cells) > id_index
                                else "", self.open_row[1])
                continue
            if len(cells) != width:
                yield Rejection(number, cells[id_index].strip() if len(cells) > id_index
                                else "", malformed_row(len(cells), width))
                continue
            tid = cells[id_index].strip()
            if not tid:
                yield Rejection(number, "", f"empty id column {planner.id_column!r}")
                continue
            repeat = repeats.get(number)
            if repeat is not None:
                first, exact = repeat
                if exact:
                    yield Repeat(number, tid, first)
                else:
                    yield Rejection(number, tid, f"the same id appears on an earlier row "
                                                 f"({first}) with other values")
                continue
            try:
                yield planner.plan(number, tid, cells)
            except RowError as exc:
                yield Rejection(number, tid, str(exc))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _first_two(item: tuple[int, int, list[str]]) -> tuple[int, int]:
    return item[0], item[1]


def read_rows(path: Path, mapping: MappingSpec, lifecycle: Lifecycle,
              source_tz: tzinfo | None = None, encoding: str = DEFAULT_ENCODING
              ) -> Iterator[Item]:
    """Yield a plan, a rejection or a repeat for each data row of ``path``, in file order.

    (This is for looking at plans; :func:`adapters.replay.replayer.replay` replays them in
    order of report time.)

    Args:
        path: a CSV file with a header row (UTF-8, a byte-order mark allowed).
        mapping: the mapping to apply.
        lifecycle: the lifecycle the tickets will run in (its field types and required fields).
        source_tz: the zone of timestamps written without one (default: the mapping's
            ``timezone``, else UTC).
        encoding: the file's text encoding (default UTF-8; any codec Python knows, e.g.
            ``gb18030``).

    Raises:
        ValueError: the file lacks columns the mapping names.
        UndecodableData: the file has bytes that are not text in ``encoding``.
        UnknownEncoding: ``encoding`` is not a text encoding.
    """
    with Scratch() as scratch:
        export = CsvExport(path, mapping, lifecycle, mapping.zone(source_tz), encoding)
        yield from export.items(export.survey(scratch))
