"""Lifecycle versions over time: moving running tickets to a new version, and what it changes.

* :mod:`engine.versions.migration`: :meth:`Engine.migrate` (``gridwhistle migrate``).
* :mod:`engine.versions.impact`: :meth:`Engine.impact` (``gridwhistle impact``), a dry run.
"""

from engine.versions.impact import TicketImpact

__all__ = ["TicketImpact"]
