"""Hypothesis strategies for commands on the bundled lifecycles (and the test lifecycles).

The strategies draw *what* a command says — its lifecycle, fields, actor, reason — right or
wrong on purpose: a missing required field, a value of the wrong type, an unknown field, a
role nobody declared, a reason left out. Which ticket a command targets is chosen when it runs
(by index into the tickets that exist then), so a shrunk sequence still refers to tickets.

Datetime field values are drawn as :class:`Later` (minutes after the command's instant) and
turned into instants with :func:`resolve` when the command runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

LIFECYCLES = ("grid_incident", "work_order", "volunteer_parking", "grid_patrol")
"""The bundled lifecycles (workflows/*.yaml)."""

ROLES = (
    "grid_worker", "centre", "department", "street_office", "district_office",
    "city_platform", "system", "resident", "organiser", "worker", "mayor",
)
"""Every role some lifecycle declares, and one ("mayor") that none does."""

DEPARTMENTS = (
    "water", "sanitation", "roads", "lighting", "traffic_police", "urban_management",
    "street_office", "parks",
)
"""grid_incident's departments, and one ("parks") it does not declare."""

CATEGORIES = ("blocked_drain", "garbage", "road_damage", "noise", "street_light",
              "illegal_parking", "cats_in_trees")
"""grid_incident's routed categories, and one the routing table sends to the fallback."""

TRIGGERS = (
    # grid_incident
    "dispatch", "arrive", "resolve", "close", "reject", "ask_reporter", "answer", "escalate",
    "acknowledge", "reopen", "merge",
    # work_order
    "accept", "bounce", "finish", "reroute", "withdraw",
    # volunteer_parking
    "take", "give_up", "complete", "redo", "rate", "release", "cancel",
    # grid_patrol
    "start", "record_finding", "skip",
    # batch_rules (tests/definitions/batch_rules.yaml)
    "submit", "approve", "send_back", "drop",
    # nobody's
    "fly",
)
"""Every trigger of the lifecycles under test, and one ("fly") that none has."""


@dataclass(frozen=True)
class Later:
    """A datetime field value: ``minutes`` after the instant the command runs at."""

    minutes: int


def resolve(value: Any, now: datetime) -> Any:
    """Replace every :class:`Later` in ``value`` (a field dict, or None) by an aware instant."""
    if isinstance(value, Later):
        return now + timedelta(minutes=value.minutes)
    if isinstance(value, dict):
        return {k: resolve(v, now) for k, v in value.items()}
    return value


later = st.builds(Later, st.sampled_from([-30, 20, 90, 60 * 6, 60 * 30, 60 * 24 * 3]))
reasons = st.sampled_from(["because", "because", "because", None, "", "  "])
"""A reason: given, half the time; else missing, empty or blank."""
roles = st.sampled_from(ROLES)
departments = st.sampled_from(DEPARTMENTS)


def _mistakes(valid: st.SearchStrategy[dict[str, Any]],
              *bad: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly ``valid`` field sets (shrinking goes there), sometimes one of ``bad``."""
    return st.one_of(valid, valid, valid, st.sampled_from(bad))


def report_fields(lifecycle: str) -> st.SearchStrategy[dict[str, Any]]:
    """Fields for a report on ``lifecycle``: usually valid, sometimes wrong on purpose."""
    if lifecycle == "grid_incident":
        return _mistakes(
            st.fixed_dictionaries(
                {"category": st.sampled_from(CATEGORIES)},
                optional={"area": st.sampled_from(["A1", "A2"]), "target_at": later,
                          "channel": st.just("app")}),
            {}, {"category": 7}, {"category": "noise", "colour": "red"},
            {"category": "noise", "target_at": "tomorrow"},
        )
    if lifecycle == "work_order":
        return _mistakes(
            st.fixed_dictionaries({"parent": st.just("nobody"), "department": departments,
                                   "role": st.sampled_from(["lead", "co"])}),
            {"parent": "nobody", "department": "water"},
            {"parent": "nobody", "department": "water", "role": "boss"},
        )
    if lifecycle == "volunteer_parking":
        return _mistakes(
            st.fixed_dictionaries(
                {"task": st.sampled_from(["sweep the yard", "paint the fence"])},
                optional={"parking_until": later, "rating": st.integers(1, 5),
                          "reward": st.just("parking_week")}),
            {}, {"task": "x", "rating": "five"}, {"task": "x", "reward": "a car"},
        )
    if lifecycle == "grid_patrol":
        return _mistakes(
            st.fixed_dictionaries({"area": st.sampled_from(["A1", "A2"]),
                                   "round": st.sampled_from(["morning", "afternoon"])},
                                  optional={"findings": st.integers(0, 3)}),
            {"area": "A1"}, {"area": "A1", "round": "night"},
        )
    if lifecycle == "batch_rules":
        return _mistakes(
            st.fixed_dictionaries({}, optional={"note": st.just("n"), "promised_at": later}),
            {"note": 1}, {"promised_at": "soon"},
        )
    raise ValueError(f"no report fields for lifecycle {lifecycle!r}")


field_updates = st.one_of(
    st.none(), st.none(), st.none(),
    st.sampled_from([{"area": "A2"}, {"note": "more"}, {"findings": 2}, {"rating": 4},
                     {"colour": "red"}, {"target_at": "soon"}, {"findings": "many"}]),
    st.builds(lambda v: {"target_at": v}, later),
    st.builds(lambda v: {"promised_at": v}, later),
    st.builds(lambda v: {"parking_until": v}, later),
)
"""Field updates sent with a transition: usually none; some valid for one lifecycle, some
invalid for all (unknown field, wrong type)."""

minutes_ahead = st.sampled_from([1, 10, 29, 31, 45, 61, 121, 60 * 5, 60 * 16 + 1,
                                 60 * 24 + 1, 60 * 49, 60 * 24 * 3])
"""How far time moves: across 30-minute and 2-hour deadlines, the centre's working hours,
SLA warnings (45 working minutes), day-long work orders and two-day level budgets."""
