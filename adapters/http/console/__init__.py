"""The command-centre console at ``/console``: live board, risk lists, tickets, reports.

:func:`mount_console` adds it to the app :func:`~adapters.http.create_app` builds (on by
default; ``gridwhistle serve`` serves it). Pages are rendered on the server (Jinja2), charts
and state diagrams are SVG drawn on the server (pygal, grandalf), and the only script is the
package's own ``static/console.js`` (live updates by server-sent events, count-downs).
Nothing is loaded from the network: a ``Content-Security-Policy`` of ``'self'`` says so to
the browser. See ``docs/console.md``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from adapters.http.console.routes import _SignIn, router, too_large_page
from adapters.http.console.sessions import SessionStore

__all__ = ["CSP", "mount_console"]

STATIC = Path(__file__).parent / "static"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""Sent with every console page: scripts, styles, fonts and connections from the app only
(pygal's SVG carries inline styles, hence ``'unsafe-inline'`` for styles alone)."""


def mount_console(app: FastAPI) -> None:
    """Serve the console under ``/console`` on ``app`` (keys from ``app.state.keys``)."""
    app.state.console_sessions = SessionStore()
    app.state.console_too_large = too_large_page  # a form over the body limit: a page
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    async def sign_in(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET" or request.url.path == "/console/events":
            return Response("sign in first", status_code=401)
        return RedirectResponse(f"/console/login?next={quote(target)}", 303)

    app.add_exception_handler(_SignIn, sign_in)

    @app.middleware("http")
    async def console_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        if request.url.path.startswith("/console"):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
