"""Uploading evidence and reading it back.

An upload is checked (:func:`engine.evidence.content.check_file`: size, media type, declared
type against content) *before* anything is stored; its bytes go to the
:class:`~engine.evidence.storage.BlobStore` under their SHA-256, and its ``gw_blobs`` row is
written through the engine's one writer (a compound of the evidence participant). A command
then refers to it by digest (``{"upload": sha256}``); the evidence participant links it to
the command's history row. The same bytes uploaded twice are one blob.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from engine.definition.schema import EvidenceSpec
from engine.errors import TicketNotFound
from engine.evidence.content import check_file, kind_of
from engine.evidence.model import Attachment
from engine.evidence.participant import DEFAULT_EVIDENCE, EvidenceRules
from engine.evidence.storage import BlobStore, sha256_of
from engine.runtime.kernel import Kernel
from engine.runtime.model import Actor
from engine.store.evidence_tables import attachments, blobs
from engine.store.tables import definitions, tickets

__all__ = ["Blob", "attachments_of", "evidence_counts", "read_attachment", "upload"]

_INSERT_BLOB = insert(blobs)


@dataclass(frozen=True)
class Blob:
    """A stored file.

    Attributes:
        sha256: its digest (what a command's ``{"upload": ...}`` names).
        media_type: checked against its content; ``kind``: photo, video, audio, document.
        size: bytes. ``new``: False when the same bytes had been uploaded before.
    """

    sha256: str
    media_type: str
    kind: str
    size: int
    new: bool


def upload(kernel: Kernel, store: BlobStore, participant: EvidenceRules, data: bytes, *,
           media_type: str | None, actor: Actor, lifecycle: str | None = None) -> Blob:
    """Check and store a file; record its blob row.

    Args:
        kernel: the engine's kernel.
        store: where the bytes go.
        participant: the engine's evidence participant (the row is staged on its behalf).
        data: the file's bytes.
        media_type: the type the sender declared (None: take the content's).
        actor: who uploads (recorded).
        lifecycle: whose ``evidence`` limits apply (default: the built-in ones).

    Raises:
        EvidenceRejected: too large, of a type not accepted, or the declared type and the
            content disagree; nothing was stored.
    """
    spec: EvidenceSpec = DEFAULT_EVIDENCE
    if lifecycle is not None:
        spec = kernel.lifecycle(lifecycle).spec.evidence or DEFAULT_EVIDENCE
    found_type = check_file(data, media_type, spec)
    digest = sha256_of(data)
    with kernel.reading() as conn:
        known = conn.execute(select(blobs.c.sha256).where(blobs.c.sha256 == digest)).first()
    if known is not None and store.exists(digest):
        return Blob(digest, found_type, kind_of(found_type), len(data), False)
    store.put(data)
    try:
        with kernel.compound(participant) as unit:
            if unit.query(lambda c: c.execute(
                    select(blobs.c.sha256).where(blobs.c.sha256 == digest)).first()) is None:
                unit.add_row(_INSERT_BLOB, {
                    "sha256": digest, "media_type": found_type, "size": len(data),
                    "url": store.locator(digest), "created_at": unit.now,
                    "created_by": actor.id})
    except IntegrityError:
        pass  # the same file was recorded by another request meanwhile
    return Blob(digest, found_type, kind_of(found_type), len(data), known is None)


def _attachment(r: Any) -> Attachment:
    return Attachment(r["id"], r["ticket_id"], r["seq"], r["trigger"], r["kind"], r["tag"],
                      r["sha256"], r["ref"], r["media_type"], r["size"], r["taken_at"],
                      r["added_at"], r["actor"], r["role"])


def attachments_of(conn: Connection, ticket_ids: Sequence[str]) -> list[Attachment]:
    """The attachments of ``ticket_ids``, by ticket, then history order."""
    rows = conn.execute(select(attachments).where(attachments.c.ticket_id.in_(list(ticket_ids)))
                        .order_by(attachments.c.ticket_id, attachments.c.seq,
                                  attachments.c.position)).mappings()
    return [_attachment(r) for r in rows]


def evidence_counts(conn: Connection, lifecycle: str) -> dict[str, int]:
    """How many attachments the tickets of ``lifecycle`` (all its versions) carry.

    Returns:
        ``{"stored": N, "references": M}``: checked files in the blob store, and references
        to files kept elsewhere (a replayed export's photos).
    """
    mine = select(tickets.c.id).where(tickets.c.definition_id.in_(
        select(definitions.c.id).where(definitions.c.name == lifecycle)))
    rows = conn.execute(select(attachments.c.sha256.is_(None), func.count())
                        .where(attachments.c.ticket_id.in_(mine))
                        .group_by(attachments.c.sha256.is_(None))).all()
    found = {bool(is_ref): int(n) for is_ref, n in rows}
    return {"stored": found.get(False, 0), "references": found.get(True, 0)}


MAX_ATTACHMENT_ID = 2**31 - 1  # gw_attachments.id is a 32-bit integer on PostgreSQL


def is_attachment_id(value: object) -> bool:
    """Whether ``value`` could be an attachment's id (a whole number 1 to 2**31 - 1).

    Anything else — a huge number a client sent — names no attachment, and is not sent
    to the database (SQLite and PostgreSQL both fail on integers past their range).
    """
    return (isinstance(value, int) and not isinstance(value, bool)
            and 1 <= value <= MAX_ATTACHMENT_ID)


def read_attachment(conn: Connection, store: BlobStore, ticket_id: str,
                    attachment_id: int) -> tuple[Attachment, Iterator[bytes]]:
    """An attachment of a ticket and its bytes, in chunks.

    Raises:
        TicketNotFound: the ticket has no such attachment, or it is a reference (its bytes
            are not held here).
        FileNotFoundError: the storage lost the file.
    """
    row = None
    if is_attachment_id(attachment_id):
        row = conn.execute(select(attachments).where(attachments.c.id == attachment_id,
                                                     attachments.c.ticket_id == ticket_id)
                           ).mappings().first()
    if row is None or row["sha256"] is None:
        raise TicketNotFound(f"{ticket_id} (attachment {attachment_id})")
    found = _attachment(row)
    assert found.sha256 is not None
    return found, store.chunks(found.sha256)
