"""Tables of the events going out: the outbox, webhook deliveries and their attempt log.

* ``gw_outbox``: one row per domain event, written by the outbox participant in the same
  transaction as the history row it announces. ``event_id`` (a UUID) is what receivers
  de-duplicate on; ``id`` orders events.
* ``gw_deliveries``: one row per (event, webhook endpoint): ``pending`` → ``delivered`` |
  ``dead`` (retries used up; an operator can put it back to ``pending``).
* ``gw_delivery_attempts``: append-only log of every HTTP attempt and its outcome.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from engine.store.tables import metadata
from engine.store.types import UTCDateTime

__all__ = ["deliveries", "delivery_attempts", "outbox"]

outbox = Table(
    "gw_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("type", String(64), nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("lifecycle", String(64), nullable=False),
    Column("seq", Integer, nullable=False),  # the history row's seq
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("event_id"),
    UniqueConstraint("ticket_id", "seq"),
)

deliveries = Table(
    "gw_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, ForeignKey("gw_outbox.id"), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    UniqueConstraint("outbox_id", "endpoint"),
    Index(None, "status", "next_attempt_at"),
)

delivery_attempts = Table(
    "gw_delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("gw_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no HTTP answer (connection error)
    Column("error", Text, nullable=True),  # None: delivered
    Index(None, "delivery_id"),
)
