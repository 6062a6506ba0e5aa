"""Child process of the crash test: replays real data, one command per transaction.

Usage: ``python crash_child.py DB_FILE``. The first rows of the bundled Boston 311 sample are
planned with the replay adapter's mapping (report and dispatch at ``open_dt``; arrive,
resolve, close at ``closed_dt``; the resolution deadline at ``target_dt``) and applied in time
order on a virtual clock, deadlines falling due between commands. Every command carries an
idempotency key, so a restarted child replays from the start and commands already applied
return their first result. After each command commits, its key is printed (stdout, flushed):
the parent treats a printed key as committed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from adapters.replay import BUNDLED_SAMPLE, load_mapping
from adapters.replay.source import PlannedTicket, read_rows
from engine import Actor, CommandRefused, Engine, VirtualClock

ROWS = 80


def plan(eng: Engine) -> list[tuple[datetime, str, int, str, Actor, dict[str, Any]]]:
    """(at, ticket, event index, trigger, actor, fields) in time order; deterministic."""
    mapping = load_mapping("boston311")
    lc = eng.lifecycle(mapping.lifecycle)
    rows = [r for r in islice(read_rows(BUNDLED_SAMPLE, mapping, lc, UTC), ROWS)
            if isinstance(r, PlannedTicket)]
    events = [(ev.at, p.ticket_id, i, ev.trigger, Actor(ev.actor, ev.role),
               p.fields if ev.trigger == "report" else ev.fields)
              for p in rows for i, ev in enumerate(p.events)]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


def main(db: str) -> None:
    clock = VirtualClock(datetime(2015, 1, 1, tzinfo=UTC))
    eng = Engine(db, clock=clock, worker_id="crash-child")
    events = plan(eng)
    for at, tid, index, trigger, actor, fields in events:
        eng.run_until(max(at, clock.now()))
        key = f"{tid}:{index}"
        try:
            # as the replay does: Boston's own department names are kept
            if trigger == "report":
                eng.report("grid_incident", fields, actor=actor, ticket_id=tid,
                           idempotency_key=key, foreign_departments=True)
            else:
                eng.fire(tid, trigger, actor=actor, fields=fields or None,
                         reason="replayed from source data", idempotency_key=key,
                         foreign_departments=True)
        except CommandRefused:
            continue
        sys.stdout.write(key + "\n")
        sys.stdout.flush()
    eng.run_until(events[-1][0] + timedelta(days=10))
    sys.stdout.write("done\n")
    sys.stdout.flush()
    eng.stop()


if __name__ == "__main__":
    main(sys.argv[1])
