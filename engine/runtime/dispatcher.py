"""The timer dispatcher: claims due timers and fires them, a few per transaction, in isolation.

``run_due(now)`` repeats, until nothing is left:

1. **claim** up to :attr:`TimerDispatcher.claim_size` due timers under a lease, in a short
   transaction of its own (:mod:`engine.store.claims`);
2. **fire** them in due order, at most :attr:`TimerDispatcher.per_transaction` per
   transaction (and no more than :attr:`TimerDispatcher.max_hold` seconds of work, 10 ms), so that
   on SQLite another writer — an API request — waits for one small transaction, never for a
   whole chunk. Each timer is decided on its own layer (:mod:`engine.runtime.commands`); the
   transaction's tickets are written once, in id order, so PostgreSQL workers take their row
   locks in one global order and cannot deadlock.

**Failures are isolated.** A timer whose firing raises something that is not a refusal (a
bug in a participant, a calendar problem in a host guard, ...) has its layer dropped and is
marked failed — ``failures`` counted, ``last_error`` kept, retried after a backoff
(:func:`retry_delay`: 1 s, 2 s, 4 s, ... up to an hour) — while the other timers of the
transaction fire. ``gridwhistle timers`` and ``gridwhistle check`` show failed timers.

If a transaction's write finds that another worker took a claim over or a command changed a
ticket meanwhile (:class:`~engine.errors.ConcurrencyConflict`), it is rolled back and its
timers are fired again one per transaction, each re-read first.

The after-commit hooks of fired timers (listeners) run on a thread of their own
(:class:`~engine.runtime.unit_of_work.AfterCommitExecutor`): a host listener that hangs
cannot stop the clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.clock import VirtualClock
from engine.errors import ConcurrencyConflict, InvalidArgument
from engine.runtime.commands import CommandHandler
from engine.runtime.model import FiredTimer, Timer
from engine.runtime.unit_of_work import UnitOfWork
from engine.store.claims import TimerClaims
from engine.store.writer import TimerOp

__all__ = ["TimerDispatcher", "retry_delay"]

log = logging.getLogger("gridwhistle.timers")

MAX_RETRY = timedelta(hours=1)


def retry_delay(failures: int) -> timedelta:
    """How long a timer that failed ``failures`` times waits before its next try.

    1 s after the first failure, doubling each time, at most one hour (also after the
    48th failure, whose doubling would pass the largest ``timedelta``: the exponent stops at
    12, 4,096 s, above the hour).
    """
    return min(timedelta(seconds=2 ** min(max(failures - 1, 0), 12)), MAX_RETRY)


class TimerDispatcher:
    """Claims and fires due timers for one engine (see the module docstring).

    Args:
        uow: the unit of work.
        handler: the command handler that decides each timer.
        claims: this worker's claims.
        per_transaction: timers fired per transaction outside a batch (default 20).
        max_hold: seconds of firing after which a transaction commits early (default 0.01).
        claim_size: timers claimed at a time (default 200).
    """

    def __init__(self, uow: UnitOfWork, handler: CommandHandler, claims: TimerClaims, *,
                 per_transaction: int = 20, max_hold: float = 0.01, claim_size: int = 200):
        if per_transaction < 1:
            raise InvalidArgument("timers_per_transaction", f"timers_per_transaction must be "
                                  f"at least 1, got {per_transaction}; give e.g. 20")
        self.uow = uow
        self.handler = handler
        self.claims = claims
        self.per_transaction = per_transaction
        self.max_hold = max_hold
        self.claim_size = claim_size

    def next_due(self) -> datetime | None:
        """The earliest instant this worker could fire a pending timer (aware UTC), or None."""
        with self.uow.reading() as conn:
            return self.claims.next_due(conn)

    def run_until(self, clock: VirtualClock, until: datetime) -> list[FiredTimer]:
        """Move a virtual ``clock`` to ``until``, firing each timer due before it at its due.

        Timers due exactly at ``until`` wait (the tie rule). Inside a SQLite batch the
        next-due bound spares the query while nothing can be due.
        """
        done: list[FiredTimer] = []
        uow = self.uow
        while True:
            floor = uow.floor
            if floor is not None and floor.nothing_due_before(until):
                break  # inside a SQLite batch: nothing can be due yet
            nxt = self.next_due()
            if floor is not None:
                floor.set(nxt)
            if nxt is None or nxt >= until:
                break
            clock.set(max(nxt, clock.now()))
            done.extend(self.run_due(clock.now(), inclusive=True))
        clock.set(until)
        return done

    def run_due(self, now: datetime, *, inclusive: bool) -> list[FiredTimer]:
        """Claim and fire every pending timer due before ``now`` (or at it, ``inclusive``).

        Returns what happened to each timer, in the order fired (failed ones included,
        with outcome ``failed``).
        """
        done: list[FiredTimer] = []
        floor = self.uow.floor
        while True:
            with self.uow.transaction() as _:
                claimed = self.uow.query(lambda conn: self.claims.claim_due(
                    conn, now, inclusive=inclusive, limit=self.claim_size))
            if not claimed:
                return done
            if floor is not None:
                floor.mark()
            if self.uow.active:  # inside a batch: its transaction holds everything
                for row in claimed:
                    self._fire_isolated(row, now, done)
            else:
                self._fire_chunked(claimed, now, done)
            if (floor is not None and len(claimed) < self.claim_size
                    and not floor.created_due_by(now)):
                return done  # inside a SQLite batch: all that was due is fired

    def _fire_chunked(self, claimed: Sequence[Mapping[str, Any]], now: datetime,
                      done: list[FiredTimer]) -> None:
        start = 0
        # The chunk's tickets are read in one go (preload). On PostgreSQL only as many as
        # the last transaction fired: one that reached max_hold after 2 of its 20 timers
        # would otherwise read 18 tickets for nothing, in every transaction (on a slow
        # machine 10 ticket reads, JSON aggregates decoded, per fired timer; figures in
        # docs/performance.md). A ticket not preloaded is read when its timer fires.
        # On SQLite a ticket's read is cheap, and sizing the preload did not
        # show a gain there (benchmark 11 back to back: firing 8.2 s against 6.4-6.6 s, but
        # the unchanged code fired in 7.9 s minutes later), so it reads the whole chunk.
        size_ahead = self.uow.db.dialect != "sqlite"
        ahead = self.per_transaction
        while start < len(claimed):
            end = start
            results: list[FiredTimer] = []
            try:
                with self.uow.transaction(background=True):
                    began = time.perf_counter()
                    chunk = claimed[start:start + self.per_transaction]
                    self.handler.preload([r["ticket_id"] for r in chunk[:ahead]])
                    for row in chunk:
                        self._fire_isolated(row, now, results)
                        end += 1
                        if time.perf_counter() - began >= self.max_hold:
                            break
                if size_ahead:
                    taken = end - start
                    ahead = (min(self.per_transaction, ahead * 2) if taken == len(chunk)
                             else max(2, taken))
            except ConcurrencyConflict:
                log.info("timers changed under this worker; firing them one by one")
                stop = max(end, start + 1)
                for row in claimed[start:stop]:
                    fired: list[FiredTimer] = []
                    try:
                        with self.uow.transaction(background=True):
                            self._fire_isolated(row, now, fired)
                    except ConcurrencyConflict:
                        continue  # taken over or cancelled meanwhile: not ours to fire
                    done.extend(fired)  # only what committed (a conflict at the commit
                    # rolls the firing back, and the timer may be claimed and fired again)
                start = stop
                continue
            done.extend(results)
            start = max(end, start + 1)

    def _fire_isolated(self, row: Mapping[str, Any], now: datetime,
                       done: list[FiredTimer]) -> None:
        try:
            outcome = self.handler.fire_timer(row, now)
        except ConcurrencyConflict:
            raise
        except Exception as exc:
            failures = int(row.get("failures") or 0) + 1
            retry = now + retry_delay(failures)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("timer %s (%s of ticket %s) failed (%d time(s)); retrying at %s",
                          row["id"], row["name"], row["ticket_id"], failures, retry.isoformat())
            self.uow.top.timer_ops.append(TimerOp(
                "fail", timer_id=row["id"], failures=failures, error=error, at=retry))
            done.append(FiredTimer(Timer(row["id"], row["ticket_id"], row["name"],
                                         row["state"], row["due_at"], "pending", None,
                                         failures, error), "failed"))
            return
        if outcome is not None:
            done.append(outcome)
