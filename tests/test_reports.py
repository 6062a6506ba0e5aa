"""engine/reports: the figures by department, level and period, and figures plugged in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import START

from engine import Actor, Departments, Engine, build_report
from engine.reports import Figure, percentile, register_facts, register_source
from engine.reports import figures as figures_module
from engine.reports import units as units_module

GW, CENTRE = Actor("gw-017", "centre"), Actor("ops-1", "centre")
WATER, SAN = Actor("water-3", "department"), Actor("san-1", "department")


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 90) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([0.0, 10.0], 90) == 9.0
    assert percentile([float(i) for i in range(1, 11)], 50) == 5.5


def scenario(engine: Engine) -> None:
    """T1 (blocked drain): water and sanitation both finish; T2 (garbage): waits and its
    dispatch deadline escalates it; T3 (noise) is reported the next day."""
    depts = Departments(engine)
    engine.report("grid_incident", {"category": "blocked_drain", "area": "A"}, actor=GW,
                  ticket_id="T1")
    engine.report("grid_incident", {"category": "garbage", "area": "B"}, actor=GW,
                  ticket_id="T2")
    engine.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]
    depts.dispatch("T1", actor=CENTRE)
    engine.clock.advance(timedelta(minutes=50))  # type: ignore[attr-defined]
    for actor, wid in ((WATER, "T1.1"), (SAN, "T1.2")):
        engine.fire(wid, "accept", actor=actor)
        engine.fire(wid, "arrive", actor=actor)
    engine.run_until(START + timedelta(hours=3))  # T2's dispatch deadline (30 min) escalates
    engine.fire("T1.1", "finish", actor=WATER)
    engine.fire("T1.2", "finish", actor=SAN)
    engine.fire("T1", "close", actor=CENTRE)
    engine.run_until(START + timedelta(days=1))
    engine.report("grid_incident", {"category": "noise", "area": "C"}, actor=GW,
                  ticket_id="T3")


def test_figures_by_level_and_period(engine: Engine) -> None:
    scenario(engine)
    rep = build_report(engine, "grid_incident", by="level", lang="en")
    total = rep.total.values
    assert (total["received"], total["closed"], total["closure_rate"]) == (3, 1, 0.3333)
    assert total["dispatch_median_s"] == 600.0  # T1 only: 10 minutes
    assert total["on_site_median_s"] == 3600.0  # the parent arrives with its work orders
    assert total["resolved_median_s"] == 3 * 3600.0
    assert (total["escalations"], total["escalations_street"]) == (1, 1)
    assert [(g.key, g.title, g.values["received"]) for g in rep.groups] == [
        ("community", "Community", 2), ("street", "Street office", 1)]

    days = build_report(engine, "grid_incident", by="period", period="day")
    # periods are cut in the centre calendar's zone (Asia/Shanghai): 08:00 UTC is 16:00 there
    assert [(g.key, g.values["received"]) for g in days.groups] == [
        ("2024-05-01", 2), ("2024-05-02", 1)]
    late = build_report(engine, "grid_incident", since=START + timedelta(hours=12))
    assert late.total.values["received"] == 1
    with pytest.raises(ValueError, match="empty"):
        build_report(engine, "grid_incident", since=START, until=START)


def test_figures_by_department_count_work_orders(engine: Engine) -> None:
    scenario(engine)
    rep = build_report(engine, "grid_incident", by="department", lang="zh")
    by = {g.key: g for g in rep.groups}
    assert set(by) == {"water", "sanitation"}  # T2 never got a department
    assert by["water"].title == "区水务局"
    water = by["water"].values
    assert (water["received"], water["closed"], water["on_time"]) == (1, 1, 1)
    assert water["dispatch_median_s"] == 600.0  # its work order was issued at the dispatch
    assert water["resolved_median_s"] == 3 * 3600.0
    assert rep.total.values["received"] == 3  # the total counts tickets
    csv_lines = rep.as_csv().splitlines()
    assert csv_lines[0].split(",")[:4] == ["group", "title", "received", "closed"]
    assert [line.split(",")[0] for line in csv_lines[1:]] == ["sanitation", "water", "all"]


def test_more_figures_plug_in(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units_module, "_LOADERS", {})
    monkeypatch.setattr(figures_module, "_SOURCES", {})
    scenario(engine)

    def satisfaction(conn, ids):  # type: ignore[no-untyped-def]
        return {"T1": {"satisfaction": 5}, "T3": {"satisfaction": 3}}

    def source(lc):  # type: ignore[no-untyped-def]
        def mean(units):  # type: ignore[no-untyped-def]
            scores = [u.extra["satisfaction"] for u in units if "satisfaction" in u.extra]
            return sum(scores) / len(scores) if scores else None

        return [Figure("satisfaction_mean", {"zh": "满意度", "en": "Satisfaction"}, "rate",
                       mean, "satisfaction")]

    register_facts("satisfaction", satisfaction)
    register_source("satisfaction", source)
    rep = build_report(engine, "grid_incident", by="level")
    assert rep.figures[-1].name == "satisfaction_mean"
    assert rep.total.values["satisfaction_mean"] == 4.0
    assert {g.key: g.values["satisfaction_mean"] for g in rep.groups} == {
        "community": 4.0, "street": None}
    assert rep.as_dict()["figures"][-1] == {"name": "satisfaction_mean", "title": "满意度",
                                            "kind": "rate", "chart": "satisfaction"}


def test_the_summary_counts_closed_tickets_as_the_reports_do(engine: Engine) -> None:
    """A merged duplicate is final but not closed, in Engine.summary as in the reports (the
    summary of `gridwhistle report --json` had one more closed ticket than its report)."""
    scenario(engine)
    engine.report("grid_incident", {"category": "noise", "area": "C"}, actor=GW,
                  ticket_id="T4")
    Departments(engine).merge_duplicate("T4", "T3", actor=CENTRE, reason="same noise")
    assert engine.get("T4").state == "merged"
    total = build_report(engine, "grid_incident").total.values
    summary = engine.summary("grid_incident")
    assert (summary.tickets, summary.merged, summary.closed) == (4, 1, 1)
    assert (total["received"], total["closed"]) == (4, 1)
    assert round(summary.closure_rate, 4) == total["closure_rate"] == 0.3333
