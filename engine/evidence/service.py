"""Uploading evidence, removing what a refused command uploaded, and reading it back.

An upload is checked (:func:`engine.evidence.content.check_file`: size, media type, declared
type against content) *before* anything is stored; its bytes go to the
:class:`~engine.evidence.storage.BlobStore` under their SHA-256, and its ``gw_blobs`` row is
written through the engine's one writer (a compound of the evidence participant). A command
then refers to it by digest (``{"upload": sha256}``); the evidence participant links it to
the command's history row. The same bytes uploaded twice are one blob; the upload that
recorded its row is the one whose :class:`Blob` says ``new``.

:class:`Uploads` (``Engine.uploads()``) holds the files uploaded for a command: when the
block ends — refused or not — :func:`discard` removes the blobs it recorded that no
attachment refers to, so a refused command leaves the store as it was. The rule, and why it
is safe when two requests send the same bytes at once: docs/decisions.md ("A refused
command leaves no file behind").
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from stat import S_ISREG
from typing import IO, Any, BinaryIO, TypeAlias, cast

from sqlalchemy import Connection, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from engine.definition.schema import EvidenceSpec
from engine.errors import ConfigurationError, EvidenceRejected, TicketNotFound
from engine.evidence.content import check_file, kind_of
from engine.evidence.model import Attachment
from engine.evidence.participant import DEFAULT_EVIDENCE, EvidenceRules
from engine.evidence.storage import CHUNK, BlobStore, sha256_of
from engine.runtime.kernel import Kernel
from engine.runtime.model import Actor
from engine.store.evidence_tables import attachments, blobs
from engine.store.tables import definitions, tickets

__all__ = ["Blob", "FileSource", "Uploads", "attachments_of", "discard", "evidence_counts",
           "file_bytes", "read_attachment", "upload"]

log = logging.getLogger("gridwhistle.evidence")

_INSERT_BLOB = insert(blobs)
_DELETE_BLOB = delete(blobs).where(blobs.c.sha256 == bindparam("b_sha"))

FileSource: TypeAlias = bytes | bytearray | memoryview | os.PathLike[str] | BinaryIO
"""What :func:`upload` takes: the file's bytes, the path of a file (``pathlib.Path``; never
a plain ``str``, which could be a path or content), or a file object opened in binary mode."""


@dataclass(frozen=True)
class Blob:
    """A stored file.

    Attributes:
        sha256: its digest (what a command's ``{"upload": ...}`` names).
        media_type: checked against its content; ``kind``: photo, video, audio, document.
        size: bytes. ``new``: True when this upload recorded the file (its first upload);
            False when the same bytes had been uploaded before.
    """

    sha256: str
    media_type: str
    kind: str
    size: int
    new: bool


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _too_large(size: int | None, limit: int) -> EvidenceRejected:
    shown = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
    return EvidenceRejected(
        "too_large", f"the file has {shown}, more than the limit of {limit:,} "
                     "(evidence.max_bytes); send a smaller file", size=size, limit=limit)


def _read(handle: IO[Any], limit: int, what: str, size: int | None = None) -> bytes:
    """At most ``limit`` + 1 bytes of ``handle`` (enough to tell a file is too large).

    ``size``: the file's size when known (a file on disk): one over the limit is refused
    before anything is read.
    """
    if size is not None and size > limit:
        raise _too_large(size, limit)
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = handle.read(min(CHUNK, limit + 1 - total))
        if isinstance(chunk, str):
            raise EvidenceRejected(
                "not_a_file", f"{what} was opened as text; open it in binary mode "
                              "(open(path, 'rb')) or pass pathlib.Path(path)")
        if not chunk:
            break
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise EvidenceRejected(
                "not_a_file", f"{what}.read() returned {type(chunk).__name__}, not bytes; "
                              "pass a file object opened in binary mode")
        parts.append(bytes(chunk))
        total += len(chunk)
    if total > limit:  # a stream, or a file that grew while it was read
        raise _too_large(None, limit)
    return b"".join(parts)


def file_bytes(source: object, limit: int) -> bytes:
    """The bytes of a :data:`FileSource`, reading at most ``limit`` + 1 of a path or stream.

    Args:
        source: bytes (or a ``bytearray`` / ``memoryview``), an ``os.PathLike`` such as
            ``pathlib.Path`` (the file is read), or a binary file object (read from where
            it stands to its end).
        limit: the largest file accepted (``evidence.max_bytes``).

    Raises:
        EvidenceRejected: ``not_a_file`` for a plain ``str`` (ambiguous: a path or the
            content?) or any other type, or a file object opened as text; ``unreadable``
            for a path that cannot be read (missing, a folder, no permission) or a stream
            that fails; ``too_large`` for a path or stream over ``limit``.
    """
    if isinstance(source, bytes):
        return source
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str):
        raise EvidenceRejected(
            "not_a_file", f"upload() was given text ({_shown(source)}), which could be a file "
                          "name or the content: pass pathlib.Path(...) for a file on disk, or "
                          "bytes (text.encode() for the content); a file object opened with "
                          "open(path, 'rb') is accepted too")
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                size = stat.st_size if S_ISREG(stat.st_mode) else None
                return _read(handle, limit, f"file {str(path)!r}", size)
        except OSError as exc:
            raise EvidenceRejected(
                "unreadable", f"cannot read file {str(path)!r}: {exc.strerror or exc}; pass "
                              "the path of a readable file") from None
    if isinstance(source, io.TextIOBase):
        raise EvidenceRejected(
            "not_a_file", "the file object was opened as text; open it in binary mode "
                          "(open(path, 'rb')) or pass pathlib.Path(path)")
    if callable(getattr(source, "read", None)):
        try:
            return _read(cast(IO[Any], source), limit, "the file object")
        except OSError as exc:
            raise EvidenceRejected(
                "unreadable", f"reading the file object failed: {exc}") from None
    raise EvidenceRejected(
        "not_a_file", f"upload() takes the file's bytes, a pathlib.Path or a binary file "
                      f"object, not {type(source).__name__}")


def upload(kernel: Kernel, store: BlobStore, participant: EvidenceRules, data: FileSource, *,
           media_type: str | None, actor: Actor, lifecycle: str | None = None) -> Blob:
    """Check and store a file; record its blob row.

    Args:
        kernel: the engine's kernel.
        store: where the bytes go.
        participant: the engine's evidence participant (the row is staged on its behalf).
        data: the file (see :data:`FileSource` and :func:`file_bytes`).
        media_type: the type the sender declared (None: take the content's).
        actor: who uploads (recorded).
        lifecycle: whose ``evidence`` limits apply (default: the built-in ones).

    Raises:
        EvidenceRejected: not a file (a plain ``str``: pass ``Path(...)`` or bytes), too
            large, of a type not accepted, or the declared type and the content disagree;
            nothing was stored.
    """
    spec: EvidenceSpec = DEFAULT_EVIDENCE
    if lifecycle is not None:
        spec = kernel.lifecycle(lifecycle).spec.evidence or DEFAULT_EVIDENCE
    raw = file_bytes(data, spec.max_bytes)
    found_type = check_file(raw, media_type, spec)
    digest = sha256_of(raw)
    with kernel.reading() as conn:
        known = conn.execute(select(blobs.c.sha256).where(blobs.c.sha256 == digest)).first()
    if known is not None and store.exists(digest):
        return Blob(digest, found_type, kind_of(found_type), len(raw), False)
    store.put(raw)  # before the write lock: the bytes may be large
    recorded = False
    try:
        with kernel.compound(participant) as unit:
            # FOR SHARE on PostgreSQL: wait for a discard() holding the row, then see it gone
            if unit.query(lambda c: c.execute(
                    select(blobs.c.sha256).where(blobs.c.sha256 == digest)
                    .with_for_update(read=True)).first()) is None:
                # a refused command's discard() may have removed the bytes since put():
                # under the lock no other discard runs, so the row never outlives its bytes
                if not store.exists(digest):
                    store.put(raw)
                unit.add_row(_INSERT_BLOB, {
                    "sha256": digest, "media_type": found_type, "size": len(raw),
                    "url": store.locator(digest), "created_at": unit.now,
                    "created_by": actor.id})
                recorded = True
    except IntegrityError:
        recorded = False  # the same file was recorded by another request meanwhile
    return Blob(digest, found_type, kind_of(found_type), len(raw), recorded)


def _unreferenced(conn: Connection, digests: Sequence[str]) -> list[str]:
    """Of ``digests``, the recorded blobs no attachment names, locked (FOR UPDATE)."""
    held = list(conn.execute(select(blobs.c.sha256).where(blobs.c.sha256.in_(list(digests)))
                             .order_by(blobs.c.sha256).with_for_update()).scalars())
    if not held:
        return []
    named = set(conn.execute(select(attachments.c.sha256).where(
        attachments.c.sha256.in_(held))).scalars())
    return [d for d in held if d not in named]


def discard(kernel: Kernel, store: BlobStore, participant: EvidenceRules,
            digests: Sequence[str]) -> list[str]:
    """Remove the blobs among ``digests`` that no attachment refers to: row and bytes.

    For files a command uploaded that were stored for it alone (:class:`Uploads` passes
    only the blobs its own uploads recorded). In one write transaction: the blob rows are
    locked (``FOR UPDATE`` on PostgreSQL; SQLite's write lock), the ones an attachment
    names are kept, the others' bytes are deleted and then their rows, so a row never
    outlives its bytes and an attachment never loses its file. A digest with no row is
    left alone (its bytes may belong to an upload still recording its row).

    Returns:
        The digests removed, in order.
    """
    wanted = sorted(set(digests))
    if not wanted:
        return []
    with kernel.reading() as conn:  # the common case: the command attached them all
        named = set(conn.execute(select(attachments.c.sha256).where(
            attachments.c.sha256.in_(wanted))).scalars())
    if named.issuperset(wanted):
        return []
    with kernel.compound(participant) as unit:
        gone = unit.query(lambda conn: _unreferenced(conn, wanted))
        for digest in gone:
            store.remove(digest)  # before the commit: see upload() for the other side
            unit.add_row(_DELETE_BLOB, {"b_sha": digest})
    return gone


@dataclass
class Uploads:
    """The files uploaded for a command; see :meth:`engine.Engine.uploads`.

    Attributes:
        actor: who uploads (recorded with each blob).
        lifecycle: whose ``evidence`` limits apply (None: the built-in ones).
        keep: keep what was uploaded when the block ends normally (files for a later
            command, as ``POST /uploads``); a block that raises removes them all the same.
        blobs: every file uploaded so far, in order.
        recorded: the digests whose blob rows these uploads recorded (first uploads).
        removed: after the block, the digests removed again.
    """

    kernel: Kernel
    store: BlobStore
    participant: EvidenceRules
    actor: Actor
    lifecycle: str | None = None
    keep: bool = False
    blobs: list[Blob] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def upload(self, data: FileSource, *, media_type: str | None = None) -> Blob:
        """Check and store one file as :meth:`engine.Engine.upload` does; remember it.

        Raises:
            EvidenceRejected: as :meth:`engine.Engine.upload`; the files uploaded before it
                in the block are removed when the exception leaves the block.
            ConfigurationError: called inside ``Engine.atomic()`` or ``Engine.batch()``: a
                blob row recorded there goes if the transaction rolls back, and its bytes
                could not be told from another upload's; upload before opening it.
        """
        if self.kernel.uow.active:
            raise ConfigurationError(
                "Uploads.upload() inside Engine.atomic() or Engine.batch(): upload the files "
                "first, then open the transaction inside the uploads() block")
        blob = upload(self.kernel, self.store, self.participant, data, media_type=media_type,
                      actor=self.actor, lifecycle=self.lifecycle)
        self.blobs.append(blob)
        if blob.new and blob.sha256 not in self.recorded:
            self.recorded.append(blob.sha256)
        return blob

    def close(self, *, failed: bool) -> list[str]:
        """End the block: remove the recorded blobs nothing refers to (unless kept).

        Never raises: a removal that fails is logged (``gridwhistle.evidence``) and leaves
        the files as they were, so it never hides the refusal that ended the block.

        Returns:
            The digests removed.
        """
        if not self.recorded or (self.keep and not failed):
            return []
        try:
            self.removed = discard(self.kernel, self.store, self.participant, self.recorded)
        except Exception:
            log.warning("could not remove the files of a refused command (%s)",
                        ", ".join(d[:12] for d in self.recorded), exc_info=True)
            self.removed = []
        return self.removed


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
