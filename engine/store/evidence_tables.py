"""Tables of evidence, the resident's verdict and hand-offs beyond the district (issue 12).

* ``gw_blobs``: one row per stored file, content-addressed: its SHA-256 (hex) is the key,
  with its media type (checked against its content), its size in bytes, the storage URL
  the bytes live at (an fsspec URL: a local directory by default, an object store by
  configuration) and who uploaded it when. The bytes are never in the database.
* ``gw_attachments``: one row per attachment of a history row: the ticket and ``seq`` of
  the row it came with, its kind (photo, video, audio, document), tag (``before``,
  ``after``), the blob (``sha256``) or, for a reference to a file held elsewhere (a
  replayed export's photo flag, an external URL), ``ref``; when it was taken, who added it.
* ``gw_callback_links``: the call-back link of a ticket in its call-back step: the
  SHA-256 of its single-use token (never the token), when it was issued and by whom,
  until when it is valid, when it was used.
* ``gw_callbacks``: one row per call-back outcome: ``confirmed`` (fixed), ``not_fixed``
  (back to work) or ``unanswered`` (closed by the system at the deadline), with the 1–5
  rating and comment, and the channel: ``link`` (the resident), ``call`` (the centre
  recorded the call) or ``system``.
* ``gw_handoffs``: one row per hand-off to an outside organisation: when, due when, and how
  it ended (``answered`` or ``returned``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

__all__ = ["attachments", "blobs", "callback_links", "callbacks", "handoffs"]

blobs = Table(
    "gw_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("media_type", String(128), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("url", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
)

attachments = Table(
    "gw_attachments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("seq", Integer, nullable=False),  # the history row it came with
    Column("position", Integer, nullable=False),  # its place among that row's attachments
    Column("trigger", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # photo | video | audio | document
    Column("tag", String(64), nullable=True),
    Column("sha256", String(64), ForeignKey("gw_blobs.sha256"), nullable=True),
    Column("ref", Text, nullable=True),  # a reference to a file held elsewhere
    Column("media_type", String(128), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("taken_at", UTCDateTime(), nullable=True),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=False),
    UniqueConstraint("ticket_id", "seq", "position"),
    Index(None, "ticket_id"),
    Index(None, "sha256"),
)

callback_links = Table(
    "gw_callback_links",
    metadata,
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), primary_key=True),
    Column("token_hash", String(71), nullable=False),  # sha256:<hex> of the token
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("issued_by", String(128), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    UniqueConstraint("token_hash"),
)

callbacks = Table(
    "gw_callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),  # confirmed | not_fixed | unanswered
    Column("rating", Integer, nullable=True),
    Column("comment", Text, nullable=True),
    Column("channel", String(16), nullable=False),  # link | call | system
    Column("actor", String(128), nullable=False),
    Index(None, "ticket_id"),
)

handoffs = Table(
    "gw_handoffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(64), ForeignKey("gw_tickets.id"), nullable=False),
    Column("organisation", String(64), nullable=False),
    Column("seq", Integer, nullable=False),  # the hand-off's history row
    Column("handed_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("outcome", String(16), nullable=True),  # answered | returned
    Index(None, "ticket_id"),
    Index(None, "organisation"),
)
