"""Which databases a replay may empty: the record a replay keeps in the databases it fills.

``gridwhistle replay`` used to empty its ``--db`` first whatever it held (``--fresh`` was the
default): a live database of 740 tickets replayed into with a 20-row file kept only the 20,
and a server using it went on serving replay data. Now a replay empties a database only when
nothing but replays' tickets would be lost, or when told to with an explicit ``--fresh``.

To know which tickets are a replay's, every replay of the command records, in a table of its
own (:data:`MARK_TABLE`, one row), how many tickets the database held that no replay wrote
(``others``) and how many it held in all when the replay ended (``tickets``). Tickets are
never deleted, so later tickets (a server's, an engine's) show as a count above ``tickets``:

    not a replay's = others + (tickets now - tickets when the last replay ended)

A replay marks the row ``running`` when it starts and clears it when it ends (also when it
stops on an error or Ctrl-C): a row still ``running`` is a replay that was killed or is
running now, and its tickets cannot be told from others'. The table is not one of
Gridwhistle's ``gw_*`` tables: migrations and schema checks leave it alone (as a host app's
own table), and emptying the Gridwhistle tables (``Database.drop_all``) keeps it.

A database without the record (made by ``db upgrade``, ``serve``, an ``Engine``, or a replay
of an older Gridwhistle) holds no replay's tickets as far as anyone can tell: a replay adds
to it when it holds no ticket, and refuses it (:class:`WouldEmptyDatabase`) otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)

from engine import Database, GridwhistleError

__all__ = ["MARK_TABLE", "Holding", "WouldEmptyDatabase", "begin", "end", "holding",
           "other_sessions", "refuse"]

MARK_TABLE = "gridwhistle_replay"
"""The table holding a database's replay record (not ``gw_*``: see the module docstring)."""

_metadata = MetaData()
_marks = Table(
    MARK_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("others", Integer, nullable=False),     # tickets no replay wrote, as of `tickets`
    Column("tickets", Integer, nullable=False),    # all tickets when the last replay ended
    Column("running", Boolean, nullable=False),    # a replay started and has not ended
    Column("started_at", String(40), nullable=False),   # wall time, ISO 8601 UTC
    Column("ended_at", String(40), nullable=True),
    Column("data", Text, nullable=False),          # what the last replay read
    Column("lifecycle", String(64), nullable=False),
)



@dataclass(frozen=True)
class Holding:
    """What a database holds, as far as replays are concerned.

    Attributes:
        tickets: tickets in the database (work orders included).
        others: of them, the tickets no replay wrote (all of them when ``marked`` is False;
            with ``unfinished``, the tickets written since that replay started count here).
        marked: a replay of this command has recorded itself in the database.
        unfinished: the last replay has not ended (killed, or running now).
        data, started_at, ended_at: the last replay's input and wall times (or "").
        lifecycles: every ticket's lifecycle name with how many tickets run it.
    """

    tickets: int
    others: int
    marked: bool = False
    unfinished: bool = False
    data: str = ""
    started_at: str = ""
    ended_at: str = ""
    lifecycles: Mapping[str, int] = field(default_factory=dict)

    @property
    def replayed(self) -> int:
        """Tickets written by replays (known to be)."""
        return self.tickets - self.others


class WouldEmptyDatabase(GridwhistleError):
    """A replay would empty a database that holds tickets no replay wrote: it is refused.

    Nothing has been changed. The message (one line) names the database, what it holds and
    the ways on: ``--append`` (add to it), an explicit ``--fresh`` (empty it deliberately) or
    another ``--db``.

    Attributes:
        database: the ``--db`` as given; ``holding``: what it holds (:class:`Holding`).
    """

    def __init__(self, database: str, holding: Holding) -> None:
        self.database = database
        self.holding = holding
        h = holding
        kinds = _lifecycles(h.lifecycles)
        if h.unfinished:
            since = h.others if h.replayed == 0 else f"{h.others:,} of them"
            what = (f"holds {_tickets(h.tickets)} ({kinds}), and a replay into it has not "
                    f"ended (started {h.started_at} on {h.data}: it was stopped, or is still "
                    f"running): {since} may be that replay's or another writer's, which "
                    "cannot be told apart")
        elif h.replayed:
            last = f"the last of {h.data}, ended {h.ended_at}" if h.data else "earlier"
            what = (f"holds {_tickets(h.tickets)} ({kinds}): {h.replayed:,} written by replays "
                    f"({last}) and {h.others:,} that no replay wrote")
        else:
            what = f"holds {_tickets(h.tickets)} ({kinds}) that no replay wrote"
        super().__init__(
            f"{database} {what}; a replay empties its database first only when nothing but "
            "replays' tickets would be lost, so nothing was changed: add the replay to them "
            "with --append, empty the database deliberately with --fresh (deleting its "
            f"{_tickets(h.tickets)} and their history), or replay into another --db")


def _tickets(count: int) -> str:
    return f"{count:,} ticket" + ("" if count == 1 else "s")


def _lifecycles(counts: Mapping[str, int]) -> str:
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(shown) == 1:
        return f"all {shown[0][0]}"
    parts = [f"{name} {count:,}" for name, count in shown[:4]]
    if len(shown) > 4:
        parts.append(f"{len(shown) - 4} more lifecycles")
    return ", ".join(parts)


def holding(database: Database) -> Holding:
    """What ``database`` holds: its tickets, and how many of them no replay wrote.

    ``database`` has Gridwhistle's tables (an empty one counts no tickets).
    """
    with database.read() as conn:
        kinds = database.ticket_counts(conn)
        count = sum(kinds.values())
        mark = None
        if inspect(conn).has_table(MARK_TABLE):
            mark = conn.execute(select(_marks).where(_marks.c.id == 1)).mappings().first()
    if mark is None:
        return Holding(count, count, lifecycles=kinds)
    others = min(count, mark["others"] + max(0, count - mark["tickets"]))
    return Holding(count, others, marked=True, unfinished=bool(mark["running"]),
                   data=mark["data"], started_at=mark["started_at"],
                   ended_at=mark["ended_at"] or "", lifecycles=kinds)


def refuse(database: str, held: Holding) -> None:
    """Raise :class:`WouldEmptyDatabase` unless emptying loses nothing but replays' tickets.

    Emptying is safe when the database holds no ticket, or only tickets that replays wrote
    (and the last replay has ended).
    """
    if held.tickets and (held.others or held.unfinished):
        raise WouldEmptyDatabase(database, held)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def begin(database: Database, held: Holding, *, emptied: bool, data: str,
          lifecycle: str) -> None:
    """Record that a replay starts into ``database`` (after it was emptied, or not).

    Args:
        database: the database.
        held: what it held before (:func:`holding`); ignored when ``emptied``.
        emptied: its Gridwhistle tables were just emptied (no ticket is left).
        data: what the replay reads (for messages).
        lifecycle: the lifecycle it replays into.
    """
    others, count = (0, 0) if emptied else (held.others, held.tickets)
    values = {"others": others, "tickets": count, "running": True, "started_at": _now(),
              "ended_at": None, "data": data, "lifecycle": lifecycle}
    with database.write() as conn:
        _metadata.create_all(conn)
        if conn.execute(select(_marks.c.id).where(_marks.c.id == 1)).first() is None:
            conn.execute(_marks.insert().values(id=1, **values))
        else:
            conn.execute(_marks.update().where(_marks.c.id == 1).values(**values))


def end(database: Database) -> int:
    """Record that the replay has ended; return the tickets the database now holds.

    Every ticket written since :func:`begin` is counted as the replay's (batches it wrote
    before stopping on an error included).
    """
    with database.write() as conn:
        count = sum(database.ticket_counts(conn).values())
        conn.execute(_marks.update().where(_marks.c.id == 1).values(
            tickets=count, running=False, ended_at=_now()))
    return count


def other_sessions(database: Database) -> int | None:
    """How many other sessions are connected to a PostgreSQL database (None on others).

    ``pg_stat_activity``'s client backends on the same database, this process's pooled
    connections closed first. A session may use another schema of the database, so this is
    a hint (a server may be using the tables), not a proof. SQLite cannot tell at all: a
    connection that is not in a transaction holds no lock.
    """
    if database.dialect != "postgresql":
        return None
    database.engine.dispose()  # our own idle pooled connections are not "others"
    with database.read() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")).scalar_one())
