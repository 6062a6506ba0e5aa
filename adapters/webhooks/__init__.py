"""Webhook delivery of domain events: retries with exponential backoff, attempts, dead letters."""

from adapters.webhooks.config import load_endpoints
from adapters.webhooks.worker import (
    DeliveryResult,
    Endpoint,
    RetryPolicy,
    WebhookWorker,
    dead_letters,
    replay_dead,
)

__all__ = [
    "DeliveryResult",
    "Endpoint",
    "RetryPolicy",
    "WebhookWorker",
    "dead_letters",
    "load_endpoints",
    "replay_dead",
]
