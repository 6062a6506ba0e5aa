"""Optimistic locking over HTTP: a ticket's ``ETag`` and the ``If-Match`` of a command.

A ticket's ``ETag`` is its ``row_version`` as a strong entity tag (``"3"``; RFC 9110,
section 8.8.3). A client that read version 3 and decides on it sends ``If-Match: "3"`` with
its command; the route passes 3 to the engine as ``expected_version``, which writes only if
the ticket is still at version 3 (``UPDATE … WHERE row_version = 3``). Otherwise nothing is
applied and the answer is **412 Precondition Failed** (RFC 9110, section 13.1.1), a
``concurrency-conflict`` problem carrying ``expected_version`` and ``actual_version``, with
the ticket's current ``ETag``. Without ``If-Match`` two commands that race still cannot both
write: the loser gets the engine's own 409 ``ConcurrencyConflict``.

Accepted forms: ``"3"``, a list ``"3", "4"`` (any one may match), ``*`` (the ticket exists).
A weak tag (``W/"3"``) never matches (If-Match compares strongly), nor does a tag that is not
a version (``"abc"``): both are a 412. Anything that is not an entity tag at all (``3``
unquoted, ``"3``) is a 400 ``invalid-if-match``.

Commands that the engine cannot hold to a version (the department, oversight and call-back
routes) refuse ``If-Match`` with a 400 ``if-match-not-supported`` rather than ignore it.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request, Response

from adapters.http.problems import Problem
from engine import ConcurrencyConflict, Ticket

__all__ = ["IfMatch", "IfMatchDep", "conflict", "etag", "expected_version",
           "no_if_match", "set_etag"]

_ETAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')


def etag(ticket: Ticket) -> str:
    """The ticket's entity tag: its row version, quoted (``"3"``)."""
    return f'"{ticket.row_version}"'


def set_etag(response: Response, ticket: Ticket) -> None:
    """Put the ticket's ``ETag`` on ``response``."""
    response.headers["ETag"] = etag(ticket)


class IfMatch:
    """A parsed ``If-Match``: ``any`` (``*``) or the strong tags' values."""

    def __init__(self, raw: str, any_: bool, strong: tuple[str, ...]):
        self.raw = raw
        self.any = any_
        self.strong = strong


def parse_if_match(raw: str) -> IfMatch:
    """``If-Match`` per RFC 9110, section 13.1.1: ``*`` or a comma-separated entity-tag list.

    Raises:
        Problem: 400 ``invalid-if-match`` when it is neither.
    """
    if raw.strip() == "*":
        return IfMatch(raw, True, ())
    strong: list[str] = []
    rest = raw
    while True:
        m = _ETAG.match(rest)
        if m is None:
            raise Problem(400, "invalid-if-match",
                          f"If-Match must be * or entity tags such as \"3\" (the ticket's "
                          f"ETag, quoted), got {raw[:80]!r}; read the ticket (GET "
                          "/tickets/{id}) and send its ETag as it is")
        if m.group(1) is None:
            strong.append(m.group(2))
        rest = rest[m.end():]
        if not rest:
            return IfMatch(raw, False, tuple(strong))
        if not rest.startswith(","):
            raise Problem(400, "invalid-if-match",
                          f"If-Match entity tags are separated by commas, got {raw[:80]!r}")
        rest = rest[1:]


def _if_match(if_match: Annotated[str | None, Header(
        description="Apply the command only if the ticket is still at this version: its "
                    "ETag from a read or an earlier command (e.g. \"3\"). A stale version "
                    "is a 412 concurrency-conflict and nothing is applied; a value that is "
                    "not an entity tag is a 400.",
        json_schema_extra={"examples": ['"3"']})] = None) -> IfMatch | None:
    return None if if_match is None else parse_if_match(if_match)


IfMatchDep = Annotated[IfMatch | None, Depends(_if_match)]


def expected_version(if_match: IfMatch | None, current: Ticket) -> int | None:
    """The ``expected_version`` to give the engine for a command on ``current``.

    None without ``If-Match`` or with ``*``; the current version when one of the tags names
    it (the engine then writes only if it is still so); else the version the first tag
    names, for the engine to refuse — unless the command is a retry with the same
    ``Idempotency-Key``, which answers the first result again.

    Raises:
        Problem: 412 ``concurrency-conflict`` when no tag is a version at all.
    """
    if if_match is None or if_match.any:
        return None
    if str(current.row_version) in if_match.strong:
        return current.row_version
    asked = next((int(t) for t in if_match.strong if t.isdigit() and len(t) < 19), None)
    if asked is None:
        raise _precondition_failed(current.id, None, current.row_version)
    return asked


def _precondition_failed(ticket_id: str, expected: int | None, actual: int | None) -> Problem:
    return Problem(
        412, "concurrency-conflict",
        f"ticket {ticket_id!r} is at version {actual}, not the version If-Match names "
        f"({expected if expected is not None else 'none of them'}); read it again (GET "
        "/tickets/{id}), decide on what it is now and send its new ETag",
        title="ConcurrencyConflict", headers={"ETag": f'"{actual}"'} if actual else None,
        ticket_id=ticket_id, expected_version=expected, actual_version=actual)


def conflict(exc: ConcurrencyConflict) -> Problem:
    """A conflict the engine found while writing a command sent with ``If-Match``: 412."""
    return _precondition_failed(exc.ticket_id, exc.expected_version, exc.actual_version)


def no_if_match(request: Request, if_match: Annotated[str | None, Header(
        description="Not supported here: this command cannot be held to a ticket version; "
                    "sending it is a 400.")] = None) -> None:
    """Refuse ``If-Match`` on a command the engine cannot hold to a version (never ignore it).

    Raises:
        Problem: 400 ``if-match-not-supported``.
    """
    if if_match is not None and request.method not in ("GET", "HEAD"):
        raise Problem(400, "if-match-not-supported",
                      "this command cannot be held to a ticket version, so If-Match cannot "
                      "be honoured here; send it without If-Match, or use POST "
                      "/tickets/{id}/triggers/{trigger}, which takes it")
