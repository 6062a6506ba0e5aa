"""The work-order participant: keeps parent tickets and their work orders consistent.

Registered on every :class:`~engine.Engine`. For each history row written it acts *in the
same transaction* (see :mod:`engine.runtime.changes`):

* a work order moves → its status is mirrored in ``gw_work_orders``;
* a work order is bounced → the bounce duties are enforced first (the first receiver needs
  the centre's approval, the loop limit, the time budget): a refusal raises a
  :class:`~engine.errors.CommandRefused` and nothing is written. At the limit the fallback
  department is issued the lead work order;
* a work order is ``done`` → if the parent's resolution rule is now met, the parent is
  resolved, in the same transaction: ``arrive`` (when still ``dispatched``) and ``resolve``
  are fired as role ``department`` with the id of the department whose work order completed
  the rule;
* a lead work order's ``accept_due`` or ``reroute_due`` deadline is breached (nobody
  accepted, nobody re-routed) → the fallback department becomes the owner;
* a parent with a routing table reaches a final state → its live work orders are
  withdrawn;
* a parent with a routing table is reopened → its stopped ticket deadlines run again with
  their original due instants (the clocks continue), and the lead department gets a new
  work order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from engine.departments import orders as O
from engine.departments.model import LIVE_EXCLUDED, rule_met
from engine.errors import (
    BounceBudgetExceeded,
    BounceLimitReached,
    BounceNeedsApproval,
    CommandRefused,
)
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import SYSTEM, Actor
from engine.store import statements as S
from engine.store.department_tables import department_actions, work_orders
from engine.store.tables import history, timers

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["WorkOrderParticipant", "is_work_order_lifecycle"]

WORK_ORDER_FIELDS = frozenset({"parent", "department", "role"})
FALLBACK_DEADLINES = frozenset({"accept_due", "reroute_due"})


def is_work_order_lifecycle(lc: Lifecycle) -> bool:
    """Whether ``lc``'s tickets are work orders (it declares parent, department, role)."""
    return set(lc.spec.fields) >= WORK_ORDER_FIELDS


class WorkOrderParticipant:
    """See the module docstring. One per engine; holds no ticket state."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._kinds: dict[str, bool] = {}

    def _is_work_order(self, lc: Lifecycle) -> bool:
        known = self._kinds.get(lc.digest)
        if known is None:
            known = self._kinds[lc.digest] = is_work_order_lifecycle(lc)
        return known

    def on_change(self, conn: Connection, change: Change) -> None:
        """React to one history row (see the module docstring)."""
        if self._is_work_order(change.lifecycle):
            self._work_order_changed(conn, change)
        elif change.lifecycle.spec.routing is not None and change.kind == "transition":
            if change.trigger == "reopen":
                self._reopened(conn, change)
            elif change.to_state in change.lifecycle.final_states:
                self._parent_ended(conn, change)

    # -- work orders ------------------------------------------------------------------------

    def _work_order_changed(self, conn: Connection, change: Change) -> None:
        if change.kind == "report":
            return  # the link row is inserted by whoever issued it, with its status
        if change.kind == "breach":
            if change.trigger in FALLBACK_DEADLINES:
                self._maybe_fallback(conn, change)
            return
        link = conn.execute(select(work_orders).where(
            work_orders.c.child_id == change.ticket_id)).mappings().first()
        if link is None:
            return  # a work-order ticket reported by hand, outside any parent
        if change.trigger == "bounce":
            self._check_bounce(conn, change, link)
        O.set_status(conn, change.ticket_id, change.to_state, change.at)
        if change.trigger == "bounce":
            self._after_bounce(conn, change, link)
        elif change.to_state == "done":
            self._maybe_resolve_parent(conn, link["parent_id"], change)

    def _check_bounce(self, conn: Connection, change: Change, link: Any) -> None:
        parent_id = link["parent_id"]
        _parent, lc = O.parent_context(self._engine, conn, parent_id)
        routing = lc.spec.routing
        assert routing is not None
        bounces = self._bounces(conn, parent_id) - 1  # this bounce's row is written already
        if link["fallback"] or bounces >= routing.bounce.limit:
            raise BounceLimitReached(change.ticket_id, parent_id, routing.bounce.limit,
                                     bounces)
        if change.at - link["created_at"] > routing.bounce.within:
            raise BounceBudgetExceeded(change.ticket_id, link["department"],
                                       link["created_at"].isoformat(),
                                       routing.bounce.within.total_seconds())
        first = conn.execute(select(work_orders.c.child_id).where(
            work_orders.c.parent_id == parent_id).order_by(work_orders.c.id).limit(1)).scalar()
        if first == change.ticket_id:
            approved = conn.execute(select(department_actions.c.id).where(
                department_actions.c.ticket_id == parent_id,
                department_actions.c.kind == "approve_bounce",
                department_actions.c.data["work_order"].as_string() == change.ticket_id,
            ).limit(1)).first()
            if approved is None:
                raise BounceNeedsApproval(change.ticket_id, parent_id, link["department"])

    def _bounces(self, conn: Connection, parent_id: str) -> int:
        children = select(work_orders.c.child_id).where(work_orders.c.parent_id == parent_id)
        return conn.execute(select(func.count()).select_from(history).where(
            history.c.ticket_id.in_(children), history.c.trigger == "bounce",
            history.c.kind == "transition")).scalar() or 0

    def _after_bounce(self, conn: Connection, change: Change, link: Any) -> None:
        parent, lc = O.parent_context(self._engine, conn, link["parent_id"])
        routing = lc.spec.routing
        assert routing is not None
        with self._engine.within(conn):
            if link["role"] == "co":
                self._engine.fire(change.ticket_id, "reroute", actor=SYSTEM,
                                  reason="co-handling department bounced; dropped")
                return
            if self._bounces(conn, link["parent_id"]) >= routing.bounce.limit:
                self._fallback(conn, parent, lc, f"bounce limit {routing.bounce.limit} reached")

    def _maybe_fallback(self, conn: Connection, change: Change) -> None:
        link = conn.execute(select(work_orders).where(
            work_orders.c.child_id == change.ticket_id)).mappings().first()
        if link is not None and link["fallback"]:
            return  # the fallback owns it already; its own deadlines escalate it
        if link is None or link["role"] != "lead":
            if link is not None and change.trigger == "reroute_due":
                with self._engine.within(conn):
                    self._engine.fire(change.ticket_id, "reroute", actor=SYSTEM,
                                      reason="not re-routed in time")
            return
        parent, lc = O.parent_context(self._engine, conn, link["parent_id"])
        if parent["state"] in lc.final_states:
            return
        why = ("no department accepted in time" if change.trigger == "accept_due"
               else "bounced and not re-routed in time")
        with self._engine.within(conn):
            self._fallback(conn, parent, lc, why)

    def _fallback(self, conn: Connection, parent: Any, lc: Lifecycle, why: str) -> None:
        """The fallback department becomes the lead: other lead work orders are retired."""
        routing = lc.spec.routing
        assert routing is not None
        from engine.departments.routing import route_for

        route = route_for(lc.spec, parent["fields"].get("category"), parent["level"])
        for order in O.list_orders(conn, parent["id"]):
            if order.role == "lead":
                O.retire(self._engine, order, SYSTEM, f"fallback: {why}")
        now = self._engine.clock.now()
        wid = O.issue(self._engine, conn, parent, lc, route.fallback, "lead", SYSTEM,
                      fallback=True, reason=f"fallback department owns the ticket: {why}")
        O.record(conn, parent["id"], "fallback", SYSTEM, now, why,
                 {"department": route.fallback, "work_order": wid})

    # -- parents ----------------------------------------------------------------------------

    def _maybe_resolve_parent(self, conn: Connection, parent_id: str, change: Change) -> None:
        parent = O.ticket_row(conn, parent_id)
        if parent is None:
            return
        lc = self._engine._lifecycle_by_id(conn, parent["definition_id"])
        if parent["state"] in lc.final_states or parent["state"] == "resolved":
            return
        rule, quorum = O.latest_rule(conn, parent_id)
        orders = [(o.role, o.state) for o in O.list_orders(conn, parent_id)]
        if not rule_met(rule, quorum, orders):
            return
        reason = f"resolution rule {rule!r} met when work order {change.ticket_id} was done"
        dept = str(change.fields.get("department", "department"))[:128]
        actor = Actor(dept, "department")  # the department whose work completed the rule
        with self._engine.within(conn):
            try:
                if parent["state"] == "dispatched":
                    self._engine.fire(parent_id, "arrive", actor=actor, reason=reason)
                self._engine.fire(parent_id, "resolve", actor=actor, reason=reason)
            except CommandRefused:
                pass  # e.g. the parent is still 'reported': the centre resolves it by hand

    def _parent_ended(self, conn: Connection, change: Change) -> None:
        """A ticket closed (or merged): its work orders still live are withdrawn."""
        live = [o for o in O.list_orders(conn, change.ticket_id)
                if o.state not in LIVE_EXCLUDED and o.state != "done"]
        if live:
            with self._engine.within(conn):
                for order in live:
                    O.retire(self._engine, order, SYSTEM,
                             f"ticket {change.ticket_id} is {change.to_state}")

    def _reopened(self, conn: Connection, change: Change) -> None:
        """Clocks continue: re-arm the ticket deadlines the resolution stopped, same due."""
        lc = change.lifecycle
        names = [d.name for d in lc.ticket_deadlines]
        rows = conn.execute(
            select(timers.c.name, func.max(timers.c.due_at)).where(
                timers.c.ticket_id == change.ticket_id, timers.c.state.is_(None),
                timers.c.status == "cancelled", timers.c.name.in_(names))
            .group_by(timers.c.name)).all()
        pending = set(conn.execute(select(timers.c.name).where(
            timers.c.ticket_id == change.ticket_id, timers.c.status == "pending")).scalars())
        new = [dict(ticket_id=change.ticket_id, name=name, state=None, due_at=due,
                    status="pending", created_at=change.at, fired_at=None)
               for name, due in rows if name not in pending]
        if new:
            conn.execute(S.INSERT_TIMERS, new)
            self._engine._notify_timers(new)
        orders = O.list_orders(conn, change.ticket_id)
        leads = [o for o in orders if o.role == "lead" and o.state == "done"]
        if leads:
            parent = O.ticket_row(conn, change.ticket_id)
            with self._engine.within(conn):
                O.issue(self._engine, conn, parent, lc, leads[-1].department, "lead", SYSTEM,
                        reason=f"reopened: {change.reason}")
            O.record(conn, change.ticket_id, "reopen", SYSTEM, change.at, change.reason,
                     {"department": leads[-1].department})
