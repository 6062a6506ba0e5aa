"""A refused migration changes nothing at all: not the tickets, not the deployed versions.

Found by a tester: ``gridwhistle migrate --workflow new.yaml --db m.sqlite --map
reported=nosuch`` exits 1 ("state 'nosuch' does not exist") and moves no ticket, but
``gw_definitions`` held grid_incident v2 afterwards and new reports ran on it. Now the new
version is deployed in the migration's own transaction, after every move has been checked
against it (``Engine.migrate(definition, ...)``); and a version deployed in a transaction
that rolls back is forgotten by the engine too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, store_url
from helpers import START, at
from typer.testing import CliRunner

from adapters.cli import app
from engine import (
    Actor,
    CommandRefused,
    ConfigurationError,
    Engine,
    MigrationRefused,
    Participant,
    VirtualClock,
    parse_definition,
)

LC = "grid_incident"
CENTRE = Actor("ops", "centre")


@pytest.fixture(params=BACKENDS)
def on_both(request, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """An engine on a SQLite file, then on a PostgreSQL schema; and the store's URL."""
    with store_url(request.param, tmp_path) as url:
        eng = Engine(url, clock=VirtualClock(START))
        try:
            yield eng, url
        finally:
            eng.stop()


@pytest.fixture
def v2_text(grid_incident_text: str) -> str:
    """The arrival deadline 2 h → 4 h."""
    assert "    after: PT2H\n" in grid_incident_text
    return grid_incident_text.replace("    after: PT2H\n", "    after: PT4H\n")


def _tickets(engine: Engine) -> None:
    engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="A")
    engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="B")
    engine.fire("B", "dispatch", actor=CENTRE, fields={"department": "water"})


def _store(engine: Engine) -> tuple[object, ...]:
    return ([(v.name, v.version, v.digest) for v in engine.versions()],
            [(t, engine.get(t).version, engine.get(t).state, engine.get(t).row_version)
             for t in "AB"],
            sorted((x.ticket_id, x.name, x.status, x.due_at) for x in engine.timers()))


def test_a_refused_migration_deploys_nothing(on_both, v2_text) -> None:
    engine, url = on_both
    _tickets(engine)
    before = _store(engine)
    v2 = parse_definition(v2_text, file="v2.yaml")
    with pytest.raises(MigrationRefused, match="state 'nosuch' does not exist"):
        engine.migrate(v2, state_map={"reported": "nosuch"})
    assert _store(engine) == before
    assert len(engine.versions()) == 1
    # new reports keep running on version 1, in this engine and in a fresh one
    assert engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="C").version == 1
    other = Engine(url, clock=VirtualClock(START))
    try:
        assert other.report(LC, {"category": "noise"}, actor=CENTRE,
                            ticket_id="D").version == 1
    finally:
        other.stop()
    assert engine.check_invariants() == []

    moved = engine.migrate(v2, reason="2025 rules")   # the version and the move, together
    assert [(t.id, t.version) for t in moved] == [("A", 2), ("B", 2), ("C", 2), ("D", 2)]
    assert [(v.version, v.digest) for v in engine.versions()] == [
        (1, engine.versions()[0].digest), (2, v2.digest)]
    assert engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="E").version == 2
    assert engine.migrate(v2) == []   # nothing left on another version; deployed once
    assert len(engine.versions()) == 2
    with pytest.raises(ConfigurationError, match="not both"):
        engine.migrate(v2, version=2)


def test_the_engine_forgets_a_version_whose_deploy_rolled_back(engine, grid_incident_text,
                                                               v2_text) -> None:
    """SQLite gives a rolled-back id out again: the cache must not keep the refused text."""
    _tickets(engine)
    v2 = parse_definition(v2_text, file="v2.yaml")
    with pytest.raises(MigrationRefused):
        engine.migrate(v2, ["B", "A"], state_map={"dispatched": "nosuch"})
    v3 = parse_definition(grid_incident_text.replace("    after: PT30M\n", "    after: PT1H\n"))
    deployed = engine.deploy(v3)
    assert (deployed.version, deployed.digest) == (2, v3.digest)
    assert engine.lifecycle(LC).definition.digest == v3.digest
    engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="C")
    assert [t.due_at for t in engine.timers("C") if t.name == "dispatch_due"] == [
        engine.get("C").created_at + (at(9) - at(8))]   # v3's hour, not v2's half hour

    with pytest.raises(RuntimeError), engine.batch():   # a deploy in a batch that fails
        engine.deploy(v2)
        raise RuntimeError("the batch fails")
    assert [v.version for v in engine.versions()] == [1, 2]
    assert engine.lifecycle(LC).definition.digest == v3.digest
    assert engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="D").version == 2
    assert engine.check_invariants() == []


class _NoMoves(Participant):
    """A host's rule refusing every migration (a refusal after the version was stored)."""

    def check(self, ctx, change) -> None:  # type: ignore[no-untyped-def]
        if change.kind == "migration":
            raise CommandRefused(change.ticket_id, "no migrations this week")


def test_a_migration_refused_after_its_deploy_leaves_no_version_inside_a_batch_too(
        on_both, v2_text) -> None:
    engine, _ = on_both
    _tickets(engine)
    engine.add_participant(_NoMoves())
    before = _store(engine)
    v2 = parse_definition(v2_text, file="v2.yaml")
    with pytest.raises(CommandRefused, match="no migrations this week"):
        engine.migrate(v2)
    assert _store(engine) == before
    with engine.batch():
        with pytest.raises(CommandRefused, match="no migrations this week"):
            engine.migrate(v2)
        engine.fire("A", "dispatch", actor=CENTRE, fields={"department": "roads"})
    assert [v.version for v in engine.versions()] == [1]
    assert engine.get("A").state == "dispatched"
    assert engine.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="C").version == 1
    assert engine.check_invariants() == []


def test_cli_migrate_refused_deploys_nothing(tmp_path: Path, make_engine, v2_text) -> None:
    db = tmp_path / "m.sqlite"
    eng = make_engine(db)
    _tickets(eng)
    eng.stop()
    new = tmp_path / "new.yaml"
    new.write_text(v2_text, encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["migrate", "--workflow", str(new), "--db", str(db),
                               "--map", "reported=nosuch"])
    assert done.exit_code == 1, done.output
    assert "state 'nosuch' does not exist" in done.output
    eng = make_engine(db)
    assert [v.version for v in eng.versions()] == [1]
    assert eng.report(LC, {"category": "noise"}, actor=CENTRE, ticket_id="C").version == 1
    eng.stop()

    done = runner.invoke(app, ["migrate", "--workflow", str(new), "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert "moved 3 tickets to grid_incident v2" in done.output
    eng = make_engine(db)
    assert [v.version for v in eng.versions()] == [1, 2]
    assert {eng.get(t).version for t in "ABC"} == {2}
    assert eng.check_invariants() == []
