"""Persistence: the schema, the database connection and UTC-aware column types."""

from engine.store.database import Database, to_url
from engine.store.event_tables import deliveries, delivery_attempts, outbox
from engine.store.tables import definitions, history, idempotency, metadata, tickets, timers

__all__ = [
    "Database",
    "definitions",
    "deliveries",
    "delivery_attempts",
    "history",
    "idempotency",
    "metadata",
    "outbox",
    "tickets",
    "timers",
    "to_url",
]
