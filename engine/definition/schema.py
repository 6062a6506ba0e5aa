"""Step 2 of loading a definition: the strict schema of a lifecycle file.

Pydantic models with unknown keys forbidden and no type coercion (``strict``), frozen once
built. They describe the *format*; cross-references between names (a transition's ``dest``
must be a declared state, ...) are checked afterwards by :mod:`engine.definition.checks`.

The YAML reference in ``docs/yaml-reference.md`` documents every field here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from engine.durations import parse_duration

__all__ = [
    "BounceSpec",
    "CalendarSpec",
    "CallbackSpec",
    "CategorySpec",
    "ConditionSpec",
    "DeadlineSpec",
    "DepartmentSpec",
    "DuplicateSpec",
    "EvidenceNeedSpec",
    "EvidenceSpec",
    "EvidenceTagSpec",
    "ExtensionSpec",
    "FieldPermissionSpec",
    "FieldSpec",
    "GridSpec",
    "HandoffSpec",
    "LadderSpec",
    "LagSpec",
    "LevelSpec",
    "LifecycleSpec",
    "OrganisationSpec",
    "OversightSpec",
    "PatrolLinkSpec",
    "PeriodicSpec",
    "ReportSpec",
    "RequirementSpec",
    "RoleSpec",
    "RouteSpec",
    "RoutingSpec",
    "SlaSpec",
    "StateSpec",
    "SupervisionSpec",
    "SuspensionCauseSpec",
    "SuspensionSpec",
    "TransitionSpec",
    "WarningSpec",
    "WorkingSpan",
]

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
RESERVED_TRIGGERS = frozenset({"report"})
MACHINE_NAMES = frozenset({"state", "trigger"})
"""Trigger names the ``transitions`` library claims on the object it moves: ``state`` (the
attribute holding the state; ``Machine.add_transition`` raises ValueError for it) and
``trigger`` (the method it adds to every model)."""


def _check_name(value: object) -> object:
    if isinstance(value, str) and not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case ASCII letters, digits and _ "
            "starting with a letter, at most 64 characters (e.g. on_site); put display text "
            "in title"
        )
    return value


_NAME_SCHEMA = {"type": "string", "pattern": NAME_PATTERN,
                "description": "lower-case ASCII letters, digits and _, starting with a letter"}
Name = Annotated[str, BeforeValidator(_check_name), WithJsonSchema(_NAME_SCHEMA)]


def _format_version(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("format is the number 1 (the version of this file format)")
    return value


def _title(value: object) -> object:
    if isinstance(value, str):
        return {"en": value}
    return value


Title = Annotated[dict[str, str], BeforeValidator(_title), WithJsonSchema({
    "anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}],
    "description": "display text by language code ({zh: ..., en: ...}); a string is English"})]
"""Display titles by language code, e.g. ``{zh: 已派遣, en: Dispatched}``; a plain string is
taken as English."""


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


NameList = Annotated[list[Name], BeforeValidator(_one_or_many), WithJsonSchema({
    "anyOf": [_NAME_SCHEMA, {"type": "array", "items": _NAME_SCHEMA}],
    "description": "one name, or a list of names"})]


def _duration(value: object) -> object:
    if isinstance(value, str):
        parsed = parse_duration(value)
        if not parsed:
            raise ValueError(f"{value!r} is zero: a deadline needs a positive duration")
        return parsed
    if isinstance(value, timedelta):  # already parsed (a Span's before-validator did it)
        return value
    raise ValueError(f"expected an ISO 8601 duration such as PT30M or P2D, got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(_duration), WithJsonSchema({
    "type": "string", "pattern": r"^[Pp](\d+(\.\d+)?[WwDd])*([Tt](\d+(\.\d+)?[HhMmSs])+)?$",
    "description": "ISO 8601 duration of fixed units (W, D, H, M, S), e.g. PT30M, P1DT12H"})]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WorkingSpan(_Spec):
    """Working time of a business calendar (``calendar``).

    Exactly one of ``working`` (an ISO 8601 duration counted only inside the calendar's
    working hours, e.g. ``PT4H``) or ``working_days`` (a whole number of working days: the same
    local time of day, that many working days later).
    """

    working: Duration | None = None
    working_days: int | None = Field(default=None, ge=1)
    calendar: Name


_WORDS = re.compile(r"working|business|workday|工作", re.IGNORECASE)


def _span(value: object) -> object:
    if isinstance(value, str):
        if _WORDS.search(value):
            raise ValueError(
                f"{value!r} is ambiguous (whose working hours?); write "
                "{working: PT4H, calendar: NAME} or {working_days: 2, calendar: NAME}")
        return parse_duration(value)
    if isinstance(value, dict):
        from pydantic import ValidationError

        try:
            span = WorkingSpan.model_validate(value)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'value'}: "
                f"{str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors())
            raise ValueError(f"bad working duration: {detail}") from None
        if (span.working is None) == (span.working_days is None):
            raise ValueError("a working duration gives exactly one of 'working' (e.g. PT4H) "
                             "or 'working_days' (e.g. 2), and a 'calendar'")
        return span
    raise ValueError(
        f"expected an ISO 8601 duration such as PT30M or P2D, or a working duration such as "
        f"{{working: PT4H, calendar: office}}, got {value!r}")


Span = Annotated[Duration | WorkingSpan, BeforeValidator(_span)]
"""Elapsed time (``PT2H``) or working time of a calendar (``{working: PT4H, calendar: x}``)."""

_SHIFT_RE = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


def _shift_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected a shift like \"08:30-12:00\" (quoted), got {value!r}")
    m = _SHIFT_RE.match(value.replace(" ", ""))
    if not m:
        raise ValueError(f"{value!r} is not a shift; write \"HH:MM-HH:MM\" e.g. \"08:30-12:00\"")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{value!r}: hours are 00-23 and minutes 00-59")
    if (h1, m1) >= (h2, m2):
        raise ValueError(f"{value!r}: a shift must end after it starts, on the same day")
    return value.replace(" ", "")


ShiftText = Annotated[str, BeforeValidator(_shift_text)]


def _date_text(value: object) -> object:
    from datetime import date

    if isinstance(value, str):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD") from None
        if len(value) != 10:
            raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD")
        return value
    raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")


DateText = Annotated[str, BeforeValidator(_date_text)]


def _instant_text(value: object) -> object:
    from datetime import datetime

    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an instant; write e.g. "
                             "2025-01-01T00:00:00+08:00") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset; add one, e.g. +08:00")
        return value
    raise ValueError(f"expected an instant such as 2025-01-01T00:00:00+08:00, got {value!r}")


InstantText = Annotated[str, BeforeValidator(_instant_text)]

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class HolidaysSpec(_Spec):
    """Public holidays from the ``holidays`` package.

    ``country`` is ISO 3166-1 alpha-2 (``CN``, ``US``); ``subdivision`` is optional (``MA``).
    """

    country: str
    subdivision: str | None = None


class CalendarSpec(_Spec):
    """A business calendar: zone, weekday shifts, holidays, extra days and validity."""

    title: Title = Field(default_factory=dict)
    description: str = ""
    zone: str
    hours: dict[Weekday, list[ShiftText]]
    make_up_day_hours: list[ShiftText] | None = None
    holidays: HolidaysSpec | None = None
    extra_holidays: list[DateText] = Field(default_factory=list)
    extra_working_days: list[DateText] = Field(default_factory=list)
    valid_from: DateText | None = None
    valid_until: DateText | None = None


class ConditionSpec(_Spec):
    """When an SLA clock starts, pauses, resumes or stops.

    A change matches when it enters one of ``states`` or fires one of ``triggers`` (``report``
    is the creation).
    """

    states: NameList = Field(default_factory=list)
    triggers: NameList = Field(default_factory=list)


class WarningSpec(_Spec):
    """A warning before an SLA breach.

    Exactly one of ``percent`` of the target used (1-99) or ``before`` the breach (a duration,
    counted like the target).
    """

    percent: int | None = Field(default=None, ge=1, le=99)
    before: Duration | None = None


class SlaSpec(_Spec):
    """An SLA clock, started, paused, resumed and stopped by states or triggers.

    It is breached when its running (working) time exceeds ``target``, or at the instant in
    the datetime field ``at_field``.
    """

    title: Title = Field(default_factory=dict)
    start: ConditionSpec = Field(default_factory=lambda: ConditionSpec(triggers=["report"]))
    stop: ConditionSpec
    pause: ConditionSpec | None = None
    resume: ConditionSpec | None = None
    target: Span | None = None
    at_field: Name | None = None
    warn: list[WarningSpec] = Field(default_factory=list)
    on_breach: Literal["escalate", "record"] = "record"


class LagSpec(_Spec):
    """A time lag between two transitions (by trigger).

    ``until`` may fire no earlier than ``min`` (else a refusal) and should fire within ``max``
    (else a breach) after the latest ``since``.
    """

    title: Title = Field(default_factory=dict)
    since: Name
    until: Name
    min: Span | None = None
    max: Span | None = None
    on_breach: Literal["escalate", "record"] = "record"


class LadderSpec(_Spec):
    """How the whistle ladder runs.

    A level's budget stops when one of the ``acknowledged_by`` triggers fires (someone owns
    the ticket) or the ticket enters one of ``stop_in`` (or a final state).
    """

    acknowledged_by: NameList = Field(default_factory=lambda: ["acknowledge"])
    stop_in: NameList = Field(default_factory=list)


class PeriodicSpec(_Spec):
    """Recurring ticket creation on a cron rule.

    ``cron`` has five fields (crontab syntax) read in the calendar's zone;
    ``working_days_only`` skips occurrences on the calendar's non-working days; ``catch_up``
    says which occurrences missed while no engine ran are created: ``latest`` (default) the
    most recent, ``all`` each, ``none`` none (see :mod:`engine.periodic.occurrences`).
    ``per_grid``: one ticket per grid of the lifecycle's ``grids`` per occurrence, with the
    grid in field ``area`` and its worker in ``grid_worker`` (a grid's own calendar decides
    its working days).
    """

    title: Title = Field(default_factory=dict)
    cron: str
    calendar: Name
    working_days_only: bool = False
    catch_up: Literal["latest", "all", "none"] = "latest"
    fields: dict[Name, str | int | float | bool] = Field(default_factory=dict)
    actor: str = "gridwhistle-periodic"
    role: Name = "system"
    level: Name | None = None
    per_grid: bool = False  # issue 12: one ticket per grid of `grids` per occurrence

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if len(value.split()) != 5:
            raise ValueError(f"{value!r}: a cron rule has five fields (minute hour day month "
                             "day-of-week), e.g. \"0 8,16 * * *\"")
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid cron rule: {exc}") from None
        return value


class RoleSpec(_Spec):
    """A role that may fire transitions (grid worker, centre, department, system)."""

    title: Title = Field(default_factory=dict)
    description: str = ""


class LevelSpec(_Spec):
    """One rung of the whistle ladder; levels are listed lowest first.

    ``handler``: the role that owns a ticket at this level; ``budget``: how long the level
    has before the ticket climbs again; ``handler_only``: while a ticket is at this level,
    only the handler, the centre roles and ``system`` may act on it (issue 11).
    """

    name: Name
    title: Title = Field(default_factory=dict)
    handler: Name | None = None
    budget: Span | None = None
    # issue 11: while a ticket is at this level, only its handler (and the centre roles and
    # system) may fire triggers on it; other roles are refused (NotTheHandler)
    handler_only: bool = False


class FieldSpec(_Spec):
    """A ticket field: its type, whether a report must carry it, its allowed values.

    ``choices`` (text for ``string`` fields, whole numbers for ``integer`` ones) lists the
    allowed values; ``min`` and ``max`` bound ``integer`` and ``number`` fields (inclusive);
    ``max_length`` bounds a ``string`` field in characters (default: the engine's
    ``Limits.text_length``, 10,000). Which combinations are allowed is checked by
    :func:`engine.definition.checks.fields_sound`.
    """

    type: Literal["string", "integer", "number", "boolean", "datetime"] = "string"
    required: bool = False
    choices: list[str | int] | None = None
    min: int | float | None = None
    max: int | float | None = None
    max_length: int | None = Field(default=None, ge=1)
    title: Title = Field(default_factory=dict)
    description: str = ""


class FieldPermissionSpec(_Spec):
    """Who may set a ticket field, and with which triggers (issue 11).

    ``roles``: the roles that may set it (``system`` always may). Default: the centre roles
    (``centre_roles``) for a field that drives a deadline (an ``at_field`` of a deadline or
    SLA) or routes the ticket (``department``); any role that may fire the trigger for the
    others. ``triggers``: the triggers it may be set with (``report`` is the creation);
    default: any. Setting a field means giving it a value other than the one it holds (or
    clearing it with ``null``).
    """

    roles: NameList | None = None
    triggers: NameList | None = None
    description: str = ""


class StateSpec(_Spec):
    """A state of the lifecycle. A final state has no way out.

    ``void``: a final state of tickets voided (作废, with a reason): reports count them apart
    (the closure rate is closed ÷ (all − voided)).
    """

    title: Title = Field(default_factory=dict)
    description: str = ""
    final: bool = False
    void: bool = False  # issue 12: a voided ticket (作废), counted apart in reports


class TransitionSpec(_Spec):
    """A transition: ``trigger`` moves a ticket from any of ``source`` to ``dest``.

    ``roles`` may fire it; every guard named in ``guards`` must say yes (guards and actions
    are registered by the host app by name); ``reason_required`` makes the command carry a
    reason. ``internal``: a self-transition that neither leaves nor re-enters its state (a
    note, a comment): the state's deadlines and timers run on, not restarted; it needs
    ``source`` = ``dest``.
    """

    trigger: Name
    source: NameList
    dest: Name
    roles: NameList
    title: Title = Field(default_factory=dict)
    guards: NameList = Field(default_factory=list)
    actions: NameList = Field(default_factory=list)
    reason_required: bool = False
    during: Name | None = None
    internal: bool = False

    @field_validator("trigger")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_TRIGGERS:
            raise ValueError(
                f"{value!r} is reserved for creating tickets; configure it under 'report'"
            )
        if value in MACHINE_NAMES:
            raise ValueError(
                f"{value!r} is reserved: the state machine (the transitions library) uses it "
                f"on every ticket; name the trigger otherwise, e.g. set_{value} or "
                f"change_{value}")
        return value


class DeadlineSpec(_Spec):
    """A deadline: a timer that, when it falls due, records a breach and runs ``on_breach``.

    Exactly one of:

    * ``state``: a state deadline. It starts when the ticket enters the state and is cancelled
      when the ticket leaves it; re-entering restarts it.
    * ``stop_in``: a ticket deadline. It starts when the ticket is reported and stops when the
      ticket first enters one of these states, whatever states it passes through.

    And exactly one of ``after`` (a duration from the start) or ``at_field`` (a datetime ticket
    field holding the due instant, e.g. a city's own target date; no timer when it is empty).
    """

    title: Title = Field(default_factory=dict)
    state: Name | None = None
    stop_in: NameList | None = None
    after: Span | None = None
    at_field: Name | None = None
    on_breach: Literal["escalate", "record"] = "record"


class CategorySpec(_Spec):
    """A category of problem a ticket can be about; Open311 offers each as a service.

    The category's name is the Open311 ``service_code`` and the value of the ticket field
    ``category`` of tickets reported through Open311.
    """

    title: Title = Field(default_factory=dict)
    description: str = ""
    group: str = ""


class DepartmentSpec(_Spec):
    """A department (职能部门) that can receive work orders: water authority, roads, ..."""

    title: Title = Field(default_factory=dict)
    description: str = ""


ResolutionRule = Literal["all", "lead", "quorum"]


class RouteSpec(_Spec):
    """One row of the routing table: which departments handle a category (at a level).

    ``category`` is a category name (the ticket field ``category``); ``level`` limits the row
    to tickets at that whistle level (default: any level). The first matching row wins, in
    file order. ``lead`` gets the lead work order, each of ``co`` a co-handling one.
    ``fallback``, ``resolution`` and ``quorum`` override the routing table's defaults.
    """

    category: Name
    level: Name | None = None
    lead: Name
    co: NameList = Field(default_factory=list)
    fallback: Name | None = None
    resolution: ResolutionRule | None = None
    quorum: int | None = Field(default=None, ge=1)


class BounceSpec(_Spec):
    """Limits on bounce-backs ("not ours").

    ``limit``: after this many bounces on one ticket the fallback department becomes the
    owner and further bounces are refused (default 2). ``within``: a department may bounce a
    work order only within this time after receiving it (default PT2H).
    """

    limit: int = Field(default=2, ge=1)
    within: Duration = Field(default_factory=lambda: parse_duration("PT2H"))


class DuplicateSpec(_Spec):
    """When a second report counts as a duplicate of a first.

    Same values of the ``match`` fields (default category and area), reported within
    ``window`` (default P1D) of the first.
    """

    match: NameList = Field(default_factory=lambda: ["category", "area"])
    window: Duration = Field(default_factory=lambda: parse_duration("P1D"))


class RoutingSpec(_Spec):
    """The routing table the centre edits: category (and level) → departments.

    ``work_orders`` is the lifecycle each department's work order runs (default
    ``work_order``); ``fallback`` the department that owns what nobody else does;
    ``resolution`` when the ticket counts as resolved: ``all`` work orders done, the
    ``lead``'s alone, or a ``quorum`` of them (``quorum`` = how many).
    """

    work_orders: Name = "work_order"
    fallback: Name
    resolution: ResolutionRule = "all"
    quorum: int | None = Field(default=None, ge=1)
    bounce: BounceSpec = Field(default_factory=BounceSpec)
    duplicates: DuplicateSpec = Field(default_factory=DuplicateSpec)
    rules: list[RouteSpec] = Field(default_factory=list)


# -- evidence, requirements per trigger, the resident's verdict, hand-offs beyond the district,
# -- grids and the patrol (issue 12) ---------------------------------------------------------

EVIDENCE_KINDS = ("photo", "video", "audio", "document")
"""What an attachment is, from its media type: ``image/*`` a photo, ``video/*`` a video,
``audio/*`` audio, anything else a document."""

DEFAULT_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "video/mp4",
                       "audio/mpeg", "audio/mp4", "application/pdf")


class EvidenceTagSpec(_Spec):
    """A tag an attachment may carry (``before``, ``after``): what the picture shows."""

    title: Title = Field(default_factory=dict)
    description: str = ""


class EvidenceSpec(_Spec):
    """What attachments a lifecycle's tickets accept.

    ``max_bytes``: the largest file (default 20 MiB); ``media_types``: the media types
    accepted (each checked against the file's content); ``tags``: the tags attachments may
    carry (an attachment without a tag is allowed).
    """

    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    media_types: list[str] = Field(default_factory=lambda: list(DEFAULT_MEDIA_TYPES),
                                   min_length=1)
    tags: dict[Name, EvidenceTagSpec] = Field(default_factory=dict)

    @field_validator("media_types")
    @classmethod
    def _media_types(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", item):
                raise ValueError(f"{item!r} is not a media type; write e.g. image/jpeg")
        return value


class EvidenceNeedSpec(_Spec):
    """Evidence a command must carry: at least ``min`` attachments of ``kind`` (and ``tag``).

    Only uploaded files count (their content was checked); references to files held
    elsewhere (a replayed export's photo flags, an external URL) do not.
    """

    kind: Literal["photo", "video", "audio", "document", "any"] = "photo"
    tag: Name | None = None
    min: int = Field(default=1, ge=1)


class RequirementSpec(_Spec):
    """What a trigger needs: fields that must hold a value after it, evidence it must carry.

    ``trigger``: a transition's trigger, or ``report``. ``roles``: the roles it binds
    (default: every role). ``reported_by``: only tickets reported *with evidence* by one of
    these roles (each must have a ``report`` requirement with evidence; default: every
    ticket). ``fields``: fields that must have a value once the command applied (given with
    it, or set before). ``evidence``: what the command must carry.
    """

    trigger: Name
    title: Title = Field(default_factory=dict)
    roles: NameList = Field(default_factory=list)
    reported_by: NameList = Field(default_factory=list)
    fields: NameList = Field(default_factory=list)
    evidence: list[EvidenceNeedSpec] = Field(default_factory=list)


class CallbackSpec(_Spec):
    """The resident's verdict (回访) after resolution.

    ``state``: the call-back step; ``deadline``: a deadline of that state (its own time
    limit); when it is breached the system fires ``expire`` with the reason recorded.
    ``confirm`` (fixed) and ``not_fixed`` (back to work) are the resident's answers, by the
    per-ticket link or recorded by the centre; ``rating`` is the 1–5 satisfaction field and
    ``comment`` the comment field they set.
    """

    state: Name
    deadline: Name
    expire: Name
    confirm: Name
    not_fixed: Name
    rating: Name
    comment: Name | None = None


class OrganisationSpec(_Spec):
    """An organisation outside the district (a metro company, a utility) tickets go to.

    ``deadline``: how long it has to answer or return a ticket handed to it (elapsed or
    working time).
    """

    title: Title = Field(default_factory=dict)
    description: str = ""
    deadline: Span


class HandoffSpec(_Spec):
    """Hand-off beyond the district (转办 / 退回).

    ``field``: the ticket field naming the organisation that holds the ticket; ``hand_off``:
    the triggers that hand it over (the field must then name a declared organisation);
    ``holding``: the states in which that organisation holds it (its API key sees it only
    then); ``answer`` and ``give_back``: the organisation's triggers (its answer; its return
    with a reason).
    """

    field: Name = "outside_org"
    hand_off: NameList
    holding: NameList
    answer: NameList = Field(default_factory=list)
    give_back: NameList = Field(default_factory=list)


class GridSpec(_Spec):
    """A grid (网格): its grid worker and the calendar that says which days are worked."""

    title: Title = Field(default_factory=dict)
    worker: str = Field(min_length=1, max_length=128)
    calendar: Name | None = None


class PatrolLinkSpec(_Spec):
    """Reports found on a patrol: linked to their patrol round.

    A report whose ``field`` names a ticket of ``lifecycle`` (a patrol round on patrol) is
    linked to it, and ``trigger`` is fired on the round as the reporter, counting the
    finding in its integer field ``count``.
    """

    field: Name = "patrol"
    lifecycle: Name = "grid_patrol"
    trigger: Name = "record_finding"
    count: Name = "findings"
    states: NameList = Field(default_factory=lambda: ["on_patrol"])


class ExtensionSpec(_Spec):
    """Extension requests (延期申请): a department asks for more time on a deadline.

    ``deadlines``: the deadlines that may be extended; ``request_roles`` ask (with a reason
    and a proposed due instant), ``decide_roles`` approve or refuse (with a reason). At most
    one open request per ticket and deadline; ``max_extensions`` approved per ticket and
    deadline; an extension moves the due instant by at most ``max_length``.
    """

    title: Title = Field(default_factory=dict)
    deadlines: NameList = Field(min_length=1)
    request_roles: NameList = Field(default_factory=lambda: ["department"])
    decide_roles: NameList = Field(default_factory=lambda: ["centre"])
    max_extensions: int = Field(2, ge=1)
    max_length: Duration | None = None


class SuspensionCauseSpec(_Spec):
    """A documented cause of suspension (等待居民配合, 恶劣天气, 等待第三方, ...)."""

    title: Title = Field(default_factory=dict)
    description: str = ""


class SuspensionSpec(_Spec):
    """Suspension (挂起): the clocks stop for a documented cause, within limits.

    ``roles`` suspend (the centre, at a department's request) and ``resume_roles`` resume;
    the system resumes a suspension when ``max_duration`` (or the ``until`` asked for) is
    reached. ``max_count`` suspensions per ticket. While suspended the ticket's deadlines,
    its ladder budget and its SLA clocks (``clocks``; empty: all) do not run, and only a
    transition into a final state may move it.
    """

    title: Title = Field(default_factory=dict)
    roles: NameList = Field(default_factory=lambda: ["centre"])
    resume_roles: NameList = Field(default_factory=lambda: ["centre"])
    causes: dict[Name, SuspensionCauseSpec] = Field(min_length=1)
    max_duration: Duration
    max_count: int = Field(2, ge=1)
    clocks: NameList = Field(default_factory=list)


class SupervisionSpec(_Spec):
    """Supervision notices (督办): the centre presses a department about a ticket.

    ``roles`` send them; ``reply_within``: the default time the department has to reply
    (a notice may name its own due instant, or none).
    """

    title: Title = Field(default_factory=dict)
    roles: NameList = Field(default_factory=lambda: ["centre"])
    reply_within: Duration | None = None


class OversightSpec(_Spec):
    """The legitimate ways to need more time, and the centre's pressure (issue 11).

    Each section is optional: a lifecycle offers only what it declares.
    """

    title: Title = Field(default_factory=dict)
    extension: ExtensionSpec | None = None
    suspension: SuspensionSpec | None = None
    supervision: SupervisionSpec | None = None


class ReportSpec(_Spec):
    """Who may report (create) a ticket."""

    roles: NameList


class LifecycleSpec(_Spec):
    """A whole lifecycle file."""

    format: Annotated[Literal[1], BeforeValidator(_format_version)]
    name: Name
    title: Title = Field(default_factory=dict)
    description: str = ""
    initial: Name
    roles: dict[Name, RoleSpec]
    levels: list[LevelSpec] = Field(min_length=1)
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)
    report: ReportSpec
    states: dict[Name, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(min_length=1)
    deadlines: dict[Name, DeadlineSpec] = Field(default_factory=dict)
    escalation_trigger: Name = "escalate"
    resolution_deadline: Name | None = None
    categories: dict[Name, CategorySpec] = Field(default_factory=dict)
    calendars: dict[Name, CalendarSpec] = Field(default_factory=dict)
    slas: dict[Name, SlaSpec] = Field(default_factory=dict)
    lags: dict[Name, LagSpec] = Field(default_factory=dict)
    ladder: LadderSpec = Field(default_factory=LadderSpec)
    periodic: dict[Name, PeriodicSpec] = Field(default_factory=dict)
    valid_from: InstantText | None = None
    valid_until: InstantText | None = None
    departments: dict[Name, DepartmentSpec] = Field(default_factory=dict)
    routing: RoutingSpec | None = None
    # issue 12: evidence, requirements, the resident's verdict, hand-offs, grids, patrols
    evidence: EvidenceSpec | None = None
    requirements: list[RequirementSpec] = Field(default_factory=list)
    callback: CallbackSpec | None = None
    organisations: dict[Name, OrganisationSpec] = Field(default_factory=dict)
    handoff: HandoffSpec | None = None
    grids: dict[Name, GridSpec] = Field(default_factory=dict)
    patrol: PatrolLinkSpec | None = None
    # issue 11: extension requests, suspension, supervision notices
    oversight: OversightSpec | None = None
    # issue 11: who may change what (engine/lifecycle/permissions.py)
    # the roles that act for the command centre (default [centre] when the lifecycle declares
    # a role centre, else none); system always has their rights
    centre_roles: NameList | None = None
    field_permissions: dict[Name, FieldPermissionSpec] = Field(default_factory=dict)
