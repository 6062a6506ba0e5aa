"""The database schema, declared once with SQLAlchemy Core.

* ``gw_definitions``: every lifecycle version ever deployed (name, content digest, source).
* ``gw_tickets``: one row per ticket: state, level, fields, its definition version and a row
  version for optimistic locking.
* ``gw_history``: append-only; one row per report, transition and deadline breach.
* ``gw_timers``: one row per deadline timer with its due time and status
  (``pending`` → ``fired`` | ``cancelled`` | ``stale``), the claim of the worker that is
  about to fire it (``claimed_by``, ``lease_until``) and its failed firings (``failures``,
  ``last_error``). At most one timer per ticket and name is ``pending``.
* ``gw_idempotency``: one row per (actor, idempotency key) a command was sent with: the
  digest of the command and the result it returned, written in the command's own
  transaction.
* ``gw_sla_clocks``, ``gw_ladder``, ``gw_occurrences``: SLA clocks per ticket, each ticket's
  place on the whistle ladder, and the periodic occurrences already created (one per rule and
  instant: the unique constraint makes periodic work exactly-once).

The MetaData carries a naming convention so constraint names are the same on SQLite and
PostgreSQL (and in Alembic migrations).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from engine.store.types import UTCDateTime

__all__ = [
    "definitions",
    "history",
    "idempotency",
    "ladder",
    "metadata",
    "occurrences",
    "sla_clocks",
    "tickets",
    "timers",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

definitions = Table(
    "gw_definitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("name", "digest"),
    UniqueConstraint("name", "version"),
)

tickets = Table(
    "gw_tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("definition_id", Integer, ForeignKey("gw_definitions.id"), nullable=False),
    Column("state", String(64), nullable=False),
    Column("level", String(64), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("overdue", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("row_version", Integer, nullable=False),
    Index(None, "state"),
    Index(None, "definition_id"),
)

history = Table(
    "gw_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    # report | transition | breach | ... | follow_on_refused | extension_requested (issue 11)
    Column("kind", String(32), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("from_state", String(64), nullable=True),
    Column("to_state", String(64), nullable=False),
    Column("from_level", String(64), nullable=True),
    Column("to_level", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=False),
    Column("reason", Text, nullable=True),
    Column("data", JSON, nullable=True),
    UniqueConstraint("ticket_id", "seq"),
)

timers = Table(
    "gw_timers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("state", String(64), nullable=True),  # the state it belongs to; None: ticket-wide
    Column("due_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # pending | fired | cancelled | stale
    Column("created_at", UTCDateTime(), nullable=False),
    Column("fired_at", UTCDateTime(), nullable=True),
    # The worker that claimed the timer and until when its claim (lease) holds; another
    # worker takes the timer over once the lease has passed (see engine/store/claims.py).
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    # A firing that failed (a bug, a database error): how often, the last error, and (in
    # lease_until, with claimed_by NULL) when it is retried (see engine/runtime/dispatcher.py).
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", Text, nullable=True),
    Index(None, "status", "due_at"),
    Index(None, "ticket_id", "status"),
)

idempotency = Table(
    "gw_idempotency",
    metadata,
    # Keys are scoped per actor: two clients may use the same key for different commands.
    Column("owner", String(128), primary_key=True),  # the actor id that sent the key
    Column("key", String(128), primary_key=True),
    Column("command", String(16), nullable=False),  # report | fire | escalate
    Column("digest", String(64), nullable=False),  # SHA-256 of the command's content
    Column("ticket_id", String(64), nullable=False),
    Column("result", JSON, nullable=False),  # the Ticket the first call returned
    Column("created_at", UTCDateTime(), nullable=False),
)


# -- time: SLA clocks, the whistle ladder, periodic occurrences (engine/sla, engine/ladder,
#    engine/periodic). Their timers are gw_timers rows named "sla:...", "ladder:...", "lag:...".

sla_clocks = Table(
    "gw_sla_clocks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # running | paused | stopped
    Column("started_at", UTCDateTime(), nullable=False),
    Column("running_since", UTCDateTime(), nullable=True),  # None unless running
    Column("elapsed_seconds", Float, nullable=False),  # (working) time run so far, excl. now
    Column("due_at", UTCDateTime(), nullable=True),  # breach instant while running
    Column("outcome", String(16), nullable=True),  # None | met | breached
    Column("breached_at", UTCDateTime(), nullable=True),
    Column("stopped_at", UTCDateTime(), nullable=True),
    Column("warned", JSON, nullable=False),  # indexes of the warnings already given
    UniqueConstraint("ticket_id", "name"),
)

ladder = Table(
    "gw_ladder",
    metadata,
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), primary_key=True),
    Column("level", String(64), nullable=False),
    Column("handler", String(64), nullable=True),  # the level's handler role
    Column("since", UTCDateTime(), nullable=False),
    Column("budget_due", UTCDateTime(), nullable=True),
    Column("acknowledged_at", UTCDateTime(), nullable=True),
    Column("acknowledged_by", String(128), nullable=True),
    # when a suspension (issue 11) held the level's budget; None: not held
    Column("held_at", UTCDateTime(), nullable=True),
)

occurrences = Table(
    "gw_occurrences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lifecycle", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("lifecycle", "rule", "due_at"),
)
