"""The runtime: the Engine that applies commands and fires deadlines."""

from engine.errors import TopLevelReached
from engine.runtime.engine import Engine
from engine.runtime.impact import TicketImpact
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
from engine.runtime.summary import Summary

__all__ = [
    "SYSTEM",
    "Actor",
    "DefinitionVersion",
    "Engine",
    "FiredTimer",
    "HistoryEntry",
    "Summary",
    "Ticket",
    "TicketImpact",
    "TicketPage",
    "Timer",
    "TopLevelReached",
    "Violation",
    "find_tickets",
]
