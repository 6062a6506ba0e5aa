"""Call-back and satisfaction figures (issue 12), plugged into every report.

Facts (:func:`~engine.reports.units.register_facts`, from ``gw_callbacks``: the last
call-back outcome of each ticket): ``callback_outcome`` (``confirmed``, ``not_fixed``,
``unanswered``), ``callback_channel`` (``link``, ``call``, ``system``),
``satisfaction`` (the last 1–5 rating given, if any).

Figures (:func:`~engine.reports.figures.register_source`, for lifecycles with a
``callback`` section):

======================= ======= =========================================================
name                    kind    value
======================= ======= =========================================================
``callbacks``           count   tickets with a call-back outcome
``callback_answered``   count   answered (by the resident's link or a recorded call)
``callback_by_link``    count   answered through the resident's link
``callback_unanswered`` count   closed by the system at the call-back deadline
``callback_not_fixed``  count   the resident said it is not fixed (back to work)
``callback_rate``       rate    answered / callbacks (回访率)
``satisfaction_mean``   rate    mean rating ÷ 5 (a rate, so 4.2 shows as 84%)
``satisfied_rate``      rate    ratings of 4 or 5 / ratings given (满意率)
======================= ======= =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, select

from engine.reports.figures import Figure, register_source
from engine.reports.units import Unit, register_facts
from engine.store.evidence_tables import callbacks

__all__ = ["callback_facts", "callback_figures"]


def callback_facts(conn: Connection, ids: Select[Any]) -> Mapping[str, Mapping[str, Any]]:
    """The last call-back outcome, channel and rating of each ticket of ``ids``."""
    out: dict[str, dict[str, Any]] = {}
    rows = conn.execute(select(callbacks.c.ticket_id, callbacks.c.outcome, callbacks.c.channel,
                               callbacks.c.rating)
                        .where(callbacks.c.ticket_id.in_(ids)).order_by(callbacks.c.id))
    for tid, outcome, channel, rating in rows:
        facts = out.setdefault(tid, {})
        facts["callback_outcome"] = outcome
        facts["callback_channel"] = channel
        if rating is not None:
            facts["satisfaction"] = int(rating)
    return out


def _count(key: str, *values: str) -> Any:
    def compute(units: Sequence[Unit]) -> int:
        return sum(u.extra.get(key) in values for u in units)
    return compute


def _ratings(units: Sequence[Unit]) -> list[int]:
    return [int(u.extra["satisfaction"]) for u in units if "satisfaction" in u.extra]


def _answered_rate(units: Sequence[Unit]) -> float | None:
    total = sum("callback_outcome" in u.extra for u in units)
    answered = sum(u.extra.get("callback_channel") in ("link", "call") for u in units)
    return answered / total if total else None


def _mean(units: Sequence[Unit]) -> float | None:
    ratings = _ratings(units)
    return sum(ratings) / len(ratings) / 5 if ratings else None


def _satisfied(units: Sequence[Unit]) -> float | None:
    ratings = _ratings(units)
    return sum(r >= 4 for r in ratings) / len(ratings) if ratings else None


def callback_figures(lc: Any) -> list[Figure]:
    """The call-back figures of a lifecycle with a ``callback`` section (else none)."""
    if lc.spec.callback is None:
        return []
    return [
        Figure("callbacks", {"zh": "回访数", "en": "Call-backs"}, "count",
               _count("callback_outcome", "confirmed", "not_fixed", "unanswered"), "callbacks"),
        Figure("callback_answered", {"zh": "回访应答数", "en": "Call-backs answered"}, "count",
               _count("callback_channel", "link", "call"), "callbacks"),
        Figure("callback_by_link", {"zh": "居民链接应答数", "en": "Answered by link"}, "count",
               _count("callback_channel", "link"), "callbacks"),
        Figure("callback_unanswered", {"zh": "回访超时数", "en": "Call-backs unanswered"},
               "count", _count("callback_outcome", "unanswered"), "callbacks"),
        Figure("callback_not_fixed", {"zh": "居民称未解决数", "en": "Not fixed (resident)"},
               "count", _count("callback_outcome", "not_fixed"), "callbacks"),
        Figure("callback_rate", {"zh": "回访率", "en": "Call-back answer rate"}, "rate",
               _answered_rate, "satisfaction"),
        Figure("satisfaction_mean", {"zh": "平均满意度", "en": "Mean satisfaction (of 5)"},
               "rate", _mean, "satisfaction"),
        Figure("satisfied_rate", {"zh": "满意率", "en": "Satisfied (4-5)"}, "rate",
               _satisfied, "satisfaction"),
    ]


register_facts("callback", callback_facts)
register_source("callback", callback_figures)
