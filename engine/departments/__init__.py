"""Many departments on one ticket: the centre's commands.

* :mod:`~engine.departments.service`: the centre's commands (:class:`Departments`).

The rules that run with every work-order change (bounce duties, fallback, the resolution
rule, reopen) are the work-order participant's: :mod:`engine.workorders`. Per-department
figures are in :mod:`engine.reports` with the other figures.
"""

from engine.departments.service import Departments
from engine.reports.departments import department_figures
from engine.workorders.model import PartSLA, TicketSLA, WorkOrder
from engine.workorders.routing import Route

__all__ = ["Departments", "PartSLA", "Route", "TicketSLA", "WorkOrder", "department_figures"]
