"""The APScheduler wake-up clock fires deadlines in real time with the SystemClock."""

from __future__ import annotations

import time

from helpers import is_utc

from engine import Actor, Engine, SystemClock, parse_definition

QUICK = """\
format: 1
name: quick
initial: open
roles:
  centre: {}
levels:
  - {name: community}
report:
  roles: [centre]
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
deadlines:
  first_look:
    state: open
    after: PT1S
    on_breach: record
"""


def test_started_engine_fires_a_deadline_in_real_time(tmp_path):
    eng = Engine(tmp_path / "t.sqlite")  # default: SystemClock
    assert isinstance(eng.clock, SystemClock)
    try:
        eng.start()
        eng.deploy(parse_definition(QUICK))
        ticket = eng.report("quick", {}, actor=Actor("ops-1", "centre"))
        [timer] = eng.timers(ticket.id)
        assert timer.status == "pending"
        assert (timer.due_at - ticket.created_at).total_seconds() == 1.0

        deadline = time.monotonic() + 10
        while eng.timers(ticket.id)[0].status != "fired" and time.monotonic() < deadline:
            time.sleep(0.05)

        [timer] = eng.timers(ticket.id)
        assert timer.status == "fired"
        assert is_utc(timer.fired_at)
        assert timer.fired_at > timer.due_at  # breached only once the clock is past it
        breaches = [h for h in eng.history(ticket.id) if h.kind == "breach"]
        assert len(breaches) == 1
        assert (breaches[0].trigger, breaches[0].data["due_at"], breaches[0].data["on_breach"]) \
            == ("first_look", timer.due_at.isoformat(), "record")
        t = eng.get(ticket.id)
        assert (t.state, t.overdue) == ("open", True)
    finally:
        eng.stop()


def test_stopping_right_after_a_start_kills_no_scheduler_thread(tmp_path, monkeypatch):
    """APScheduler 3 removes a one-off job after its run; a shutdown() at that moment made
    the removal fail and the scheduler's thread die with JobLookupError (the start-up run,
    the periodic catch-up). Every job of ours now stays until the scheduler stops."""
    import threading

    deaths: list[str] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: deaths.append(repr(args.exc_value)))
    for i in range(40):  # the race hit about one start/stop in ten before the fix
        eng = Engine(tmp_path / f"t{i}.sqlite")
        if i % 2:
            eng.deploy("grid_patrol")  # its cron jobs and a catch-up run
        eng.start()
        eng.stop()
    time.sleep(0.2)  # a thread dies just after shutdown() returns
    assert deaths == []
