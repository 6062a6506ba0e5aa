"""Tables of multi-department handling: work orders, the centre's decisions, ticket links.

* ``gw_work_orders``: one row per department's work order on a ticket. The work order itself
  is a child ticket (in ``gw_tickets``, running the routing's work-order lifecycle: its own
  state, deadlines and escalation); this row links it to its parent ticket with the
  department and its role (``lead`` | ``co``). ``status`` mirrors the child's state, and
  ``fallback`` marks a work order the fallback duty issued.
* ``gw_department_actions``: append-only record of what the centre and the engine decided
  about departments: ``dispatch``, ``designate`` (with reason), ``meeting`` (departments
  present and the decision), ``approve_bounce``, ``fallback``, ``reopen``.
* ``gw_ticket_links``: ``duplicate`` links from a merged ticket to the original it was
  merged into.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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

__all__ = ["department_actions", "ticket_links", "work_orders"]

work_orders = Table(
    "gw_work_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("child_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("department", String(128), nullable=False),
    Column("role", String(8), nullable=False),  # lead | co
    Column("status", String(64), nullable=False),  # the child's state
    Column("fallback", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("child_id"),
    Index(None, "parent_id"),
    Index(None, "department"),
)

department_actions = Table(
    "gw_department_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=False),
    Column("reason", Text, nullable=True),
    Column("data", JSON, nullable=False),
    Index(None, "ticket_id"),
)

ticket_links = Table(
    "gw_ticket_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("other_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # duplicate: ticket_id was merged into other_id
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    UniqueConstraint("ticket_id", "kind"),
)
