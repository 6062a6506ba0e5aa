"""Versioned lifecycles: migrate chosen tickets to a new version; see the impact first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from evidence_files import png_bytes
from helpers import at
from typer.testing import CliRunner

from adapters.cli import app
from adapters.replay import BUNDLED_SAMPLE
from engine import Actor, MigrationRefused, parse_definition

LC = "grid_incident"
GW, CENTRE, DEPT = Actor("gw", "centre"), Actor("ops", "centre"), Actor("d", "department")


def _v2(text: str, **swaps: str) -> str:
    for old, new in swaps.items():
        assert old.replace("_", " ") in text or old in text
        text = text.replace(old, new)
    return text


@pytest.fixture
def v2_text(grid_incident_text: str) -> str:
    """dispatch_due 30 min → 1 h, arrival_due 2 h → 4 h, and `on_site` renamed `working`."""
    text = grid_incident_text.replace("    after: PT30M\n", "    after: PT1H\n")
    text = text.replace("    after: PT2H\n", "    after: PT4H\n")
    return text.replace("on_site", "working")


def _three_tickets(engine, clock) -> None:
    engine.report(LC, {"category": "a", "target_at": at(18)}, actor=GW, ticket_id="R")
    engine.report(LC, {"category": "b"}, actor=GW, ticket_id="D")
    engine.report(LC, {"category": "c"}, actor=GW, ticket_id="S")
    clock.set(at(8, 10))
    engine.fire("D", "dispatch", actor=CENTRE, fields={"department": "water"})
    engine.fire("S", "dispatch", actor=CENTRE, fields={"department": "water"})
    engine.fire("S", "arrive", actor=DEPT)


def test_migrate_moves_tickets_and_recomputes_their_deadlines(engine, clock, v2_text) -> None:
    _three_tickets(engine, clock)
    clock.set(at(8, 20))
    v2 = engine.deploy(parse_definition(v2_text, file="v2.yaml"))
    assert v2.version == 2
    with pytest.raises(MigrationRefused) as err:   # `on_site` does not exist in v2
        engine.migrate(LC, version=2)
    assert err.value.ticket_id == "S"
    assert "state 'on_site' does not exist in grid_incident" in str(err.value)
    assert {engine.get(t).version for t in "RDS"} == {1}   # nothing moved

    moved = engine.migrate(LC, version=2, state_map={"on_site": "working"},
                           actor=CENTRE, reason="new arrival rules")
    assert [(t.id, t.state, t.version, t.row_version) for t in moved] == [
        ("D", "dispatched", 2, 3), ("R", "reported", 2, 2), ("S", "working", 2, 4)]
    pending = {(t.ticket_id, t.name): t.due_at for t in engine.timers(status="pending")
               if ":" not in t.name}  # SLA clock timers (sla:...) carry over unchanged
    assert pending == {
        ("R", "dispatch_due"): at(9),        # entered `reported` at 08:00, now 1 h
        ("R", "resolution"): at(18),         # the ticket deadline keeps its field
        ("D", "arrival_due"): at(12, 10),    # entered `dispatched` at 08:10, now 4 h
    }
    last = engine.history("R")[-1]
    assert (last.kind, last.trigger, last.from_state, last.to_state, last.actor) == (
        "migration", "migrate", "reported", "reported", "ops")
    assert last.data == {"from_version": 1, "to_version": 2, "deadlines": {
        "dispatch_due": at(9).isoformat(), "resolution": at(18).isoformat()}}
    assert engine.check_invariants() == []
    assert engine.run_until(at(8, 59)) == []              # 08:30 no longer breaches
    assert [(f.timer.name, f.outcome) for f in engine.run_until(at(9, 1))] == [
        ("dispatch_due", "escalated")]
    assert engine.fire("S", "resolve", actor=DEPT).state == "resolved"   # runs on v2
    assert engine.check_invariants() == []


def test_impact_replays_history_on_the_new_version(engine, clock, grid_incident_text) -> None:
    engine.report(LC, {"category": "a"}, actor=GW, ticket_id="LATE")
    engine.report(LC, {"category": "b"}, actor=GW, ticket_id="QUICK")
    clock.set(at(8, 5))
    engine.fire("QUICK", "dispatch", actor=CENTRE, fields={"department": "water"})
    clock.set(at(8, 20))
    engine.fire("LATE", "dispatch", actor=CENTRE, fields={"department": "roads"})
    clock.set(at(9))
    stricter = parse_definition(
        grid_incident_text.replace("    after: PT30M\n", "    after: PT10M\n"), file="v2.yaml")
    impacts = {i.ticket_id: i for i in engine.impact(stricter)}
    late, quick = impacts["LATE"], impacts["QUICK"]
    assert not quick.changed
    assert late.changed
    assert (late.state, late.level) == (("dispatched", "dispatched"), ("community", "street"))
    assert late.new_breaches == (("dispatch_due", at(8, 10).isoformat()),)
    assert late.gone_breaches == ()
    assert late.deadlines == {}            # arrival_due 10:20 either way
    assert engine.versions()[-1].version == 1   # the dry run deployed nothing here


def test_impact_and_migrate_commands(tmp_path: Path, grid_incident_text: str) -> None:
    runner = CliRunner()
    data = tmp_path / "sample.csv"
    data.write_text("".join(BUNDLED_SAMPLE.read_text(encoding="utf-8").splitlines(True)[:41]),
                    encoding="utf-8")
    db = tmp_path / "cli.sqlite"
    done = runner.invoke(app, ["replay", "--data", str(data), "--db", str(db), "--json"])
    assert done.exit_code == 0, done.output
    faster = tmp_path / "faster.yaml"
    faster.write_text(grid_incident_text.replace("budget: P2D}", "budget: P1D}"),
                      encoding="utf-8")
    stored = runner.invoke(app, ["impact", "--workflow", str(faster), "--db", str(db),
                                 "--json", "--until", "2025-01-01T00:00:00Z"])
    assert stored.exit_code == 0, stored.output
    from_data = runner.invoke(app, ["impact", "--workflow", str(faster), "--data", str(data),
                                    "--json"])
    assert from_data.exit_code == 0, from_data.output
    a, b = json.loads(stored.output), json.loads(from_data.output)
    assert a == b   # the stored history and the data file tell the same story
    assert {k: a[k] for k in ("tickets", "changed", "state_changes", "deadlines_moved",
                              "would_breach", "would_no_longer_breach", "refused")} == {
        # a shortened budget missed either way is a moved deadline (issue 11; main counted
        # each of these 4 both as a new breach and as a gone one: 5 and 4)
        "tickets": 40, "changed": 5, "state_changes": 0, "deadlines_moved": 4,
        "would_breach": 1, "would_no_longer_breach": 0, "refused": 0}
    first = a["details"][0]
    assert (first["ticket"], first["level"], first["new_breaches"]) == (
        "101001266560", ["street", "district"], [["street_budget", "2015-02-04T03:30:00+00:00"]])
    check = runner.invoke(app, ["migrate", "--workflow", str(faster), "--db", str(db)])
    assert check.exit_code == 0, check.output
    assert check.output.startswith("moved 0 tickets to grid_incident v2")  # all closed
    assert runner.invoke(app, ["check", "--db", str(db)]).exit_code == 0


def test_impact_with_a_data_file_it_cannot_read_is_one_line_naming_it(tmp_path: Path) -> None:
    # main: a traceback ending in FileNotFoundError / IsADirectoryError (only GridwhistleError
    # and ValueError were caught), exit 1 only by accident of the uncaught exception
    folder = tmp_path / "exports"
    folder.mkdir()
    cases = {
        "missing.csv": f"error: no data file at {tmp_path / 'missing.csv'}; give an existing "
                       "CSV export with --data",
        "exports": f"error: {folder} is a directory, not a data file; give the file's path",
    }
    for name, expected in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "adapters.cli", "impact", "--workflow", LC, "--data",
             str(tmp_path / name)],
            capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip() == expected, done.stderr
        assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]  # nothing written


def test_a_migrated_deadline_already_past_fires_at_once_and_keeps_invariants(
        engine, clock, grid_incident_text) -> None:
    # Found by the stateful test (then on a state deadline of `escalated`): a deadline the
    # migration recomputes into the past fires at the next run and escalates cleanly.
    from datetime import timedelta

    engine.report(LC, {"category": "a"}, actor=GW, ticket_id="H1")
    clock.set(at(8, 20))                      # dispatch_due (PT30M) is still ahead: 08:30
    v2 = engine.deploy(parse_definition(
        grid_incident_text.replace("    after: PT30M\n", "    after: PT5M\n"), file="v2.yaml"))
    engine.migrate(LC, version=v2.version)
    assert [(t.name, t.due_at) for t in engine.timers("H1", status="pending")
            if ":" not in t.name] == [("dispatch_due", at(8, 5))]
    fired = engine.run_until(at(8, 20) + timedelta(minutes=1))
    assert [(f.timer.name, f.timer.due_at, f.outcome) for f in fired] == [
        ("dispatch_due", at(8, 5), "escalated")]
    assert (engine.get("H1").state, engine.get("H1").level) == ("escalated", "street")
    assert engine.check_invariants() == []


def test_impact_replays_the_photos_a_ticket_was_reported_and_resolved_with(
        engine, clock, grid_incident_text) -> None:
    """grid_incident asks a grid worker's report for a photo and, then, resolving for an
    after photo: the replay carries the recorded uploads again (main: every such report was
    refused on both versions and the ticket left out of the impact altogether)."""
    worker = Actor("gw-017", "grid_worker")
    photo = engine.upload(png_bytes(), actor=worker, lifecycle=LC)
    engine.report(LC, {"category": "blocked_drain"}, actor=worker, ticket_id="P",
                  evidence=[{"upload": photo.sha256}])
    clock.set(at(8, 5))
    engine.fire("P", "dispatch", actor=CENTRE, fields={"department": "water"})
    engine.fire("P", "arrive", actor=DEPT)
    after = engine.upload(png_bytes(rgb=(0, 120, 0)), actor=DEPT, lifecycle=LC)
    engine.fire("P", "resolve", actor=DEPT, evidence=[{"upload": after.sha256, "tag": "after"}])
    clock.set(at(9))
    same = {i.ticket_id: i for i in engine.impact(parse_definition(
        grid_incident_text.replace("    after: PT2H\n", "    after: PT3H\n"), file="v2.yaml"))}
    assert same["P"].state == ("resolved", "resolved")
    assert (same["P"].refused, same["P"].not_replayed, same["P"].changed) == (None, None, False)
    # a version that asks the report for two photos refuses this ticket's report: listed
    two = parse_definition(grid_incident_text.replace(
        "evidence: [{kind: photo, min: 1}]", "evidence: [{kind: photo, min: 2}]"), file="v3.yaml")
    refused = {i.ticket_id: i for i in engine.impact(two)}["P"]
    assert refused.state == ("resolved", None) and refused.changed
    assert refused.refused is not None and refused.refused.startswith("report at ")
    assert "2 photos" in refused.refused or "photo" in refused.refused


def test_impact_replays_suspensions_and_extensions_as_they_were(
        engine, clock, grid_incident_text) -> None:
    """Oversight commands move deadlines: the replay repeats them (main: left out, so a
    suspended ticket's held deadlines ran on in both replays), and a version that no longer
    offers what was done refuses it."""
    engine.report(LC, {"category": "b"}, actor=GW, ticket_id="S")
    clock.set(at(8, 10))
    engine.fire("S", "dispatch", actor=CENTRE, fields={"department": "water"})
    clock.set(at(8, 30))
    engine.suspend("S", "weather", reason="typhoon", actor=CENTRE)
    clock.set(at(11, 30))
    engine.resume("S", reason="cleared", actor=CENTRE)
    clock.set(at(11, 40))
    engine.request_extension("S", "arrival_due", proposed_due=at(16), reason="flooded road",
                             actor=DEPT)
    engine.decide_extension("S", 1, approve=True, reason="ok", actor=CENTRE)
    clock.set(at(12))
    real = {t.name: t.due_at for t in engine.timers("S", status="pending")}
    assert real["arrival_due"] == at(16)
    v2 = parse_definition(grid_incident_text.replace("    after: PT30M\n", "    after: PT20M\n"),
                          file="v2.yaml")
    (same,) = [i for i in engine.impact(v2) if i.ticket_id == "S"]
    # the replay of its own history ends where the ticket is: dispatched, nothing breached
    assert (same.state, same.changed) == (("dispatched", "dispatched"), False)
    assert same.level == ("community", "community")  # main: both breached and escalated
    assert (same.refused, same.not_replayed, same.new_breaches) == (None, None, ())
    no_weather = parse_definition(grid_incident_text.replace(
        "      weather: {title: {zh: 恶劣天气, en: Bad weather}}\n", ""), file="v3.yaml")
    (gone,) = [i for i in engine.impact(no_weather) if i.ticket_id == "S"]
    assert gone.changed and gone.refused is not None
    assert gone.refused.startswith("suspended at ") and "weather" in gone.refused
