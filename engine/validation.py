"""One validation of every input at the engine's edge: ids, sizes, text.

The HTTP API, Open311, the CLI, replays and host apps all reach the engine through
``Engine.report`` / ``fire`` / ``escalate``; the engine checks each command's inputs here,
before it opens a transaction, so that every way in accepts and refuses the same things and
a refusal never needs a rollback. Every refusal is an :class:`~engine.errors.InvalidFields`
whose ``errors`` name the input (``ticket_id``, ``reason``, ``idempotency_key``, ``actor``,
``trigger``, ``fields`` or a field's name) with what is wrong and what to send instead. The
lifecycle's own field declarations (types, ``choices``, ``min``/``max``, ``max_length``) are
checked afterwards by :func:`engine.runtime.fields.check_fields`.

Ticket ids (:data:`TICKET_ID_PATTERN`): 1 to 64 characters of ASCII letters, digits and
``- _ . : ~ +``, starting with a letter or digit, optionally in segments joined by ``/``
(the Chicago replay names a request's work orders ``<request>/<follow-on>``); no segment is
``.`` or ``..``, and no segment after the first is one of :data:`RESERVED_SEGMENTS`, the words
the HTTP routes put after an id (``T-1/evidence`` would be read as ticket ``T-1``'s evidence).
Every such id is also a valid URL path, so it round-trips over HTTP
(``/tickets/{ticket_id}``, ``/tickets/{ticket_id}/evidence``, ...) with nothing to escape.
Refused: empty, whitespace, any control character (NUL, CR, LF, ...), non-ASCII (emoji, CJK,
right-to-left and zero-width characters), ``//``, a leading or trailing ``/``, dot segments,
reserved words after a ``/``, and anything but ``str``.

Text (field values, reasons, actor ids) must be valid Unicode without NUL: PostgreSQL
cannot store NUL in text, and a lone surrogate cannot be encoded at all.

Sizes are configurable with :class:`Limits` (``Engine(..., limits=Limits(...))``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from engine.errors import ConfigurationError, InvalidFields

__all__ = [
    "DEFAULT_TEXT_LENGTH",
    "MAX_ACTOR_ID",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_TICKET_ID",
    "RESERVED_SEGMENTS",
    "TICKET_ID_PATTERN",
    "Limits",
    "check_command",
    "check_escalate",
    "check_fire",
    "check_idempotency_key",
    "check_report",
    "check_ticket_id",
    "ticket_id_problem",
]

MAX_TICKET_ID = 64
"""Characters of a ticket id (the ``gw_tickets.id`` column)."""

DEFAULT_TEXT_LENGTH = 10_000
"""Characters a ``string`` field may hold when it declares no ``max_length``."""

MAX_ACTOR_ID = 128
"""Characters of an actor id (the ``gw_history.actor`` column)."""

MAX_IDEMPOTENCY_KEY = 128
"""The most :attr:`Limits.idempotency_key_length` may be (the ``gw_idempotency.key`` column)."""

_SEGMENT = r"[A-Za-z0-9._:~+-]+"
TICKET_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:~+-]*(?:/{_SEGMENT})*$"
"""The characters and shape of a ticket id (see the module docstring)."""

RESERVED_SEGMENTS = ("evidence", "extensions", "supervision-notices", "suspensions",
                     "triggers", "work-orders")
"""Words no segment of a ticket id after the first may be: the HTTP routes put them after an
id (``GET /tickets/{id}/evidence``, ``POST /tickets/{id}/triggers/{trigger}``), so an id
ending in one could never be read. ``lead``, ``dispatch`` and the other words of POST-only
routes stay allowed: no read is shadowed by them (the Chicago replay's ids end in ``/lead``)."""

_TICKET_ID = re.compile(TICKET_ID_PATTERN)
_KEY = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: what an HTTP header carries as is
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Limits:
    """Size limits of a command's inputs, checked before anything is read or written.

    Attributes:
        text_length: characters of a ``string`` field that declares no ``max_length``
            (default 10,000; a field's own ``max_length`` takes precedence).
        reason_length: characters of a command's ``reason`` (default 2,000).
        fields: field values one command may set (default 200).
        idempotency_key_length: characters of an idempotency key (default 128, at most
            128; visible ASCII only).
        body_bytes: bytes of an HTTP request body (default 1,000,000); the HTTP adapter
            answers 413 above it before reading the rest.

    Raises:
        ConfigurationError: a limit is not a whole number of at least 1, or the key length
            is above 128.
    """

    text_length: int = DEFAULT_TEXT_LENGTH
    reason_length: int = 2_000
    fields: int = 200
    idempotency_key_length: int = MAX_IDEMPOTENCY_KEY
    body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"Limits.{f.name} must be a whole number of at least 1, got {value!r}")
        if self.idempotency_key_length > MAX_IDEMPOTENCY_KEY:
            raise ConfigurationError(
                f"Limits.idempotency_key_length is at most {MAX_IDEMPOTENCY_KEY} (the "
                f"database column), got {self.idempotency_key_length}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...{text[-6:]}"


def ticket_id_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a ticket id, or None when it is a valid one."""
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if not value:
        return "must not be empty; omit it to have an id generated"
    if len(value) > MAX_TICKET_ID:
        return f"must be 1 to {MAX_TICKET_ID} characters, got {len(value)}"
    if "/" not in value and _TICKET_ID.match(value) is not None:
        return None  # one segment: no dot segment or reserved word possible
    if _TICKET_ID.match(value) is None or any(
            part in (".", "..") for part in value.split("/")):
        bad = list(dict.fromkeys(c for c in value if not (
            c.isascii() and (c.isalnum() or c in "._:~+-/"))))
        which = (f"; {', '.join(_char(c) for c in bad[:5])} "
                 f"{'is' if len(bad) == 1 else 'are'} not allowed") if bad else ""
        return (f"{_shown(value)} is not a ticket id: use ASCII letters, digits and "
                f"- _ . : ~ +, starting with a letter or digit, in segments joined by / "
                f"(no empty, . or .. segment){which}")
    reserved = [part for part in value.split("/")[1:] if part in RESERVED_SEGMENTS]
    if reserved:
        return (f"{_shown(value)} is not a ticket id: {reserved[0]!r} may not follow a / "
                f"in an id, it is one of the words used by the HTTP routes after an id "
                f"({', '.join(RESERVED_SEGMENTS)}); name the ticket otherwise, e.g. "
                f"{value.replace('/', '-')!r}")
    return None


def _char(c: str) -> str:
    return f"U+{ord(c):04X}" if not c.isprintable() or c.isspace() else repr(c)


def check_ticket_id(value: object) -> str:
    """Return ``value`` if it is a valid ticket id.

    Raises:
        InvalidFields: with key ``ticket_id``, saying what is wrong.
    """
    problem = ticket_id_problem(value)
    if problem is not None:
        raise InvalidFields(_display_id(value), {"ticket_id": problem})
    assert isinstance(value, str)
    return value


def _display_id(value: object) -> str:
    """A printable stand-in for an id in an error (the id itself may be anything)."""
    if ticket_id_problem(value) is None:
        assert isinstance(value, str)
        return value
    return "(invalid id)"


def _text_problem(value: str, longest: int | None, what: str) -> str | None:
    if longest is not None and len(value) > longest:
        return f"{what} of {len(value):,} characters is longer than the {longest:,} allowed"
    if "\x00" in value:
        return f"{what} contains a NUL character (U+0000); remove it"
    if not value.isascii():  # ASCII always encodes: only other text can hold a surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{what} is not valid Unicode text (a lone surrogate); send UTF-8 text"
    return None


def idempotency_key_problem(key: object, limits: Limits) -> str | None:
    """What is wrong with ``key`` as an idempotency key, or None when it is valid."""
    longest = limits.idempotency_key_length
    if not isinstance(key, str):
        return f"must be text, got {type(key).__name__}"
    if not 1 <= len(key) <= longest:
        return f"must be 1 to {longest} characters, got {len(key)}"
    if _KEY.match(key) is None:
        return ("must be visible ASCII characters (no spaces or control characters), e.g. "
                "a UUID")
    return None


def check_idempotency_key(key: object, limits: Limits | None = None,
                          ticket_id: str = "(new)") -> str:
    """Return ``key`` if it is a valid idempotency key.

    Raises:
        InvalidFields: with key ``idempotency_key``.
    """
    problem = idempotency_key_problem(key, limits or Limits())
    if problem is not None:
        raise InvalidFields(ticket_id, {"idempotency_key": problem})
    assert isinstance(key, str)
    return key


def _actor_problems(actor: Any, errors: dict[str, str]) -> None:
    if actor is None or isinstance(actor, str):
        errors["actor"] = (f"who acts is an Actor(id, role), e.g. Actor('ops-1', 'centre'); "
                           f"got {_shown(actor)}")
        return
    actor_id, role = getattr(actor, "id", None), getattr(actor, "role", None)
    if type(actor_id) is str and type(role) is str:
        found = _actor_text_problems(actor_id, role)  # the same few actors, command after command
    else:
        found = _id_and_role_problems(actor_id, role)
    errors.update(found)


@functools.lru_cache(maxsize=4096)
def _actor_text_problems(actor_id: str, role: str) -> tuple[tuple[str, str], ...]:
    """:func:`_id_and_role_problems` of an id and a role given as text, memoised (pure)."""
    return _id_and_role_problems(actor_id, role)


def _id_and_role_problems(actor_id: object, role: object) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if not isinstance(actor_id, str) or not actor_id.strip():
        out.append(("actor", "the actor id must be non-empty text"))
    elif len(actor_id) > MAX_ACTOR_ID or not actor_id.isprintable():
        out.append(("actor", f"the actor id must be 1 to {MAX_ACTOR_ID} printable characters, "
                             f"got {_shown(actor_id)}"))
    if not isinstance(role, str) or _NAME.match(role) is None:
        out.append(("role", f"the role must be a role name of the lifecycle, got {_shown(role)}"))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _is_name(text: str) -> bool:
    """Whether ``text`` is a trigger or field name (memoised: the same few, again and again)."""
    return _NAME.match(text) is not None


_UNCHECKED: Any = object()
"""check_command's default for ``actor``: not checked (None is checked, and refused)."""


def check_command(
    limits: Limits,
    *,
    ticket_id: object = None,
    actor: Any = _UNCHECKED,
    fields: object = None,
    reason: object = None,
    idempotency_key: object = None,
    trigger: object = None,
    fields_required: bool = False,
) -> None:
    """Check a command's inputs against the id rule and ``limits``; gather every problem.

    Arguments left at None are not checked (a report without ``ticket_id`` gets a generated
    id); ``ticket_id=""`` is checked and refused. ``actor`` is checked whenever it is passed
    (None too: every command has one); ``fields_required``: None fields are refused (a
    report's).

    Args:
        limits: the engine's limits.
        ticket_id: the ticket the command is for (or the id a report asks for).
        actor: the :class:`~engine.Actor` (``id`` up to 128 printable characters, ``role`` a
            name).
        fields: the field values: a mapping of names to values, at most ``limits.fields`` of
            them; text values valid Unicode without NUL. (Their lengths are the field
            declarations' business: :func:`~engine.runtime.fields.check_fields`.)
        reason: free text, at most ``limits.reason_length`` characters.
        idempotency_key: 1 to ``limits.idempotency_key_length`` visible ASCII characters.
        trigger: a trigger name (lower-case ASCII, up to 64 characters).
        fields_required: refuse ``fields`` None (a report's fields: ``{}`` for none).

    Raises:
        InvalidFields: every problem found, keyed by the input's name.
    """
    errors: dict[str, str] = {}
    if ticket_id is not None:
        problem = ticket_id_problem(ticket_id)
        if problem is not None:
            errors["ticket_id"] = problem
    if actor is not _UNCHECKED:
        _actor_problems(actor, errors)
    if trigger is not None and (not isinstance(trigger, str) or not _is_name(trigger)):
        errors["trigger"] = (f"{_shown(trigger)} is not a trigger name (lower-case ASCII "
                             "letters, digits and _)")
    if reason is not None:
        if not isinstance(reason, str):
            errors["reason"] = f"must be text, got {type(reason).__name__}"
        else:
            problem = _text_problem(reason, limits.reason_length, "the reason")
            if problem is not None:
                errors["reason"] = problem
    if idempotency_key is not None:
        problem = idempotency_key_problem(idempotency_key, limits)
        if problem is not None:
            errors["idempotency_key"] = problem
    if fields is not None:
        _field_problems(fields, limits, errors)
    elif fields_required:  # a report's fields: {} for none
        errors["fields"] = "must be a mapping of field names to values ({} for none), got None"
    if errors:
        raise InvalidFields(_display_id(ticket_id) if ticket_id is not None else "(new)",
                            errors)


def _field_problems(values: object, limits: Limits, errors: dict[str, str]) -> None:
    if type(values) is not dict and not isinstance(values, Mapping):  # a dict: no ABC check
        errors["fields"] = ("must be a mapping of field names to values, got "
                            f"{type(values).__name__}")
        return
    if len(values) > limits.fields:
        errors["fields"] = (f"{len(values):,} fields, more than the {limits.fields:,} one "
                            "command may set")
        return
    for name, value in values.items():
        if not isinstance(name, str) or not _is_name(name):
            errors["fields"] = f"{_shown(name)} is not a field name"
        elif isinstance(value, str):
            # lengths: the field's max_length or limits.text_length, by check_fields
            problem = _text_problem(value, None, "the text")
            if problem is not None:
                errors[name] = problem


def check_report(limits: Limits, *, actor: Any, fields: object, ticket_id: object = None,
                 reason: object = None, idempotency_key: object = None) -> None:
    """:func:`check_command` for ``Engine.report`` (``ticket_id`` None: one is generated).

    Raises:
        InvalidFields: every problem found.
    """
    check_command(limits, ticket_id=ticket_id, actor=actor, fields=fields, reason=reason,
                  idempotency_key=idempotency_key, fields_required=True)


def check_fire(limits: Limits, *, ticket_id: object, trigger: object, actor: Any,
               fields: object = None, reason: object = None,
               idempotency_key: object = None) -> None:
    """:func:`check_command` for ``Engine.fire``.

    Raises:
        InvalidFields: every problem found.
    """
    check_command(limits, ticket_id=ticket_id, trigger=trigger, actor=actor, fields=fields,
                  reason=reason, idempotency_key=idempotency_key)


def check_escalate(limits: Limits, *, ticket_id: object, actor: Any, reason: object = None,
                   idempotency_key: object = None) -> None:
    """:func:`check_command` for ``Engine.escalate``.

    Raises:
        InvalidFields: every problem found.
    """
    check_command(limits, ticket_id=ticket_id, actor=actor, reason=reason,
                  idempotency_key=idempotency_key)
