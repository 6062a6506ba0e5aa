"""``GET /reports``: the figures of ``gridwhistle report``, by department, level or period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from adapters.http.api import EngineDep, GrantDep
from adapters.http.problems import PROBLEM_JSON, Problem
from engine import Report, build_report
from engine.reports import Group

__all__ = ["report_for", "router"]

router = APIRouter(tags=["reports"], responses={
    s: {"content": {PROBLEM_JSON: {}}, "description": "RFC 9457 problem details"}
    for s in (401, 404, 422)})


def _instant(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Problem(422, "bad-instant", f"{name} must be an ISO 8601 instant such as "
                      f"2024-05-01T00:00:00Z, got {value!r}", parameter=name) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def report_for(request: Request, engine: Any, department: str | None, *, lifecycle: str | None,
               by: str, period: str, since: str | None, until: str | None,
               lang: str, organisation: str | None = None) -> Report:
    """Build the report a request asks for (shared by the API and the console).

    A department key (``department`` given) sees its own department's figures only: the
    report is grouped by department whatever ``by`` asks, and holds its own row, which is
    also the total (an empty row for a department without work orders). City-wide figures
    are the centre's (issue 11: a department does not read other departments' counts).
    An outside organisation's key (``organisation`` given) sees only the tickets it holds
    (issue 12), so the district's figures are not its to read.

    Raises:
        Problem: 403 ``not-held`` for an organisation's key, 404 for a lifecycle the app
            does not serve, 422 for bad parameters.
    """
    if organisation is not None:
        raise Problem(403, "not-held", f"this key acts for organisation {organisation!r}, "
                      "which sees only the tickets it holds now (GET /tickets); the "
                      "district's reports are the centre's and its departments'",
                      organisation=organisation)
    served: tuple[str, ...] = request.app.state.lifecycles
    name = lifecycle or served[0]
    if name not in served:
        raise Problem(404, "unknown-lifecycle", f"this API serves lifecycle(s) "
                      f"{', '.join(served)}; not {name!r}", lifecycle=name, known=list(served))
    if department is not None:
        by = "department"
    try:
        rep = build_report(engine, name, by=by, period=period, since=_instant(since, "from"),
                           until=_instant(until, "until"), lang=lang)
    except ValueError as exc:
        raise Problem(422, "bad-report-parameters", str(exc)) from None
    if department is not None:
        own = tuple(g for g in rep.groups if g.key == department)
        # a department without work orders: its row with every figure empty (0 or none),
        # not without figures (the console's charts and table read each one)
        total = own[0] if own else Group(department,
                                         _department_title(engine, name, department, lang),
                                         {f.name: f.compute(()) for f in rep.figures})
        rep = replace(rep, groups=own, total=total)
    return rep


def _department_title(engine: Any, lifecycle: str, department: str, lang: str) -> str:
    """The department's display title in ``lang`` (as the report's other rows have it)."""
    dept = engine.lifecycle(lifecycle).spec.departments.get(department)
    titles = dict(dept.title or {}) if dept is not None else {}
    return str(titles.get(lang) or titles.get("en") or department)


@router.get("/reports", summary="Figures by department, level or period")
def reports(
    request: Request,
    engine: EngineDep,
    grant: GrantDep,
    lifecycle: Annotated[str | None, Query(max_length=64)] = None,
    by: Annotated[str, Query(pattern="^(all|department|level|period)$")] = "all",
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "month",
    since: Annotated[str | None, Query(alias="from", max_length=64,
                                       description="Reported at or after (ISO 8601).")] = None,
    until: Annotated[str | None, Query(max_length=64,
                                       description="Reported before (ISO 8601).")] = None,
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
    fmt: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
) -> Response:
    """The same figures as ``gridwhistle report`` (JSON, or CSV with ``format=csv``).

    Closure and on-time rates, times to dispatch, site and resolution (median and 90th
    percentile, seconds), escalations by level, bounce-backs; grouped ``by`` department
    (work orders), level or period, for tickets reported in ``[from, until)``.
    """
    rep = report_for(request, engine, grant.department, organisation=grant.organisation,
                     lifecycle=lifecycle, by=by,
                     period=period, since=since, until=until, lang=lang)
    if fmt == "csv":
        return Response(rep.as_csv(), media_type="text/csv; charset=utf-8")
    return JSONResponse(rep.as_dict())
