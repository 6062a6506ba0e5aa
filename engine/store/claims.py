"""Claiming due timers under a lease, so that each timer fires exactly once.

Several engines (threads, processes, hosts) may share one database. Each fires due timers in
two steps:

1. **Claim a batch** (one short transaction): mark up to ``limit`` due, pending timers as
   claimed by this worker until ``now + lease`` (``gw_timers.claimed_by``, ``lease_until``).
   On PostgreSQL the candidate rows are selected ``FOR UPDATE SKIP LOCKED``, so concurrent
   workers claim disjoint batches without waiting for each other; on SQLite writers are
   serialised anyway (``BEGIN IMMEDIATE``). A timer whose lease has passed — its owner died
   or hung — is claimable again: another worker takes it over.
2. **Fire the claimed timers** (a few per transaction, see
   :mod:`engine.runtime.dispatcher`): each is decided on the ticket as read in that
   transaction — a timer no longer pending, or no longer claimed by this worker, is left
   alone — and the writer's *take* (:data:`engine.store.statements.TAKE_TIMER`) moves it from
   ``pending`` to ``fired`` only if it is still pending and still ours. If another worker
   took the claim over or a command cancelled it meanwhile, the take matches no row and the
   transaction is rolled back (:class:`~engine.errors.ConcurrencyConflict`).

The writer updates tickets (in id order) before timers, as every transaction does, so a
command and a firing never deadlock; whichever commits first wins, and the other sees its
result. The lease and ``now`` come from the engine's clock — on PostgreSQL with the real
clock, the database server's (:mod:`engine.store.dbclock`), so that workers whose own clocks
disagree claim a timer at the same instant.

A timer whose firing failed (``failures`` > 0) is held by nobody until ``lease_until``, when
it is retried (:data:`engine.store.statements.FAIL_TIMER`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    type_coerce,
    update,
)

from engine.store import _cursor
from engine.store.tables import timers
from engine.store.types import UTCDateTime

__all__ = ["TimerClaims"]

_FIRST_PENDING = (
    select(timers.c.due_at, timers.c.claimed_by, timers.c.lease_until)
    .where(timers.c.status == "pending").order_by(timers.c.due_at, timers.c.id).limit(1)
)


@lru_cache(maxsize=8)
def _claim_statement(inclusive: bool, limit: int) -> Any:
    """The batch claim, built once per (tie rule, batch size) with bound parameters."""
    now = bindparam("b_now", type_=UTCDateTime())
    is_due = timers.c.due_at <= now if inclusive else timers.c.due_at < now
    candidates = (
        select(timers.c.id)
        .where(
            timers.c.status == "pending",
            is_due,
            or_(timers.c.lease_until.is_(None), timers.c.lease_until <= now,
                timers.c.claimed_by == bindparam("b_owner")),
        )
        .order_by(timers.c.due_at, timers.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(timers)
        .where(timers.c.id.in_(candidates))
        .values(claimed_by=bindparam("b_owner"),
                lease_until=bindparam("b_lease", type_=UTCDateTime()))
        .returning(*timers.c)
    )


class TimerClaims:
    """How one worker claims and takes due timers.

    Args:
        owner: this worker's id, stored in ``gw_timers.claimed_by`` (up to 128 characters).
        lease: how long a claim holds before another worker may take the timer over.
    """

    def __init__(self, owner: str, lease: timedelta):
        if lease <= timedelta(0):
            raise ValueError(f"the claim lease must be positive, got {lease}")
        self.owner = owner
        self.lease = lease

    def next_due(self, conn: Connection) -> datetime | None:
        """The earliest instant at which this worker could fire a pending timer (aware UTC).

        That is a timer's due time, or, for a timer another worker holds a lease on, the end
        of that lease (when it may be taken over). None when no timer is pending.
        """
        found = _cursor.rows(conn, _FIRST_PENDING, {})
        if not found:
            return None
        first = found[0]
        due: datetime = first["due_at"]
        owner, lease = first["claimed_by"], first["lease_until"]
        if owner == self.owner or lease is None or lease <= due:
            return due  # the usual case, straight from the (status, due_at) index
        # held by another worker, or failed and waiting for its retry (nobody holds it)
        held_by_other = and_(or_(timers.c.claimed_by.is_(None),
                                 timers.c.claimed_by != self.owner),
                             timers.c.lease_until > timers.c.due_at)
        effective = case((held_by_other, timers.c.lease_until), else_=timers.c.due_at)
        earliest = type_coerce(func.min(effective), UTCDateTime())
        value: datetime | None = conn.execute(
            select(earliest).where(timers.c.status == "pending")
        ).scalar()
        return value

    def claim_due(
        self, conn: Connection, now: datetime, *, inclusive: bool, limit: int
    ) -> list[Any]:
        """Claim up to ``limit`` pending timers due before ``now`` (or at it, if ``inclusive``).

        Claimable are timers nobody holds, timers whose lease ended at or before ``now``, and
        timers this worker already holds. Returns the claimed rows (mappings of ``gw_timers``
        columns) in due order. Commit the claim before taking the timers, so other workers
        skip them.
        """
        found = _cursor.rows(conn, _claim_statement(inclusive, limit), {
            "b_now": now, "b_owner": self.owner, "b_lease": now + self.lease,
        })
        return sorted(found, key=lambda r: (r["due_at"], r["id"]))
