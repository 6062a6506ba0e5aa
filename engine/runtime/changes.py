"""Changes: what every history row announces to the engine's participants.

Each history row a command or a fired timer stages (report, transition, breach, ...) becomes
one :class:`Change`. Participants (:mod:`engine.runtime.participant`) check and plan on
changes before anything is written, and get the committed ones after the commit.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any, NamedTuple

from engine.lifecycle.machine import Lifecycle

__all__ = ["Change", "new_change_id"]


class Change(NamedTuple):
    """One history row, as announced to participants.

    Attributes:
        ticket_id: the ticket.
        lifecycle: the compiled lifecycle version the ticket runs on.
        seq: the history row's position in the ticket's history.
        kind: ``report``, ``transition``, ``breach`` (a deadline, level budget or maximum lag),
            ``sla_warning``, ``sla_breach``, ``migration`` (moved to another lifecycle
            version, see :meth:`Engine.migrate`), ``follow_on_refused`` (a consequence the
            engine could not carry out, see docs/architecture.md), or a row in place of
            another participant (:meth:`Unit.note`): issue 11's ``extension_requested``,
            ``extension_approved``, ``extension_refused``, ``suspended``, ``resumed``,
            ``supervision_notice`` (docs/oversight.md).
        trigger: the trigger (``report``; the deadline, ``<level>_budget``, lag or SLA clock
            name for the other kinds).
        from_state, to_state, from_level, to_level: before and after (``from_*`` None on report).
        actor, role, reason: who and why.
        at: when (aware UTC).
        fields: the ticket's fields after the change (JSON form: datetimes as ISO text).
        data: the history row's extra data (e.g. a breach's ``due_at``; the fields a
            transition set under ``fields``).
        change_id: a UUID (text) naming this change; the outbox stores it as the domain
            event's ``event_id``.

    A ``NamedTuple``, not a frozen dataclass: as immutable, and built in a third of the
    time (a frozen dataclass sets each field through ``object.__setattr__``); the
    pipeline builds several per command.
    """

    ticket_id: str
    lifecycle: Lifecycle
    seq: int
    kind: str
    trigger: str
    from_state: str | None
    to_state: str
    from_level: str | None
    to_level: str
    actor: str
    role: str
    reason: str | None
    at: datetime
    fields: dict[str, Any]
    data: dict[str, Any]
    change_id: str = ""

    @property
    def entered(self) -> str | None:
        """The state the change entered (None for a self-transition or a row in place)."""
        return self.to_state if self.from_state != self.to_state else None


# -- change ids ---------------------------------------------------------------------------------

_POOL_BYTES = 4096
"""Random bytes read from the OS at once: 256 change ids per ``os.urandom`` system call."""
_VARIANT = "89ab"
"""The variant nibble (RFC 4122: bits 10xx) by the two random bits it keeps."""


class _Pool(threading.local):
    """One thread's random bytes not yet used (each thread its own: no id is handed twice)."""

    def __init__(self) -> None:
        self.data = b""
        self.at = 0


_pool = _Pool()


def _forget_pool() -> None:
    """In a forked child: drop the bytes inherited from the parent, which uses them too."""
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_pool)


def new_change_id() -> str:
    """A new random UUID (version 4) as text, spelled as ``str(uuid.uuid4())`` spells it.

    Every history row gets one (the outbox's ``event_id``). ``uuid.uuid4()`` reads 16 bytes
    from the OS per call and builds a ``UUID`` object only to print it; this reads the same
    OS source (``os.urandom``) 4 KiB at a time, per thread and anew in a forked child, and
    writes the hex digits directly: the same text for the same bytes, at a third of the cost.
    """
    pool = _pool
    at = pool.at
    data = pool.data
    if at >= len(data):
        data = pool.data = os.urandom(_POOL_BYTES)
        at = 0
    pool.at = at + 16
    # the bits uuid.UUID(bytes=..., version=4) sets: the version nibble (13th hex digit)
    # is 4, the variant nibble (17th) keeps its two low random bits under 10xx
    h = data[at:at + 16].hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[data[at + 8] >> 4 & 3]}{h[17:20]}-{h[20:]}"
