"""The routing table, applied: which departments a ticket goes to, and its resolution rule."""

from __future__ import annotations

from dataclasses import dataclass

from engine.definition.schema import LifecycleSpec

__all__ = ["Route", "route_for"]


@dataclass(frozen=True)
class Route:
    """Where a ticket goes.

    Attributes:
        lead: the lead department (主办); co: co-handling departments (协办), in file order.
        fallback: the fallback department (兜底).
        resolution: ``all`` | ``lead`` | ``quorum``; quorum: how many for ``quorum``.
        rule: index of the routing row that matched, or None (no row: the fallback leads).
    """

    lead: str
    co: tuple[str, ...]
    fallback: str
    resolution: str
    quorum: int | None
    rule: int | None


def route_for(spec: LifecycleSpec, category: str | None, level: str) -> Route:
    """The first routing row matching ``category`` and ``level`` (file order).

    A row without ``level`` matches any level. No row matching: the fallback department
    leads alone. ``spec.routing`` must be set.
    """
    routing = spec.routing
    assert routing is not None  # callers check and raise NoRouting
    for i, rule in enumerate(routing.rules):
        if rule.category == category and rule.level in (None, level):
            return Route(rule.lead, tuple(rule.co), rule.fallback or routing.fallback,
                         rule.resolution or routing.resolution,
                         rule.quorum or routing.quorum, i)
    return Route(routing.fallback, (), routing.fallback, "lead", None, None)
