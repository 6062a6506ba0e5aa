"""A suspension holds the ladder's budget (gw_ladder.held_at).

Revision ID: 0010
Revises: 0009
Created: 2026-12-20 09:00:00

* ``gw_ladder.held_at``: when a suspension (挂起, issue 11) held the level's budget; while
  set the budget's timer is not pending, and the resumption moves ``budget_due`` later by
  the time held. Rows stored before are not held (NULL).

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_ladder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_ladder", schema=None) as batch_op:
        batch_op.drop_column("held_at")
