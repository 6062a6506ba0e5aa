"""Pure ASGI middleware: the request body size limit, and the last line for errors.

:class:`BodyLimit`: a request whose ``Content-Length`` is over the limit is answered 413 at
once, without reading its body; a body sent without a length (chunked) is counted as it
arrives and refused once it passes the limit. The limit is :attr:`engine.Limits.body_bytes`
(default 1,000,000 bytes); a ``multipart/form-data`` request (files of evidence) may be as
large as ``multipart_limit`` (the app sets it from the lifecycles' ``evidence.max_bytes``).

:class:`ServerErrors`: an exception no handler took becomes a 500 in the app's error format
and is logged. (Starlette's own last line answers too, but then re-raises, and uvicorn closes
the connection under the answer.)
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import GridwhistleError

__all__ = ["BodyLimit", "BodyTooLarge", "ServerErrors", "too_large"]

log = logging.getLogger("gridwhistle.http")


def too_large(limit: int) -> str:
    """The detail of a 413."""
    return (f"the request body is larger than {limit:,} bytes, the limit of this server; "
            "send less (long text belongs in an attachment's URL)")


class BodyTooLarge(HTTPException, GridwhistleError):
    """A body sent without a length that passed the limit while it was read (413).

    A Starlette ``HTTPException`` first (FastAPI re-raises only those from reading a body,
    and the app's HTTP error handler renders it), and a :class:`~engine.GridwhistleError`.

    Attributes:
        limit: the limit it passed, in bytes.
    """

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(413, too_large(limit))


class BodyLimit:
    """Refuse request bodies larger than ``limit`` bytes with 413.

    Args:
        app: the ASGI app to wrap.
        limit: the largest body accepted, in bytes.
        refuse: builds the 413 response from the request's scope and the limit
            (problem+json, Open311's error list, or a console page).
        multipart_limit: the largest ``multipart/form-data`` body (default: ``limit``).
    """

    def __init__(self, app: ASGIApp, *, limit: int, refuse: Any,
                 multipart_limit: int | None = None):
        self.app = app
        self.limit = limit
        self.refuse = refuse
        self.multipart_limit = max(limit, multipart_limit or limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, answering 413 first if its body is over the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        limit = self.limit
        for name, value in headers:
            if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                limit = self.multipart_limit
        for name, value in headers:
            if name == b"content-length":
                declared = value.decode("latin-1").strip()
                if declared.isdigit() and int(declared) > limit:
                    response = self.refuse(scope, limit)
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI re-raises an HTTPException met while reading the body; the
                    # app's handler renders it as a 413 (problem+json, or a console page).
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class ServerErrors:
    """Answer an exception that escaped every handler with a 500, and log it.

    Args:
        app: the ASGI app to wrap.
        answer: builds the 500 response for a path (problem+json, or Open311's error list).
    """

    def __init__(self, app: ASGIApp, *, answer: Any):
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; on an exception, log it and answer 500 if nothing was sent."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if not started:
                await self.answer(scope["path"])(scope, receive, send)
