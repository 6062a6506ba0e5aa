"""The walking skeleton's tables: definitions, tickets, history, timers.

Revision ID: 0001
Revises:
Created: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gw_definitions"),
        sa.UniqueConstraint("name", "digest", name="uq_gw_definitions_name_digest"),
        sa.UniqueConstraint("name", "version", name="uq_gw_definitions_name_version"),
    )
    op.create_table(
        "gw_tickets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["definition_id"], ["gw_definitions.id"],
                                name="fk_gw_tickets_definition_id_gw_definitions"),
        sa.PrimaryKeyConstraint("id", name="pk_gw_tickets"),
    )
    op.create_index("ix_gw_tickets_state", "gw_tickets", ["state"])
    op.create_index("ix_gw_tickets_definition_id", "gw_tickets", ["definition_id"])
    op.create_table(
        "gw_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("from_state", sa.String(length=64), nullable=True),
        sa.Column("to_state", sa.String(length=64), nullable=False),
        sa.Column("from_level", sa.String(length=64), nullable=True),
        sa.Column("to_level", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["gw_tickets.id"],
                                name="fk_gw_history_ticket_id_gw_tickets"),
        sa.PrimaryKeyConstraint("id", name="pk_gw_history"),
        sa.UniqueConstraint("ticket_id", "seq", name="uq_gw_history_ticket_id_seq"),
    )
    op.create_table(
        "gw_timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["gw_tickets.id"],
                                name="fk_gw_timers_ticket_id_gw_tickets"),
        sa.PrimaryKeyConstraint("id", name="pk_gw_timers"),
    )
    op.create_index("ix_gw_timers_status_due_at", "gw_timers", ["status", "due_at"])
    op.create_index("ix_gw_timers_ticket_id_status", "gw_timers", ["ticket_id", "status"])


def downgrade() -> None:
    op.drop_table("gw_timers")
    op.drop_table("gw_history")
    op.drop_table("gw_tickets")
    op.drop_table("gw_definitions")
