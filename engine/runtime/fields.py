"""Ticket fields: checked against the lifecycle's ``fields`` declarations, stored as JSON.

Datetime fields are stored as ISO 8601 text in UTC (``2024-05-01T12:00:00+00:00``) and come
back as aware UTC datetimes.

The rules per type (``docs/yaml-reference.md#fields``): text up to the field's
``max_length`` (default :data:`DEFAULT_TEXT_LENGTH` characters) and one of its ``choices``;
whole numbers within ``min``/``max`` and one of the ``choices``, never beyond
±(2**53 − 1) (what every JSON reader reads exactly); numbers finite (NaN and infinities are
refused: JSON has no spelling for them) and within ``min``/``max``.

The department field (:data:`~engine.lifecycle.permissions.ROUTING_FIELD`, ``department``)
must also name a department the lifecycle declares under ``departments``, when it declares
any and the field has no ``choices`` of its own (:func:`undeclared_department`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from engine.definition.schema import FieldSpec, LifecycleSpec
from engine.lifecycle.permissions import ROUTING_FIELD
from engine.validation import DEFAULT_TEXT_LENGTH

__all__ = ["DEFAULT_TEXT_LENGTH", "MAX_SAFE_INTEGER", "check_fields", "load_fields",
           "undeclared_department"]

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest whole number JSON readers (JavaScript's among them) represent exactly."""


def check_fields(
    declared: dict[str, FieldSpec], values: dict[str, Any], *, require: bool,
    text_length: int = DEFAULT_TEXT_LENGTH,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check ``values`` against ``declared``; return ``(json_ready_values, errors)``.

    Args:
        declared: the lifecycle's field declarations.
        values: field name → value; ``None`` clears a field.
        require: also report required fields that are missing (on report).
        text_length: the longest text of a ``string`` field that declares no
            ``max_length`` (characters; the engine passes its ``Limits.text_length``).

    Returns:
        The values ready for the JSON column, and ``{field: message}`` for every value that
        does not fit (empty when all do).
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
            out[name] = _to_json(spec, value, text_length)
        except (ValueError, OverflowError) as exc:  # overflow: an instant beyond year 1..9999
            errors[name] = str(exc)
    if require:
        for name, spec in declared.items():
            if spec.required and (values.get(name) is None or values.get(name) == ""):
                errors[name] = "required when reporting"
    return out, errors


def undeclared_department(spec: LifecycleSpec, values: Mapping[str, Any],
                          names: Iterable[str] | None = None) -> str | None:
    """The department ``values`` name that the lifecycle does not declare, or None.

    The department field is the routing field ``department`` (the one the departments
    service writes the lead into and a department's API key is scoped by); no other field
    names a department. Its value must be one of the lifecycle's ``departments`` when the
    lifecycle declares any and the field declares no ``choices`` (choices are checked as
    choices, by :func:`check_fields`). A lifecycle that declares no departments takes any
    name; so does a cleared field (``None``).

    Args:
        spec: the lifecycle version the command runs on.
        values: the command's field values (stored forms, checked by :func:`check_fields`).
        names: only these of ``values`` (the fields a transition changes); default: all.
    """
    known = spec.departments
    if not known or ROUTING_FIELD not in values:
        return None
    if names is not None and ROUTING_FIELD not in names:
        return None
    field = spec.fields.get(ROUTING_FIELD)
    value = values[ROUTING_FIELD]
    if field is None or field.choices is not None or value is None or value in known:
        return None
    return str(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


def _to_json(spec: FieldSpec, value: Any, text_length: int) -> Any:
    kind = spec.type
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {_shown(value)}")
        longest = spec.max_length if spec.max_length is not None else text_length
        if len(value) > longest:
            raise ValueError(f"text of {len(value):,} characters is longer than the "
                             f"{longest:,} this field allows")
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"{_shown(value)} is not one of "
                             f"{', '.join(str(c) for c in spec.choices)}")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {_shown(value)}")
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{_shown(value)} is too large; whole numbers are at most "
                             f"{MAX_SAFE_INTEGER:,} either way")
        _in_range(spec, value)
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"{value} is not one of "
                             f"{', '.join(str(c) for c in spec.choices)}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {_shown(value)}")
        if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"{_shown(value)} is too large for a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number; NaN and infinities are "
                             "refused (JSON cannot carry them)")
        _in_range(spec, value)
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


def _in_range(spec: FieldSpec, value: float) -> None:
    if spec.min is not None and value < spec.min:
        raise ValueError(f"{value} is less than the minimum {spec.min}")
    if spec.max is not None and value > spec.max:
        raise ValueError(f"{value} is more than the maximum {spec.max}")


def load_fields(declared: dict[str, FieldSpec], stored: dict[str, Any]) -> dict[str, Any]:
    """Turn stored JSON field values back into Python values (datetimes for datetime fields).

    Args:
        declared: the lifecycle's field declarations.
        stored: field name → its stored (JSON) value.

    Returns:
        A new dict: ``stored`` with the ISO text of each datetime field as an aware datetime.
    """
    found = _DATETIME_FIELDS.get(id(declared))
    names = found[1] if found is not None and found[0] is declared else _datetime_fields(declared)
    out = dict(stored)
    for name in names:
        value = stored.get(name)
        if isinstance(value, str):
            out[name] = datetime.fromisoformat(value)
    return out


_DATETIME_FIELDS: dict[int, tuple[dict[str, FieldSpec], tuple[str, ...]]] = {}
"""id(declarations) → (the declarations, their datetime fields): every command loads the
fields of a ticket (twice) and its lifecycle has few datetime fields, so only those are
looked at. The declarations are kept with their answer (an id is reused only once its
object is gone); bounded, as there are few lifecycle versions."""


def _datetime_fields(declared: dict[str, FieldSpec]) -> tuple[str, ...]:
    """The names of the datetime fields of ``declared``, kept in :data:`_DATETIME_FIELDS`."""
    if len(_DATETIME_FIELDS) >= 1024:
        _DATETIME_FIELDS.clear()
    names = tuple(n for n, spec in declared.items() if spec.type == "datetime")
    _DATETIME_FIELDS[id(declared)] = (declared, names)
    return names
