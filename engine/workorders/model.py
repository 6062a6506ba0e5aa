"""What the department services return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["LIVE_EXCLUDED", "PartSLA", "TicketSLA", "WorkOrder", "derived_due", "rule_met"]

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


@dataclass(frozen=True)
class PartSLA:
    """One work order's share of the ticket's SLA.

    Attributes:
        work_order, department, role: which part.
        due_at: its resolution deadline's due instant (aware UTC), or None without one.
        done_at: when it was done, or None.
        on_time: done without breaching its deadline (None while not done).
    """

    work_order: str
    department: str
    role: str
    due_at: datetime | None
    done_at: datetime | None
    on_time: bool | None


@dataclass(frozen=True)
class TicketSLA:
    """The ticket-level SLA derived from its parts by the resolution rule.

    Attributes:
        rule, quorum: the ticket's resolution rule.
        parts: the live work orders' :class:`PartSLA`.
        due_at: the derived due instant: ``all`` the latest part's, ``lead`` the lead's,
            ``quorum`` the quorum-th earliest; None when a counted part has no deadline.
        met_at: when the rule was met (the counted parts done), or None.
        on_time: met no later than ``due_at`` (None while not met or without a due).
    """

    rule: str
    quorum: int | None
    parts: tuple[PartSLA, ...]
    due_at: datetime | None
    met_at: datetime | None
    on_time: bool | None


def derived_due(rule: str, quorum: int | None, parts: list[PartSLA]) -> tuple[
        datetime | None, datetime | None]:
    """``(due_at, met_at)`` of a ticket from its parts, by its resolution rule."""
    if not parts:
        return None, None
    if rule == "lead":
        counted = [p for p in parts if p.role == "lead"][-1:]
        need = 1
    elif rule == "quorum":
        counted, need = parts, min(quorum or 1, len(parts))
    else:
        counted, need = parts, len(parts)
    if not counted:
        return None, None
    dues = sorted(p.due_at for p in counted if p.due_at is not None)
    due = dues[need - 1] if len(dues) == len(counted) and len(dues) >= need else None
    dones = sorted(p.done_at for p in counted if p.done_at is not None)
    met = dones[need - 1] if len(dones) >= need else None
    return due, met
