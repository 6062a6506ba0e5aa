"""The ticket API: report, fire a trigger, read a ticket, list tickets.

Ticket ids follow :mod:`engine.validation` (ASCII, segments joined by ``/``), so the routes take
them as ``{ticket_id:ticket}`` (:mod:`adapters.http.paths`): ``GET /tickets/14-00011080/lead``
reads the Chicago replay's work order ``14-00011080/lead``. An id no ticket can have is a 404.
``Idempotency-Key`` (1 to 128 visible ASCII characters, else 400) is passed to the engine on
every creating endpoint.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, Security
from fastapi.security import APIKeyHeader

from adapters.http import paths  # noqa: F401  (registers {ticket_id:ticket} before the routes)
from adapters.http.auth import ApiKey, KeyRing, check_scope
from adapters.http.models import (
    AttachmentOut,
    FireIn,
    HistoryOut,
    LifecycleOut,
    ReportIn,
    StateOut,
    TicketDetail,
    TicketList,
    TicketOut,
    TimerOut,
    TransitionOut,
)
from adapters.http.preconditions import IfMatchDep, conflict, expected_version, set_etag
from adapters.http.problems import PROBLEM_JSON, Problem
from engine import ConcurrencyConflict, Engine, Limits, Ticket, find_tickets
from engine.evidence import Attachment
from engine.validation import idempotency_key_problem, ticket_id_problem

__all__ = ["router"]

_PROBLEM = {"content": {PROBLEM_JSON: {}}, "description": "RFC 9457 problem details"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: _PROBLEM for s in (400, 401, 403, 404, 409, 413, 415, 422)}

router = APIRouter(tags=["tickets"], responses=_ERRORS)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key: it acts as one actor in one role (and, for "
                                    "a department, for that department only).")


def _grant(request: Request, x_api_key: Annotated[str | None, Security(_API_KEY)]) -> ApiKey:
    keys: KeyRing = request.app.state.keys
    return keys.require(x_api_key)


def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def _idempotency_key(
    request: Request,
    idempotency_key: Annotated[str | None, Header(
        description="Repeat a request with the same key to have it applied at most once: "
                    "the first result is answered again and nothing else changes. 1 to 128 "
                    "visible ASCII characters (e.g. a UUID); anything else is a 400. Keys "
                    "belong to the key holder that sent them.",
        json_schema_extra={"minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"})] = None,
) -> str | None:
    if idempotency_key is None:
        return None
    problem = idempotency_key_problem(idempotency_key, _limits(request))
    if problem is not None:
        raise Problem(400, "invalid-idempotency-key", f"Idempotency-Key {problem}")
    return idempotency_key


def _ticket_id(ticket_id: Annotated[str, Path(
        description="The ticket id: ASCII letters, digits and - _ . : ~ +, in segments "
                    "joined by / (see engine.validation).")]) -> str:
    problem = ticket_id_problem(ticket_id)
    if problem is not None:
        raise Problem(404, "ticket-not-found", f"no ticket can have this id ({problem})")
    return ticket_id


EngineDep = Annotated[Engine, Depends(_engine)]
GrantDep = Annotated[ApiKey, Depends(_grant)]
TicketId = Annotated[str, Depends(_ticket_id)]
KeyDep = Annotated[str | None, Depends(_idempotency_key)]


def location(ticket_id: str) -> str:
    """The ``Location`` of a ticket: ``/tickets/`` and the id, percent-encoded (RFC 3986)."""
    return "/tickets/" + quote(ticket_id, safe="/:~+")


def _lifecycle(request: Request, name: str | None) -> str:
    allowed: tuple[str, ...] = request.app.state.lifecycles
    if name is None:
        return allowed[0]
    if name not in allowed:
        raise Problem(404, "unknown-lifecycle",
                      f"this API serves lifecycle(s) {', '.join(allowed)}; not {name!r}",
                      lifecycle=name, known=list(allowed))
    return name


def _out(engine: Engine, ticket: Ticket) -> TicketOut:
    return TicketOut.of(ticket, ticket.state in engine.lifecycle_of(ticket).final_states)


@router.post("/tickets", status_code=201, response_model=TicketOut,
             summary="Report a new ticket")
def report_ticket(body: ReportIn, request: Request, response: Response, engine: EngineDep,
                  grant: GrantDep, idempotency_key: KeyDep) -> TicketOut:
    """Create a ticket in the lifecycle's initial state, as the key's actor and role.

    With ``Idempotency-Key`` a retried report answers the first ticket again (201).
    """
    lifecycle = _lifecycle(request, body.lifecycle)
    actor = grant.as_actor()
    ticket = engine.report(lifecycle, body.fields, actor=actor, ticket_id=body.ticket_id,
                           level=body.level, reason=body.reason,
                           idempotency_key=idempotency_key,
                           evidence=[e.plain() for e in body.evidence])
    response.headers["Location"] = location(ticket.id)
    set_etag(response, ticket)
    return _out(engine, ticket)


_PRECONDITION: dict[int | str, dict[str, Any]] = {412: {
    **_PROBLEM, "description": "If-Match names a version the ticket is no longer at "
                               "(concurrency-conflict); nothing was applied"}}


@router.post("/tickets/{ticket_id:ticket}/triggers/{trigger}", response_model=TicketOut,
             summary="Fire a trigger on a ticket", responses=_PRECONDITION)
def fire_trigger(
    ticket_id: TicketId,
    trigger: Annotated[str, Path(min_length=1, max_length=64)],
    body: FireIn,
    request: Request,
    response: Response,
    engine: EngineDep,
    grant: GrantDep,
    idempotency_key: KeyDep,
    if_match: IfMatchDep,
) -> TicketOut:
    """Fire ``trigger`` as the key's actor and role; the lifecycle's role rules apply.

    ``evidence`` names files uploaded with ``POST /uploads`` (or send both in one request:
    ``POST /tickets/{id}/triggers/{trigger}/with-evidence``). With ``If-Match`` (the
    ticket's ``ETag``) the command applies only to that version (else 412).
    """
    current = engine.get(ticket_id)
    check_scope(grant, current, engine.lifecycle_of(current))
    ticket = fire_checked(engine, current, trigger, grant, if_match, reason=body.reason,
                          fields=body.fields, idempotency_key=idempotency_key,
                          evidence=[e.plain() for e in body.evidence])
    set_etag(response, ticket)
    return _out(engine, ticket)


def fire_checked(engine: Engine, current: Ticket, trigger: str, grant: ApiKey,
                 if_match: Any, **command: Any) -> Ticket:
    """``engine.fire`` on ``current`` as the key, held to ``If-Match``'s version if given.

    Raises:
        Problem: 412 when If-Match names another version (or the ticket changed before
            the write). Otherwise what :meth:`Engine.fire` raises.
    """
    expected = expected_version(if_match, current)
    try:
        return engine.fire(current.id, trigger, actor=grant.as_actor(),
                           expected_version=expected, **command)
    except ConcurrencyConflict as exc:
        if expected is None:
            raise
        raise conflict(exc) from None


@router.get("/tickets/{ticket_id:ticket}", response_model=TicketDetail,
            summary="Read a ticket with its history and timers")
def read_ticket(ticket_id: TicketId, response: Response, engine: EngineDep,
                grant: GrantDep) -> TicketDetail:
    """The ticket, its history (oldest first), timers, triggers and attachments.

    ``ETag``: the ticket's version (``"3"``), to send back as ``If-Match`` with a command.

    ``triggers``: what the key may fire now (``Engine.available_triggers``: the ticket's own
    lifecycle version, the key's role, the level's handler rule, the guards);
    ``state_triggers``: every trigger out of the state in that version.
    """
    ticket = engine.get(ticket_id)
    lc = engine.lifecycle_of(ticket)  # the ticket's own version, not the newest
    check_scope(grant, ticket, lc)
    set_etag(response, ticket)
    return TicketDetail(
        ticket=_out(engine, ticket),
        history=[HistoryOut.of(h) for h in engine.history(ticket_id)],
        timers=[TimerOut.of(t) for t in engine.timers(ticket_id)],
        triggers=engine.available_triggers(ticket_id, grant.as_actor()),
        state_triggers=sorted(lc.triggers_from(ticket.state)),
        evidence=[AttachmentOut.of(a, download_path(a) if a.stored else None)
                  for a in engine.attachments(ticket_id)],
    )


def download_path(a: Attachment) -> str:
    """Where an attachment's bytes are served: ``/tickets/{id}/evidence/{attachment id}``."""
    return f"{location(a.ticket_id)}/evidence/{a.id}"


@router.get("/tickets", response_model=TicketList, summary="List tickets")
def list_tickets(
    request: Request,
    engine: EngineDep,
    grant: GrantDep,
    lifecycle: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=200)] = None,
    due_within: Annotated[float | None, Query(
        ge=0, le=366 * 86400,
        description="Seconds: tickets with a pending deadline due within this time "
                    "(or already past due).")] = None,
    breached: Annotated[bool | None, Query(
        description="true: tickets with a recorded deadline breach; false: none.")] = None,
    overdue: Annotated[bool | None, Query(
        description="The overdue flag (resolution deadline breached).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> TicketList:
    """Tickets matching every filter given, most recently updated first, paginated.

    A department key sees its own department's tickets only; an outside organisation's key
    only the tickets it holds now.
    """
    if lifecycle is not None:
        _lifecycle(request, lifecycle)
    if grant.organisation is not None:
        return _held(request, engine, grant.organisation, limit, offset)
    if grant.department is not None:
        if department not in (None, grant.department):
            raise Problem(403, "wrong-department",
                          f"this key acts for department {grant.department!r} only",
                          department=grant.department)
        department = grant.department
    page = find_tickets(engine, lifecycle=lifecycle, state=state, level=level,
                        department=department, due_within=due_within, breached=breached,
                        overdue=overdue, limit=limit, offset=offset)
    return TicketList(items=[_out(engine, t) for t in page.items], total=page.total,
                      limit=page.limit, offset=page.offset)


def _held(request: Request, engine: Engine, organisation: str, limit: int,
          offset: int) -> TicketList:
    """The tickets an outside organisation holds now, across the served lifecycles."""
    items: list[Ticket] = []
    for name in request.app.state.lifecycles:
        h = engine.lifecycle(name).spec.handoff
        if h is None:
            continue
        page = find_tickets(engine, lifecycle=name, states=list(h.holding),
                            field_values={h.field: [organisation]}, limit=500)
        items.extend(page.items)
    return TicketList(items=[_out(engine, t) for t in items[offset:offset + limit]],
                      total=len(items), limit=limit, offset=offset)


@router.get("/lifecycles", response_model=list[str], summary="Lifecycles served")
def list_lifecycles(request: Request, grant: GrantDep) -> list[str]:
    """The names of the lifecycles this API serves; the first is the default."""
    return list(request.app.state.lifecycles)


@router.get("/lifecycles/{name}", response_model=LifecycleOut,
            summary="A lifecycle: states, transitions, fields, diagram")
def read_lifecycle(name: str, request: Request, engine: EngineDep,
                   grant: GrantDep) -> LifecycleOut:
    """The current version of a served lifecycle, with its Mermaid diagram."""
    from adapters.diagrams import mermaid

    lc = engine.lifecycle(_lifecycle(request, name))
    spec = lc.spec
    version = next(v.version for v in engine.versions()
                   if v.name == spec.name and v.digest == lc.digest)
    return LifecycleOut(
        name=spec.name, version=version, title=spec.title, initial=spec.initial,
        levels=list(lc.levels), report_roles=list(spec.report.roles),
        states=[StateOut(name=n, title=s.title, final=s.final,
                         triggers=sorted(lc.triggers_from(n)))
                for n, s in spec.states.items()],
        transitions=[TransitionOut(trigger=t.trigger, title=t.title, source=list(t.source),
                                   dest=t.dest, roles=list(t.roles),
                                   reason_required=t.reason_required)
                     for t in spec.transitions],
        fields={n: f.model_dump(include={"type", "required", "choices", "min", "max",
                                         "max_length", "title"})
                for n, f in spec.fields.items()},
        categories={n: c.model_dump() for n, c in spec.categories.items()},
        diagram=mermaid(lc.definition),
    )
