"""Who may change what (issue 11): field permissions and handler-only ladder levels.

Pure rules compiled once per lifecycle version from its ``field_permissions``,
``centre_roles`` and the levels' ``handler_only``; the command handler applies them in the
decide step of every report and transition (Python, CLI, HTTP, Open311, replays: one rule),
before any participant plans anything, and the reads (``Engine.available_triggers``,
``Engine.settable_fields``) ask the same rules.

* **Fields.** A field listed under ``field_permissions`` may be set only by its ``roles`` and
  only with its ``triggers``. A field not listed: if it drives a deadline (the ``at_field`` of
  a deadline or SLA clock) or routes the ticket (:data:`ROUTING_FIELD`), only the centre roles
  may set it; any other, whoever may fire the trigger. ``system`` always may.
* **Handler-only levels.** While a ticket is at a level with ``handler_only: true``, only the
  level's ``handler``, the centre roles and ``system`` may fire triggers on it.

"Setting" a field is giving it a value it does not hold (or clearing it with ``None``); a
command that repeats a field's current value sets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.definition.schema import LifecycleSpec
from engine.errors import FieldNotAllowed, NotTheHandler

__all__ = ["DEFAULT_CENTRE_ROLE", "ROUTING_FIELD", "SYSTEM_ROLE", "FieldRule", "Permissions"]

SYSTEM_ROLE = "system"
DEFAULT_CENTRE_ROLE = "centre"
ROUTING_FIELD = "department"
"""The field that routes a ticket: the departments service writes the lead department into
it on dispatch, and a department's API key sees only the tickets it names."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """Who may set one field.

    ``roles`` (None: whoever may fire the trigger) and ``triggers`` (None: any); ``system``
    may set it whatever the rule.
    """

    roles: frozenset[str] | None
    triggers: frozenset[str] | None

    def allows(self, trigger: str, role: str) -> bool:
        """Whether ``role`` may set the field with ``trigger``."""
        if role == SYSTEM_ROLE:
            return True
        if self.triggers is not None and trigger not in self.triggers:
            return False
        return self.roles is None or role in self.roles


class Permissions:
    """The rules of one lifecycle version (see the module docstring).

    Args:
        spec: the validated lifecycle.
    """

    def __init__(self, spec: LifecycleSpec):
        if spec.centre_roles is not None:
            centre = frozenset(spec.centre_roles)
        else:
            centre = frozenset({DEFAULT_CENTRE_ROLE}) & frozenset(spec.roles)
        self.centre_roles: frozenset[str] = centre
        """The roles acting for the command centre (``system`` aside)."""
        privileged = centre | {SYSTEM_ROLE}
        self.sensitive: frozenset[str] = frozenset(sensitive_fields(spec))
        """Fields that default to the centre roles: deadline instants and the routing field."""
        rules: dict[str, FieldRule] = {}
        for name in spec.fields:
            given = spec.field_permissions.get(name)
            default_roles = privileged if name in self.sensitive else None
            if given is None:
                rules[name] = FieldRule(default_roles, None)
            else:
                roles = (frozenset(given.roles) | {SYSTEM_ROLE} if given.roles is not None
                         else default_roles)
                triggers = frozenset(given.triggers) if given.triggers is not None else None
                rules[name] = FieldRule(roles, triggers)
        self.rules: Mapping[str, FieldRule] = rules
        self.handler_only: Mapping[str, str] = {
            level.name: level.handler for level in spec.levels
            if level.handler_only and level.handler is not None}
        """Level name → its handler role, for the levels marked ``handler_only``."""
        self._privileged = privileged
        self._open = all(r.roles is None and r.triggers is None for r in rules.values())
        self._refused: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}

    # -- fields ---------------------------------------------------------------------------

    def may_set(self, name: str, trigger: str, role: str) -> bool:
        """Whether ``role`` may set field ``name`` with ``trigger``.

        Unknown fields: yes (their value is refused by the field checks).
        """
        rule = self.rules.get(name)
        return rule is None or rule.allows(trigger, role)

    def settable(self, trigger: str, role: str) -> list[str]:
        """The declared fields ``role`` may set with ``trigger``, sorted."""
        return sorted(n for n, r in self.rules.items() if r.allows(trigger, role))

    def refused(self, trigger: str, role: str, names: Iterable[str]) -> list[str]:
        """The fields of ``names`` that ``role`` may not set with ``trigger``, sorted."""
        if self._open or role == SYSTEM_ROLE:
            return []
        key = (trigger, role, tuple(names))
        found = self._refused.get(key)
        if found is None:
            found = sorted({n for n in key[2] if not self.may_set(n, trigger, role)})
            if len(self._refused) < 1024 and all(n in self.rules for n in key[2]):
                self._refused[key] = found  # declared fields only: a bounded memo
        return list(found)

    def check_fields(self, ticket_id: str, trigger: str, role: str,
                     names: Iterable[str]) -> None:
        """Refuse a command that sets fields its role may not set with its trigger.

        Raises:
            FieldNotAllowed: naming every such field, and who may set each.
        """
        refused = self.refused(trigger, role, names)
        if refused:
            raise FieldNotAllowed(ticket_id, trigger, role, refused,
                                  {n: self.who(n) for n in refused},
                                  {n: self.when(n) for n in refused})

    def who(self, name: str) -> list[str]:
        """The roles that may set ``name`` (sorted; empty: whoever may fire the trigger)."""
        rule = self.rules.get(name)
        return sorted(rule.roles) if rule is not None and rule.roles is not None else []

    def when(self, name: str) -> list[str]:
        """The triggers ``name`` may be set with (sorted; empty: any)."""
        rule = self.rules.get(name)
        return sorted(rule.triggers) if rule is not None and rule.triggers is not None else []

    # -- handler-only levels --------------------------------------------------------------

    def handler_refuses(self, level: str, role: str) -> str | None:
        """The handler of ``level`` when it is handler-only and ``role`` may not act there."""
        handler = self.handler_only.get(level)
        if handler is None or role == handler or role in self._privileged:
            return None
        return handler

    def check_handler(self, ticket_id: str, trigger: str, role: str, level: str) -> None:
        """Refuse a command on a ticket at a handler-only level by another role.

        Raises:
            NotTheHandler: the level is handler-only and ``role`` is not its handler, a centre
                role or ``system``.
        """
        if not self.handler_only:  # no handler-only level in this lifecycle: nothing to refuse
            return
        handler = self.handler_refuses(level, role)
        if handler is not None:
            raise NotTheHandler(ticket_id, trigger, role, level, handler,
                                sorted({handler, *self._privileged}))


def sensitive_fields(spec: LifecycleSpec) -> set[str]:
    """The fields that default to the centre roles.

    Every ``at_field`` of a deadline or SLA clock, and the routing field when declared.
    """
    out = {d.at_field for d in spec.deadlines.values() if d.at_field is not None}
    out |= {s.at_field for s in spec.slas.values() if s.at_field is not None}
    if ROUTING_FIELD in spec.fields:
        out.add(ROUTING_FIELD)
    return out & set(spec.fields)


def changed_fields(updates: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The names of ``updates`` (stored forms) whose value differs from ``current``'s."""
    return [n for n, v in updates.items() if current.get(n) != v]
