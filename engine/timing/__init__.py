"""Time beyond per-state deadlines.

Timers of SLA clocks, ladder budgets and lags; the time rules (validity, duty hours, lags);
the typed refusals they raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.timing.errors import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours

if TYPE_CHECKING:
    from engine.runtime.changes import Participant

__all__ = [
    "LifecycleNotValid",
    "MinimumLagNotReached",
    "OutsideWorkingHours",
    "default_participants",
]


def default_participants() -> list[Participant]:
    """The participants every Engine registers first: time rules, SLA clocks, the ladder."""
    from engine.ladder.ladder import Ladder
    from engine.sla.clocks import SlaClocks
    from engine.timing.rules import TimeRules

    return [TimeRules(), SlaClocks(), Ladder()]
