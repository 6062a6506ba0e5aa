"""Alembic migrations: the migrated schema is exactly the declared one, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, store_url
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from adapters.cli import app
from engine import Actor, ConfigurationError, Database, Engine, VirtualClock
from engine.store.migrate import (
    current_revision,
    head_revision,
    schema_differences,
    upgrade,
)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path) as u:
        yield u


def test_upgrading_an_empty_database_gives_exactly_the_declared_tables(url: str) -> None:
    db = Database(url, create=False)
    try:
        with db.write() as conn:
            assert upgrade(conn) == (None, head_revision())
        with db.read() as conn:
            assert schema_differences(conn) == []
            assert current_revision(conn) == head_revision()
            names = set(inspect(conn).get_table_names())
        assert {"gw_definitions", "gw_tickets", "gw_history", "gw_timers", "gw_idempotency",
                "gw_alembic_version"} <= names
    finally:
        db.close()


def test_a_created_database_is_stamped_at_head_and_matches_the_migrations(url: str) -> None:
    db = Database(url)  # create_all + stamp
    try:
        with db.read() as conn:
            assert current_revision(conn) == head_revision()
            assert schema_differences(conn) == []
        with db.write() as conn:
            assert upgrade(conn) == (head_revision(), head_revision())  # nothing to do
    finally:
        db.close()


def test_a_skeleton_database_without_a_version_is_upgraded_keeping_its_tickets(
        url: str) -> None:
    db = Database(url, create=False)
    with db.write() as conn:
        upgrade(conn, "0001")
        conn.execute(text("DROP TABLE gw_alembic_version"))  # as create_all left it
    with db.read() as conn:
        assert current_revision(conn) is None
        assert {c["name"] for c in inspect(conn).get_columns("gw_timers")} == {
            "id", "ticket_id", "name", "state", "due_at", "status", "created_at", "fired_at"}
    sa = create_engine(db.engine.url)
    try:
        with sa.begin() as conn:
            conn.execute(text(
                "INSERT INTO gw_definitions (id, name, version, digest, source, created_at) "
                "VALUES (1, 'x', 1, 'd', 's', '2024-05-01 08:00:00')"))
    finally:
        sa.dispose()
    with db.write() as conn:
        assert upgrade(conn) == ("0001", head_revision())
    with db.read() as conn:
        assert schema_differences(conn) == []
        assert conn.execute(text("SELECT name FROM gw_definitions")).scalar() == "x"
    db.close()


def test_db_upgrade_command_then_the_engine_runs(tmp_path: Path) -> None:
    path = tmp_path / "cli.sqlite"
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{path}: upgraded from (empty) to {head_revision()}"
    again = runner.invoke(app, ["db", "upgrade", "--db", str(path)])
    assert again.output.strip() == f"{path}: already at revision {head_revision()}"
    current = runner.invoke(app, ["db", "current", "--db", str(path)])
    assert f"revision {head_revision()}; newest {head_revision()} — up to date" in current.output
    eng = Engine(path, clock=VirtualClock())
    try:
        t = eng.report("grid_incident", {"category": "drain"}, actor=Actor("gw", "centre"))
        assert eng.get(t.id).state == "reported"
    finally:
        eng.stop()


def test_an_engine_refuses_a_database_at_an_older_revision_until_it_is_upgraded(
        url: str) -> None:
    """Opened by a newer Gridwhistle, a database at revision 0009 (before gw_ladder.held_at)
    is refused with the command that fixes it — not accepted and then failing write by
    write — and after ``db upgrade`` the engine runs on it."""
    db = Database(url, create=False)
    with db.write() as conn:
        upgrade(conn, "0009")
    db.close()
    with pytest.raises(ConfigurationError) as err:
        Engine(url, clock=VirtualClock())
    assert "schema revision 0009" in str(err.value)
    assert f"needs {head_revision()}" in str(err.value)
    assert "gridwhistle db upgrade" in str(err.value)

    runner = CliRunner()
    if url.startswith("sqlite"):  # the CLI says the same, without a traceback
        path = url.removeprefix("sqlite:///")
        result = runner.invoke(app, ["check", "--db", path])
        assert result.exit_code == 1
        assert "schema revision 0009" in result.output and "Traceback" not in result.output
    db = Database(url, create=False)
    with db.write() as conn:
        assert upgrade(conn) == ("0009", head_revision())
    db.close()
    eng = Engine(url, clock=VirtualClock())
    try:
        t = eng.report("grid_incident", {"category": "drain"}, actor=Actor("gw", "centre"))
        assert eng.get(t.id).state == "reported"
    finally:
        eng.stop()


def test_an_engine_refuses_a_database_written_by_a_newer_gridwhistle(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite"
    Database(path).close()  # created at head
    raw = create_engine(f"sqlite:///{path}")
    with raw.begin() as conn:
        conn.execute(text("UPDATE gw_alembic_version SET version_num = 'f00dcafe0099'"))
    raw.dispose()
    with pytest.raises(ConfigurationError, match="newer Gridwhistle wrote it"):
        Engine(path, clock=VirtualClock())


@pytest.mark.postgres
def test_two_engines_started_at_once_on_an_empty_postgres_database_both_open() -> None:
    # fresh-user audit (Dec 1): two `serve` started together on an empty database; one died
    # with "duplicate key value violates unique constraint pg_type_typname_nsp_index"
    import threading

    from backends import pg_schema

    def open_it(pg: str, start: threading.Barrier, opened: list[Database],
                errors: list[BaseException]) -> None:
        start.wait()
        try:
            opened.append(Database(pg))
        except BaseException as exc:
            errors.append(exc)

    for _ in range(3):
        with pg_schema() as pg:
            start = threading.Barrier(2)
            opened: list[Database] = []
            errors: list[BaseException] = []
            threads = [threading.Thread(target=open_it, args=(pg, start, opened, errors))
                       for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            try:
                assert errors == []
                assert len(opened) == 2
                with opened[0].read() as conn:
                    assert current_revision(conn) == head_revision()
                    assert schema_differences(conn) == []
            finally:
                for db in opened:
                    db.close()
