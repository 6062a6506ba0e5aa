"""Replaying service requests through a lifecycle on the virtual clock.

The plan (every row's events) is sorted by time; before each event the engine's virtual clock
moves to it, firing every deadline that fell due on the way (:meth:`Engine.run_until`), then
the event is applied as a command. Commands are written in batches (one transaction per batch,
one savepoint per command), so a refused command rolls back alone and never stops the replay.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from adapters.replay.evidence import evidence_problems
from adapters.replay.mapping import MappingSpec
from adapters.replay.source import (
    PlannedEvent,
    PlannedTicket,
    Rejection,
    missing_columns,
    read_rows,
)
from engine import Actor, CommandRefused, ConfigurationError, Engine, Lifecycle, load_definition

__all__ = ["ReplayOutcome", "check_mapping", "preflight", "replay"]

BATCH_SIZE = 500


@dataclass
class ReplayOutcome:
    """What a replay did: rows planned, rejections, events applied, wall time (seconds)."""

    lifecycle: str
    rows: int = 0
    planned: int = 0
    events_applied: int = 0
    events_skipped_after_until: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    started_at: datetime | None = None
    until: datetime | None = None
    seconds: float = 0.0


def check_mapping(mapping: MappingSpec, lifecycle: Lifecycle) -> None:
    """Check that the mapping's fields, triggers and roles exist in the lifecycle.

    Raises:
        ConfigurationError: listing every name that does not resolve.
    """
    spec = lifecycle.spec
    problems: list[str] = []
    triggers = {"report"} | {t.trigger for t in spec.transitions}
    for name in mapping.fields:
        if name not in spec.fields:
            problems.append(f"fields.{name}: no such field in lifecycle {spec.name!r}")
    for i, e in enumerate(mapping.events):
        if e.trigger not in triggers:
            problems.append(f"events[{i}].trigger: {e.trigger!r} is not a trigger of "
                            f"{spec.name!r}; triggers: {', '.join(sorted(triggers))}")
        if e.role not in spec.roles:
            problems.append(f"events[{i}].role: {e.role!r} is not a role of {spec.name!r}")
        for name in e.set:
            if name not in spec.fields:
                problems.append(f"events[{i}].set.{name}: no such field in {spec.name!r}")
    if mapping.verdict and mapping.verdict.field not in spec.fields:
        problems.append(f"verdict.field: {mapping.verdict.field!r} is not a field")
    problems += evidence_problems(mapping.evidence, {e.trigger for e in mapping.events},
                                  set(spec.evidence.tags) if spec.evidence else set())
    if problems:
        raise ConfigurationError(
            f"mapping {mapping.name!r} does not fit lifecycle {spec.name!r}:\n  "
            + "\n  ".join(problems)
        )


def preflight(data: Path, mapping: MappingSpec, lifecycle: str) -> None:
    """Check everything that can be checked before a database is touched.

    The lifecycle loads, the mapping fits it, and the CSV has every column the mapping names.

    Raises:
        UnknownDefinition, DefinitionError: the lifecycle cannot be loaded.
        ConfigurationError: the mapping does not fit the lifecycle.
        ValueError: the CSV lacks columns (the message lists them and the file's columns).
        OSError: the data file cannot be read.
    """
    compiled = Lifecycle(load_definition(lifecycle), strict=False)
    check_mapping(mapping, compiled)
    with data.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    missing = missing_columns(header, mapping)
    if missing:
        raise ValueError(
            f"{data}: columns {', '.join(missing)} named by mapping {mapping.name!r} are not "
            f"in the file; its columns: {', '.join(header) or '(none: the file is empty)'}"
        )


def replay(
    engine: Engine,
    data: Path,
    mapping: MappingSpec,
    *,
    lifecycle: str | None = None,
    source_tz: tzinfo = UTC,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayOutcome:
    """Replay the rows of ``data`` into ``engine`` (whose clock must be a VirtualClock).

    Args:
        engine: the engine to replay into.
        data: the CSV file.
        mapping: how columns become fields and events.
        lifecycle: lifecycle name or YAML path (default: the mapping's).
        source_tz: zone of timestamps written without one.
        until: stop the clock here (aware); later events are not applied, and deadlines due
            before it fire. Default: the last event's time.
        progress: called as ``progress(done, total)`` while events are applied.

    Returns:
        A :class:`ReplayOutcome`; figures come from :func:`adapters.replay.report.build_report`.

    Raises:
        ConfigurationError: the mapping does not fit the lifecycle.
    """
    started = time.perf_counter()
    version = engine.deploy(lifecycle or mapping.lifecycle)
    lc = engine.lifecycle(version.name)
    check_mapping(mapping, lc)
    outcome = ReplayOutcome(lifecycle=version.name)
    plans: list[PlannedTicket] = []
    for item in read_rows(data, mapping, lc, source_tz):
        outcome.rows += 1
        if isinstance(item, Rejection):
            outcome.rejections.append(item)
        else:
            plans.append(item)
    outcome.planned = len(plans)
    queue: list[tuple[datetime, int, int, PlannedTicket, PlannedEvent]] = [
        (ev.at, p.row, i, p, ev) for p in plans for i, ev in enumerate(p.events)
    ]
    queue.sort(key=lambda item: item[:3])
    if until is not None:
        kept = [q for q in queue if q[0] <= until]
        outcome.events_skipped_after_until = len(queue) - len(kept)
        queue = kept
    if queue:
        outcome.started_at = queue[0][0]
        engine.clock.set(max(engine.clock.now(), queue[0][0]))  # type: ignore[attr-defined]
    failed: set[str] = set()
    total = len(queue)
    for start in range(0, total, BATCH_SIZE):
        with engine.batch():
            for at, row, _, plan, event in queue[start:start + BATCH_SIZE]:
                if plan.ticket_id in failed:
                    continue
                engine.run_until(at)
                try:
                    _apply(engine, version.name, plan, event)
                    outcome.events_applied += 1
                except CommandRefused as exc:
                    failed.add(plan.ticket_id)
                    outcome.rejections.append(Rejection(row, plan.ticket_id,
                                                        f"{event.trigger}: {exc}"))
        if progress:
            progress(min(start + BATCH_SIZE, total), total)
    end = until or (queue[-1][0] if queue else engine.clock.now())
    with engine.batch():
        engine.run_until(max(end, engine.clock.now()))
    outcome.until = engine.clock.now()
    outcome.rejections.sort(key=lambda r: r.row)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _apply(engine: Engine, lifecycle: str, plan: PlannedTicket, event: PlannedEvent) -> None:
    actor = Actor(event.actor, event.role)
    if event.trigger == "report":
        engine.report(lifecycle, {**plan.fields, **event.fields}, actor=actor,
                      ticket_id=plan.ticket_id, evidence=event.evidence or None)
    else:
        engine.fire(plan.ticket_id, event.trigger, actor=actor, fields=event.fields or None,
                    reason="replayed from source data", evidence=event.evidence or None)
