"""Tables of extension requests, suspensions and supervision notices (issue 11).

* ``gw_time_requests``: one row per request for more time on a ticket (or work order):
  ``kind`` ``extension`` (延期申请, of one deadline: the due instant it had, the one asked
  for, the one granted) or ``suspension`` (挂起, for a documented cause: when it started,
  until when at most, when it ended and how long it lasted). ``n`` numbers a ticket's
  requests of one kind 1, 2, …; ``status``: ``open`` → ``approved`` | ``refused`` for an
  extension, ``active`` → ``ended`` for a suspension. ``department`` is the department
  concerned; ``parent_id`` the ticket a work order belongs to (else the ticket itself), so
  that reports count a ticket's work orders with it.
* ``gw_supervision_notices``: one row per supervision notice (督办) the centre sent: to
  which department, its text, the reply due instant (optional), the history row.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from engine.store.tables import metadata
from engine.store.types import UTCDateTime

__all__ = ["supervision_notices", "time_requests"]

time_requests = Table(
    "gw_time_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("parent_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # extension | suspension
    Column("n", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # open|approved|refused | active|ended
    Column("deadline", String(64), nullable=True),  # extension: the deadline
    Column("cause", String(64), nullable=True),  # suspension: the cause
    Column("department", String(128), nullable=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("requested_role", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("original_due", UTCDateTime(), nullable=True),  # extension: due when asked
    Column("proposed_due", UTCDateTime(), nullable=True),  # extension asked / suspension until
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("decided_by", String(128), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("new_due", UTCDateTime(), nullable=True),  # extension granted
    Column("extended_seconds", Float, nullable=True),
    Column("ended_at", UTCDateTime(), nullable=True),  # suspension
    Column("suspended_seconds", Float, nullable=True),
    Column("paused", JSON, nullable=True),  # suspension: held deadlines {name: [state, due]}
    Column("seq", Integer, nullable=False),  # the request's history row
    UniqueConstraint("ticket_id", "kind", "n"),
    Index(None, "parent_id"),
)

supervision_notices = Table(
    "gw_supervision_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("parent_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("department", String(128), nullable=True),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("reply_due", UTCDateTime(), nullable=True),
    Index(None, "ticket_id"),
    Index(None, "parent_id"),
)
