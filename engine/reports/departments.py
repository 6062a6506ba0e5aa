"""Per-department figures: work orders received, bounced, resolved, on time, escalated."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, select

from engine.store.department_tables import work_orders
from engine.store.tables import definitions, history, tickets

__all__ = ["DEPARTMENT_FIGURES", "department_figures"]

DEPARTMENT_FIGURES = ("received", "bounced", "resolved", "on_time", "escalated")


def department_figures(
    conn: Connection, lifecycle: str, *, final_states: frozenset[str],
    escalation_trigger: str, excluded_states: frozenset[str] = frozenset({"merged"}),
) -> dict[str, dict[str, int]]:
    """Figures by department over the tickets of lifecycle ``lifecycle``.

    A ticket with work orders counts through them: each work order is one *received* by its
    department; *bounced* if it was bounced back; *resolved* if done; *on time* if done
    without breaching its own resolution deadline; *escalated* if it escalated at least once.
    A ticket without work orders counts as one work order of the department in its
    ``department`` field (e.g. a replayed city export): resolved when it reached a final
    state (other than ``excluded_states``), on time when resolved and not overdue, escalated
    when the ticket escalated; never bounced.

    Returns:
        ``{department: {"received": n, "bounced": n, "resolved": n, "on_time": n,
        "escalated": n}}``, departments sorted by name.
    """
    ids = select(definitions.c.id).where(definitions.c.name == lifecycle)
    parents = select(tickets.c.id).where(tickets.c.definition_id.in_(ids))
    out: dict[str, Counter[str]] = {}

    def bump(dept: str, *names: str) -> None:
        counter = out.setdefault(dept, Counter())
        for name in names:
            counter[name] += 1

    orders = conn.execute(
        select(work_orders.c.parent_id, work_orders.c.child_id, work_orders.c.department,
               tickets.c.state, tickets.c.overdue)
        .join(tickets, tickets.c.id == work_orders.c.child_id)
        .where(work_orders.c.parent_id.in_(parents))
    ).all()
    children = [o.child_id for o in orders]
    with_orders = {o.parent_id for o in orders}
    moved: dict[str, set[str]] = {"bounce": set(), "escalate": set()}
    if children:
        for tid, trig in conn.execute(
            select(history.c.ticket_id, history.c.trigger).distinct().where(
                history.c.kind == "transition", history.c.trigger.in_(["bounce", "escalate"]),
                history.c.ticket_id.in_(select(work_orders.c.child_id).where(
                    work_orders.c.parent_id.in_(parents))))):
            moved[trig].add(tid)
    for o in orders:
        names = ["received"]
        if o.child_id in moved["bounce"]:
            names.append("bounced")
        if o.state == "done":
            names.append("resolved")
            if not o.overdue:
                names.append("on_time")
        if o.child_id in moved["escalate"]:
            names.append("escalated")
        bump(o.department, *names)

    escalated = set(conn.execute(
        select(history.c.ticket_id).distinct().where(
            history.c.kind == "transition", history.c.trigger == escalation_trigger,
            history.c.ticket_id.in_(parents))).scalars())
    rows: Any = conn.execute(
        select(tickets.c.id, tickets.c.state, tickets.c.overdue, tickets.c.fields)
        .where(tickets.c.definition_id.in_(ids)))
    for tid, state, overdue, fields in rows:
        dept = (fields or {}).get("department")
        if tid in with_orders or not dept:
            continue
        names = ["received"]
        if state in final_states and state not in excluded_states:
            names.append("resolved")
            if not overdue:
                names.append("on_time")
        if tid in escalated:
            names.append("escalated")
        bump(str(dept), *names)
    return {dept: {name: out[dept][name] for name in DEPARTMENT_FIGURES}
            for dept in sorted(out)}
