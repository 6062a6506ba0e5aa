"""The figure set: each figure a name, zh/en titles, a kind and a function of units.

A figure is computed from the :class:`~engine.reports.units.Unit` of one group (a
department, a level, a period, or all). The set is built per lifecycle by *figure sources*
(:func:`register_source`): the bundled source gives

=========================== ======= ===========================================================
name                        kind    value
=========================== ======= ===========================================================
``received``                count   units (tickets, or a department's work orders)
``closed``                  count   closed (办结): a final state other than ``merged``; a done
                                    work order
``closure_rate``            rate    closed / (received − merged − voided) (办结率)
``voided``                  count   voided tickets (作废), counted apart
``on_time``                 count   closed without breaching the resolution deadline
``on_time_rate``            rate    on_time / closed (按期办结率)
``overdue``                 count   the resolution deadline was breached
``dispatch_median_s`` …     seconds report → first dispatch: median and 90th percentile
``on_site_median_s`` …      seconds report → first arrival on site
``resolved_median_s`` …     seconds report → resolution
``escalations``             count   escalation hops
``escalations_<level>``     count   hops that reached ``<level>`` (one figure per level above
                                    the first)
``bounced``                 count   units bounced back at least once
``bounces``                 count   bounce-backs
``merged``                  count   duplicates merged into another ticket
=========================== ======= ===========================================================

Later figures (extensions, satisfaction) plug in as a source that returns more
:class:`Figure` objects, reading facts a :func:`~engine.reports.units.register_facts`
loader put in ``Unit.extra``. Percentiles: linear interpolation between closest ranks
(``statistics.quantiles(..., method="inclusive")``), the value itself for one sample.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engine.reports.units import Unit

__all__ = ["Figure", "FigureSource", "figures_for", "percentile", "register_source"]

Kind = Literal["count", "rate", "seconds"]
Value = float | int | None


@dataclass(frozen=True)
class Figure:
    """One figure of a report.

    Attributes:
        name: ASCII identifier (a CSV column, a JSON key).
        title: display titles by language (``{"zh": "办结率", "en": "Closure rate"}``).
        kind: ``count`` (an int), ``rate`` (0..1, None when the denominator is 0) or
            ``seconds`` (None without samples).
        compute: the value over one group's units.
        chart: the chart group the console draws it in (figures of one chart share a kind).
    """

    name: str
    title: Mapping[str, str]
    kind: Kind
    compute: Callable[[Sequence[Unit]], Value] = field(compare=False)
    chart: str = ""

    def label(self, lang: str) -> str:
        """The title in ``lang`` (else English, else the name)."""
        return self.title.get(lang) or self.title.get("en") or self.name


FigureSource = Callable[[Any], Sequence[Figure]]
"""``(compiled lifecycle) -> figures``: a plug-in adding figures to every report."""

_SOURCES: dict[str, FigureSource] = {}


def register_source(name: str, source: FigureSource) -> None:
    """Add (or replace) a figure source; its figures follow the bundled ones in reports."""
    _SOURCES[name] = source


def percentile(values: Sequence[float], p: int) -> float | None:
    """The ``p``-th percentile (1..99) of ``values``; None when empty.

    Source: Python's ``statistics.quantiles`` with ``method="inclusive"``.
    """
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _seconds(units: Sequence[Unit], step: str) -> list[float]:
    out = []
    for u in units:
        at: datetime | None = getattr(u, step)
        if at is not None:
            out.append(max((at - u.reported_at).total_seconds(), 0.0))
    return out


def _closed(units: Sequence[Unit]) -> int:
    return sum(u.closed for u in units)


def _on_time(units: Sequence[Unit]) -> int:
    return sum(u.closed and not u.overdue for u in units)


def _median(step: str) -> Callable[[Sequence[Unit]], Value]:
    def compute(units: Sequence[Unit]) -> Value:
        values = _seconds(units, step)
        return statistics.median(values) if values else None
    return compute


def _p90(step: str) -> Callable[[Sequence[Unit]], Value]:
    def compute(units: Sequence[Unit]) -> Value:
        return percentile(_seconds(units, step), 90)
    return compute


def _hops_to(level: str) -> Callable[[Sequence[Unit]], Value]:
    def compute(units: Sequence[Unit]) -> Value:
        return sum(u.escalations.count(level) for u in units)
    return compute


_TIMES = {
    "dispatched_at": ("dispatch", {"zh": "派遣用时", "en": "Time to dispatch"}),
    "on_site_at": ("on_site", {"zh": "到场用时", "en": "Time to site"}),
    "resolved_at": ("resolved", {"zh": "处置用时", "en": "Time to resolve"}),
}


def _bundled(lc: Any) -> list[Figure]:
    out = [
        Figure("received", {"zh": "受理数", "en": "Received"}, "count", len, "volume"),
        Figure("closed", {"zh": "办结数", "en": "Closed"}, "count", _closed, "volume"),
        Figure("closure_rate", {"zh": "办结率", "en": "Closure rate"}, "rate",
               lambda us: _ratio(_closed(us), len(us) - sum(u.merged or u.voided for u in us)),
               "rates"),
        Figure("on_time", {"zh": "按期办结数", "en": "Closed on time"}, "count", _on_time,
               "volume"),
        Figure("on_time_rate", {"zh": "按期办结率", "en": "On-time rate"}, "rate",
               lambda us: _ratio(_on_time(us), _closed(us)), "rates"),
        Figure("overdue", {"zh": "超期数", "en": "Overdue"}, "count",
               lambda us: sum(u.overdue for u in us), "volume"),
    ]
    for step, (name, title) in _TIMES.items():
        out.append(Figure(f"{name}_median_s", {"zh": f"{title['zh']}中位数",
                                               "en": f"{title['en']}, median"},
                          "seconds", _median(step), "times"))
        out.append(Figure(f"{name}_p90_s", {"zh": f"{title['zh']}90分位",
                                            "en": f"{title['en']}, 90th percentile"},
                          "seconds", _p90(step), "times"))
    out.append(Figure("escalations", {"zh": "升级次数", "en": "Escalations"}, "count",
                      lambda us: sum(len(u.escalations) for u in us), "escalations"))
    for level in list(lc.levels)[1:]:
        spec = next((lv for lv in lc.spec.levels if lv.name == level), None)
        title = dict(spec.title) if spec is not None and spec.title else {}
        out.append(Figure(
            f"escalations_{level}",
            {"zh": f"升级至{title.get('zh', level)}", "en": f"To {title.get('en', level)}"},
            "count", _hops_to(level), "escalations"))
    out += [
        Figure("bounced", {"zh": "被退回数", "en": "Bounced back"}, "count",
               lambda us: sum(u.bounces > 0 for u in us), "bounces"),
        Figure("bounces", {"zh": "退回次数", "en": "Bounce-backs"}, "count",
               lambda us: sum(u.bounces for u in us), "bounces"),
        Figure("merged", {"zh": "合并重复数", "en": "Merged duplicates"}, "count",
               lambda us: sum(u.merged for u in us), "volume"),
        Figure("voided", {"zh": "作废数", "en": "Voided"}, "count",
               lambda us: sum(u.voided for u in us), "volume"),
    ]
    return out


def figures_for(lc: Any) -> list[Figure]:
    """The figure set of compiled lifecycle ``lc``: the bundled figures, then the sources'."""
    out = _bundled(lc)
    for source in _SOURCES.values():
        out.extend(source(lc))
    return out
