"""Size and complexity limits of definition files (lifecycles, mappings, keys, endpoints).

A definition is edited by people and may come from anywhere (an upload, a pull request), so
loading one is bounded before any costly step: the file's size is checked before it is read,
the YAML node graph (with its aliases counted as written out) before it is walked, and the
number of states, transitions, fields and other entries before the schema runs. Each refusal
is an ordinary :class:`~engine.errors.Problem` (file, line, field path) that names the limit
and how to raise it.

Change a limit for one call with ``parse_definition(text, limits=DefinitionLimits(...))`` or
``load_definition(path, limits=...)``, or for a process (the CLI, ``Engine.deploy``) with the
environment variable ``GRIDWHISTLE_<NAME>`` (``GRIDWHISTLE_MAX_STATES=20000``), read on each
load. The defaults allow a lifecycle of 10,000 states, which loads in about a second.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from engine.errors import ConfigurationError

__all__ = ["SECTION_LIMITS", "DefinitionLimits", "how_to_raise"]


@dataclass(frozen=True)
class DefinitionLimits:
    """The bounds a definition file must keep.

    Attributes:
        max_bytes: the file's size in bytes of UTF-8 (default 4,000,000).
        max_yaml_nodes: YAML values (mappings, lists, scalars) in the document, each alias
            counted as the value it stands for written out (default 1,000,000). This is what
            stops an "alias bomb" (a few lines of nested aliases that stand for billions of
            values).
        max_depth: how deeply mappings and lists may nest (default 32, at most 200; a
            lifecycle needs 6).
        max_states: entries under ``states`` (default 10,000).
        max_transitions: entries under ``transitions`` (default 50,000).
        max_fields: entries under ``fields`` (default 500).
        max_entries: entries of every other named section (``roles``, ``levels``,
            ``deadlines``, ``categories``, ``calendars``, ``slas``, ``lags``, ``periodic``,
            ``departments``, ``routing.rules``; default 5,000 each).
    """

    max_bytes: int = 4_000_000
    max_yaml_nodes: int = 1_000_000
    max_depth: int = 32
    max_states: int = 10_000
    max_transitions: int = 50_000
    max_fields: int = 500
    max_entries: int = 5_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"DefinitionLimits.{f.name} must be a whole number of at least 1, "
                    f"got {value!r}")
        if self.max_depth > 200:
            raise ConfigurationError(
                f"DefinitionLimits.max_depth is at most 200 (the walk is recursive), got "
                f"{self.max_depth}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DefinitionLimits:
        """The defaults, overridden by ``GRIDWHISTLE_MAX_STATES`` and the like.

        Args:
            environ: where to read the variables (default ``os.environ``).

        Raises:
            ConfigurationError: a variable is set to something other than a whole number
                of at least 1.
        """
        env = os.environ if environ is None else environ
        changes: dict[str, int] = {}
        for f in fields(cls):
            var = _env_name(f.name)
            text = env.get(var)
            if text is None or not text.strip():
                continue
            try:
                changes[f.name] = int(text.strip().replace("_", ""))
            except ValueError:
                raise ConfigurationError(
                    f"{var}={text!r} is not a whole number; set it to e.g. 20000 or unset "
                    "it for the default") from None
        return replace(cls(), **changes)


SECTION_LIMITS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("states",), "max_states"),
    (("transitions",), "max_transitions"),
    (("fields",), "max_fields"),
    (("field_permissions",), "max_fields"),
    (("roles",), "max_entries"),
    (("levels",), "max_entries"),
    (("deadlines",), "max_entries"),
    (("categories",), "max_entries"),
    (("calendars",), "max_entries"),
    (("slas",), "max_entries"),
    (("lags",), "max_entries"),
    (("periodic",), "max_entries"),
    (("departments",), "max_entries"),
    (("routing", "rules"), "max_entries"),
)
"""Which section of a lifecycle each count limit bounds (path in the document, limit name)."""


def _env_name(limit: str) -> str:
    return f"GRIDWHISTLE_{limit.upper()}"


def how_to_raise(limit: str) -> str:
    """The sentence telling how to raise ``limit`` (a :class:`DefinitionLimits` field name)."""
    return (f"raise the limit with the environment variable {_env_name(limit)} or "
            f"DefinitionLimits({limit}=...)")
