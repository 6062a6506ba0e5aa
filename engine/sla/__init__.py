"""SLA clocks: several per ticket, started, paused, resumed and stopped by states or triggers.

See :mod:`engine.sla.clocks` for the rules and ``docs/yaml-reference.md`` (*SLA clocks*).
"""

from engine.sla.clocks import SlaClock, SlaClocks, clocks_of, sla_outcomes

__all__ = ["SlaClock", "SlaClocks", "clocks_of", "sla_outcomes"]
