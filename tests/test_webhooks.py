"""Webhook delivery against a real HTTP receiver on loopback: retries with exponential
backoff, the attempt log, dead letters and their replay from the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from helpers import START
from servers import receiver
from sqlalchemy import select

from adapters.webhooks import (
    Endpoint,
    RetryPolicy,
    WebhookWorker,
    dead_letters,
    load_endpoints,
)
from engine import Actor, DefinitionError, Engine
from engine.store import deliveries, delivery_attempts

POLICY = RetryPolicy(max_attempts=4, initial_backoff=10, multiplier=2, timeout=5)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks example secret


def attempts(engine) -> list[tuple[int, int | None, str | None, datetime]]:
    with engine.db.read() as conn:
        return [tuple(r) for r in conn.execute(
            select(delivery_attempts.c.attempt, delivery_attempts.c.status_code,
                   delivery_attempts.c.error, delivery_attempts.c.at)
            .order_by(delivery_attempts.c.id))]


def test_retries_with_exponential_backoff_until_delivered(engine, clock, reporter) -> None:
    ticket = engine.report("grid_incident", {"category": "drain"}, actor=reporter)
    with receiver([500, 503]) as hook:
        worker = WebhookWorker(engine, [Endpoint("ops", hook.url, secret=SECRET)],
                               policy=POLICY)
        try:
            assert worker.enqueue() == 1
            assert worker.enqueue() == 0  # one delivery per event and endpoint
            outcomes = [(r.attempt, r.outcome, r.status_code) for r in worker.deliver_due()]
            assert outcomes == [(1, "retry", 500)]
            clock.advance(timedelta(seconds=9))
            assert worker.deliver_due() == []  # backoff: 10 s after the 1st failure
            clock.advance(timedelta(seconds=1))
            assert [(r.attempt, r.outcome) for r in worker.deliver_due()] == [(2, "retry")]
            clock.advance(timedelta(seconds=19))
            assert worker.deliver_due() == []  # 20 s after the 2nd
            clock.advance(timedelta(seconds=1))
            assert [(r.attempt, r.outcome) for r in worker.deliver_due()] == [(3, "delivered")]
            clock.advance(timedelta(days=1))
            assert worker.deliver_due() == []
        finally:
            worker.stop()
    assert [r["answered"] for r in hook.received] == [500, 503, 200]
    first, last = hook.received[0], hook.received[-1]
    assert first["body"] == last["body"]
    event_id = last["body"]["event_id"]
    assert {r["headers"]["webhook-id"] for r in hook.received} == {event_id}
    assert [r["headers"]["Gridwhistle-Delivery-Attempt"] for r in hook.received] == [
        "1", "2", "3"]
    assert last["headers"]["Gridwhistle-Event-Type"] == "ticket.reported"
    assert last["body"]["ticket_id"] == ticket.id
    body = json.dumps(last["body"], ensure_ascii=False, sort_keys=True).encode()
    stamp = last["headers"]["webhook-timestamp"]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    assert last["headers"]["webhook-signature"] == "v1," + base64.b64encode(hmac.new(
        key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    assert attempts(engine) == [
        (1, 500, "HTTP 500", START), (2, 503, "HTTP 503", START + timedelta(seconds=10)),
        (3, 200, None, START + timedelta(seconds=30))]


def test_dead_letters_are_replayed_by_the_operator(engine, clock, reporter, db_path):
    engine.report("grid_incident", {"category": "drain"}, actor=reporter, ticket_id="W1")
    engine.fire("W1", "escalate", actor=Actor("ops", "centre"),
                reason="urgent")
    with receiver([500] * 8) as hook:
        worker = WebhookWorker(engine, [Endpoint("ops", hook.url,
                                                 types=frozenset({"ticket.escalated"}),
                                                 secret=SECRET)],
                               policy=POLICY)
        try:
            worker.enqueue()
            for wait in (0, 10, 20, 40):
                clock.advance(timedelta(seconds=wait))
                worker.deliver_due()
            assert [d["endpoint"] for d in dead_letters(engine)] == ["ops"]
            assert dead_letters(engine)[0]["type"] == "ticket.escalated"
            assert dead_letters(engine)[0]["attempts"] == 4
            clock.advance(timedelta(days=1))
            assert worker.deliver_due() == []  # dead: no more attempts

            cli = [sys.executable, "-m", "adapters.cli", "webhooks"]
            listed = subprocess.run([*cli, "dead", "--db", str(db_path), "--json"],
                                    capture_output=True, text=True, check=True)
            assert [(d["type"], d["ticket_id"], d["attempts"], d["last_error"])
                    for d in json.loads(listed.stdout)] == [
                ("ticket.escalated", "W1", 4, "HTTP 500")]
            done = subprocess.run([*cli, "replay", "--db", str(db_path), "--endpoint", "ops"],
                                  capture_output=True, text=True, check=True)
            assert done.stdout == "1 dead delivery queued again\n"
            assert dead_letters(engine) == []
            # the CLI used the wall clock: deliver as of now
            results = worker.deliver_due(datetime.now(UTC) + timedelta(seconds=1))
            assert [(r.attempt, r.outcome) for r in results] == [(1, "retry")]
        finally:
            worker.stop()
    assert len(hook.received) == 5
    assert all(r["body"]["type"] == "ticket.escalated" for r in hook.received)
    with engine.db.read() as conn:
        assert conn.execute(select(deliveries.c.status)).scalars().all() == ["pending"]


def test_a_refused_connection_is_retried(engine, clock, reporter) -> None:
    engine.report("grid_incident", {"category": "drain"}, actor=reporter)
    with receiver([]) as hook:
        url = hook.url
    worker = WebhookWorker(engine, [Endpoint("gone", url, secret=SECRET)], policy=POLICY)
    try:
        [result] = worker.run_once()
    finally:
        worker.stop()
    assert (result.outcome, result.status_code) == ("retry", None)
    assert result.error is not None and result.error.startswith("ConnectError")


def test_endpoints_file_is_strict(tmp_path) -> None:
    good = tmp_path / "hooks.yaml"
    good.write_text('endpoints:\n  ops:\n    url: https://ops.example.org/hook\n'
                    f'    types: [ticket.escalated]\n    secret: {SECRET}\n'
                    '  archive: {url: "http://10.0.0.7:9000/events", secret_env: ARCHIVE_KEY}\n')
    assert load_endpoints(good, environ={"ARCHIVE_KEY": SECRET}) == [
        Endpoint("ops", "https://ops.example.org/hook", frozenset({"ticket.escalated"}),
                 SECRET),
        Endpoint("archive", "http://10.0.0.7:9000/events", None, SECRET)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints:\n  ops: {url: ftp://x, retries: 3}\n")
    with pytest.raises(DefinitionError) as info:
        load_endpoints(bad)
    assert [(p.line, p.path) for p in info.value.problems] == [
        (2, "endpoints.ops.retries"), (2, "endpoints.ops.url")]


def test_an_endpoint_type_no_event_can_have_is_refused_at_its_line(tmp_path) -> None:
    """main: accepted, and the endpoint silently received nothing, ever."""
    path = tmp_path / "hooks.yaml"
    path.write_text("endpoints:\n"
                    f"  ops: {{url: https://ops.example.org/hook, secret: {SECRET},\n"
                    "        types: [ticket.escalate, deadline.breached]}\n"
                    f"  audit: {{url: https://a.example.org/, secret: {SECRET},\n"
                    "          types: [escalated]}\n"
                    f"  oversight: {{url: https://o.example.org/, secret: {SECRET}, "
                    "types: [ticket.suspended, ticket.supervision_notice]}\n")
    with pytest.raises(DefinitionError) as info:
        load_endpoints(path)
    assert [(p.line, p.path, p.message) for p in info.value.problems] == [
        (2, "endpoints.ops.types",
         "'ticket.escalate' is not an event type; did you mean 'ticket.escalated'?"),
        (4, "endpoints.audit.types",
         "'escalated' is not an event type: use one of ticket.reported, ticket.transitioned, "
         "ticket.escalated, deadline.breached, deadline.warning, or ticket.<kind> for another "
         "history kind (docs/events.md)")]


def test_the_background_worker_retries_on_the_system_clock(tmp_path) -> None:
    engine = Engine(tmp_path / "live.sqlite")
    engine.report("grid_incident", {"category": "drain"}, actor=Actor("gw", "centre"),
                  ticket_id="L1")
    with receiver([502]) as hook:
        worker = WebhookWorker(engine, [Endpoint("ops", hook.url, secret=SECRET)],
                               poll_seconds=0.02,
                               policy=RetryPolicy(initial_backoff=0.05, timeout=5))
        worker.start()
        try:
            for _ in range(1500):  # waits for the outcome, asserts nothing about speed
                if len(hook.received) >= 2:
                    break
                threading.Event().wait(0.02)
        finally:
            worker.stop()
            engine.stop()
    assert [r["answered"] for r in hook.received] == [502, 200]
    assert {r["body"]["ticket_id"] for r in hook.received} == {"L1"}
    assert [a[:3] for a in attempts(engine)] == [(1, 502, "HTTP 502"), (2, 200, None)]
