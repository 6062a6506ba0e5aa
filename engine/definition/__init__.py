"""Lifecycle definitions: YAML in, a validated frozen :class:`Definition` out."""

from engine.definition.limits import DefinitionLimits
from engine.definition.loader import (
    Definition,
    bundled_names,
    bundled_workflows_dir,
    load_definition,
    load_yaml_model,
    parse_definition,
)

__all__ = [
    "Definition",
    "DefinitionLimits",
    "bundled_names",
    "bundled_workflows_dir",
    "load_definition",
    "load_yaml_model",
    "parse_definition",
]
