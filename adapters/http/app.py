"""The app factory: a FastAPI app over one :class:`~engine.Engine`, no globals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from adapters.http import api, departments, evidence, open311, oversight, reports
from adapters.http.auth import ApiKey, KeyRing, check_keys
from adapters.http.middleware import BodyLimit, BodyTooLarge, ServerErrors, too_large
from adapters.http.open311 import Open311Privacy
from adapters.http.preconditions import no_if_match
from adapters.http.problems import (
    Problem,
    gridwhistle_error_handler,
    http_error_handler,
    internal_error_response,
    problem_handler,
    problem_response,
    validation_handler,
)
from engine import (
    ConfigurationError,
    Definition,
    Engine,
    GridwhistleError,
    InvalidArgument,
    InvalidArgumentType,
    Limits,
    UnknownDefinition,
    __version__,
    load_definition,
)
from engine.definition.schema import EvidenceSpec, LifecycleSpec

__all__ = ["create_app"]


def create_app(
    engine: Engine,
    *,
    api_keys: Mapping[str, ApiKey] | KeyRing,
    lifecycles: Sequence[str] = ("grid_incident",),
    open311_api: bool = True,
    console: bool = True,
    open311_privacy: Open311Privacy | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """Build the HTTP app for ``engine``.

    Args:
        engine: the engine the app drives (the caller starts and stops it; the app does not).
        api_keys: key → :class:`ApiKey` (actor, role, department); or a :class:`KeyRing`.
        lifecycles: the lifecycles the API serves, by bundled name or YAML path (deployed and
            then served by its name); the first is the default for reports and the one
            Open311 serves. A bundled one is deployed if new.
        open311_api: also serve Open311 GeoReport v2 under ``/open311/v2``.
        console: also serve the command-centre console under ``/console``
            (``docs/console.md``).
        open311_privacy: what Open311 reads show without a key (default
            :class:`Open311Privacy`: no actor ids, roles or reasons).
        limits: the request body limit (``body_bytes``) and the bounds of idempotency keys;
            default: the engine's ``limits`` if it has them, else :class:`~engine.Limits`.

    Returns:
        The FastAPI app; its OpenAPI document is at ``/openapi.json``, docs at ``/docs``.

    Raises:
        InvalidArgumentType: ``engine`` is not an :class:`~engine.Engine` (None, a database
            path), ``api_keys`` is not a mapping of key → :class:`ApiKey` or a
            :class:`KeyRing` (None: no key is accepted), ``lifecycles`` is a single string
            or holds other than names and paths, ``limits`` is not a
            :class:`~engine.Limits`, ``open311_privacy`` not an :class:`Open311Privacy`
            (also a TypeError); nothing was deployed.
        InvalidArgument: ``lifecycles`` is empty (also a ValueError, as before).
        UnknownDefinition, DefinitionError: a lifecycle cannot be loaded.
        ConfigurationError: a served lifecycle's ``routing.work_orders`` names a lifecycle
            that is neither served, deployed nor bundled.
        KeyNotValid: a key's role is not one the served lifecycles (or the work-order
            lifecycles their routing names) declare (``system`` never is), a department
            key names no declared department, or an outside organisation's key no declared
            organisation (:func:`~adapters.http.auth.check_keys`).
    """
    _check_arguments(engine, api_keys, lifecycles, limits, open311_privacy)
    # what each item will serve, deploying nothing yet: a YAML path its file (deployed below,
    # it becomes the current version), a name its current deployed version, else the bundled
    served: list[Definition | str] = [load_definition(item) if Path(item).is_file() else item
                                      for item in lifecycles]
    specs = [item.spec if isinstance(item, Definition) else _current_spec(engine, item)
             for item in served]
    _check_work_order_lifecycles(engine, specs)
    keys = api_keys if isinstance(api_keys, KeyRing) else KeyRing(api_keys)
    # at start, not per request, and before anything is deployed: a key no served lifecycle
    # can give a meaning to (their work-order lifecycles count too: a department key acts on
    # its work orders) refuses the start and leaves the database as it was
    check_keys(keys, specs, load=lambda name: _current_spec(engine, name))
    names = []
    for item in served:
        if isinstance(item, Definition):  # a YAML path: deploy it, serve it by its name
            names.append(engine.deploy(item).name)
        else:
            engine.lifecycle(item)  # deploys a bundled lifecycle on first use
            names.append(item)
    app = FastAPI(
        title="Gridwhistle",
        version=__version__,
        description="Grid-governance tickets: report, dispatch, escalate. Errors are RFC 9457 "
                    "problem details; authenticate with the X-API-Key header.",
    )
    limits = limits or getattr(engine, "limits", None) or Limits()
    app.state.engine = engine
    app.state.keys = keys
    app.state.lifecycles = tuple(names)
    app.state.limits = limits
    app.state.open311_privacy = open311_privacy or Open311Privacy()
    app.add_exception_handler(GridwhistleError, gridwhistle_error_handler)
    app.add_exception_handler(Problem, problem_handler)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(open311.Open311Error, _open311_error)
    largest = max((engine.lifecycle(n).spec.evidence or EvidenceSpec()).max_bytes
                  for n in names)
    app.add_middleware(BodyLimit, limit=limits.body_bytes, refuse=_too_large,
                       multipart_limit=largest + limits.body_bytes)  # a file and its form
    app.add_middleware(ServerErrors, answer=_internal_error)

    @app.get("/health", tags=["meta"], summary="Liveness")
    def health() -> dict[str, str]:
        """``{"status": "ok"}`` while the app runs."""
        return {"status": "ok"}

    # the department routes end in fixed words (/tickets/{id}/work-orders, ...): they go
    # before the API's GET /tickets/{id:path}, whose id may itself hold a '/'
    # their commands cannot be held to a ticket version: If-Match is refused, not ignored
    app.include_router(departments.router, dependencies=[Depends(no_if_match)])
    app.include_router(evidence.router)  # its routes end in fixed words too
    app.include_router(oversight.router, dependencies=[Depends(no_if_match)])  # issue 11
    app.include_router(api.router)
    app.include_router(reports.router)
    if open311_api:
        app.include_router(open311.router)
    if console:
        from adapters.http.console import mount_console

        mount_console(app)
    return app


def _check_work_order_lifecycles(engine: Engine, specs: Sequence[LifecycleSpec]) -> None:
    """Refuse to serve a lifecycle whose routing names a work-order lifecycle nobody has.

    Without this the API starts, and the first ``dispatch`` of a routed ticket fails on the
    missing lifecycle (``routing.work_orders``). A served one, a deployed one or a bundled
    one (deployed on the first dispatch) will do. Deploys nothing.

    Raises:
        ConfigurationError: ``routing.work_orders`` of a served lifecycle is neither served,
            deployed nor bundled.
    """
    names = {spec.name for spec in specs}
    for spec in specs:
        routing = spec.routing
        if routing is None or routing.work_orders in names:
            continue
        try:
            _current_spec(engine, routing.work_orders)
        except UnknownDefinition as exc:
            raise ConfigurationError(
                f"lifecycle {spec.name!r} sends its work orders to lifecycle "
                f"{routing.work_orders!r} (routing.work_orders), which is neither deployed "
                f"nor bundled: serve its YAML file too (--lifecycle {routing.work_orders}"
                f".yaml), deploy it first, or correct routing.work_orders") from exc


def _check_arguments(engine: object, api_keys: object, lifecycles: object, limits: object,
                     privacy: object) -> None:
    """Refuse what :func:`create_app` cannot use, before anything is deployed."""
    if not isinstance(engine, Engine):
        raise InvalidArgumentType("engine", "an engine.Engine", engine,
                                  hint="build one with Engine(database, ...) and pass it; the "
                                       "caller starts and stops it")
    if api_keys is not None and not isinstance(api_keys, KeyRing):  # None: no key (as before)
        if not isinstance(api_keys, Mapping):
            raise InvalidArgumentType("api_keys", "a mapping of key to ApiKey or a KeyRing",
                                      api_keys, hint="e.g. {'the-key': ApiKey(actor='ops-1', "
                                                     "role='centre')}, or "
                                                     "load_api_keys('keys.yaml')")
        for grant in api_keys.values():
            if not isinstance(grant, ApiKey):
                raise InvalidArgumentType("each of api_keys' values", "an ApiKey", grant,
                                          hint="e.g. ApiKey(actor='ops-1', role='centre')")
    if isinstance(lifecycles, str | bytes) or not isinstance(lifecycles, Sequence):
        raise InvalidArgumentType("lifecycles", "a list of lifecycle names or YAML paths",
                                  lifecycles, hint="e.g. lifecycles=['grid_incident']")
    if not lifecycles:
        raise InvalidArgument("lifecycles", "give at least one lifecycle to serve, e.g. "
                                            "lifecycles=['grid_incident']")
    for item in lifecycles:
        if not isinstance(item, str | PurePath):
            raise InvalidArgumentType("each of lifecycles", "a lifecycle name or YAML path",
                                      item)
    if limits is not None and not isinstance(limits, Limits):
        raise InvalidArgumentType("limits", "an engine.Limits", limits,
                                  hint="e.g. Limits(body_bytes=1_000_000)")
    if privacy is not None and not isinstance(privacy, Open311Privacy):
        raise InvalidArgumentType("open311_privacy", "an Open311Privacy", privacy,
                                  hint="e.g. Open311Privacy(reads='key')")


def _current_spec(engine: Engine, name: str) -> LifecycleSpec:
    """The spec a lifecycle served (or dispatched to) by name will have, deploying nothing.

    Its current deployed version, else the bundled one (serving it, or the first dispatch
    to a work-order lifecycle, deploys it).

    Raises:
        UnknownDefinition: neither deployed nor bundled.
    """
    if any(v.name == name for v in engine.versions()):
        return engine.lifecycle(name).spec
    return load_definition(name).spec


def _open311_fmt(path: str) -> str | None:
    """``json`` or ``xml`` for an Open311 path (by its suffix), None for other paths."""
    if not path.startswith("/open311/"):
        return None
    return "xml" if path.endswith(".xml") else "json"


def _console_page(scope: Mapping[str, object]) -> Any:
    """The console's 413 page builder for a console path when the console is served."""
    path = str(scope.get("path", ""))
    if path != "/console" and not path.startswith("/console/"):
        return None
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "console_too_large", None)


def _too_large(scope: Mapping[str, object], limit: int) -> Response:
    page = _console_page(scope)
    if page is not None:  # a console form: a page in its style, not problem+json
        response: Response = page(scope, limit)
        return response
    path = str(scope["path"])
    fmt = _open311_fmt(path)
    if fmt is not None:
        return open311.error_response(open311.Open311Error(413, too_large(limit), fmt))
    return problem_response(413, "http-413", "Content Too Large", too_large(limit), path)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed(request: Request) -> str:
    """Every method some route serves at this path (Starlette names the first route's only)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}),
                                                               "Allow": _allowed(request)})
    if isinstance(exc, BodyTooLarge):  # chunked: the same 413 as a Content-Length one
        return _too_large(request.scope, exc.limit)
    fmt = _open311_fmt(request.url.path)
    if fmt is not None:
        return open311.error_response(open311.Open311Error(exc.status_code, str(exc.detail),
                                                           fmt), headers=exc.headers)
    return await http_error_handler(request, exc)


def _internal_error(path: str) -> Response:
    fmt = _open311_fmt(path)
    if fmt is not None:
        return open311.error_response(open311.Open311Error(
            500, "the server failed to answer this request and logged the error", fmt))
    return internal_error_response(path)


async def _open311_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, open311.Open311Error)
    return open311.error_response(exc, headers=exc.headers)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _not_json(request: Request, exc: RequestValidationError) -> str | None:
    """The media type of a body a JSON route cannot read (``text/plain``), else None.

    FastAPI does not parse a body that is not declared JSON and then reports the model as
    "Input should be a valid dictionary"; the client's mistake is its media type (RFC 9110,
    section 15.5.16: 415). Form types are left to the routes that take forms.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json") or media in _FORMS:
        return None
    if any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
        return media
    return None


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    media = _not_json(request, exc)
    if media is not None and _open311_fmt(request.url.path) is None:
        return problem_response(
            415, "unsupported-media-type", "Unsupported Media Type",
            f"this route takes a JSON body (Content-Type: application/json), not {media[:80]}",
            request.url.path, headers={"Accept-Post": "application/json"},
            media_type=media[:80])
    fmt = _open311_fmt(request.url.path)
    if fmt is not None:
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                           for e in exc.errors())
        return open311.error_response(open311.Open311Error(400, detail, fmt))
    return await validation_handler(request, exc)
