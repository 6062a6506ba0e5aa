"""The ``{ticket_id:ticket}`` path parameter: a ticket id, ``/`` included, in every route.

A ticket id may hold ``/`` (:mod:`engine.validation`; the Chicago replay's work orders are
``<request>/lead``), so routes cannot take it as one path segment. Starlette's ``path``
convertor would take it, but greedily: ``GET /tickets/T-1/evidence`` would also match
``GET /tickets/{ticket_id:path}`` with id ``T-1/evidence``, and
``POST /tickets/T-1/triggers/dispatch`` the department route
``POST /tickets/{ticket_id:path}/dispatch`` with id ``T-1/triggers``, so which route
answered depended on the order the routes were added in.

This convertor matches what ``path`` matches except a later segment that is one of
:data:`engine.validation.RESERVED_SEGMENTS` — words no ticket id may hold there — so each URL
matches one route whatever the order. Anything else (an id no ticket can have, such as ``a b``)
still reaches the route, which answers 404 ``ticket-not-found``. Importing this module
registers the convertor; :mod:`adapters.http.api` does, before any route is declared.
"""

from __future__ import annotations

import re

from starlette.convertors import Convertor, register_url_convertor

from engine.validation import RESERVED_SEGMENTS

__all__ = ["TicketIdConvertor"]

_WORDS = "|".join(re.escape(w) for w in RESERVED_SEGMENTS)


class TicketIdConvertor(Convertor[str]):
    """One ticket id in a URL path: segments joined by ``/``, none after the first reserved."""

    regex = rf"[^/]*(?:/(?!(?:{_WORDS})(?:/|$))[^/]*)*"

    def convert(self, value: str) -> str:
        """The id as it is (Starlette has already percent-decoded the path)."""
        return value

    def to_string(self, value: str) -> str:
        """The id in a URL (``url_for``): as it is; valid ids need no escaping."""
        return value


register_url_convertor("ticket", TicketIdConvertor())
