"""The department commands of the centre: dispatch, designate, joint meeting, merge.

:class:`Departments` is a service over an engine's kernel. Each command is one compound
command (:meth:`engine.runtime.kernel.Kernel.compound`): the ticket's transition, its work
orders and the recorded decision are decided and checked together, then written together
— or, on any refusal, not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

from engine.errors import (
    InvalidFields,
    NotADuplicate,
    RoleNotAllowed,
    TicketNotFound,
)
from engine.lifecycle.machine import Lifecycle
from engine.reports.departments import department_figures
from engine.runtime.kernel import HasKernel, Kernel
from engine.runtime.model import Actor
from engine.runtime.participant import Unit
from engine.runtime.working import TicketRecord
from engine.store.department_tables import department_actions, ticket_links, work_orders
from engine.store.reads import ticket_exists
from engine.store.tables import history, timers
from engine.workorders import orders as O
from engine.workorders.model import LIVE_EXCLUDED, PartSLA, TicketSLA, WorkOrder, derived_due
from engine.workorders.participant import WorkOrders
from engine.workorders.routing import Route, route_for
from engine.workorders.state import Link

__all__ = ["Departments"]

_INSERT_LINK = insert(ticket_links)


def _need_centre(lc: Lifecycle, rec: TicketRecord, actor: Actor, what: str) -> None:
    """Decisions on departments belong to the roles that may dispatch (the centre).

    Raises:
        RoleNotAllowed: ``actor``'s role may not fire ``dispatch`` in this lifecycle.
    """
    allowed = sorted({r for t in lc.spec.transitions if t.trigger == "dispatch" for r in t.roles})
    if actor.role not in allowed:
        raise RoleNotAllowed(rec.id, rec.state, what, actor.role, allowed)


def _need_reason(ticket_id: str, reason: str | None, what: str) -> str:
    if not (reason and reason.strip()):
        raise InvalidFields(ticket_id, {"reason": f"{what} requires a reason"})
    return reason


class Departments:
    """Multi-department handling of an engine's tickets (lead and co-handling work orders).

    A ticket's lifecycle declares ``departments`` and a ``routing`` table; each department's
    share of a ticket is a *work order*: a child ticket running the routing's work-order
    lifecycle (bundled: ``work_order``) with its own state, deadlines and escalation. The
    engine's work-order participant applies the duties and the resolution rule with each
    work-order change (see :mod:`engine.workorders.participant`).

    Args:
        engine: the engine whose tickets these are (or its kernel).

    The work-order lifecycle is deployed on first use (inside a batch too).
    """

    def __init__(self, engine: HasKernel | Kernel):
        self.kernel: Kernel = engine if isinstance(engine, Kernel) else engine.kernel
        found = [p for p in self.kernel.participants if isinstance(p, WorkOrders)]
        if not found:
            self.kernel.add_participant(WorkOrders())
            found = [p for p in self.kernel.participants if isinstance(p, WorkOrders)]
        self._participant = found[0]

    def _unit(self, *, read: bool = False) -> Any:
        return self.kernel.compound(self._participant, read_only=read)

    # -- reads ------------------------------------------------------------------------------

    def route(self, ticket_id: str) -> Route:
        """Where the routing table sends the ticket now (by its category and level).

        Raises:
            TicketNotFound, NoRouting.
        """
        with self._unit(read=True) as u:
            rec, lc = O.parent_of(u, ticket_id)
            return route_for(lc.spec, rec.fields.get("category"), rec.level)

    def work_orders(self, ticket_id: str) -> list[WorkOrder]:
        """The ticket's work orders, in the order they were issued.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self._unit(read=True) as u:
            u.ticket(ticket_id)
            return O.list_orders(u, ticket_id)

    def actions(self, ticket_id: str) -> list[dict[str, Any]]:
        """The recorded department decisions on a ticket, oldest first.

        Each: ``{"at", "kind", "actor", "role", "reason", "data"}`` with ``kind`` one of
        ``dispatch``, ``designate``, ``meeting``, ``approve_bounce``, ``fallback``,
        ``reopen``, ``merge``.
        """
        with self.kernel.reading() as conn:
            rows = conn.execute(select(department_actions).where(
                department_actions.c.ticket_id == ticket_id)
                .order_by(department_actions.c.id)).mappings().all()
        return [{k: r[k] for k in ("at", "kind", "actor", "role", "reason", "data")}
                for r in rows]

    def figures(self, lifecycle: str) -> dict[str, dict[str, int]]:
        """Per-department figures over the tickets of ``lifecycle``.

        See :func:`~engine.reports.departments.department_figures`.
        """
        lc = self.kernel.lifecycle(lifecycle)
        with self.kernel.reading() as conn:
            return department_figures(conn, lifecycle, final_states=lc.final_states,
                                      escalation_trigger=lc.spec.escalation_trigger)

    def timeline(self, ticket_id: str) -> list[dict[str, Any]]:
        """The ticket's and its work orders' history together, in the order it was written.

        Each entry: ``{"at" (aware UTC), "ticket", "department" (None for the ticket
        itself), "role" (``lead``/``co``/None), "kind", "trigger", "to_state", "to_level",
        "actor"}``.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self.kernel.reading() as conn:
            self._exists(conn, ticket_id)
            links = {r.child_id: (r.department, r.role) for r in conn.execute(
                select(work_orders.c.child_id, work_orders.c.department, work_orders.c.role)
                .where(work_orders.c.parent_id == ticket_id))}
            rows = conn.execute(
                select(history).where(history.c.ticket_id.in_([ticket_id, *links]))
                .order_by(history.c.id)).mappings().all()
        return [{"at": r["at"], "ticket": r["ticket_id"],
                 "department": links.get(r["ticket_id"], (None, None))[0],
                 "role": links.get(r["ticket_id"], (None, None))[1], "kind": r["kind"],
                 "trigger": r["trigger"], "to_state": r["to_state"], "to_level": r["to_level"],
                 "actor": r["actor"]} for r in rows]

    def sla(self, ticket_id: str) -> TicketSLA:
        """The ticket-level SLA derived from its live work orders by its resolution rule.

        Each part's due instant is its work-order lifecycle's ``resolution_deadline``
        timer; the ticket's due is the latest part's (``all``), the lead's (``lead``) or the
        quorum-th earliest (``quorum``); it is met when those parts are done.

        Raises:
            TicketNotFound: no such ticket.
        """
        with self._unit(read=True) as u:
            u.ticket(ticket_id)
            orders = O.orders_of(u, ticket_id)
            listed = [o for o in O.list_orders(u, ticket_id) if o.state not in LIVE_EXCLUDED]
            children = {o.id: u.ticket(o.id) for o in listed}
        parts: list[PartSLA] = []
        with self.kernel.reading() as conn:
            for order in listed:
                name = children[order.id].lifecycle.spec.resolution_deadline
                due = conn.execute(select(timers.c.due_at).where(
                    timers.c.ticket_id == order.id, timers.c.name == name)
                    .order_by(timers.c.id).limit(1)).scalar()
                done = conn.execute(select(history.c.at).where(
                    history.c.ticket_id == order.id, history.c.to_state == "done",
                    history.c.kind == "transition").limit(1)).scalar()
                parts.append(PartSLA(order.id, order.department, order.role, due, done,
                                     None if done is None else not order.overdue))
        due_at, met_at = derived_due(orders.rule, orders.quorum, parts)
        on_time = None if due_at is None or met_at is None else met_at <= due_at
        return TicketSLA(orders.rule, orders.quorum, tuple(parts), due_at, met_at, on_time)

    def duplicate_of(self, ticket_id: str) -> str | None:
        """The original a ticket was merged into, or None."""
        with self.kernel.reading() as conn:
            found: str | None = conn.execute(select(ticket_links.c.other_id).where(
                ticket_links.c.ticket_id == ticket_id,
                ticket_links.c.kind == "duplicate")).scalar()
            return found

    @staticmethod
    def _exists(conn: Any, ticket_id: str) -> None:
        if not ticket_exists(conn, ticket_id):
            raise TicketNotFound(ticket_id)

    # -- commands ---------------------------------------------------------------------------

    def dispatch(
        self, ticket_id: str, *, actor: Actor, reason: str | None = None,
        trigger: str = "dispatch",
    ) -> list[WorkOrder]:
        """Dispatch a ticket by its routing table.

        Fires ``trigger`` on it and issues one work order to the lead department and one to
        each co-handling department.

        The first lead work order's department is the ticket's *first receiver*: it cannot
        bounce without the centre's approval (:meth:`approve_bounce`). The ticket's field
        ``department`` is set to the lead. Dispatching again (e.g. from ``escalated``, routed
        by the new level) withdraws the live work orders and issues new ones.

        Returns:
            The work orders issued.

        Raises:
            NoRouting; anything :meth:`Engine.fire` raises for the ticket's trigger.
        """
        with self._unit() as u:
            rec, lc = O.parent_of(u, ticket_id)
            route = route_for(lc.spec, rec.fields.get("category"), rec.level)
            fields = {"department": route.lead} if "department" in lc.spec.fields else {}
            u.fire(ticket_id, trigger, actor=actor, reason=reason, fields=fields)
            for old in O.list_orders(u, ticket_id):  # a re-dispatch replaces them
                O.retire(u, old, actor, "re-dispatched")
            rec = u.ticket(ticket_id)
            ids = [O.issue(u, rec, route.lead, "lead", actor, reason=reason)]
            ids += [O.issue(u, rec, dept, "co", actor, reason=reason) for dept in route.co]
            O.record(u, ticket_id, "dispatch", actor, reason, {
                "lead": route.lead, "co": list(route.co), "rule": route.rule,
                "resolution": route.resolution, "quorum": route.quorum})
            return [o for o in O.list_orders(u, ticket_id) if o.id in ids]

    def add_work_order(
        self, ticket_id: str, department: str, *, actor: Actor, role: str = "co",
        reason: str | None = None, work_order_id: str | None = None,
        declared_only: bool = True,
    ) -> WorkOrder:
        """Issue one more work order on a ticket (e.g. a follow-on to another department).

        Args:
            ticket_id: the ticket.
            department: the department's name.
            actor: who issues it (a role the work-order lifecycle lets report).
            role: ``lead`` or ``co``.
            reason: kept in the work order's history.
            work_order_id: the work order's ticket id (default ``<ticket>.<n>``).
            declared_only: refuse departments the lifecycle does not declare (default);
                replays of other cities' data pass False to keep their agency names.

        Raises:
            NoRouting, UnknownDepartment, TicketExists (``work_order_id`` taken).
        """
        with self._unit() as u:
            rec, lc = O.parent_of(u, ticket_id)
            if declared_only:
                O.check_department(lc, ticket_id, department)
            wid = O.issue(u, rec, department, role, actor, reason=reason,
                          work_order_id=work_order_id)
            return next(o for o in O.list_orders(u, ticket_id) if o.id == wid)

    def approve_bounce(self, work_order_id: str, *, actor: Actor, reason: str) -> None:
        """The centre lets the first receiver bounce this work order (recorded with reason).

        Raises:
            TicketNotFound: not a work order; InvalidFields: no reason; RoleNotAllowed: the
            actor's role may not dispatch (only the centre decides).
        """
        _need_reason(work_order_id, reason, "approving a bounce")
        with self._unit() as u:
            link = self._link(u, work_order_id)
            parent, lc = O.parent_of(u, link.parent_id)
            _need_centre(lc, parent, actor, "approve_bounce")
            O.record(u, link.parent_id, "approve_bounce", actor, reason,
                     {"work_order": work_order_id, "department": link.department})

    def bounce(self, work_order_id: str, *, actor: Actor, reason: str) -> None:
        """A department says "not ours": fire ``bounce`` on its work order (reason required).

        Raises:
            BounceNeedsApproval, BounceLimitReached, BounceBudgetExceeded, InvalidFields,
            or what :meth:`Engine.fire` raises.
        """
        _need_reason(work_order_id, reason, "a bounce")
        self.kernel.fire(work_order_id, "bounce", actor=actor, reason=reason)

    def designate_lead(
        self, ticket_id: str, department: str, *, actor: Actor, reason: str
    ) -> WorkOrder:
        """The centre designates the lead department (指定牵头), at any time, with a reason.

        Live lead work orders of other departments are withdrawn (a bounced one is marked
        handled); a live co-handling work order of ``department`` becomes its lead one. A
        ticket still in its initial state is dispatched (trigger ``dispatch``) first.

        Raises:
            NoRouting, UnknownDepartment, InvalidFields (no reason), RoleNotAllowed (the
            actor's role may not dispatch: only the centre designates).
        """
        _need_reason(ticket_id, reason, "designating a lead")
        return self._apply_decision(ticket_id, actor, reason, department, None,
                                    kind="designate", data={"lead": department})

    def joint_meeting(
        self, ticket_id: str, *, actor: Actor, present: Sequence[str], lead: str,
        co: Sequence[str] = (), reason: str | None = None,
    ) -> list[WorkOrder]:
        """Record a joint meeting (联席会议) and apply its decision.

        Args:
            ticket_id: the ticket.
            actor: who chaired (the centre).
            present: the departments at the meeting.
            lead: the decided lead department.
            co: the decided co-handling departments. Live work orders that do not match the
                decision are withdrawn, missing ones issued.
            reason: the minutes, kept with the record.

        Returns:
            The ticket's live work orders after the decision.

        Raises:
            NoRouting, UnknownDepartment, RoleNotAllowed (the actor's role may not dispatch).
        """
        data = {"present": list(present), "lead": lead, "co": list(co)}
        self._apply_decision(ticket_id, actor, reason, lead, list(co), kind="meeting",
                             data=data, check=list(present))
        return [o for o in self.work_orders(ticket_id) if o.state not in LIVE_EXCLUDED]

    def _apply_decision(
        self, ticket_id: str, actor: Actor, reason: str | None, lead: str,
        co: list[str] | None, *, kind: str, data: dict[str, Any], check: Sequence[str] = (),
    ) -> WorkOrder:
        with self._unit() as u:
            rec, lc = O.parent_of(u, ticket_id)
            _need_centre(lc, rec, actor, kind)
            for dept in [lead, *(co or []), *check]:
                O.check_department(lc, ticket_id, dept)
            if rec.state == lc.spec.initial and not O.list_orders(u, ticket_id):
                # deciding on a ticket not yet dispatched dispatches it
                u.fire(ticket_id, "dispatch", actor=actor, reason=reason)
            live = [o for o in O.list_orders(u, ticket_id)
                    if o.state not in LIVE_EXCLUDED - {"bounced"} and o.state != "done"]
            wanted = {lead: "lead"} | ({d: "co" for d in co if d != lead} if co is not None
                                       else {})
            keep: dict[str, WorkOrder] = {}
            why = f"{kind}: {reason}" if reason else kind
            for order in live:
                role = wanted.get(order.department)
                keeps_role = co is None and order.role == "co" and order.department != lead
                if (role == order.role and order.state != "bounced") or keeps_role:
                    keep[order.department] = order
                else:
                    O.retire(u, order, actor, why)
            if kind == "meeting":
                orders = O.orders_of(u, ticket_id)
                data = {**data, "resolution": orders.rule, "quorum": orders.quorum}
            O.record(u, ticket_id, kind, actor, reason, data)
            rec = u.ticket(ticket_id)
            for dept, role in wanted.items():
                if dept not in keep:
                    O.issue(u, rec, dept, role, actor, reason=why)
            return next(o for o in O.list_orders(u, ticket_id)
                        if o.department == lead and o.role == "lead"
                        and o.state not in LIVE_EXCLUDED)

    def merge_duplicate(
        self, ticket_id: str, original_id: str, *, actor: Actor, reason: str
    ) -> None:
        """Merge a second report of the same problem into the original.

        The duplicate goes to its final state via ``merge`` (its timers stop, its live work
        orders are withdrawn); the original is untouched and keeps its own clocks. They must
        match on the routing's ``duplicates.match`` fields (non-empty), and the duplicate
        must have been reported no earlier than the original and within
        ``duplicates.window`` of it.

        Raises:
            NotADuplicate, TicketNotFound, NoRouting, InvalidFields (no reason), or what
            :meth:`Engine.fire` raises for ``merge``.
        """
        _need_reason(ticket_id, reason, "a merge")
        with self._unit() as u:
            dup, lc = O.parent_of(u, ticket_id)
            original = u.ticket(original_id)
            routing = lc.spec.routing
            assert routing is not None
            if ticket_id == original_id:
                raise NotADuplicate(ticket_id, original_id, "a ticket is not its own duplicate")
            if original.lifecycle.name != lc.name:
                raise NotADuplicate(ticket_id, original_id,
                                    f"lifecycles differ ({lc.name} / {original.lifecycle.name})")
            if original.state in lc.final_states:
                raise NotADuplicate(ticket_id, original_id,
                                    f"the original is already {original.state!r}")
            for name in routing.duplicates.match:
                mine, theirs = dup.fields.get(name), original.fields.get(name)
                if mine is None or mine != theirs:
                    raise NotADuplicate(ticket_id, original_id,
                                        f"field {name!r} differs ({mine!r} / {theirs!r})")
            gap = dup.created_at - original.created_at
            if gap.total_seconds() < 0:
                raise NotADuplicate(ticket_id, original_id,
                                    "the original was reported later; merge the other way")
            if gap > routing.duplicates.window:
                raise NotADuplicate(ticket_id, original_id,
                                    f"reported {gap} apart, more than the window "
                                    f"{routing.duplicates.window}")
            for order in O.list_orders(u, ticket_id):
                O.retire(u, order, actor, f"merged into {original_id}")
            u.fire(ticket_id, "merge", actor=actor, reason=reason)
            u.add_row(_INSERT_LINK, {"ticket_id": ticket_id, "other_id": original_id,
                                     "kind": "duplicate", "at": u.now, "actor": actor.id})
            O.record(u, original_id, "merge", actor, reason, {"duplicate": ticket_id})

    @staticmethod
    def _link(u: Unit, work_order_id: str) -> Link:
        u.ticket(work_order_id)
        link = u.state(work_order_id)
        if not isinstance(link, Link):
            raise TicketNotFound(work_order_id)
        return link
