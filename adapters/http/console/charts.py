"""The reports page's charts: SVG drawn on the server by pygal, with no script or web font.

pygal's own tooltip script is loaded from the web by default; it is turned off (``js=[]``)
and the inline configuration script pygal still writes is removed, so a chart is plain SVG
that a strict Content-Security-Policy allows. Fonts are the system's (``sans-serif``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from pygal.style import Style

from engine import Report

__all__ = ["CHARTS", "chart_svg"]

CHARTS = ("rates", "times", "escalations", "bounces", "volume", "satisfaction", "callbacks",
          "oversight", "oversight_time")
"""Chart groups, in page order (a figure's ``chart`` names one)."""

_STYLE = Style(
    background="transparent", plot_background="transparent", foreground="#1f2933",
    foreground_strong="#1f2933", foreground_subtle="#7b8794",
    colors=("#2f6fdf", "#e0892b", "#3c9d5d", "#c2413b", "#7a5cc2", "#3b9ab2", "#9aa5b1"),
    font_family="sans-serif", label_font_size=15, major_label_font_size=15,
    legend_font_size=15, title_font_size=18, value_font_size=14, tooltip_font_size=14,
)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def chart_svg(report: Report, chart: str, heading: str, *, limit: int = 24) -> str | None:
    """One chart of ``report`` as SVG text: a bar per group for each figure of ``chart``.

    Rates are drawn as percentages and seconds as hours. With more than ``limit`` groups
    only the last ``limit`` are drawn (periods: the most recent). None when the chart has no
    figures.
    """
    figures = [f for f in report.figures if f.chart == chart]
    if not figures:
        return None
    groups: Sequence[object] = report.groups[-limit:] if report.groups else [report.total]
    labels = [g.title for g in groups]  # type: ignore[attr-defined]
    bar = pygal.Bar(style=_STYLE, js=[], disable_xml_declaration=True, width=600,
                    height=420, title=heading, x_label_rotation=30 if len(labels) > 6 else 0,
                    legend_at_bottom=True, legend_at_bottom_columns=2, print_values=False,
                    show_y_guides=True, truncate_legend=-1, truncate_label=-1,
                    explicit_size=False)
    bar.x_labels = labels
    for f in figures:
        values: list[float | None] = []
        for g in groups:
            v = g.values[f.name]  # type: ignore[attr-defined]
            if v is None:
                values.append(None)
            elif f.kind == "rate":
                values.append(round(float(v) * 100, 1))
            elif f.kind == "seconds":
                values.append(round(float(v) / 3600, 1))
            else:
                values.append(float(v))
        bar.add(f.label(report.lang), values)
    if figures[0].kind == "rate":
        bar.range = (0, 100)
        bar.value_formatter = lambda v: f"{v:g}%"
    svg: str = bar.render(is_unicode=True)
    return _SCRIPT.sub("", svg)
