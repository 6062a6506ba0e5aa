"""Persistence: the schema, the database connection and UTC-aware column types."""

from engine.store.database import Database, to_url
from engine.store.department_tables import department_actions, ticket_links, work_orders
from engine.store.event_tables import deliveries, delivery_attempts, outbox
from engine.store.tables import definitions, history, idempotency, metadata, tickets, timers

__all__ = [
    "Database",
    "definitions",
    "deliveries",
    "delivery_attempts",
    "department_actions",
    "history",
    "idempotency",
    "metadata",
    "outbox",
    "ticket_links",
    "tickets",
    "timers",
    "to_url",
    "work_orders",
]
