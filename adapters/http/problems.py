"""Errors as RFC 9457 problem details (``application/problem+json``).

Every typed Gridwhistle error becomes a problem whose ``type`` names the error
(``urn:gridwhistle:problem:trigger-not-allowed``), whose ``title`` is the error class, whose
``detail`` is its message (what to do next) and which carries the error's data as extension
members (``ticket_id``, ``state``, ``trigger``, ``allowed``, ``role``, ``allowed_roles``,
``guards``, ``errors``, ...). Source: RFC 9457 "Problem Details for HTTP APIs", sections 3
and 3.2 (extension members).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import (
    CommandRefused,
    ConcurrencyConflict,
    ConfigurationError,
    DefinitionError,
    EvidenceInvalid,
    EvidenceMissing,
    EvidenceRejected,
    FieldNotAllowed,
    GridwhistleError,
    GuardRejected,
    HostCallbackFailed,
    InvalidFields,
    NotTheHandler,
    RoleNotAllowed,
    TicketExists,
    TicketNotFound,
    TopLevelReached,
    TriggerNotAllowed,
    UnknownDefinition,
    UnknownDepartment,
    UnknownOrganisation,
    UnknownTrigger,
    UnknownValue,
)

__all__ = ["PROBLEM_JSON", "Problem", "problem_response", "status_of"]

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[Exception], int]] = [
    (TicketNotFound, 404),
    (UnknownDefinition, 404),
    (TicketExists, 409),
    (UnknownTrigger, 404),  # declared nowhere in the lifecycle: a wrong URL, not a state
    (TriggerNotAllowed, 409),
    (TopLevelReached, 409),
    (ConcurrencyConflict, 409),
    (RoleNotAllowed, 403),
    (FieldNotAllowed, 403),  # issue 11: field permissions
    (NotTheHandler, 403),  # issue 11: a handler-only ladder level
    (GuardRejected, 422),
    (InvalidFields, 422),
    (HostCallbackFailed, 422),
    (DefinitionError, 422),
    (UnknownDepartment, 422),
    (EvidenceMissing, 422),
    (EvidenceInvalid, 422),
    (EvidenceRejected, 422),
    (UnknownOrganisation, 422),
    (UnknownValue, 422),  # a list filter nothing declares (GET /tickets?state=nosuch)
    (CommandRefused, 409),
    (ConfigurationError, 500),
]

_DATA_ATTRIBUTES = ("ticket_id", "state", "trigger", "allowed", "role", "allowed_roles",
                    "guards", "errors", "level", "callback", "expected_version",
                    "actual_version", "name", "known")


class Problem(GridwhistleError):
    """An HTTP problem raised by the adapter itself (authentication, department scope).

    A :class:`~engine.GridwhistleError` like every error Gridwhistle raises; the app renders
    it with its own handler (its ``status``, ``slug`` and ``headers``), which Starlette picks
    before the one for every Gridwhistle error (the most derived class registered wins).

    Args:
        status: the HTTP status code.
        slug: the last part of the ``type`` URN (``unauthorized``).
        detail: what went wrong and what to do.
        title: the problem's title (default: from the slug, ``Unauthorized``).
        headers: response headers to send with it (e.g. a 412's ``ETag``).
        extra: extension members.
    """

    def __init__(self, status: int, slug: str, detail: str, *, title: str | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any):
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or slug.replace("-", " ").capitalize()
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(detail)


def _slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def status_of(exc: GridwhistleError) -> int:
    """The HTTP status for a Gridwhistle error (see the table in ``docs/http.md``)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def problem_response(
    status: int, slug: str, title: str, detail: str, instance: str | None = None,
    headers: Mapping[str, str] | None = None, **extra: Any,
) -> JSONResponse:
    """A problem+json response (``headers``: extra response headers, e.g. ``Allow``)."""
    body: dict[str, Any] = {"type": f"urn:gridwhistle:problem:{slug}", "title": title,
                            "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if k not in body})
    out = dict(headers or {})
    if status == 401:
        out["WWW-Authenticate"] = "ApiKey"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=out or None)


def jsonable(value: Any) -> Any:
    """``value`` as JSON.

    Instants as ISO 8601, durations as seconds, tuples and sets as lists, anything else
    unknown as its text.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    return str(value)


def error_data(exc: GridwhistleError) -> dict[str, Any]:
    """The error's data as JSON-ready extension members: its public attributes.

    Every attribute an error sets on itself whose name does not start with ``_`` (the typed
    errors document them: ``earliest`` of ``MinimumLagNotReached``, ``next_opening`` of
    ``OutsideWorkingHours``, ``parent_id`` and ``department`` of ``BounceNeedsApproval``,
    ...), plus the known data attributes of older errors.
    """
    data: dict[str, Any] = {}
    names = [*_DATA_ATTRIBUTES, *(n for n in vars(exc) if not n.startswith("_"))]
    for attr in names:
        if hasattr(exc, attr) and attr not in data:
            data[attr] = jsonable(getattr(exc, attr))
    if isinstance(exc, DefinitionError):
        data["problems"] = [str(p) for p in exc.problems]
    return data


async def gridwhistle_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Render a :class:`~engine.GridwhistleError` as problem+json."""
    assert isinstance(exc, GridwhistleError)
    name = type(exc).__name__
    return problem_response(status_of(exc), _slug(name), name, str(exc), request.url.path,
                            **error_data(exc))


async def problem_handler(request: Request, exc: Exception) -> JSONResponse:
    """Render the adapter's own :class:`Problem`."""
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.slug, exc.title, exc.detail, request.url.path,
                            headers=exc.headers, **exc.extra)


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """Render a request that does not match the API's schema (422) as problem+json."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    return problem_response(422, "request-validation", "Request validation failed",
                            "the request does not match the API's schema; see errors",
                            request.url.path, errors=errors)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Render Starlette's own HTTP errors (404 route, 405 method, ...) as problem+json.

    The error's headers are kept: a 405 carries ``Allow`` (RFC 9110, section 15.5.6).
    """
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(exc.status_code, f"http-{exc.status_code}", str(exc.detail),
                            str(exc.detail), request.url.path, headers=exc.headers)


def internal_error_response(path: str) -> JSONResponse:
    """The 500 problem+json for an unexpected error (the traceback goes to the log only)."""
    return problem_response(500, "internal-error", "Internal server error",
                            "the server failed to answer this request and logged the error; a "
                            "command may or may not have been applied: read the ticket, or "
                            "retry with the same Idempotency-Key", path)
