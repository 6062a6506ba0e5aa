"""Signing in to the console: an API key exchanged for an HttpOnly session cookie.

The console accepts the same keys as the JSON API (:class:`~adapters.http.auth.KeyRing`), with
the same role and department scope:

* ``X-API-Key`` header (tools, tests): every request carries the key; no session, no CSRF
  token needed (a browser cannot send that header cross-site without CORS, which the app
  does not allow).
* Sign-in form: ``POST /console/login`` with the key creates a session (random 256-bit id
  kept in memory, never the key) and sets cookie ``gw_session`` (``HttpOnly``,
  ``SameSite=Strict``, ``Path=/console``; ``Secure`` when the request came over HTTPS).
  Every form of a session carries its CSRF token (``csrf`` field), compared in constant time.
  The sign-in form itself is protected by a double-submit token (cookie ``gw_login`` and a
  form field). Sessions last :data:`SESSION_SECONDS` and end on sign-out or server restart.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from adapters.http.auth import ApiKey, KeyRing
from adapters.http.problems import Problem

__all__ = ["COOKIE", "LOGIN_COOKIE", "SESSION_SECONDS", "Session", "SessionStore", "Who",
           "check_csrf", "who"]

COOKIE = "gw_session"
LOGIN_COOKIE = "gw_login"
SESSION_SECONDS = 12 * 3600
"""A session ends 12 hours after sign-in (a shift)."""


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its grant, CSRF token and expiry (``time.monotonic`` seconds)."""

    grant: ApiKey
    csrf: str
    expires: float


@dataclass(frozen=True)
class Who:
    """Who is asking: the key's grant, and the session when it came by cookie."""

    grant: ApiKey
    session: Session | None


class SessionStore:
    """Sessions in memory, by id (thread-safe)."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, grant: ApiKey) -> tuple[str, Session]:
        """A new session for ``grant``: ``(session id, session)``."""
        sid = secrets.token_urlsafe(32)
        session = Session(grant, secrets.token_urlsafe(32), time.monotonic() + SESSION_SECONDS)
        with self._lock:
            now = time.monotonic()
            for old in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[old]
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session with id ``sid``, or None."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires < time.monotonic():
                del self._sessions[sid]
                return None
        return session

    def end(self, sid: str | None) -> None:
        """Forget session ``sid`` (sign-out)."""
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)


def who(request: Request) -> Who | None:
    """The requester's grant: from ``X-API-Key``, else the session cookie; None if neither.

    Raises:
        Problem: 401 when an ``X-API-Key`` header is sent but unknown.
    """
    keys: KeyRing = request.app.state.keys
    header = request.headers.get("x-api-key")
    if header is not None:
        return Who(keys.require(header), None)
    store: SessionStore = request.app.state.console_sessions
    session = store.get(request.cookies.get(COOKIE))
    return Who(session.grant, session) if session is not None else None


def check_csrf(requester: Who, token: str | None) -> None:
    """Refuse a cookie-authenticated form without its session's CSRF token.

    Raises:
        Problem: 403 ``csrf``.
    """
    if requester.session is None:
        return  # X-API-Key: not sent by browsers on their own
    if not token or not hmac.compare_digest(token.encode(), requester.session.csrf.encode()):
        raise Problem(403, "csrf", "the form's CSRF token is missing or wrong; reload the page "
                      "and submit again")
