"""Timer claims under a lease (gw_timers.claimed_by, lease_until) and gw_idempotency.

Revision ID: 0002
Revises: 0001
Created: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_timers") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
    op.create_table(
        "gw_idempotency",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_gw_idempotency"),
    )


def downgrade() -> None:
    op.drop_table("gw_idempotency")
    with op.batch_alter_table("gw_timers") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
