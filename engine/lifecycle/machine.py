"""A compiled lifecycle: one shared ``transitions`` Machine per definition version.

This is the only module that touches the ``transitions`` library. The Machine is built once
with ``model=None``; a stored ticket is *bound* to it by wrapping its state in a tiny
:class:`Subject` and firing ``Event.trigger(subject, ...)``, so there is no Machine and no
``add_model`` per ticket. ``queued=False`` keeps the shared machine free of a machine-wide
queue. Guards and actions are callables from the host's :class:`Registry`; the Machine is
never handed a string it could import.

A command is run by the library's own :meth:`transitions.Transition.execute` on the
candidates ``transitions`` keeps for the ticket's state and trigger, with an
:class:`~transitions.EventData` built here (see :meth:`Lifecycle.fire`): the Machine's
conditions (role, guards) and callbacks (actions, the internal marker) run exactly as
``Event.trigger`` would run them; what is skipped is the per-event dispatch around them
(a partial, the machine's event queue check, the state lookup and the machine-wide
prepare/finalize/exception callbacks, which this Machine never has).

A *pure* transition — the first candidate for its state and trigger has no conditions and
no callbacks, nor have the states it leaves and enters or the Machine — would only set the
state: :meth:`Lifecycle.pure_dest` gives its destination, read from the Machine's own
transition table once, and the command handler takes it without firing (no host code
could run, nothing could refuse). :meth:`Lifecycle.fire` always runs the library's
``Transition.execute``; ``tests/test_command_path.py`` checks, for every route of every
bundled lifecycle, that a pure route's destination is where it lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Event, EventData, Machine, State, Transition

from engine.calendars import compile_calendars
from engine.definition.loader import Definition
from engine.definition.schema import DeadlineSpec, TransitionSpec
from engine.definition.yaml_source import parse_yaml
from engine.errors import (
    DefinitionError,
    GuardRejected,
    HostCallbackFailed,
    Problem,
    RoleNotAllowed,
    TriggerNotAllowed,
    UnknownTrigger,
)
from engine.lifecycle.permissions import Permissions
from engine.lifecycle.registry import CommandContext, Registry

__all__ = ["Lifecycle", "Route", "Subject"]


class Subject:
    """The object a shared Machine moves: just a state name (``transitions`` sets ``.state``)."""

    __slots__ = ("state",)

    def __init__(self, state: str):
        self.state = state


class Route:
    """What a trigger fired from a state by a role may do: the same for every ticket.

    Memoised per ``(state, trigger, role)`` by :meth:`Lifecycle.route`; a command reads it
    instead of asking the lifecycle again.

    Attributes:
        candidates: the transitions the role may take, in file order (never empty).
        reason_required: one of them requires a reason.
        escalates: the trigger is the lifecycle's escalation trigger (the level moves up).
    """

    __slots__ = ("candidates", "escalates", "reason_required")

    def __init__(self, candidates: tuple[TransitionSpec, ...], escalates: bool):
        self.candidates = candidates
        self.reason_required = any(t.reason_required for t in candidates)
        self.escalates = escalates


@dataclass(frozen=True)
class _Deadline:
    name: str
    spec: DeadlineSpec


class Lifecycle:
    """A definition version compiled against a host :class:`Registry`.

    Args:
        definition: the validated definition.
        registry: the host's guards and actions; every name the file uses must be in it.
        strict: when False (for reading stored tickets), a guard or action the registry
            lacks does not stop compiling; firing a transition that needs it then raises
            :class:`HostCallbackFailed` saying it is not registered.

    Raises:
        DefinitionError: ``strict`` and the file names a guard or action the registry lacks.
    """

    def __init__(
        self, definition: Definition, registry: Registry | None = None, *, strict: bool = True
    ):
        self.definition = definition
        self.spec = definition.spec
        self.name = definition.spec.name
        self.digest = definition.digest
        registry = registry or Registry()
        if strict:
            self._check_callbacks(registry)

        spec = self.spec
        self.levels: tuple[str, ...] = tuple(level.name for level in spec.levels)
        self.final_states = frozenset(n for n, s in spec.states.items() if s.final)
        self.calendars = compile_calendars(spec.calendars)  # business calendars by name
        # (state, trigger) -> transitions, in file order
        self._by_source: dict[tuple[str, str], list[TransitionSpec]] = {}
        for t in spec.transitions:
            for src in t.source:
                self._by_source.setdefault((src, t.trigger), []).append(t)
        self._triggers_from: dict[str, tuple[str, ...]] = {}
        for (src, trig) in self._by_source:
            self._triggers_from.setdefault(src, ())
            if trig not in self._triggers_from[src]:
                self._triggers_from[src] += (trig,)
        self.state_deadlines: dict[str, tuple[_Deadline, ...]] = {}
        self.ticket_deadlines: tuple[_Deadline, ...] = ()
        for name, d in spec.deadlines.items():
            if d.state is not None:
                self.state_deadlines[d.state] = (
                    *self.state_deadlines.get(d.state, ()), _Deadline(name, d))
            else:
                self.ticket_deadlines += (_Deadline(name, d),)

        self.permissions = Permissions(spec)  # issue 11: who may set which field, where
        self._guards: dict[int, tuple[tuple[str, Callable[[CommandContext], bool]], ...]] = {
            id(t): tuple((g, registry.guards.get(g) or _missing("guard", g)) for g in t.guards)
            for t in spec.transitions}
        machine_transitions: list[dict[str, Any]] = []
        for t in spec.transitions:
            # :meth:`check` refuses a role no candidate allows; the Machine needs the role as
            # a condition only where transitions of one state and trigger differ in roles
            # (it must pass over those the role may not take)
            conditions: list[Callable[[EventData], bool]] = (
                [_role_condition(frozenset(t.roles))] if self._roles_differ(t) else [])
            conditions += [_guard_condition(g, registry.guards.get(g) or _missing("guard", g))
                           for g in t.guards]
            after = [_action_callback(a, registry.actions.get(a) or _missing("action", a))
                     for a in t.actions]
            if t.internal:  # transitions' internal transition: dest None, no exit / enter
                after.insert(0, _mark_internal)
            machine_transitions.append(
                {"trigger": t.trigger, "source": list(t.source),
                 "dest": None if t.internal else t.dest, "conditions": conditions,
                 "after": after}
            )
        self.machine = Machine(
            model=None,
            states=list(spec.states),
            transitions=machine_transitions,
            initial=spec.initial,
            auto_transitions=False,
            send_event=True,
            queued=False,
            ignore_invalid_triggers=False,
        )
        # (state, trigger) -> the Machine's State, Event and candidate Transitions, in the
        # order the Event tries them (see :meth:`fire`); none (every command through
        # Event.trigger) if the Machine had machine-wide event callbacks, which only the
        # library's dispatch runs
        m = self.machine
        self._machine_routes: dict[tuple[str, str],
                                   tuple[State, Event, tuple[Transition, ...]]] = {} if (
            m.prepare_event or m.finalize_event or m.on_exception) else {
            (src, trig): (m.states[src], m.events[trig], tuple(m.events[trig].transitions[src]))
            for (src, trig) in self._by_source}
        # (state, trigger) -> the destination, where the first candidate the Event would try
        # is *pure*: no conditions and no callbacks of its own, of the states it leaves and
        # enters, or of the Machine. ``Transition.execute`` would take it unconditionally and
        # do nothing but ``Machine.set_state`` (its logging and empty callback lists aside),
        # so the command handler takes the destination without firing (pure_dest)
        self._pure: dict[tuple[str, str], str] = {
            key: str(candidates[0].dest) for key, (_, _, candidates) in
            self._machine_routes.items() if _pure(m, candidates[0])}
        self._routes: dict[tuple[str, str, str], Route] = {}

    def _roles_differ(self, t: TransitionSpec) -> bool:
        """Whether a transition sharing a source and the trigger of ``t`` has other roles."""
        roles = set(t.roles)
        return any(set(u.roles) != roles for src in t.source
                   for u in self._by_source[(src, t.trigger)])

    def _check_callbacks(self, registry: Registry) -> None:
        problems: list[Problem] = []
        for i, t in enumerate(self.spec.transitions):
            for kind, names, known in (("guard", t.guards, registry.guards),
                                       ("action", t.actions, registry.actions)):
                for j, name in enumerate(names):
                    if name not in known:
                        problems.append(Problem(
                            self.definition.file, _line(self.definition, i),
                            f"transitions[{i}].{kind}s[{j}]",
                            f"no {kind} named {name!r} is registered by the host app; "
                            f"registered: {', '.join(sorted(known)) or '(none)'}"))
        if problems:
            raise DefinitionError(problems)

    # -- queries -------------------------------------------------------------------------

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """The triggers that have a transition out of ``state``."""
        return self._triggers_from.get(state, ())

    def transitions_for(self, state: str, trigger: str) -> list[TransitionSpec]:
        """The transitions ``trigger`` may take from ``state`` (file order)."""
        return self._by_source.get((state, trigger), [])

    def next_level(self, level: str) -> str | None:
        """The level above ``level``, or None at the top."""
        i = self.levels.index(level)
        return self.levels[i + 1] if i + 1 < len(self.levels) else None

    def guards_pass(self, transition: TransitionSpec, ctx: CommandContext) -> bool:
        """Whether every guard of ``transition`` says yes to ``ctx``, firing nothing.

        For reads (the triggers an actor may fire now): ``ctx.dest`` is set to the
        transition's destination; a guard that raises (or is not registered) says no.
        """
        ctx.dest = transition.dest
        for _, fn in self._guards.get(id(transition), ()):
            try:
                if not fn(ctx):
                    return False
            except Exception:
                return False
        return True

    def pure_dest(self, state: str, trigger: str) -> str | None:
        """Where ``trigger`` from ``state`` lands without firing (None: it must be fired).

        Not None where the first transition the Machine tries for ``trigger`` from ``state``
        is *pure*: it has no conditions and no callbacks, nor have the states it leaves and
        enters, nor the Machine (see ``_pure``); :meth:`fire` would only set this state. The
        caller must have checked the role (:meth:`route`): a pure transition has no role
        condition, so every role :meth:`route` allows takes it.
        """
        return self._pure.get((state, trigger))

    # -- firing --------------------------------------------------------------------------

    def check(self, ticket_id: str, state: str, trigger: str, role: str) -> list[TransitionSpec]:
        """Return the candidate transitions for this command, or raise why there are none.

        Raises:
            TriggerNotAllowed: no transition for ``trigger`` from ``state``
                (:class:`UnknownTrigger`: from no state at all).
            RoleNotAllowed: there is one, but not for ``role``.
        """
        return list(self.route(ticket_id, state, trigger, role).candidates)

    def route(self, ticket_id: str, state: str, trigger: str, role: str) -> Route:
        """The :class:`Route` of ``trigger`` from ``state`` for ``role``, or raise why none.

        The answer depends on the lifecycle version, ``state``, ``trigger`` and ``role``
        only, so it is kept per lifecycle (at most one entry per declared combination:
        refusals are not kept, and ``ticket_id`` only names the ticket in them).

        Raises:
            TriggerNotAllowed, UnknownTrigger, RoleNotAllowed: as :meth:`check`.
        """
        key = (state, trigger, role)
        found = self._routes.get(key)
        if found is None:
            found = Route(self._allowed(ticket_id, state, trigger, role),
                          trigger == self.spec.escalation_trigger)
            self._routes[key] = found
        return found

    def _allowed(self, ticket_id: str, state: str, trigger: str,
                 role: str) -> tuple[TransitionSpec, ...]:
        candidates = self.transitions_for(state, trigger)
        if not candidates:
            declared = {t.trigger for t in self.spec.transitions}
            if trigger not in declared:
                raise UnknownTrigger(ticket_id, state, trigger, self.triggers_from(state),
                                     sorted(declared))
            raise TriggerNotAllowed(ticket_id, state, trigger, self.triggers_from(state))
        allowed = [t for t in candidates if role in t.roles]
        if not allowed:
            roles = sorted({r for t in candidates for r in t.roles})
            raise RoleNotAllowed(ticket_id, state, trigger, role, roles)
        return tuple(allowed)

    def fire(self, subject: Subject, ctx: CommandContext) -> str:
        """Run ``ctx.trigger`` on ``subject`` through the shared Machine; return the new state.

        The caller has already called :meth:`check` (which refuses a role no candidate
        transition allows; the Machine checks the role again only where the candidates differ
        in roles). Host guards and actions run here; if one raises, :class:`HostCallbackFailed`
        is raised and the caller must discard ``subject``.

        Raises:
            GuardRejected: every candidate transition had a guard that said no.
            HostCallbackFailed: a host guard or action raised.
        """
        found = self._machine_routes.get((subject.state, ctx.trigger))
        if found is None:  # not a declared (state, trigger): the library says why
            ok = self.machine.events[ctx.trigger].trigger(subject, ctx=ctx)
        else:
            # Event.trigger's work, minus its per-event dispatch (module docstring): the
            # first candidate whose conditions pass is executed, by the library
            state, event, candidates = found
            event_data = EventData(state, event, self.machine, subject, (), {"ctx": ctx})
            ok = False
            for transition in candidates:
                event_data.transition = transition
                if transition.execute(event_data):
                    ok = event_data.result = True
                    break
        if not ok:
            raise GuardRejected(ctx.ticket_id, ctx.source, ctx.trigger,
                                ctx.failed_guards or ["(role)"])
        return subject.state


def _pure(machine: Machine, transition: Transition) -> bool:
    """Whether executing ``transition`` only sets the state (see ``Transition.execute``).

    True when it has a destination (it is not internal), no conditions and no prepare,
    before or after callbacks; the state it leaves has no exit callbacks and the state it
    enters no enter callbacks (nor, if final, the Machine ``on_final`` ones); and the Machine
    has no ``before_state_change`` / ``after_state_change`` callbacks.
    """
    if (transition.dest is None or transition.conditions or transition.prepare
            or transition.before or transition.after or machine.before_state_change
            or machine.after_state_change):
        return False
    source, dest = machine.get_state(transition.source), machine.get_state(transition.dest)
    on_final = getattr(machine, "on_final", None)  # (transitions 0.9.3 and later)
    return not (source.on_exit or dest.on_enter or (dest.final and on_final))


def _missing(kind: str, name: str) -> Callable[[CommandContext], Any]:
    def missing(ctx: CommandContext) -> Any:
        raise LookupError(f"{kind} {name!r} is not registered in this engine; register it "
                          f"with Registry.{kind}({name!r})")

    return missing


def _line(definition: Definition, index: int) -> int:
    return parse_yaml(definition.source, definition.file).line_of(("transitions", index))


def _dest(event: EventData) -> str:
    transition = event.transition
    if transition is None:
        return ""
    # an internal transition has no dest in transitions: it stays where it is
    return str(transition.dest) if transition.dest else str(transition.source)


def _mark_internal(event: EventData) -> None:
    ctx: CommandContext = event.kwargs["ctx"]
    ctx.internal = True


def _role_condition(roles: frozenset[str]) -> Callable[[EventData], bool]:
    def role_allowed(event: EventData) -> bool:
        ctx: CommandContext = event.kwargs["ctx"]
        return ctx.role in roles

    return role_allowed


def _guard_condition(
    name: str, fn: Callable[[CommandContext], bool]
) -> Callable[[EventData], bool]:
    def guard(event: EventData) -> bool:
        ctx: CommandContext = event.kwargs["ctx"]
        ctx.dest = _dest(event)
        try:
            ok = bool(fn(ctx))
        except Exception as exc:
            raise HostCallbackFailed(ctx.ticket_id, ctx.trigger, name, exc) from exc
        if not ok:
            ctx.failed_guards.append(name)
        return ok

    return guard


def _action_callback(
    name: str, fn: Callable[[CommandContext], None]
) -> Callable[[EventData], None]:
    def action(event: EventData) -> None:
        ctx: CommandContext = event.kwargs["ctx"]
        ctx.dest = _dest(event)
        try:
            fn(ctx)
        except Exception as exc:
            raise HostCallbackFailed(ctx.ticket_id, ctx.trigger, name, exc) from exc

    return action
