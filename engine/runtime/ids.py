"""Random identifiers for events: RFC 4122 version 4 UUIDs, cheaper than ``uuid.uuid4()``.

Every history row carries the id of the event it publishes (``Change.event_id``, the outbox's
``event_id``). ``str(uuid.uuid4())`` reads the operating system's random source once per id
and builds a ``UUID`` object (about 2 µs); here each thread reads 4 KiB of it at a time and
formats 16 bytes per id directly (about 0.4 µs). The ids are the same kind: 122 random bits
from ``os.urandom``, version 4, RFC 4122 variant (RFC 9562, section 5.4). A forked child
drops the bytes it inherited, so that parent and child never hand out the same ids.
"""

from __future__ import annotations

import os
import threading

__all__ = ["event_id"]

_CHUNK = 16 * 256


class _Pool(threading.local):
    """One thread's unread random bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0


_pool = _Pool()


def _forget() -> None:
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget)


def event_id() -> str:
    """A new random UUID (version 4) as text: ``xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx``."""
    pool = _pool
    pos = pool.pos
    if pos >= len(pool.buf):
        pool.buf = bytearray(os.urandom(_CHUNK))
        pos = 0
    b = pool.buf[pos:pos + 16]
    pool.pos = pos + 16
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
