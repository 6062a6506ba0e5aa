"""What an actor may do to a ticket now: the triggers it may fire, the fields it may set.

Reads that tell the truth (issue 11): the ticket's *own* lifecycle version (not the newest
one), the actor's role, the whistle level's ``handler_only`` rule, the escalation's top
level, and the host's guards — evaluated on the ticket as it stands, without firing anything
and without writing. The same rules refuse the command itself in the decide step
(:mod:`engine.lifecycle.permissions`, :mod:`engine.runtime.commands`), so a trigger listed
here is refused only by what a read cannot know beforehand: the command's own reason, fields
and evidence, and the participants' rules of time (a minimum lag, duty hours).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.errors import TicketNotFound
from engine.lifecycle.machine import Lifecycle
from engine.lifecycle.registry import CommandContext
from engine.runtime.fields import load_fields
from engine.runtime.kernel import Kernel
from engine.runtime.model import Actor
from engine.runtime.working import TicketRecord
from engine.validation import ticket_id_problem

__all__ = ["available_triggers", "settable_fields"]


def available_triggers(kernel: Kernel, ticket_id: str, actor: Actor) -> list[str]:
    """The triggers ``actor`` may fire on the ticket now, sorted.

    A trigger is listed when the ticket's own lifecycle version has a transition for it out
    of the current state that the actor's role may fire, the ticket's level does not keep it
    to its handler (``handler_only``), it is not an escalation at the top level, and every
    guard of that transition says yes (guards are called with the ticket's fields and the
    engine's ``now``, no reason; a guard that raises says no).

    Raises:
        TicketNotFound: no such ticket.
    """
    with kernel.compound(read_only=True) as unit:
        rec = _ticket(unit.ticket, ticket_id)
        now = unit.now
        lc = rec.lifecycle
        if lc.permissions.handler_refuses(rec.level, actor.role) is not None:
            return []
        fields = load_fields(lc.spec.fields, rec.fields)
        out = []
        for trigger in lc.triggers_from(rec.state):
            level = rec.level
            if trigger == lc.spec.escalation_trigger:
                above = lc.next_level(level)
                if above is None:
                    continue
                level = above
            for t in lc.transitions_for(rec.state, trigger):
                if actor.role not in t.roles:
                    continue
                ctx = CommandContext(ticket_id=rec.id, trigger=trigger, source=rec.state,
                                     dest=t.dest, level=level, fields=dict(fields),
                                     actor=actor.id, role=actor.role, reason=None, now=now)
                if lc.guards_pass(t, ctx):
                    out.append(trigger)
                    break
        return sorted(out)


def settable_fields(kernel: Kernel, ticket_id: str, trigger: str, actor: Actor) -> list[str]:
    """The fields ``actor`` may set on the ticket with ``trigger``, sorted.

    Empty when the actor's role may not fire ``trigger`` from the ticket's state at all (or
    not at its level: ``handler_only``). Otherwise the declared fields of the ticket's own
    lifecycle version that the field permissions let the role set with that trigger.

    Raises:
        TicketNotFound: no such ticket.
    """
    with kernel.compound(read_only=True) as unit:
        rec = _ticket(unit.ticket, ticket_id)
        lc: Lifecycle = rec.lifecycle
        if not any(actor.role in t.roles for t in lc.transitions_for(rec.state, trigger)):
            return []
        if lc.permissions.handler_refuses(rec.level, actor.role) is not None:
            return []
        return lc.permissions.settable(trigger, actor.role)


def _ticket(read: Callable[[str], TicketRecord], ticket_id: str) -> TicketRecord:
    if not isinstance(ticket_id, str) or ticket_id_problem(ticket_id) is not None:
        raise TicketNotFound(str(ticket_id))
    return read(ticket_id)
