"""Moved to :mod:`engine.reports.departments` (the one module of figures); kept for old imports.

``engine/departments/service.py`` (``Departments.figures``) imports ``department_figures``
from here.
"""

from engine.reports.departments import DEPARTMENT_FIGURES, department_figures

__all__ = ["DEPARTMENT_FIGURES", "department_figures"]
