"""The JSON Schema of the lifecycle format, generated from the pydantic models.

Editors use it for completion and validation while an administrator types (see
``docs/editors.md``); ``workflows/schema.json`` holds the generated copy, kept current by a
test. The schema describes the *shape* of a file (keys, types, name and duration patterns);
the graph checks (names that resolve, reachable states, ...) stay with ``gridwhistle
validate``.
"""

from __future__ import annotations

import json
from typing import Any

from engine.definition.schema import NAME_PATTERN, LifecycleSpec

__all__ = ["SCHEMA_ID", "lifecycle_json_schema", "lifecycle_json_schema_text"]

SCHEMA_ID = "https://gridwhistle.dev/schema/lifecycle-1.json"
"""The schema's ``$id`` (an identifier, not necessarily a reachable address)."""


def lifecycle_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a lifecycle file, as a dict."""
    schema = _names_as_keys(LifecycleSpec.model_json_schema(mode="validation"))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema}


def lifecycle_json_schema_text() -> str:
    """:func:`lifecycle_json_schema` as stable JSON text (2-space indent, newline at the end)."""
    return json.dumps(lifecycle_json_schema(), ensure_ascii=False, indent=2) + "\n"


def _names_as_keys(node: Any) -> Any:
    """Mappings keyed by names (``states``, ``roles``, ...): only name-shaped keys allowed."""
    if isinstance(node, dict):
        out = {k: _names_as_keys(v) for k, v in node.items()}
        if "patternProperties" in out and set(out["patternProperties"]) == {NAME_PATTERN}:
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": NAME_PATTERN}
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_names_as_keys(v) for v in node]
    return node
