"""Event ids (engine/runtime/ids.py): version 4 UUIDs, unique across threads and forks."""

from __future__ import annotations

import os
import threading
import uuid

from engine.runtime.ids import event_id


def test_an_event_id_is_a_version_4_uuid_in_canonical_text() -> None:
    for _ in range(600):  # past one 4 KiB refill
        text = event_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_threads_never_share_an_id() -> None:
    seen: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(event_id() for _ in range(3000))

    threads = [threading.Thread(target=work, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in seen for i in out]
    assert len(set(every)) == len(every) == 12000


def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    event_id()  # the parent holds unread random bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, "\n".join(event_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        child = set(handle.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {event_id() for _ in range(50)}
    assert len(child) == 50
    assert not child & parent
