"""Evidence and requirements in the engine (issue 12): checks, definitions, storage."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from evidence_files import pdf_bytes, photo, png_bytes

from engine import (
    Actor,
    DefinitionError,
    Engine,
    EvidenceMissing,
    EvidenceRejected,
    InvalidFields,
    VirtualClock,
    load_definition,
    parse_definition,
)
from engine.definition.schema import EvidenceSpec
from engine.evidence import BlobStore, check_file, detect
from engine.evidence.participant import EvidenceRules
from engine.store.evidence_tables import attachments
from engine.store.reads import load_tickets

T0 = datetime(2024, 6, 5, 1, 0, tzinfo=UTC)
GW, CENTRE, DEPT = (Actor("gw-017", "grid_worker"), Actor("ops-1", "centre"),
                    Actor("san-3", "department"))


@pytest.fixture
def eng(tmp_path: Path) -> Engine:
    e = Engine(tmp_path / "e.sqlite", clock=VirtualClock(T0),
               evidence_store=str(tmp_path / "store"))
    yield e
    e.stop()


def test_content_is_checked_against_the_declared_type(tmp_path: Path) -> None:
    spec = EvidenceSpec()
    data = photo(tmp_path).read_bytes()
    assert detect(data) == "image/png"
    assert check_file(data, "image/png", spec) == "image/png"
    assert check_file(data, None, spec) == "image/png"
    assert check_file(pdf_bytes(), "application/x-pdf", spec) == "application/pdf"
    with pytest.raises(EvidenceRejected) as info:
        check_file(data, "image/jpeg", spec)
    assert (info.value.why, info.value.declared, info.value.detected) == (
        "mismatch", "image/jpeg", "image/png")
    with pytest.raises(EvidenceRejected) as info:
        check_file(data, "image/png", EvidenceSpec(max_bytes=10))
    assert (info.value.why, info.value.size, info.value.limit) == ("too_large", len(data), 10)
    with pytest.raises(EvidenceRejected) as info:
        check_file(data, "image/png", EvidenceSpec(media_types=["image/jpeg"]))
    assert info.value.why == "media_type"
    with pytest.raises(EvidenceRejected) as info:  # a Windows program sent as a photo
        check_file(b"MZ\x90\x00" + bytes(60), "image/jpeg", spec)
    assert (info.value.why, info.value.detected) == ("mismatch", "application/x-msdownload")
    with pytest.raises(EvidenceRejected) as info:
        check_file(b"just some words", "image/jpeg", spec)
    assert info.value.why == "unknown_content"


def test_the_store_is_content_addressed_on_any_fsspec_backend(tmp_path: Path) -> None:
    for url in (str(tmp_path / "local"), f"file://{tmp_path}/url", "memory://gw-test"):
        store = BlobStore(url)
        sha = store.put(png_bytes())
        assert store.put(png_bytes()) == sha  # stored once
        assert store.read(sha) == png_bytes() and b"".join(store.chunks(sha, 7)) == png_bytes()
        assert store.path(sha).endswith(f"/{sha[:2]}/{sha[2:4]}/{sha}")
    assert (tmp_path / "local" / sha[:2] / sha[2:4] / sha).read_bytes() == png_bytes()


def test_requirements_name_what_is_missing_and_fields_required_per_trigger(eng: Engine,
                                                                         tmp_path: Path) -> None:
    with pytest.raises(EvidenceMissing) as info:
        eng.report("grid_incident", {"category": "garbage"}, actor=GW)
    assert (info.value.trigger, info.value.role, info.value.missing) == (
        "report", "grid_worker", ["1 photo"])
    blob = eng.upload(photo(tmp_path).read_bytes(), actor=GW)
    t = eng.report("grid_incident", {"category": "garbage"}, actor=GW,
                   evidence=[{"upload": blob.sha256}])
    eng.fire(t.id, "dispatch", actor=CENTRE)
    eng.fire(t.id, "arrive", actor=DEPT)
    after = eng.upload(png_bytes(rgb=(0, 250, 0)), actor=DEPT)
    eng.fire(t.id, "resolve", actor=DEPT, evidence=[{"upload": after.sha256, "tag": "after"}])
    eng.fire(t.id, "verify", actor=CENTRE)
    # the centre records the call: confirm needs the satisfaction field
    with pytest.raises(InvalidFields) as bad:
        eng.fire(t.id, "confirm", actor=CENTRE)
    assert bad.value.errors == {"satisfaction": "required by trigger 'confirm'"}
    done = eng.fire(t.id, "confirm", actor=CENTRE, fields={"satisfaction": 5})
    assert done.state == "closed"
    assert [a.trigger for a in eng.attachments(t.id)] == ["report", "resolve"]
    assert eng.check_invariants() == []


def test_a_refused_command_leaves_no_attachment(eng: Engine, tmp_path: Path) -> None:
    blob = eng.upload(pdf_bytes(), actor=GW)
    with pytest.raises(EvidenceMissing):
        eng.report("grid_incident", {"category": "garbage"}, actor=GW,
                   evidence=[{"upload": blob.sha256}])  # a document, not a photo
    assert eng.summary("grid_incident").tickets == 0


def test_requirement_problems_name_file_line_and_field() -> None:
    text = load_definition("grid_incident").source.replace(
        "    fields: [satisfaction]\n", "    fields: [satisfation]\n").replace(
        "    evidence: [{kind: photo, tag: after, min: 1}]\n",
        "    evidence: [{kind: photo, tag: afterwards, min: 1}]\n")
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="g.yaml")
    got = {(p.path, p.line) for p in info.value.problems}
    lines = text.splitlines()
    assert got == {
        ("requirements[2].fields[0]", lines.index("    fields: [satisfation]") + 1),
        ("requirements[1].evidence[0].tag",
         lines.index("    evidence: [{kind: photo, tag: afterwards, min: 1}]") + 1),
    }
    messages = sorted(p.message for p in info.value.problems)
    assert messages[0].startswith("unknown evidence tag 'afterwards'")
    assert messages[1].startswith("unknown field 'satisfation'")


def test_work_orders_resolve_a_photographed_ticket_with_their_after_photo(
        tmp_path: Path) -> None:
    """The follow-on that resolves the ticket carries the finishing work order's evidence."""
    from engine import Departments, VirtualClock

    eng = Engine(tmp_path / "wo.sqlite", clock=VirtualClock(datetime(2024, 5, 1, 8, tzinfo=UTC)))
    try:
        before = eng.upload(photo(tmp_path).read_bytes(), actor=GW)
        t = eng.report("grid_incident", {"category": "garbage", "area": "A1"}, actor=GW,
                       evidence=[{"upload": before.sha256}])
        (order,) = Departments(eng).dispatch(t.id, actor=CENTRE)
        san = Actor("san-1", "department")
        eng.fire(order.id, "accept", actor=san)
        after = eng.upload(png_bytes(rgb=(0, 250, 0)), actor=san)
        eng.fire(order.id, "finish", actor=san,
                 evidence=[{"upload": after.sha256, "tag": "after"}])
        assert eng.get(t.id).state == "resolved"
        assert [h.kind for h in eng.history(t.id)][-1] == "transition"
        assert {a.sha256 for a in eng.attachments(t.id)} == {before.sha256, after.sha256}
    finally:
        eng.stop()


def test_a_ticket_is_loaded_with_its_reports_attachments_only(eng: Engine,
                                                              tmp_path: Path) -> None:
    """The evidence rules need who reported with files (seq 1): later photos are not read
    with every command on the ticket (``state_where``), and the rules still hold."""
    blob = eng.upload(photo(tmp_path).read_bytes(), actor=GW)
    t = eng.report("grid_incident", {"category": "garbage"}, actor=GW,
                   evidence=[{"upload": blob.sha256}])
    eng.fire(t.id, "dispatch", actor=CENTRE)
    eng.fire(t.id, "arrive", actor=DEPT)
    afters = [eng.upload(png_bytes(rgb=(0, 250 - i, 0)), actor=DEPT) for i in range(3)]
    eng.fire(t.id, "resolve", actor=DEPT,
             evidence=[{"upload": a.sha256, "tag": "after"} for a in afters])
    assert len(eng.attachments(t.id)) == 4
    eager = [(attachments, "ticket_id", EvidenceRules.state_where)]
    with eng.db.read() as conn:
        _, _, tables = load_tickets(conn, [t.id], eager)[t.id]
        _, _, every = load_tickets(conn, [t.id], [(attachments, "ticket_id", None)])[t.id]
    assert [(r["seq"], r["sha256"]) for r in tables["gw_attachments"]] == [(1, blob.sha256)]
    assert len(every["gw_attachments"]) == 4
    rules = EvidenceRules()
    assert rules.from_rows(tables["gw_attachments"]) == rules.from_rows(every["gw_attachments"])
    assert eng.fire(t.id, "verify", actor=CENTRE).state == "callback"
