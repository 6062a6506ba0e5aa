"""The whistle ladder: each level's handler role, time budget and calendar."""

from engine.ladder.ladder import Ladder, LadderPosition, ladder_position

__all__ = ["Ladder", "LadderPosition", "ladder_position"]
