"""Figures over the stored tickets: one module for replays, the CLI, the API and the console.

* :mod:`~engine.reports.units`: the facts, one unit per ticket or per department's share.
* :mod:`~engine.reports.figures`: the figure set (closure rate, on-time rate, times to
  dispatch, site and resolution, escalations by level, bounce-backs, ...), open to more.
* :mod:`~engine.reports.report`: figures grouped by department, level or period.
* :mod:`~engine.reports.summary`: a lifecycle's summary (``Engine.summary``).
* :mod:`~engine.reports.departments`: per-department work-order counts
  (``Departments.figures``).
* :mod:`~engine.reports.callbacks`: call-back and satisfaction figures (issue 12),
  registered with ``register_facts`` / ``register_source``.
* :mod:`~engine.reports.oversight`: extensions, suspensions and supervision notices
  (issue 11), per department and overall, registered the same way.
"""

from engine.reports import callbacks as _callbacks  # noqa: F401  (registers its figures)
from engine.reports import oversight as _oversight  # noqa: F401  (registers its figures)
from engine.reports.departments import DEPARTMENT_FIGURES, department_figures
from engine.reports.figures import Figure, figures_for, percentile, register_source
from engine.reports.report import BY, PERIODS, Group, Report, build_report
from engine.reports.summary import Summary, summarize
from engine.reports.units import Milestones, Unit, register_facts

__all__ = [
    "BY",
    "DEPARTMENT_FIGURES",
    "PERIODS",
    "Figure",
    "Group",
    "Milestones",
    "Report",
    "Summary",
    "Unit",
    "build_report",
    "department_figures",
    "figures_for",
    "percentile",
    "register_facts",
    "register_source",
    "summarize",
]
