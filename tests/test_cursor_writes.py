"""The SQLite cursor path writes what SQLAlchemy's ``Connection.execute`` writes, byte for byte.

``engine.store._cursor.Runner`` executes the writers' statements on the driver's cursor with
the values converted as SQLAlchemy converts them (UTC instant text, JSON text, the
statement's own literals), through a function generated per statement and key set. These
tests run the same statements with the same parameters once through the cursor path and
once through ``Connection.execute``, on two SQLite files of the same schema, and compare
every stored value as SQLite holds it (text, not what a reader makes of it): inserts and
updates, instants in other zones, empty and non-empty JSON, ``None``s, literal binds
(``status = 'pending'``); and the refusals of a missing value and of a naive instant.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert
from sqlalchemy.exc import SQLAlchemyError

from engine.store import _cursor
from engine.store import statements as S
from engine.store.database import Database
from engine.store.tables import definitions, history, tickets, timers

T0 = datetime(2024, 3, 30, 23, 30, 0, 123456, tzinfo=UTC)
EAST = timezone(timedelta(hours=8))


def _both(tmp_path: Path, steps: Sequence[tuple[Any, list[dict[str, Any]]]]
          ) -> tuple[Path, Path]:
    """Run ``steps`` (statement, parameter dicts) through the cursor path and through SQLAlchemy."""
    paths = []
    for name, run in (("cursor", _by_cursor), ("sqlalchemy", _by_sqlalchemy)):
        path = tmp_path / f"{name}.sqlite"
        db = Database(f"sqlite:///{path}")
        with db.write() as conn:
            for stmt, params in steps:
                run(conn, stmt, params)
        db.engine.dispose()
        paths.append(path)
    return paths[0], paths[1]


def _by_cursor(conn: Connection, stmt: Any, params: list[dict[str, Any]]) -> None:
    runner = _cursor.Runner(conn)
    assert runner.raw is not None  # SQLite, in a transaction: the cursor path applies
    runner.run_many(stmt, params)


def _by_sqlalchemy(conn: Connection, stmt: Any, params: list[dict[str, Any]]) -> None:
    for p in params:
        conn.execute(stmt, p)


def _typed(path: Path, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """Every value of ``columns`` as SQLite holds it, with its storage class."""
    with sqlite3.connect(path) as raw:
        cols = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
        return raw.execute(f"SELECT {cols} FROM {table} ORDER BY rowid").fetchall()


def _ticket(tid: str, at: datetime, fields: dict[str, Any]) -> dict[str, Any]:
    return {"id": tid, "definition_id": 1, "state": "reported", "level": "community",
            "fields": fields, "overdue": False, "created_at": at, "updated_at": at,
            "row_version": 1}


def _history(tid: str, seq: int, at: datetime, data: dict[str, Any] | None) -> dict[str, Any]:
    return {"ticket_id": tid, "seq": seq, "at": at, "kind": "transition", "trigger": "dispatch",
            "from_state": "reported", "to_state": "dispatched", "from_level": "community",
            "to_level": "community", "actor": "ops-1", "role": "centre", "reason": None,
            "data": data}


def _timer(tid: str, name: str, due: datetime, state: str | None) -> dict[str, Any]:
    return {"ticket_id": tid, "name": name, "state": state, "due_at": due, "status": "pending",
            "created_at": T0, "fired_at": None, "claimed_by": None, "lease_until": None,
            "failures": 0, "last_error": None}


@pytest.fixture
def definition_steps() -> list[tuple[Any, list[dict[str, Any]]]]:
    """A lifecycle version row, which the tickets reference."""
    return [(insert(definitions), [{"id": 1, "name": "x", "version": 1, "digest": "d",
                                    "source": "s", "created_at": T0}])]


def test_inserts_and_updates_store_the_same_text(
        tmp_path: Path, definition_steps: list[tuple[Any, list[dict[str, Any]]]]) -> None:
    east = T0.astimezone(EAST)  # another zone: stored as the same UTC text
    steps = [
        *definition_steps,
        (S.INSERT_TICKET, [_ticket("a", T0, {"category": "drain", "n": 2}),
                           _ticket("b", east, {}),
                           _ticket("c", T0 + timedelta(microseconds=1), {"zh": "积水"})]),
        (S.INSERT_HISTORY, [_history("a", 1, T0, {"fields": {"department": "water"}}),
                            _history("b", 1, east, None),
                            _history("c", 1, T0, {})]),
        (S.INSERT_TIMER, [_timer("a", "arrival_due", T0 + timedelta(hours=2), "dispatched"),
                          _timer("b", "sla:x", east + timedelta(days=400), None)]),
        (S.UPDATE_TICKET, [{"b_id": "a", "b_version": 1, "b_state": "dispatched",
                            "b_level": "street", "b_fields": {"department": "water"},
                            "b_now": east, "b_new_version": 2, "b_overdue": True},
                           {"b_id": "b", "b_version": 1, "b_state": "dispatched",
                            "b_level": "community", "b_fields": {}, "b_now": T0,
                            "b_new_version": 2, "b_overdue": False}]),
        (S.CANCEL_PENDING_ID, [{"b_id": 1}]),  # the statement's literal: status = 'pending'
        (S.CANCEL_PENDING, [{"b_tid": "b", "b_name": "sla:x"}]),
        (S.FAIL_TIMER, [{"b_id": 2, "b_failures": 3, "b_error": "boom", "b_retry": east}]),
    ]
    cursor, alchemy = _both(tmp_path, steps)
    for table in (tickets, history, timers):
        columns = [c.name for c in table.c]
        assert _typed(cursor, table.name, columns) == _typed(alchemy, table.name, columns)
    assert _typed(cursor, "gw_tickets", ["updated_at"])[0] == ("2024-03-30 23:30:00.123456",
                                                                "text")


def test_a_dict_missing_a_value_is_refused_as_sqlalchemy_refuses_it(
        tmp_path: Path, definition_steps: list[tuple[Any, list[dict[str, Any]]]]) -> None:
    # the generated conversion is for the first dict's keys; a later dict without one of
    # them takes the general path, which names the missing value as SQLAlchemy does
    db = Database(f"sqlite:///{tmp_path / 'missing.sqlite'}")
    run: Callable[..., None]
    for run in (_by_cursor, _by_sqlalchemy):
        with pytest.raises(SQLAlchemyError, match="b_name"), db.write() as conn:
            run(conn, S.CANCEL_PENDING, [{"b_tid": "a", "b_name": "x"}, {"b_tid": "a"}])
    db.engine.dispose()


def test_a_naive_instant_is_refused_on_the_cursor_path_too(
        tmp_path: Path, definition_steps: list[tuple[Any, list[dict[str, Any]]]]) -> None:
    db = Database(f"sqlite:///{tmp_path / 'naive.sqlite'}")
    naive = T0.replace(tzinfo=None)
    run: Callable[..., None]
    for run in (_by_cursor, _by_sqlalchemy):
        with pytest.raises(Exception, match=r"aware|timezone|tzinfo"), db.write() as conn:
            for stmt, params in definition_steps:
                run(conn, stmt, params)
            run(conn, S.INSERT_TICKET, [_ticket("a", naive, {})])
    db.engine.dispose()
