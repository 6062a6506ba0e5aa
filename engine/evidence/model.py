"""Evidence as commands carry it, and attachments as stored.

A command's ``evidence`` is a list of JSON objects, one per attachment:

* ``{"upload": "<sha256>", "tag": "after", "taken_at": "2024-06-05T09:12:00+08:00"}`` — a
  file stored with ``Engine.upload`` (its media type, size and kind come from the upload);
* ``{"ref": "<text>", "kind": "photo", "tag": ..., "media_type": ..., "taken_at": ...}`` — a
  reference to a file held elsewhere (a replayed export's photo flag, an external URL). It
  is kept, not fetched, and does not count for the lifecycle's requirements.

``tag`` and ``taken_at`` are optional; ``tag`` must be one of the lifecycle's
``evidence.tags``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.definition.schema import EVIDENCE_KINDS

__all__ = ["MAX_ITEMS", "MAX_REF", "Attachment", "Item", "parse_item"]

MAX_ITEMS = 20
"""Attachments one command may carry."""

MAX_REF = 2000
"""The longest reference text (characters)."""

_SHA = re.compile(r"^[0-9a-f]{64}$")
_KEYS = frozenset({"upload", "ref", "kind", "tag", "taken_at", "media_type"})


@dataclass(frozen=True)
class Item:
    """One attachment of a command, parsed (see the module docstring)."""

    upload: str | None
    ref: str | None
    kind: str | None
    tag: str | None
    taken_at: datetime | None
    media_type: str | None


def parse_item(raw: object, tags: Mapping[str, object] | None) -> Item:
    """Read one evidence object; ``tags``: the lifecycle's declared tags (None: none).

    Raises:
        ValueError: what is wrong with it, in words (the caller names its position).
    """
    if not isinstance(raw, Mapping):
        raise ValueError("must be an object such as {\"upload\": \"<sha256>\"}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"has unknown key(s) {', '.join(map(str, unknown))}; allowed: "
                         f"{', '.join(sorted(_KEYS))}")
    upload, ref = raw.get("upload"), raw.get("ref")
    if (upload is None) == (ref is None):
        raise ValueError("gives exactly one of 'upload' (a stored file's SHA-256) or 'ref' "
                         "(a reference to a file held elsewhere)")
    if upload is not None and not (isinstance(upload, str) and _SHA.match(upload)):
        raise ValueError("'upload' must be the SHA-256 an upload answered (64 hex digits)")
    if ref is not None and not (isinstance(ref, str) and ref.strip() and len(ref) <= MAX_REF):
        raise ValueError(f"'ref' must be text of 1 to {MAX_REF} characters")
    kind = raw.get("kind")
    if kind is not None and kind not in EVIDENCE_KINDS:
        raise ValueError(f"'kind' {kind!r} is not one of {', '.join(EVIDENCE_KINDS)}")
    if ref is not None and kind is None:
        raise ValueError("a reference needs a 'kind' (photo, video, audio or document)")
    tag = raw.get("tag")
    if tag is not None and (not isinstance(tag, str) or tags is None or tag not in tags):
        known = ", ".join(sorted(tags or ())) or "(none declared)"
        raise ValueError(f"'tag' {tag!r} is not an evidence tag of this lifecycle; "
                         f"tags: {known}")
    media = raw.get("media_type")
    if media is not None and not (isinstance(media, str) and 0 < len(media) <= 128):
        raise ValueError("'media_type' must be text such as image/jpeg")
    return Item(upload, ref, kind, tag, _instant(raw.get("taken_at")), media)


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'taken_at' {value!r} is not an ISO 8601 instant") from None
    else:
        raise ValueError("'taken_at' must be an ISO 8601 instant such as "
                         "2024-06-05T09:12:00+08:00")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("'taken_at' needs a UTC offset (e.g. +08:00 or Z)")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class Attachment:
    """An attachment as stored (``gw_attachments`` with its blob).

    Attributes:
        id: the row id (what a download names).
        ticket_id, seq, trigger: the history row it came with.
        kind: photo, video, audio or document; tag: ``before``/``after`` or None.
        sha256: the stored file's digest (None for a reference); ref: the reference.
        media_type, size: of the file (bytes; None when unknown).
        taken_at, added_at: aware UTC (taken_at None when not given).
        actor, role: who added it.
    """

    id: int
    ticket_id: str
    seq: int
    trigger: str
    kind: str
    tag: str | None
    sha256: str | None
    ref: str | None
    media_type: str | None
    size: int | None
    taken_at: datetime | None
    added_at: datetime
    actor: str
    role: str

    @property
    def stored(self) -> bool:
        """Whether the bytes are held here (an upload), not elsewhere (a reference)."""
        return self.sha256 is not None
