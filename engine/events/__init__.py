"""Events out: every history row becomes a domain event, stored in an outbox.

* :mod:`engine.events.model`: :class:`DomainEvent` and its types.
* :mod:`engine.events.outbox`: the participant that writes ``gw_outbox`` rows in the command's
  own transaction and calls the host's listeners after the commit; reads of the outbox.

* :mod:`engine.events.deliveries`: the webhook delivery queue's tables (enqueue, claim,
  record attempts, dead letters); the HTTP side — signing, posting, retries — is an adapter,
  ``adapters/webhooks/``.
"""

from engine.events.model import EVENT_TYPES, DomainEvent, event_type
from engine.events.outbox import OutboxParticipant, read_events

__all__ = ["EVENT_TYPES", "DomainEvent", "OutboxParticipant", "event_type", "read_events"]
