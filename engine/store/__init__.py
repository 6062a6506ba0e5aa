"""Persistence: the schema, the database connection and UTC-aware column types."""

from engine.store.database import Database, to_url
from engine.store.tables import definitions, history, idempotency, metadata, tickets, timers

__all__ = [
    "Database", "definitions", "history", "idempotency", "metadata", "tickets", "timers",
    "to_url",
]
