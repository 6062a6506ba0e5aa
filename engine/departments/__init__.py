"""Many departments on one ticket: routing, lead and co-handling work orders, the duties.

* :mod:`~engine.departments.routing`: the routing table, applied.
* :mod:`~engine.departments.orders`: work orders (child tickets) on the database.
* :mod:`~engine.departments.participant`: the in-transaction rules (bounce duties, fallback,
  the parent's resolution rule, reopen).
* :mod:`~engine.departments.service`: the centre's commands (:class:`Departments`).
* :mod:`~engine.departments.figures`: per-department figures (now in :mod:`engine.reports`).
"""

from engine.departments.figures import department_figures
from engine.departments.model import PartSLA, TicketSLA, WorkOrder
from engine.departments.routing import Route
from engine.departments.service import Departments

__all__ = ["Departments", "PartSLA", "Route", "TicketSLA", "WorkOrder", "department_figures"]
