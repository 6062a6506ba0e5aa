"""Domain events: what happened to a ticket, as announced to listeners and webhooks.

One event per history row. Types::

    ticket.reported       a ticket was created (history kind ``report``)
    ticket.transitioned   a transition that kept the whistle level (dispatch, arrive, ...)
    ticket.escalated      a transition that moved the ticket one level up
    deadline.breached     a deadline passed (history kind ``breach``)
    deadline.warning      a deadline is about to pass (history kind ``warning``, when the
                          lifecycle's SLA clocks write such rows)

Any other history kind ``k`` becomes ``ticket.k``: issue 11's oversight rows are
``ticket.extension_requested``, ``ticket.extension_approved``, ``ticket.extension_refused``,
``ticket.suspended``, ``ticket.resumed`` and ``ticket.supervision_notice``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.runtime.changes import Change

__all__ = ["EVENT_TYPES", "DomainEvent", "event_payload", "event_type"]

EVENT_TYPES = (
    "ticket.reported",
    "ticket.transitioned",
    "ticket.escalated",
    "deadline.breached",
    "deadline.warning",
)
"""The event types Gridwhistle emits (see the module docstring)."""

_BY_KIND = {"report": "ticket.reported", "breach": "deadline.breached",
            "warning": "deadline.warning"}


def event_type(change: Change) -> str:
    """The event type of one history row (see :data:`EVENT_TYPES`)."""
    if change.kind == "transition":
        if change.from_level is not None and change.from_level != change.to_level:
            return "ticket.escalated"
        return "ticket.transitioned"
    return _BY_KIND.get(change.kind, f"ticket.{change.kind}")


@dataclass(frozen=True)
class DomainEvent:
    """One domain event, as stored in ``gw_outbox`` and sent to listeners and webhooks.

    Delivery is at least once: a receiver de-duplicates on ``event_id``.

    Attributes:
        event_id: a UUID (text), unique per event.
        type: one of :data:`EVENT_TYPES` (or ``ticket.<kind>``).
        ticket_id, lifecycle: whose event.
        seq: the ticket's history row this event announces (``(ticket_id, seq)`` is unique too).
        occurred_at: when it happened (aware UTC, the engine clock's time).
        payload: the JSON body sent to webhooks (``event_id``, ``type``, ``occurred_at`` as
            ISO 8601, the history row's ``kind``, ``trigger``, ``from_state``, ``to_state``,
            ``from_level``, ``to_level``, ``actor``, ``role``, ``reason``, ``data`` and the
            ticket's ``fields`` after the change).
    """

    event_id: str
    type: str
    ticket_id: str
    lifecycle: str
    seq: int
    occurred_at: datetime
    payload: dict[str, Any]


def event_payload(event_id: str, change: Change) -> tuple[str, dict[str, Any]]:
    """The event type and webhook body (:attr:`DomainEvent.payload`) announcing ``change``.

    What :func:`event_from_change` builds its event of; the outbox stages its row from these
    two directly (one event per history row: the :class:`DomainEvent`, a frozen dataclass,
    cost more to build than the row itself).
    """
    if change.kind == "transition":  # event_type's rule inline: the outbox's hot path
        from_level = change.from_level
        kind = ("ticket.escalated" if from_level is not None and from_level != change.to_level
                else "ticket.transitioned")
    else:
        kind = _BY_KIND.get(change.kind) or f"ticket.{change.kind}"
    return kind, {
        "event_id": event_id,
        "type": kind,
        "occurred_at": change.at.isoformat(),
        "ticket_id": change.ticket_id,
        "lifecycle": change.lifecycle.name,
        "seq": change.seq,
        "kind": change.kind,
        "trigger": change.trigger,
        "from_state": change.from_state,
        "to_state": change.to_state,
        "from_level": change.from_level,
        "to_level": change.to_level,
        "actor": change.actor,
        "role": change.role,
        "reason": change.reason,
        "data": change.data,
        "fields": change.fields,
    }


def event_from_change(event_id: str, change: Change) -> DomainEvent:
    """Build the :class:`DomainEvent` announcing ``change``."""
    kind, payload = event_payload(event_id, change)
    return DomainEvent(event_id, kind, change.ticket_id, change.lifecycle.name, change.seq,
                       change.at, payload)
