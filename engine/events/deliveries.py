"""The webhook delivery queue in the database: ``gw_deliveries`` and ``gw_delivery_attempts``.

One row per outbox event and endpoint (``pending`` → ``delivered`` | ``dead``); every attempt
is logged. The HTTP side (signing, posting, retry policy, threads) is the adapter's
(``adapters/webhooks/worker.py``); this module owns the tables, so that the adapter goes
through the engine's API and not below it. Every function runs its own short transaction on
the :class:`~engine.store.Database` it is given. Instants are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update

from engine.store import Database, deliveries, delivery_attempts, outbox

__all__ = ["DueDelivery", "claim", "dead_letters", "due", "enqueue", "record_attempt",
           "replay_dead"]


@dataclass(frozen=True)
class DueDelivery:
    """A pending delivery whose attempt is due.

    Attributes:
        id: the ``gw_deliveries`` row.
        endpoint: the endpoint's name.
        attempts: attempts made so far.
        next_attempt_at: when it fell due (the claim's optimistic check).
        event_id, type, payload: the outbox event to send.
    """

    id: int
    endpoint: str
    attempts: int
    next_attempt_at: datetime
    event_id: str
    type: str
    payload: Any


def enqueue(db: Database, endpoint: str, types: Collection[str] | None,
            now: datetime) -> int:
    """Create the missing delivery rows of ``endpoint`` (its event ``types``; None: all).

    Returns how many rows were created, each pending and due at ``now``.
    """
    with db.write() as conn:
        have = select(deliveries.c.outbox_id).where(deliveries.c.endpoint == endpoint)
        query = select(outbox.c.id, outbox.c.type).where(outbox.c.id.not_in(have))
        rows = [{"outbox_id": oid, "endpoint": endpoint, "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now}
                for oid, kind in conn.execute(query.order_by(outbox.c.id))
                if types is None or kind in types]
        if rows:
            conn.execute(insert(deliveries), rows)
    return len(rows)


def due(db: Database, endpoint: str, now: datetime) -> list[DueDelivery]:
    """The pending deliveries of ``endpoint`` due at ``now``, in due order."""
    with db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.endpoint, deliveries.c.attempts,
                   deliveries.c.next_attempt_at, outbox.c.event_id, outbox.c.type,
                   outbox.c.payload)
            .join(outbox, outbox.c.id == deliveries.c.outbox_id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now,
                   deliveries.c.endpoint == endpoint)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        ).all()
    return [DueDelivery(*r) for r in rows]


def claim(db: Database, delivery: DueDelivery, lease_until: datetime) -> bool:
    """Take ``delivery`` for one attempt, until ``lease_until``; False: another worker has it.

    The claim holds only if the row is still pending and still due when it was read.
    """
    with db.write() as conn:
        return conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery.id, deliveries.c.status == "pending",
                   deliveries.c.next_attempt_at == delivery.next_attempt_at)
            .values(next_attempt_at=lease_until)
        ).rowcount == 1


def record_attempt(db: Database, delivery_id: int, attempt: int, *, outcome: str,
                   sent_at: datetime, ended_at: datetime, status_code: int | None,
                   error: str | None, retry_at: datetime | None = None) -> None:
    """Log attempt ``attempt`` and settle the delivery, in one transaction.

    Args:
        db: the engine's database.
        delivery_id: the ``gw_deliveries`` row.
        attempt: the attempt's number (1, 2, ...).
        outcome: ``delivered``, ``dead`` (no attempts left) or ``retry`` (due again at
            ``retry_at``).
        sent_at: when the request went out.
        ended_at: when it ended (the delivery's ``delivered_at`` if delivered).
        status_code: the HTTP status (None: no response).
        error: what went wrong (None: a 2xx answer).
        retry_at: with ``retry``, when the next attempt is due.

    Raises:
        ValueError: an unknown outcome, or ``retry`` without ``retry_at``.
    """
    if outcome == "delivered":
        values: dict[str, Any] = {"status": "delivered", "delivered_at": ended_at,
                                  "last_error": None}
    elif outcome == "dead":
        values = {"status": "dead", "last_error": error}
    elif outcome == "retry" and retry_at is not None:
        values = {"next_attempt_at": retry_at, "last_error": error}
    else:
        raise ValueError(f"outcome {outcome!r} (retry needs retry_at)")
    with db.write() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id)
                     .values(attempts=attempt, **values))
        conn.execute(insert(delivery_attempts).values(
            delivery_id=delivery_id, attempt=attempt, at=sent_at, status_code=status_code,
            error=error))


def dead_letters(db: Database, *, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Dead deliveries, oldest first, optionally of one ``endpoint`` only.

    Each is a dict of ``event_id``, ``type``, ``ticket_id``, ``endpoint``, ``attempts`` and
    ``last_error``.
    """
    query = (select(outbox.c.event_id, outbox.c.type, outbox.c.ticket_id, deliveries.c.endpoint,
                    deliveries.c.attempts, deliveries.c.last_error)
             .join(outbox, outbox.c.id == deliveries.c.outbox_id)
             .where(deliveries.c.status == "dead").order_by(deliveries.c.id))
    if endpoint is not None:
        query = query.where(deliveries.c.endpoint == endpoint)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def replay_dead(db: Database, now: datetime, *, event_id: str | None = None,
                endpoint: str | None = None) -> int:
    """Put dead deliveries back to ``pending``, due at ``now``, with a fresh set of attempts.

    Args:
        db: the engine's database.
        now: when they fall due again (the engine's clock).
        event_id: only this event's deliveries.
        endpoint: only this endpoint's deliveries.

    Returns:
        How many deliveries were put back. Their attempt log is kept.
    """
    conditions = [deliveries.c.status == "dead"]
    if endpoint is not None:
        conditions.append(deliveries.c.endpoint == endpoint)
    if event_id is not None:
        conditions.append(deliveries.c.outbox_id.in_(
            select(outbox.c.id).where(outbox.c.event_id == event_id)))
    with db.write() as conn:
        return int(conn.execute(
            update(deliveries).where(and_(*conditions))
            .values(status="pending", attempts=0, next_attempt_at=now)
        ).rowcount)
