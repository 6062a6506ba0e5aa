"""Name checks of issue 11's sections.

``centre_roles``, ``field_permissions`` and the levels' ``handler_only``. Each check yields
``(path, message)`` like those of :mod:`engine.definition.checks`, which runs them after its
own (see ``ALL_CHECKS`` there); the loader turns each path into the file's line.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.definition.findings import Finding
from engine.definition.findings import known_names as _known
from engine.definition.schema import LifecycleSpec

__all__ = ["PERMISSION_CHECKS"]



def centre_roles_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """The centre roles are declared roles."""
    for j, role in enumerate(spec.centre_roles or ()):
        if role not in spec.roles:
            yield (("centre_roles", j),
                   f"unknown role {role!r}; {_known('roles', spec.roles)}")


def field_permissions_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """Field permissions name declared fields, roles and triggers (``report`` included)."""
    triggers = {t.trigger for t in spec.transitions} | {"report"}
    for name, rule in spec.field_permissions.items():
        path: tuple[str | int, ...] = ("field_permissions", name)
        if name not in spec.fields:
            yield path, f"unknown field {name!r}; {_known('fields', spec.fields)}"
        for j, role in enumerate(rule.roles or ()):
            if role not in spec.roles:
                yield ((*path, "roles", j),
                       f"unknown role {role!r}; {_known('roles', spec.roles)}")
        for j, trigger in enumerate(rule.triggers or ()):
            if trigger not in triggers:
                yield ((*path, "triggers", j),
                       f"unknown trigger {trigger!r}; {_known('triggers', triggers)}")
        if rule.roles is not None and not rule.roles:
            yield ((*path, "roles"),
                   "an empty list lets nobody but the system set the field; name the roles "
                   "that may, or leave roles out for the default")
        if rule.triggers is not None and not rule.triggers:
            yield ((*path, "triggers"),
                   "an empty list lets the field be set with no trigger; name the triggers, "
                   "or leave triggers out for any")


def handler_only_has_handler(spec: LifecycleSpec) -> Iterator[Finding]:
    """A ``handler_only`` level names its handler."""
    for i, level in enumerate(spec.levels):
        if level.handler_only and level.handler is None:
            yield (("levels", i, "handler_only"),
                   f"level {level.name!r} is handler_only but names no handler; add "
                   "handler: ROLE or remove handler_only")


PERMISSION_CHECKS = (
    centre_roles_resolve,
    field_permissions_resolve,
    handler_only_has_handler,
)
