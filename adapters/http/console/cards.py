"""Board cards: one per open ticket or work order, with its risk (ok, yellow, red) and time.

Risk of an open ticket, from its timers and SLA clocks (public engine reads only):

* **red** (breached, 超期): its overdue flag is set, an SLA clock of it is breached and not
  stopped, a deadline, level budget or lag timer of it has fired (a breach stays on the card
  until the ticket closes, also after the escalation it caused), or a pending one is already
  past due; ``over_since`` is the earliest such due instant;
* **yellow** (at risk): not red, and an SLA clock's warning threshold has passed (its
  warning timer fired, or is past due) while the clock runs;
* **ok** otherwise.

``due_at`` is the nearest pending deadline (deadlines, SLA breaches, level budgets, lags) and
``warn_at`` the nearest pending warning: the page's script counts down to them and turns the
card yellow or red on the real clock, before the server's own breach event arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.http.auth import ApiKey, check_scope
from adapters.http.console.i18n import title
from adapters.http.console.zones import PageZone, page_zone
from adapters.http.problems import Problem
from engine import Engine, GridwhistleError, Ticket, Timer, find_tickets

__all__ = ["BOARD_LIMIT", "Card", "board_lifecycles", "card_of", "cards", "in_scope"]

BOARD_LIMIT = 100
"""At most this many cards per column (most urgent first)."""


@dataclass(frozen=True)
class Card:
    """What a board card shows.

    Attributes:
        id, kind (``ticket`` or ``work_order``), lifecycle: whose card.
        heading: the category's title (a work order: its department's title).
        state, state_title, level, level_title: where it is.
        department, department_title: the handling department (or None).
        role: a work order's ``lead`` or ``co``; parent_id: its ticket.
        risk: ``ok``, ``yellow`` or ``red``.
        due_at, warn_at, over_since: aware UTC instants or None (see the module docstring).
        updated_at: last change.
        zone: the zone its times are shown in (its lifecycle's; a work order: its ticket's).
    """

    id: str
    kind: str
    lifecycle: str
    heading: str
    state: str
    state_title: str
    level: str
    level_title: str
    department: str | None
    department_title: str
    role: str | None
    parent_id: str | None
    risk: str
    due_at: datetime | None
    warn_at: datetime | None
    over_since: datetime | None
    updated_at: datetime
    zone: PageZone

    def urgency(self) -> tuple[int, float]:
        """Sort key: red first (longest over first), then yellow, then nearest due."""
        rank = {"red": 0, "yellow": 1, "ok": 2}[self.risk]
        at = self.over_since if self.risk == "red" else self.due_at
        return rank, at.timestamp() if at else float("inf")


def board_lifecycles(engine: Engine, served: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``(ticket lifecycles, work-order lifecycles)`` of the served lifecycles."""
    orders = []
    for name in served:
        routing = engine.lifecycle(name).spec.routing
        if routing is not None and routing.work_orders not in orders:
            orders.append(routing.work_orders)
    return list(served), orders


def in_scope(grant: ApiKey, ticket: Ticket, engine: Engine) -> bool:
    """Whether ``grant`` may see ``ticket``, by the API's rule (``auth.check_scope``).

    A department key sees tickets and work orders of its department only; an outside
    organisation's key only the tickets that organisation holds now.
    """
    try:
        check_scope(grant, ticket, engine.lifecycle_of(ticket))
    except Problem:
        return False
    return True


def _latest(timers: list[Timer]) -> dict[str, Timer]:
    out: dict[str, Timer] = {}
    for t in sorted(timers, key=lambda t: t.id):
        out[t.name] = t
    return out


def card_of(engine: Engine, ticket: Ticket, lang: str, now: datetime) -> Card | None:
    """The card of ``ticket`` at ``now``, or None when it is in a final state.

    A ticket whose fields carry ``parent`` and ``role`` is drawn as a work order, titled by
    its department (from the parent's lifecycle).
    """
    lc = engine.lifecycle(ticket.lifecycle)
    if ticket.state in lc.final_states:
        return None
    spec = lc.spec
    timers = engine.timers(ticket.id)
    clocks = {c.name: c for c in engine.sla_clocks(ticket.id)}
    latest = _latest(timers)
    over: list[datetime] = []
    if ticket.overdue:
        resolution = latest.get(spec.resolution_deadline or "")
        over.append(resolution.due_at if resolution else ticket.updated_at)
    warned = False
    due: list[datetime] = []
    warn: list[datetime] = []
    for name, t in latest.items():
        parts = name.split(":")
        if parts[0] == "sla":
            clock = clocks.get(parts[1])
            running = clock is not None and clock.status == "running"
            if len(parts) == 4:
                if t.status == "fired" and running:
                    warned = True
                elif t.status == "pending":
                    warn.append(t.due_at)
                continue
        if t.status == "pending":
            due.append(t.due_at)
    for t in timers:
        if t.status == "fired" and t.name.split(":")[0] != "sla":
            over.append(t.due_at)
    for c in clocks.values():
        if c.outcome == "breached" and c.status != "stopped" and c.breached_at is not None:
            over.append(c.breached_at)
    over += [d for d in due if d < now]
    upcoming = [d for d in due if d >= now]
    if any(w <= now for w in warn):
        warned = True
    risk = "red" if over else ("yellow" if warned else "ok")
    fields = ticket.fields
    category = str(fields.get("category") or "")
    cat = spec.categories.get(category)
    dept = fields.get("department")
    dept_title = ""
    parent_id = fields.get("parent")
    is_order = parent_id is not None and "role" in fields
    parent_lc = _parent_lc(engine, str(parent_id)) if parent_id is not None and (
        is_order or not spec.departments) else None
    if dept:
        parent_spec: Any = spec
        if parent_id is not None and not spec.departments:
            parent_spec = parent_lc.spec if parent_lc is not None else None
        d = parent_spec.departments.get(str(dept)) if parent_spec is not None else None
        dept_title = title(d.title if d else None, lang, str(dept))
    level_spec = next((x for x in spec.levels if x.name == ticket.level), None)
    heading = (dept_title or str(dept)) if is_order else \
        title(cat.title if cat else None, lang, category or ticket.id)
    return Card(
        id=ticket.id, kind="work_order" if is_order else "ticket", lifecycle=ticket.lifecycle,
        heading=heading, state=ticket.state,
        state_title=title(spec.states[ticket.state].title, lang, ticket.state),
        level=ticket.level,
        level_title=title(level_spec.title if level_spec else None, lang, ticket.level),
        department=str(dept) if dept else None, department_title=dept_title,
        role=str(fields.get("role")) if is_order else None,
        parent_id=str(parent_id) if is_order else None, risk=risk,
        due_at=min(upcoming) if upcoming else None,
        warn_at=min((w for w in warn if w > now), default=None),
        over_since=min(over) if over else None, updated_at=ticket.updated_at,
        zone=page_zone(lc, parent_lc if is_order else None))


def _parent_lc(engine: Engine, parent_id: str) -> Any:
    try:
        return engine.lifecycle(engine.get(parent_id).lifecycle)
    except GridwhistleError:  # a title or a zone is not worth failing a card for
        return None


def cards(engine: Engine, lifecycles: list[str], grant: ApiKey, lang: str, now: datetime,
          *, limit: int = BOARD_LIMIT) -> list[Card]:
    """Cards of the open tickets of ``lifecycles`` in ``grant``'s scope, most urgent first."""
    out: list[Card] = []
    for name in lifecycles:
        lc = engine.lifecycle(name)
        open_states = [s for s in lc.spec.states if s not in lc.final_states]
        held: dict[str, list[str]] | None = None
        if grant.organisation is not None:  # an outside organisation: what it holds now
            h = lc.spec.handoff
            if h is None:
                continue
            open_states = [s for s in open_states if s in h.holding]
            held = {h.field: [grant.organisation]}
        page = find_tickets(engine, lifecycle=name, states=open_states,
                            department=grant.department, field_values=held,
                            limit=min(limit, 500))
        for t in page.items:
            card = card_of(engine, t, lang, now)
            if card is not None:
                out.append(card)
    out.sort(key=Card.urgency)
    return out[:limit]
