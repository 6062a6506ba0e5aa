"""Evidence, the resident's verdict, hand-offs beyond the district (issue 12).

Revision ID: 0008
Revises: 0007
Created: 2026-12-08 09:00:00

* ``gw_blobs``: stored files, content-addressed by SHA-256 (the bytes live in the storage
  backend, never here); ``gw_attachments``: attachments of history rows.
* ``gw_callback_links`` (hashed single-use tokens) and ``gw_callbacks`` (call-back outcomes).
* ``gw_handoffs``: hand-offs to outside organisations.

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UTCDateTime

revision = "0008"
down_revision = "0006"  # 0007 (another branch) lands first; renumbered at merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_gw_blobs")),
    )
    op.create_table(
        "gw_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.Column("media_type", sa.String(length=128), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("taken_at", UTCDateTime(), nullable=True),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["gw_blobs.sha256"], name=op.f("fk_gw_attachments_sha256_gw_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["gw_tickets.id"], name=op.f("fk_gw_attachments_ticket_id_gw_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_attachments")),
        sa.UniqueConstraint(
            "ticket_id", "seq", "position", name=op.f("uq_gw_attachments_ticket_id_seq_position")
        ),
    )
    with op.batch_alter_table("gw_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gw_attachments_sha256"), ["sha256"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_gw_attachments_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "gw_callback_links",
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=71), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("issued_by", sa.String(length=128), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["gw_tickets.id"], name=op.f("fk_gw_callback_links_ticket_id_gw_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_gw_callback_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gw_callback_links_token_hash")),
    )
    op.create_table(
        "gw_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["gw_tickets.id"], name=op.f("fk_gw_callbacks_ticket_id_gw_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_callbacks")),
    )
    with op.batch_alter_table("gw_callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gw_callbacks_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "gw_handoffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("handed_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["gw_tickets.id"], name=op.f("fk_gw_handoffs_ticket_id_gw_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_handoffs")),
    )
    with op.batch_alter_table("gw_handoffs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gw_handoffs_organisation"), ["organisation"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_gw_handoffs_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gw_handoffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gw_handoffs_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_gw_handoffs_organisation"))

    op.drop_table("gw_handoffs")
    with op.batch_alter_table("gw_callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gw_callbacks_ticket_id"))

    op.drop_table("gw_callbacks")
    op.drop_table("gw_callback_links")
    with op.batch_alter_table("gw_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gw_attachments_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_gw_attachments_sha256"))

    op.drop_table("gw_attachments")
    op.drop_table("gw_blobs")
