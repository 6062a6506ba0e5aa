"""The replay report: one JSON-ready dict, and a Rich rendering of it for people."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.replay.mapping import MappingSpec
from adapters.replay.open311 import Open311Outcome, request_timelines
from adapters.replay.replayer import ReplayOutcome
from engine import Departments, Engine

__all__ = ["build_report", "print_report"]


def build_report(
    engine: Engine, outcome: ReplayOutcome, mapping: MappingSpec | None = None
) -> dict[str, Any]:
    """Build the report of a finished replay.

    Keys: ``lifecycle``, ``rows``, ``tickets``, ``transitions``, ``closed``, ``closure_rate``,
    ``voided``, ``merged``,
    ``overdue``, ``escalations`` (by level reached), ``breaches`` (by deadline),
    ``slas`` (per SLA clock: ``met``, ``breached``, ``open``), ``budget_breaches`` (level
    budgets that ran out, by level), ``median_close_seconds``, ``verdicts`` (``compared``,
    ``agree``, ``disagree``), ``rejected`` (count), ``rejections`` (row, id, reason),
    ``events_applied``, ``events_after_until`` (events later than ``--until``, not applied),
    ``repeats_skipped`` (rows repeating an earlier row exactly), ``source_order`` (``in
    order`` or ``sorted``: the input was sorted on disk first; then ``disorder`` says where it
    first went back in time), ``clock_from`` / ``clock_until`` (ISO 8601 UTC), ``seconds``
    (wall time of the replay), ``tickets_per_s`` and ``departments``: per department, work
    orders ``received``, ``bounced``, ``resolved``, ``on_time``, ``escalated`` (see
    :meth:`engine.Departments.figures`). ``verdicts.source`` is ``column`` (the source's own
    verdict), ``computed`` (from its deadline) or None (nothing to compare). An Open311
    replay adds ``requests``: per request its state, departments involved and order of
    events, and ``kept_open``: requests the city closed while work orders were still open,
    which the lifecycle's resolution rule keeps open (row, id, reason, open work orders).
    """
    verdict = mapping.verdict if mapping is not None else None
    read = verdict if verdict is not None and verdict.field is not None else None
    summary = engine.summary(outcome.lifecycle, verdict_field=read.field if read else None)
    compared = agree = 0
    if outcome.verdicts is not None:
        compared, agree = outcome.verdicts["compared"], outcome.verdicts["agree"]
    elif read is not None:
        for (value, engine_overdue), count in summary.verdict_pairs.items():
            if value in read.overdue:
                expected = True
            elif value in read.on_time:
                expected = False
            else:
                continue
            compared += count
            agree += count if expected == engine_overdue else 0
    return {
        "lifecycle": outcome.lifecycle,
        "rows": outcome.rows,
        "tickets": summary.tickets,
        "transitions": summary.transitions,
        "closed": summary.closed,
        "closure_rate": round(summary.closure_rate, 4),
        "voided": summary.voided,  # issue 12: counted apart (closed / (all - voided - merged))
        "merged": summary.merged,
        "evidence": engine.evidence_counts(outcome.lifecycle),  # issue 12
        "overdue": summary.overdue,
        "escalations": summary.escalations,
        "breaches": dict(sorted(summary.breaches.items())),
        "slas": summary.slas,
        "budget_breaches": summary.budget_breaches,
        "median_close_seconds": summary.median_close_seconds,
        "verdicts": {"compared": compared, "agree": agree, "disagree": compared - agree,
                     "source": "computed" if outcome.verdicts is not None else
                     "column" if read is not None else None},
        "rejected": len(outcome.rejections),
        "rejections": [
            {"row": r.row, "id": r.ticket_id, "reason": r.reason} for r in outcome.rejections
        ],
        "events_applied": outcome.events_applied,
        "events_after_until": outcome.events_skipped_after_until,
        "clock_from": outcome.started_at.isoformat() if outcome.started_at else None,
        "clock_until": outcome.until.isoformat() if outcome.until else None,
        "repeats_skipped": outcome.repeats,
        "source_order": outcome.source_order,
        **({"disorder": outcome.disorder} if outcome.disorder else {}),
        "seconds": round(outcome.seconds, 3),
        "tickets_per_s": round(outcome.planned / outcome.seconds, 1) if outcome.seconds else None,
        "departments": Departments(engine).figures(outcome.lifecycle),
        **({"requests": request_timelines(engine, outcome),
            "kept_open": [{"row": k.row, "id": k.request, "reason": k.reason,
                           "open_work_orders": list(k.open_orders)}
                          for k in outcome.kept_open]}
           if isinstance(outcome, Open311Outcome) else {}),
    }


_QUIET = frozenset({"accept"})


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds / 3600:.1f} h"


def print_report(report: dict[str, Any], console: Console) -> None:
    """Print the report as tables."""
    main = Table(title=f"Replay of {report['rows']:,} rows through {report['lifecycle']}",
                 show_header=False)
    main.add_column("figure")
    main.add_column("value", justify="right")
    rows = [
        ("tickets", f"{report['tickets']:,}"),
        ("transitions applied", f"{report['transitions']:,}"),
        ("closed", f"{report['closed']:,}"),
        ("closure rate (closed / (all - voided - merged))", f"{report['closure_rate']:.2%}"),
        ("voided (counted apart)", f"{report.get('voided', 0):,}"),
        ("photos and files (stored / references)",
         "{stored:,} / {references:,}".format(**report.get("evidence", {"stored": 0,
                                                                      "references": 0}))),
        ("overdue (resolution deadline breached)", f"{report['overdue']:,}"),
        ("median report → close", _hours(report["median_close_seconds"])),
        ("rows rejected", f"{report['rejected']:,}"),
        ("rows skipped (exact repeats)", f"{report.get('repeats_skipped', 0):,}"),
        ("virtual clock", f"{report['clock_from']} → {report['clock_until']}"),
        ("wall time", f"{report['seconds']:.1f} s"),
    ]
    if "kept_open" in report:
        rows.insert(7, ("kept open by the resolution rule", f"{len(report['kept_open']):,}"))
    if report.get("source_order") == "sorted":
        rows.append(("input order", "not by report time: sorted on disk first"))
    for name, value in rows:
        main.add_row(name, value)
    console.print(main)

    esc = Table(title="Escalations by level reached")
    esc.add_column("level")
    esc.add_column("hops", justify="right")
    esc.add_column("its budget ran out", justify="right")
    for level, count in report["escalations"].items():
        esc.add_row(level, f"{count:,}", f"{report.get('budget_breaches', {}).get(level, 0):,}")
    console.print(esc)

    breaches = Table(title="Deadline breaches")
    breaches.add_column("deadline")
    breaches.add_column("breaches", justify="right")
    for name, count in report["breaches"].items():
        breaches.add_row(name, f"{count:,}")
    console.print(breaches)

    if report.get("slas"):
        slas = Table(title="SLA clocks")
        slas.add_column("clock")
        for col in ("met", "breached", "open"):
            slas.add_column(col, justify="right")
        for name, counts in report["slas"].items():
            slas.add_row(name, *(f"{counts[c]:,}" for c in ("met", "breached", "open")))
        console.print(slas)

    if report.get("departments"):
        depts = Table(title="By department (work orders; a one-department request is one)")
        depts.add_column("department")
        for name in ("received", "bounced", "resolved", "on time", "escalated"):
            depts.add_column(name, justify="right")
        for name, f in report["departments"].items():
            depts.add_row(name, *(f"{f[k]:,}" for k in ("received", "bounced", "resolved",
                                                          "on_time", "escalated")))
        console.print(depts)

    if report.get("requests"):
        reqs = Table(title="Requests: departments involved and order of events")
        reqs.add_column("request")
        reqs.add_column("state")
        reqs.add_column("departments (lead first)")
        reqs.add_column("events")
        for r in report["requests"]:
            steps = [f"{e['trigger']}" + (f"@{e['department']}" if e["department"] else "")
                     for e in r["events"]
                     if e["trigger"] not in _QUIET and e["kind"] != "breach"]
            reqs.add_row(r["id"], r["state"], ", ".join(r["departments"]), " → ".join(steps))
        console.print(reqs)

    if report.get("kept_open"):
        kept = Table(title="Closed by the city with work orders still open (kept open: the "
                           "lifecycle resolves a ticket after its work orders)")
        kept.add_column("row", justify="right")
        kept.add_column("id")
        kept.add_column("work orders still open")
        for k in report["kept_open"]:
            kept.add_row(str(k["row"]), k["id"], ", ".join(k["open_work_orders"]))
        console.print(kept)

    v = report["verdicts"]
    if v["compared"]:
        what = ("verdicts computed from its deadlines" if v.get("source") == "computed"
                else "on-time verdicts")
        console.print(
            f"Source system's {what} compared: {v['compared']:,}; "
            f"engine agrees on {v['agree']:,}, disagrees on {v['disagree']:,}."
        )
    if report["rejections"]:
        rej = Table(title="Rejected rows")
        rej.add_column("row", justify="right")
        rej.add_column("id")
        rej.add_column("reason")
        for r in report["rejections"][:50]:
            rej.add_row(str(r["row"]), r["id"], r["reason"])
        console.print(rej)
        if len(report["rejections"]) > 50:
            console.print(f"… and {len(report['rejections']) - 50} more (see --json).")
