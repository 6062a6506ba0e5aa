"""Evidence as part of history (issue 12): uploads, attachments, what each trigger needs.

* :mod:`~engine.evidence.content` — a file's media type from its content, against the
  declared one and the lifecycle's limits (the ``filetype`` package);
* :mod:`~engine.evidence.storage` — :class:`BlobStore`: content-addressed bytes on any fsspec
  backend (a local directory by default);
* :mod:`~engine.evidence.model` — evidence as commands carry it; :class:`Attachment` as stored;
* :mod:`~engine.evidence.participant` — :class:`EvidenceRules`, the participant that checks
  the lifecycle's ``requirements`` (fields and evidence per trigger and role) and links
  attachments to history rows;
* :mod:`~engine.evidence.service` — :func:`upload` (bytes, a ``pathlib.Path`` or a binary
  file), :class:`Uploads` and :func:`discard` (a refused command's files removed again), and
  the reads.
"""

from engine.evidence.content import check_file, detect, kind_of
from engine.evidence.model import Attachment
from engine.evidence.participant import EvidenceRules
from engine.evidence.service import (
    Blob,
    FileSource,
    Uploads,
    attachments_of,
    discard,
    evidence_counts,
    file_bytes,
    read_attachment,
    upload,
)
from engine.evidence.storage import BlobStore

__all__ = ["Attachment", "Blob", "BlobStore", "EvidenceRules", "FileSource", "Uploads",
           "attachments_of", "check_file", "detect", "discard", "evidence_counts", "file_bytes",
           "kind_of", "read_attachment", "upload"]
