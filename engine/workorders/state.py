"""Work-order state kept in the working copy: a work order's link, a ticket's work orders.

The work-order participant (:mod:`engine.workorders.participant`) keeps one value per
ticket:

* a work order (a child ticket of the routing's work-order lifecycle) has a :class:`Link`
  — its ``gw_work_orders`` row: the parent ticket, the department and its role, and the
  child's state mirrored in ``status``;
* a ticket with a routing table has its :class:`Orders` — the work orders issued on it (in
  issue order), its current resolution rule, the bounces approved by the centre and the
  number of bounces so far (read from ``gw_work_orders``, ``gw_department_actions`` and the
  work orders' history; nothing of it is stored twice).

Only links are written (:func:`link_writes`); the centre's decisions are rows of
``gw_department_actions`` staged as they are taken (:func:`action_row`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from engine.runtime.model import Actor
from engine.runtime.participant import RowWrite
from engine.store.department_tables import department_actions, work_orders
from engine.store.reads import rows_of
from engine.store.tables import history

__all__ = ["Child", "Link", "Orders", "action_row", "link_writes", "load"]


@dataclass(frozen=True, slots=True)
class Link:
    """A work order's ``gw_work_orders`` row."""

    parent_id: str
    department: str
    role: str
    status: str
    fallback: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Child:
    """One work order of a ticket, as the ticket's :class:`Orders` lists it."""

    child_id: str
    department: str
    role: str
    fallback: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Orders:
    """A ticket's work orders and the decisions that govern them.

    Attributes:
        children: its work orders, in the order they were issued (the first is the first
            receiver's).
        rule, quorum: the resolution rule of the latest dispatch or joint meeting.
        approvals: work orders whose bounce the centre approved.
        bounces: bounces of its work orders so far.
    """

    children: tuple[Child, ...] = ()
    rule: str = "all"
    quorum: int | None = None
    approvals: frozenset[str] = field(default_factory=frozenset)
    bounces: int = 0


RULE_KINDS = ("dispatch", "meeting", "rule")
"""Decisions that set a ticket's resolution rule."""

_ACTIONS = (
    select(department_actions.c.ticket_id, department_actions.c.kind, department_actions.c.data)
    .where(department_actions.c.ticket_id.in_(bindparam("b_ids", expanding=True)),
           department_actions.c.kind.in_([*RULE_KINDS, "approve_bounce"]))
    .order_by(department_actions.c.id))
_BOUNCES = (
    select(history.c.ticket_id, func.count())
    .where(history.c.ticket_id.in_(bindparam("b_ids", expanding=True)),
           history.c.trigger == "bounce", history.c.kind == "transition")
    .group_by(history.c.ticket_id))
_INSERT_LINK = insert(work_orders)
_UPDATE_LINK = (
    update(work_orders).where(work_orders.c.child_id == bindparam("b_child"))
    .values(status=bindparam("b_status"),
            updated_at=bindparam("b_now", type_=work_orders.c.updated_at.type))
)
_INSERT_ACTION = insert(department_actions)


def load(conn: Connection, ticket_ids: Sequence[str]) -> dict[str, Link | Orders]:
    """The stored state of ``ticket_ids``: a work order's :class:`Link`, a ticket's Orders.

    Tickets that are neither a work order nor have work orders are left out.
    """
    out: dict[str, Link | Orders] = {}
    for r in rows_of(conn, work_orders, ticket_ids, column="child_id"):
        out[r["child_id"]] = Link(r["parent_id"], r["department"], r["role"], r["status"],
                                  bool(r["fallback"]), r["created_at"], r["updated_at"])
    parents = [t for t in ticket_ids if t not in out]
    if not parents:
        return out
    children: dict[str, list[Child]] = {}
    for r in rows_of(conn, work_orders, parents, column="parent_id",
                     order_by=work_orders.c.id):
        children.setdefault(r["parent_id"], []).append(Child(
            r["child_id"], r["department"], r["role"], bool(r["fallback"]), r["created_at"]))
    if not children:
        return out
    rules: dict[str, tuple[str, int | None]] = {}
    approvals: dict[str, set[str]] = {}
    for action in conn.execute(_ACTIONS, {"b_ids": list(children)}).mappings():
        data = action["data"] or {}
        if action["kind"] == "approve_bounce":
            approvals.setdefault(action["ticket_id"], set()).add(str(data.get("work_order")))
        else:
            rules[action["ticket_id"]] = (str(data.get("resolution", "all")), data.get("quorum"))
    child_of = {c.child_id: p for p, cs in children.items() for c in cs}
    bounces: dict[str, int] = {}
    for tid, count in conn.execute(_BOUNCES, {"b_ids": list(child_of)}).all():
        bounces[child_of[tid]] = bounces.get(child_of[tid], 0) + int(count)
    for parent, cs in children.items():
        rule, quorum = rules.get(parent, ("all", None))
        out[parent] = Orders(tuple(cs), rule, quorum, frozenset(approvals.get(parent, ())),
                             bounces.get(parent, 0))
    return out


def link_writes(ticket_id: str, stored: Any, current: Any) -> Iterable[RowWrite]:
    """Insert a new link, or mirror a changed status; :class:`Orders` write nothing."""
    if not isinstance(current, Link) or current == stored:
        return
    if not isinstance(stored, Link):
        yield _INSERT_LINK, {
            "parent_id": current.parent_id, "child_id": ticket_id,
            "department": current.department, "role": current.role, "status": current.status,
            "fallback": current.fallback, "created_at": current.created_at,
            "updated_at": current.updated_at}
    elif (stored.status, stored.updated_at) != (current.status, current.updated_at):
        yield _UPDATE_LINK, {"b_child": ticket_id, "b_status": current.status,
                             "b_now": current.updated_at}


def action_row(ticket_id: str, kind: str, actor: Actor, at: datetime, reason: str | None,
               data: Mapping[str, Any]) -> RowWrite:
    """A ``gw_department_actions`` row (a decision of the centre or of a duty)."""
    return _INSERT_ACTION, {"ticket_id": ticket_id, "at": at, "kind": kind, "actor": actor.id,
                            "role": actor.role, "reason": reason, "data": dict(data)}
