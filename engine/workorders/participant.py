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
* ``resolve`` fired on a ticket with open work orders (issued, accepted, on site,
  escalated) whose resolution rule they do not meet yet → refused
  (:class:`~engine.errors.WorkOrdersOpen`): only the work orders resolve a routed ticket,
  through the follow-on above (which meets the rule by construction). Once the rule is met,
  or no work order is open any more (the centre withdrew them), ``resolve`` is allowed;
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

``Engine.check_invariants`` (``gridwhistle check``) asks :meth:`WorkOrders.stored_problems`
for the rule ``resolution_rule``: every ``resolve`` of a routed ticket happened when its
work orders met its rule, or none was open (a store written before the refusal above, or
by hand).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from engine.errors import (
    BounceBudgetExceeded,
    BounceLimitReached,
    BounceNeedsApproval,
    WorkOrdersOpen,
)
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import SYSTEM, Actor
from engine.runtime.participant import CheckContext, Participant, PlanContext, RowWrite, Unit
from engine.store.department_tables import department_actions, work_orders
from engine.store.reads import in_chunks
from engine.store.tables import history as history_table
from engine.store.tables import timers
from engine.workorders import orders as O
from engine.workorders.model import LIVE_EXCLUDED, rule_met
from engine.workorders.routing import route_for
from engine.workorders.state import RULE_KINDS, Link, Orders, link_writes, load

__all__ = ["ARRIVE_TRIGGER", "RESOLVE_TRIGGER", "WORK_ORDER_FIELDS", "WorkOrders",
           "is_work_order_lifecycle", "open_orders"]

WORK_ORDER_FIELDS = frozenset({"parent", "department", "role"})
FALLBACK_DEADLINES = frozenset({"accept_due", "reroute_due"})
RESOLVE_TRIGGER = "resolve"
"""The trigger the work orders resolve their ticket with (definition check
``routing_resolves_tickets``); fired by anyone else, it must meet the rule too."""
ARRIVE_TRIGGER = "arrive"
"""Fired first when the ticket is still ``dispatched`` as its rule is met."""


def open_orders(orders: Sequence[tuple[str, str, str, str]]) -> dict[str, str]:
    """The open work orders of ``(id, department, role, state)``: id → ``"department, state"``.

    Open: neither done nor out of the rule (bounced, returned, withdrawn).
    """
    return {wid: f"{dept}, {state}" for wid, dept, _, state in orders
            if state not in LIVE_EXCLUDED and state != "done"}


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

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Reports; transitions that neither bounce, resolve, reopen nor end a ticket.

        A work order's transitions are all planned (mirrored on its ticket).
        """
        if kind not in ("report", "transition"):
            return False
        if kind == "report":
            return True
        if self._is_work_order(lifecycle):
            return step == "check" and trigger != "bounce"
        if step == "check":
            return trigger != RESOLVE_TRIGGER
        return trigger != "reopen" and not (from_state != to_state
                                             and to_state in lifecycle.final_states)

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
        """The bounce duties (first receiver, loop limit, time budget); the resolution rule."""
        if change.kind != "transition":
            return
        if not self._is_work_order(change.lifecycle):
            if change.trigger == RESOLVE_TRIGGER:
                _check_resolution(ctx, change)
            return
        if change.trigger != "bounce":
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

    # -- the consistency check ------------------------------------------------------------

    def stored_problems(self, conn: Connection, tickets: Mapping[str, Mapping[str, Any]],
                        history: Mapping[str, Sequence[Mapping[str, Any]]],
                        timers: Mapping[str, Sequence[Mapping[str, Any]]],
                        lifecycle_of: Callable[[int], Lifecycle],
                        ) -> Iterable[tuple[str, str, str]]:
        """``resolution_rule``: each ``resolve`` of a routed ticket met its rule at the time.

        At each ``resolve`` row of a ticket with work orders: the rule then in force (the
        latest dispatch, joint meeting or rule decision at or before it) was met by the
        work orders issued by then, in the states their histories had reached then (rows
        ordered by instant, then by id: a follow-on's rows come after its cause's), or
        none of them was open. Reads ``gw_work_orders``, ``gw_department_actions`` and the
        work orders' history rows not among ``history``, once for all the tickets (500 at
        a time).
        """
        resolves: dict[str, list[Mapping[str, Any]]] = {}
        for tid, ticket in tickets.items():
            if lifecycle_of(ticket["definition_id"]).spec.routing is None:
                continue
            rows = [r for r in history.get(tid, ()) if r["kind"] == "transition"
                    and r["trigger"] == RESOLVE_TRIGGER]
            if rows:
                resolves[tid] = rows
        if not resolves:
            return
        w, a = work_orders.c, department_actions.c
        children: dict[str, list[Any]] = {}
        rules: dict[str, list[Any]] = {}
        for chunk in in_chunks(resolves):
            for r in conn.execute(select(w.parent_id, w.child_id, w.department, w.role)
                                  .where(w.parent_id.in_(chunk)).order_by(w.id)):
                children.setdefault(r.parent_id, []).append(r)
            for action in conn.execute(select(a.ticket_id, a.at, a.data)
                                       .where(a.ticket_id.in_(chunk),
                                              a.kind.in_(RULE_KINDS))
                                       .order_by(a.id)):
                rules.setdefault(action.ticket_id, []).append(action)
        ids = [c.child_id for cs in children.values() for c in cs]
        steps: dict[str, list[tuple[datetime, int, str]]] = {
            c: [(r["at"], r["id"], r["to_state"]) for r in history[c]]
            for c in ids if c in history}
        h = history_table.c
        for chunk in in_chunks(c for c in ids if c not in steps):
            for step in conn.execute(select(h.ticket_id, h.at, h.id, h.to_state)
                                     .where(h.ticket_id.in_(chunk)).order_by(h.seq)):
                steps.setdefault(step.ticket_id, []).append((step.at, step.id, step.to_state))
        for tid, rows in resolves.items():
            for row in rows:
                problem = _resolved_against_rule(row, children.get(tid, []),
                                                 rules.get(tid, []), steps)
                if problem is not None:
                    yield tid, "resolution_rule", problem

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


def _check_resolution(ctx: CheckContext, change: Change) -> None:
    """Refuse ``resolve`` while open work orders do not meet the ticket's rule."""
    orders = ctx.state(change.ticket_id)
    if not isinstance(orders, Orders) or not orders.children:
        return
    records = ctx.tickets([c.child_id for c in orders.children])
    listed = [(c.child_id, c.department, c.role, r.state)
              for c, r in zip(orders.children, records, strict=True)]
    still = open_orders(listed)
    if still and not rule_met(orders.rule, orders.quorum,
                              [(role, state) for _, _, role, state in listed]):
        raise WorkOrdersOpen(change.ticket_id, change.trigger, orders.rule, orders.quorum,
                             still)


def _resolved_against_rule(row: Mapping[str, Any], children: Sequence[Any],
                           rules: Sequence[Any],
                           steps: Mapping[str, Sequence[tuple[datetime, int, str]]],
                           ) -> str | None:
    """Why the ``resolve`` history ``row`` broke the resolution rule then (None: it did not)."""
    at, mark = row["at"], (row["at"], row["id"])
    rule, quorum = "all", None
    for action in rules:  # as engine.workorders.state.load reads them
        if action.at <= at:
            data = action.data or {}
            rule, quorum = str(data.get("resolution", "all")), data.get("quorum")
    listed: list[tuple[str, str, str, str]] = []
    for child in children:
        reached = [state for when, hid, state in steps.get(child.child_id, ())
                   if (when, hid) <= mark]
        if reached:  # issued by then
            listed.append((child.child_id, child.department, child.role, reached[-1]))
    still = open_orders(listed)
    if not still or rule_met(rule, quorum, [(role, state) for _, _, role, state in listed]):
        return None
    return (f"resolved at {at.isoformat()} ({row['actor']}, role {row['role']}) while its "
            f"resolution rule {rule!r} was not met: work orders "
            f"{', '.join(f'{wid} ({what})' for wid, what in still.items())} were open")


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
        u.fire(parent_id, ARRIVE_TRIGGER, actor=actor, reason=reason)
    u.fire(parent_id, RESOLVE_TRIGGER, actor=actor, reason=reason, evidence=evidence)


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
