"""A refused command leaves the evidence store as it was, and ``upload`` says what it takes.

Real parts throughout: a SQLite file (and a PostgreSQL schema where the server is reachable),
the fsspec local evidence store in a real directory, and uvicorn on loopback for the HTTP
API, Open311 and the console's forms. Each refusal — a file refused after others were
stored, or the command itself refused by the lifecycle — must leave the store's files and
its ``gw_blobs`` rows exactly as they were before the request, while files stored earlier
or named by another ticket's attachment stay.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from backends import BACKENDS, pg_schema, store_url
from evidence_files import pdf_bytes, png_bytes
from servers import running
from sqlalchemy import create_engine, delete, select, text

from adapters.http import ApiKey, create_app
from engine import (
    Actor,
    ConfigurationError,
    Engine,
    EvidenceInvalid,
    EvidenceRejected,
    InvalidFields,
    VirtualClock,
)
from engine.evidence import BlobStore, upload
from engine.store.evidence_tables import blobs

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)  # Wed 09:00 in Shanghai, a working day
GW, CENTRE = Actor("gw-017", "grid_worker"), Actor("ops-1", "centre")
SAN = Actor("san-3", "department")
KEYS = {
    "k-gw": ApiKey(actor="gw-017", role="grid_worker"),
    "k-ops": ApiKey(actor="ops-1", role="centre"),
    "k-san": ApiKey(actor="san-3", role="department", department="sanitation"),
}


def _files(store: Path) -> list[str]:
    """Every file and folder under the store, relative to it."""
    return sorted(str(p.relative_to(store)) for p in store.rglob("*")) if store.exists() else []


def _rows(engine: Engine) -> list[str]:
    with engine.kernel.reading() as conn:
        return sorted(conn.execute(select(blobs.c.sha256)).scalars())


def _state(engine: Engine, store: Path) -> tuple[list[str], list[str]]:
    return _files(store), _rows(engine)


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    store = tmp_path / "evidence"
    with store_url(request.param, tmp_path) as url:
        engine = Engine(url, clock=VirtualClock(T0), evidence_store=str(store))
        try:
            yield engine, store
        finally:
            engine.stop()


def _reported(engine: Engine, ticket_id: str = "T-1") -> str:
    """A grid worker's ticket with its photo attached; the photo's digest."""
    site = engine.upload(png_bytes(rgb=(1, 2, 3)), actor=GW, lifecycle="grid_incident")
    engine.report("grid_incident", {"category": "garbage"}, actor=GW, ticket_id=ticket_id,
                  evidence=[{"upload": site.sha256}])
    return site.sha256


# -- the Python API ---------------------------------------------------------------------------


def test_a_command_refused_by_the_lifecycle_leaves_the_store_as_it_was(
        eng: tuple[Engine, Path]) -> None:
    engine, store = eng
    attached = _reported(engine)
    loose = engine.upload(png_bytes(rgb=(4, 5, 6)), actor=GW).sha256  # for a later command
    before = _state(engine, store)
    with pytest.raises(InvalidFields), engine.uploads(actor=GW,
                                                      lifecycle="grid_incident") as files:
        new = [files.upload(png_bytes(rgb=(9, i, 9))) for i in range(3)]
        again = files.upload(png_bytes(rgb=(1, 2, 3)))  # T-1's photo, sent again
        kept = files.upload(png_bytes(rgb=(4, 5, 6)))  # stored before the block
        assert [b.new for b in [*new, again, kept]] == [True, True, True, False, False]
        assert len(_files(store)) > len(before[0])
        engine.report("grid_incident", {"category": "garbage", "no_such_field": 1},
                      actor=GW, evidence=[{"upload": b.sha256}
                                          for b in [*new, again, kept]])
    assert _state(engine, store) == before
    assert sorted(files.removed) == sorted(b.sha256 for b in new)
    # what was there before is intact: T-1's photo downloads, the loose upload still serves
    [att] = engine.attachments("T-1")
    assert att.sha256 == attached
    assert b"".join(engine.read_attachment("T-1", att.id)[1]) == png_bytes(rgb=(1, 2, 3))
    t = engine.report("grid_incident", {"category": "noise"}, actor=GW,
                      evidence=[{"upload": loose}])
    assert [a.sha256 for a in engine.attachments(t.id)] == [loose]


def test_a_file_refused_after_others_were_stored_removes_them(
        eng: tuple[Engine, Path]) -> None:
    engine, store = eng
    _reported(engine)
    before = _state(engine, store)
    with pytest.raises(EvidenceRejected) as info, engine.uploads(
            actor=GW, lifecycle="grid_incident") as files:
        files.upload(png_bytes(rgb=(7, 7, 7)))
        files.upload(pdf_bytes())
        files.upload(b"MZ\x90\x00" + bytes(60), media_type="image/jpeg")  # a program
    assert info.value.why == "mismatch"
    assert _state(engine, store) == before
    assert len(files.removed) == 2


def test_a_command_that_succeeds_keeps_its_files_and_drops_the_ones_it_did_not_use(
        eng: tuple[Engine, Path]) -> None:
    engine, store = eng
    with engine.uploads(actor=GW, lifecycle="grid_incident") as files:
        used = files.upload(io.BytesIO(png_bytes(rgb=(8, 8, 8))))
        unused = files.upload(png_bytes(rgb=(3, 3, 3)))
        t = engine.report("grid_incident", {"category": "garbage"}, actor=GW,
                          evidence=[{"upload": used.sha256}])
    assert files.removed == [unused.sha256]
    assert _rows(engine) == [used.sha256]
    assert [a.sha256 for a in engine.attachments(t.id)] == [used.sha256]
    assert BlobStore(str(store)).read(used.sha256) == png_bytes(rgb=(8, 8, 8))
    # keep=True: files for a later command stay (POST /uploads) ...
    with engine.uploads(actor=GW, keep=True) as files:
        later = files.upload(png_bytes(rgb=(5, 5, 5)))
    assert files.removed == [] and later.sha256 in _rows(engine)
    # ... unless the block raises
    before = _state(engine, store)
    with pytest.raises(RuntimeError), engine.uploads(actor=GW, keep=True) as files:
        files.upload(png_bytes(rgb=(6, 6, 6)))
        raise RuntimeError("the host gave up")
    assert _state(engine, store) == before


def test_uploads_inside_a_transaction_are_refused_with_what_to_do(
        eng: tuple[Engine, Path]) -> None:
    engine, store = eng
    before = _state(engine, store)
    with (engine.uploads(actor=GW) as files, engine.atomic(),
          pytest.raises(ConfigurationError, match="upload the files first")):
        files.upload(png_bytes())
    assert _state(engine, store) == before


def test_two_requests_sending_the_same_bytes_one_refused(eng: tuple[Engine, Path]) -> None:
    """The race the rule accepts: a file is removed only by the upload that recorded it."""
    engine, _ = eng
    photo = png_bytes(rgb=(40, 50, 60))
    # B's command commits before A's refusal: A keeps the file B's attachment names
    with pytest.raises(InvalidFields), engine.uploads(actor=GW) as a:
        assert a.upload(photo).new
        with engine.uploads(actor=GW) as b:
            assert not b.upload(photo).new
            t = engine.report("grid_incident", {"category": "garbage"}, actor=GW,
                              evidence=[{"upload": b.blobs[0].sha256}])
        engine.report("grid_incident", {"category": "garbage", "bogus": 1}, actor=GW,
                      evidence=[{"upload": a.blobs[0].sha256}])
    assert a.removed == [] and _rows(engine) == [a.blobs[0].sha256]
    assert b"".join(engine.read_attachment(t.id, engine.attachments(t.id)[0].id)[1]) == photo
    # A is refused before B's command: the file goes, and B's command is refused cleanly
    # (the upload is unknown) instead of attaching a file the store no longer holds
    other = png_bytes(rgb=(70, 80, 90))
    with engine.uploads(actor=GW) as b:
        with pytest.raises(InvalidFields), engine.uploads(actor=GW) as a:
            sha = a.upload(other).sha256
            assert not b.upload(other).new
            engine.report("grid_incident", {"category": "garbage", "bogus": 1}, actor=GW,
                          evidence=[{"upload": sha}])
        assert a.removed == [sha] and sha not in _rows(engine)
        with pytest.raises(EvidenceInvalid, match="upload the file first"):
            engine.report("grid_incident", {"category": "garbage"}, actor=GW,
                          evidence=[{"upload": sha}])
        b.upload(other)  # sent again, it is stored again
        t2 = engine.report("grid_incident", {"category": "garbage"}, actor=GW,
                           evidence=[{"upload": sha}])
    assert b"".join(engine.read_attachment(t2.id, engine.attachments(t2.id)[0].id)[1]) == other


class _Paused(BlobStore):
    """The same directory; runs ``between`` once, right after the next ``put``."""

    between: object = None

    def put(self, data: bytes) -> str:
        digest = super().put(data)
        step, self.between = self.between, None
        if callable(step):
            step()
        return digest


def test_a_removal_between_an_uploads_store_and_its_row_does_not_lose_the_file(
        eng: tuple[Engine, Path]) -> None:
    """B reads "no such blob", A records it, B's put finds the bytes there, A is refused and
    removes row and bytes, then B records its row: B must store the bytes again."""
    engine, store = eng
    photo = png_bytes(rgb=(11, 22, 33))
    slow = _Paused(str(store))

    def a_is_refused() -> None:
        with pytest.raises(InvalidFields), engine.uploads(actor=GW) as a:
            assert a.upload(photo).new  # B has stored the bytes, not yet its row
            engine.report("grid_incident", {"category": "garbage", "bogus": 1},
                          actor=GW, evidence=[{"upload": a.blobs[0].sha256}])
        assert len(a.removed) == 1 and not BlobStore(str(store)).exists(a.removed[0])

    slow.between = a_is_refused
    blob = upload(engine.kernel, slow, engine.evidence_rules, photo, media_type=None,
                  actor=GW)
    assert blob.new and blob.sha256 in _rows(engine)
    assert BlobStore(str(store)).exists(blob.sha256)  # the row never outlives its bytes
    t = engine.report("grid_incident", {"category": "garbage"}, actor=GW,
                      evidence=[{"upload": blob.sha256}])
    assert b"".join(engine.read_attachment(t.id, engine.attachments(t.id)[0].id)[1]) == photo


@pytest.mark.postgres
def test_on_postgres_a_command_racing_a_removal_is_refused_cleanly(tmp_path: Path) -> None:
    """A removal holds the blob's row (FOR UPDATE) while a command that names it checks its
    evidence: the command waits, then finds the upload gone — ``EvidenceInvalid``, not a
    foreign-key error from a database that lost the file under it."""
    with pg_schema() as url:
        name = f"gw-race-{uuid.uuid4().hex[:8]}"
        engine = Engine(f"{url}&application_name={name}", clock=VirtualClock(T0),
                        evidence_store=str(tmp_path / "evidence"))
        admin = create_engine(url)
        try:
            sha = engine.upload(png_bytes(rgb=(2, 4, 6)), actor=GW).sha256
            outcome: list[BaseException | str] = []

            def report() -> None:
                try:
                    engine.report("grid_incident", {"category": "garbage"}, actor=GW,
                                  evidence=[{"upload": sha}])
                    outcome.append("reported")
                except BaseException as exc:
                    outcome.append(exc)

            with admin.connect() as conn:
                removal = conn.begin()  # what discard() does, held open
                conn.execute(select(blobs.c.sha256).where(blobs.c.sha256 == sha)
                             .with_for_update())
                conn.execute(delete(blobs).where(blobs.c.sha256 == sha))
                racer = threading.Thread(target=report)
                racer.start()
                waiting = text("SELECT count(*) FROM pg_stat_activity WHERE "
                               "application_name = :n AND wait_event_type = 'Lock'")
                with admin.connect() as watch:
                    for _ in range(300):
                        if watch.execute(waiting, {"n": name}).scalar():
                            break
                        time.sleep(0.05)
                    else:
                        pytest.fail("the command never waited for the removal's lock")
                removal.commit()
                racer.join(timeout=30)
            [got] = outcome
            assert isinstance(got, EvidenceInvalid), got
            assert "upload the file first" in str(got)
        finally:
            admin.dispose()
            engine.stop()


# -- what upload() takes ----------------------------------------------------------------------


def test_upload_takes_bytes_a_path_or_a_binary_file_and_refuses_a_plain_str(
        tmp_path: Path) -> None:
    engine = Engine(tmp_path / "u.sqlite", clock=VirtualClock(T0),
                    evidence_store=str(tmp_path / "evidence"))
    try:
        data = png_bytes(rgb=(12, 34, 56))
        path = tmp_path / "site.png"
        path.write_bytes(data)
        sha = engine.upload(data, actor=GW).sha256
        with path.open("rb") as handle:
            got = {engine.upload(path, actor=GW).sha256,
                   engine.upload(handle, actor=GW).sha256,
                   engine.upload(io.BytesIO(data), actor=GW).sha256,
                   engine.upload(bytearray(data), actor=GW).sha256,
                   engine.upload(memoryview(data), actor=GW).sha256}
        assert got == {sha}
        before = _files(tmp_path / "evidence")
        # text is ambiguous (a file name? the content?): refused, naming what to pass,
        # whether or not a file of that name exists
        for text in ("some text", str(path)):
            with pytest.raises(EvidenceRejected) as info:
                engine.upload(text, actor=GW)  # type: ignore[arg-type]
            assert info.value.why == "not_a_file"
            assert "Path(" in str(info.value) and "bytes" in str(info.value)
        with path.open("r") as text_mode, pytest.raises(EvidenceRejected) as info:
            engine.upload(text_mode, actor=GW)  # type: ignore[arg-type]
        assert info.value.why == "not_a_file" and "'rb'" in str(info.value)
        with pytest.raises(EvidenceRejected) as info:
            engine.upload(42, actor=GW)  # type: ignore[arg-type]
        assert info.value.why == "not_a_file" and "not int" in str(info.value)
        with pytest.raises(EvidenceRejected) as info:
            engine.upload(tmp_path / "missing.png", actor=GW)
        assert info.value.why == "unreadable" and "missing.png" in str(info.value)
        with pytest.raises(EvidenceRejected) as info:
            engine.upload(tmp_path, actor=GW)  # a folder
        assert info.value.why == "unreadable"
        # a large path or stream is refused without reading it all
        big = tmp_path / "big.bin"
        big.write_bytes(data + bytes(30 * 1024 * 1024))
        with pytest.raises(EvidenceRejected) as info:
            engine.upload(big, actor=GW)
        assert (info.value.why, info.value.size) == ("too_large", big.stat().st_size)
        with big.open("rb") as handle, pytest.raises(EvidenceRejected) as info:
            engine.upload(handle, actor=GW)
        assert (info.value.why, info.value.size, info.value.limit) == (
            "too_large", None, 20 * 1024 * 1024)
        assert "more than 20,971,520 bytes" in str(info.value)
        assert _files(tmp_path / "evidence") == before
    finally:
        engine.stop()


# -- over HTTP: the API, Open311, the console's forms -----------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine, Path]]:
    store = tmp_path / "evidence"
    engine = Engine(tmp_path / "h.sqlite", clock=VirtualClock(T0), evidence_store=str(store))
    try:
        with running(create_app(engine, api_keys=KEYS)) as url, httpx.Client(
                base_url=url, timeout=30) as client:
            yield client, engine, store
    finally:
        engine.stop()


def _png(name: str, rgb: tuple[int, int, int]) -> tuple[str, bytes, str]:
    return (name, png_bytes(rgb=rgb), "image/png")


def test_the_api_leaves_the_store_as_it_was_when_a_request_is_refused(
        served: tuple[httpx.Client, Engine, Path]) -> None:
    http, engine, store = served
    gw, san = {"X-API-Key": "k-gw"}, {"X-API-Key": "k-san"}
    _reported(engine)
    before = _state(engine, store)
    # POST /uploads is all or nothing: the third file is refused, the first two go
    r = http.post("/uploads", headers=gw, files=[
        ("file", _png("a.png", (1, 1, 1))), ("file", _png("b.png", (2, 2, 2))),
        ("file", ("c.jpg", png_bytes(rgb=(3, 3, 3)), "image/jpeg"))])
    assert (r.status_code, r.json()["why"], r.json()["filename"]) == (422, "mismatch",
                                                                      "c.jpg")
    assert _state(engine, store) == before
    # a report with files, the second refused
    command = json.dumps({"fields": {"category": "garbage"}})
    r = http.post("/tickets/with-evidence", headers=gw, data={"command": command}, files=[
        ("file", _png("a.png", (1, 1, 1))),
        ("file", ("notes.txt", b"text\n", "text/plain"))])
    assert (r.status_code, r.json()["why"]) == (422, "media_type")
    assert _state(engine, store) == before
    # a report with good files, one of them T-1's photo, refused by the lifecycle
    bad = json.dumps({"fields": {"category": "garbage", "no_such_field": 1}})
    r = http.post("/tickets/with-evidence", headers=gw, data={"command": bad}, files=[
        ("file", _png("a.png", (1, 1, 1))), ("file", _png("t1.png", (1, 2, 3)))])
    assert (r.status_code, r.json()["title"]) == (422, "InvalidFields")
    assert _state(engine, store) == before
    # a tag per file that does not line up with the files: refused after they were stored
    r = http.post("/tickets/with-evidence", headers=gw,
                  data={"command": command, "tag": ["before", "after", "before"]},
                  files=[("file", _png("a.png", (1, 1, 1))),
                         ("file", _png("b.png", (2, 2, 2)))])
    assert (r.status_code, r.json()["type"]) == (400, "urn:gridwhistle:problem:bad-tag")
    assert _state(engine, store) == before
    # a trigger with files: not allowed in this state (dispatched, not yet on site) ...
    engine.fire("T-1", "dispatch", actor=CENTRE, fields={"department": "sanitation"})
    two = [("file", _png("x.png", (0, 9, 0))), ("file", _png("y.png", (0, 8, 0)))]
    r = http.post("/tickets/T-1/triggers/resolve/with-evidence", headers=san,
                  data={"tag": "after"}, files=two)
    assert (r.status_code, r.json()["title"]) == (409, "TriggerNotAllowed"), r.text
    assert _state(engine, store) == before
    # ... then allowed, but without the photo tagged "after" the lifecycle asks for
    engine.fire("T-1", "arrive", actor=SAN)
    r = http.post("/tickets/T-1/triggers/resolve/with-evidence", headers=san,
                  data={"tag": "before"}, files=two)
    assert (r.status_code, r.json()["title"]) == (422, "EvidenceMissing"), r.text
    assert _state(engine, store) == before
    # a stale If-Match: refused before the command runs
    r = http.post("/tickets/T-1/triggers/resolve/with-evidence",
                  headers={**san, "If-Match": '"1"'}, data={"tag": "after"},
                  files=[("file", _png("x.png", (0, 9, 0)))])
    assert r.status_code == 412
    assert _state(engine, store) == before
    # and the same request, right, keeps its file
    r = http.post("/tickets/T-1/triggers/resolve/with-evidence", headers=san,
                  data={"tag": "after"}, files=[("file", _png("x.png", (0, 9, 0)))])
    assert (r.status_code, r.json()["state"]) == (200, "resolved"), r.text
    assert len(_rows(engine)) == len(before[1]) + 1


def test_open311_leaves_the_store_as_it_was_when_a_report_is_refused(
        served: tuple[httpx.Client, Engine, Path]) -> None:
    http, engine, store = served
    _reported(engine)
    before = _state(engine, store)
    r = http.post("/open311/v2/requests.json", data={
        "api_key": "k-gw", "service_code": "garbage", "lat": "39.9", "long": "116.4",
        "attribute[department]": "sanitation"},  # not the grid worker's to set
        files={"media": ("p.png", png_bytes(rgb=(5, 6, 7)), "image/png")})
    assert r.status_code == 403, r.text
    assert _state(engine, store) == before
    r = http.post("/open311/v2/requests.json", data={
        "api_key": "k-gw", "service_code": "garbage", "lat": "39.9", "long": "116.4"},
        files={"media": ("p.png", png_bytes(rgb=(5, 6, 7)), "image/png")})
    assert r.status_code == 200, r.text
    assert len(_rows(engine)) == len(before[1]) + 1


def test_the_consoles_forms_leave_the_store_as_it_was_when_refused(
        served: tuple[httpx.Client, Engine, Path]) -> None:
    http, engine, store = served
    san = {"X-API-Key": "k-san"}
    _reported(engine, "T-2")
    engine.fire("T-2", "dispatch", actor=CENTRE, fields={"department": "sanitation"})
    engine.fire("T-2", "arrive", actor=SAN)
    before = _state(engine, store)
    # the second file is refused (not a type the lifecycle accepts)
    r = http.post("/console/tickets/T-2/actions", headers=san,
                  data={"action": "fire:resolve", "evidence_0_tag": "after"},
                  files=[("evidence_0", _png("after.png", (0, 120, 0))),
                         ("evidence_0", ("notes.txt", b"just text\n", "text/plain"))])
    assert r.status_code == 422 and 'id="refusal"' in r.text
    assert _state(engine, store) == before
    # good files, but the trigger is refused: no photo tagged "after"
    r = http.post("/console/tickets/T-2/actions", headers=san,
                  data={"action": "fire:resolve", "evidence_0_tag": "before"},
                  files=[("evidence_0", _png("b1.png", (0, 1, 0))),
                         ("evidence_0", _png("b2.png", (0, 2, 0)))])
    assert r.status_code == 422 and 'id="refusal"' in r.text
    assert _state(engine, store) == before
    assert engine.get("T-2").state == "on_site"
    r = http.post("/console/tickets/T-2/actions", headers=san,
                  data={"action": "fire:resolve", "evidence_0_tag": "after"},
                  files=[("evidence_0", _png("after.png", (0, 120, 0)))])
    assert r.status_code == 303, r.text
    assert engine.get("T-2").state == "resolved"
    assert len(_rows(engine)) == len(before[1]) + 1
