"""Graph and name checks of issue 12's sections (requirements, call-back, hand-offs, ...).

Requirements, evidence tags, the call-back, hand-offs beyond the district, grids and patrol
links, void states.

Each check yields ``(path, message)`` like those of :mod:`engine.definition.checks`, which
runs them after its own (see ``ALL_CHECKS`` there).
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.definition.findings import Finding
from engine.definition.findings import known_names as _known
from engine.definition.schema import LifecycleSpec, WorkingSpan

__all__ = ["EVIDENCE_CHECKS"]



def _triggers(spec: LifecycleSpec) -> set[str]:
    return {t.trigger for t in spec.transitions}


def requirements_resolve(spec: LifecycleSpec) -> Iterator[Finding]:
    """Requirements name declared triggers, roles, fields and evidence tags."""
    triggers = _triggers(spec) | {"report"}
    tags = spec.evidence.tags if spec.evidence is not None else {}
    with_evidence = {role for r in spec.requirements if r.trigger == "report" and r.evidence
                     for role in (r.roles or spec.report.roles)}
    for i, r in enumerate(spec.requirements):
        path: tuple[str | int, ...] = ("requirements", i)
        if r.trigger not in triggers:
            yield ((*path, "trigger"),
                   f"unknown trigger {r.trigger!r}; {_known('triggers', triggers)}")
        for j, role in enumerate(r.roles):
            if role not in spec.roles:
                yield (*path, "roles", j), f"unknown role {role!r}; {_known('roles', spec.roles)}"
        for j, role in enumerate(r.reported_by):
            if role not in spec.roles:
                yield ((*path, "reported_by", j),
                       f"unknown role {role!r}; {_known('roles', spec.roles)}")
            elif role not in with_evidence:
                yield ((*path, "reported_by", j),
                       f"role {role!r} reports without evidence: reported_by names roles "
                       "whose reports carry evidence (add a requirement with trigger: report, "
                       f"roles: [{role}] and evidence)")
        for j, name in enumerate(r.fields):
            if name not in spec.fields:
                yield ((*path, "fields", j),
                       f"unknown field {name!r}; {_known('fields', spec.fields)}")
        for j, need in enumerate(r.evidence):
            if need.tag is not None and need.tag not in tags:
                yield ((*path, "evidence", j, "tag"),
                       f"unknown evidence tag {need.tag!r}; declare it under evidence.tags "
                       f"({_known('tags', tags)})")


def void_states_final(spec: LifecycleSpec) -> Iterator[Finding]:
    """A void state is final (a voided ticket is done with)."""
    for name, state in spec.states.items():
        if state.void and not state.final:
            yield ("states", name, "void"), "a void state must also be final: true"


def _transition_from(spec: LifecycleSpec, trigger: str, state: str) -> bool:
    return any(t.trigger == trigger and state in t.source for t in spec.transitions)


def callback_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """The call-back's state, deadline, triggers and fields resolve and fit together."""
    cb = spec.callback
    if cb is None:
        return
    path: tuple[str | int, ...] = ("callback",)
    if cb.state not in spec.states:
        yield (*path, "state"), f"unknown state {cb.state!r}; {_known('states', spec.states)}"
        return
    deadline = spec.deadlines.get(cb.deadline)
    if deadline is None:
        yield ((*path, "deadline"),
               f"unknown deadline {cb.deadline!r}; {_known('deadlines', spec.deadlines)}")
    elif deadline.state != cb.state:
        yield ((*path, "deadline"),
               f"deadline {cb.deadline!r} must be a deadline of state {cb.state!r} "
               f"(state: {cb.state})")
    elif deadline.on_breach != "record":
        yield ((*path, "deadline"),
               f"deadline {cb.deadline!r} must have on_breach: record (its breach fires "
               f"{cb.expire!r})")
    for key in ("expire", "confirm", "not_fixed"):
        trigger = getattr(cb, key)
        if not _transition_from(spec, trigger, cb.state):
            yield ((*path, key),
                   f"no transition {trigger!r} leaves state {cb.state!r}; add one")
    if not any(t.trigger == cb.expire and "system" in t.roles for t in spec.transitions):
        yield (*path, "expire"), f"transition {cb.expire!r} must allow role 'system'"
    rating = spec.fields.get(cb.rating)
    if rating is None:
        yield (*path, "rating"), f"unknown field {cb.rating!r}; {_known('fields', spec.fields)}"
    elif rating.type != "integer" or sorted(rating.choices or []) != [1, 2, 3, 4, 5]:
        yield ((*path, "rating"),
               f"field {cb.rating!r} must be an integer with choices [1, 2, 3, 4, 5]")
    if cb.comment is not None:
        comment = spec.fields.get(cb.comment)
        if comment is None or comment.type != "string":
            yield ((*path, "comment"),
                   f"field {cb.comment!r} must be a declared string field")


def handoff_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Hand-offs name a string field, declared triggers and states, and organisations."""
    h = spec.handoff
    if h is None:
        if spec.organisations:
            yield ("organisations",), ("organisations need a handoff section saying which "
                                       "triggers hand tickets to them")
        return
    path: tuple[str | int, ...] = ("handoff",)
    if not spec.organisations:
        yield path, "a handoff needs at least one organisation under organisations"
    field = spec.fields.get(h.field)
    if field is None or field.type != "string":
        yield (*path, "field"), f"field {h.field!r} must be a declared string field"
    triggers = _triggers(spec)
    for key in ("hand_off", "answer", "give_back"):
        for j, trigger in enumerate(getattr(h, key)):
            if trigger not in triggers:
                yield ((*path, key, j),
                       f"unknown trigger {trigger!r}; {_known('triggers', triggers)}")
    for j, state in enumerate(h.holding):
        if state not in spec.states:
            yield ((*path, "holding", j),
                   f"unknown state {state!r}; {_known('states', spec.states)}")
    for name, org in spec.organisations.items():
        if isinstance(org.deadline, WorkingSpan) and org.deadline.calendar not in spec.calendars:
            yield (("organisations", name, "deadline", "calendar"),
                   f"unknown calendar {org.deadline.calendar!r}; "
                   f"{_known('calendars', spec.calendars)}")


def grids_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Grids name declared calendars; per-grid periodic rules have grids and their fields."""
    for name, grid in spec.grids.items():
        if grid.calendar is not None and grid.calendar not in spec.calendars:
            yield (("grids", name, "calendar"),
                   f"unknown calendar {grid.calendar!r}; {_known('calendars', spec.calendars)}")
    for name, rule in spec.periodic.items():
        if not rule.per_grid:
            continue
        if not spec.grids:
            yield ("periodic", name, "per_grid"), "per_grid needs grids declared under grids"
        for needed in ("area", "grid_worker"):
            if spec.fields.get(needed) is None:
                yield (("periodic", name, "per_grid"),
                       f"per_grid sets fields area and grid_worker; declare field {needed!r}")


def patrol_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """A patrol link names a declared string field."""
    link = spec.patrol
    if link is not None:
        field = spec.fields.get(link.field)
        if field is None or field.type != "string":
            yield (("patrol", "field"),
                   f"field {link.field!r} must be a declared string field (the patrol's id)")


EVIDENCE_CHECKS = (
    requirements_resolve,
    void_states_final,
    callback_sound,
    handoff_sound,
    grids_sound,
    patrol_sound,
)
