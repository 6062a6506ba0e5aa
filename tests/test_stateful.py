"""Hypothesis stateful test: random legal and illegal commands, reloads, virtual time.

After every step the invariant checker must pass (state, level, history and timers agree),
a refused command must leave its ticket exactly as it was, and a command retried with its
idempotency key must return the first result and change nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from engine import (
    Actor,
    CommandRefused,
    Engine,
    IdempotencyKeyReused,
    VirtualClock,
    parse_definition,
)
from engine.definition import bundled_workflows_dir

TRIGGERS = ["dispatch", "arrive", "resolve", "close", "reject", "escalate", "fly"]
ROLES = ["grid_worker", "centre", "department", "system", "mayor"]


class TicketMachine(RuleBasedStateMachine):
    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="gw-stateful-"))
        self.path = self.folder / "s.sqlite"
        self.clock = VirtualClock(datetime(2024, 5, 1, 8, tzinfo=UTC))
        self.engine = Engine(self.path, clock=self.clock)
        self.count = 0
        self.keys = 0

    def teardown(self) -> None:
        self.engine.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _snap(self, tid: str) -> Any:
        return self.engine.get(tid), self.engine.history(tid), self.engine.timers(tid)

    @rule(target=tickets, role=st.sampled_from(ROLES), target_hours=st.none() | st.integers(1, 96))
    def report(self, role: str, target_hours: int | None) -> str:
        self.count += 1
        tid = f"H{self.count}"
        fields: dict[str, Any] = {"category": "drain"}
        if target_hours is not None:
            fields["target_at"] = self.clock.now() + timedelta(hours=target_hours)
        try:
            self.engine.report("grid_incident", fields, actor=Actor("a", role), ticket_id=tid)
        except CommandRefused:
            # a grid worker's report needs a photo (tests/test_evidence.py)
            assert role != "centre"
            self.engine.report("grid_incident", fields, actor=Actor("a", "centre"),
                               ticket_id=tid)
        return tid

    @rule(tid=tickets, trigger=st.sampled_from(TRIGGERS), role=st.sampled_from(ROLES),
          reason=st.sampled_from([None, "", "because"]), keyed=st.booleans())
    def fire(self, tid: str, trigger: str, role: str, reason: str | None, keyed: bool) -> None:
        before = self._snap(tid)
        key = None
        if keyed:
            self.keys += 1
            key = f"k{self.keys}"
        try:
            first = self.engine.fire(tid, trigger, actor=Actor("a", role), reason=reason,
                                     idempotency_key=key)
        except CommandRefused:
            assert self._snap(tid) == before
            return
        if key is not None:
            after = self._snap(tid)
            assert self.engine.fire(tid, trigger, actor=Actor("a", role), reason=reason,
                                    idempotency_key=key) == first
            assert self._snap(tid) == after
            try:
                self.engine.fire(tid, "close", actor=Actor("a", role), idempotency_key=key)
                raise AssertionError("a reused key with other content must be refused")
            except IdempotencyKeyReused:
                assert self._snap(tid) == after

    @rule(minutes=st.sampled_from([1, 29, 30, 31, 119, 121, 60 * 24, 60 * 49]))
    def advance(self, minutes: int) -> None:
        self.engine.run_until(self.clock.now() + timedelta(minutes=minutes))

    @rule(variant=st.sampled_from(["PT30M", "PT5M", "PT3H"]))
    def new_version_and_migrate(self, variant: str) -> None:
        text = (bundled_workflows_dir() / "grid_incident.yaml").read_text(encoding="utf-8")
        text = text.replace("    after: PT30M\n", f"    after: {variant}\n")
        version = self.engine.deploy(parse_definition(text, file=f"{variant}.yaml"))
        moved = self.engine.migrate("grid_incident", version=version.version)
        assert {t.version for t in moved} <= {version.version}

    @rule()
    def reload(self) -> None:
        self.engine.stop()
        self.engine = Engine(self.path, clock=self.clock)

    @invariant()
    def history_state_and_timers_agree(self) -> None:
        assert self.engine.check_invariants() == []


TicketMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_ticket_machine = TicketMachine.TestCase
