"""Persistence: the schema, the database connection and UTC-aware column types."""

from engine.store.database import Database, to_url
from engine.store.department_tables import department_actions, ticket_links, work_orders
from engine.store.event_tables import deliveries, delivery_attempts, outbox
from engine.store.evidence_tables import attachments, blobs, callback_links, callbacks, handoffs
from engine.store.oversight_tables import supervision_notices, time_requests
from engine.store.tables import definitions, history, idempotency, metadata, tickets, timers

__all__ = [
    "Database",
    "attachments",
    "blobs",
    "callback_links",
    "callbacks",
    "definitions",
    "deliveries",
    "delivery_attempts",
    "department_actions",
    "handoffs",
    "history",
    "idempotency",
    "metadata",
    "outbox",
    "supervision_notices",
    "ticket_links",
    "tickets",
    "time_requests",
    "timers",
    "to_url",
    "work_orders",
]
