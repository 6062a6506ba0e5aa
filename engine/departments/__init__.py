"""Many departments on one ticket: the centre's commands and the departments' figures.

* :mod:`~engine.departments.service`: the centre's commands (:class:`Departments`).
* :mod:`~engine.departments.figures`: per-department figures for reports.

The rules that run with every work-order change (bounce duties, fallback, the resolution
rule, reopen) are the work-order participant's: :mod:`engine.workorders`.
"""

from engine.departments.figures import department_figures
from engine.departments.service import Departments
from engine.workorders.model import PartSLA, TicketSLA, WorkOrder
from engine.workorders.routing import Route

__all__ = ["Departments", "PartSLA", "Route", "TicketSLA", "WorkOrder", "department_figures"]
