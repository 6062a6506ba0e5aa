"""The facts figures are computed from: one *unit* per ticket, or per department's share.

Read with SQL from the stored tables (history is the source of truth):

* a **ticket unit** per ticket of the lifecycle (``by`` level, period or all): its report
  instant, current state and level, the first dispatch, arrival and resolution, its
  escalation hops and the bounces of its work orders;
* a **department unit** per work order (``by`` department), timed from the parent's report;
  a ticket without work orders is one unit of the department in its ``department`` field
  (e.g. a replayed city export); a ticket with neither counts under no department.

Further facts (extensions, satisfaction, ...) plug in as :class:`FactLoader` functions
registered with :func:`register_facts`: each returns per ticket id a mapping merged into
:attr:`Unit.extra`, where a :class:`~engine.reports.figures.Figure` reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from engine.store.department_tables import work_orders
from engine.store.tables import definitions, history, tickets

__all__ = [
    "BOUNCE_TRIGGER",
    "WORK_ORDER_DONE",
    "FactLoader",
    "Milestones",
    "Unit",
    "department_units",
    "milestones_of",
    "register_facts",
    "ticket_units",
]

BOUNCE_TRIGGER = "bounce"
"""The work-order trigger ``Departments.bounce`` fires (workflows/work_order.yaml)."""

WORK_ORDER_DONE = "done"
"""The work-order state that counts as resolved (workflows/work_order.yaml)."""

FactLoader = Callable[[Connection, Select[Any]], Mapping[str, Mapping[str, Any]]]
"""``(conn, select of ticket ids) -> {ticket_id: {fact: value}}`` for :attr:`Unit.extra`."""

_LOADERS: dict[str, FactLoader] = {}


def register_facts(name: str, loader: FactLoader) -> None:
    """Add (or replace) a fact loader; its facts appear in every unit's ``extra``.

    Args:
        name: the loader's name (one loader per name).
        loader: called once per report with the connection and a ``SELECT`` of the ids of
            the report's tickets; returns facts by ticket id (tickets it omits get none).
    """
    _LOADERS[name] = loader


@dataclass(frozen=True)
class Milestones:
    """Which history rows mark the timed steps of a ticket.

    Attributes:
        dispatch: triggers that dispatch (first one counts).
        on_site: triggers that mark arrival on site.
        resolved_states: states whose first entry means resolved.
        closed_states: final states that count as closed (办结); others (``merged``, void
            states) do not.
        excluded_states: final states that are not a closure (a merged duplicate).
        void_states: final states of voided tickets (作废): counted apart, out of the
            closure rate's denominator.
        escalation_triggers: triggers whose level-changing transitions are escalations.
    """

    dispatch: frozenset[str]
    on_site: frozenset[str]
    resolved_states: frozenset[str]
    closed_states: frozenset[str]
    excluded_states: frozenset[str]
    escalation_triggers: frozenset[str]
    void_states: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Unit:
    """One ticket, or one department's share of a ticket, with the facts figures read.

    Attributes:
        ticket_id: the ticket (the parent, for a work order); ``work_order``: the work
            order's id, or None.
        department: the work order's department, or the ticket's ``department`` field.
        role: ``lead`` or ``co`` for a work order; None otherwise.
        level: the ticket's (or work order's) current whistle level.
        reported_at: the ticket's report instant (aware UTC).
        dispatched_at, on_site_at, resolved_at: first dispatch (a work order: its issue),
            arrival and resolution, or None.
        closed: resolved for good (a closed ticket, a done work order).
        merged: a duplicate merged into another ticket.
        voided: voided (作废, with a reason); not a closure, not in the closure rate.
        overdue: its resolution deadline was breached.
        bounces: bounce-backs (of the ticket's work orders, or of this work order).
        escalations: the level reached by each escalation hop, in order.
        extra: facts from registered loaders (see :func:`register_facts`).
    """

    ticket_id: str
    work_order: str | None
    department: str | None
    role: str | None
    level: str
    reported_at: datetime
    dispatched_at: datetime | None
    on_site_at: datetime | None
    resolved_at: datetime | None
    closed: bool
    merged: bool
    overdue: bool
    bounces: int
    escalations: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    voided: bool = False


@dataclass
class _Steps:
    dispatched_at: datetime | None = None
    on_site_at: datetime | None = None
    resolved_at: datetime | None = None
    bounces: int = 0
    escalations: list[str] = field(default_factory=list)


def _parents(lifecycle: str, since: datetime | None, until: datetime | None) -> Select[Any]:
    ids = select(definitions.c.id).where(definitions.c.name == lifecycle)
    query = select(tickets.c.id).where(tickets.c.definition_id.in_(ids))
    if since is not None:
        query = query.where(tickets.c.created_at >= since)
    if until is not None:
        query = query.where(tickets.c.created_at < until)
    return query


def _steps(conn: Connection, ids: Select[Any], m: Milestones, *, work_order: bool
           ) -> dict[str, _Steps]:
    out: dict[str, _Steps] = {}
    rows = conn.execute(
        select(history.c.ticket_id, history.c.at, history.c.trigger, history.c.from_state,
               history.c.to_state, history.c.from_level, history.c.to_level)
        .where(history.c.ticket_id.in_(ids), history.c.kind == "transition")
        .order_by(history.c.id))
    for tid, at, trigger, from_state, to_state, from_level, to_level in rows:
        s = out.get(tid)
        if s is None:
            s = out[tid] = _Steps()
        if not work_order and s.dispatched_at is None and trigger in m.dispatch:
            s.dispatched_at = at
        if s.on_site_at is None and trigger in m.on_site:
            s.on_site_at = at
        done = to_state == WORK_ORDER_DONE if work_order else to_state in m.resolved_states
        if s.resolved_at is None and done and from_state != to_state:
            s.resolved_at = at
        if trigger == BOUNCE_TRIGGER and work_order:
            s.bounces += 1
        if trigger in m.escalation_triggers and from_level != to_level:
            s.escalations.append(to_level)
    return out


def _extra(conn: Connection, ids: Select[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for loader in _LOADERS.values():
        for tid, facts in loader(conn, ids).items():
            out.setdefault(tid, {}).update(facts)
    return out


def _orders(conn: Connection, parents: Select[Any]) -> list[Any]:
    return list(conn.execute(
        select(work_orders.c.parent_id, work_orders.c.child_id, work_orders.c.department,
               work_orders.c.role, work_orders.c.created_at, tickets.c.state, tickets.c.level,
               tickets.c.overdue)
        .join(tickets, tickets.c.id == work_orders.c.child_id)
        .where(work_orders.c.parent_id.in_(parents))
        .order_by(work_orders.c.id)).all())


def ticket_units(
    conn: Connection, lifecycle: str, milestones: Milestones, *,
    since: datetime | None = None, until: datetime | None = None,
) -> list[Unit]:
    """One unit per ticket of ``lifecycle`` reported in ``[since, until)`` (aware UTC).

    ``bounces`` sums the bounce-backs of the ticket's work orders; ``on_site_at`` is the
    first arrival of the ticket or of any of its work orders (with work orders the ticket
    itself arrives only when its resolution rule is met).
    """
    parents = _parents(lifecycle, since, until)
    steps = _steps(conn, parents, milestones, work_order=False)
    bounced: dict[str, int] = {}
    first_on_site: dict[str, datetime] = {}
    orders = _orders(conn, parents)
    if orders:
        child_ids = select(work_orders.c.child_id).where(work_orders.c.parent_id.in_(parents))
        child_steps = _steps(conn, child_ids, milestones, work_order=True)
        for o in orders:
            cs = child_steps.get(o.child_id, _Steps())
            bounced[o.parent_id] = bounced.get(o.parent_id, 0) + cs.bounces
            if cs.on_site_at is not None and (
                    o.parent_id not in first_on_site or cs.on_site_at < first_on_site[o.parent_id]):
                first_on_site[o.parent_id] = cs.on_site_at
    extra = _extra(conn, parents)
    units = []
    for tid, created, state, level, overdue, fields in conn.execute(
        select(tickets.c.id, tickets.c.created_at, tickets.c.state, tickets.c.level,
               tickets.c.overdue, tickets.c.fields)
        .where(tickets.c.id.in_(parents)).order_by(tickets.c.created_at, tickets.c.id)):
        s = steps.get(tid, _Steps())
        on_site = min((at for at in (s.on_site_at, first_on_site.get(tid)) if at is not None),
                      default=None)
        dept = (fields or {}).get("department")
        units.append(Unit(
            ticket_id=tid, work_order=None, department=str(dept) if dept else None, role=None,
            level=level, reported_at=created, dispatched_at=s.dispatched_at,
            on_site_at=on_site, resolved_at=s.resolved_at,
            closed=state in milestones.closed_states,
            merged=state in milestones.excluded_states, overdue=bool(overdue),
            bounces=bounced.get(tid, 0), escalations=tuple(s.escalations),
            extra=extra.get(tid, {}), voided=state in milestones.void_states))
    return units


def department_units(
    conn: Connection, lifecycle: str, milestones: Milestones, *,
    since: datetime | None = None, until: datetime | None = None,
) -> list[Unit]:
    """One unit per work order of the tickets of ``lifecycle`` reported in the range.

    A ticket without work orders is one unit of the department in its ``department`` field
    (none when the field is empty). A work order is dispatched when issued, on site at its
    own first arrival, resolved when done, escalated by its own hops; the parent's report
    instant and level are kept (times count from the report).
    """
    tickets_ = {u.ticket_id: u for u in ticket_units(conn, lifecycle, milestones, since=since,
                                                      until=until)}
    parents = _parents(lifecycle, since, until)
    orders = _orders(conn, parents)
    child_ids = select(work_orders.c.child_id).where(work_orders.c.parent_id.in_(parents))
    steps = _steps(conn, child_ids, milestones, work_order=True) if orders else {}
    units: list[Unit] = []
    with_orders = set()
    for o in orders:
        parent = tickets_.get(o.parent_id)
        if parent is None:
            continue
        with_orders.add(o.parent_id)
        s = steps.get(o.child_id, _Steps())
        units.append(Unit(
            ticket_id=o.parent_id, work_order=o.child_id, department=o.department,
            role=o.role, level=o.level, reported_at=parent.reported_at,
            dispatched_at=o.created_at, on_site_at=s.on_site_at, resolved_at=s.resolved_at,
            closed=o.state == WORK_ORDER_DONE, merged=False, overdue=bool(o.overdue),
            bounces=s.bounces, escalations=tuple(s.escalations), extra=parent.extra))
    for u in tickets_.values():
        if u.ticket_id not in with_orders and u.department:
            units.append(u)
    return units


def milestones_of(lc: Any) -> Milestones:
    """The default :class:`Milestones` of a compiled lifecycle.

    Dispatch: trigger ``dispatch``; on site: trigger ``arrive``; resolved: the states of the
    ``resolution_deadline``'s ``stop_in`` (else the closed states); closed: final states but
    ``merged`` and void states (``void: true``, 作废); escalations: the lifecycle's
    escalation trigger.
    """
    spec = lc.spec
    voids = frozenset(n for n, s in spec.states.items() if s.void)
    excluded = frozenset({"merged"}) & lc.final_states
    closed = lc.final_states - excluded - voids
    resolved: frozenset[str] = closed
    deadline = spec.deadlines.get(spec.resolution_deadline or "")
    if deadline is not None and deadline.stop_in:
        resolved = frozenset(deadline.stop_in)
    return Milestones(dispatch=frozenset({"dispatch"}), on_site=frozenset({"arrive"}),
                      resolved_states=resolved, closed_states=closed,
                      excluded_states=excluded,
                      escalation_triggers=frozenset({spec.escalation_trigger, "escalate"}),
                      void_states=voids)
