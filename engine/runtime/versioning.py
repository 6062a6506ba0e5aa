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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select, update

from engine.errors import ConcurrencyConflict, ConfigurationError, MigrationRefused
from engine.lifecycle.machine import Lifecycle
from engine.runtime.fields import check_fields
from engine.runtime.model import Actor, Ticket
from engine.store import statements as S
from engine.store.tables import definitions, history, tickets, timers

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["move_tickets", "plan_migration"]

_ENTRY_KINDS = ("report", "transition", "migration")

MOVE_TICKET = (
    update(tickets)
    .where(tickets.c.id == bindparam("b_id"), tickets.c.row_version == bindparam("b_version"))
    .values(definition_id=bindparam("b_def"), state=bindparam("b_state"),
            row_version=bindparam("b_new_version"),
            updated_at=bindparam("b_now", type_=tickets.c.updated_at.type))
)
"""Move a ticket to another definition version (optimistic, like every ticket update)."""

CANCEL_ALL = (
    update(timers)
    .where(timers.c.ticket_id == bindparam("b_id"), timers.c.status == "pending",
           timers.c.name.not_like("%:%"))
    .values(status="cancelled")
)
"""Cancel the ticket's deadline timers; SLA clock, ladder budget and lag timers (``name:...``)
carry over: those clocks keep running across a migration."""


def plan_migration(
    conn: Connection, row: Any, old: Lifecycle, new: Lifecycle, state_map: dict[str, str],
    now: datetime,
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Work out one ticket's move: ``(new state, timer rows to create, problems)``.

    Args:
        conn: the transaction's connection (reads the ticket's history and timers).
        row: the ticket's ``gw_tickets`` row.
        old: the ticket's current lifecycle version.
        new: the target lifecycle version.
        state_map: old state → new state; unmapped states keep their name.
        now: the migration instant (aware UTC).

    An empty ``problems`` list means the move is possible.
    """
    tid = row["id"]
    state = row["state"]
    dest = state_map.get(state, state)
    problems: list[str] = []
    if dest not in new.spec.states:
        problems.append(f"state {dest!r} does not exist in {new.name} (states: "
                        f"{', '.join(new.spec.states)})")
    if row["level"] not in new.levels:
        problems.append(f"level {row['level']!r} does not exist in {new.name}")
    _, errors = check_fields(new.spec.fields, row["fields"], require=True)
    problems += [f"field {k}: {v}" for k, v in sorted(errors.items())]
    if problems:
        return dest, [], problems

    rows = conn.execute(
        select(history.c.kind, history.c.at).where(history.c.ticket_id == tid)
        .order_by(history.c.seq)
    ).all()
    entered = next((r.at for r in reversed(rows) if r.kind in _ENTRY_KINDS), row["created_at"])
    breached = set(conn.execute(
        select(timers.c.name).where(timers.c.ticket_id == tid, timers.c.state.is_(None),
                                    timers.c.status.in_(("fired", "stale")))
    ).scalars())
    out: list[dict[str, Any]] = []
    for d in new.state_deadlines.get(dest, ()):
        if d.spec.after is not None:
            out.append(_timer(tid, d.name, dest, entered + d.spec.after, now))
    if dest not in new.final_states:
        for d in new.ticket_deadlines:
            if dest in (d.spec.stop_in or ()) or d.name in breached:
                continue
            if d.spec.after is not None:
                due = row["created_at"] + d.spec.after
            else:
                raw = row["fields"].get(d.spec.at_field or "")
                if raw is None:
                    continue
                due = datetime.fromisoformat(raw)
            out.append(_timer(tid, d.name, None, due, now))
    return dest, out, []


def _timer(tid: str, name: str, state: str | None, due: datetime, now: datetime
           ) -> dict[str, Any]:
    return dict(ticket_id=tid, name=name, state=state, due_at=due, status="pending",
                created_at=now, fired_at=None)


def move_tickets(
    engine: Engine, conn: Connection, lifecycle: str, ticket_ids: Sequence[str] | None,
    version: int | None, state_map: dict[str, str], actor: Actor, reason: str | None,
) -> tuple[list[Ticket], list[dict[str, Any]]]:
    """Apply :meth:`Engine.migrate` in ``conn``'s transaction.

    Returns:
        ``(tickets after the move, timer rows created)``.
    """
    query = select(definitions.c.id).where(definitions.c.name == lifecycle)
    if version is not None:
        query = query.where(definitions.c.version == version)
    target_id = conn.execute(query.order_by(definitions.c.version.desc()).limit(1)).scalar()
    if target_id is None:
        raise ConfigurationError(
            f"lifecycle {lifecycle!r} has no deployed version {version or ''}; deploy it "
            "first (Engine.deploy, or gridwhistle migrate --workflow)")
    new = engine._lifecycle_by_id(conn, target_id)
    if ticket_ids is None:
        all_versions = select(definitions.c.id).where(definitions.c.name == lifecycle)
        finals = {s for i in conn.execute(all_versions).scalars()
                  for s in engine._lifecycle_by_id(conn, i).final_states}
        ids: list[str] = list(conn.execute(
            select(tickets.c.id)
            .where(tickets.c.definition_id.in_(all_versions),
                   tickets.c.definition_id != target_id,
                   tickets.c.state.not_in(sorted(finals | {""})))
            .order_by(tickets.c.id)).scalars())
    else:
        ids = list(ticket_ids)
    now = engine.clock.now()
    moved: list[Ticket] = []
    created: list[dict[str, Any]] = []
    for tid in ids:
        row = engine._load(conn, tid)
        old = engine._lifecycle_by_id(conn, row["definition_id"])
        if old.name != lifecycle:
            raise MigrationRefused(tid, [f"it runs on lifecycle {old.name!r}"])
        if row["definition_id"] == target_id:
            moved.append(engine._snapshot(old, target_id, tid, row["state"], row["level"],
                                          row["fields"], row["overdue"], row["created_at"],
                                          row["updated_at"], row["row_version"]))
            continue
        dest, new_timers, problems = plan_migration(conn, row, old, new, state_map, now)
        if problems:
            raise MigrationRefused(tid, problems)
        conn.execute(CANCEL_ALL, {"b_id": tid})
        seq = row["row_version"] + 1
        entry = dict(
            ticket_id=tid, seq=seq, at=now, kind="migration", trigger="migrate",
            from_state=row["state"], to_state=dest, from_level=row["level"],
            to_level=row["level"], actor=actor.id, role=actor.role, reason=reason,
            data={"from_version": engine._versions[row["definition_id"]].version,
                  "to_version": engine._versions[target_id].version,
                  "deadlines": {t["name"]: t["due_at"].isoformat() for t in new_timers}},
        )
        result = conn.execute(MOVE_TICKET, dict(
            b_id=tid, b_version=row["row_version"], b_def=target_id, b_state=dest,
            b_new_version=seq, b_now=now))
        if result.rowcount != 1:
            actual = conn.execute(S.TICKET_VERSION, {"b_id": tid}).scalar()
            raise ConcurrencyConflict(tid, row["row_version"], actual)
        conn.execute(S.INSERT_HISTORY, entry)
        if new_timers:
            conn.execute(S.INSERT_TIMERS, new_timers)
        created += new_timers
        engine._announce(conn, new, [entry], row["fields"])
        moved.append(engine._snapshot(new, target_id, tid, dest, row["level"], row["fields"],
                                      row["overdue"], row["created_at"], now, seq))
    return moved, created
