"""What a new lifecycle version would change: replay history against it and compare.

Before moving tickets to a new version (``gridwhistle migrate``), ``gridwhistle impact``
replays what people did to the tickets — each report with its fields and each transition not
fired by the system, at its recorded instant — twice on a virtual clock, in throw-away SQLite
stores: once on each ticket's current version, once on the new one. Escalations fired by the
system are not replayed: they follow from the deadlines of the version being tried. The two
outcomes are compared ticket by ticket (:func:`compare_stores`): the state and level reached,
the deadlines still pending and their due times, and the deadlines breached.

A command carries again the attachments its history row recorded (``data["evidence"]``):
the replay stores hold the uploads' records (media type, size; not the files), so a grid
worker's report with its photo and a resolution with its after photo meet the evidence
requirements as they did, and a version that asks for more refuses them.

A command the new version refuses (its trigger or role no longer exists from that state, the
evidence it asks for is missing) is reported for the ticket (``refused``), and the ticket's
later commands are skipped. A command the ticket's *current* version refuses on replay
(``not_replayed``) means its path was decided by something the replay does not repeat; such
a ticket is listed too, so that nobody reads its silence as "no change". Not replayed:
commands fired by the system (a suspension's automatic resumption included) and the work
orders' own commands (their lifecycle is another). People's oversight commands (extension
requests and decisions, suspensions and resumptions, supervision notices) are replayed with
the arguments their rows recorded.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from engine.clock import VirtualClock
from engine.definition.loader import Definition, parse_definition
from engine.errors import CommandRefused
from engine.lifecycle.registry import Registry
from engine.runtime.model import Actor
from engine.store.evidence_tables import blobs
from engine.store.reads import in_chunks
from engine.store.tables import definitions, history, tickets, timers

__all__ = ["Command", "TicketImpact", "compare_stores", "impact_of", "stored_commands",
           "uploads_of"]


@dataclass(frozen=True)
class Command:
    """One replayable command taken from history (``trigger`` ``report`` creates the ticket)."""

    at: datetime
    ticket_id: str
    seq: int
    trigger: str
    actor: Actor
    reason: str | None
    fields: dict[str, Any]
    level: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()
    """The attachments the command carried (its history row's ``data["evidence"]``)."""
    kind: str = "transition"
    """The history row's kind: ``report``, ``transition`` or an oversight command's
    (:data:`OVERSIGHT_KINDS`)."""
    data: dict[str, Any] = field(default_factory=dict)
    """The history row's data (an oversight command's arguments)."""


OVERSIGHT_KINDS = ("extension_requested", "extension_approved", "extension_refused",
                   "suspended", "resumed", "supervision_notice")
"""History rows of people's oversight commands (engine.oversight), replayed as such."""


@dataclass(frozen=True)
class TicketImpact:
    """How one ticket fares under the new version compared with its current one.

    Attributes:
        ticket_id: the ticket.
        state: ``(current version, new version)`` final state (None: not created).
        level: likewise, the final whistle level.
        deadlines: deadline name → ``(due now, due under the new version)`` for pending
            deadlines whose due time differs (None: no such pending deadline).
        new_breaches: deadlines breached under the new version only (name, due time).
        gone_breaches: deadlines breached under the current version only.
        refused: the first command the new version refused, with the reason.
        not_replayed: the first command the ticket's *current* version refused, with the
            reason: its history cannot be replayed, so its comparison is incomplete (e.g.
            what it did outside its own lifecycle's commands decided its path).
    """

    ticket_id: str
    state: tuple[str | None, str | None]
    level: tuple[str | None, str | None]
    deadlines: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)
    new_breaches: tuple[tuple[str, str], ...] = ()
    gone_breaches: tuple[tuple[str, str], ...] = ()
    refused: str | None = None
    not_replayed: str | None = None

    @property
    def changed(self) -> bool:
        """True when anything differs (or the ticket could not be replayed: look at it)."""
        return (self.state[0] != self.state[1] or self.level[0] != self.level[1]
                or bool(self.deadlines or self.new_breaches or self.gone_breaches
                        or self.refused or self.not_replayed))


def stored_commands(engine: Any, lifecycle: str) -> tuple[dict[int, Definition],
                                                            dict[str, int], list[Command]]:
    """Read a store's replayable commands for ``lifecycle``.

    Returns:
        ``(versions, ticket_version, commands)``: each stored definition version by id, each
        ticket's definition id, and the commands in time order.
    """
    with engine.db.read() as conn:
        defs = {r.id: parse_definition(r.source, file=f"<{r.name} v{r.version}>")
                for r in conn.execute(select(definitions).where(definitions.c.name == lifecycle))}
        stored = conn.execute(select(tickets.c.id, tickets.c.definition_id, tickets.c.fields)
                              .where(tickets.c.definition_id.in_(list(defs)))).all()
        owner = {r.id: r.definition_id for r in stored}
        now_fields = {r.id: dict(r.fields) for r in stored}
        rows = conn.execute(
            select(history).where(history.c.ticket_id.in_(list(owner)),
                                  history.c.kind.in_(("report", "transition",
                                                      *OVERSIGHT_KINDS)),
                                  history.c.role != "system")
            .order_by(history.c.at, history.c.ticket_id, history.c.seq)).mappings().all()
    later: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["kind"] == "transition":
            later[r["ticket_id"]] |= set((r["data"] or {}).get("fields") or {})
    commands = []
    for r in rows:
        fields = dict((r["data"] or {}).get("fields") or {})
        if r["kind"] == "report" and not r["data"]:
            # reported before report rows kept their fields: take today's fields, less
            # those a later transition set (those are replayed with it)
            fields = {k: v for k, v in now_fields[r["ticket_id"]].items()
                      if k not in later[r["ticket_id"]]}
        if r["kind"] in OVERSIGHT_KINDS:
            fields = {}  # an approved extension's or a resumption's fields follow from it
        evidence = tuple(dict(e) for e in (r["data"] or {}).get("evidence") or ())
        commands.append(Command(r["at"], r["ticket_id"], r["seq"], r["trigger"],
                                Actor(r["actor"], r["role"]), r["reason"], fields,
                                r["to_level"] if r["kind"] == "report" else None, evidence,
                                r["kind"], dict(r["data"] or {})))
    return defs, owner, commands


def uploads_of(engine: Any, commands: Iterable[Command]) -> list[dict[str, Any]]:
    """The stored uploads (``gw_blobs`` rows) the commands' evidence names.

    A replay store holds them too, so that a command that carried a photo carries it again
    and the lifecycle's evidence requirements are checked as they were (the files themselves
    are not copied: the checks read the upload's media type and size).
    """
    digests = sorted({e["upload"] for c in commands for e in c.evidence
                      if isinstance(e.get("upload"), str)})
    if not digests:
        return []
    with engine.db.read() as conn:
        return [dict(r) for chunk in in_chunks(digests)
                for r in conn.execute(select(blobs).where(
                    blobs.c.sha256.in_(chunk))).mappings()]


EngineFactory = Callable[..., Any]
"""Makes an engine: ``factory(path, clock=VirtualClock, registry=Registry)``."""


def replay_commands(
    definition: Definition, commands: Iterable[Command], until: datetime, folder: Path,
    registry: Registry | None = None, *, engine_factory: EngineFactory,
    uploads: Sequence[Mapping[str, Any]] = (),
) -> tuple[Any, dict[str, str]]:
    """Replay ``commands`` on ``definition`` in a fresh SQLite store under ``folder``.

    Args:
        definition: the version to replay on.
        commands: the commands to replay (sorted here by time).
        until: run the virtual clock to this instant at the end (aware UTC).
        folder: where the throw-away SQLite file goes.
        registry: host guards and actions.
        engine_factory: makes the throw-away engine (the public ``Engine`` class).
        uploads: ``gw_blobs`` rows the commands' evidence names (:func:`uploads_of`).

    Returns ``(engine, refused)``: the engine (stop it when done) and ticket id → the first
    command the definition refused.
    """
    ordered = sorted(commands, key=lambda c: (c.at, c.ticket_id, c.seq))
    start = ordered[0].at if ordered else until
    eng = engine_factory(folder / f"{definition.digest[:12]}.sqlite",
                         clock=VirtualClock(start), registry=registry)
    eng.deploy(definition)
    if uploads:
        with eng.db.write() as conn:
            conn.execute(insert(blobs), [dict(u) for u in uploads])
    refused: dict[str, str] = {}
    with eng.batch():
        for c in ordered:
            if c.ticket_id in refused:
                continue
            eng.run_until(max(c.at, eng.clock.now()))
            try:
                if c.kind in OVERSIGHT_KINDS:
                    _oversight(eng, c)
                elif c.trigger == "report":
                    # a department name the store accepted (a replayed city's) is replayed
                    # as it was: the version's departments are not judged again here
                    eng.report(definition.name, c.fields, actor=c.actor, ticket_id=c.ticket_id,
                               level=c.level, reason=c.reason, evidence=c.evidence or None,
                               foreign_departments=True)
                else:
                    eng.fire(c.ticket_id, c.trigger, actor=c.actor, reason=c.reason,
                             fields=c.fields or None, evidence=c.evidence or None,
                             foreign_departments=True)
            except CommandRefused as exc:
                what = c.trigger if c.kind in ("report", "transition") else c.kind
                refused[c.ticket_id] = f"{what} at {c.at.isoformat()}: {exc}"
        eng.run_until(max(until, eng.clock.now()))
    return eng, refused


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _oversight(eng: Any, c: Command) -> None:
    """Replay one oversight command from its history row (engine.oversight's arguments)."""
    d, reason = c.data, c.reason or ""
    if c.kind == "extension_requested":
        eng.request_extension(c.ticket_id, str(d.get("deadline") or c.trigger),
                              proposed_due=_instant(d.get("proposed_due")), reason=reason,
                              actor=c.actor,
                              department=d.get("department"))
    elif c.kind in ("extension_approved", "extension_refused"):
        approve = c.kind == "extension_approved"
        eng.decide_extension(c.ticket_id, int(d["n"]), approve=approve, reason=reason,
                             actor=c.actor,
                             due_at=_instant(d.get("new_due")) if approve else None)
    elif c.kind == "suspended":
        eng.suspend(c.ticket_id, str(d.get("cause") or c.trigger), reason=reason,
                    actor=c.actor, until=_instant(d.get("until")),
                    department=d.get("department"))
    elif c.kind == "resumed":
        eng.resume(c.ticket_id, reason=reason, actor=c.actor)
    else:  # supervision_notice
        eng.send_notice(c.ticket_id, text=reason, actor=c.actor,
                        department=d.get("department"), reply_due=_instant(d.get("reply_due")))


def _outcomes(engine: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with engine.db.read() as conn:
        for r in conn.execute(select(tickets.c.id, tickets.c.state, tickets.c.level)):
            out[r.id] = {"state": r.state, "level": r.level, "pending": {}, "breaches": set()}
        for t in conn.execute(select(timers).where(timers.c.status == "pending")).mappings():
            out[t["ticket_id"]]["pending"][t["name"]] = t["due_at"]
        for h in conn.execute(select(history.c.ticket_id, history.c.trigger, history.c.data)
                              .where(history.c.kind == "breach")):
            out[h.ticket_id]["breaches"].add((h.trigger, (h.data or {}).get("due_at", "")))
    return out


def compare_stores(
    current: Any, new: Any, refused: dict[str, str] | None = None,
    not_replayed: dict[str, str] | None = None,
) -> list[TicketImpact]:
    """Compare the tickets of two engines' stores (current outcome, new outcome), by id.

    ``refused`` / ``not_replayed``: ticket id → the first command the new / the current
    version refused; such a ticket is listed even when neither store holds it (its report
    was the command refused).
    """
    a, b = _outcomes(current), _outcomes(new)
    refused = refused or {}
    not_replayed = not_replayed or {}
    empty: dict[str, Any] = {"state": None, "level": None, "pending": {}, "breaches": set()}
    out: list[TicketImpact] = []
    for tid in sorted(set(a) | set(b) | set(refused) | set(not_replayed)):
        x, y = a.get(tid, empty), b.get(tid, empty)
        moved = {name: (x["pending"].get(name), y["pending"].get(name))
                 for name in sorted(set(x["pending"]) | set(y["pending"]))
                 if x["pending"].get(name) != y["pending"].get(name)}
        new = sorted(y["breaches"] - x["breaches"])
        gone = sorted(x["breaches"] - y["breaches"])
        _pair_moved_breaches(moved, new, gone)
        out.append(TicketImpact(
            tid, (x["state"], y["state"]), (x["level"], y["level"]), moved,
            tuple(new), tuple(gone), refused.get(tid), not_replayed.get(tid)))
    return out


def _pair_moved_breaches(
    moved: dict[str, tuple[datetime | None, datetime | None]],
    new: list[tuple[str, str]], gone: list[tuple[str, str]],
) -> None:
    """Count a deadline breached under both versions, at different due times, as moved.

    A shortened (or lengthened) deadline that is missed either way is one deadline whose due
    time moved, not one breach gone and another new: each such pair (same name, in due order)
    leaves ``new`` and ``gone`` (changed in place) for ``moved`` (old due, new due). A name
    already in ``moved`` (a pending timer that differs too) keeps its breaches as they are.
    """
    for name in sorted({n for n, _ in new} & {n for n, _ in gone}):
        if name in moved:
            continue
        olds = [b for b in gone if b[0] == name]
        news = [b for b in new if b[0] == name]
        for old, fresh in zip(olds, news, strict=False):
            if not old[1] or not fresh[1]:
                continue
            gone.remove(old)
            new.remove(fresh)
            moved[name] = (datetime.fromisoformat(old[1]), datetime.fromisoformat(fresh[1]))


def impact_of(
    engine: Any, new: Definition, *, until: datetime | None = None,
    registry: Registry | None = None, engine_factory: EngineFactory,
) -> list[TicketImpact]:
    """Replay a store's history of ``new.name`` on its current versions and on ``new``.

    Args:
        engine: the Engine whose store holds the tickets.
        new: the candidate lifecycle version.
        until: run both virtual clocks to this instant (default: ``engine.clock.now()``).
        registry: host guards and actions (default: the engine's).
        engine_factory: makes the throw-away engines (the public ``Engine`` class).

    Returns:
        One :class:`TicketImpact` per ticket, by id (``changed`` tells which differ).
    """
    defs, owner, commands = stored_commands(engine, new.name)
    until = until or engine.clock.now()
    registry = registry or engine.registry
    by_version: dict[int, list[Command]] = defaultdict(list)
    for c in commands:
        by_version[owner[c.ticket_id]].append(c)
    uploads = uploads_of(engine, commands)
    out: list[TicketImpact] = []
    with tempfile.TemporaryDirectory(prefix="gridwhistle-impact-") as folder:
        new_eng, refused = replay_commands(new, commands, until, Path(folder), registry,
                                           engine_factory=engine_factory, uploads=uploads)
        try:
            for def_id, cmds in sorted(by_version.items()):
                sub = Path(folder) / f"v{def_id}"
                sub.mkdir()
                cur_eng, failed = replay_commands(defs[def_id], cmds, until, sub, registry,
                                                  engine_factory=engine_factory,
                                                  uploads=uploads)
                try:
                    ids = {c.ticket_id for c in cmds}
                    out += [i for i in compare_stores(cur_eng, new_eng, refused, failed)
                            if i.ticket_id in ids]
                finally:
                    cur_eng.stop()
        finally:
            new_eng.stop()
    return sorted(out, key=lambda i: i.ticket_id)
