"""Work orders on the database: issue, list, withdraw, record decisions.

Low-level steps shared by the :class:`~engine.departments.service.Departments` service and
the :class:`~engine.departments.participant.WorkOrderParticipant`. Each runs on the
connection of a transaction already open, and issues engine commands only through
``Engine.atomic`` / ``Engine.within`` so they join that transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update

from engine.departments.model import LIVE_EXCLUDED, WorkOrder
from engine.errors import NoRouting, UnknownDepartment
from engine.lifecycle.machine import Lifecycle
from engine.runtime.model import Actor
from engine.store import statements as S
from engine.store.department_tables import department_actions, work_orders
from engine.store.tables import tickets

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = [
    "check_department",
    "issue",
    "list_orders",
    "parent_context",
    "record",
    "retire",
]

MAX_ID = 64


def parent_context(engine: Engine, conn: Connection, ticket_id: str) -> tuple[Any, Lifecycle]:
    """The parent ticket's row and compiled lifecycle; it must declare a routing table.

    Raises:
        TicketNotFound, NoRouting.
    """
    row = engine._load(conn, ticket_id)
    lc = engine._lifecycle_by_id(conn, row["definition_id"])
    if lc.spec.routing is None:
        raise NoRouting(ticket_id, lc.name)
    return row, lc


def check_department(lc: Lifecycle, ticket_id: str, department: str) -> None:
    """Raise :class:`UnknownDepartment` unless ``department`` is declared."""
    if department not in lc.spec.departments:
        raise UnknownDepartment(ticket_id, department, list(lc.spec.departments))


def record(
    conn: Connection, ticket_id: str, kind: str, actor: Actor, now: datetime,
    reason: str | None, data: dict[str, Any],
) -> None:
    """Append one row to ``gw_department_actions``."""
    conn.execute(insert(department_actions).values(
        ticket_id=ticket_id, at=now, kind=kind, actor=actor.id, role=actor.role,
        reason=reason, data=data))


def latest_rule(conn: Connection, ticket_id: str) -> tuple[str, int | None]:
    """The resolution rule of the ticket's latest dispatch or meeting (default ``all``)."""
    data = conn.execute(
        select(department_actions.c.data)
        .where(department_actions.c.ticket_id == ticket_id,
               department_actions.c.kind.in_(["dispatch", "meeting", "rule"]))
        .order_by(department_actions.c.id.desc()).limit(1)
    ).scalar()
    if not data:
        return "all", None
    return str(data.get("resolution", "all")), data.get("quorum")


def issue(
    engine: Engine, conn: Connection, parent: Any, lc: Lifecycle, department: str, role: str,
    actor: Actor, *, fallback: bool = False, reason: str | None = None,
    work_order_id: str | None = None,
) -> str:
    """Issue one work order (a child ticket of the routing's work-order lifecycle).

    Must run inside ``Engine.atomic`` or ``Engine.within(conn)``. The work order starts at
    the parent's whistle level (when its lifecycle has that level). Returns its id.
    """
    routing = lc.spec.routing
    wo_lifecycle = routing.work_orders if routing is not None else "work_order"
    count = conn.execute(select(func.count()).select_from(work_orders)
                         .where(work_orders.c.parent_id == parent["id"])).scalar() or 0
    wid = work_order_id or f"{parent['id']}.{count + 1}"
    if len(wid) > MAX_ID:
        wid = uuid.uuid4().hex
    fields = {"parent": parent["id"], "department": department, "role": role}
    category = parent["fields"].get("category")
    wo_lc = engine.lifecycle(wo_lifecycle)
    if category is not None and "category" in wo_lc.spec.fields:
        fields["category"] = category
    level = parent["level"] if parent["level"] in wo_lc.levels else None
    child = engine.report(wo_lifecycle, fields, actor=actor, ticket_id=wid, level=level,
                          reason=reason)
    conn.execute(insert(work_orders).values(
        parent_id=parent["id"], child_id=child.id, department=department, role=role,
        status=child.state, fallback=fallback, created_at=child.created_at,
        updated_at=child.created_at))
    return child.id


def list_orders(conn: Connection, parent_id: str) -> list[WorkOrder]:
    """Every work order of a ticket, in the order they were issued."""
    rows = conn.execute(
        select(work_orders, tickets.c.state, tickets.c.level, tickets.c.overdue)
        .join(tickets, tickets.c.id == work_orders.c.child_id)
        .where(work_orders.c.parent_id == parent_id).order_by(work_orders.c.id)
    ).mappings().all()
    return [WorkOrder(r["child_id"], r["parent_id"], r["department"], r["role"], r["state"],
                      r["level"], bool(r["overdue"]), bool(r["fallback"]), r["created_at"])
            for r in rows]


def retire(engine: Engine, order: WorkOrder, actor: Actor, reason: str) -> None:
    """Take a live work order off the ticket: withdraw it, or close its bounce (``reroute``).

    Must run inside ``Engine.atomic`` or ``Engine.within``.
    """
    if order.state == "bounced":
        engine.fire(order.id, "reroute", actor=actor, reason=reason)
    elif order.state not in LIVE_EXCLUDED and order.state != "done":
        engine.fire(order.id, "withdraw", actor=actor, reason=reason)


def set_status(conn: Connection, child_id: str, state: str, now: datetime) -> int:
    """Mirror a work order's state into ``gw_work_orders``; returns rows updated (0 or 1)."""
    return conn.execute(update(work_orders).where(work_orders.c.child_id == child_id)
                        .values(status=state, updated_at=now)).rowcount


def ticket_row(conn: Connection, ticket_id: str) -> Any:
    """The ticket row, or None."""
    return conn.execute(S.SELECT_TICKET, {"b_id": ticket_id}).mappings().first()
