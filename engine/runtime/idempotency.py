"""Idempotent commands: a key sent twice applies its command once.

A host (or an HTTP client retrying after a timeout) passes ``idempotency_key=`` to
``Engine.report`` / ``fire`` / ``escalate``. Keys are scoped per actor (``Actor.id``): two
clients may use the same key for different commands. In the command's own transaction the
engine looks the (actor, key) up in ``gw_idempotency``:

* unknown key: the command runs, and its result is written under the key *in the same
  transaction* (so the key exists exactly when the command's effects do);
* known key, same command content (its SHA-256 digest): the stored first result is returned and
  nothing is applied;
* known key, different content: :class:`~engine.errors.IdempotencyKeyReused`.

A refused command writes nothing, so its key stays unused. Two callers racing with one key
both run the command; the second's insert of the key hits the primary key, its transaction
rolls back, and it returns the first's result (see :class:`engine.runtime.kernel.Kernel`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from engine.errors import IdempotencyKeyReused
from engine.store.tables import idempotency

__all__ = ["INSERT", "MAX_KEY_LENGTH", "check_key", "command_digest", "lookup", "row"]

MAX_KEY_LENGTH = 128

_SELECT = select(idempotency).where(idempotency.c.owner == bindparam("b_owner"),
                                    idempotency.c.key == bindparam("b_key"))
INSERT = insert(idempotency)
"""The statement that stores a key (with :func:`row`'s parameters)."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    # A value no field, reason or attachment can hold (the command's own checks refuse it,
    # as InvalidFields or EvidenceInvalid, and nothing is stored under the key): its type
    # stands in, so the digest is made and the refusal says what is wrong.
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def command_digest(command: str, content: dict[str, Any]) -> str:
    """SHA-256 (hex) of a command's kind and content (JSON with sorted keys; instants in UTC)."""
    text = json.dumps({"command": command, **content}, sort_keys=True, default=_default,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_key(key: str) -> None:
    """Refuse an empty key or one longer than :data:`MAX_KEY_LENGTH` characters (ValueError)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters, got {key!r}")


def lookup(conn: Connection, owner: str, key: str, command: str,
           digest: str) -> dict[str, Any] | None:
    """The stored result of the actor's first command with this key, or None if it is new.

    Raises:
        IdempotencyKeyReused: the actor used the key for a command with other content.
    """
    found = conn.execute(_SELECT, {"b_owner": owner, "b_key": key}).mappings().first()
    if found is None:
        return None
    if found["digest"] != digest or found["command"] != command:
        raise IdempotencyKeyReused(key, found["ticket_id"], found["command"])
    return dict(found["result"])


def row(owner: str, key: str, command: str, digest: str, ticket_id: str,
        result: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The parameters of :data:`INSERT` storing a key with its command's digest and result."""
    return {"owner": owner, "key": key, "command": command, "digest": digest,
            "ticket_id": ticket_id, "result": result, "created_at": now}
