"""The resident's verdict (回访): the call-back participant.

A lifecycle's ``callback`` section names the call-back step (a state), its deadline (an
ordinary state deadline with ``on_breach: record``), the answers (``confirm``: fixed;
``not_fixed``: back to work, the resolution clock continuing — the bundled grid_incident
uses ``reopen``, whose clocks continue) and the trigger the system fires when nobody
answered in time (``expire``). For each change of such a lifecycle:

* the deadline's **breach** → a follow-on fires ``expire`` as the system, with the reason
  ("no answer by the call-back deadline ...") in history; if it is refused the breach is
  recorded with the refusal (a timer's consequence, see docs/architecture.md);
* a change that **leaves** the call-back step → one ``gw_callbacks`` row: ``confirmed``,
  ``not_fixed`` or ``unanswered``, the 1–5 rating and comment given with it, and the
  channel (``link``: the resident through the link; ``call``: the centre recorded the
  call; ``system``: expired).

The participant's state of a ticket is its call-back link (:class:`CallbackLink`: the
SHA-256 of a single-use token, never the token), issued and used through
:mod:`engine.callbacks.service`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, insert, update

from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import SYSTEM
from engine.runtime.participant import Participant, PlanContext, RowWrite, Unit
from engine.store.evidence_tables import callback_links, callbacks
from engine.store.reads import rows_of

__all__ = ["CallbackLink", "Callbacks"]

_INSERT_LINK = insert(callback_links)
_UPDATE_LINK = (update(callback_links)
                .where(callback_links.c.ticket_id == bindparam("b_tid"))
                .values(token_hash=bindparam("b_hash"), issued_at=bindparam("b_issued"),
                        issued_by=bindparam("b_by"), expires_at=bindparam("b_expires"),
                        used_at=bindparam("b_used")))
_INSERT_OUTCOME = insert(callbacks)


@dataclass(frozen=True)
class CallbackLink:
    """A ticket's call-back link, as stored (the token itself is never kept).

    Attributes:
        token_hash: ``sha256:<hex>`` of the token; issued_at, expires_at, used_at: aware UTC
        (used_at None until the link answered); issued_by: the actor id that issued it.
    """

    token_hash: str
    issued_at: datetime
    issued_by: str
    expires_at: datetime
    used_at: datetime | None = None


class Callbacks(Participant):
    """See the module docstring. One per engine."""

    key = "callback"

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles with a ``callback`` section."""
        return lifecycle.spec.callback is not None

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Its (absent) check; reports; transitions that do not leave the call-back step."""
        cb = lifecycle.spec.callback
        if step == "check" or kind == "report" or cb is None:
            return kind in ("report", "transition")
        if kind != "transition":
            return False
        return from_state != cb.state or to_state == cb.state

    def load(self, conn: Connection, ticket_ids: Sequence[str]) -> Mapping[str, Any]:
        """The tickets' links (``gw_callback_links``)."""
        return {r["ticket_id"]: CallbackLink(r["token_hash"], r["issued_at"], r["issued_by"],
                                             r["expires_at"], r["used_at"])
                for r in rows_of(conn, callback_links, ticket_ids)}

    def writes(self, ticket_id: str, stored: Any, current: Any) -> Iterable[RowWrite]:
        """Insert the first link, update it when a new one is issued or it is used."""
        if not isinstance(current, CallbackLink) or current == stored:
            return
        if stored is None:
            yield _INSERT_LINK, {"ticket_id": ticket_id, "token_hash": current.token_hash,
                                 "issued_at": current.issued_at,
                                 "issued_by": current.issued_by,
                                 "expires_at": current.expires_at, "used_at": current.used_at}
        else:
            yield _UPDATE_LINK, {"b_tid": ticket_id, "b_hash": current.token_hash,
                                 "b_issued": current.issued_at, "b_by": current.issued_by,
                                 "b_expires": current.expires_at, "b_used": current.used_at}

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Expire on the deadline's breach; record the outcome when the step is left."""
        cb = change.lifecycle.spec.callback
        if cb is None:
            return
        if change.kind == "breach" and change.trigger == cb.deadline:
            # (in a function of its own: the closure's cells made every change pay for them,
            # 1.4 µs a dispatch)
            _follow_expiry(ctx, change, cb.expire)
            return
        if (change.kind != "transition" or change.from_state != cb.state
                or change.to_state == cb.state):
            return
        if change.trigger == cb.confirm:
            outcome = "confirmed"
        elif change.trigger == cb.not_fixed:
            outcome = "not_fixed"
        elif change.trigger == cb.expire:
            outcome = "unanswered"
        else:
            outcome = change.trigger[:16]
        given = change.data.get("fields") or {}
        rating = given.get(cb.rating)
        comment = given.get(cb.comment) if cb.comment else None
        channel = ("system" if change.role == SYSTEM.role
                   else "link" if change.role == "resident" else "call")
        ctx.add_row(_INSERT_OUTCOME, {
            "ticket_id": change.ticket_id, "seq": change.seq, "at": change.at,
            "outcome": outcome, "rating": rating if isinstance(rating, int) else None,
            "comment": comment if isinstance(comment, str) else None, "channel": channel,
            "actor": change.actor[:128]})


def _follow_expiry(ctx: PlanContext, change: Change, expire: str) -> None:
    """Ask for the follow-on that closes the ticket whose call-back deadline was breached."""
    tid = change.ticket_id
    reason = (f"no answer by the call-back deadline ({change.data.get('due_at', '')}): "
              "closed by the system")
    ctx.follow(lambda u: _expire(u, tid, expire, reason), ticket_id=tid,
               what=f"close after the call-back deadline ({expire})", on_refusal="record")


def _expire(u: Unit, ticket_id: str, trigger: str, reason: str) -> None:
    cb = u.ticket(ticket_id).lifecycle.spec.callback
    if cb is not None and u.ticket(ticket_id).state == cb.state:
        u.fire(ticket_id, trigger, actor=SYSTEM, reason=reason)
