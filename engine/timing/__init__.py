"""Time rules beyond per-state deadlines: validity periods, duty hours, time lags.

The :class:`~engine.timing.rules.TimeRules` participant and the typed refusals it raises.
"""

from engine.timing.errors import LifecycleNotValid, MinimumLagNotReached, OutsideWorkingHours
from engine.timing.rules import TimeRules

__all__ = ["LifecycleNotValid", "MinimumLagNotReached", "OutsideWorkingHours", "TimeRules"]
