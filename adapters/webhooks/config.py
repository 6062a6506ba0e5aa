"""Webhook endpoints from a YAML file, read strictly like lifecycles.

Format::

    allowed_hosts: [ops.example.org, "*.internal.example.org", 10.0.0.7]   # optional
    endpoints:
      ops-dashboard:
        url: https://ops.example.org/gridwhistle
        types: [ticket.escalated, deadline.breached]   # default: every event
        secret_env: GRIDWHISTLE_WEBHOOK_SECRET_OPS     # the secret, from the environment
      archive:
        url: "http://10.0.0.7:9000/events"
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw  # or written here (keep the file private)

Every endpoint has exactly one of ``secret`` (a ``whsec_`` secret) or ``secret_env`` (the
name of an environment variable holding one). With ``allowed_hosts``, an endpoint whose URL
points elsewhere is refused at its line. ``--webhook NAME=URL`` on the command line takes its
secret from ``GRIDWHISTLE_WEBHOOK_SECRET_<NAME>`` (:func:`secret_variable`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.webhooks.worker import Endpoint, check_secret, host_allowed
from engine import EVENT_TYPES, ConfigurationError, DefinitionError, Problem, load_yaml_model
from engine.definition.loader import read_text

__all__ = ["endpoint_from_option", "load_endpoints", "secret_variable"]


class _EndpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: str = Field(pattern=r"^https?://")
    types: list[str] | None = None
    secret: str | None = None
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class _EndpointsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    allowed_hosts: list[str] | None = None
    endpoints: dict[str, _EndpointSpec]


_KIND = re.compile(r"^ticket\.[a-z][a-z0-9_]*$")


def _type_problem(event_type: str) -> str | None:
    """Why an endpoint's ``types`` entry would never match an event (None: it may).

    An event's type is one of :data:`~engine.EVENT_TYPES`, or ``ticket.<kind>`` for any
    other history kind (docs/events.md). A name outside those forms, or one a letter or two
    away from a listed type (``ticket.escalate``), is a typo that would silently receive
    nothing.
    """
    if event_type in EVENT_TYPES:
        return None
    close = difflib.get_close_matches(event_type, EVENT_TYPES, n=1, cutoff=0.85)
    if close:
        return f"{event_type!r} is not an event type; did you mean {close[0]!r}?"
    if _KIND.match(event_type):
        return None  # ticket.<kind>: a history kind (suspended, supervision_notice, ...)
    return (f"{event_type!r} is not an event type: use one of {', '.join(EVENT_TYPES)}, "
            "or ticket.<kind> for another history kind (docs/events.md)")


def secret_variable(name: str) -> str:
    """The environment variable holding endpoint ``name``'s secret for ``--webhook``."""
    return "GRIDWHISTLE_WEBHOOK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _line_of(text: str, name: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s+['\"]?{re.escape(name)}['\"]?\s*:", line):
            return i
    return 1


def load_endpoints(path: str | Path, environ: Mapping[str, str] | None = None
                   ) -> list[Endpoint]:
    """Read webhook endpoints from a YAML file (format in this module's docstring).

    Args:
        path: the file.
        environ: where ``secret_env`` variables are read (default ``os.environ``).

    Raises:
        DefinitionError: the file is not valid (file:line: field problems), an endpoint has
            no usable secret, or a host is not allowed.
        FileNotReadable: it is missing, a directory or cannot be read (also an OSError).
    """
    env = os.environ if environ is None else environ
    try:
        # UTF-8 (a byte-order mark allowed), else a clear error
        text = read_text(Path(path), what="webhooks file")
        spec = load_yaml_model(text, _EndpointsFile, file=str(path))
    except DefinitionError as exc:  # said of a lifecycle: name the webhooks file
        raise DefinitionError(exc.problems, kind="webhooks") from None
    problems: list[Problem] = []
    out: list[Endpoint] = []
    for name, e in spec.endpoints.items():
        where = f"endpoints.{name}"
        line = _line_of(text, name)
        if (e.secret is None) == (e.secret_env is None):
            problems.append(Problem(str(path), line, where, (
                "give exactly one of secret (whsec_...) or secret_env (an environment "
                "variable holding it); make a secret with `gridwhistle webhooks secret`")))
            continue
        secret = e.secret if e.secret is not None else env.get(e.secret_env or "")
        if secret is None:
            problems.append(Problem(str(path), line, f"{where}.secret_env", (
                f"the environment variable {e.secret_env} is not set; set it to the "
                "endpoint's whsec_ secret")))
            continue
        try:
            check_secret(secret, name)
        except ConfigurationError as exc:
            problems.append(Problem(str(path), line, f"{where}.secret", str(exc)))
            continue
        host = httpx.URL(e.url).host
        if spec.allowed_hosts is not None and not host_allowed(host, spec.allowed_hosts):
            problems.append(Problem(str(path), line, f"{where}.url", (
                f"host {host!r} is not in allowed_hosts "
                f"({', '.join(spec.allowed_hosts) or 'none'})")))
            continue
        wrong = [t for t in e.types or () if _type_problem(t) is not None]
        if wrong:
            problems.append(Problem(str(path), line, f"{where}.types",
                                    "; ".join(str(_type_problem(t)) for t in wrong)))
            continue
        out.append(Endpoint(name, e.url, frozenset(e.types) if e.types is not None else None,
                            secret))
    if problems:
        raise DefinitionError(problems, kind="webhooks")
    return out


def endpoint_from_option(spec: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """``NAME=URL`` (the ``--webhook`` option) → an :class:`Endpoint` with its secret.

    The secret comes from the environment variable :func:`secret_variable` (``NAME`` in
    capitals, other characters as ``_``), never from the command line, where other users of
    the machine could read it.

    Raises:
        ConfigurationError: not ``NAME=http(s)://...``, or the variable is not set.
    """
    env = os.environ if environ is None else environ
    name, sep, url = spec.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--webhook {spec!r}: write NAME=http://host/path")
    variable = secret_variable(name)
    secret = env.get(variable)
    if not secret:
        raise ConfigurationError(
            f"--webhook {name}: set the endpoint's signing secret in the environment "
            f"variable {variable} (make one with `gridwhistle webhooks secret`)")
    return Endpoint(name, url, None, secret)
