"""Webhook endpoints from a YAML file, read strictly like lifecycles.

Format::

    endpoints:
      ops-dashboard:
        url: https://ops.example.org/gridwhistle
        types: [ticket.escalated, deadline.breached]   # default: every event
        secret: change-me                              # signs each request (HMAC-SHA256)
      archive: {url: "http://10.0.0.7:9000/events"}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from adapters.webhooks.worker import Endpoint
from engine import load_yaml_model

__all__ = ["load_endpoints"]


class _EndpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: str = Field(pattern=r"^https?://")
    types: list[str] | None = None
    secret: str | None = None


class _EndpointsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    endpoints: dict[str, _EndpointSpec]


def load_endpoints(path: str | Path) -> list[Endpoint]:
    """Read webhook endpoints from a YAML file (format in this module's docstring).

    Raises:
        DefinitionError: the file is not valid (file:line: field problems).
        OSError: it cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    spec = load_yaml_model(text, _EndpointsFile, file=str(path))
    return [Endpoint(name, e.url, frozenset(e.types) if e.types is not None else None,
                     e.secret) for name, e in spec.endpoints.items()]
