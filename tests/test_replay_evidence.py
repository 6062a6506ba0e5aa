"""Replayed exports' photo flags become evidence references (issue 12): Boston's columns."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.replay import BUNDLED_SAMPLE, load_mapping, replay
from engine import ConfigurationError, Engine, VirtualClock


def _rows_with_photos(tmp: Path, count: int = 40) -> tuple[Path, list[dict[str, str]]]:
    with BUNDLED_SAMPLE.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if "1" in (r["has_submitted_photo"], r["has_closed_photo"])]
    picked = [r for r in rows if r["has_submitted_photo"] == "1"] + [
        r for r in rows if r["has_submitted_photo"] == "0"][:count]
    path = tmp / "photos.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(picked)
    return path, picked


def test_boston_photo_flags_become_references_on_their_events(tmp_path: Path) -> None:
    data, rows = _rows_with_photos(tmp_path)
    engine = Engine(tmp_path / "b.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        outcome = replay(engine, data, load_mapping("boston311"))
        assert (outcome.rejections, outcome.planned) == ([], len(rows))
        for row in rows:
            tid = row["case_enquiry_id"]
            got = [(a.trigger, a.kind, a.tag, a.ref, a.sha256, a.role)
                   for a in engine.attachments(tid)]
            want = []
            if row["has_submitted_photo"] == "1":
                want.append(("report", "photo", "before",
                             f"boston311:{tid}/has_submitted_photo", None, "centre"))
            if row["has_closed_photo"] == "1" and row["closed_dt"].strip():
                want.append(("resolve", "photo", "after",
                             f"boston311:{tid}/has_closed_photo", None, "department"))
            assert got == want, tid
        # the intake is the city's call centre: the photo rules bound none of them
        assert engine.summary("grid_incident").closed == len(rows)
    finally:
        engine.stop()


def test_an_evidence_entry_must_name_an_event_and_a_known_tag(tmp_path: Path) -> None:
    text = (Path(__file__).parent.parent / "adapters/replay/mappings/boston311.yaml"
            ).read_text(encoding="utf-8").replace("trigger: resolve, kind: photo, tag: after",
                                                  "trigger: close, kind: photo, tag: later")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    engine = Engine(tmp_path / "x.sqlite", clock=VirtualClock(datetime(2000, 1, 1, tzinfo=UTC)))
    try:
        with pytest.raises(ConfigurationError) as info:
            replay(engine, BUNDLED_SAMPLE, load_mapping(bad))
        assert "evidence[1].tag: 'later' is not an evidence tag of the lifecycle" in str(
            info.value)
    finally:
        engine.stop()
