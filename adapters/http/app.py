"""The app factory: a FastAPI app over one :class:`~engine.Engine`, no globals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.http import api, departments, open311, reports
from adapters.http.auth import ApiKey, KeyRing
from adapters.http.problems import (
    Problem,
    gridwhistle_error_handler,
    http_error_handler,
    problem_handler,
    validation_handler,
)
from engine import Engine, GridwhistleError, __version__

__all__ = ["create_app"]


def create_app(
    engine: Engine,
    *,
    api_keys: Mapping[str, ApiKey],
    lifecycles: Sequence[str] = ("grid_incident",),
    open311_api: bool = True,
    console: bool = True,
) -> FastAPI:
    """Build the HTTP app for ``engine``.

    Args:
        engine: the engine the app drives (the caller starts and stops it; the app does not).
        api_keys: key → :class:`ApiKey` (actor, role, department).
        lifecycles: the lifecycles the API serves, by name; the first is the default for
            reports and the one Open311 serves. Each is deployed (bundled name) if new.
        open311_api: also serve Open311 GeoReport v2 under ``/open311/v2``.
        console: also serve the command-centre console under ``/console``
            (``docs/console.md``).

    Returns:
        The FastAPI app; its OpenAPI document is at ``/openapi.json``, docs at ``/docs``.

    Raises:
        ValueError: ``lifecycles`` is empty.
        UnknownDefinition, DefinitionError: a lifecycle cannot be loaded.
    """
    if not lifecycles:
        raise ValueError("give at least one lifecycle to serve")
    for name in lifecycles:
        engine.lifecycle(name)  # deploys a bundled lifecycle on first use; fails early
    app = FastAPI(
        title="Gridwhistle",
        version=__version__,
        description="Grid-governance tickets: report, dispatch, escalate. Errors are RFC 9457 "
                    "problem details; authenticate with the X-API-Key header.",
    )
    app.state.engine = engine
    app.state.keys = KeyRing(api_keys)
    app.state.lifecycles = tuple(lifecycles)
    app.add_exception_handler(GridwhistleError, gridwhistle_error_handler)
    app.add_exception_handler(Problem, problem_handler)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(open311.Open311Error, _open311_error)

    @app.get("/health", tags=["meta"], summary="Liveness")
    def health() -> dict[str, str]:
        """``{"status": "ok"}`` while the app runs."""
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(departments.router)
    app.include_router(reports.router)
    if open311_api:
        app.include_router(open311.router)
    if console:
        from adapters.http.console import mount_console

        mount_console(app)
    return app


async def _open311_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, open311.Open311Error)
    return open311.error_response(exc)


async def _validation(request: Request, exc: Exception) -> Response:
    path = request.url.path
    if path.startswith("/open311/"):
        fmt = "xml" if path.endswith(".xml") else "json"
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                           for e in exc.errors())
        return open311.error_response(open311.Open311Error(400, detail, fmt))
    return await validation_handler(request, exc)
