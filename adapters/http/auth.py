"""API keys: each key acts as one actor in one role, and a department key for one department.

Keys are given to :func:`~adapters.http.create_app` as a mapping, or loaded from a YAML file
(strict, like lifecycles)::

    keys:
      k-centre-7f3a: {actor: ops-1, role: centre}
      k-water-19c2: {actor: water-3, role: department, department: water}
      k-gw-017:     {actor: gw-017, role: grid_worker}

Callers send the key in the ``X-API-Key`` header (Open311's ``POST requests`` takes it as the
``api_key`` form field, as GeoReport v2 specifies). What a key's role may do is decided by the
lifecycle's role rules; a key with a ``department`` may only read and act on tickets whose
``department`` field is that department.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from adapters.http.problems import Problem
from engine import Actor, Ticket, load_yaml_model

__all__ = ["ApiKey", "KeyRing", "load_api_keys"]


class ApiKey(BaseModel):
    """What a key may act as.

    Attributes:
        actor: the actor id written to history.
        role: a role of the lifecycle.
        department: for department keys, the department they act for.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    actor: str
    role: str
    department: str | None = None

    def as_actor(self) -> Actor:
        """The engine :class:`~engine.Actor` of this key."""
        return Actor(self.actor, self.role)


class _KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keys: dict[str, ApiKey]


def load_api_keys(path: str | Path) -> dict[str, ApiKey]:
    """Read a YAML file of API keys (format in this module's docstring).

    Raises:
        DefinitionError: the file is not valid (file:line: field problems).
        OSError: it cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    return dict(load_yaml_model(text, _KeyFile, file=str(path)).keys)


class KeyRing:
    """Looks keys up in constant time per key and enforces department scope."""

    def __init__(self, keys: Mapping[str, ApiKey]):
        self._keys = dict(keys)

    def find(self, presented: str | None) -> ApiKey | None:
        """The key's grant, or None when it is unknown or missing."""
        if not presented:
            return None
        found = None
        for key, grant in self._keys.items():
            if hmac.compare_digest(key.encode("utf-8"), presented.encode("utf-8")):
                found = grant
        return found

    def require(self, presented: str | None) -> ApiKey:
        """The key's grant.

        Raises:
            Problem: 401 when the key is missing or unknown.
        """
        grant = self.find(presented)
        if grant is None:
            raise Problem(401, "unauthorized",
                          "send a valid API key in the X-API-Key header")
        return grant


def check_scope(grant: ApiKey, ticket: Ticket) -> None:
    """Refuse a department key acting on another department's ticket.

    Raises:
        Problem: 403 ``wrong-department``.
    """
    if grant.department is not None and ticket.fields.get("department") != grant.department:
        raise Problem(403, "wrong-department",
                      f"this key acts for department {grant.department!r}; ticket "
                      f"{ticket.id!r} is not handled by it",
                      ticket_id=ticket.id, department=grant.department)
