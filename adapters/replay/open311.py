"""Replaying Open311 answers with notes (Chicago's) through lead and co-handling work orders.

The input is Open311 GeoReport v2 ``GET requests`` answers with Chicago's extensions.

Chicago's 311 answers carry a timeline of ``notes`` per request. The replay reads them as:

* the first note (``submitted`` or ``opened``): the ticket is reported (category =
  ``service_name``, department = ``agency_responsible``);
* ``opened``: the centre dispatches it, and the responsible agency gets the *lead* work
  order (accepted at once: it is the agency's own request);
* ``follow_on_created`` naming another agency: a *co-handling* work order to that agency
  (accepted at once), whose id is ``<request>/<follow-on request>``;
* ``follow_on_closed``: that work order is finished (a follow-on whose creation note is
  missing from the export is issued and finished then);
* ``closed``: the lead work order is finished, then the centre closes the ticket. The ticket
  is resolved by the resolution rule ``all`` — after its children — so a request closed
  while a follow-on is still open is refused, and shown as a rejection.

``activity`` notes change nothing and are not replayed. Events are applied in time order on
the virtual clock; deadlines (the work orders' own, from ``work_order.yaml``) fire on the way.
Agency names are kept as department names (they are not declared in the lifecycle).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.replay.replayer import ReplayOutcome
from adapters.replay.source import Rejection
from engine import Actor, CommandRefused, Departments, Engine

__all__ = ["CHICAGO_SAMPLE", "Open311Event", "Open311Outcome", "plan_requests",
           "replay_open311"]

CHICAGO_SAMPLE = Path(__file__).resolve().parent / "data" / "chicago311_open311_with_notes.json"
"""The bundled Chicago Open311 requests with notes (see ``data/PROVENANCE.md``)."""

BATCH_SIZE = 200
CENTRE = Actor("chicago311", "centre")
REPLAYED = "replayed from source data"


@dataclass(frozen=True)
class Open311Event:
    """One event of a request's timeline, as the replay applies it.

    Attributes:
        at: when (aware UTC); request: the request's id; row: its position in the file
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
class Open311Outcome(ReplayOutcome):
    """What an Open311 replay did: a replay outcome, and the ids of the requests replayed."""

    requests: list[str] = field(default_factory=list)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def plan_requests(data: list[dict[str, Any]]) -> tuple[list[Open311Event], list[Rejection]]:
    """Turn GeoReport v2 requests with notes into replay events (unsorted) and rejections.

    Raises:
        ValueError: the document is not a list of requests.
    """
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of Open311 service requests")
    events: list[Open311Event] = []
    rejections: list[Rejection] = []
    for row, req in enumerate(data, start=1):
        rid = str(req.get("service_request_id") or "")
        agency = str(req.get("agency_responsible") or "")
        notes = sorted(req.get("notes") or [], key=lambda n: _instant(n["datetime"]))
        if not rid or not agency or not notes:
            rejections.append(Rejection(row, rid or f"row {row}",
                                        "no id, agency_responsible or notes"))
            continue
        channel = (req.get("extended_attributes") or {}).get("channel")
        fields = {"category": str(req.get("service_name") or "unknown"), "department": agency,
                  **({"channel": str(channel)} if channel else {})}
        mine: list[Open311Event] = [Open311Event(_instant(notes[0]["datetime"]), rid, row,
                                                 "report", agency, fields=fields)]
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
        if not any(e.kind == "dispatch" for e in mine):
            rejections.append(Rejection(row, rid, "no 'opened' note"))
            continue
        events.extend(mine)
    return events, rejections


def replay_open311(
    engine: Engine,
    data: Path,
    *,
    lifecycle: str = "grid_incident",
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Open311Outcome:
    """Replay Open311 requests with notes into ``engine`` (whose clock is a VirtualClock).

    Args:
        engine: the engine to replay into.
        data: the JSON file (a list of GeoReport v2 requests with ``notes``).
        lifecycle: the tickets' lifecycle; it needs ``departments``/``routing`` (bundled
            ``grid_incident`` has them).
        until: stop the clock here (aware); later events are not applied.
        progress: called as ``progress(done, total)``.

    Raises:
        ValueError, OSError: the file cannot be read as Open311 JSON.
        NoRouting: the lifecycle has no routing table.
    """
    started = time.perf_counter()
    raw = json.loads(data.read_text(encoding="utf-8"))
    version = engine.deploy(lifecycle)
    routing = engine.lifecycle(version.name).spec.routing
    engine.lifecycle(routing.work_orders if routing is not None else "work_order")
    outcome = Open311Outcome(lifecycle=version.name, rows=len(raw))
    events, outcome.rejections = plan_requests(raw)
    outcome.requests = sorted({e.request for e in events}, key=lambda r: r)
    outcome.planned = len(outcome.requests)
    events.sort(key=lambda e: (e.at, e.row, _ORDER[e.kind]))
    if until is not None:
        kept = [e for e in events if e.at <= until]
        outcome.events_skipped_after_until = len(events) - len(kept)
        events = kept
    if events:
        outcome.started_at = events[0].at
        engine.clock.set(max(engine.clock.now(), events[0].at))  # type: ignore[attr-defined]
    departments = Departments(engine)
    failed: set[str] = set()
    for start in range(0, len(events), BATCH_SIZE):
        with engine.batch():
            for event in events[start:start + BATCH_SIZE]:
                if event.request in failed:
                    continue
                engine.run_until(event.at)
                try:
                    _apply(engine, departments, version.name, event)
                    outcome.events_applied += 1
                except CommandRefused as exc:
                    failed.add(event.request)
                    why = f"{event.kind}: {exc}"
                    if event.kind == "close":
                        still = [f"{o.id} ({o.department})"
                                 for o in departments.work_orders(event.request)
                                 if o.role == "co" and o.state not in _CLOSED]
                        why += f"; work orders still open: {', '.join(still) or 'none'}"
                    outcome.rejections.append(Rejection(event.row, event.request, why))
        if progress:
            progress(min(start + BATCH_SIZE, len(events)), len(events))
    end = until or (events[-1].at if events else engine.clock.now())
    with engine.batch():
        engine.run_until(max(end, engine.clock.now()))
    outcome.until = engine.clock.now()
    outcome.rejections.sort(key=lambda r: r.row)
    outcome.seconds = time.perf_counter() - started
    return outcome


_CLOSED = frozenset({"done", "withdrawn", "returned", "bounced"})
_ORDER = {"report": 0, "dispatch": 1, "follow_on_created": 2, "follow_on_closed": 3,
          "close": 4}


def _agency_actor(agency: str) -> Actor:
    return Actor(agency[:128], "department")


def _apply(engine: Engine, departments: Departments, lifecycle: str,
           event: Open311Event) -> None:
    rid = event.request
    if event.kind == "report":
        engine.report(lifecycle, event.fields, actor=CENTRE, ticket_id=rid, reason=REPLAYED)
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
