"""Per-department figures: work orders received, bounced, resolved, on time, escalated."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Connection

from engine.reports.units import Milestones, department_units

__all__ = ["DEPARTMENT_FIGURES", "department_figures"]

DEPARTMENT_FIGURES = ("received", "bounced", "resolved", "on_time", "escalated")


def department_figures(
    conn: Connection, lifecycle: str, *, final_states: frozenset[str],
    escalation_trigger: str, excluded_states: frozenset[str] = frozenset({"merged"}),
) -> dict[str, dict[str, int]]:
    """Figures by department over the tickets of lifecycle ``lifecycle``.

    A ticket with work orders counts through them: each work order is one *received* by its
    department; *bounced* if it was bounced back; *resolved* if done; *on time* if done
    without breaching its own resolution deadline; *escalated* if it escalated at least once.
    A ticket without work orders counts as one work order of the department in its
    ``department`` field (e.g. a replayed city export): resolved when it reached a final
    state (other than ``excluded_states``), on time when resolved and not overdue, escalated
    when the ticket escalated; never bounced. The units are
    :func:`engine.reports.units.department_units`; the console's and ``gridwhistle report``'s
    figures by department are computed from the same units.

    Returns:
        ``{department: {"received": n, "bounced": n, "resolved": n, "on_time": n,
        "escalated": n}}``, departments sorted by name.
    """
    closed = final_states - excluded_states
    milestones = Milestones(
        dispatch=frozenset({"dispatch"}), on_site=frozenset({"arrive"}),
        resolved_states=closed, closed_states=closed,
        excluded_states=excluded_states & final_states,
        escalation_triggers=frozenset({escalation_trigger, "escalate"}))
    out: dict[str, Counter[str]] = {}
    for u in department_units(conn, lifecycle, milestones):
        assert u.department is not None  # department units always name one
        counter = out.setdefault(u.department, Counter())
        counter["received"] += 1
        counter["bounced"] += u.bounces > 0
        counter["resolved"] += u.closed
        counter["on_time"] += u.closed and not u.overdue
        counter["escalated"] += bool(u.escalations)
    return {dept: {name: out[dept][name] for name in DEPARTMENT_FIGURES}
            for dept in sorted(out)}
