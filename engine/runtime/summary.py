"""Moved to :mod:`engine.reports.summary` (the one module of figures); kept for old imports.

``engine/runtime/engine.py`` imports ``Summary`` and ``summarize`` from here.
"""

from engine.reports.summary import Summary, summarize

__all__ = ["Summary", "summarize"]
