"""Oversight figures (issue 11): extensions, suspensions, supervision notices.

Facts (:func:`~engine.reports.units.register_facts`, from ``gw_time_requests`` and
``gw_supervision_notices``): for each ticket, the counts of its own requests and notices and
those of its work orders, in all (``oversight``) and by department (``oversight_by_dept``:
the department that asked, was suspended, or was sent the notice).

A ticket's unit counts all of them; a department's unit (a work order, in
``by="department"`` reports) counts that department's only.

Figures (:func:`~engine.reports.figures.register_source`, for lifecycles with an
``oversight`` section):

============================ ======= ======================================================
name                         kind    value
============================ ======= ======================================================
``extensions_requested``     count   extension requests made (延期申请)
``extensions_approved``      count   approved by the centre
``extensions_refused``       count   refused by the centre
``extended_s``               seconds time added by approved extensions (new due − the due
                                     it had), in all
``suspensions``              count   suspensions (挂起)
``suspended_s``              seconds time suspended, in all (ended suspensions; one in
                                     force counts up to now is not counted)
``supervision_notices``      count   supervision notices sent (督办)
============================ ======= ======================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, or_, select

from engine.reports.figures import Figure, register_source
from engine.reports.units import Unit, register_facts
from engine.store.oversight_tables import supervision_notices, time_requests

__all__ = ["OVERSIGHT_FACTS", "oversight_facts", "oversight_figures"]

OVERSIGHT_FACTS = ("extensions_requested", "extensions_approved", "extensions_refused",
                   "extended_s", "suspensions", "suspended_s", "supervision_notices")
"""The counts kept per ticket (and per department of a ticket)."""


def _empty() -> dict[str, float]:
    return dict.fromkeys(OVERSIGHT_FACTS, 0)


def _add(out: dict[str, dict[str, Any]], key: str, dept: str | None, fact: str,
         value: float) -> None:
    facts = out.setdefault(key, {"oversight": _empty(), "oversight_by_dept": {}})
    facts["oversight"][fact] += value
    by = facts["oversight_by_dept"].setdefault(dept or "", _empty())
    by[fact] += value


def oversight_facts(conn: Connection, ids: Select[Any]) -> Mapping[str, Mapping[str, Any]]:
    """The oversight counts of each ticket of ``ids`` (its own and its work orders')."""
    out: dict[str, dict[str, Any]] = {}
    c = time_requests.c
    rows = conn.execute(select(c.ticket_id, c.parent_id, c.kind, c.status, c.department,
                               c.extended_seconds, c.suspended_seconds)
                        .where(or_(c.ticket_id.in_(ids), c.parent_id.in_(ids))))
    wanted: set[str] | None = None
    for tid, parent, kind, status, dept, extended, suspended in rows:
        keys = {tid, parent}
        if wanted is None:
            wanted = set(conn.execute(ids).scalars())
        for key in keys & wanted:
            if kind == "extension":
                _add(out, key, dept, "extensions_requested", 1)
                if status == "approved":
                    _add(out, key, dept, "extensions_approved", 1)
                    _add(out, key, dept, "extended_s", float(extended or 0))
                elif status == "refused":
                    _add(out, key, dept, "extensions_refused", 1)
            elif kind == "suspension":
                _add(out, key, dept, "suspensions", 1)
                _add(out, key, dept, "suspended_s", float(suspended or 0))
    n = supervision_notices.c
    for tid, parent, dept in conn.execute(
            select(n.ticket_id, n.parent_id, n.department)
            .where(or_(n.ticket_id.in_(ids), n.parent_id.in_(ids)))):
        if wanted is None:
            wanted = set(conn.execute(ids).scalars())
        for key in {tid, parent} & wanted:
            _add(out, key, dept, "supervision_notices", 1)
    return out


def _of(u: Unit, fact: str) -> float:
    if u.work_order is not None:  # a department's share: that department's requests
        by = u.extra.get("oversight_by_dept") or {}
        return float((by.get(u.department or "") or {}).get(fact, 0))
    return float((u.extra.get("oversight") or {}).get(fact, 0))


def _count(fact: str) -> Any:
    def compute(units: Sequence[Unit]) -> int:
        return int(sum(_of(u, fact) for u in units))
    return compute


def _total(fact: str) -> Any:
    def compute(units: Sequence[Unit]) -> float:
        return sum(_of(u, fact) for u in units)
    return compute


def oversight_figures(lc: Any) -> list[Figure]:
    """The oversight figures of a lifecycle with an ``oversight`` section (else none)."""
    if lc.spec.oversight is None:
        return []
    return [
        Figure("extensions_requested", {"zh": "延期申请数", "en": "Extensions requested"},
               "count", _count("extensions_requested"), "oversight"),
        Figure("extensions_approved", {"zh": "延期批准数", "en": "Extensions approved"},
               "count", _count("extensions_approved"), "oversight"),
        Figure("extensions_refused", {"zh": "延期驳回数", "en": "Extensions refused"},
               "count", _count("extensions_refused"), "oversight"),
        Figure("extended_s", {"zh": "延期总时长", "en": "Time added by extensions"},
               "seconds", _total("extended_s"), "oversight_time"),
        Figure("suspensions", {"zh": "挂起数", "en": "Suspensions"}, "count",
               _count("suspensions"), "oversight"),
        Figure("suspended_s", {"zh": "挂起总时长", "en": "Time suspended"}, "seconds",
               _total("suspended_s"), "oversight_time"),
        Figure("supervision_notices", {"zh": "督办数", "en": "Supervision notices"}, "count",
               _count("supervision_notices"), "oversight"),
    ]


register_facts("oversight", oversight_facts)
register_source("oversight", oversight_figures)
