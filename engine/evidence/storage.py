"""Where the bytes of evidence live: a content-addressed store on any fsspec backend.

A :class:`BlobStore` is given a URL: a local directory (``/var/lib/gridwhistle/evidence`` or
``file:///...``, the default), or any fsspec URL a city configures (``s3://bucket/evidence``
with ``s3fs`` installed, ``memory://`` for tests). A file is stored once under its SHA-256,
``<root>/<aa>/<bb>/<sha256>``; storing the same bytes again stores nothing. The database holds
only the digest, media type, size and this URL (``gw_blobs``), never the bytes.

:meth:`BlobStore.remove` takes a file away again (and, on a local directory, the ``<aa>/<bb>``
folders it leaves empty). Only :func:`engine.evidence.service.discard` calls it, for files
a refused command stored that nothing refers to (the rule and its race: docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from engine.errors import ConfigurationError

__all__ = ["BlobStore", "sha256_of"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 64 * 1024


def sha256_of(data: bytes) -> str:
    """The SHA-256 of ``data``, as 64 lower-case hex digits."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Content-addressed files on an fsspec file system.

    Args:
        url: a directory path or fsspec URL; a local directory is created on the first
            file stored.
        storage_options: passed to fsspec (credentials of an object store, ...).

    Raises:
        ConfigurationError: the URL names no fsspec file system that is installed.
    """

    def __init__(self, url: str | Path, **storage_options: object):
        text = str(url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(text, **storage_options)
        except (ValueError, ImportError) as exc:
            raise ConfigurationError(f"evidence storage {text!r}: {exc}") from exc
        self.url = text
        self.root = str(self.root).rstrip("/")

    def path(self, sha256: str) -> str:
        """Where the file of digest ``sha256`` lives in this store.

        Raises:
            ValueError: ``sha256`` is not 64 lower-case hex digits.
        """
        if not _SHA.match(sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256 digest (64 lower-case hex digits)")
        return f"{self.root}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def locator(self, sha256: str) -> str:
        """The file's full URL (``file:///…/ab/cd/<sha256>``), as kept in ``gw_blobs``."""
        return self.fs.unstrip_protocol(self.path(sha256))  # type: ignore[no-any-return]

    def put(self, data: bytes) -> str:
        """Store ``data`` (once per content) and return its SHA-256.

        Written under a temporary name and moved into place, so a reader never sees part
        of a file.
        """
        digest = sha256_of(data)
        target = self.path(digest)
        if self.fs.exists(target):
            return digest
        parent = target.rsplit("/", 1)[0]
        part = f"{target}.{uuid.uuid4().hex}.part"
        for attempt in range(3):
            try:
                self.fs.makedirs(parent, exist_ok=True)
                self.fs.pipe_file(part, data)
                break
            except FileNotFoundError:  # remove() took the empty folder away meanwhile
                if attempt == 2:
                    raise
        try:
            self.fs.mv(part, target)
        except FileExistsError:  # the same content arrived meanwhile
            self.fs.rm(part)
        return digest

    def remove(self, sha256: str) -> bool:
        """Delete the file of this digest; on a local directory, the folders it leaves empty.

        Returns whether a file was deleted (False: the store did not hold it). Callers make
        sure nothing refers to the file (see :func:`engine.evidence.service.discard`).
        """
        target = self.path(sha256)
        try:
            self.fs.rm_file(target)
        except FileNotFoundError:
            return False
        if isinstance(self.fs, LocalFileSystem):
            # <root>/<aa>/<bb>: shared by every digest with that prefix; a put that finds
            # its folder gone creates it again (see put)
            folder = target.rsplit("/", 1)[0]
            for _ in range(2):
                try:
                    self.fs.rmdir(folder)
                except OSError:  # not empty: another file lives there
                    break
                folder = folder.rsplit("/", 1)[0]
        return True

    def exists(self, sha256: str) -> bool:
        """Whether the store holds the file of this digest."""
        return bool(self.fs.exists(self.path(sha256)))

    def read(self, sha256: str) -> bytes:
        """The file's bytes.

        Raises:
            FileNotFoundError: the store does not hold it.
        """
        data: bytes = self.fs.cat_file(self.path(sha256))
        return data

    def chunks(self, sha256: str, size: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes in chunks of ``size`` (for streaming a download).

        Raises:
            FileNotFoundError: the store does not hold it.
        """
        with self.fs.open(self.path(sha256), "rb") as handle:
            while True:
                chunk = handle.read(size)
                if not chunk:
                    return
                yield chunk
