"""The lifecycle core: compiled definitions on shared ``transitions`` machines."""

from engine.lifecycle.machine import Lifecycle, Subject
from engine.lifecycle.registry import CommandContext, Registry

__all__ = ["CommandContext", "Lifecycle", "Registry", "Subject"]
