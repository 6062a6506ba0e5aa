"""The work-order participant: keeps tickets and their work orders consistent.

Registered on every :class:`~engine.Engine`. For each change it checks and plans in the same
pass as the command (see :mod:`engine.runtime.participant`):

* a work order moves → its status is mirrored in ``gw_work_orders``;
* a work order is bounced → the bounce duties are checked first (the first receiver needs
  the centre's approval, the loop limit, the time budget): a refusal refuses the bounce and
  nothing is written. A bounced co-handling work order is closed (``reroute``); at the
  limit the fallback department is issued the lead work order;
* a work order is ``done`` → if the ticket's resolution rule is now met, the ticket is
  resolved: ``arrive`` (when still ``dispatched``) and ``resolve`` are fired as role
  ``department`` with the id of the department whose work order completed the rule;
* a lead work order's ``accept_due`` or ``reroute_due`` deadline is breached (nobody
  accepted, nobody re-routed) → the fallback department becomes the owner;
* a ticket with a routing table reaches a final state → its live work orders are withdrawn;
* a ticket with a routing table is reopened → its stopped ticket deadlines run again with
  their original due instants (the clocks continue), and the lead department gets a new
  work order.

Each consequence that issues commands is a follow-on. What happens when one is refused
(docs/architecture.md, "Follow-on commands"):

============================================  ==============================================
follow-on                                     if refused
============================================  ==============================================
close a bounced co-handling work order        the bounce is refused
fallback after the bounce limit               the bounce is refused
withdraw live work orders of a closed ticket  the ticket's transition is refused
reissue the lead's work order on reopen       the reopen is refused
resolve the ticket when its rule is met       recorded on the ticket (``follow_on_refused``)
fallback after accept_due / reroute_due       recorded on the ticket (``follow_on_refused``)
close a bounced work order after reroute_due  recorded on the work order
============================================  ==============================================

The timer-driven ones are recorded, not refused: a deadline's breach is a fact, and the
centre sees in the history what the engine could not do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from engine.errors import BounceBudgetExceeded, BounceLimitReached, BounceNeedsApproval
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import SYSTEM, Actor
from engine.runtime.participant import CheckContext, Participant, PlanContext, RowWrite, Unit
from engine.store.tables import timers
from engine.workorders import orders as O
from engine.workorders.model import LIVE_EXCLUDED, rule_met
from engine.workorders.routing import route_for
from engine.workorders.state import Link, Orders, link_writes, load

__all__ = ["WORK_ORDER_FIELDS", "WorkOrders", "is_work_order_lifecycle"]

WORK_ORDER_FIELDS = frozenset({"parent", "department", "role"})
FALLBACK_DEADLINES = frozenset({"accept_due", "reroute_due"})


def is_work_order_lifecycle(lc: Lifecycle) -> bool:
    """Whether ``lc``'s tickets are work orders (it declares parent, department, role)."""
    return set(lc.spec.fields) >= WORK_ORDER_FIELDS


class WorkOrders(Participant):
    """See the module docstring. One per engine; holds no ticket state of its own."""

    key = "work_orders"

    def __init__(self) -> None:
        self._kinds: dict[int, bool] = {}

    def _is_work_order(self, lc: Lifecycle) -> bool:
        known = self._kinds.get(id(lc))
        if known is None:
            known = self._kinds[id(lc)] = is_work_order_lifecycle(lc)
        return known

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Work-order lifecycles and lifecycles with a routing table."""
        return self._is_work_order(lifecycle) or lifecycle.spec.routing is not None

    def empty(self, lifecycle: Lifecycle) -> Link | Orders | None:
        """A new work order has no link until it is issued; a new ticket no work orders."""
        return None if self._is_work_order(lifecycle) else Orders()

    def load(self, conn: Connection, ticket_ids: Sequence[str]) -> Mapping[str, Any]:
        """Links of work orders, work orders of tickets (see :mod:`engine.workorders.state`)."""
        return load(conn, ticket_ids)

    def writes(self, ticket_id: str, stored: Any, current: Any) -> Iterable[RowWrite]:
        """Links are inserted and their status mirrored; nothing else is written."""
        return link_writes(ticket_id, stored, current)

    # -- check ----------------------------------------------------------------------------

    def check(self, ctx: CheckContext, change: Change) -> None:
        """The bounce duties: first receiver, loop limit, time budget."""
        if (change.kind != "transition" or change.trigger != "bounce"
                or not self._is_work_order(change.lifecycle)):
            return
        link = ctx.state(change.ticket_id)
        if not isinstance(link, Link):
            return
        parent = ctx.ticket(link.parent_id)
        routing = parent.lifecycle.spec.routing
        if routing is None:
            return
        orders = ctx.state(link.parent_id)
        assert isinstance(orders, Orders)
        if link.fallback or orders.bounces >= routing.bounce.limit:
            raise BounceLimitReached(change.ticket_id, link.parent_id, routing.bounce.limit,
                                     orders.bounces)
        if change.at - link.created_at > routing.bounce.within:
            raise BounceBudgetExceeded(change.ticket_id, link.department,
                                       link.created_at.isoformat(),
                                       routing.bounce.within.total_seconds())
        first = orders.children[0].child_id if orders.children else None
        if first == change.ticket_id and change.ticket_id not in orders.approvals:
            raise BounceNeedsApproval(change.ticket_id, link.parent_id, link.department)

    # -- plan -----------------------------------------------------------------------------

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Mirror, count, and ask for the follow-ons of the module docstring."""
        lc = change.lifecycle
        if self._is_work_order(lc):
            if change.kind == "breach" and change.trigger in FALLBACK_DEADLINES:
                self._deadline_passed(ctx, change)
            elif change.kind == "transition":
                self._work_order_moved(ctx, change)
        elif change.kind == "transition":
            if change.trigger == "reopen":
                self._reopened(ctx, change)
            elif change.entered is not None and change.to_state in lc.final_states:
                self._ticket_ended(ctx, change)

    def _work_order_moved(self, ctx: PlanContext, change: Change) -> None:
        tid = change.ticket_id
        link = ctx.state(tid)
        if not isinstance(link, Link):
            return  # a work-order ticket reported by hand, outside any ticket
        ctx.set_state(tid, Link(link.parent_id, link.department, link.role, change.to_state,
                                link.fallback, link.created_at, change.at))
        parent_id = link.parent_id
        if change.trigger == "bounce":
            orders = ctx.state(parent_id)
            assert isinstance(orders, Orders)
            bounces = orders.bounces + 1
            ctx.set_state(parent_id, Orders(orders.children, orders.rule, orders.quorum,
                                            orders.approvals, bounces))
            if link.role == "co":
                ctx.follow(lambda u: _reroute(u, tid, "co-handling department bounced; dropped"),
                           ticket_id=tid, what="close the co-handling work order",
                           on_refusal="refuse")
                return
            routing = ctx.ticket(parent_id).lifecycle.spec.routing
            if routing is not None and bounces >= routing.bounce.limit:
                why = f"bounce limit {routing.bounce.limit} reached"
                ctx.follow(lambda u: _fallback(u, parent_id, why), ticket_id=parent_id,
                           what="fallback department", on_refusal="refuse")
        elif change.to_state == "done":
            dept = str(change.fields.get("department", "department"))[:128]
            evidence = change.data.get("evidence")  # the finished work's photos, say
            ctx.follow(lambda u: _resolve_ticket(u, parent_id, tid, dept, evidence),
                       ticket_id=parent_id,
                       what="resolve the ticket", on_refusal="record")

    def _deadline_passed(self, ctx: PlanContext, change: Change) -> None:
        tid = change.ticket_id
        link = ctx.state(tid)
        if isinstance(link, Link) and link.fallback:
            return  # the fallback owns it already; its own deadlines escalate it
        if not isinstance(link, Link) or link.role != "lead":
            if isinstance(link, Link) and change.trigger == "reroute_due":
                ctx.follow(lambda u: _reroute(u, tid, "not re-routed in time"),
                           ticket_id=tid, what="close the bounced work order",
                           on_refusal="record")
            return
        parent = ctx.ticket(link.parent_id)
        if parent.state in parent.lifecycle.final_states:
            return
        why = ("no department accepted in time" if change.trigger == "accept_due"
               else "bounced and not re-routed in time")
        parent_id = link.parent_id
        ctx.follow(lambda u: _fallback(u, parent_id, why), ticket_id=parent_id,
                   what="fallback department", on_refusal="record")

    def _ticket_ended(self, ctx: PlanContext, change: Change) -> None:
        tid = change.ticket_id
        orders = ctx.state(tid)
        if not isinstance(orders, Orders) or not orders.children:
            return
        ctx.follow(lambda u: _withdraw_live(u, tid, change.to_state), ticket_id=tid,
                   what="withdraw the live work orders", on_refusal="refuse")

    def _reopened(self, ctx: PlanContext, change: Change) -> None:
        """Clocks continue: re-arm the ticket deadlines the resolution stopped, same due."""
        tid = change.ticket_id
        lc = change.lifecycle
        names = [d.name for d in lc.ticket_deadlines]
        if names:
            stopped = ctx.query(lambda conn: conn.execute(
                select(timers.c.name, func.max(timers.c.due_at)).where(
                    timers.c.ticket_id == tid, timers.c.state.is_(None),
                    timers.c.status == "cancelled", timers.c.name.in_(names))
                .group_by(timers.c.name)).all())
            pending = ctx.ticket(tid).timers
            for name, due in stopped:
                if name not in pending:
                    ctx.rearm(tid, name, _aware(due))
        orders = ctx.state(tid)
        if isinstance(orders, Orders) and orders.children:
            reason = change.reason
            ctx.follow(lambda u: _reissue_lead(u, tid, reason), ticket_id=tid,
                       what="reissue the lead department's work order", on_refusal="refuse")


def _aware(value: datetime | str) -> datetime:
    """``func.max`` loses the column type on SQLite: put the UTC instant back."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- follow-on steps (run on a unit bound to this participant) ----------------------------


def _reroute(u: Unit, work_order_id: str, reason: str) -> None:
    u.fire(work_order_id, "reroute", actor=SYSTEM, reason=reason)


def _resolve_ticket(u: Unit, parent_id: str, child_id: str, department: str,
                    evidence: list[dict[str, Any]] | None = None) -> None:
    """Resolve the ticket when its rule is met, with the evidence of the work that met it."""
    parent = u.ticket(parent_id)
    lc = parent.lifecycle
    if parent.state in lc.final_states or parent.state == "resolved":
        return
    orders = O.orders_of(u, parent_id)
    listed = O.list_orders(u, parent_id)
    if not rule_met(orders.rule, orders.quorum, [(o.role, o.state) for o in listed]):
        return
    reason = f"resolution rule {orders.rule!r} met when work order {child_id} was done"
    actor = Actor(department, "department")  # the department whose work completed the rule
    if parent.state == "dispatched":
        u.fire(parent_id, "arrive", actor=actor, reason=reason)
    u.fire(parent_id, "resolve", actor=actor, reason=reason, evidence=evidence)


def _fallback(u: Unit, parent_id: str, why: str) -> None:
    """The fallback department becomes the lead: other lead work orders are retired."""
    parent, lc = O.parent_of(u, parent_id)
    route = route_for(lc.spec, parent.fields.get("category"), parent.level)
    for order in O.list_orders(u, parent_id):
        if order.role == "lead":
            O.retire(u, order, SYSTEM, f"fallback: {why}")
    parent = u.ticket(parent_id)
    wid = O.issue(u, parent, route.fallback, "lead", SYSTEM, fallback=True,
                  reason=f"fallback department owns the ticket: {why}")
    O.record(u, parent_id, "fallback", SYSTEM, why,
             {"department": route.fallback, "work_order": wid})


def _withdraw_live(u: Unit, ticket_id: str, state: str) -> None:
    for order in O.list_orders(u, ticket_id):
        if order.state not in LIVE_EXCLUDED and order.state != "done":
            O.retire(u, order, SYSTEM, f"ticket {ticket_id} is {state}")


def _reissue_lead(u: Unit, ticket_id: str, reason: str | None) -> None:
    leads = [o for o in O.list_orders(u, ticket_id) if o.role == "lead" and o.state == "done"]
    if not leads:
        return
    parent = u.ticket(ticket_id)
    O.issue(u, parent, leads[-1].department, "lead", SYSTEM, reason=f"reopened: {reason}")
    O.record(u, ticket_id, "reopen", SYSTEM, reason, {"department": leads[-1].department})
