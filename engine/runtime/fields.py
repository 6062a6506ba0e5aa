"""Ticket fields: checked against the lifecycle's ``fields`` declarations, stored as JSON.

Datetime fields are stored as ISO 8601 text in UTC (``2024-05-01T12:00:00+00:00``) and come
back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.definition.schema import FieldSpec

__all__ = ["check_fields", "load_fields"]


def check_fields(
    declared: dict[str, FieldSpec], values: dict[str, Any], *, require: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check ``values`` against ``declared``; return ``(json_ready_values, errors)``.

    Args:
        declared: the lifecycle's field declarations.
        values: field name → value; ``None`` clears a field.
        require: also report required fields that are missing (on report).
    """
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in values.items():
        spec = declared.get(name)
        if spec is None:
            errors[name] = f"unknown field; declared: {', '.join(sorted(declared)) or '(none)'}"
            continue
        if value is None:
            out[name] = None
            continue
        try:
            out[name] = _to_json(spec, value)
        except (ValueError, OverflowError) as exc:  # overflow: an instant beyond year 1..9999
            errors[name] = str(exc)
    if require:
        for name, spec in declared.items():
            if spec.required and (values.get(name) is None or values.get(name) == ""):
                errors[name] = "required when reporting"
    return out, errors


def _to_json(spec: FieldSpec, value: Any) -> Any:
    kind = spec.type
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(spec.choices)}")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    # datetime
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 instant with a zone, got {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected an aware datetime, got {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"instant {value.isoformat()} has no time zone; add one (e.g. +00:00)")
    return value.astimezone(UTC).isoformat()


def load_fields(declared: dict[str, FieldSpec], stored: dict[str, Any]) -> dict[str, Any]:
    """Turn stored JSON field values back into Python values (datetimes for datetime fields)."""
    out = dict(stored)
    for name, value in stored.items():
        spec = declared.get(name)
        if spec is not None and spec.type == "datetime" and isinstance(value, str):
            out[name] = datetime.fromisoformat(value)
    return out
