"""Why a timer is due when it is: "4 working hours from Saturday 20:00 → Monday 14:00".

For each pending timer of a ticket, :func:`explain_timers` finds the rule behind it in the
lifecycle (a deadline, an SLA clock or one of its warnings, a level budget, a lag), the
instant it counts from (in the ticket's history), and recomputes the due instant with the
rule's :class:`~engine.BusinessCalendar` through its public methods (``add``,
``add_working_days``, ``intervals``, ``is_working_day``, ``is_public_holiday``). The steps
list the working intervals counted, day by day. When the recomputed instant differs from the
stored one (the rule changed, a field moved it), the stored one is shown and marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from adapters.http.console.i18n import duration, instant, title
from adapters.http.console.zones import zone_label
from engine import BusinessCalendar, GridwhistleError, HistoryEntry, SlaClock, Ticket, Timer

__all__ = ["Explained", "explain_timers", "timer_title"]

_ZERO = timedelta(0)
_MAX_STEP_DAYS = 31


@dataclass(frozen=True)
class Explained:
    """One pending timer, explained.

    Attributes:
        timer: the stored timer.
        kind: ``deadline``, ``sla``, ``sla_warning``, ``ladder`` or ``lag``.
        title: the rule's display title.
        due_local: the due instant in the rule's calendar zone (or the lifecycle's), with
            the zone's label (``UTC+8``; ``UTC`` when no zone is known).
        reasoning: one sentence: the span, its calendar, start → due.
        steps: the working intervals counted (``Mon 6 May 08:30–12:00 (3.5 h)``), and days
            skipped with why.
        matches: the recomputed due instant equals the stored one.
    """

    timer: Timer
    kind: str
    title: str
    due_local: str
    reasoning: str
    steps: list[str] = field(default_factory=list)
    matches: bool = True


def _zone(lc: Any, fallback: tzinfo | None = None) -> tzinfo:
    for cal in lc.calendars.values():
        zone: tzinfo = cal.zone
        return zone
    return fallback or UTC


def _due(at: datetime, zone: tzinfo, lang: str) -> str:
    """A due instant in ``zone``, labelled with the zone (``… 09:30 UTC+8``)."""
    return f"{instant(at, zone, lang)} {zone_label(at, zone)}"


def timer_title(lc: Any, name: str, lang: str) -> tuple[str, str]:
    """``(kind, title)`` of a timer name (``resolution``, ``sla:x``, ``sla:x:warn:0``, ...)."""
    spec = lc.spec
    parts = name.split(":")
    if parts[0] == "sla" and len(parts) >= 2:
        sla = spec.slas.get(parts[1])
        base = title(sla.title if sla else None, lang, parts[1])
        if len(parts) == 4:
            return "sla_warning", base + ("预警" if lang == "zh" else " (warning)")
        return "sla", base
    if parts[0] == "ladder" and len(parts) == 2:
        lv = next((x for x in spec.levels if x.name == parts[1]), None)
        base = title(lv.title if lv else None, lang, parts[1])
        return "ladder", base + ("处置时限" if lang == "zh" else " budget")
    if parts[0] == "lag" and len(parts) == 2:
        lag = spec.lags.get(parts[1])
        return "lag", title(lag.title if lag else None, lang, parts[1])
    d = spec.deadlines.get(name)
    return "deadline", title(d.title if d else None, lang, name)


def _span_text(lc: Any, span: Any, lang: str) -> tuple[str, BusinessCalendar | None]:
    if isinstance(span, timedelta):
        word = "（自然时间）" if lang == "zh" else " (elapsed)"
        return duration(span, lang) + word, None
    cal = lc.calendars[span.calendar]
    cal_title = title(lc.spec.calendars[span.calendar].title, lang, span.calendar)
    if span.working is not None:
        amount = duration(span.working, lang, working=True)
    else:
        amount = (f"{span.working_days}个工作日" if lang == "zh"
                  else f"{span.working_days} working day{'s' if span.working_days != 1 else ''}")
    sep = "，按" if lang == "zh" else " of "
    return f"{amount}{sep}{cal_title}", cal


def _apply(cal: BusinessCalendar | None, span: Any, start: datetime) -> datetime:
    if cal is None:
        return start + span  # type: ignore[no-any-return]
    if span.working is not None:
        return cal.add(start, span.working)
    return cal.add_working_days(start, span.working_days or 0)


def _steps(cal: BusinessCalendar, start: datetime, due: datetime, lang: str) -> list[str]:
    """The working intervals between ``start`` and ``due``, and the days without any."""
    out: list[str] = []
    zone = cal.zone
    day: date = start.astimezone(zone).date()
    last = due.astimezone(zone).date()
    count = 0
    while day <= last and count < _MAX_STEP_DAYS:
        count += 1
        try:
            spans = [(max(a, start), min(b, due)) for a, b in cal.intervals(day)
                     if b > start and a < due]
        except GridwhistleError:
            break
        label = instant(datetime.combine(day, datetime.min.time(), zone), zone, lang)[:-5]
        label = label.strip()
        if spans:
            parts = [f"{a.astimezone(zone):%H:%M}–{b.astimezone(zone):%H:%M} "
                     f"({(b - a).total_seconds() / 3600:g} h)" for a, b in spans]
            out.append(f"{label} " + " + ".join(parts))
        elif not cal.intervals(day):
            why = ("法定节假日" if lang == "zh" else "public holiday") \
                if cal.is_public_holiday(day) else ("非工作日" if lang == "zh" else "no hours")
            out.append(f"{label}: {why}")
        day += timedelta(days=1)
    return out


def _entered_state(history: list[HistoryEntry], state: str) -> datetime | None:
    for h in reversed(history):
        if h.to_state == state and (h.from_state != state or h.kind == "report"):
            return h.at
    return None


def _reached_level(history: list[HistoryEntry], level: str) -> datetime | None:
    for h in reversed(history):
        if h.to_level == level and (h.from_level != level or h.kind == "report"):
            return h.at
    return None


def _last_trigger(history: list[HistoryEntry], trigger: str) -> datetime | None:
    for h in reversed(history):
        if h.trigger == trigger and h.kind in ("transition", "report"):
            return h.at
    return None


def _sentence(span_text: str, start: datetime | None, due: datetime, zone: tzinfo,
              lang: str, *, what: str = "") -> str:
    end = instant(due, zone, lang)
    if start is None:
        return f"{what}{span_text} → {end}"
    begin = instant(start, zone, lang)
    if lang == "zh":
        return f"{what}从{begin}起{span_text} → {end}"
    return f"{what}{span_text} from {begin} → {end}"


def explain_timers(
    lc: Any, ticket: Ticket, history: list[HistoryEntry], timers: list[Timer],
    clocks: list[SlaClock], lang: str, zone: tzinfo | None = None,
) -> list[Explained]:
    """Explain each pending timer of ``ticket`` (see the module docstring).

    Args:
        lc: the ticket's compiled lifecycle (``Engine.lifecycle``).
        ticket: from ``Engine.get``.
        history: from ``Engine.history``.
        timers: from ``Engine.timers`` (only ``pending`` ones are explained).
        clocks: from ``Engine.sla_clocks``.
        lang: ``zh`` or ``en``.
        zone: where to show instants of rules without a calendar (default: the lifecycle's
            first calendar's zone, else UTC); e.g. a work order shown beside its ticket.
    """
    out = []
    for t in sorted((t for t in timers if t.status == "pending"), key=lambda t: t.due_at):
        try:
            out.append(_explain(lc, ticket, history, t, clocks, lang, _zone(lc, zone)))
        except (GridwhistleError, KeyError, ValueError):  # a rule gone or out of range
            kind, name = timer_title(lc, t.name, lang)
            out.append(Explained(t, kind, name, _due(t.due_at, _zone(lc, zone), lang), "",
                                 [], False))
    return out


def _explain(lc: Any, ticket: Ticket, history: list[HistoryEntry], t: Timer,
             clocks: list[SlaClock], lang: str, zone: tzinfo) -> Explained:
    spec = lc.spec
    kind, name = timer_title(lc, t.name, lang)
    parts = t.name.split(":")
    span: Any = None
    start: datetime | None = None
    prefix = ""
    if kind == "deadline":
        d = spec.deadlines[t.name]
        if d.at_field is not None:
            fld = spec.fields.get(d.at_field)
            label = title(fld.title if fld else None, lang, d.at_field)
            text = (f"由字段“{label}”给出 → {instant(t.due_at, zone, lang)}" if lang == "zh"
                    else f"set by the field “{label}” → {instant(t.due_at, zone, lang)}")
            return Explained(t, kind, name, _due(t.due_at, zone, lang), text)
        span = d.after
        start = _entered_state(history, d.state) if d.state else (
            history[0].at if history else ticket.created_at)
    elif kind == "ladder":
        lv = next(x for x in spec.levels if x.name == parts[1])
        span = lv.budget
        start = _reached_level(history, parts[1])
    elif kind == "lag":
        lag = spec.lags[parts[1]]
        span = lag.max
        start = _last_trigger(history, lag.since)
    else:
        return _explain_sla(lc, t, kind, name, parts, history, clocks, lang, zone)
    span_text, cal = _span_text(lc, span, lang)
    if cal is not None:
        zone = cal.zone
    computed = _apply(cal, span, start) if start is not None else None
    steps = _steps(cal, start, t.due_at, lang) if cal is not None and start is not None else []
    return Explained(t, kind, name, _due(t.due_at, zone, lang),
                     _sentence(span_text, start, t.due_at, zone, lang, what=prefix), steps,
                     computed == t.due_at)


def _explain_sla(lc: Any, t: Timer, kind: str, name: str, parts: list[str],
                 history: list[HistoryEntry], clocks: list[SlaClock], lang: str,
                 zone: tzinfo) -> Explained:
    sla = lc.spec.slas[parts[1]]
    clock = next(c for c in clocks if c.name == parts[1])
    target = sla.target
    if target is None:  # at_field
        fld = lc.spec.fields.get(sla.at_field or "")
        label = title(fld.title if fld else None, lang, sla.at_field or "")
        text = (f"由字段“{label}”给出" if lang == "zh" else f"set by the field “{label}”")
        return Explained(t, kind, name, _due(t.due_at, zone, lang),
                         f"{text} → {instant(t.due_at, zone, lang)}")
    cal = None if isinstance(target, timedelta) else lc.calendars[target.calendar]
    if cal is not None:
        zone = cal.zone
    full = target if isinstance(target, timedelta) else target.working
    amount = full
    if kind == "sla_warning":
        w = sla.warn[int(parts[3])]
        amount = full * (w.percent / 100) if w.percent is not None else full - w.before
    left = max(amount - clock.elapsed, _ZERO)
    # the clock last (re)started at a history row: the one the stored due instant fits
    start = None
    for h in reversed(history):
        if h.at < clock.started_at:
            break
        at = cal.add(h.at, left) if cal is not None else h.at + left
        if at == t.due_at:
            start = h.at
            break
    words = (duration(left, lang, working=True) if cal is not None else duration(left, lang))
    if cal is not None:
        cal_title = title(lc.spec.calendars[target.calendar].title, lang, target.calendar)
        words += f"，按{cal_title}" if lang == "zh" else f" of {cal_title}"
    if clock.elapsed > _ZERO:
        used = duration(clock.elapsed, lang, working=cal is not None)
        words += (f"（已用{used}）" if lang == "zh" else f" ({used} already used)")
    if kind == "sla_warning":
        w = sla.warn[int(parts[3])]
        if w.percent is not None:
            words = (f"目标的{w.percent}%：" if lang == "zh"
                     else f"{w.percent}% of the target: ") + words
    steps = _steps(cal, start, t.due_at, lang) if cal is not None and start is not None else []
    return Explained(t, kind, name, _due(t.due_at, zone, lang),
                     _sentence(words, start, t.due_at, zone, lang), steps, start is not None)
