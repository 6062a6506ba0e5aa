"""Host callbacks by name: guards and actions that lifecycle files refer to.

Nothing in a YAML file is evaluated or imported. A file names a guard (``guards: [has_photo]``)
and the host app registers a Python callable under that name; loading a lifecycle that names
an unregistered callback is a definition problem. Listeners (called with each domain event
after it committed) are registered by name the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.errors import ConfigurationError

__all__ = ["CommandContext", "Registry"]


@dataclass
class CommandContext:
    """What a guard or action sees about the command being applied.

    Attributes:
        ticket_id: the ticket's id.
        trigger: the trigger being fired.
        source: the state before the transition.
        dest: the state after it (for guards: the candidate destination).
        level: the ticket's whistle level.
        fields: the ticket's fields after this command's updates (a dict; actions may read it).
        actor: who fires (a free-form id), ``role``: the role they act in.
        reason: the reason given, or None.
        now: the instant of the command (aware UTC).
        internal: set when the transition taken is ``internal`` (it stays in its state
            without leaving it: the state's deadlines are not restarted).
    """

    ticket_id: str
    trigger: str
    source: str
    dest: str
    level: str
    fields: dict[str, Any]
    actor: str
    role: str
    reason: str | None
    now: datetime
    failed_guards: list[str] = field(default_factory=list)
    internal: bool = False


Guard = Callable[[CommandContext], bool]
Action = Callable[[CommandContext], None]
Listener = Callable[[Any], None]
"""Called with a :class:`~engine.events.DomainEvent` after the change committed."""


class Registry:
    """Named guards and actions supplied by the host app.

    Example::

        registry = Registry()
        registry.guard("has_photo")(lambda ctx: bool(ctx.fields.get("photo")))
    """

    def __init__(self) -> None:
        self.guards: dict[str, Guard] = {}
        self.actions: dict[str, Action] = {}
        self.listeners: dict[str, tuple[Listener, frozenset[str] | None]] = {}

    def guard(self, name: str) -> Callable[[Guard], Guard]:
        """Register ``fn(ctx) -> bool`` as guard ``name`` (decorator).

        Raises:
            ConfigurationError: ``name`` is already registered.
        """

        def register(fn: Guard) -> Guard:
            if name in self.guards:
                raise ConfigurationError(f"guard {name!r} is already registered")
            self.guards[name] = fn
            return fn

        return register

    def action(self, name: str) -> Callable[[Action], Action]:
        """Register ``fn(ctx) -> None`` as action ``name`` (decorator), run after the state change.

        An action that raises refuses the whole command: nothing is written.

        Raises:
            ConfigurationError: ``name`` is already registered.
        """

        def register(fn: Action) -> Action:
            if name in self.actions:
                raise ConfigurationError(f"action {name!r} is already registered")
            self.actions[name] = fn
            return fn

        return register

    def listener(
        self, name: str, *, types: Sequence[str] | None = None
    ) -> Callable[[Listener], Listener]:
        """Register ``fn(event) -> None`` as listener ``name`` (decorator).

        It is called in process with each :class:`~engine.events.DomainEvent` after the
        change committed (so it cannot refuse it); an exception is logged, not raised.

        Args:
            name: the listener's name (unique in this registry).
            types: only these event types (e.g. ``["ticket.escalated"]``); None: all.

        Raises:
            ConfigurationError: ``name`` is already registered.
        """

        def register(fn: Listener) -> Listener:
            if name in self.listeners:
                raise ConfigurationError(f"listener {name!r} is already registered")
            self.listeners[name] = (fn, frozenset(types) if types is not None else None)
            return fn

        return register
