"""Field declarations (issue 11): ranges and choices of numbers, text lengths, finite numbers."""

from __future__ import annotations

import math

import pytest

from engine import Actor, DefinitionError, Engine, InvalidFields, parse_definition

RULES = """\
format: 1
name: rules
initial: open
roles: {centre: {}}
levels: [{name: community}]
report: {roles: [centre]}
fields:
  rating: {type: integer, min: 1, max: 5}
  priority: {type: integer, choices: [1, 2, 3]}
  lat: {type: number, min: -90, max: 90}
  weight: {type: number}
  note: {type: string, max_length: 20}
  description: {type: string}
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
"""

PLAIN = """\
format: 1
name: plain
initial: open
roles: {centre: {}}
levels: [{name: community}]
report: {roles: [centre]}
fields:
  weight: {type: number}
  description: {type: string}
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
"""

CENTRE = Actor("ops-1", "centre")


@pytest.fixture
def eng(engine: Engine) -> Engine:
    engine.deploy(parse_definition(RULES))
    return engine


@pytest.fixture
def plain(engine: Engine) -> Engine:
    engine.deploy(parse_definition(PLAIN))
    return engine


def refused(eng: Engine, fields: dict[str, object], lifecycle: str = "rules") -> dict[str, str]:
    with pytest.raises(InvalidFields) as info:
        eng.report(lifecycle, fields, actor=CENTRE)
    return info.value.errors


def test_integer_ranges_and_choices(eng: Engine) -> None:
    assert eng.report("rules", {"rating": 5, "priority": 3}, actor=CENTRE).fields == {
        "rating": 5, "priority": 3}
    assert refused(eng, {"rating": 7}) == {"rating": "7 is more than the maximum 5"}
    assert refused(eng, {"rating": 0}) == {"rating": "0 is less than the minimum 1"}
    assert refused(eng, {"priority": 4}) == {"priority": "4 is not one of 1, 2, 3"}
    assert refused(eng, {"rating": 10**30})["rating"].startswith(
        "1000000000000000000000000000000 is too large; whole numbers are at most "
        "9,007,199,254,740,991")


def test_number_ranges(eng: Engine) -> None:
    assert eng.report("rules", {"lat": -33.5}, actor=CENTRE).fields == {"lat": -33.5}
    assert refused(eng, {"lat": 90.5}) == {"lat": "90.5 is more than the maximum 90"}


def test_numbers_must_be_finite(plain: Engine) -> None:
    eng = plain  # main stored NaN (as null on PostgreSQL; Open311 then failed with a 500)
    for bad in (math.nan, math.inf, -math.inf):
        message = refused(eng, {"weight": bad}, "plain")["weight"]
        assert message.endswith("is not a finite number; NaN and infinities are refused "
                                "(JSON cannot carry them)"), message
    assert refused(eng, {"weight": 10**400}, "plain")["weight"].endswith(
        "(401 characters) is too large for a number")


def test_declared_text_length(eng: Engine) -> None:
    assert refused(eng, {"note": "x" * 21}) == {
        "note": "text of 21 characters is longer than the 20 this field allows"}


def test_default_text_length(plain: Engine) -> None:
    ten_mb = "x" * 10_000_000  # accepted (and written three times) on main
    assert refused(plain, {"description": ten_mb}, "plain") == {
        "description": "text of 10,000,000 characters is longer than the 10,000 this field "
                       "allows"}
    assert plain.report("plain", {"description": "x" * 10_000}, actor=CENTRE).fields[
        "description"] == "x" * 10_000


def test_fire_applies_the_same_rules(eng: Engine) -> None:
    t = eng.report("rules", {}, actor=CENTRE)
    with pytest.raises(InvalidFields) as info:
        eng.fire(t.id, "finish", actor=CENTRE, fields={"rating": 6, "weight": math.nan})
    assert set(info.value.errors) == {"rating", "weight"}
    assert eng.get(t.id).state == "open"


def test_the_bundled_rating_is_one_to_five(engine: Engine) -> None:
    from engine import load_definition

    spec = load_definition("volunteer_parking").spec.fields["rating"]
    assert (spec.min, spec.max) == (1, 5)


@pytest.mark.parametrize(("declaration", "path", "message"), [
    ("{type: boolean, choices: [a]}", "fields.f.choices",
     "choices are only allowed on string and integer fields"),
    ("{type: integer, choices: [\"1\"]}", "fields.f.choices[0]",
     "'1' is text; an integer field's choices are whole numbers"),
    ("{type: string, choices: [1]}", "fields.f.choices[0]",
     "1 is a number; a string field's choices are text (quote it)"),
    ("{type: string, min: 1}", "fields.f.min", "min is only allowed on integer and number fields"),
    ("{type: integer, max: 2.5}", "fields.f.max",
     "2.5: an integer field's max is a whole number"),
    ("{type: number, min: 3, max: 1}", "fields.f.max", "max 1 is less than min 3"),
    ("{type: integer, max_length: 3}", "fields.f.max_length",
     "max_length is only allowed on string fields"),
    ("{type: integer, min: 1, choices: [0, 1]}", "fields.f.choices[0]", "0 is outside min/max"),
])
def test_declarations_that_do_not_fit_are_refused(declaration: str, path: str,
                                                    message: str) -> None:
    text = RULES.replace("  rating: {type: integer, min: 1, max: 5}\n",
                         f"  f: {declaration}\n")
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="r.yaml")
    assert [(p.line, p.path, p.message) for p in info.value.problems] == [(8, path, message)]
