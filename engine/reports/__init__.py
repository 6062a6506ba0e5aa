"""Figures over the stored tickets: one module for replays, the CLI, the API and the console.

* :mod:`~engine.reports.units`: the facts, one unit per ticket or per department's share.
* :mod:`~engine.reports.figures`: the figure set (closure rate, on-time rate, times to
  dispatch, site and resolution, escalations by level, bounce-backs, ...), open to more.
* :mod:`~engine.reports.report`: figures grouped by department, level or period.
* :mod:`~engine.reports.summary`: a lifecycle's summary (``Engine.summary``).
* :mod:`~engine.reports.departments`: per-department work-order counts
  (``Departments.figures``).
"""

from engine.reports.departments import DEPARTMENT_FIGURES, department_figures
from engine.reports.summary import Summary, summarize

__all__ = ["DEPARTMENT_FIGURES", "Summary", "department_figures", "summarize"]
