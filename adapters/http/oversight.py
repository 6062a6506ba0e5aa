"""Oversight over HTTP (issue 11): extension requests, suspensions, supervision notices.

Each endpoint calls the same :class:`~engine.Engine` command as the library, as the key's
actor and role; what a role may do is the lifecycle's ``oversight`` rules (a department key
asks for an extension, the centre decides, suspends, resumes and sends notices). A
department key acts only on its own department's tickets and work orders. Refusals come
back as problem+json: ``OversightRefused`` (409) carries ``why`` and ``details``,
``RoleNotAllowed`` is a 403, a blank reason or a time without a zone a 422.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from adapters.http.api import EngineDep, GrantDep, TicketId
from adapters.http.auth import ApiKey, check_scope
from adapters.http.problems import PROBLEM_JSON
from engine import Engine, SupervisionNotice, TimeRequest

__all__ = ["router"]

_PROBLEM = {"content": {PROBLEM_JSON: {}}, "description": "RFC 9457 problem details"}
router = APIRouter(tags=["oversight"],
                   responses={s: _PROBLEM for s in (401, 403, 404, 409, 422)})

Name = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


def _iso_text(value: object) -> object:
    """An instant is ISO 8601 text with a zone; a JSON number is not taken as Unix time."""
    if not isinstance(value, str | datetime):
        raise ValueError("give an ISO 8601 instant with a zone, e.g. 2024-05-01T16:00:00+08:00")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class ExtensionIn(BaseModel):
    """A department asks for more time on a deadline (延期申请)."""

    model_config = ConfigDict(extra="forbid")

    deadline: Name = Field(description="The deadline to extend (e.g. resolution).")
    proposed_due: Instant = Field(description="The due instant asked for (with a zone).")
    reason: Reason


class DecisionIn(BaseModel):
    """The centre approves or refuses an extension request."""

    model_config = ConfigDict(extra="forbid")

    approve: StrictBool = Field(
        description="true: approve; false: refuse (a JSON boolean, not text or a number).")
    reason: Reason
    due_at: Instant | None = Field(
        None, description="The due instant granted (default: the one asked for).")


class SuspensionIn(BaseModel):
    """Suspend a ticket (挂起) for a documented cause."""

    model_config = ConfigDict(extra="forbid")

    cause: Name = Field(description="One of the lifecycle's oversight.suspension.causes.")
    reason: Reason
    until: Instant | None = Field(
        None, description="Resume at the latest then (default and at most: the limit).")


class ResumeIn(BaseModel):
    """Resume a suspended ticket."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class NoticeIn(BaseModel):
    """A supervision notice (督办) to a department."""

    model_config = ConfigDict(extra="forbid")

    text: Reason
    department: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="To whom (default: the ticket's department).")
    reply_due: Instant | None = None


class TimeRequestOut(BaseModel):
    """An extension request or a suspension (instants ISO 8601 UTC; durations seconds)."""

    model_config = ConfigDict(from_attributes=True)

    ticket_id: str
    parent_id: str
    kind: str
    n: int
    status: str
    deadline: str | None
    cause: str | None
    department: str | None
    requested_at: datetime
    requested_by: str
    reason: str
    original_due: datetime | None
    proposed_due: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    new_due: datetime | None
    extended_seconds: float | None
    ended_at: datetime | None
    suspended_seconds: float | None

    @classmethod
    def of(cls, r: TimeRequest) -> TimeRequestOut:
        """Build from an engine :class:`~engine.TimeRequest` (its fields of the same names)."""
        return cls.model_validate(r)


class NoticeOut(BaseModel):
    """A supervision notice."""

    model_config = ConfigDict(from_attributes=True)

    ticket_id: str
    seq: int
    at: datetime
    department: str | None
    actor: str
    text: str
    reply_due: datetime | None

    @classmethod
    def of(cls, n: SupervisionNotice) -> NoticeOut:
        """Build from an engine :class:`~engine.SupervisionNotice` (same field names)."""
        return cls.model_validate(n)


def _scoped(engine: Engine, grant: ApiKey, ticket_id: str) -> None:
    ticket = engine.get(ticket_id)
    check_scope(grant, ticket, engine.lifecycle_of(ticket))


@router.post("/tickets/{ticket_id:ticket}/extensions", status_code=201,
             response_model=TimeRequestOut, summary="Ask for more time on a deadline")
def request_extension(ticket_id: TicketId, body: ExtensionIn, engine: EngineDep,
                      grant: GrantDep) -> TimeRequestOut:
    """A department's extension request (延期申请); the centre decides it."""
    _scoped(engine, grant, ticket_id)
    return TimeRequestOut.of(engine.request_extension(
        ticket_id, body.deadline, proposed_due=body.proposed_due, reason=body.reason,
        actor=grant.as_actor(), department=grant.department))


@router.post("/tickets/{ticket_id:ticket}/extensions/{n}/decision", response_model=TimeRequestOut,
             summary="Approve or refuse an extension request")
def decide_extension(ticket_id: TicketId, n: Annotated[int, Path(ge=1)], body: DecisionIn,
                     engine: EngineDep, grant: GrantDep) -> TimeRequestOut:
    """The centre's decision: approved, the deadline moves; refused, it stays."""
    _scoped(engine, grant, ticket_id)
    return TimeRequestOut.of(engine.decide_extension(
        ticket_id, n, approve=body.approve, reason=body.reason, actor=grant.as_actor(),
        due_at=body.due_at))


@router.get("/tickets/{ticket_id:ticket}/extensions", response_model=list[TimeRequestOut],
            summary="A ticket's extension requests")
def list_extensions(ticket_id: TicketId, engine: EngineDep,
                    grant: GrantDep) -> list[TimeRequestOut]:
    """Every extension request of the ticket, in the order asked."""
    _scoped(engine, grant, ticket_id)
    return [TimeRequestOut.of(r) for r in engine.time_requests(ticket_id, "extension")]


@router.post("/tickets/{ticket_id:ticket}/suspensions", status_code=201,
             response_model=TimeRequestOut, summary="Suspend a ticket")
def suspend(ticket_id: TicketId, body: SuspensionIn, engine: EngineDep,
            grant: GrantDep) -> TimeRequestOut:
    """Suspend (挂起) for a documented cause: the deadlines and SLA clocks stop."""
    _scoped(engine, grant, ticket_id)
    return TimeRequestOut.of(engine.suspend(
        ticket_id, body.cause, reason=body.reason, actor=grant.as_actor(), until=body.until))


@router.post("/tickets/{ticket_id:ticket}/resume", response_model=TimeRequestOut,
             summary="Resume a suspended ticket")
def resume(ticket_id: TicketId, body: ResumeIn, engine: EngineDep,
           grant: GrantDep) -> TimeRequestOut:
    """Resume: the deadlines run again, due later by the time suspended."""
    _scoped(engine, grant, ticket_id)
    return TimeRequestOut.of(engine.resume(ticket_id, reason=body.reason,
                                           actor=grant.as_actor()))


@router.get("/tickets/{ticket_id:ticket}/suspensions", response_model=list[TimeRequestOut],
            summary="A ticket's suspensions")
def list_suspensions(ticket_id: TicketId, engine: EngineDep,
                     grant: GrantDep) -> list[TimeRequestOut]:
    """Every suspension of the ticket, in order."""
    _scoped(engine, grant, ticket_id)
    return [TimeRequestOut.of(r) for r in engine.time_requests(ticket_id, "suspension")]


@router.post("/tickets/{ticket_id:ticket}/supervision-notices", status_code=201,
             response_model=NoticeOut, summary="Send a supervision notice")
def send_notice(ticket_id: TicketId, body: NoticeIn, engine: EngineDep,
                grant: GrantDep) -> NoticeOut:
    """The centre presses a department about the ticket (督办); recorded and counted."""
    _scoped(engine, grant, ticket_id)
    return NoticeOut.of(engine.send_supervision_notice(
        ticket_id, text=body.text, actor=grant.as_actor(), department=body.department,
        reply_due=body.reply_due))


@router.get("/tickets/{ticket_id:ticket}/supervision-notices", response_model=list[NoticeOut],
            summary="A ticket's supervision notices")
def list_notices(ticket_id: TicketId, engine: EngineDep, grant: GrantDep) -> list[NoticeOut]:
    """Every supervision notice of the ticket, oldest first."""
    _scoped(engine, grant, ticket_id)
    return [NoticeOut.of(n) for n in engine.supervision_notices(ticket_id)]
