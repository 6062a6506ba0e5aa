"""Problems found on patrol, linked to their patrol round (issue 12)."""

from engine.patrols.participant import LINK_KIND, PatrolLinks

__all__ = ["LINK_KIND", "PatrolLinks"]
