"""The console's pages and forms under ``/console`` (server-rendered, a little JavaScript).

========================================  ===================================================
``GET  /console``                         live board (open tickets, work orders)
``GET  /console/events``                  its server-sent events (see :mod:`.feed`)
``GET  /console/risk``                    overdue and at-risk lists, by department and level
``GET  /console/tickets/{id}``            a ticket: timeline, timers explained, work orders,
                                          state diagram, the actions of its state
``POST /console/tickets/{id}/actions``    one action, through the engine's commands
``GET  /console/reports``                 figures with SVG charts (``reports.csv``: CSV)
``GET/POST /console/login``, ``POST /console/logout``, ``GET /console/lang/{zh|en}``
========================================  ===================================================

Every page needs a key (``X-API-Key``) or a session (sign-in); actions go through
:class:`~engine.Departments`, :meth:`Engine.fire <engine.Engine.fire>` and
:meth:`Engine.escalate <engine.Engine.escalate>` as the key's actor and role, so the engine's
permissions apply, and a refusal is shown on the page in words.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from adapters.http.auth import ApiKey
from adapters.http.console import cards as C
from adapters.http.console.charts import CHARTS, chart_svg
from adapters.http.console.diagram import state_diagram_svg
from adapters.http.console.display import field_value, history_details
from adapters.http.console.evidence_form import evidence_items, files_of, needs_for
from adapters.http.console.explain import explain_timers, timer_title
from adapters.http.console.feed import latest_event_id, stream_cards
from adapters.http.console.i18n import LANGS, default_lang, duration, title, words
from adapters.http.console.refusals import refusal_words
from adapters.http.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    SESSION_SECONDS,
    SessionStore,
    Who,
    check_csrf,
    who,
)
from adapters.http.console.zones import PageZone, page_zone, report_note, zones_note
from adapters.http.departments import visible_orders
from adapters.http.evidence import MAX_FILES, store_files
from adapters.http.problems import Problem
from adapters.http.reports import report_for
from engine import (
    Departments,
    Engine,
    GridwhistleError,
    RoleNotAllowed,
    Ticket,
    TicketNotFound,
)
from engine.reports.report import report_zone

__all__ = ["refusal_words", "router", "too_large_page"]

HERE = Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)
_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True,
                   lstrip_blocks=True)


class _SignIn(Exception):
    """No key and no session: send the browser to the sign-in form."""


# -- helpers -------------------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _served(request: Request) -> tuple[str, ...]:
    served: tuple[str, ...] = request.app.state.lifecycles
    return served


def _who(request: Request) -> Who:
    requester = who(request)
    if requester is None:
        raise _SignIn()
    return requester


def _lang(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("gw_lang")
    if chosen in LANGS:
        return str(chosen)
    return default_lang(_engine(request).lifecycle(_served(request)[0]))


def _report_lifecycle(request: Request) -> Any:
    """The lifecycle the reports page is about (``?lifecycle=``, else the first served)."""
    served = _served(request)
    name = request.query_params.get("lifecycle") or served[0]
    return _engine(request).lifecycle(name if name in served else served[0])


def _zone(request: Request) -> Any:
    """The zone the reports page cuts its dates in: its lifecycle's."""
    return report_zone(_report_lifecycle(request))


def _return_path(request: Request) -> str:
    """Where the language switch goes back to: this page, if it can be fetched again.

    A GET page comes back with its query (``?lifecycle=``, ``?from=``; not ``?lang=``, which
    the switch replaces). A page answering a form (a refused action, a 413) comes back as
    the page the form was on: a ticket's page for its actions, else the board; its POST-only
    URL would answer 405.
    """
    path = request.url.path
    if request.method in ("GET", "HEAD"):
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        return path + ("?" + urlencode(query) if query else "")
    prefix, suffix = "/console/tickets/", "/actions"
    if path.startswith(prefix) and path.endswith(suffix) and \
            len(path) > len(prefix) + len(suffix):
        return path[:-len(suffix)]
    if path == "/console/login":
        return path
    return "/console"


def _page(request: Request, template: str, requester: Who | None, status: int = 200,
          zone: PageZone | None = None, note: str | None = None,
          **ctx: Any) -> HTMLResponse:
    lang = _lang(request)
    w = words(lang)
    shown = zone or _page_zone(request)
    now = _engine_now(_engine(request))

    def at(value: datetime | None, weekday: bool = True) -> str:
        return shown.at(value, lang, weekday=weekday)

    html = _env.get_template(template).render(
        request=request, lang=lang, w=w, who=requester,
        grant=requester.grant if requester else None,
        csrf=requester.session.csrf if requester and requester.session else "",
        path=request.url.path, return_path=_return_path(request),
        other_lang="en" if lang == "zh" else "zh", at=at,
        zone_note=note if note is not None else shown.note(now, lang),
        iso=lambda v: v.isoformat() if v else "", quote=quote,
        now_iso=now.isoformat(), **ctx)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS and request.cookies.get("gw_lang") != lang:
        # a language asked for in the URL stays for the pages after it (its forms' answers)
        _remember_lang(response, lang)
    return response


def _page_zone(request: Request) -> PageZone:
    """The zone of pages about no ticket in particular (sign-in, errors): the first one's."""
    return page_zone(_engine(request).lifecycle(_served(request)[0]))


def _served_zones(engine: Engine, served: tuple[str, ...]) -> list[PageZone]:
    """The zones of the board's lifecycles: each served one's, and its work orders'."""
    zones = []
    for name in served:
        lc = engine.lifecycle(name)
        zones.append(page_zone(lc))
        if lc.spec.routing is not None:
            zones.append(page_zone(engine.lifecycle(lc.spec.routing.work_orders), lc))
    return zones


def too_large_page(scope: Any, limit: int) -> HTMLResponse:
    """The 413 of a console form whose body is over the server's limit, as a console page.

    In the page's language and style: the limit, that nothing was done, and a link back to
    the page the form was on (a ticket's page for its actions, else the board). The
    middleware answers it before the body is read (``adapters.http.middleware.BodyLimit``);
    the API's routes keep their problem+json 413.
    """
    request = Request(scope)
    try:
        requester = who(request)
    except Problem:  # an unknown X-API-Key: the page without the menu
        requester = None
    lang = _lang(request)
    path = request.url.path
    prefix, suffix = "/console/tickets/", "/actions"
    ticket_id = path[len(prefix):-len(suffix)] if path.startswith(prefix) and \
        path.endswith(suffix) and len(path) > len(prefix) + len(suffix) else None
    mb = f"{limit / (1024 * 1024):.1f}".removesuffix(".0") + " MB" if limit >= 1024 * 1024 \
        else f"{limit / 1024:.0f} KB"
    if lang == "zh":
        message = (f"提交的内容太大：本服务器每次最多接收 {mb}（{limit:,} 字节），"
                   "本次提交未被处理，也未做任何修改。请返回上一页，换用较小的文件（或减少文件数量）"
                   "后再提交。")
        back_label = f"返回事件 {ticket_id}" if ticket_id else words(lang)["board"]
    else:
        message = (f"What you sent is too large: this server accepts at most {mb} "
                   f"({limit:,} bytes) at a time, so nothing was done. Go back, choose a "
                   "smaller file (or fewer files) and send again.")
        back_label = f"Back to ticket {ticket_id}" if ticket_id else words(lang)["board"]
    back = f"/console/tickets/{quote(ticket_id)}" if ticket_id else "/console"
    return _page(request, "error.html", requester, status=413, message=message,
                 back=back, back_label=back_label, heading=words(lang)["too_large"])


def _role_title(engine: Engine, served: tuple[str, ...], role: str, lang: str) -> str:
    for name in served:
        r = engine.lifecycle(name).spec.roles.get(role)
        if r is not None:
            return title(r.title, lang, role)
    return role


# -- sign in -------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    """The sign-in form (with a double-submit token)."""
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, login_token=token,
                     failed=request.query_params.get("failed") == "1",
                     next=_safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        path="/console", secure=request.url.scheme == "https", max_age=600)
    return response


def _safe_next(value: str | None) -> str:
    """Where a sign-in or the language switch may send the browser next: a console page.

    ``value`` must be a path of this console (``/console`` or below it, with an optional
    query): no scheme or host, no ``//``, no backslash, no control character, no ``.`` or
    ``..`` segment (``/console/../admin`` would leave the console). Anything else gives
    ``/console``: an open redirect would let a link dressed as ours send a signed-in user
    elsewhere.
    """
    if not value or "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/console"
    parts = urlsplit(value)
    path = parts.path
    if (parts.scheme or parts.netloc or parts.fragment or "//" in path
            or not (path == "/console" or path.startswith("/console/"))
            or any(seg in (".", "..") for seg in unquote(path).split("/"))):
        return "/console"
    return value


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange a key for a session cookie; back to the form when it is not valid."""
    form = await request.form()
    token = str(form.get("login_token") or "")
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    nxt = _safe_next(str(form.get("next") or ""))
    if not token or not secrets.compare_digest(token, cookie):
        raise Problem(403, "csrf", "the sign-in form expired; reload it and try again")
    grant = request.app.state.keys.find(str(form.get("key") or "").strip())
    if grant is None:
        return RedirectResponse(f"/console/login?failed=1&next={quote(nxt)}", 303)
    store: SessionStore = request.app.state.console_sessions
    sid, _ = store.create(grant)
    response = RedirectResponse(nxt, 303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https", max_age=SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked)."""
    requester = _who(request)
    form = await request.form()
    check_csrf(requester, str(form.get("csrf") or ""))
    store: SessionStore = request.app.state.console_sessions
    store.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/lang/{lang}")
def choose_language(lang: str, request: Request) -> Response:
    """Remember the language (cookie ``gw_lang``) and go back."""
    if lang not in LANGS:
        raise Problem(404, "unknown-language", f"languages: {', '.join(LANGS)}")
    response = RedirectResponse(_safe_next(request.query_params.get("next")), 303)
    _remember_lang(response, lang)
    return response


def _remember_lang(response: Response, lang: str) -> None:
    response.set_cookie("gw_lang", lang, samesite="lax", path="/console",
                        max_age=365 * 86400)


# -- board ---------------------------------------------------------------------------------


def _card_html(card: C.Card, lang: str, now: datetime) -> str:
    w = words(lang)
    return _env.get_template("card.html").render(card=card, w=w, lang=lang,
                                                  iso=lambda v: v.isoformat() if v else "",
                                                  left=_left(card, lang, now),
                                                  when=_when(card, lang))


def _when(card: C.Card, lang: str) -> tuple[datetime, str] | None:
    """The card's instant in its own lifecycle's zone, labelled: breached since, or due."""
    w = words(lang)
    if card.risk == "red" and card.over_since is not None:
        return card.over_since, f"{w['over_since']} {card.zone.at(card.over_since, lang)}"
    if card.due_at is not None:
        return card.due_at, f"{w['due']} {card.zone.at(card.due_at, lang)}"
    return None


def _left(card: C.Card, lang: str, now: datetime) -> str:
    w = words(lang)
    if card.risk == "red" and card.over_since is not None:
        return f"{w['over']} {duration(now - card.over_since, lang)}"
    if card.due_at is not None:
        return f"{w['left']} {duration(card.due_at - now, lang)}" if lang == "en" else \
            f"{w['left']}{duration(card.due_at - now, lang)}"
    return w["no_deadline"]


def _engine_now(engine: Engine) -> datetime:
    return engine.clock.now()


@router.get("")
def board(request: Request) -> HTMLResponse:
    """The live board: open tickets and work orders in the key's scope, most urgent first."""
    requester = _who(request)
    engine = _engine(request)
    lang = _lang(request)
    cursor = latest_event_id(engine)  # before reading: nothing between is missed
    tickets_lc, orders_lc = C.board_lifecycles(engine, _served(request))
    now = _engine_now(engine)
    tickets = C.cards(engine, tickets_lc, requester.grant, lang, now)
    orders = C.cards(engine, orders_lc, requester.grant, lang, now)
    return _page(request, "board.html", requester, cursor=cursor,
                 note=zones_note(_served_zones(engine, _served(request)), now, lang),
                 tickets=[(c, Markup(_card_html(c, lang, now))) for c in tickets],
                 orders=[(c, Markup(_card_html(c, lang, now))) for c in orders])


@router.get("/events")
async def events(request: Request) -> StreamingResponse:
    """Server-sent ``card`` events for the board (resumes after ``Last-Event-ID``)."""
    requester = _who(request)
    engine = _engine(request)
    lang = _lang(request)
    tickets_lc, orders_lc = C.board_lifecycles(engine, _served(request))
    start = request.headers.get("last-event-id") or request.query_params.get("after") or ""
    cursor = int(start) if start.isdigit() else await asyncio.to_thread(latest_event_id, engine)
    grant = requester.grant

    def render(ticket_id: str) -> dict[str, Any] | None:
        try:
            ticket = engine.get(ticket_id)
        except TicketNotFound:
            return {"id": ticket_id, "remove": True}
        if not C.in_scope(grant, ticket, engine):
            return {"id": ticket_id, "remove": True}
        now = _engine_now(engine)
        card = C.card_of(engine, ticket, lang, now)
        if card is None:
            return {"id": ticket_id, "remove": True}
        return {"id": ticket_id, "kind": card.kind, "html": _card_html(card, lang, now)}

    stream = stream_cards(engine, cursor, set(tickets_lc) | set(orders_lc), render,
                          request.is_disconnected)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# -- overdue and at risk ---------------------------------------------------------------------


@router.get("/risk")
def risk(request: Request) -> HTMLResponse:
    """Red (breached) and yellow (past an SLA warning) tickets and work orders."""
    requester = _who(request)
    engine = _engine(request)
    lang = _lang(request)
    tickets_lc, orders_lc = C.board_lifecycles(engine, _served(request))
    now = _engine_now(engine)
    every = C.cards(engine, tickets_lc + orders_lc, requester.grant, lang, now, limit=500)
    flagged = [c for c in every if c.risk != "ok"]
    dept = request.query_params.get("department")
    level = request.query_params.get("level")
    shown = [c for c in flagged if (not dept or c.department == dept)
             and (not level or c.level == level)]

    def count(key: Callable[[C.Card], tuple[str, str]]) -> list[tuple[str, str, int, int]]:
        out: dict[tuple[str, str], list[int]] = {}
        for c in flagged:
            n = out.setdefault(key(c), [0, 0])
            n[0 if c.risk == "red" else 1] += 1
        return [(k, t, r, y) for (k, t), (r, y) in sorted(out.items(), key=lambda i: -i[1][0])]

    return _page(request, "risk.html", requester,
                 note=zones_note(_served_zones(engine, _served(request)), now, lang),
                 cards=[(c, Markup(_card_html(c, lang, now))) for c in shown],
                 by_department=count(lambda c: (c.department or "", c.department_title or
                                                words(lang)["unassigned"])),
                 by_level=count(lambda c: (c.level, c.level_title)),
                 department=dept, level=level)


# -- a ticket ------------------------------------------------------------------------------


def _history_rows(engine: Engine, lc: Any, ticket: Ticket, served: tuple[str, ...],
                  lang: str, zone: PageZone, parent_lc: Any | None = None
                  ) -> list[dict[str, Any]]:
    spec = lc.spec
    parent_spec = parent_lc.spec if parent_lc is not None else None
    trig = {t.trigger: title(t.title, lang, t.trigger) for t in spec.transitions}
    w = words(lang)
    by_seq: dict[int, list[Any]] = {}
    for a in engine.attachments(ticket.id):
        by_seq.setdefault(a.seq, []).append(a)
    rows = []
    for h in engine.history(ticket.id):
        if h.kind in ("transition", "migration"):
            what = trig.get(h.trigger, h.trigger)
        elif h.kind == "report":
            what = w["report"]
        else:
            what = f"{w.get(h.kind, h.kind)}: {timer_title(lc, h.trigger, lang)[1]}"
        states = spec.states
        rows.append({
            "seq": h.seq, "at": h.at, "kind": h.kind, "what": what,
            "from_state": title(states[h.from_state].title, lang, h.from_state or "")
            if h.from_state in states else h.from_state,
            "to_state": title(states[h.to_state].title, lang, h.to_state)
            if h.to_state in states else h.to_state,
            "level_change": (h.from_level, h.to_level)
            if h.from_level not in (None, h.to_level) else None,
            "actor": h.actor, "role": _role_title(engine, (ticket.lifecycle, *served),
                                                  h.role, lang),
            "reason": h.reason,
            "evidence": history_details(h, spec, lang, zone, by_seq.get(h.seq, []),
                                        parent_spec),
        })
    return rows


def _actions(engine: Engine, lc: Any, ticket: Ticket, grant: ApiKey, lang: str,
             parent_lc: Any, parent: Ticket | None = None) -> list[dict[str, Any]]:
    """The forms of the ticket's state; ``allowed`` says whether the key's role may.

    ``needs``: the evidence the key's role must send with a trigger (a file input each).
    """
    spec = lc.spec
    out: list[dict[str, Any]] = []
    if ticket.state in lc.final_states:
        return out
    routing = spec.routing
    # what the key may fire now: role, a handler-only level, the guards (issue 11)
    available = set(engine.available_triggers(ticket.id, grant.as_actor()))
    for trigger in lc.triggers_from(ticket.state):
        ts = lc.transitions_for(ticket.state, trigger)
        roles = sorted({r for t in ts for r in t.roles})
        name = title(ts[0].title, lang, trigger)
        kind = f"fire:{trigger}"
        if routing is not None and trigger == "dispatch":
            kind, name = "dispatch_routing", words(lang)["dispatch_routing"]
        elif trigger == spec.escalation_trigger:
            kind = "escalate"
        elif routing is not None and trigger == "merge":
            kind = "merge"
        needs = needs_for(engine, lc, ticket, trigger, grant.role, lang,
                          (parent, parent_lc) if parent is not None and parent_lc is not None
                          else None) if kind.startswith("fire:") else []
        out.append({"kind": kind, "trigger": trigger, "title": name, "roles": roles,
                    "allowed": trigger in available, "needs": needs,
                    "reason_required": any(t.reason_required for t in ts) or kind == "merge"})
    if routing is not None:
        dispatchers = sorted({r for t in spec.transitions if t.trigger == "dispatch"
                              for r in t.roles})
        for kind in ("designate", "meeting", "add_order"):
            out.append({"kind": kind, "trigger": kind, "title": words(lang)[kind],
                        "roles": dispatchers, "allowed": grant.role in dispatchers,
                        "reason_required": kind == "designate"})
    if parent_lc is not None and ticket.state in ("issued", "accepted"):
        dispatchers = sorted({r for t in parent_lc.spec.transitions if t.trigger == "dispatch"
                              for r in t.roles})
        out.append({"kind": "approve_bounce", "trigger": "approve_bounce",
                    "title": words(lang)["approve_bounce"], "roles": dispatchers,
                    "allowed": grant.role in dispatchers and grant.department is None,
                    "reason_required": True})
    return out


def _ticket_page(request: Request, requester: Who, ticket_id: str, *, status: int = 200,
                 refusal: str | None = None, refusal_detail: str | None = None,
                 done: str | None = None) -> HTMLResponse:
    engine = _engine(request)
    lang = _lang(request)
    served = _served(request)
    grant = requester.grant
    try:
        ticket = engine.get(ticket_id)
    except TicketNotFound:
        return _page(request, "error.html", requester, status=404,
                     message=f"{words(lang)['not_found']}: {ticket_id}")
    if not C.in_scope(grant, ticket, engine):
        return _page(request, "error.html", requester, status=403,
                     message=_scope_words(grant, lang))
    lc = engine.lifecycle_of(ticket)  # the ticket's own version, not the newest (issue 11)
    spec = lc.spec
    parent = None
    parent_lc = None
    parent_id = ticket.fields.get("parent")
    if parent_id is not None and "role" in ticket.fields:
        try:
            parent = engine.get(str(parent_id))
            parent_lc = engine.lifecycle_of(parent)
        except TicketNotFound:
            parent = None
    zone = page_zone(lc, parent_lc)
    fields = []
    for name, value in ticket.fields.items():
        if value in (None, ""):
            continue
        fld = spec.fields.get(name)
        shown = field_value(name, value, spec, lang, zone,
                            parent_lc.spec if parent_lc is not None else None)
        fields.append((title(fld.title if fld else None, lang, name), shown))
    orders = []
    if spec.routing is not None:
        wo_lc = engine.lifecycle(spec.routing.work_orders)
        for o in visible_orders(grant, Departments(engine).work_orders(ticket.id)):
            d = spec.departments.get(o.department)
            lv = next((x for x in wo_lc.spec.levels if x.name == o.level), None)
            orders.append({
                "id": o.id, "department": title(d.title if d else None, lang, o.department),
                "role": words(lang).get(o.role, o.role),
                "state": title(wo_lc.spec.states[o.state].title, lang, o.state)
                if o.state in wo_lc.spec.states else o.state, "final": o.state in
                wo_lc.final_states,
                "level": title(lv.title if lv else None, lang, o.level),
                "overdue": o.overdue, "issued_at": o.issued_at})
    explained = explain_timers(lc, ticket, engine.history(ticket.id), engine.timers(ticket.id),
                               engine.sla_clocks(ticket.id), lang, zone=zone.zone)
    level_spec = next((x for x in spec.levels if x.name == ticket.level), None)
    departments = [(n, title(d.title, lang, n)) for n, d in spec.departments.items()]
    card = C.card_of(engine, ticket, lang, _engine_now(engine))
    return _page(
        request, "ticket.html", requester, status=status, zone=zone, ticket=ticket, spec=spec,
        lifecycle_title=title(spec.title, lang, spec.name),
        state_title=title(spec.states[ticket.state].title, lang, ticket.state),
        level_title=title(level_spec.title if level_spec else None, lang, ticket.level),
        final=ticket.state in lc.final_states, fields=fields, orders=orders,
        explained=explained,
        history=_history_rows(engine, lc, ticket, served, lang, zone, parent_lc),
        diagram=Markup(state_diagram_svg(lc, ticket.state, lang)),
        actions=_actions(engine, lc, ticket, grant, lang, parent_lc, parent),
        departments=departments,
        parent=parent, refusal=refusal, refusal_detail=refusal_detail, done=done, card=card)


def _scope_words(grant: ApiKey, lang: str) -> str:
    if grant.organisation is not None:
        if lang == "zh":
            return f"此密钥只能查看和处理外部单位（{grant.organisation}）当前承办的事件。"
        return (f"This key sees and acts on the tickets organisation {grant.organisation!r} "
                "holds now only.")
    if lang == "zh":
        return f"此密钥只能查看和处理本部门（{grant.department}）的事件和工单。"
    return f"This key sees and acts on department {grant.department!r}'s tickets only."


@router.get("/tickets/{ticket_id:ticket}")
def ticket_page(ticket_id: str, request: Request) -> HTMLResponse:
    """A ticket: its history, timers explained, work orders, diagram and actions."""
    return _ticket_page(request, _who(request), ticket_id,
                        done=request.query_params.get("done"))


@router.post("/tickets/{ticket_id:ticket}/actions")
async def act(ticket_id: str, request: Request) -> Response:
    """Run one action of the ticket page; the engine's refusal is shown on the page."""
    requester = _who(request)
    form = await request.form(max_files=MAX_FILES, max_fields=4 * MAX_FILES + 10)
    check_csrf(requester, str(form.get("csrf") or ""))
    engine = _engine(request)
    action = str(form.get("action") or "")
    sent = [(tag, (f.filename, f.content_type, await f.read())) for tag, f in files_of(form)]
    reason = str(form.get("reason") or "").strip() or None
    actor = requester.grant.as_actor()
    depts = Departments(engine)
    text = {k: str(form.get(k) or "").strip() for k in ("department", "lead", "original_id",
                                                         "role")}
    present = [str(v) for v in form.getlist("present")]
    co = [str(v) for v in form.getlist("co")]

    def run() -> None:
        ticket = engine.get(ticket_id)
        if not C.in_scope(requester.grant, ticket, engine):
            raise Problem(403, "wrong-department", _scope_words(requester.grant, "en"))
        if action == "dispatch_routing":
            depts.dispatch(ticket_id, actor=actor, reason=reason)
        elif action == "designate":
            depts.designate_lead(ticket_id, text["department"], actor=actor,
                                 reason=reason or "")
        elif action == "meeting":
            depts.joint_meeting(ticket_id, actor=actor, present=present or [text["lead"]],
                                lead=text["lead"], co=co, reason=reason)
        elif action == "merge":
            depts.merge_duplicate(ticket_id, text["original_id"], actor=actor,
                                  reason=reason or "")
        elif action == "add_order":
            depts.add_work_order(ticket_id, text["department"], actor=actor,
                                 role=text["role"] or "co", reason=reason)
        elif action == "approve_bounce":
            if requester.grant.department is not None:
                raise RoleNotAllowed(ticket_id, ticket.state, "approve_bounce",
                                     requester.grant.role, ["centre"])
            depts.approve_bounce(ticket_id, actor=actor, reason=reason or "")
        elif action == "escalate":
            engine.escalate(ticket_id, actor=actor, reason=reason or "")
        elif action.startswith("fire:"):
            trigger = action.removeprefix("fire:")
            # the path of POST /uploads: the same checks and limits; a refused file or
            # trigger removes the files stored for it (and a bounce carries none)
            with engine.uploads(actor=actor, lifecycle=ticket.lifecycle) as uploads:
                evidence = None
                if sent:
                    blobs = store_files(uploads, [f for _, f in sent])
                    evidence = evidence_items([t for t, _ in sent], [b.sha256 for b in blobs])
                if trigger == "bounce":
                    depts.bounce(ticket_id, actor=actor, reason=reason or "")
                else:
                    engine.fire(ticket_id, trigger, actor=actor, reason=reason,
                                evidence=evidence)
        else:
            raise Problem(422, "unknown-action", f"unknown action {action!r}")

    try:
        await asyncio.to_thread(run)
    except (GridwhistleError, Problem) as exc:
        lang = _lang(request)
        status = exc.status if isinstance(exc, Problem) else _status(exc)
        try:
            lc = engine.lifecycle_of(engine.get(ticket_id))
        except TicketNotFound:  # no such ticket: the ticket page's own 404, in HTML
            return await asyncio.to_thread(_ticket_page, request, requester, ticket_id)
        return await asyncio.to_thread(
            _ticket_page, request, requester, ticket_id, status=status,
            refusal=refusal_words(exc, engine, _served(request), lc, lang,
                                  page_zone(lc, _parent_lc(engine, lc, ticket_id))),
            refusal_detail=exc.detail if isinstance(exc, Problem) else str(exc))
    return RedirectResponse(f"/console/tickets/{quote(ticket_id)}?done={quote(action)}", 303)


def _parent_lc(engine: Engine, lc: Any, ticket_id: str) -> Any | None:
    """A work order's ticket's lifecycle (None for a ticket that is not a work order)."""
    ticket = engine.get(ticket_id)
    parent_id = ticket.fields.get("parent")
    if parent_id is None or "role" not in ticket.fields:
        return None
    try:
        return engine.lifecycle_of(engine.get(str(parent_id)))
    except TicketNotFound:
        return None


def _status(exc: GridwhistleError) -> int:
    from adapters.http.problems import status_of

    return status_of(exc)


# -- reports -------------------------------------------------------------------------------


def _bound(value: str | None, zone: Any, *, end: bool = False) -> str | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value  # an instant: report_for checks it
    from datetime import timedelta

    if end:
        day += timedelta(days=1)  # "until 31 May" includes 31 May
    return datetime.combine(day, time(0), zone).isoformat()


def _report(request: Request, requester: Who) -> Any:
    q = request.query_params
    zone = _zone(request)
    return report_for(request, _engine(request), requester.grant.department,
                      organisation=requester.grant.organisation,
                      lifecycle=q.get("lifecycle"), by=q.get("by") or "department",
                      period=q.get("period") or "month",
                      since=_bound(q.get("from"), zone), until=_bound(q.get("until"), zone,
                                                                      end=True),
                      lang=_lang(request))


@router.get("/reports")
def reports_page(request: Request) -> HTMLResponse:
    """Figures by department, level or period, with SVG charts."""
    requester = _who(request)
    rep = _report(request, requester)
    w = words(rep.lang)
    charts = [(name, Markup(svg)) for name in CHARTS
              if (svg := chart_svg(rep, name, w[name])) is not None]
    q = request.query_params
    zone = page_zone(_report_lifecycle(request))
    return _page(request, "reports.html", requester, report=rep, charts=charts, zone=zone,
                 note=report_note(zone, _engine_now(_engine(request)), rep.lang),
                 by=rep.by, period=q.get("period") or "month", since=q.get("from") or "",
                 until=q.get("until") or "", query=str(request.url.query))


@router.get("/reports.csv")
def reports_csv(request: Request) -> Response:
    """The reports page's figures as CSV."""
    rep = _report(request, _who(request))
    return Response(rep.as_csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="gridwhistle-'
                             f'{rep.lifecycle}-{rep.by}.csv"'})
