"""Work-order steps on a :class:`~engine.runtime.participant.Unit`: issue, list, retire, record.

Shared by the centre's commands (:class:`engine.departments.Departments`) and the work-order
participant's follow-ons. Each runs on a unit bound to the work-order participant, so that
it sees (and stages) the work-order state of the compound command it belongs to.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from engine.errors import NoRouting, UnknownDepartment
from engine.lifecycle.machine import Lifecycle
from engine.runtime.model import Actor
from engine.runtime.participant import Unit
from engine.runtime.working import TicketRecord
from engine.workorders.model import LIVE_EXCLUDED, WorkOrder
from engine.workorders.state import RULE_KINDS, Child, Link, Orders, action_row

__all__ = [
    "check_department",
    "issue",
    "list_orders",
    "parent_of",
    "record",
    "retire",
]

MAX_ID = 64


def parent_of(u: Unit, ticket_id: str) -> tuple[TicketRecord, Lifecycle]:
    """The ticket's record and compiled lifecycle; it must declare a routing table.

    Raises:
        TicketNotFound, NoRouting.
    """
    rec = u.ticket(ticket_id)
    if rec.lifecycle.spec.routing is None:
        raise NoRouting(ticket_id, rec.lifecycle.name)
    return rec, rec.lifecycle


def check_department(lc: Lifecycle, ticket_id: str, department: str) -> None:
    """Raise :class:`UnknownDepartment` unless ``department`` is declared."""
    if department not in lc.spec.departments:
        raise UnknownDepartment(ticket_id, department, list(lc.spec.departments))


def orders_of(u: Unit, ticket_id: str) -> Orders:
    """The ticket's :class:`Orders` (none issued yet: empty)."""
    state = u.state(ticket_id)
    return state if isinstance(state, Orders) else Orders()


def record(u: Unit, ticket_id: str, kind: str, actor: Actor, reason: str | None,
           data: dict[str, Any]) -> None:
    """Stage a decision in ``gw_department_actions`` and in the ticket's :class:`Orders`."""
    row = action_row(ticket_id, kind, actor, u.now, reason, data)
    u.add_row(*row)
    orders = orders_of(u, ticket_id)
    if kind in RULE_KINDS and "resolution" in data:
        u.set_state(ticket_id, replace(orders, rule=str(data["resolution"]),
                                       quorum=data.get("quorum")))
    elif kind == "approve_bounce":
        u.set_state(ticket_id, replace(
            orders, approvals=orders.approvals | {str(data["work_order"])}))


def issue(
    u: Unit, parent: TicketRecord, department: str, role: str, actor: Actor, *,
    fallback: bool = False, reason: str | None = None, work_order_id: str | None = None,
) -> str:
    """Issue one work order (a child ticket of the routing's work-order lifecycle).

    The work order starts at the parent's whistle level (when its lifecycle has that
    level). Returns its id.

    Raises:
        TicketExists: ``work_order_id`` is taken; or what reporting the work order raises.
    """
    routing = parent.lifecycle.spec.routing
    wo_lifecycle = routing.work_orders if routing is not None else "work_order"
    orders = orders_of(u, parent.id)
    wid = work_order_id or f"{parent.id}.{len(orders.children) + 1}"
    if len(wid) > MAX_ID:
        wid = uuid.uuid4().hex
    fields: dict[str, Any] = {"parent": parent.id, "department": department, "role": role}
    wo_lc = u.lifecycle(wo_lifecycle)
    category = parent.fields.get("category")
    if category is not None and "category" in wo_lc.spec.fields:
        fields["category"] = category
    level = parent.level if parent.level in wo_lc.levels else None
    child = u.report(wo_lifecycle, fields, actor=actor, ticket_id=wid, level=level,
                     reason=reason)
    u.set_state(child.id, Link(parent.id, department, role, child.state, fallback,
                               child.created_at, child.created_at))
    orders = orders_of(u, parent.id)
    u.set_state(parent.id, replace(orders, children=(*orders.children, Child(
        child.id, department, role, fallback, child.created_at))))
    return child.id


def list_orders(u: Unit, parent_id: str) -> list[WorkOrder]:
    """Every work order of a ticket as staged, in the order they were issued."""
    children = orders_of(u, parent_id).children
    records = u.tickets([c.child_id for c in children])
    return [WorkOrder(c.child_id, parent_id, c.department, c.role, r.state, r.level,
                      bool(r.overdue), c.fallback, c.created_at)
            for c, r in zip(children, records, strict=True)]


def retire(u: Unit, order: WorkOrder, actor: Actor, reason: str) -> None:
    """Take a live work order off the ticket: withdraw it, or close its bounce (``reroute``)."""
    if order.state == "bounced":
        u.fire(order.id, "reroute", actor=actor, reason=reason)
    elif order.state not in LIVE_EXCLUDED and order.state != "done":
        u.fire(order.id, "withdraw", actor=actor, reason=reason)
