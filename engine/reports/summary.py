"""The summary of one lifecycle's tickets: what a replay or ``gridwhistle check`` shows.

Computed with SQL over the tables (history is the source of truth), not kept in memory.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from engine.store.tables import definitions, history, sla_clocks, tickets

__all__ = ["Summary", "sla_outcomes", "summarize"]


@dataclass(frozen=True)
class Summary:
    """Figures over the tickets of one lifecycle.

    Attributes:
        tickets: tickets stored.
        transitions: transitions applied (history rows of kind ``transition``; reports and
            breaches are not transitions).
        closed: tickets in a final state other than a void one (作废) or a merged duplicate;
            ``closure_rate`` = closed / (tickets − voided − merged) (0 when none): the rule of
            the reports' ``closed`` and ``closure_rate`` (engine/reports/figures.py), so that
            ``gridwhistle report --json`` and ``GET /reports`` give one figure.
        voided: tickets in a void state (``void: true``), counted apart.
        merged: duplicates merged into another ticket (a final state, not a closure).
        overdue: tickets whose resolution deadline was breached.
        escalations: escalation hops by the level reached (``{"street": 12, ...}``).
        breaches: deadline breaches by deadline name.
        by_state: tickets by current state; ``by_level``: by current level.
        median_close_seconds: median seconds from report to reaching a final state, or None.
        verdict_pairs: ``(source value, engine overdue)`` counts for the verdict field asked.
        slas: per SLA clock name, ``{"met": n, "breached": n, "open": n}``.
        budget_breaches: level budgets that ran out, by level (``{"street": 3, ...}``).
    """

    tickets: int
    transitions: int
    closed: int
    closure_rate: float
    overdue: int
    escalations: dict[str, int]
    breaches: dict[str, int]
    by_state: dict[str, int]
    by_level: dict[str, int]
    median_close_seconds: float | None
    verdict_pairs: dict[tuple[str, bool], int] = field(default_factory=dict)
    slas: dict[str, dict[str, int]] = field(default_factory=dict)
    budget_breaches: dict[str, int] = field(default_factory=dict)
    voided: int = 0
    merged: int = 0


def summarize(
    conn: Connection,
    lifecycle: str,
    *,
    final_states: frozenset[str],
    escalation_trigger: str,
    levels: tuple[str, ...],
    verdict_field: str | None = None,
    void_states: frozenset[str] = frozenset(),
    merged_states: frozenset[str] = frozenset(),
) -> Summary:
    """Compute a :class:`Summary` for every version of lifecycle ``lifecycle``.

    ``void_states``: the lifecycle's void states (作废); ``merged_states``: its final states
    for a merged duplicate. Neither is closed, and both are out of the closure rate's
    denominator.
    """
    ids = select(definitions.c.id).where(definitions.c.name == lifecycle).scalar_subquery()
    mine = tickets.c.definition_id.in_(ids)
    in_mine = history.c.ticket_id.in_(select(tickets.c.id).where(mine))
    by_state: dict[str, int] = dict(conn.execute(
        select(tickets.c.state, func.count()).where(mine).group_by(tickets.c.state)).all())
    by_level: dict[str, int] = dict(conn.execute(
        select(tickets.c.level, func.count()).where(mine).group_by(tickets.c.level)).all())
    total = sum(by_state.values())
    voided = sum(n for s, n in by_state.items() if s in void_states)
    merged = sum(n for s, n in by_state.items() if s in merged_states)
    closed = sum(n for s, n in by_state.items()
                 if s in final_states and s not in void_states and s not in merged_states)
    overdue = conn.execute(
        select(func.count()).where(mine, tickets.c.overdue.is_(True))).scalar() or 0
    transitions = conn.execute(
        select(func.count()).where(in_mine, history.c.kind == "transition")).scalar() or 0
    esc_rows = conn.execute(
        select(history.c.to_level, func.count())
        .where(in_mine, history.c.kind == "transition", history.c.trigger == escalation_trigger,
               history.c.from_level != history.c.to_level)
        .group_by(history.c.to_level)
    ).all()
    found: dict[str, int] = dict(esc_rows)
    escalations = {lvl: int(found.get(lvl, 0)) for lvl in levels[1:]}
    breaches: dict[str, int] = dict(conn.execute(
        select(history.c.trigger, func.count())
        .where(in_mine, history.c.kind == "breach").group_by(history.c.trigger)).all())
    closes = conn.execute(
        select(tickets.c.created_at, func.min(history.c.at))
        .join(history, history.c.ticket_id == tickets.c.id)
        .where(mine, history.c.to_state.in_(sorted(final_states)),
               history.c.kind == "transition")
        .group_by(tickets.c.id, tickets.c.created_at)
    ).all()
    durations = [(_aware(c) - _aware(o)).total_seconds() for o, c in closes]
    pairs: Counter[tuple[str, bool]] = Counter()
    if verdict_field is not None:
        for fields, is_overdue in conn.execute(select(tickets.c.fields, tickets.c.overdue)
                                               .where(mine)):
            value = (fields or {}).get(verdict_field)
            if value is not None:
                pairs[(str(value), bool(is_overdue))] += 1
    return Summary(
        tickets=total, transitions=int(transitions), closed=closed,
        closure_rate=(closed / (total - voided - merged)) if total > voided + merged else 0.0,
        overdue=int(overdue),
        escalations=escalations, breaches={k: int(v) for k, v in breaches.items()},
        by_state={k: int(v) for k, v in by_state.items()},
        by_level={k: int(v) for k, v in by_level.items()},
        median_close_seconds=statistics.median(durations) if durations else None,
        verdict_pairs=dict(pairs),
        slas=sla_outcomes(conn, lifecycle),
        budget_breaches={lvl: int(breaches.get(f"{lvl}_budget", 0)) for lvl in levels},
        voided=voided, merged=merged,
    )


def _aware(value: Any) -> Any:
    """``func.min`` loses the column type on some backends: put UTC back if needed."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sla_outcomes(conn: Connection, lifecycle: str) -> dict[str, dict[str, int]]:
    """Outcome counts per SLA clock name over every ticket of ``lifecycle``.

    ``{"met": n, "breached": n, "open": n}``; open = not stopped yet and not breached.
    """
    ids = select(definitions.c.id).where(definitions.c.name == lifecycle).scalar_subquery()
    mine = select(tickets.c.id).where(tickets.c.definition_id.in_(ids))
    out: dict[str, dict[str, int]] = {}
    for name, outcome, count in conn.execute(
        select(sla_clocks.c.name, sla_clocks.c.outcome, func.count())
        .where(sla_clocks.c.ticket_id.in_(mine))
        .group_by(sla_clocks.c.name, sla_clocks.c.outcome)
    ).all():
        entry = out.setdefault(name, {"met": 0, "breached": 0, "open": 0})
        entry[outcome or "open"] += int(count)
    return dict(sorted(out.items()))
