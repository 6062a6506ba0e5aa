"""The webhook delivery worker: the outbox's events POSTed to each endpoint, at least once.

For every endpoint, each ``gw_outbox`` event gets a ``gw_deliveries`` row (created by
:meth:`WebhookWorker.enqueue`). :meth:`WebhookWorker.deliver_due` POSTs the event's JSON
payload to the endpoint for every pending delivery whose ``next_attempt_at`` has come:

* a 2xx answer marks it ``delivered``;
* anything else (another status, a timeout, a refused connection) is logged in
  ``gw_delivery_attempts`` and retried after ``initial_backoff * multiplier**(n-1)`` seconds
  (capped at ``max_backoff``); after ``max_attempts`` attempts the delivery is ``dead``;
* an operator puts dead deliveries back with :func:`replay_dead`
  (``gridwhistle webhooks replay``); they get ``max_attempts`` new attempts.

Delivery is *at least once*: an answer lost on the way back means the event is sent again.
Each request carries the headers ``Gridwhistle-Event-Id`` (receivers de-duplicate on it),
``Gridwhistle-Event-Type``, ``Gridwhistle-Delivery-Attempt`` and, when the endpoint has a
secret, ``Gridwhistle-Signature: sha256=<hex HMAC-SHA256 of the body>``.

A pending delivery is claimed by moving its ``next_attempt_at`` forward by ``lease`` seconds
with a conditional UPDATE, so two workers on one database do not send it at the same moment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, insert, select, update

from engine import Engine
from engine.store import deliveries, delivery_attempts, outbox

__all__ = ["DeliveryResult", "Endpoint", "RetryPolicy", "WebhookWorker", "dead_letters",
           "replay_dead"]

log = logging.getLogger("gridwhistle.webhooks")


@dataclass(frozen=True)
class Endpoint:
    """A webhook receiver.

    Attributes:
        name: a short unique name (``ops-dashboard``); deliveries are kept per name.
        url: where events are POSTed.
        types: only these event types (None: every event).
        secret: when set, each request is signed (``Gridwhistle-Signature``).
    """

    name: str
    url: str
    types: frozenset[str] | None = None
    secret: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: attempts before a delivery is dead (default 8).
        initial_backoff: seconds before the 2nd attempt (default 1.0).
        multiplier: each further wait is this many times longer (default 2.0).
        max_backoff: the longest wait, in seconds (default 3600).
        timeout: seconds to wait for an answer (default 10).
        lease: seconds a claimed delivery is hidden from other workers (default 60).
    """

    max_attempts: int = 8
    initial_backoff: float = 1.0
    multiplier: float = 2.0
    max_backoff: float = 3600.0
    timeout: float = 10.0
    lease: float = 60.0

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1-based)."""
        seconds = self.initial_backoff * self.multiplier ** (attempts - 1)
        return timedelta(seconds=min(seconds, self.max_backoff))


@dataclass(frozen=True)
class DeliveryResult:
    """One attempt: the event, the endpoint, the attempt number and how it ended.

    Attributes:
        outcome: ``delivered``, ``retry`` (failed, will be retried) or ``dead``.
        status_code: the HTTP status, or None when no answer came.
        error: what went wrong (None when delivered).
    """

    event_id: str
    endpoint: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None


class WebhookWorker:
    """Delivers the engine's outbox events to webhook endpoints.

    Args:
        engine: the engine whose database holds the outbox (its clock gives ``now``).
        endpoints: the receivers.
        policy: retries and timeouts.
        client: an ``httpx.Client`` to use (borrowed); default: one of its own.

    Call :meth:`run_once` from your own loop, or :meth:`start` / :meth:`stop` for a background
    thread polling every ``poll_seconds``.
    """

    def __init__(
        self,
        engine: Engine,
        endpoints: Sequence[Endpoint],
        *,
        policy: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        poll_seconds: float = 1.0,
    ):
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique: {names}")
        self.engine = engine
        self.endpoints = {e.name: e for e in endpoints}
        self.policy = policy or RetryPolicy()
        self._client = client or httpx.Client(timeout=self.policy.timeout)
        self._own_client = client is None
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- work ---------------------------------------------------------------------------

    def enqueue(self) -> int:
        """Create the missing delivery rows (one per event and endpoint); return how many."""
        now = self.engine.clock.now()
        created = 0
        with self.engine.db.write() as conn:
            for endpoint in self.endpoints.values():
                have = select(deliveries.c.outbox_id).where(
                    deliveries.c.endpoint == endpoint.name)
                query = select(outbox.c.id, outbox.c.type).where(outbox.c.id.not_in(have))
                rows = [
                    {"outbox_id": oid, "endpoint": endpoint.name, "status": "pending",
                     "attempts": 0, "next_attempt_at": now, "created_at": now}
                    for oid, kind in conn.execute(query.order_by(outbox.c.id))
                    if endpoint.types is None or kind in endpoint.types
                ]
                if rows:
                    conn.execute(insert(deliveries), rows)
                    created += len(rows)
        return created

    def deliver_due(self, now: datetime | None = None) -> list[DeliveryResult]:
        """Attempt every pending delivery due at ``now`` (default: the engine's clock), in order.

        Returns:
            One result per attempt made.
        """
        now = now or self.engine.clock.now()
        with self.engine.db.read() as conn:
            due = conn.execute(
                select(deliveries.c.id, deliveries.c.endpoint, deliveries.c.attempts,
                       deliveries.c.next_attempt_at, outbox.c.event_id, outbox.c.type,
                       outbox.c.payload)
                .join(outbox, outbox.c.id == deliveries.c.outbox_id)
                .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now,
                       deliveries.c.endpoint.in_(list(self.endpoints)))
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            ).mappings().all()
        return [r for r in (self._attempt(row, now) for row in due) if r is not None]

    def run_once(self) -> list[DeliveryResult]:
        """:meth:`enqueue` then :meth:`deliver_due`."""
        self.enqueue()
        return self.deliver_due()

    def _attempt(self, row: Any, now: datetime) -> DeliveryResult | None:
        lease_until = now + timedelta(seconds=self.policy.lease)
        with self.engine.db.write() as conn:
            claimed = conn.execute(
                update(deliveries)
                .where(deliveries.c.id == row["id"], deliveries.c.status == "pending",
                       deliveries.c.next_attempt_at == row["next_attempt_at"])
                .values(next_attempt_at=lease_until)
            ).rowcount
        if claimed != 1:
            return None  # another worker has it
        endpoint = self.endpoints[row["endpoint"]]
        attempt = row["attempts"] + 1
        status_code, error = self._post(endpoint, row["event_id"], row["type"], row["payload"],
                                        attempt)
        if error is None:
            outcome, values = "delivered", {"status": "delivered", "delivered_at": now,
                                            "last_error": None}
        elif attempt >= self.policy.max_attempts:
            outcome, values = "dead", {"status": "dead", "last_error": error}
        else:
            outcome = "retry"
            values = {"next_attempt_at": now + self.policy.backoff(attempt), "last_error": error}
        with self.engine.db.write() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == row["id"])
                         .values(attempts=attempt, **values))
            conn.execute(insert(delivery_attempts).values(
                delivery_id=row["id"], attempt=attempt, at=now, status_code=status_code,
                error=error))
        if outcome != "delivered":
            log.warning("webhook %s: event %s attempt %d failed (%s): %s", endpoint.name,
                        row["event_id"], attempt, outcome, error)
        return DeliveryResult(row["event_id"], endpoint.name, attempt, outcome, status_code,
                              error)

    def _post(
        self, endpoint: Endpoint, event_id: str, kind: str, payload: Any, attempt: int
    ) -> tuple[int | None, str | None]:
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Gridwhistle-Event-Id": event_id,
            "Gridwhistle-Event-Type": kind,
            "Gridwhistle-Delivery-Attempt": str(attempt),
        }
        if endpoint.secret:
            digest = hmac.new(endpoint.secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            headers["Gridwhistle-Signature"] = f"sha256={digest}"
        try:
            response = self._client.post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    # -- background thread ---------------------------------------------------------------

    def start(self) -> WebhookWorker:
        """Run :meth:`run_once` every ``poll_seconds`` in a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="gridwhistle-webhooks",
                                            daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep the thread alive; the next poll retries
                log.exception("webhook delivery round failed")
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        """Stop the thread (if started) and close the HTTP client if this worker made it."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._own_client:
            self._client.close()


def dead_letters(engine: Engine, *, endpoint: str | None = None) -> list[dict[str, Any]]:
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
    with engine.db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def replay_dead(
    engine: Engine, *, event_id: str | None = None, endpoint: str | None = None
) -> int:
    """Put dead deliveries back to ``pending``, due now, with a fresh set of attempts.

    Args:
        engine: the engine whose database and clock are used (due = its ``now``).
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
    with engine.db.write() as conn:
        return int(conn.execute(
            update(deliveries).where(and_(*conditions))
            .values(status="pending", attempts=0, next_attempt_at=engine.clock.now())
        ).rowcount)
