"""The runtime: commands run one way, on a staged working copy, written once.

* :mod:`~engine.runtime.kernel`: the runtime's parts composed (what the Engine wraps).
* :mod:`~engine.runtime.commands`: load → decide → check → plan → follow-ons.
* :mod:`~engine.runtime.participant`: the participant protocol and its contexts.
* :mod:`~engine.runtime.unit_of_work` and :mod:`~engine.runtime.working`: transactions,
  batches, the staged layers and the flush.
* :mod:`~engine.runtime.dispatcher`: claiming and firing due timers, failures isolated.
* :mod:`~engine.runtime.catalog`: deployed lifecycle versions.
"""

from engine.errors import TopLevelReached
from engine.runtime.changes import Change
from engine.runtime.invariants import Violation
from engine.runtime.listing import TicketPage, find_tickets
from engine.runtime.model import (
    SYSTEM,
    Actor,
    DefinitionVersion,
    FiredTimer,
    HistoryEntry,
    Ticket,
    Timer,
)
from engine.runtime.participant import (
    CheckContext,
    FireContext,
    Participant,
    PlanContext,
    Unit,
)
from engine.runtime.working import PendingTimer, TicketRecord

__all__ = [
    "SYSTEM",
    "Actor",
    "Change",
    "CheckContext",
    "DefinitionVersion",
    "FireContext",
    "FiredTimer",
    "HistoryEntry",
    "Participant",
    "PendingTimer",
    "PlanContext",
    "Ticket",
    "TicketPage",
    "TicketRecord",
    "Timer",
    "TopLevelReached",
    "Unit",
    "Violation",
    "find_tickets",
]
