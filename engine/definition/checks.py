"""Step 3 of loading a definition: graph and name checks, one small function each.

Each check takes the validated :class:`~engine.definition.schema.LifecycleSpec` and yields
``(path, message)`` for every offence it finds, so that one load reports them all.

Every check is linear (or n log n) in the size of the file: graphs are walked over adjacency
lists built once, and a message lists at most :data:`LISTED` names, so that a lifecycle of
10,000 states is checked in well under a second and a broken one does not produce megabytes
of messages.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from engine.definition.evidence_checks import EVIDENCE_CHECKS
from engine.definition.findings import LISTED, Finding, listed_names
from engine.definition.findings import known_names as _known
from engine.definition.oversight_checks import OVERSIGHT_CHECKS
from engine.definition.permission_checks import PERMISSION_CHECKS
from engine.definition.schema import LifecycleSpec, WorkingSpan

__all__ = ["ALL_CHECKS", "LISTED", "run_checks"]

Check = Callable[[LifecycleSpec], Iterator[Finding]]


def initial_state_exists(spec: LifecycleSpec) -> Iterator[Finding]:
    """The initial state is declared and is not final."""
    if spec.initial not in spec.states:
        yield ("initial",), f"unknown state {spec.initial!r}; {_known('states', spec.states)}"
    elif spec.states[spec.initial].final:
        yield ("initial",), f"the initial state {spec.initial!r} is final; nothing could happen"


def transition_names_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """Every transition's sources, destination and roles are declared."""
    for i, t in enumerate(spec.transitions):
        for j, src in enumerate(t.source):
            if src not in spec.states:
                yield (("transitions", i, "source", j),
                       f"unknown state {src!r}; {_known('states', spec.states)}")
        if t.dest not in spec.states:
            yield (("transitions", i, "dest"),
                   f"unknown state {t.dest!r}; {_known('states', spec.states)}")
        for j, role in enumerate(t.roles):
            if role not in spec.roles:
                yield (("transitions", i, "roles", j),
                       f"unknown role {role!r}; {_known('roles', spec.roles)}")


def report_roles_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """The roles that may report are declared."""
    for j, role in enumerate(spec.report.roles):
        if role not in spec.roles:
            yield ("report", "roles", j), f"unknown role {role!r}; {_known('roles', spec.roles)}"


def no_duplicate_transitions(spec: LifecycleSpec) -> Iterator[Finding]:
    """A (source, trigger, role) triple leads to one destination unless guards tell apart."""
    seen: dict[tuple[str, str, str], int] = {}
    for i, t in enumerate(spec.transitions):
        for src in t.source:
            for role in t.roles:
                key = (src, t.trigger, role)
                if key in seen and not t.guards and not spec.transitions[seen[key]].guards:
                    yield (("transitions", i),
                           f"trigger {t.trigger!r} from {src!r} for role {role!r} is already "
                           f"defined by transitions[{seen[key]}]; merge them or add a guard")
                seen.setdefault(key, i)


def levels_unique(spec: LifecycleSpec) -> Iterator[Finding]:
    """Level names are unique."""
    seen: set[str] = set()
    for i, level in enumerate(spec.levels):
        if level.name in seen:
            yield ("levels", i, "name"), f"level {level.name!r} is listed twice"
        seen.add(level.name)


def states_reachable(spec: LifecycleSpec) -> Iterator[Finding]:
    """Every state can be reached from the initial state."""
    if spec.initial not in spec.states:
        return
    after: dict[str, set[str]] = {}
    for t in spec.transitions:
        for src in t.source:
            after.setdefault(src, set()).add(t.dest)
    reached = {spec.initial}
    frontier = [spec.initial]
    while frontier:
        for dest in after.get(frontier.pop(), ()):
            if dest not in reached:
                reached.add(dest)
                frontier.append(dest)
    for name in spec.states:
        if name not in reached:
            yield ("states", name), f"state {name!r} cannot be reached from {spec.initial!r}"


def no_trap_states(spec: LifecycleSpec) -> Iterator[Finding]:
    """Non-final states have a way out; final states have none."""
    leaving: dict[str, int] = {}
    for i, t in enumerate(spec.transitions):
        for src in t.source:
            leaving.setdefault(src, i)
    for name, state in spec.states.items():
        if state.final and name in leaving:
            yield (("transitions", leaving[name]),
                   f"state {name!r} is final but this transition leaves it; "
                   "remove the transition or make the state non-final")
        if not state.final and name not in leaving:
            yield (("states", name),
                   f"state {name!r} has no way out; add a transition from it or mark it "
                   "final: true")
    if not any(s.final for s in spec.states.values()):
        yield ("states",), "no state is final; mark the end state(s) final: true"


def fields_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Choices, ranges and lengths fit the field's type and each other."""
    for name, f in spec.fields.items():
        path: tuple[str | int, ...] = ("fields", name)
        if f.choices is not None:
            if f.type not in ("string", "integer"):
                yield (*path, "choices"), "choices are only allowed on string and integer fields"
            for j, c in enumerate(f.choices):
                if f.type == "string" and not isinstance(c, str):
                    yield ((*path, "choices", j),
                           f"{c!r} is a number; a string field's choices are text (quote it)")
                elif f.type == "integer" and not isinstance(c, int):
                    yield ((*path, "choices", j),
                           f"{c!r} is text; an integer field's choices are whole numbers")
                elif f.type == "integer" and isinstance(c, int) and not (
                        (f.min is None or c >= f.min) and (f.max is None or c <= f.max)):
                    yield (*path, "choices", j), f"{c} is outside min/max"
        for bound in ("min", "max"):
            value = getattr(f, bound)
            if value is None:
                continue
            if f.type not in ("integer", "number"):
                yield (*path, bound), f"{bound} is only allowed on integer and number fields"
            elif f.type == "integer" and not isinstance(value, int):
                yield (*path, bound), f"{value!r}: an integer field's {bound} is a whole number"
        if f.min is not None and f.max is not None and f.min > f.max:
            yield (*path, "max"), f"max {f.max} is less than min {f.min}"
        if f.max_length is not None and f.type != "string":
            yield (*path, "max_length"), "max_length is only allowed on string fields"


def deadlines_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Deadlines have one start rule and one due rule that resolve, and can be escalated."""
    escalable = {src for t in spec.transitions if t.trigger == spec.escalation_trigger
                 for src in t.source}
    stuck = [n for n, s in spec.states.items() if not s.final and n not in escalable]
    for name, d in spec.deadlines.items():
        path: tuple[str | int, ...] = ("deadlines", name)
        if (d.state is None) == (d.stop_in is None):
            yield path, ("give exactly one of 'state' (runs while the ticket is in that state) "
                         "or 'stop_in' (runs from report until one of these states)")
        if (d.after is None) == (d.at_field is None):
            yield path, ("give exactly one of 'after' (a duration like PT2H) or 'at_field' "
                         "(a datetime field holding the due instant)")
        running: list[str] = []
        if d.state is not None:
            if d.state not in spec.states:
                yield ((*path, "state"),
                       f"unknown state {d.state!r}; {_known('states', spec.states)}")
            elif spec.states[d.state].final:
                yield ((*path, "state"),
                       f"state {d.state!r} is final: a deadline there could never be met")
            else:
                running = [d.state]
        if d.stop_in is not None:
            for j, s in enumerate(d.stop_in):
                if s not in spec.states:
                    yield ((*path, "stop_in", j),
                           f"unknown state {s!r}; {_known('states', spec.states)}")
            stops = set(d.stop_in)
            running = [n for n in stuck if n not in stops]  # only those that cannot escalate
        if d.at_field is not None:
            f = spec.fields.get(d.at_field)
            if f is None:
                yield ((*path, "at_field"),
                       f"unknown field {d.at_field!r}; {_known('fields', spec.fields)}")
            elif f.type != "datetime":
                yield ((*path, "at_field"),
                       f"field {d.at_field!r} is a {f.type}; at_field needs a datetime field")
        if d.on_breach == "escalate":
            missing = [n for n in running if n not in escalable]
            if missing:
                yield ((*path, "on_breach"),
                       "escalate needs an escalation transition "
                       f"({spec.escalation_trigger!r}) out of "
                       f"{listed_names(missing)}; add one or use on_breach: record")


def escalation_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Escalation transitions may be fired by the engine's own role ``system``."""
    for i, t in enumerate(spec.transitions):
        if t.trigger == spec.escalation_trigger and "system" not in t.roles:
            yield (("transitions", i, "roles"),
                   "the escalation transition must allow role 'system' (the engine fires it "
                   "when a deadline escalates)")
    if spec.resolution_deadline is not None and spec.resolution_deadline not in spec.deadlines:
        yield (("resolution_deadline",),
               f"unknown deadline {spec.resolution_deadline!r}; "
               f"{_known('deadlines', spec.deadlines)}")


def _triggers(spec: LifecycleSpec) -> set[str]:
    return {"report"} | {t.trigger for t in spec.transitions}


def calendars_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Calendar zones exist, holiday countries and subdivisions are known, dates are ordered."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    import holidays

    supported = holidays.list_supported_countries()
    for name, cal in spec.calendars.items():
        path: tuple[str | int, ...] = ("calendars", name)
        try:
            ZoneInfo(cal.zone)
        except (ZoneInfoNotFoundError, ValueError):
            yield (*path, "zone"), (f"unknown time zone {cal.zone!r}; use an IANA name such "
                                    "as Asia/Shanghai or America/New_York")
        if cal.holidays is not None:
            country = cal.holidays.country
            if country not in supported:
                yield ((*path, "holidays", "country"),
                       f"the holidays package does not know country {country!r}; use an ISO "
                       "3166-1 alpha-2 code such as CN or US")
            elif cal.holidays.subdivision is not None and \
                    cal.holidays.subdivision not in supported[country]:
                yield ((*path, "holidays", "subdivision"),
                       f"unknown subdivision {cal.holidays.subdivision!r} of {country}; "
                       f"known: {', '.join(supported[country][:40])}")
        if not any(cal.hours.values()):
            yield (*path, "hours"), "a calendar needs working hours on at least one weekday"
        for day, shifts in cal.hours.items():
            ordered = sorted(shifts)
            for a, b in itertools.pairwise(ordered):
                if a.split("-")[1] > b.split("-")[0]:
                    yield ((*path, "hours", day),
                           f"shifts {a} and {b} overlap; list separate shifts")
        if cal.valid_from and cal.valid_until and cal.valid_from > cal.valid_until:
            yield (*path, "valid_until"), "valid_until is before valid_from"
        both = sorted(set(cal.extra_holidays) & set(cal.extra_working_days))
        if both:
            yield ((*path, "extra_working_days"),
                   f"{', '.join(both)} listed both as extra holiday and extra working day")


def _spans(spec: LifecycleSpec) -> Iterator[tuple[tuple[str | int, ...], object]]:
    for name, d in spec.deadlines.items():
        yield ("deadlines", name, "after"), d.after
    for i, level in enumerate(spec.levels):
        yield ("levels", i, "budget"), level.budget
    for name, sla in spec.slas.items():
        yield ("slas", name, "target"), sla.target
    for name, lag in spec.lags.items():
        yield ("lags", name, "min"), lag.min
        yield ("lags", name, "max"), lag.max


def calendar_names_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """Every calendar named by a working duration, transition or periodic rule is declared."""
    known = _known("calendars", spec.calendars) if spec.calendars else "no calendars declared"
    for path, span in _spans(spec):
        if isinstance(span, WorkingSpan) and span.calendar not in spec.calendars:
            yield (*path, "calendar"), f"unknown calendar {span.calendar!r}; {known}"
    for i, t in enumerate(spec.transitions):
        if t.during is not None and t.during not in spec.calendars:
            yield ("transitions", i, "during"), f"unknown calendar {t.during!r}; {known}"
    for name, p in spec.periodic.items():
        if p.calendar not in spec.calendars:
            yield ("periodic", name, "calendar"), f"unknown calendar {p.calendar!r}; {known}"


def _condition_names(
    spec: LifecycleSpec, path: tuple[str | int, ...], cond: object, triggers: set[str]
) -> Iterator[Finding]:
    for j, s in enumerate(getattr(cond, "states", ())):
        if s not in spec.states:
            yield (*path, "states", j), f"unknown state {s!r}; {_known('states', spec.states)}"
    for j, t in enumerate(getattr(cond, "triggers", ())):
        if t not in triggers:
            yield (*path, "triggers", j), f"unknown trigger {t!r}; {_known('triggers', triggers)}"


def slas_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """SLA clocks have one target, conditions that resolve, and sound warnings."""
    triggers = _triggers(spec)
    for name, sla in spec.slas.items():
        path: tuple[str | int, ...] = ("slas", name)
        if (sla.target is None) == (sla.at_field is None):
            yield path, ("give exactly one of 'target' (a duration or working duration) or "
                         "'at_field' (a datetime field holding the due instant)")
        if isinstance(sla.target, WorkingSpan) and sla.target.working_days is not None:
            yield ((*path, "target"),
                   "an SLA clock counts working time: write {working: PT16H, calendar: NAME} "
                   "rather than working_days")
        if sla.at_field is not None:
            f = spec.fields.get(sla.at_field)
            if f is None or f.type != "datetime":
                yield ((*path, "at_field"),
                       f"{sla.at_field!r} is not a datetime field; "
                       f"{_known('fields', spec.fields)}")
        for part in ("start", "stop", "pause", "resume"):
            cond = getattr(sla, part)
            if cond is not None:
                if not cond.states and not cond.triggers:
                    yield (*path, part), "give at least one of 'states' or 'triggers'"
                yield from _condition_names(spec, (*path, part), cond, triggers)
        if sla.pause is not None and sla.resume is None and not sla.pause.states:
            yield ((*path, "resume"),
                   "a clock paused by triggers needs 'resume' (by states or triggers)")
        if sla.pause is not None and sla.at_field is not None:
            yield ((*path, "pause"),
                   "a clock with a fixed due instant (at_field) cannot pause; use 'target'")
        for i, w in enumerate(sla.warn):
            if (w.percent is None) == (w.before is None):
                yield (*path, "warn", i), "give exactly one of 'percent' or 'before'"
            elif w.percent is not None and sla.at_field is not None:
                yield ((*path, "warn", i, "percent"),
                       "a clock with a fixed due instant warns with 'before', not 'percent'")


def lags_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Lags name existing triggers and give a minimum or a maximum."""
    triggers = _triggers(spec)
    for name, lag in spec.lags.items():
        path: tuple[str | int, ...] = ("lags", name)
        for part in ("since", "until"):
            value = getattr(lag, part)
            if value not in triggers:
                yield ((*path, part),
                       f"unknown trigger {value!r}; {_known('triggers', triggers)}")
        if lag.min is None and lag.max is None:
            yield path, "give 'min' (refuse earlier), 'max' (breach later) or both"


def ladder_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Level handlers are roles; the ladder's triggers and states resolve."""
    for i, level in enumerate(spec.levels):
        if level.handler is not None and level.handler not in spec.roles:
            yield (("levels", i, "handler"),
                   f"unknown role {level.handler!r}; {_known('roles', spec.roles)}")
    triggers = _triggers(spec)
    if "acknowledged_by" in spec.ladder.model_fields_set:
        for j, t in enumerate(spec.ladder.acknowledged_by):
            if t not in triggers:
                yield (("ladder", "acknowledged_by", j),
                       f"unknown trigger {t!r}; {_known('triggers', triggers)}")
    for j, s in enumerate(spec.ladder.stop_in):
        if s not in spec.states:
            yield (("ladder", "stop_in", j),
                   f"unknown state {s!r}; {_known('states', spec.states)}")


def periodic_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Periodic rules report as an allowed role, at a known level, with declared fields."""
    levels = [level.name for level in spec.levels]
    for name, p in spec.periodic.items():
        path: tuple[str | int, ...] = ("periodic", name)
        if p.role not in spec.report.roles:
            yield ((*path, "role"),
                   f"role {p.role!r} may not report; report.roles: "
                   f"{', '.join(spec.report.roles)}")
        if p.level is not None and p.level not in levels:
            yield (*path, "level"), f"unknown level {p.level!r}; {_known('levels', levels)}"
        for f in p.fields:
            if f not in spec.fields:
                yield (*path, "fields", f), f"unknown field {f!r}; {_known('fields', spec.fields)}"


def validity_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """A lifecycle's validity period ends after it starts."""
    from datetime import datetime

    if spec.valid_from and spec.valid_until and datetime.fromisoformat(
            spec.valid_from) >= datetime.fromisoformat(spec.valid_until):
        yield ("valid_until",), "valid_until must be after valid_from"


def timer_names_fit(spec: LifecycleSpec) -> Iterator[Finding]:
    """SLA, lag and level names are short enough for their timer names (64 characters)."""
    for kind, names, longest in (("slas", list(spec.slas), 48), ("lags", list(spec.lags), 56)):
        for name in names:
            if len(name) > longest:
                yield (kind, name), f"name {name!r} is too long; use at most {longest} characters"
    for i, level in enumerate(spec.levels):
        if len(level.name) > 56:
            yield ("levels", i, "name"), "a level name has at most 56 characters"


def routing_departments_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """Every department the routing table names is declared under ``departments``."""
    routing = spec.routing
    if routing is None:
        return
    known = _known("departments", spec.departments)
    if routing.fallback not in spec.departments:
        yield ("routing", "fallback"), f"unknown department {routing.fallback!r}; {known}"
    for i, rule in enumerate(routing.rules):
        path: tuple[str | int, ...] = ("routing", "rules", i)
        if rule.lead not in spec.departments:
            yield (*path, "lead"), f"unknown department {rule.lead!r}; {known}"
        for j, dept in enumerate(rule.co):
            if dept not in spec.departments:
                yield (*path, "co", j), f"unknown department {dept!r}; {known}"
            elif dept == rule.lead:
                yield (*path, "co", j), f"{dept!r} is the lead already; list it once"
        if rule.fallback is not None and rule.fallback not in spec.departments:
            yield (*path, "fallback"), f"unknown department {rule.fallback!r}; {known}"


def routing_resolves_tickets(spec: LifecycleSpec) -> Iterator[Finding]:
    """The engine can resolve a routed ticket when its work orders meet the rule.

    It does so as the department whose work met the rule (role ``department``): ``arrive``
    first when the ticket is still ``dispatched``, then ``resolve``
    (engine/workorders/participant.py). A lifecycle with ``routing`` must let that role fire
    them, or its tickets would never be resolved by their work orders.
    """
    if spec.routing is None:
        return
    if "department" not in spec.roles:
        yield ("routing",), ("work orders resolve their ticket as the role 'department' (the "
                             "department whose work met the rule); declare that role under "
                             "roles")
        return

    def fires(trigger: str, source: str | None = None) -> bool:
        return any(t.trigger == trigger and "department" in t.roles
                   and (source is None or source in t.source) for t in spec.transitions)

    if not fires("resolve"):
        yield ("routing",), ("work orders resolve their ticket by firing 'resolve' as the role "
                             "'department'; add a 'resolve' transition that role may fire")
        return
    if "dispatched" not in spec.states:
        return
    arrivals = [t for t in spec.transitions if t.trigger == "arrive"
                and "department" in t.roles and "dispatched" in t.source]
    if not arrivals:
        yield ("routing",), ("a ticket still 'dispatched' when its work orders are done is "
                             "moved on by firing 'arrive' as the role 'department'; add an "
                             "'arrive' transition from 'dispatched' that role may fire")
    for t in arrivals:
        reached = "dispatched" if t.internal else t.dest
        if not fires("resolve", reached):
            yield ("routing",), (f"a ticket 'dispatched' when its work orders are done "
                                 f"arrives in {reached!r} and is then resolved by firing "
                                 "'resolve' as the role 'department'; let that role fire "
                                 f"'resolve' from {reached!r}")


def routing_rules_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """Routing rows name declared categories and levels; quorums fit the departments."""
    routing = spec.routing
    if routing is None:
        return
    levels = [lv.name for lv in spec.levels]
    if routing.resolution == "quorum" and routing.quorum is None:
        yield ("routing", "quorum"), "resolution: quorum needs quorum: <how many work orders>"
    for i, rule in enumerate(routing.rules):
        path: tuple[str | int, ...] = ("routing", "rules", i)
        if spec.categories and rule.category not in spec.categories:
            yield ((*path, "category"),
                   f"unknown category {rule.category!r}; {_known('categories', spec.categories)}")
        if rule.level is not None and rule.level not in levels:
            yield (*path, "level"), f"unknown level {rule.level!r}; {_known('levels', levels)}"
        resolution = rule.resolution or routing.resolution
        quorum = rule.quorum or routing.quorum
        if resolution == "quorum":
            if quorum is None:
                yield (*path, "quorum"), "resolution: quorum needs quorum: <how many>"
            elif quorum > 1 + len(rule.co):
                yield ((*path, "quorum"),
                       f"quorum {quorum} is more than the {1 + len(rule.co)} department(s) "
                       "of this row")


def duplicate_match_fields_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """The fields duplicates are matched on (when given) are declared ticket fields."""
    if spec.routing is None or "duplicates" not in spec.routing.model_fields_set:
        return
    for j, name in enumerate(spec.routing.duplicates.match):
        if name not in spec.fields:
            yield ((("routing", "duplicates", "match", j)),
                   f"unknown field {name!r}; {_known('fields', spec.fields)}")


def names_fit_the_machine(spec: LifecycleSpec) -> Iterator[Finding]:
    """No trigger is named like a method ``transitions`` adds for a state or trigger.

    On a model it moves, ``transitions`` adds ``is_<state>`` for every state and
    ``may_<trigger>`` for every trigger; a trigger of either name would be silently
    shadowed. (``state`` and ``trigger`` themselves are refused by the schema.)
    """
    triggers = {t.trigger for t in spec.transitions}
    claimed = {f"is_{s}": f"state {s!r}" for s in spec.states}
    claimed.update({f"may_{t}": f"trigger {t!r}" for t in triggers})
    reported: set[str] = set()
    for i, t in enumerate(spec.transitions):
        owner = claimed.get(t.trigger)
        if owner is not None and t.trigger not in reported:
            reported.add(t.trigger)
            yield (("transitions", i, "trigger"),
                   f"trigger {t.trigger!r} clashes with the method the state machine adds "
                   f"for {owner}; rename the trigger")


def internal_transitions_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """An internal transition stays in its state: every ``source`` is its ``dest``."""
    for i, t in enumerate(spec.transitions):
        if t.internal and any(src != t.dest for src in t.source):
            others = sorted({src for src in t.source if src != t.dest})
            yield (("transitions", i, "internal"),
                   f"an internal transition stays in its state: source must be {t.dest!r} "
                   f"(its dest), not {', '.join(others)}; drop internal: true or split it")


ALL_CHECKS: tuple[Check, ...] = (
    initial_state_exists,
    transition_names_resolve,
    report_roles_resolve,
    no_duplicate_transitions,
    levels_unique,
    states_reachable,
    no_trap_states,
    fields_sound,
    deadlines_sound,
    escalation_sound,
    calendars_sound,
    calendar_names_resolve,
    slas_sound,
    lags_sound,
    ladder_sound,
    periodic_sound,
    validity_sound,
    timer_names_fit,
    routing_departments_resolve,
    routing_resolves_tickets,
    routing_rules_resolve,
    duplicate_match_fields_resolve,
    names_fit_the_machine,
    internal_transitions_sound,
    *EVIDENCE_CHECKS,  # issue 12: engine/definition/evidence_checks.py
    *OVERSIGHT_CHECKS,  # issue 11: engine/definition/oversight_checks.py
    *PERMISSION_CHECKS,  # issue 11: engine/definition/permission_checks.py
)

MAX_FINDINGS = 1000
"""A broken file is reported up to this many findings, then one line saying there are more."""


def run_checks(spec: LifecycleSpec) -> list[Finding]:
    """Run every check and return all findings (at most :data:`MAX_FINDINGS`, then a note)."""
    out: list[Finding] = []
    for check in ALL_CHECKS:
        for finding in check(spec):
            if len(out) == MAX_FINDINGS:
                out.append(((), f"more than {MAX_FINDINGS:,} problems; fix these and "
                                "validate again to see the rest"))
                return out
            out.append(finding)
    return out
