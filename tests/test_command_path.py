"""The command path's memos and shortcuts answer as the rules they stand for.

* change ids (:func:`engine.runtime.changes.new_change_id`): version-4 UUID text, distinct,
  per thread and anew in a forked child;
* the lifecycle's :class:`~engine.lifecycle.machine.Route` memo: one answer per state,
  trigger and role, refusals never kept;
* :meth:`Lifecycle.fire` drives the shared Machine through the library's own transitions:
  guards, actions and the role condition run as ``Event.trigger`` runs them;
* the edge checks' memos (actors, names) and the fields' datetime decoding.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime

import pytest

from engine import (
    Actor,
    GuardRejected,
    InvalidFields,
    Registry,
    RoleNotAllowed,
    load_definition,
    parse_definition,
)
from engine.definition import bundled_workflows_dir
from engine.errors import HostCallbackFailed, TriggerNotAllowed, UnknownTrigger
from engine.lifecycle.machine import Lifecycle, Subject
from engine.lifecycle.registry import CommandContext
from engine.runtime.changes import new_change_id
from engine.runtime.fields import load_fields
from engine.validation import Limits, check_fire

NOW = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


# -- change ids -------------------------------------------------------------------------------


def test_change_ids_are_version_4_uuid_text_and_distinct() -> None:
    ids = [new_change_id() for _ in range(5000)]  # crosses several 4 KiB pools
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_threads_draw_change_ids_from_their_own_pools() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def draw(bucket: list[str]) -> None:
        bucket.extend(new_change_id() for _ in range(2000))

    threads = [threading.Thread(target=draw, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for bucket in out for i in bucket]
    assert len(set(every)) == len(every) == 8000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_random_bytes() -> None:
    new_change_id()  # the parent's pool holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, "\n".join(new_change_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {new_change_id() for _ in range(50)}
    assert len(child) == 50 and not child & parent


# -- the route memo and the Machine ---------------------------------------------------------------


def _grid() -> Lifecycle:
    return Lifecycle(load_definition(bundled_workflows_dir() / "grid_incident.yaml"))


def test_a_route_is_kept_per_state_trigger_and_role() -> None:
    lc = _grid()
    first = lc.route("T1", "reported", "dispatch", "centre")
    assert lc.route("T2", "reported", "dispatch", "centre") is first
    assert first.candidates == tuple(lc.transitions_for("reported", "dispatch"))
    assert not first.escalates
    assert lc.check("T3", "reported", "dispatch", "centre") == list(first.candidates)
    assert lc.route("T1", "reported", "escalate", "centre").escalates


def test_refusals_are_not_kept_and_name_each_ticket() -> None:
    lc = _grid()
    for tid in ("T1", "T2"):
        with pytest.raises(RoleNotAllowed) as refused:
            lc.route(tid, "reported", "dispatch", "resident")
        assert refused.value.ticket_id == tid
        with pytest.raises(TriggerNotAllowed) as refused_trigger:
            lc.route(tid, "reported", "close", "centre")
        assert refused_trigger.value.ticket_id == tid
        with pytest.raises(UnknownTrigger):
            lc.route(tid, "reported", "no_such_trigger", "centre")


_GUARDED = """
format: 1
name: guarded
initial: open
roles: {a: {}, b: {}, system: {}}
levels: [{name: l1}]
report: {roles: [a]}
fields: {ok: {type: boolean}}
states: {open: {}, left: {final: true}, right: {final: true}, done: {final: true}}
transitions:
  - {trigger: go, source: open, dest: left, roles: [a], guards: [ok]}
  - {trigger: go, source: open, dest: right, roles: [a, b], actions: [note]}
  - {trigger: poke, source: open, dest: open, roles: [a], internal: true, actions: [note]}
  - {trigger: fail, source: open, dest: done, roles: [a], actions: [boom]}
"""


def _guarded() -> tuple[Lifecycle, list[tuple[str, str, str]]]:
    seen: list[tuple[str, str, str]] = []
    registry = Registry()
    registry.guard("ok")(lambda ctx: bool(ctx.fields.get("ok")))
    registry.action("note")(lambda ctx: seen.append((ctx.trigger, ctx.source, ctx.dest)))

    def boom(ctx: CommandContext) -> None:
        raise RuntimeError("boom")

    registry.action("boom")(boom)
    return Lifecycle(parse_definition(_GUARDED, file="guarded.yaml"), registry), seen


def _ctx(trigger: str, role: str, fields: dict[str, object]) -> CommandContext:
    return CommandContext("T1", trigger, "open", "", "l1", dict(fields), "x", role, None, NOW)


def test_fire_takes_the_first_candidate_whose_conditions_pass() -> None:
    lc, seen = _guarded()
    subject = Subject("open")
    assert lc.fire(subject, _ctx("go", "a", {"ok": True})) == "left" == subject.state
    assert seen == []
    ctx = _ctx("go", "a", {"ok": False})
    assert lc.fire(Subject("open"), ctx) == "right"
    assert ctx.failed_guards == ["ok"] and seen == [("go", "open", "right")]
    # role b may not take the guarded transition (the Machine's role condition)
    assert lc.fire(Subject("open"), _ctx("go", "b", {"ok": True})) == "right"


def test_fire_runs_internal_transitions_and_reports_failures() -> None:
    lc, seen = _guarded()
    ctx = _ctx("poke", "a", {})
    assert lc.fire(Subject("open"), ctx) == "open"
    assert ctx.internal and seen == [("poke", "open", "open")]
    with pytest.raises(HostCallbackFailed):
        lc.fire(Subject("open"), _ctx("fail", "a", {}))
    assert lc.fire(Subject("open"), _ctx("go", "a", {"ok": True})) == "left"


def test_fire_refuses_when_every_guard_says_no() -> None:
    registry = Registry()
    registry.guard("ok")(lambda ctx: False)
    registry.action("note")(lambda ctx: None)
    registry.action("boom")(lambda ctx: None)
    lc = Lifecycle(parse_definition(_GUARDED.replace("roles: [a, b], actions: [note]",
                                                     "roles: [a, b], guards: [ok]"),
                                    file="guarded.yaml"), registry)
    with pytest.raises(GuardRejected) as refused:
        lc.fire(Subject("open"), _ctx("go", "a", {}))
    assert refused.value.guards == ("ok", "ok")


def test_a_pure_transition_lands_where_the_librarys_execute_lands() -> None:
    """The shortcut for pure transitions (no conditions, no callbacks) takes the state the
    library's own ``Transition.execute`` (and :meth:`Lifecycle.fire`) lands in, for every
    declared state and trigger of every bundled lifecycle; a transition with a guard, an
    action or a role condition, or an internal one, is never pure."""
    from transitions import EventData

    from engine.definition import bundled_names

    shortcuts = 0
    for name in bundled_names():
        lc = Lifecycle(load_definition(bundled_workflows_dir() / f"{name}.yaml"), strict=False)
        m = lc.machine
        for t in lc.spec.transitions:
            for src in t.source:
                first = m.events[t.trigger].transitions[src][0]
                dest = lc.pure_dest(src, t.trigger)
                if dest is None:
                    assert (first.conditions or first.after or first.before or first.prepare
                            or first.dest is None), (name, src, t.trigger)
                    continue
                shortcuts += 1
                via_library = Subject(src)
                data = EventData(m.states[src], m.events[t.trigger], m, via_library, (), {})
                data.transition = first
                assert first.execute(data)
                ctx = CommandContext("T1", t.trigger, src, "", "l1", {}, "x", t.roles[0],
                                     None, NOW)
                shortcut = Subject(src)
                assert lc.fire(shortcut, ctx) == via_library.state == dest == shortcut.state
    assert shortcuts > 20
    lc, _ = _guarded()
    assert lc.pure_dest("open", "go") is None  # a guard, and a role condition
    assert lc.pure_dest("open", "poke") is None  # internal, with an action
    assert lc.pure_dest("open", "fail") is None  # an action


# -- the edge checks and the fields ------------------------------------------------------------


def test_memoised_actor_and_name_checks_answer_every_time() -> None:
    limits = Limits()
    for _ in range(3):
        check_fire(limits, ticket_id="T1", trigger="dispatch", actor=Actor("ops-1", "centre"),
                   fields={"department": "water"})
        with pytest.raises(InvalidFields) as refused:
            check_fire(limits, ticket_id="T1", trigger="Dispatch", actor=Actor(" ", "Centre"),
                       fields={"Bad": "x\x00", "ok": "caf\udce9"})
        assert set(refused.value.errors) == {"actor", "role", "trigger", "fields", "ok"}
        assert "surrogate" in refused.value.errors["ok"]


def test_load_fields_decodes_the_datetime_fields_only() -> None:
    declared = _grid().spec.fields
    stored = {"category": "x", "target_at": "2024-05-06T09:00:00+00:00"}
    loaded = load_fields(declared, stored)
    assert loaded == {"category": "x", "target_at": NOW}
    assert stored["target_at"] == "2024-05-06T09:00:00+00:00"  # a new dict
    assert load_fields(declared, {"category": "2024-05-06T09:00:00+00:00"}) == {
        "category": "2024-05-06T09:00:00+00:00"}


def test_the_tickets_own_init_takes_its_fields_in_order() -> None:
    import dataclasses
    import inspect
    import pickle

    from engine import Ticket

    names = [f.name for f in dataclasses.fields(Ticket)]
    assert list(inspect.signature(Ticket).parameters) == names
    ticket = Ticket(*names)
    assert [getattr(ticket, n) for n in names] == names
    assert ticket == Ticket(**{n: n for n in names}) == pickle.loads(pickle.dumps(ticket))
    assert dataclasses.replace(ticket, state="x").state == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ticket.state = "y"  # type: ignore[misc]
