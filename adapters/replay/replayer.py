"""Replaying a service-request CSV through a lifecycle on the virtual clock, streaming.

The export is read twice and never held whole (:mod:`adapters.replay.source`): a first pass
counts the rows, checks their order and finds repeated ids; the second plans each row and
hands it to the :class:`~adapters.replay.stream.Timeline`, which applies every event in time
order while it reads, keeping only the tickets still open. The export should be in order of
report time (the first event's column, e.g. ``open_dt``); one that is not is sorted on disk
first (:mod:`adapters.replay.sorting`, bounded memory) and the outcome says so.

A refused command (any :class:`~engine.CommandRefused`, whichever component refuses it)
rejects that row with its reason and the replay goes on.

The export is UTF-8 unless ``encoding`` says otherwise (``gb18030`` for many Chinese
systems). A byte that is not text in it stops the replay with an ``UndecodableData``
(:mod:`adapters.replay.encoding`), and a record the csv reader cannot read on (a quote never
closed) with a ``MalformedCsv`` (:mod:`adapters.replay.records`): :func:`preflight` finds
either before anything is written, the first pass before any ticket is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from adapters.replay.encoding import DEFAULT_ENCODING, text_codec
from adapters.replay.evidence import evidence_problems
from adapters.replay.mapping import MappingSpec
from adapters.replay.progress import ReplayProgress
from adapters.replay.records import check_records
from adapters.replay.scratch import Scratch
from adapters.replay.source import (
    CsvExport,
    PlannedTicket,
    Rejection,
    Repeat,
    check_header,
    read_header,
)
from adapters.replay.stream import Timeline
from engine import (
    Actor,
    CommandRefused,
    ConfigurationError,
    Engine,
    Lifecycle,
    TicketExists,
    find_tickets,
    load_definition,
)

__all__ = ["ReplayOutcome", "check_mapping", "compare_verdicts", "preflight", "refusal_reason",
           "replay"]

REPLAYED = "replayed from source data"


@dataclass
class ReplayOutcome:
    """What a replay did.

    Attributes:
        lifecycle: the lifecycle replayed into.
        rows: input rows read; ``planned``: rows that became tickets' plans.
        events_applied: commands applied; ``events_skipped_after_until``: events later than
            ``until``, not applied.
        rejections: rows not replayed (or cut short by a refusal), in row order.
        repeats: rows skipped because they repeat an earlier row exactly.
        source_order: ``"in order"`` (of report time) or ``"sorted"`` (sorted on disk first;
            ``disorder`` then says where the input first went back in time).
        verdicts: for a computed verdict, ``{"compared", "agree", "disagree"}``; None
            otherwise (a verdict read from a field is compared by the report).
        started_at / until: the virtual clock's first and last instant (aware UTC).
        seconds: wall time (seconds).
    """

    lifecycle: str
    rows: int = 0
    planned: int = 0
    events_applied: int = 0
    events_skipped_after_until: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    repeats: int = 0
    source_order: str = "in order"
    disorder: str | None = None
    verdicts: dict[str, int] | None = None
    started_at: datetime | None = None
    until: datetime | None = None
    seconds: float = 0.0


def refusal_reason(step: str, exc: CommandRefused) -> str:
    """A rejected row's reason for a command the engine refused at ``step`` (its trigger).

    The engine's own words, but for a ticket id already taken: its advice is an API client's
    (report with another id, or omit it), while a replay takes its ids from the export, so
    the reason says what to do in a replay.
    """
    if isinstance(exc, TicketExists):
        return (f"{step}: ticket {exc.ticket_id!r} is already in the database (an earlier "
                "replay of this row, or another source, wrote it), and a replay takes its ids "
                "from the export: leave the rows already replayed out of the file, or replay "
                "into another --db (or, when nothing in this one is needed, empty it with "
                "--fresh)")
    return f"{step}: {exc}"


def check_mapping(mapping: MappingSpec, lifecycle: Lifecycle) -> None:
    """Check that the mapping's fields, triggers and roles exist in the lifecycle.

    Raises:
        ConfigurationError: listing every name that does not resolve, each with the mapping's
            file and line.
    """
    spec = lifecycle.spec
    problems: list[str] = []
    triggers = {"report"} | {t.trigger for t in spec.transitions}

    def problem(message: str, *path: str | int) -> None:
        problems.append(f"{mapping.where(*path)}: {message}")

    for name in mapping.fields:
        if name not in spec.fields:
            problem(f"fields.{name}: no such field in lifecycle {spec.name!r}", "fields", name)
    for i, e in enumerate(mapping.events):
        if e.trigger_from is not None:
            where = ("events", i, "trigger_from")
            for value, trigger in e.trigger_from.map.items():
                if trigger not in triggers:
                    problem(f"events[{i}].trigger_from.map.{value}: {trigger!r} is not a "
                            f"trigger of {spec.name!r}; triggers: {', '.join(sorted(triggers))}",
                            *where, "map", value)
            default = e.trigger_from.default
            if default is not None and default not in triggers:
                problem(f"events[{i}].trigger_from.default: {default!r} is not a trigger of "
                        f"{spec.name!r}", *where, "default")
        elif e.trigger not in triggers:
            problem(f"events[{i}].trigger: {e.trigger!r} is not a trigger of "
                    f"{spec.name!r}; triggers: {', '.join(sorted(triggers))}",
                    "events", i, "trigger")
        if e.role not in spec.roles:
            problem(f"events[{i}].role: {e.role!r} is not a role of {spec.name!r}",
                    "events", i, "role")
        for name in e.set:
            if name not in spec.fields:
                problem(f"events[{i}].set.{name}: no such field in {spec.name!r}",
                        "events", i, "set", name)
        # issue 11: the event's role must be one that may set what the event sets
        fired = [t for t in e.triggers() if t in triggers]
        sets = [*(mapping.fields if "report" in fired else ()), *e.set]
        rules = lifecycle.permissions
        for trigger in fired if e.role in spec.roles else ():
            for name in rules.refused(trigger, e.role, [n for n in sets if n in spec.fields]):
                who = ", ".join(rules.who(name)) or "any role"
                when = ", ".join(rules.when(name))
                problem(f"events[{i}]: role {e.role!r} may not set field {name!r} with "
                        f"{trigger!r} (field_permissions of {spec.name!r}: {who}"
                        f"{' with ' + when if when else ''}); fire the event as a role that "
                        "may, e.g. the intake's call centre", "events", i, "role")
    verdict = mapping.verdict
    if verdict is not None and verdict.field is not None and verdict.field not in spec.fields:
        problem(f"verdict.field: {verdict.field!r} is not a field", "verdict", "field")
    if verdict is not None and verdict.deadline is not None:
        declared = spec.fields.get(verdict.deadline)
        if declared is not None and declared.type != "datetime":
            problem(f"verdict.deadline: field {verdict.deadline!r} is a {declared.type}, "
                    "not a datetime", "verdict", "deadline")
        for i, trigger in enumerate(verdict.ended_by):
            if trigger not in triggers:
                problem(f"verdict.ended_by[{i}]: {trigger!r} is not a trigger of "
                        f"{spec.name!r}", "verdict", "ended_by", i)
    tags = set(spec.evidence.tags) if spec.evidence else set()
    for message in evidence_problems(
            mapping.evidence, {e.trigger for e in mapping.events if e.trigger}, tags):
        problem(message, "evidence")
    if problems:
        raise ConfigurationError(
            f"mapping {mapping.name!r} does not fit lifecycle {spec.name!r}:\n  "
            + "\n  ".join(problems)
        )


def preflight(data: Path, mapping: MappingSpec, lifecycle: str, *,
              encoding: str = DEFAULT_ENCODING) -> None:
    """Check everything that can be checked before a database is touched.

    The lifecycle loads, the mapping fits it, every record of the CSV reads as the replay's
    passes read it (a pass of its own that decodes the file in ``encoding`` and parses it a
    record at a time: :func:`~adapters.replay.records.check_records`), and it has every column
    the mapping names, each of them once. A row that does not fit (too many cells, a bad
    time) is not checked: the replay rejects it and goes on.

    Raises:
        UnknownDefinition, DefinitionError: the lifecycle cannot be loaded.
        ConfigurationError: the mapping does not fit the lifecycle.
        UnknownEncoding: ``encoding`` is not a text encoding.
        UndecodableData (a ValueError): a byte of the CSV is not text in ``encoding`` (the
            message names the line and the byte offset, and what to do).
        MalformedCsv (a ValueError): the csv reader cannot read on (a cell over its limit,
            most often a quote never closed; the message names the line the row starts on).
        RepeatedColumn (a ValueError): a column the mapping reads appears twice in the header
            (the message names both positions).
        ValueError: the CSV lacks columns (the message lists them and the file's columns).
        OSError: the data file cannot be read.
    """
    text_codec(encoding)
    compiled = Lifecycle(load_definition(lifecycle), strict=False)
    check_mapping(mapping, compiled)
    check_records(data, encoding)
    check_header(data, read_header(data, encoding), mapping)


def replay(
    engine: Engine,
    data: Path,
    mapping: MappingSpec,
    *,
    lifecycle: str | None = None,
    source_tz: tzinfo | None = None,
    until: datetime | None = None,
    progress: Callable[[ReplayProgress], None] | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> ReplayOutcome:
    """Replay the rows of ``data`` into ``engine`` (whose clock must be a VirtualClock).

    Args:
        engine: the engine to replay into.
        data: the CSV file (header row; UTF-8 unless ``encoding`` says otherwise), best in
            order of report time.
        mapping: how columns become fields and events.
        lifecycle: lifecycle name or YAML path (default: the mapping's).
        source_tz: zone of timestamps written without one (default: the mapping's
            ``timezone``, else UTC).
        until: stop the clock here (aware); later events are not applied, and deadlines due
            before it fire. Default: the last event's time.
        progress: called with a :class:`~adapters.replay.progress.ReplayProgress` after every
            batch of commands and once at the end.
        encoding: the CSV's text encoding: ``utf-8`` (the default; a byte-order mark is
            allowed) or any codec Python knows, e.g. ``gb18030`` for an export of a Chinese
            system or Excel (it reads GBK too).

    Returns:
        A :class:`ReplayOutcome`; figures come from :func:`adapters.replay.report.build_report`.

    Raises:
        ConfigurationError: the mapping does not fit the lifecycle.
        UnknownEncoding: ``encoding`` is not a text encoding (before anything is written).
        UndecodableData (a ValueError): a byte of the file is not text in ``encoding``;
            found by the first pass, before any ticket is written (the lifecycle is deployed).
        MalformedCsv (a ValueError): the csv reader cannot read on (a quote never closed);
            found by the first pass too.
        ValueError: the file lacks columns the mapping names.
        TypeError: the engine's clock is not a VirtualClock.
        GridwhistleError: any error of the engine that is not a refusal: the open batch is
            rolled back and the replay stops.
    """
    started = time.perf_counter()
    text_codec(encoding)
    version = engine.deploy(lifecycle or mapping.lifecycle)
    lc = engine.lifecycle(version.name)
    check_mapping(mapping, lc)
    outcome = ReplayOutcome(lifecycle=version.name)
    verdict = mapping.verdict if mapping.verdict and mapping.verdict.computed else None
    actors: dict[tuple[str, str], Actor] = {}
    name = version.name

    with Scratch() as scratch:
        export = CsvExport(data, mapping, lc, mapping.zone(source_tz), encoding)
        survey = export.survey(scratch)

        def apply(plan: PlannedTicket, index: int) -> None:
            event = plan.events[index]
            key = (event.actor, event.role)
            actor = actors.get(key)
            if actor is None:
                actor = actors[key] = Actor(event.actor, event.role)
            if index == 0:
                fields = {**plan.fields, **event.fields} if event.fields else plan.fields
                # the city's own department names are kept (docs/replay.md)
                engine.report(name, fields, actor=actor, ticket_id=plan.ticket_id,
                              evidence=event.evidence or None, foreign_departments=True)
            else:
                engine.fire(plan.ticket_id, event.trigger, actor=actor,
                            fields=event.fields or None, reason=REPLAYED,
                            evidence=event.evidence or None, foreign_departments=True)

        def refused(plan: PlannedTicket, index: int, exc: CommandRefused) -> None:
            outcome.rejections.append(Rejection(plan.row, plan.ticket_id,
                                                refusal_reason(plan.events[index].trigger, exc)))
            if verdict is not None:
                scratch.forget(plan.ticket_id)

        timeline = Timeline(engine, apply, refused, until=until, progress=progress,
                            rows_total=lambda: survey.rows, started=started)
        ended_by = frozenset(verdict.ended_by) if verdict is not None else frozenset()

        def intake() -> Iterator[PlannedTicket]:
            for item in export.items(survey, scratch.folder):
                if isinstance(item, PlannedTicket):
                    if verdict is not None and (until is None or item.events[0].at <= until):
                        overdue, deadline = _expected(item, verdict.deadline or "", ended_by,
                                                      until)
                        scratch.expect(item.ticket_id, overdue, deadline)
                    yield item
                    continue
                timeline.rows += 1  # a plan is counted when the timeline takes it
                if isinstance(item, Repeat):
                    outcome.repeats += 1
                else:
                    outcome.rejections.append(item)

        if not survey.in_order:
            outcome.source_order = "sorted"
            if survey.disorder is not None:
                row, at, before, before_at = survey.disorder
                outcome.disorder = (f"row {row} is reported at {at.isoformat()}, before row "
                                    f"{before} ({before_at.isoformat()})")
        timeline.run(intake())
        outcome.rows = timeline.rows
        outcome.planned = timeline.planned
        outcome.events_applied = timeline.events_applied
        outcome.events_skipped_after_until = timeline.events_after_until
        outcome.started_at = timeline.first_at
        outcome.until = engine.clock.now()
        if verdict is not None:
            outcome.verdicts = compare_verdicts(engine, name, scratch, outcome.until)
    outcome.rejections.sort(key=lambda r: r.row)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _expected(plan: PlannedTicket, deadline_field: str, ended_by: frozenset[str],
              until: datetime | None) -> tuple[bool | None, datetime | None]:
    """The source's verdict on a plan: (overdue, or None while open; the deadline)."""
    deadline: Any = plan.fields.get(deadline_field)
    if not isinstance(deadline, datetime):
        return False, None  # no deadline: on time
    for event in plan.events:
        if event.trigger in ended_by:
            if until is not None and event.at > until:
                break
            return event.at > deadline, deadline  # the tie rule: ended <= deadline is on time
    return None, deadline


def compare_verdicts(engine: Engine, lifecycle: str, scratch: Scratch, as_of: datetime
                     ) -> dict[str, int]:
    """Compare the engine's overdue flags with the expectations in ``scratch``.

    Returns:
        ``{"compared", "agree", "disagree"}`` over every ticket with an expectation.
    """
    compared = agree = 0
    for chunk in scratch.expectations(as_of):
        page = find_tickets(engine, lifecycle=lifecycle, ids=[tid for tid, _ in chunk],
                            overdue=True, limit=len(chunk))
        overdue = {t.id for t in page.items}
        for tid, expected in chunk:
            compared += 1
            agree += (tid in overdue) == expected
    return {"compared": compared, "agree": agree, "disagree": compared - agree}
