"""The webhook delivery worker: the outbox's events POSTed to each endpoint, at least once.

For every endpoint, each ``gw_outbox`` event gets a ``gw_deliveries`` row (created by
:meth:`WebhookWorker.enqueue`). :meth:`WebhookWorker.deliver_due` POSTs the event's JSON
payload to the endpoint for every pending delivery whose ``next_attempt_at`` has come:

* a 2xx answer marks it ``delivered``;
* anything else (another status, a timeout, a refused connection) is logged in
  ``gw_delivery_attempts`` and retried ``initial_backoff * multiplier**(n-1)`` seconds
  (capped at ``max_backoff``) after *that attempt ended*; after ``max_attempts`` attempts the
  delivery is ``dead``;
* an operator puts dead deliveries back with :func:`replay_dead`
  (``gridwhistle webhooks replay``); they get ``max_attempts`` new attempts.

Requests follow the Standard Webhooks conventions (standardwebhooks.com, "Signature
scheme"): ``webhook-id`` (the event id, the same on every retry: receivers de-duplicate on
it), ``webhook-timestamp`` (Unix seconds of the wall clock when this attempt is sent) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed with the
endpoint's secret (``whsec_`` and base64 of 24 to 64 random bytes; every endpoint has one).
Receivers verify with any Standard Webhooks library and refuse timestamps more than five
minutes from their own clock (the replay window), so a captured request cannot be replayed
later. ``Gridwhistle-Event-Type`` and ``Gridwhistle-Delivery-Attempt`` are sent too.

Each endpoint has its own queue and its own thread (:meth:`WebhookWorker.start`) and HTTP
client, so a slow or dead endpoint delays only its own deliveries. Every attempt takes its
own times from the engine's clock: the claim (``next_attempt_at`` moved ``lease`` seconds
ahead with a conditional UPDATE, so two workers on one database do not send it at once) is
made just before the request, the attempt is stamped when sent, and the backoff counts from
when it ended. An optional allow-list of target hosts refuses endpoints anywhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from engine import ConfigurationError, Engine
from engine.events import deliveries as queue

__all__ = ["DeliveryResult", "Endpoint", "RetryPolicy", "WebhookWorker", "check_endpoints",
           "check_secret", "dead_letters", "host_allowed", "new_secret", "replay_dead", "sign"]

log = logging.getLogger("gridwhistle.webhooks")

SECRET_PREFIX = "whsec_"
REPLAY_WINDOW = timedelta(minutes=5)
"""How far a receiver accepts ``webhook-timestamp`` from its own clock (Standard Webhooks)."""


@dataclass(frozen=True)
class Endpoint:
    """A webhook receiver.

    Attributes:
        name: a short unique name (``ops-dashboard``); deliveries are kept per name.
        url: where events are POSTed (``http`` or ``https``).
        types: only these event types (None: every event).
        secret: the signing secret, ``whsec_<base64>`` (:func:`new_secret` makes one);
            required by :class:`WebhookWorker`.
    """

    name: str
    url: str
    types: frozenset[str] | None = None
    secret: str | None = None


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def check_secret(secret: str | None, endpoint: str = "?") -> bytes:
    """The key bytes of a ``whsec_`` secret.

    Raises:
        ConfigurationError: missing, without the prefix, not base64, or not 24 to 64 bytes.
    """
    hint = "make one with `gridwhistle webhooks secret`"
    if not secret:
        raise ConfigurationError(f"webhook endpoint {endpoint!r} has no secret; every "
                                 f"endpoint signs its requests: {hint}")
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigurationError(f"webhook endpoint {endpoint!r}: a secret is whsec_ and "
                                 f"base64 (Standard Webhooks), not a password; {hint}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"webhook endpoint {endpoint!r}: the secret after whsec_ is "
                                 f"not base64; {hint}") from None
    if not 24 <= len(key) <= 64:
        raise ConfigurationError(f"webhook endpoint {endpoint!r}: the secret holds "
                                 f"{len(key)} bytes, 24 to 64 are needed; {hint}")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>")>`` (Standard Webhooks)."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``allowed``: exact names or IPs, or ``*.example.org``."""
    host = host.lower().rstrip(".")
    for pattern in allowed:
        p = pattern.lower().rstrip(".")
        if host == p or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: attempts before a delivery is dead (default 8).
        initial_backoff: seconds before the 2nd attempt (default 1.0).
        multiplier: each further wait is this many times longer (default 2.0).
        max_backoff: the longest wait, in seconds (default 3600).
        timeout: seconds to wait for an answer (default 10).
        lease: seconds a claimed delivery is hidden from other workers, from its claim just
            before the request (default 60); keep it above ``timeout``.
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


@dataclass(frozen=True)
class _Target:
    endpoint: Endpoint
    key: bytes
    client: httpx.Client


class WebhookWorker:
    """Delivers the engine's outbox events to webhook endpoints, each on its own queue.

    Args:
        engine: the engine whose database holds the outbox (its clock gives ``now``).
        endpoints: the receivers; each needs a ``whsec_`` secret.
        policy: retries and timeouts.
        client: an ``httpx.Client`` to use for every endpoint (borrowed); default: one of its
            own per endpoint, not following redirects.
        poll_seconds: how often each endpoint's thread looks for work (:meth:`start`).
        allowed_hosts: when given, endpoints must target one of these hosts (exact names or
            IP addresses, or ``*.example.org``).

    Raises:
        ConfigurationError: duplicate names, a URL that is not ``http(s)://host/...``, a host
            outside ``allowed_hosts``, or a missing or malformed secret.

    Call :meth:`run_once` from your own loop, or :meth:`start` / :meth:`stop` for a thread per
    endpoint polling every ``poll_seconds``.
    """

    def __init__(
        self,
        engine: Engine,
        endpoints: Sequence[Endpoint],
        *,
        policy: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        poll_seconds: float = 1.0,
        allowed_hosts: Sequence[str] | None = None,
    ):
        keys = check_endpoints(endpoints, allowed_hosts)
        self.engine = engine
        self.policy = policy or RetryPolicy()
        self.poll_seconds = poll_seconds
        self._own_client = client is None
        self._targets: dict[str, _Target] = {}
        for e in endpoints:
            own = client or httpx.Client(timeout=self.policy.timeout, follow_redirects=False)
            self._targets[e.name] = _Target(e, keys[e.name], own)
        self.endpoints = {e.name: e for e in endpoints}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- work ---------------------------------------------------------------------------

    def enqueue(self, endpoint: str | None = None) -> int:
        """Create the missing delivery rows (one per event and endpoint); return how many.

        Args:
            endpoint: only this endpoint's (default: every endpoint's).
        """
        names = [endpoint] if endpoint is not None else list(self.endpoints)
        return sum(queue.enqueue(self.engine.db, name, self.endpoints[name].types,
                                 self.engine.clock.now()) for name in names)

    def deliver_due(self, now: datetime | None = None, *,
                    endpoint: str | None = None) -> list[DeliveryResult]:
        """Attempt every pending delivery due at ``now`` (default: the engine's clock).

        Each endpoint's deliveries go in due order, one after the other; different endpoints
        are served at the same time (a thread each), so one slow endpoint does not hold up
        the others.

        Args:
            now: which deliveries are due (each attempt still takes its own times).
            endpoint: only this endpoint's.

        Returns:
            One result per attempt made, grouped by endpoint in the order endpoints were given.
        """
        now = now or self.engine.clock.now()
        names = [endpoint] if endpoint is not None else list(self.endpoints)
        if len(names) == 1:
            return self._deliver(names[0], now)
        with ThreadPoolExecutor(max_workers=len(names),
                                thread_name_prefix="gridwhistle-webhook") as pool:
            rounds = list(pool.map(lambda n: self._deliver(n, now), names))
        return [r for results in rounds for r in results]

    def run_once(self) -> list[DeliveryResult]:
        """:meth:`enqueue` then :meth:`deliver_due`."""
        self.enqueue()
        return self.deliver_due()

    def _deliver(self, name: str, now: datetime) -> list[DeliveryResult]:
        out = []
        for row in queue.due(self.engine.db, name, now):
            if self._stop.is_set():
                break
            result = self._attempt(self._targets[name], row)
            if result is not None:
                out.append(result)
        return out

    def _attempt(self, target: _Target, row: queue.DueDelivery) -> DeliveryResult | None:
        clock = self.engine.clock
        lease = clock.now() + timedelta(seconds=self.policy.lease)
        if not queue.claim(self.engine.db, row, lease):
            return None  # another worker has it
        endpoint = target.endpoint
        attempt = row.attempts + 1
        sent_at = clock.now()
        status_code, error = self._post(target, row.event_id, row.type, row.payload, attempt)
        ended_at = clock.now()
        outcome = ("delivered" if error is None
                   else "dead" if attempt >= self.policy.max_attempts else "retry")
        queue.record_attempt(
            self.engine.db, row.id, attempt, outcome=outcome, sent_at=sent_at,
            ended_at=ended_at, status_code=status_code, error=error,
            retry_at=ended_at + self.policy.backoff(attempt) if outcome == "retry" else None)
        if outcome != "delivered":
            log.warning("webhook %s: event %s attempt %d failed (%s): %s", endpoint.name,
                        row.event_id, attempt, outcome, error)
        return DeliveryResult(row.event_id, endpoint.name, attempt, outcome, status_code,
                              error)

    def _post(
        self, target: _Target, event_id: str, kind: str, payload: Any, attempt: int
    ) -> tuple[int | None, str | None]:
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        timestamp = int(time.time())  # the wall clock: receivers compare it with theirs
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(target.key, event_id, timestamp, body),
            "Gridwhistle-Event-Type": kind,
            "Gridwhistle-Delivery-Attempt": str(attempt),
        }
        try:
            response = target.client.post(target.endpoint.url, content=body, headers=headers,
                                          timeout=self.policy.timeout)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    # -- background threads --------------------------------------------------------------

    def start(self) -> WebhookWorker:
        """Run each endpoint's queue in a daemon thread of its own, every ``poll_seconds``."""
        if not self._threads:
            self._stop.clear()
            for name in self.endpoints:
                thread = threading.Thread(target=self._loop, args=(name,), daemon=True,
                                          name=f"gridwhistle-webhook-{name}")
                self._threads.append(thread)
                thread.start()
        return self

    def _loop(self, name: str) -> None:
        while not self._stop.is_set():
            try:
                self.enqueue(name)
                self._deliver(name, self.engine.clock.now())
            except Exception:  # keep the thread alive; the next poll retries
                log.exception("webhook delivery round for %s failed", name)
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        """Stop the threads (after their current attempt) and close the clients it made."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._stop.clear()
        if self._own_client:
            for target in self._targets.values():
                target.client.close()


def check_endpoints(endpoints: Sequence[Endpoint], allowed_hosts: Sequence[str] | None = None
                    ) -> dict[str, bytes]:
    """Check webhook endpoints as :class:`WebhookWorker` does, without an engine.

    So that a command can refuse them before it opens (or creates) a database.

    Args:
        endpoints: the receivers.
        allowed_hosts: when given, the hosts they may target (see :class:`WebhookWorker`).

    Returns:
        Each endpoint's signing key (the bytes of its secret), by name.

    Raises:
        ConfigurationError: duplicate names, a URL that is not ``http(s)://host/...``, a host
            outside ``allowed_hosts``, or a missing or malformed secret.
    """
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"webhook endpoint names must be unique: {names}")
    keys: dict[str, bytes] = {}
    for e in endpoints:
        keys[e.name] = check_secret(e.secret, e.name)
        _check_url(e, allowed_hosts)
    return keys


def _check_url(endpoint: Endpoint, allowed_hosts: Sequence[str] | None) -> None:
    try:
        url = httpx.URL(endpoint.url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"webhook endpoint {endpoint.name!r}: {endpoint.url!r} is "
                                 f"not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"webhook endpoint {endpoint.name!r}: {endpoint.url!r} must "
                                 "be http(s)://host/path")
    if url.userinfo:
        raise ConfigurationError(f"webhook endpoint {endpoint.name!r}: put no user or "
                                 "password in the URL; requests are signed with the secret")
    if allowed_hosts is not None and not host_allowed(url.host, allowed_hosts):
        raise ConfigurationError(
            f"webhook endpoint {endpoint.name!r}: host {url.host!r} is not in the allowed "
            f"hosts ({', '.join(allowed_hosts) or 'none'}); add it to the allow-list or use "
            "another URL")


def dead_letters(engine: Engine, *, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Dead deliveries, oldest first, optionally of one ``endpoint`` only.

    Each is a dict of ``event_id``, ``type``, ``ticket_id``, ``endpoint``, ``attempts`` and
    ``last_error`` (see :func:`engine.events.deliveries.dead_letters`).
    """
    return queue.dead_letters(engine.db, endpoint=endpoint)


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
    return queue.replay_dead(engine.db, engine.clock.now(), event_id=event_id,
                             endpoint=endpoint)
