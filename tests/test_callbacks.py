"""Host callbacks: guards and actions registered by name in an engine.Registry."""

from __future__ import annotations

import pytest
from helpers import at, deadline_timers

from engine import (
    CommandInsideCallback,
    ConfigurationError,
    DefinitionError,
    GuardRejected,
    HostCallbackFailed,
    Problem,
    Registry,
    parse_definition,
)

LC = "grid_incident"

CLOSE = "    source: [resolved]\n    dest: closed\n    roles: [centre]\n"
DISPATCH = "    source: [reported, escalated]\n    dest: dispatched\n    roles: [centre]\n"
ARRIVE = "    source: [dispatched, escalated]\n    dest: on_site\n    roles: [department]\n"
ESCALATE = ("    source: [reported, dispatched, on_site, waiting_reporter, escalated]\n"
            "    dest: escalated\n    roles: [system, centre]\n")


def with_line(text: str, anchor: str, extra: str) -> str:
    assert text.count(anchor) == 1, anchor
    return text.replace(anchor, anchor + extra)


def to_resolved(eng, centre, department, ticket_id="T1"):
    eng.report(LC, {"category": "blocked drain"}, actor=centre, ticket_id=ticket_id)
    eng.fire(ticket_id, "dispatch", actor=centre)
    eng.fire(ticket_id, "arrive", actor=department)
    eng.fire(ticket_id, "resolve", actor=department)


def test_guard_returning_false_raises_guard_rejected(
        make_engine, grid_incident_text, centre, department, snapshot):
    registry = Registry()
    seen = []

    @registry.guard("has_photo")
    def has_photo(ctx):
        seen.append(ctx)
        return bool(ctx.fields.get("description"))

    eng = make_engine(registry=registry)
    eng.deploy(parse_definition(with_line(grid_incident_text, CLOSE, "    guards: [has_photo]\n")))
    to_resolved(eng, centre, department)
    before = snapshot(eng, "T1")

    with pytest.raises(GuardRejected) as info:
        eng.fire("T1", "close", actor=centre)
    err = info.value
    assert (err.ticket_id, err.state, err.trigger, err.guards) == (
        "T1", "resolved", "close", ("has_photo",))
    assert str(err) == ("trigger 'close' on ticket 'T1' in state 'resolved' was refused by "
                        "guard(s) has_photo; meet their condition and try again")
    assert snapshot(eng, "T1") == before

    # the guard sees the command, including this command's field updates
    t = eng.fire("T1", "close", actor=centre, fields={"description": "photo: drain clear"})
    assert t.state == "closed"
    ctx = seen[-1]
    assert (ctx.ticket_id, ctx.trigger, ctx.source, ctx.dest, ctx.level, ctx.actor, ctx.role,
            ctx.now) == ("T1", "close", "resolved", "closed", "community", "ops-1", "centre",
                         at(8, 0))
    assert ctx.fields == {"category": "blocked drain", "description": "photo: drain clear"}


def test_guard_raising_is_host_callback_failed_and_changes_nothing(
        make_engine, grid_incident_text, centre, snapshot):
    registry = Registry()

    @registry.guard("crm_ok")
    def crm_ok(ctx):
        raise RuntimeError("CRM unreachable")

    eng = make_engine(registry=registry)
    eng.deploy(parse_definition(with_line(grid_incident_text, DISPATCH, "    guards: [crm_ok]\n")))
    eng.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    before = snapshot(eng, "T1")

    with pytest.raises(HostCallbackFailed) as info:
        eng.fire("T1", "dispatch", actor=centre, fields={"department": "water"})
    err = info.value
    assert (err.ticket_id, err.trigger, err.callback) == ("T1", "dispatch", "crm_ok")
    assert isinstance(err.__cause__, RuntimeError)
    assert str(err.__cause__) == "CRM unreachable"
    assert str(err) == ("host callback 'crm_ok' raised RuntimeError: CRM unreachable while "
                        "firing 'dispatch' on ticket 'T1'; nothing was changed")
    assert snapshot(eng, "T1") == before
    assert eng.get("T1").state == "reported"


def test_action_raising_is_host_callback_failed_and_changes_nothing(
        make_engine, grid_incident_text, centre, department, snapshot):
    registry = Registry()
    calls = []

    @registry.action("notify_crm")
    def notify_crm(ctx):
        calls.append((ctx.source, ctx.dest))
        raise ValueError("bad gateway")

    eng = make_engine(registry=registry)
    eng.deploy(parse_definition(with_line(grid_incident_text, ARRIVE,
                                          "    actions: [notify_crm]\n")))
    eng.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    eng.fire("T1", "dispatch", actor=centre)
    before = snapshot(eng, "T1")

    with pytest.raises(HostCallbackFailed) as info:
        eng.fire("T1", "arrive", actor=department)
    assert (info.value.trigger, info.value.callback) == ("arrive", "notify_crm")
    assert isinstance(info.value.__cause__, ValueError)
    assert calls == [("dispatched", "on_site")]  # the action ran after the state change...
    assert snapshot(eng, "T1") == before  # ...yet nothing was written
    assert eng.get("T1").state == "dispatched"
    assert [tm.status for tm in deadline_timers(eng, "T1")] == ["cancelled", "pending"]


def test_action_that_succeeds_runs_once_after_the_transition(
        make_engine, grid_incident_text, centre, department):
    registry = Registry()
    calls = []
    registry.action("notify_crm")(lambda ctx: calls.append((ctx.trigger, ctx.source, ctx.dest)))
    eng = make_engine(registry=registry)
    eng.deploy(parse_definition(with_line(grid_incident_text, ARRIVE,
                                          "    actions: [notify_crm]\n")))
    eng.report(LC, {"category": "x"}, actor=centre, ticket_id="T1")
    eng.fire("T1", "dispatch", actor=centre)
    assert calls == []
    assert eng.fire("T1", "arrive", actor=department).state == "on_site"
    assert calls == [("arrive", "dispatched", "on_site")]


@pytest.mark.parametrize("in_batch", [False, True])
@pytest.mark.parametrize("hook", ["action", "guard"])
def test_a_command_issued_from_a_host_callback_is_refused_and_the_batch_goes_on(
        make_engine, grid_incident_text, centre, department, snapshot, hook, in_batch):
    # A guard or action that fires a command on the engine (here: escalating the very
    # ticket being moved) would change it under the command being decided; it is refused
    # (CommandInsideCallback), so the command fails with HostCallbackFailed and is rolled
    # back alone: the batch's other commands commit, no history row is claimed twice.
    registry = Registry()

    def escalate_it(ctx):
        eng.fire(ctx.ticket_id, "escalate", actor=centre, reason="from the host")
        return True

    (registry.action if hook == "action" else registry.guard)("hook")(escalate_it)
    eng = make_engine(registry=registry)
    line = "    actions: [hook]\n" if hook == "action" else "    guards: [hook]\n"
    eng.deploy(parse_definition(with_line(grid_incident_text, ARRIVE, line)))
    for tid in ("a", "b"):
        eng.report(LC, {"category": "x"}, actor=centre, ticket_id=tid)
    eng.fire("a", "dispatch", actor=centre)
    before = snapshot(eng, "a")

    def run():
        eng.fire("b", "dispatch", actor=centre)  # an unrelated command of the same batch
        with pytest.raises(HostCallbackFailed) as info:
            eng.fire("a", "arrive", actor=department)
        assert isinstance(info.value.__cause__, CommandInsideCallback)
        assert "after that command has committed" in str(info.value)

    if in_batch:
        with eng.batch():
            run()
    else:
        run()
    assert snapshot(eng, "a") == before
    assert eng.get("b").state == "dispatched"
    assert eng.check_invariants() == []
    # the ticket is as it was: a command from outside a callback still goes through
    assert eng.fire("a", "escalate", actor=centre, reason="by hand").state == "escalated"


def test_unregistered_guard_fails_to_deploy_naming_its_path(engine, grid_incident_text):
    text = with_line(grid_incident_text, CLOSE, "    guards: [has_photo]\n")
    definition = parse_definition(text)  # the file itself is fine
    with pytest.raises(DefinitionError) as info:
        engine.deploy(definition)
    close_line = text.splitlines().index("  - trigger: close") + 1
    assert info.value.problems == (
        Problem("<string>", close_line, "transitions[3].guards[0]",
                "no guard named 'has_photo' is registered by the host app; registered: "
                "(none)"),
    )
    assert engine.versions() == []


def test_unregistered_callbacks_are_all_listed(make_engine, grid_incident_text):
    registry = Registry()
    registry.guard("other")(lambda ctx: True)
    text = with_line(grid_incident_text, DISPATCH, "    guards: [other, crm_ok]\n")
    text = with_line(text, ARRIVE, "    actions: [notify_crm]\n")
    eng = make_engine(registry=registry)
    with pytest.raises(DefinitionError) as info:
        eng.deploy(parse_definition(text, file="variant.yaml"))
    assert [(p.file, p.path, p.message) for p in info.value.problems] == [
        ("variant.yaml", "transitions[0].guards[1]",
         "no guard named 'crm_ok' is registered by the host app; registered: other"),
        ("variant.yaml", "transitions[1].actions[0]",
         "no action named 'notify_crm' is registered by the host app; registered: (none)"),
    ]


def test_registering_a_name_twice_is_a_configuration_error():
    registry = Registry()
    registry.guard("g")(lambda ctx: True)
    registry.action("a")(lambda ctx: None)
    with pytest.raises(ConfigurationError):
        registry.guard("g")(lambda ctx: False)
    with pytest.raises(ConfigurationError):
        registry.action("a")(lambda ctx: None)


def test_refused_escalation_by_a_deadline_does_not_block_other_timers(
        make_engine, clock, grid_incident_text, reporter):
    registry = Registry()
    registry.guard("not_t1")(lambda ctx: ctx.ticket_id != "T1")
    eng = make_engine(registry=registry)
    eng.deploy(parse_definition(with_line(grid_incident_text, ESCALATE,
                                          "    guards: [not_t1]\n")))
    eng.report(LC, {"category": "x"}, actor=reporter, ticket_id="T1")
    clock.set(at(8, 10))
    eng.report(LC, {"category": "x"}, actor=reporter, ticket_id="T2")

    fired = eng.run_until(at(9, 0))

    assert [(f.timer.ticket_id, f.timer.name, f.outcome) for f in fired] == [
        ("T1", "dispatch_due", "breached"), ("T2", "dispatch_due", "escalated")]
    t2 = eng.get("T2")
    assert (t2.state, t2.level) == ("escalated", "street")
    # T1 stays where it was, but the missed deadline is recorded and the timer is done
    t1 = eng.get("T1")
    assert (t1.state, t1.level, t1.row_version) == ("reported", "community", 2)
    assert [(tm.name, tm.status) for tm in deadline_timers(eng, "T1")] == [
        ("dispatch_due", "fired")]
    [breach] = [h for h in eng.history("T1") if h.kind == "breach"]
    assert (breach.trigger, breach.at, breach.data["due_at"]) == (
        "dispatch_due", at(8, 30), "2024-05-01T08:30:00+00:00")
    assert breach.data["escalation_refused"] == (
        "trigger 'escalate' on ticket 'T1' in state 'reported' was refused by guard(s) "
        "not_t1; meet their condition and try again")
    assert eng.run_due() == []
