"""SLA clocks: several per ticket, started, paused, resumed and stopped by states or triggers.

See :mod:`engine.sla.clocks` for the rules and ``docs/yaml-reference.md`` (*SLA clocks*).
"""

from engine.sla.clocks import ClockState, SlaClock, SlaClocks, clocks_of

__all__ = ["ClockState", "SlaClock", "SlaClocks", "clocks_of"]
