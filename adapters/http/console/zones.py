"""Which time zone a console page shows its instants in, and how the zone is labelled.

A lifecycle's instants are shown in its zone: the zone of its (first) business calendar.
A lifecycle without a calendar has no zone of its own: a work order is shown in its ticket's
lifecycle's zone; anything else in UTC — and then labelled "UTC", so nobody reads a UTC
instant as local time (a deadline at the end of 9 June in Chicago is "10 June 04:59 UTC",
not an unlabelled "10 June 04:59").

A page about several lifecycles (the board, the overdue and at-risk lists) shows each
ticket's and work order's times in its own lifecycle's zone, labelled on each card, and says
so (:func:`zones_note`); the reports page cuts its dates in its lifecycle's zone and names it
(:func:`report_note`).

The lifecycle YAML has no time zone setting besides its calendars' ``zone`` (see
``docs/yaml-reference.md``); :func:`page_zone` is the one place to read another if one is
added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from adapters.http.console.i18n import instant

__all__ = ["PageZone", "page_zone", "report_note", "zone_label", "zone_of", "zones_note"]


def zone_of(lc: Any) -> tzinfo | None:
    """The lifecycle's own zone: its first business calendar's; None when it has none."""
    for cal in lc.calendars.values():
        zone: tzinfo = cal.zone
        return zone
    return None


def zone_label(at: datetime, zone: tzinfo) -> str:
    """The short label of ``zone`` at ``at``: ``UTC``, ``UTC+8``, ``UTC−5``, ``UTC+5:30``."""
    offset = at.astimezone(zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


@dataclass(frozen=True)
class PageZone:
    """The zone a page shows instants in.

    Attributes:
        zone: the zone (UTC when none is known).
        name: its IANA name (``Asia/Shanghai``) or ``UTC``.
        known: whether a lifecycle gave it (False: UTC, for want of one).
    """

    zone: tzinfo
    name: str
    known: bool

    def at(self, value: datetime | None, lang: str, *, weekday: bool = True) -> str:
        """``value`` in this zone with the zone's label (``…09:30 UTC+8``); ``–`` for None."""
        if value is None:
            return "–"
        return f"{instant(value, self.zone, lang, weekday=weekday)} {zone_label(value, self.zone)}"

    def note(self, now: datetime, lang: str) -> str:
        """One line for the page: which zone its times are in."""
        label = zone_label(now, self.zone)
        if not self.known:
            return ("时间均为协调世界时（UTC）：此流程未设定时区。" if lang == "zh"
                    else "Times are in UTC: this lifecycle sets no time zone.")
        if lang == "zh":
            return f"时间均为 {self.name} 时间（{label}）。"
        return f"Times are in {self.name} time ({label})."


def page_zone(lc: Any, parent_lc: Any | None = None) -> PageZone:
    """The zone of a page about ``lc``'s tickets (``parent_lc``: a work order's ticket's)."""
    for candidate in (lc, parent_lc):
        if candidate is None:
            continue
        zone = zone_of(candidate)
        if zone is not None:
            return PageZone(zone, str(getattr(zone, "key", zone)), True)
    return PageZone(UTC, "UTC", False)


def _named(zone: PageZone, now: datetime, lang: str) -> str:
    label = zone_label(now, zone.zone)
    if not zone.known:
        return "UTC（未设定时区的流程）" if lang == "zh" else "UTC (lifecycles without a zone)"
    return f"{zone.name}（{label}）" if lang == "zh" else f"{zone.name} ({label})"


def zones_note(zones: list[PageZone], now: datetime, lang: str) -> str:
    """The line of a page about several lifecycles: which zone its times are in.

    One zone for all of them: that zone's own line (:meth:`PageZone.note`). Several: each
    card's times are in its lifecycle's zone, labelled on the card, and the zones are named.
    """
    distinct: list[PageZone] = []
    for z in zones:
        if all((z.name, z.known) != (d.name, d.known) for d in distinct):
            distinct.append(z)
    if len(distinct) <= 1:
        return (distinct[0] if distinct else PageZone(UTC, "UTC", False)).note(now, lang)
    named = ("、" if lang == "zh" else ", ").join(_named(z, now, lang) for z in distinct)
    if lang == "zh":
        return f"各事件、工单的时间按其所属流程的时区显示，并在卡片上标注：{named}。"
    return (f"Each ticket's and work order's times are in its lifecycle's zone, labelled on "
            f"its card: {named}.")


def report_note(zone: PageZone, now: datetime, lang: str) -> str:
    """The reports page's line: the zone its dates and periods are cut in."""
    label = zone_label(now, zone.zone)
    if not zone.known:
        return ("报表的日期与时段按协调世界时（UTC）划分：此流程未设定时区。" if lang == "zh"
                else "This report's dates and periods are cut in UTC: this lifecycle sets no "
                "time zone.")
    if lang == "zh":
        return f"报表的日期与时段（含起止日期）按 {zone.name} 时间（{label}）划分。"
    return (f"This report's dates and periods (its from and until dates too) are cut in "
            f"{zone.name} time ({label}).")
