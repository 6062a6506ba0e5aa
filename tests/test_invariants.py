"""The invariant checker: history is the source of truth; `gridwhistle check` reports breaks."""

from __future__ import annotations

from pathlib import Path

from helpers import at
from sqlalchemy import text
from typer.testing import CliRunner

from adapters.cli import app
from engine import Actor, Engine, Violation

GW, CENTRE, DEPT = Actor("gw", "centre"), Actor("ops", "centre"), Actor("d", "department")


def _tickets(engine: Engine, clock) -> None:
    engine.report("grid_incident", {"category": "drain", "target_at": at(12)}, actor=GW,
                  ticket_id="A")
    engine.report("grid_incident", {"category": "light"}, actor=GW, ticket_id="B")
    clock.set(at(8, 10))
    engine.fire("A", "dispatch", actor=CENTRE, fields={"department": "water"})
    engine.run_until(at(13))  # A: arrival_due and resolution breach; B: dispatch_due


def _sql(engine: Engine, statement: str) -> None:
    with engine.db.write() as conn:
        conn.execute(text(statement))


def test_a_consistent_store_has_no_violations_and_check_exits_0(engine, clock, db_path) -> None:
    _tickets(engine, clock)
    assert engine.check_invariants() == []
    result = CliRunner().invoke(app, ["check", "--db", str(db_path)])
    assert result.exit_code == 0
    assert result.output == f"{db_path}: ok — every ticket agrees with its history\n"


def test_each_kind_of_disagreement_is_named(engine, clock, db_path: Path) -> None:
    _tickets(engine, clock)
    _sql(engine, "UPDATE gw_tickets SET state = 'closed', level = 'city' WHERE id = 'B'")
    _sql(engine, "UPDATE gw_timers SET status = 'pending' WHERE ticket_id = 'A' "
                 "AND name = 'arrival_due'")
    _sql(engine, "UPDATE gw_tickets SET overdue = false WHERE id = 'A'")
    got = {(v.ticket_id, v.rule) for v in engine.check_invariants()}
    assert got == {
        ("A", "overdue"),
        ("A", "timer_owner"),       # arrival_due of `dispatched`, ticket is `escalated`
        ("A", "fired_once"),        # its breach row names a timer that is no longer fired
        ("B", "state"), ("B", "level"),
        ("B", "timer_owner"),       # its level budget and SLA timers pending, yet `closed`
    }
    violations = engine.check_invariants()
    assert len([v for v in violations if (v.ticket_id, v.rule) == ("B", "timer_owner")]) == 5
    result = CliRunner().invoke(app, ["check", "--db", str(db_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-1] == f"{len(violations)} violation{'' if len(violations) == 1 else 's'}"
    assert "B: state: ticket is in 'closed', its history ends in 'escalated'" in lines


def test_a_lost_history_row_and_a_double_breach_are_found(engine, clock) -> None:
    _tickets(engine, clock)
    _sql(engine, "DELETE FROM gw_history WHERE ticket_id = 'B' AND seq = 2")  # its breach
    _sql(engine, "UPDATE gw_history SET data = (SELECT data FROM gw_history WHERE "
                 "ticket_id = 'A' AND trigger = 'arrival_due') WHERE ticket_id = 'A' "
                 "AND trigger = 'resolution'")
    got = engine.check_invariants()
    assert {(v.ticket_id, v.rule) for v in got} == {
        ("A", "fired_once"), ("B", "history_seq"), ("B", "row_version"), ("B", "fired_once")}
    assert all(isinstance(v, Violation) and str(v).startswith(v.ticket_id) for v in got)
