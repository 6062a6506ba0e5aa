"""Failed timers (gw_timers.failures, last_error); idempotency keys scoped per actor.

Revision ID: 0006
Revises: 0005
Created: 2026-12-01 10:30:00

* ``gw_timers``: ``failures`` (how often firing a timer failed) and ``last_error``.
* ``gw_idempotency``: a column ``owner`` (the actor id that sent the key) joins the primary
  key, so that two clients' keys never collide. Keys stored before have owner ``''`` and are
  not found by new requests (a retry after the upgrade is applied once more).

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_timers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failures", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    with op.batch_alter_table("gw_idempotency", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=128), nullable=False,
                                      server_default=""))
        batch_op.drop_constraint("pk_gw_idempotency", type_="primary")
        batch_op.create_primary_key("pk_gw_idempotency", ["owner", "key"])


def downgrade() -> None:
    with op.batch_alter_table("gw_idempotency", schema=None) as batch_op:
        batch_op.drop_constraint("pk_gw_idempotency", type_="primary")
        batch_op.create_primary_key("pk_gw_idempotency", ["key"])
        batch_op.drop_column("owner")
    with op.batch_alter_table("gw_timers", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("failures")
