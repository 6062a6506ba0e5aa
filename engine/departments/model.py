"""What the department services return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["LIVE_EXCLUDED", "WorkOrder", "rule_met"]

LIVE_EXCLUDED = frozenset({"bounced", "returned", "withdrawn"})
"""Work-order states that no longer count toward a ticket's resolution rule."""


@dataclass(frozen=True)
class WorkOrder:
    """One department's work order on a ticket (itself a child ticket).

    Attributes:
        id: the work order's ticket id (use it with ``Engine.fire``, ``Engine.history``).
        parent_id: the ticket it belongs to.
        department: the department's name; role: ``lead`` or ``co``.
        state: the work order's state (``issued``, ``accepted``, ..., ``done``).
        level: its whistle level (it escalates on its own).
        overdue: its own resolution deadline was breached.
        fallback: issued by the fallback duty.
        issued_at: when it was issued (aware UTC).
    """

    id: str
    parent_id: str
    department: str
    role: str
    state: str
    level: str
    overdue: bool
    fallback: bool
    issued_at: datetime


def rule_met(rule: str, quorum: int | None, orders: list[tuple[str, str]]) -> bool:
    """Whether a ticket's resolution rule is met by its work orders.

    Args:
        rule: ``all`` (every live work order done), ``lead`` (the live lead's done) or
            ``quorum`` (at least ``quorum`` done).
        quorum: how many work orders must be done for ``quorum``.
        orders: ``(role, state)`` of each work order; bounced, returned and withdrawn ones
            do not count.
    """
    live = [(role, state) for role, state in orders if state not in LIVE_EXCLUDED]
    if not live:
        return False
    if rule == "lead":
        return any(role == "lead" and state == "done" for role, state in live)
    if rule == "quorum":
        return sum(state == "done" for _, state in live) >= (quorum or 1)
    return all(state == "done" for _, state in live)
