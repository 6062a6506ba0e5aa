"""Extension requests, suspensions and supervision notices (issue 11).

Revision ID: 0009
Revises: 0008
Created: 2026-12-15 09:00:00

* ``gw_time_requests``: extension requests (延期申请) and suspensions (挂起) of tickets and
  work orders.
* ``gw_supervision_notices``: the centre's supervision notices (督办).
* ``gw_history.kind`` widened from 16 to 32 characters: ``extension_requested`` (and
  ``follow_on_refused``, 17) did not fit on PostgreSQL.

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_history") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=16),
                           type_=sa.String(length=32), existing_nullable=False)
    op.create_table(
        "gw_time_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deadline", sa.String(length=64), nullable=True),
        sa.Column("cause", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=128), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_role", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("original_due", UTCDateTime(), nullable=True),
        sa.Column("proposed_due", UTCDateTime(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("new_due", UTCDateTime(), nullable=True),
        sa.Column("extended_seconds", sa.Float(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("suspended_seconds", sa.Float(), nullable=True),
        sa.Column("paused", sa.JSON(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["gw_tickets.id"],
            name=op.f("fk_gw_time_requests_ticket_id_gw_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_time_requests")),
        sa.UniqueConstraint("ticket_id", "kind", "n",
                            name=op.f("uq_gw_time_requests_ticket_id_kind_n")),
    )
    op.create_index(op.f("ix_gw_time_requests_parent_id"), "gw_time_requests", ["parent_id"],
                    unique=False)
    op.create_table(
        "gw_supervision_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("department", sa.String(length=128), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_due", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["gw_tickets.id"],
            name=op.f("fk_gw_supervision_notices_ticket_id_gw_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_supervision_notices")),
    )
    op.create_index(op.f("ix_gw_supervision_notices_ticket_id"), "gw_supervision_notices",
                    ["ticket_id"], unique=False)
    op.create_index(op.f("ix_gw_supervision_notices_parent_id"), "gw_supervision_notices",
                    ["parent_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_gw_supervision_notices_parent_id"),
                  table_name="gw_supervision_notices")
    op.drop_index(op.f("ix_gw_supervision_notices_ticket_id"),
                  table_name="gw_supervision_notices")
    op.drop_table("gw_supervision_notices")
    op.drop_index(op.f("ix_gw_time_requests_parent_id"), table_name="gw_time_requests")
    op.drop_table("gw_time_requests")
    with op.batch_alter_table("gw_history") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=32),
                           type_=sa.String(length=16), existing_nullable=False)
