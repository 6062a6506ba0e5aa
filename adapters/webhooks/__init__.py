"""Webhook delivery: Standard Webhooks signatures, a queue per endpoint, retries, dead letters."""

from adapters.webhooks.config import endpoint_from_option, load_endpoints, secret_variable
from adapters.webhooks.worker import (
    REPLAY_WINDOW,
    DeliveryResult,
    Endpoint,
    RetryPolicy,
    WebhookWorker,
    check_endpoints,
    dead_letters,
    new_secret,
    replay_dead,
)

__all__ = [
    "REPLAY_WINDOW",
    "DeliveryResult",
    "Endpoint",
    "RetryPolicy",
    "WebhookWorker",
    "check_endpoints",
    "dead_letters",
    "endpoint_from_option",
    "load_endpoints",
    "new_secret",
    "replay_dead",
    "secret_variable",
]
