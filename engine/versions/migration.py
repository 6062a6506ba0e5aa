"""Moving running tickets to another version of their lifecycle.

``Engine.deploy`` keeps every version (by content digest) and running tickets stay on the
version they were reported on. An administrator who wants chosen tickets to follow a new
version moves them with :meth:`Engine.migrate` (``gridwhistle migrate``). For each ticket, in
one transaction with the others:

* its state becomes ``state_map.get(state, state)``, which must exist in the new version; its
  level must exist there, and its fields must satisfy the new field declarations;
* its pending deadline timers are cancelled and its deadlines recomputed under the new version
  (SLA clocks, ladder budgets and lag timers carry over unchanged):
  ``after`` deadlines of the (mapped) state count from when the ticket entered its state;
  ticket deadlines (``stop_in``) that still run count from the report (``after``) or take their
  field (``at_field``); a ticket deadline already breached is not started again. A recomputed
  deadline already in the past falls due at the next ``run_due``;
* a history row of kind ``migration`` (trigger ``migrate``) records the versions, the state
  change and the new deadlines.

Given the new version itself (a :class:`~engine.definition.loader.Definition`, as
``gridwhistle migrate --workflow`` does), the move deploys it in the same transaction, after
every chosen ticket's move has been worked out against it: a refused migration deploys
nothing (``gw_definitions`` is as it was, and new reports keep running on the old version).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from engine.calendars.spans import due_after
from engine.definition.loader import Definition
from engine.errors import ConfigurationError, MigrationRefused
from engine.lifecycle.machine import Lifecycle
from engine.runtime.fields import DEFAULT_TEXT_LENGTH, check_fields
from engine.runtime.kernel import Kernel
from engine.runtime.model import Actor, Ticket
from engine.runtime.working import TicketRecord
from engine.store.tables import definitions, history, tickets, timers

__all__ = ["move_tickets", "plan_migration"]

_ENTRY_KINDS = ("report", "transition", "migration")

Planned = tuple[str, str | None, datetime]
"""A deadline timer to create: ``(name, owning state or None, due)``."""


def plan_migration(
    conn: Connection, rec: TicketRecord, new: Lifecycle, state_map: dict[str, str],
    text_length: int = DEFAULT_TEXT_LENGTH,
) -> tuple[str, list[Planned], list[str]]:
    """Work out one ticket's move: ``(new state, deadline timers to create, problems)``.

    Args:
        conn: a connection that sees the ticket's history and timers.
        rec: the ticket as staged.
        new: the target lifecycle version.
        state_map: old state → new state; unmapped states keep their name.
        text_length: the engine's longest text for fields without ``max_length``.

    An empty ``problems`` list means the move is possible.
    """
    tid = rec.id
    dest = state_map.get(rec.state, rec.state)
    problems: list[str] = []
    if dest not in new.spec.states:
        problems.append(f"state {dest!r} does not exist in {new.name} (states: "
                        f"{', '.join(new.spec.states)})")
    if rec.level not in new.levels:
        problems.append(f"level {rec.level!r} does not exist in {new.name}")
    _, errors = check_fields(new.spec.fields, rec.fields, require=True,
                             text_length=text_length)
    problems += [f"field {k}: {v}" for k, v in sorted(errors.items())]
    if problems:
        return dest, [], problems

    rows = conn.execute(
        select(history.c.kind, history.c.at, history.c.data).where(history.c.ticket_id == tid)
        .order_by(history.c.seq)
    ).all()
    entered = next((r.at for r in reversed(rows) if r.kind in _ENTRY_KINDS
                    and not (r.data or {}).get("internal")), rec.created_at)
    breached = set(conn.execute(
        select(timers.c.name).where(timers.c.ticket_id == tid, timers.c.state.is_(None),
                                    timers.c.status.in_(("fired", "stale")))
    ).scalars())
    out: list[Planned] = []
    for d in new.state_deadlines.get(dest, ()):
        if d.spec.after is not None:
            out.append((d.name, dest, due_after(new.calendars, d.spec.after, entered)))
    if dest not in new.final_states:
        for d in new.ticket_deadlines:
            if dest in (d.spec.stop_in or ()) or d.name in breached:
                continue
            if d.spec.after is not None:
                due = due_after(new.calendars, d.spec.after, rec.created_at)
            else:
                raw = rec.fields.get(d.spec.at_field or "")
                if raw is None:
                    continue
                due = datetime.fromisoformat(raw)
            out.append((d.name, None, due))
    return dest, out, []


def move_tickets(
    kernel: Kernel, lifecycle: str | Definition, ticket_ids: Sequence[str] | None,
    version: int | None, state_map: dict[str, str], actor: Actor, reason: str | None,
) -> list[Ticket]:
    """Apply :meth:`Engine.migrate`: every chosen ticket moves, or (on a problem) none does.

    ``lifecycle``: the lifecycle's name (move to a deployed version), or the new version
    itself, deployed in the move's transaction once every move is known to be possible.

    Returns:
        The tickets after the move.

    Raises:
        ConfigurationError, TicketNotFound, MigrationRefused, ConcurrencyConflict,
        DefinitionError (a Definition naming a callback the registry lacks).
    """
    handler = kernel.handler
    definition: Definition | None = None
    compiled: Lifecycle | None = None
    if isinstance(lifecycle, Definition):
        if version is not None:
            raise ConfigurationError(
                "give Engine.migrate either the new version (a Definition, deployed with the "
                "move) or the version number of a deployed one, not both")
        definition, compiled = kernel.catalog.compile(lifecycle)
        name = definition.name
    else:
        name = lifecycle
    moved: list[Ticket] = []
    with kernel.compound() as u:
        def target_of(conn: Connection) -> Any:
            if definition is not None:
                return kernel.catalog.stored_id(conn, definition)
            query = select(definitions.c.id).where(definitions.c.name == name)
            if version is not None:
                query = query.where(definitions.c.version == version)
            return conn.execute(query.order_by(definitions.c.version.desc()).limit(1)).scalar()

        found = u.query(target_of)
        target_id: int | None = None if found is None else int(found)
        if target_id is not None:
            new = kernel.lifecycle_by_id(target_id)
        elif compiled is not None:
            new = compiled  # deployed below, once every move is known to be possible
        else:
            raise ConfigurationError(
                f"lifecycle {name!r} has no deployed version {version or ''}; deploy it "
                "first (Engine.deploy, or gridwhistle migrate --workflow)")
        if ticket_ids is None:
            def candidates(conn: Connection) -> list[str]:
                all_versions = select(definitions.c.id).where(definitions.c.name == name)
                finals = {s for i in conn.execute(all_versions).scalars()
                          for s in kernel.catalog.by_id(conn, int(i)).final_states}
                query = (select(tickets.c.id)
                         .where(tickets.c.definition_id.in_(all_versions),
                                tickets.c.state.not_in(sorted(finals | {""})))
                         .order_by(tickets.c.id))
                if target_id is not None:
                    query = query.where(tickets.c.definition_id != target_id)
                return list(conn.execute(query).scalars())

            ids = u.query(candidates)
        else:
            ids = list(ticket_ids)
        plans: list[tuple[str, str, list[Planned]] | Ticket] = []
        for tid in ids:
            rec = u.ticket(tid)
            if rec.lifecycle.name != name:
                raise MigrationRefused(tid, [f"it runs on lifecycle {rec.lifecycle.name!r}"])
            if rec.definition_id == target_id:
                plans.append(handler.snapshot(rec))
                continue
            dest, new_timers, problems = u.query(
                functools.partial(plan_migration, rec=rec, new=new, state_map=state_map,
                                  text_length=kernel.limits.text_length))
            if problems:
                raise MigrationRefused(tid, problems)
            plans.append((tid, dest, new_timers))
        if target_id is not None:
            _apply(handler, plans, target_id, actor, reason, moved)
        else:
            assert definition is not None and compiled is not None
            with kernel.deploying(definition, compiled) as info:
                _apply(handler, plans, info.id, actor, reason, moved)
    return moved


def _apply(handler: Any, plans: Sequence[tuple[str, str, list[Planned]] | Ticket],
           target_id: int, actor: Actor, reason: str | None, moved: list[Ticket]) -> None:
    """Stage the planned moves (a Ticket: already on the target version, unchanged)."""
    for plan in plans:
        if isinstance(plan, Ticket):
            moved.append(plan)
            continue
        tid, dest, new_timers = plan
        moved.append(handler.snapshot(handler.migrate(
            tid, target_id, dest, new_timers, actor=actor, reason=reason)))
