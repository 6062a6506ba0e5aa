"""Problems found on patrol (一日双巡): a report linked to its patrol round.

A lifecycle's ``patrol`` section names the field that holds a patrol round's ticket id, the
round's lifecycle, the states a round takes findings in, the trigger that records one and
the integer field that counts them. For a report that fills the field:

* **check** — the round exists, runs that lifecycle and is on patrol
  (:class:`~engine.errors.PatrolNotOnRound`);
* **plan** — a ``gw_ticket_links`` row (``patrol``: the report → its round) and a follow-on
  firing the trigger on the round as the reporter, counting the finding; if that is
  refused (the reporter may not record findings on that round) the report is refused.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import insert

from engine.errors import PatrolNotOnRound, TicketNotFound
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.model import Actor
from engine.runtime.participant import CheckContext, Participant, PlanContext, Unit
from engine.store.department_tables import ticket_links

__all__ = ["LINK_KIND", "PatrolLinks"]

LINK_KIND = "patrol"
"""``gw_ticket_links.kind`` of a finding's link to its patrol round."""

_INSERT = insert(ticket_links)


class PatrolLinks(Participant):
    """See the module docstring. One per engine; no state of its own."""

    def interested(self, lifecycle: Lifecycle) -> bool:
        """Lifecycles with a ``patrol`` section."""
        return lifecycle.spec.patrol is not None

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Everything but reports (a report is linked when it names a round)."""
        return kind == "transition" or (kind == "report" and lifecycle.spec.patrol is None)

    def check(self, ctx: CheckContext, change: Change) -> None:
        """The named round exists, runs the declared lifecycle and is on patrol."""
        link = change.lifecycle.spec.patrol
        if link is None or change.kind != "report":
            return
        patrol_id = change.fields.get(link.field)
        if patrol_id in (None, ""):
            return
        try:
            round_ = ctx.ticket(str(patrol_id))
        except TicketNotFound:
            raise PatrolNotOnRound(change.ticket_id, patrol_id, "does not exist") from None
        if round_.lifecycle.name != link.lifecycle:
            raise PatrolNotOnRound(change.ticket_id, patrol_id,
                                   f"is a {round_.lifecycle.name} ticket, not a "
                                   f"{link.lifecycle} round")
        if round_.state not in link.states:
            raise PatrolNotOnRound(change.ticket_id, patrol_id,
                                   f"is {round_.state!r}, not {' or '.join(link.states)}")

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Link the report to its round; count the finding on the round (a follow-on)."""
        link = change.lifecycle.spec.patrol
        if link is None or change.kind != "report":
            return
        patrol_id = change.fields.get(link.field)
        if patrol_id in (None, ""):
            return
        pid, tid = str(patrol_id), change.ticket_id
        ctx.add_row(_INSERT, {"ticket_id": tid, "other_id": pid, "kind": LINK_KIND,
                              "at": change.at, "actor": change.actor[:128]})
        actor = Actor(change.actor, change.role)
        trigger, count = link.trigger, link.count

        def record(u: Unit) -> None:
            found = u.ticket(pid).fields.get(count)
            total = (found if isinstance(found, int) else 0) + 1
            u.fire(pid, trigger, actor=actor, reason=f"finding reported as ticket {tid}",
                   fields={count: total})

        ctx.follow(record, ticket_id=tid, what=f"record the finding on patrol {pid}",
                   on_refusal="refuse")
