"""What a file is: its media type from its content, checked against what the sender declared.

The content is read with the ``filetype`` package (magic numbers of images, video, audio,
archives and documents; pure Python, no dependencies — why this one: docs/decisions.md). A
file is accepted when its content shows the media type the sender declared (aliases such as
``image/jpg`` count as ``image/jpeg``), that type is among the lifecycle's ``evidence``
``media_types``, and it is no larger than ``max_bytes``. Plain text (``text/plain``,
``text/csv``), which has no magic number, is accepted when declared, allowed and valid UTF-8.
"""

from __future__ import annotations

import filetype

from engine.definition.schema import EvidenceSpec
from engine.errors import EvidenceRejected

__all__ = ["ALIASES", "check_file", "detect", "kind_of", "normalise"]

ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "application/x-pdf": "application/pdf",
}
"""Media types some clients send for a type that has another registered name."""

_TEXT = ("text/plain", "text/csv")


def normalise(media_type: str) -> str:
    """``media_type`` lower-cased, without parameters (``; charset=...``), aliases resolved."""
    base = media_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def detect(data: bytes) -> str | None:
    """The media type the content shows (its magic number), or None when none is known."""
    found = filetype.guess(data[:8192])
    return normalise(str(found.mime)) if found is not None else None


def kind_of(media_type: str) -> str:
    """``photo`` (image/*), ``video``, ``audio`` or ``document`` (anything else)."""
    major = media_type.split("/", 1)[0]
    return {"image": "photo", "video": "video", "audio": "audio"}.get(major, "document")


def check_file(data: bytes, declared: str | None, spec: EvidenceSpec) -> str:
    """The media type of an uploaded file, once it passed the limits of ``spec``.

    Args:
        data: the file's bytes.
        declared: the media type the sender gave (a multipart part's ``Content-Type``);
            None or ``application/octet-stream``: take the content's.
        spec: the lifecycle's evidence section (size and media-type limits).

    Returns:
        The file's media type (normalised).

    Raises:
        EvidenceRejected: larger than ``max_bytes`` (``too_large``), the content of no known
            type (``unknown_content``), the declared type and the content disagree
            (``mismatch``), or a type the lifecycle does not accept (``media_type``).
    """
    size = len(data)
    if size > spec.max_bytes:
        raise EvidenceRejected(
            "too_large", f"the file has {size:,} bytes, more than the limit of "
                         f"{spec.max_bytes:,} (evidence.max_bytes); send a smaller file",
            size=size, limit=spec.max_bytes)
    if size == 0:
        raise EvidenceRejected("unknown_content", "the file is empty", size=0)
    wanted = normalise(declared) if declared else None
    if wanted == "application/octet-stream":
        wanted = None
    found = detect(data)
    if found is None and wanted in _TEXT:
        try:
            data.decode("utf-8")
            found = wanted
        except UnicodeDecodeError:
            found = None
    if found is None:
        raise EvidenceRejected(
            "unknown_content", "the file's content is of no type known (not an image, video, "
                               "audio file or document this server recognises)",
            declared=wanted, size=size)
    if wanted is not None and wanted != found:
        raise EvidenceRejected(
            "mismatch", f"the file was sent as {wanted} but its content is {found}; send it "
                        "with its real type", declared=wanted, detected=found, size=size)
    accepted = [normalise(t) for t in spec.media_types]
    if found not in accepted:
        raise EvidenceRejected(
            "media_type", f"files of type {found} are not accepted here; accepted: "
                          f"{', '.join(accepted)}", declared=wanted, detected=found, size=size)
    return found
