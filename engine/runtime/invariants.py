"""History as the source of truth: checks that tickets, history and timers agree.

The history of a ticket (``gw_history``, append-only) says where the ticket must be. Every rule
below must hold for every ticket after every committed transaction; a violation means a write
was lost or half-applied. :meth:`Engine.check_invariants` and ``gridwhistle check`` run them.

Rules (the ``rule`` of a :class:`Violation`):

* ``history_seq``: history rows are numbered 1, 2, … without gaps, the first is the report;
* ``history_chain``: each row starts where the previous one ended (state and level);
* ``state``, ``level``: the ticket's state and level are those of its last history row;
* ``row_version``: the ticket's row version equals the number of its history rows;
* ``overdue``: the overdue flag is set exactly when a breach of the resolution deadline (or of
  any deadline, when the lifecycle names none) is in the history;
* ``timer_owner``: each pending timer belongs to the ticket's current state, or is a ticket
  deadline that still runs (the ticket is not in one of its ``stop_in`` or final states), and
  its deadline exists in the ticket's lifecycle version;
  a participant's timer (``sla:``, ``ladder:``, ``lag:``, ...) is on a ticket not in a final
  state, and its participant finds nothing wrong with it (``Participant.timer_problem``);
* ``timer_failed``: a pending timer whose firing failed (it is retried; see its error);
* ``timer_twice``: at most one pending timer per ticket and deadline;
* ``timer_missing``: for each ``after`` deadline of the current state, the newest timer was
  created when the ticket last entered the state (or later, when an approved extension or
  the end of a suspension moved it: rows ``extension_approved``, ``resumed``) and is
  pending, or fired if it fell due; a suspended ticket (its last ``suspended`` row not
  followed by ``resumed``) holds its deadlines, with no timer;
* ``fired_once``: each fired timer has exactly one breach (or SLA warning / breach, or
  ``resumed`` at a suspension's limit) row in the history, and each such row that names a
  timer names a fired one;
* and each participant's own rules on its stored rows (``Participant.stored_problems``):
  the oversight participant's ``oversight_rows`` and ``suspension``
  (:mod:`engine.oversight.participant`), the ladder's ``ladder_hold`` (a suspended ticket's
  level budget is held: no pending ``ladder:`` timer; :mod:`engine.ladder.ladder`), the SLA
  clocks' ``sla_clock`` (a running clock with a due instant has its pending breach timer
  due then; a breached one shows no due instant after its breach and has none; a paused,
  suspended or stopped one has neither; a suspended clock is on a suspended ticket; every
  pending ``sla:`` timer is of a clock the ticket has; :mod:`engine.sla.clocks`), the work
  orders' ``resolution_rule`` (each ``resolve`` of a routed ticket happened when its work
  orders met its resolution rule, or none was open; :mod:`engine.workorders.participant`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, select

from engine.lifecycle.machine import Lifecycle
from engine.store.tables import history, tickets, timers

__all__ = ["Violation", "check_invariants", "suspended_by_history"]

_ENTRY_KINDS = ("report", "transition", "migration")
# history rows a fired timer writes (``resumed``: a suspension's limit, issue 11)
_TIMER_KINDS = ("breach", "sla_warning", "sla_breach", "resumed")
_MOVE_KINDS = ("extension_approved", "resumed")  # rows that re-create a deadline's timer
TimerOwner = Callable[[str], Any]
"""Timer name → the participant owning its prefix (``Participant``), or None for a deadline."""


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    Attributes:
        ticket_id: the ticket.
        rule: the rule's name (see :mod:`engine.runtime.invariants`).
        message: what disagrees, with the values found.
    """

    ticket_id: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.rule}: {self.message}"


def suspended_by_history(rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether history ``rows`` (oldest first) leave the ticket suspended.

    Its last ``suspended`` row is not followed by a ``resumed`` one (the oversight
    participant's rows, docs/oversight.md). A ticket in a final state is no longer held,
    whatever its rows say: callers check that themselves.
    """
    held = [r["kind"] for r in rows if r["kind"] in ("suspended", "resumed")]
    return held[-1:] == ["suspended"]


def check_invariants(
    conn: Connection,
    lifecycle_of: Callable[[int], Lifecycle],
    *,
    owner_of: TimerOwner,
    participants: Sequence[Any] = (),
    ticket_ids: list[str] | None = None,
) -> list[Violation]:
    """Check every ticket (or those in ``ticket_ids``); return the violations, by ticket.

    Args:
        conn: a connection to read with (one consistent snapshot on PostgreSQL when it is in
            a REPEATABLE READ transaction; SQLite reads are snapshots in WAL mode).
        lifecycle_of: the compiled lifecycle of a ``gw_definitions.id``.
        owner_of: the participant owning a timer name's prefix (None: a deadline).
        participants: the registered participants; each checks its own rows
            (``Participant.stored_problems``).
        ticket_ids: only these tickets (default: all).
    """
    tq = select(tickets).order_by(tickets.c.id)
    hq = select(history).order_by(history.c.ticket_id, history.c.seq)
    mq = select(timers).order_by(timers.c.ticket_id, timers.c.id)
    if ticket_ids is not None:
        tq = tq.where(tickets.c.id.in_(ticket_ids))
        hq = hq.where(history.c.ticket_id.in_(ticket_ids))
        mq = mq.where(timers.c.ticket_id.in_(ticket_ids))
    rows_by: dict[str, list[Any]] = defaultdict(list)
    for h in conn.execute(hq).mappings():
        rows_by[h["ticket_id"]].append(h)
    timers_by: dict[str, list[Any]] = defaultdict(list)
    for t in conn.execute(mq).mappings():
        timers_by[t["ticket_id"]].append(t)
    out: list[Violation] = []
    checked: dict[str, Any] = {}
    for ticket in conn.execute(tq).mappings():
        tid = ticket["id"]
        checked[tid] = ticket
        lc = lifecycle_of(ticket["definition_id"])
        out += _check_ticket(ticket, rows_by.get(tid, []), timers_by.get(tid, []), lc, owner_of)
    for participant in participants:
        out += [Violation(tid, rule, message) for tid, rule, message in
                participant.stored_problems(conn, checked, rows_by, timers_by, lifecycle_of)]
    return sorted(out, key=lambda v: v.ticket_id)


def _check_ticket(ticket: Any, rows: list[Any], tms: list[Any], lc: Lifecycle,
                  owner_of: TimerOwner) -> list[Violation]:
    tid = ticket["id"]
    out: list[Violation] = []

    def bad(rule: str, message: str) -> None:
        out.append(Violation(tid, rule, message))

    if not rows:
        bad("history_seq", "the ticket has no history")
        return out
    seqs = [r["seq"] for r in rows]
    if seqs != list(range(1, len(rows) + 1)) or rows[0]["kind"] != "report":
        bad("history_seq", f"history rows are {seqs[:20]}, first kind {rows[0]['kind']!r}; "
            "expected 1..n starting with the report")
    for prev, cur in pairwise(rows):
        if (cur["from_state"], cur["from_level"]) != (prev["to_state"], prev["to_level"]):
            bad("history_chain", f"row {cur['seq']} starts at {cur['from_state']}/"
                f"{cur['from_level']} but row {prev['seq']} ended at {prev['to_state']}/"
                f"{prev['to_level']}")
    last = rows[-1]
    state = ticket["state"]
    if state != last["to_state"]:
        bad("state", f"ticket is in {state!r}, its history ends in {last['to_state']!r}")
    if ticket["level"] != last["to_level"]:
        bad("level", f"ticket is at {ticket['level']!r}, its history ends at "
            f"{last['to_level']!r}")
    if ticket["row_version"] != len(rows):
        bad("row_version", f"row version {ticket['row_version']} but {len(rows)} history rows")
    named = lc.spec.resolution_deadline
    overdue = any(r["kind"] == "breach" and named in (None, r["trigger"]) for r in rows)
    if bool(ticket["overdue"]) != overdue:
        bad("overdue", f"overdue flag {bool(ticket['overdue'])}, history says {overdue}")

    deadlines = lc.spec.deadlines
    pending_names: dict[str, int] = defaultdict(int)
    for t in tms:
        if t["status"] != "pending":
            continue
        pending_names[t["name"]] += 1
        if t["failures"]:
            bad("timer_failed", f"pending timer {t['id']} {t['name']!r} failed "
                f"{t['failures']} time(s), retried at {t['lease_until']}: {t['last_error']}")
        if ":" in t["name"]:
            owner = owner_of(t["name"])
            problem = (f"the ticket is in the final state {state!r}" if state in lc.final_states
                       else "no participant owns this timer's prefix" if owner is None
                       else owner.timer_problem(t["name"], state, ticket["level"], lc))
            if problem:
                bad("timer_owner", f"pending timer {t['id']} {t['name']!r}: {problem}")
            continue
        spec = deadlines.get(t["name"])
        if spec is None:
            bad("timer_owner", f"pending timer {t['id']} {t['name']!r}: no such deadline in "
                f"{lc.name} version of this ticket")
        elif t["state"] is not None and t["state"] != state:
            bad("timer_owner", f"pending timer {t['id']} {t['name']!r} belongs to state "
                f"{t['state']!r}, the ticket is in {state!r}")
        elif t["state"] is None and (state in (spec.stop_in or ()) or state in lc.final_states):
            bad("timer_owner", f"pending ticket deadline {t['id']} {t['name']!r} should have "
                f"stopped in state {state!r}")
    for name, count in pending_names.items():
        if count > 1:
            bad("timer_twice", f"{count} pending timers for deadline {name!r}")

    entry = next((r for r in reversed(rows) if r["kind"] in _ENTRY_KINDS
                  and not (r["data"] or {}).get("internal")), rows[0])
    after_entry = rows[entry["seq"]:] if entry["seq"] <= len(rows) else []
    moved = {entry["at"]} | {r["at"] for r in after_entry if r["kind"] in _MOVE_KINDS}
    for d in lc.state_deadlines.get(state, ()) if not suspended_by_history(after_entry) else ():
        if d.spec.after is None:
            continue
        mine = [t for t in tms if t["name"] == d.name and t["state"] == state]
        newest = max(mine, key=lambda t: t["id"]) if mine else None
        if (newest is None or newest["created_at"] not in moved
                or newest["status"] == "cancelled"):
            found = "none" if newest is None else (
                f"the newest created {newest['created_at'].isoformat()}, {newest['status']}")
            bad("timer_missing", f"deadline {d.name!r} of state {state!r} entered at "
                f"{entry['at'].isoformat()} has no live timer from then ({found})")

    breaches: dict[int, int] = defaultdict(int)
    for r in rows:
        if r["kind"] in _TIMER_KINDS:
            timer_id = (r["data"] or {}).get("timer_id")
            if timer_id is not None:
                breaches[int(timer_id)] += 1
    fired = {t["id"] for t in tms if t["status"] == "fired"}
    for timer_id in sorted(fired | set(breaches)):
        count = breaches.get(timer_id, 0)
        if timer_id not in fired:
            bad("fired_once", f"breach rows name timer {timer_id}, which is not fired")
        elif count != 1:
            bad("fired_once", f"fired timer {timer_id} has {count} breach rows; expected 1")
    return out
