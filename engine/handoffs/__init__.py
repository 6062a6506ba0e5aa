"""Hand-off beyond the district (转办 / 退回) to outside organisations (issue 12)."""

from engine.handoffs.participant import TIMER, Handoffs, held_by

__all__ = ["TIMER", "Handoffs", "held_by"]
