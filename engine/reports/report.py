"""Figures grouped by department, whistle level or period (reports, the API, the console).

:func:`build_report` reads the units of one lifecycle's tickets reported in a range, groups
them and computes the lifecycle's figure set (:func:`~engine.reports.figures.figures_for`) for
each group and for all of them. :meth:`Report.as_dict` is the JSON shape (``gridwhistle report
--json``, ``GET /reports``), :meth:`Report.as_csv` the CSV one; both carry the same values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal, Protocol

from engine.errors import InvalidArgument
from engine.lifecycle.machine import Lifecycle
from engine.reports.figures import Figure, Value, figures_for
from engine.reports.units import Unit, department_units, milestones_of, ticket_units
from engine.store.database import Database


class ReportSource(Protocol):
    """What a report reads (the public Engine is one)."""

    @property
    def db(self) -> Database:
        """The database read."""

    def lifecycle(self, name: str) -> Lifecycle:
        """The compiled current version of lifecycle ``name``."""

__all__ = ["BY", "PERIODS", "Group", "Report", "build_report", "report_zone"]

By = Literal["all", "department", "level", "period"]
Period = Literal["day", "week", "month"]
BY: tuple[str, ...] = ("all", "department", "level", "period")
PERIODS: tuple[str, ...] = ("day", "week", "month")

_ALL = {"zh": "全部", "en": "All"}
_NONE = {"zh": "未分派", "en": "Not assigned"}


@dataclass(frozen=True)
class Group:
    """One row of a report.

    Attributes:
        key: the department, level or period (``2024-05``, ``2024-W18``, ``2024-05-01``);
            ``all`` for the total.
        title: its display title in the report's language.
        values: figure name → value (see the report's figures).
    """

    key: str
    title: str
    values: dict[str, Value]


@dataclass(frozen=True)
class Report:
    """Figures of one lifecycle's tickets reported in ``[since, until)``.

    Attributes:
        lifecycle, title: the lifecycle's name and title (in ``lang``).
        by: the grouping; period: for ``by="period"``, its length; zone: the zone periods
            are cut in (the lifecycle's first calendar's, else UTC).
        since, until: the report-instant range (aware UTC, or None for open).
        lang: ``zh`` or ``en``.
        figures: the figures, in order.
        groups: one per group key (levels lowest first, others sorted by key).
        total: all tickets together (for ``by="department"`` too: tickets, not work orders,
            so it is not the sum of the department rows when tickets have several).
    """

    lifecycle: str
    title: str
    by: str
    period: str | None
    zone: str
    since: datetime | None
    until: datetime | None
    lang: str
    figures: tuple[Figure, ...]
    groups: tuple[Group, ...]
    total: Group

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready shape (instants as ISO 8601 UTC)."""
        return {
            "lifecycle": self.lifecycle, "title": self.title, "by": self.by,
            "period": self.period, "zone": self.zone,
            "from": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None, "lang": self.lang,
            "figures": [{"name": f.name, "title": f.label(self.lang), "kind": f.kind,
                         "chart": f.chart} for f in self.figures],
            "groups": [_group(g) for g in self.groups],
            "total": _group(self.total),
        }

    def as_csv(self) -> str:
        """The CSV shape.

        A header of ``group``, ``title`` and the figure names; one row per group, then the
        total (``all``). Missing values are empty cells.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["group", "title", *(f.name for f in self.figures)])
        for g in (*self.groups, self.total):
            writer.writerow([g.key, g.title, *("" if g.values[f.name] is None
                                               else g.values[f.name] for f in self.figures)])
        return out.getvalue()


def _group(g: Group) -> dict[str, Any]:
    return {"key": g.key, "title": g.title, "values": g.values}


def _round(value: Value, figure: Figure) -> Value:
    if value is None or figure.kind == "count":
        return value
    return round(float(value), 4 if figure.kind == "rate" else 1)


def report_zone(lc: Any) -> tzinfo:
    """The zone a lifecycle's periods are cut in: its first calendar's, else UTC."""
    for cal in lc.calendars.values():
        zone: tzinfo = cal.zone
        return zone
    return UTC


def _period_key(at: datetime, period: str, zone: tzinfo) -> str:
    local = at.astimezone(zone)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def _title(spec_title: Any, lang: str, fallback: str) -> str:
    titles = dict(spec_title or {})
    return str(titles.get(lang) or titles.get("en") or fallback)


def build_report(
    engine: ReportSource, lifecycle: str, *, by: str = "all", period: str = "month",
    since: datetime | None = None, until: datetime | None = None, lang: str = "zh",
) -> Report:
    """Compute the figures of ``lifecycle``'s tickets reported in ``[since, until)``.

    Args:
        engine: whose database is read (one read transaction).
        lifecycle: the lifecycle name (all its versions).
        by: ``all`` (total only), ``department`` (units are work orders; see
            :func:`~engine.reports.units.department_units`), ``level`` (the ticket's current
            whistle level) or ``period`` (of the report instant, in :func:`report_zone`).
        period: ``day``, ``week`` (ISO weeks, ``2024-W18``) or ``month``.
        since: aware datetime, the first report instant counted (None: open).
        until: aware datetime, the report instant to stop before (None: open).
            Aware datetimes bounding the report instant (until exclusive); None
            leaves that side open. Later history of those tickets counts (times, closure).
        lang: ``zh`` or ``en`` for titles (the lifecycle's titles; falls back to English).

    Raises:
        InvalidArgument: ``by``, ``period`` or ``lang`` unknown, a naive bound, or since >=
            until (also a ValueError, as before).
        UnknownDefinition: no such lifecycle.
    """
    if by not in BY:
        raise InvalidArgument("by", f"by must be one of {', '.join(BY)}, not {by!r}")
    if period not in PERIODS:
        raise InvalidArgument("period", f"period must be one of {', '.join(PERIODS)}, not "
                                        f"{period!r}")
    if lang not in ("zh", "en"):
        raise InvalidArgument("lang", f"lang must be zh or en, not {lang!r}")
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise InvalidArgument(name, "give --from/--until with a time zone (aware "
                                        "datetimes)")
    if since is not None and until is not None and since >= until:
        raise InvalidArgument("since", f"the range is empty: from {since.isoformat()} is not "
                                       f"before until {until.isoformat()}; give a later until")
    since = since.astimezone(UTC) if since else None
    until = until.astimezone(UTC) if until else None
    lc = engine.lifecycle(lifecycle)
    milestones = milestones_of(lc)
    zone = report_zone(lc)
    with engine.db.read() as conn:
        if by == "department":
            units = department_units(conn, lifecycle, milestones, since=since, until=until)
            every = ticket_units(conn, lifecycle, milestones, since=since, until=until)
        else:
            units = every = ticket_units(conn, lifecycle, milestones, since=since, until=until)
    figures = tuple(figures_for(lc))
    keyed: dict[str, list[Unit]] = {}
    titles: dict[str, str] = {}
    spec = lc.spec
    for u in units if by != "all" else ():
        if by == "department":
            key = u.department or ""
            dept = spec.departments.get(key)
            titles[key] = _title(dept.title if dept else None, lang, key)
        elif by == "level":
            key = u.level
            lv = next((x for x in spec.levels if x.name == key), None)
            titles[key] = _title(lv.title if lv else None, lang, key)
        else:
            key = _period_key(u.reported_at, period, zone)
            titles[key] = key
        keyed.setdefault(key, []).append(u)
    order = list(lc.levels) if by == "level" else None

    def sort_key(k: str) -> tuple[int, str]:
        return ((order.index(k) if k in order else len(order)), k) if order else (0, k)

    groups = tuple(Group(k, titles[k] or _NONE[lang], _values(figures, keyed[k]))
                   for k in sorted(keyed, key=sort_key))
    return Report(
        lifecycle=lifecycle, title=_title(spec.title, lang, lifecycle), by=by,
        period=period if by == "period" else None, zone=str(getattr(zone, "key", zone)),
        since=since, until=until, lang=lang, figures=figures, groups=groups,
        total=Group("all", _ALL[lang], _values(figures, every)))


def _values(figures: Sequence[Figure], units: Sequence[Unit]) -> dict[str, Value]:
    return {f.name: _round(f.compute(units), f) for f in figures}

