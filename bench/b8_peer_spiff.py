"""Benchmark 8: a peer. The 4-step lifecycle (report, dispatch, arrive, resolve) in
SpiffWorkflow 3 (a BPMN process of user tasks), serialised to JSON with its
``BpmnWorkflowSerializer`` and stored in a SQLite row after every step, the way its users
persist; vs Gridwhistle doing report, dispatch, arrive, resolve (one transaction each) in the
same run, alternately.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from _common import T0, floor_connection, median, report, workdir
from _dispatch import CENTRE, WORKER

from engine import Actor, Engine, VirtualClock

STEPS = ("report", "dispatch", "arrive", "resolve")
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="grid_incident" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="report"/>
    <bpmn:userTask id="report" name="Report"/>
    <bpmn:sequenceFlow id="f1" sourceRef="report" targetRef="dispatch"/>
    <bpmn:userTask id="dispatch" name="Dispatch"/>
    <bpmn:sequenceFlow id="f2" sourceRef="dispatch" targetRef="arrive"/>
    <bpmn:userTask id="arrive" name="Arrive on site"/>
    <bpmn:sequenceFlow id="f3" sourceRef="arrive" targetRef="resolve"/>
    <bpmn:userTask id="resolve" name="Resolve"/>
    <bpmn:sequenceFlow id="f4" sourceRef="resolve" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
DEPT = Actor("dept-1", "department")


def spiff_runner(path: Path):  # type: ignore[no-untyped-def]
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_str(BPMN.encode())
    spec = parser.get_spec("grid_incident")
    serializer = BpmnWorkflowSerializer()
    conn: sqlite3.Connection = floor_connection(path)
    conn.execute("CREATE TABLE IF NOT EXISTS wf (id TEXT PRIMARY KEY, state TEXT, body TEXT)")

    def step(wf_id: str, name: str, fields: dict[str, str]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        if name == "report":
            wf = BpmnWorkflow(spec)
            wf.do_engine_steps()
        else:
            body = conn.execute("SELECT body FROM wf WHERE id = ?", (wf_id,)).fetchone()[0]
            wf = serializer.deserialize_json(body)
        task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
        assert task.task_spec.name == name, (task.task_spec.name, name)
        task.data.update(fields)
        task.run()
        wf.do_engine_steps()
        body = serializer.serialize_json(wf)
        conn.execute("INSERT OR REPLACE INTO wf VALUES (?, ?, ?)", (wf_id, name, body))
        conn.execute("COMMIT")

    def run(ids: list[str]) -> None:
        for wf_id in ids:
            step(wf_id, "report", {"category": "blocked drain"})
            step(wf_id, "dispatch", {"department": "water"})
            step(wf_id, "arrive", {})
            step(wf_id, "resolve", {})
    return run


def engine_runner(eng: Engine):  # type: ignore[no-untyped-def]
    def run(ids: list[str]) -> None:
        for tid in ids:
            eng.report("grid_incident", {"category": "blocked drain"}, actor=WORKER,
                       ticket_id=tid)
            eng.fire(tid, "dispatch", actor=CENTRE, fields={"department": "water"})
            eng.fire(tid, "arrive", actor=DEPT)
            eng.fire(tid, "resolve", actor=DEPT)
    return run


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=300, help="tickets per round (4 steps each)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    with workdir() as work:
        eng = Engine(work / "engine.sqlite", clock=VirtualClock(T0))
        ours, theirs = engine_runner(eng), spiff_runner(work / "spiff.sqlite")
        ratios, ours_rate, theirs_rate = [], [], []
        for r in range(args.rounds):
            ids = [f"r{r}-{i}" for i in range(args.size)]
            t = time.perf_counter()
            ours(ids)
            e = time.perf_counter() - t
            t = time.perf_counter()
            theirs(ids)
            s = time.perf_counter() - t
            ours_rate.append(4 * args.size / e)
            theirs_rate.append(4 * args.size / s)
            ratios.append(s / e)
        eng.stop()
    figures = {"gridwhistle_steps_per_s": median(ours_rate),
               "spiffworkflow_steps_per_s": median(theirs_rate),
               "ratio_ours_over_theirs": median(ratios)}
    report("b8_peer_spiff", figures)
    return figures


if __name__ == "__main__":
    main()
