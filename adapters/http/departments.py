"""The centre's department commands over HTTP, and a ticket's work orders.

Dispatch by routing, designate a lead, joint meeting, approve a bounce, merge a duplicate,
add a work order. Each endpoint calls the same :class:`~engine.Departments` command as
the library, as the key's actor and role; the engine's refusals come back as problem+json
carrying their data (``BounceNeedsApproval``'s ``parent_id`` and ``department``,
``UnknownDepartment``'s ``known``, ``NotADuplicate``'s ``why``, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from adapters.http.api import EngineDep, GrantDep, TicketId
from adapters.http.auth import ApiKey, check_scope
from adapters.http.problems import PROBLEM_JSON, Problem
from engine import Departments, Engine, WorkOrder

__all__ = ["router", "visible_orders"]

_PROBLEM = {"content": {PROBLEM_JSON: {}}, "description": "RFC 9457 problem details"}
router = APIRouter(tags=["departments"],
                   responses={s: _PROBLEM for s in (401, 403, 404, 409, 422)})

DeptName = Annotated[str, Field(min_length=1, max_length=128)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class DispatchIn(BaseModel):
    """Dispatch by the routing table."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000, description="Kept in history.")


class LeadIn(BaseModel):
    """Designate the lead department (指定牵头)."""

    model_config = ConfigDict(extra="forbid")

    department: DeptName
    reason: Reason


class MeetingIn(BaseModel):
    """A joint meeting (联席会议) and its decision."""

    model_config = ConfigDict(extra="forbid")

    present: list[DeptName] = Field(min_length=1, max_length=50)
    lead: DeptName
    co: list[DeptName] = Field(default_factory=list, max_length=50)
    reason: str | None = Field(None, max_length=2000, description="The minutes.")


class MergeIn(BaseModel):
    """Merge this ticket into an earlier report of the same problem."""

    model_config = ConfigDict(extra="forbid")

    original_id: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Reason


class AddOrderIn(BaseModel):
    """One more work order (e.g. a follow-on to another department)."""

    model_config = ConfigDict(extra="forbid")

    department: DeptName
    role: Annotated[str, Field(pattern="^(lead|co)$")] = "co"
    reason: str | None = Field(None, max_length=2000)


class ApproveIn(BaseModel):
    """The centre lets the first receiver bounce a work order."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class WorkOrderOut(BaseModel):
    """A department's work order (a child ticket)."""

    id: str
    parent_id: str
    department: str
    role: str
    state: str
    level: str
    overdue: bool
    fallback: bool
    issued_at: datetime

    @classmethod
    def of(cls, o: WorkOrder) -> WorkOrderOut:
        """Build from an engine :class:`~engine.WorkOrder`."""
        return cls(id=o.id, parent_id=o.parent_id, department=o.department, role=o.role,
                   state=o.state, level=o.level, overdue=o.overdue, fallback=o.fallback,
                   issued_at=o.issued_at)


class WorkOrdersOut(BaseModel):
    """A ticket's work orders, the centre's decisions and the derived SLA."""

    ticket_id: str
    work_orders: list[WorkOrderOut]
    actions: list[dict[str, Any]]
    sla: dict[str, Any]


def visible_orders(grant: ApiKey, orders: list[WorkOrder]) -> list[WorkOrder]:
    """The work orders a key may see: all, or its own department's only."""
    if grant.department is None:
        return orders
    return [o for o in orders if o.department == grant.department]


def _scoped(engine: Engine, grant: ApiKey, ticket_id: str) -> None:
    ticket = engine.get(ticket_id)
    check_scope(grant, ticket, engine.lifecycle_of(ticket))


@router.get("/tickets/{ticket_id:ticket}/work-orders", response_model=WorkOrdersOut,
            summary="A ticket's work orders, decisions and SLA")
def list_work_orders(ticket_id: TicketId, engine: EngineDep, grant: GrantDep) -> WorkOrdersOut:
    """The ticket's work orders (a department key: its own only), decisions and SLA."""
    depts = Departments(engine)
    orders = visible_orders(grant, depts.work_orders(ticket_id))
    if (grant.department is not None and not orders) or grant.organisation is not None:
        _scoped(engine, grant, ticket_id)  # an organisation's key: the tickets it holds
    sla = depts.sla(ticket_id)
    return WorkOrdersOut(
        ticket_id=ticket_id, work_orders=[WorkOrderOut.of(o) for o in orders],
        actions=[{**a, "at": a["at"].isoformat()} for a in depts.actions(ticket_id)]
        if grant.department is None else [],
        sla={"rule": sla.rule, "quorum": sla.quorum,
             "due_at": sla.due_at.isoformat() if sla.due_at else None,
             "met_at": sla.met_at.isoformat() if sla.met_at else None,
             "on_time": sla.on_time})


@router.post("/tickets/{ticket_id:ticket}/dispatch", response_model=list[WorkOrderOut],
             summary="Dispatch by the routing table")
def dispatch(ticket_id: TicketId, body: DispatchIn, engine: EngineDep,
             grant: GrantDep) -> list[WorkOrderOut]:
    """Fire ``dispatch`` and issue the lead and co-handling work orders the routing names."""
    _scoped(engine, grant, ticket_id)
    orders = Departments(engine).dispatch(ticket_id, actor=grant.as_actor(), reason=body.reason)
    return [WorkOrderOut.of(o) for o in orders]


@router.post("/tickets/{ticket_id:ticket}/lead", response_model=WorkOrderOut,
             summary="Designate the lead department")
def designate_lead(ticket_id: TicketId, body: LeadIn, engine: EngineDep,
                   grant: GrantDep) -> WorkOrderOut:
    """The centre designates the lead (reason required); returns the lead work order."""
    _scoped(engine, grant, ticket_id)
    order = Departments(engine).designate_lead(ticket_id, body.department,
                                               actor=grant.as_actor(), reason=body.reason)
    return WorkOrderOut.of(order)


@router.post("/tickets/{ticket_id:ticket}/meetings", response_model=list[WorkOrderOut],
             summary="Record a joint meeting and apply its decision")
def joint_meeting(ticket_id: TicketId, body: MeetingIn, engine: EngineDep,
                  grant: GrantDep) -> list[WorkOrderOut]:
    """Withdraw work orders the decision drops, issue missing ones; returns the live ones."""
    _scoped(engine, grant, ticket_id)
    orders = Departments(engine).joint_meeting(
        ticket_id, actor=grant.as_actor(), present=body.present, lead=body.lead, co=body.co,
        reason=body.reason)
    return [WorkOrderOut.of(o) for o in orders]


@router.post("/tickets/{ticket_id:ticket}/merge", status_code=204,
             summary="Merge a duplicate into the original")
def merge(ticket_id: TicketId, body: MergeIn, engine: EngineDep, grant: GrantDep) -> None:
    """Merge this ticket into ``original_id`` (same category and place, within the window)."""
    _scoped(engine, grant, ticket_id)
    Departments(engine).merge_duplicate(ticket_id, body.original_id, actor=grant.as_actor(),
                                        reason=body.reason)


@router.post("/tickets/{ticket_id:ticket}/work-orders", status_code=201,
             response_model=WorkOrderOut, summary="Add a work order")
def add_work_order(ticket_id: TicketId, body: AddOrderIn, engine: EngineDep,
                   grant: GrantDep) -> WorkOrderOut:
    """Issue one more work order to a declared department."""
    _scoped(engine, grant, ticket_id)
    order = Departments(engine).add_work_order(ticket_id, body.department,
                                               actor=grant.as_actor(), role=body.role,
                                               reason=body.reason)
    return WorkOrderOut.of(order)


@router.post("/work-orders/{work_order_id:ticket}/approve-bounce", status_code=204,
             summary="Approve the first receiver's bounce")
def approve_bounce(
    work_order_id: Annotated[str, Path(min_length=1, max_length=64)], body: ApproveIn,
    engine: EngineDep, grant: GrantDep,
) -> None:
    """The centre lets the first receiver bounce this work order (reason kept)."""
    if grant.department is not None:
        raise Problem(403, "wrong-department", "a department key may not approve bounces; "
                      "the centre decides", department=grant.department)
    Departments(engine).approve_bounce(work_order_id, actor=grant.as_actor(),
                                       reason=body.reason)
