"""One validation at the engine's edge (issue 11): the ticket-id rule, command sizes, text."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Actor, ConfigurationError, Engine, InvalidFields
from engine.validation import (
    TICKET_ID_PATTERN,
    Limits,
    check_command,
    check_fire,
    check_idempotency_key,
    check_report,
    check_ticket_id,
    ticket_id_problem,
)

GW = Actor("gw-017", "centre")

GOOD_IDS = ["T1", "101001242696", "14-00195506/14-00214133", "14-00011080/lead",
            "grid_patrol-2024-11-03T01:30-05:00", "T-1.2", "a", "x" * 64, "A_b~c+d:e",
            "9f86d081884c7d659a2feaa0c55ad015"]

BAD_IDS = {
    "": "must not be empty; omit it to have an id generated",
    " ": "' ' is not a ticket id",
    "   ": "'   ' is not a ticket id",
    "a\x00b": "U+0000 is not allowed",
    "a\r\nb": "U+000D, U+000A are not allowed",
    "ticket 1": "U+0020 is not allowed",
    "🚧": "'🚧' is not allowed",
    "工单-1": "'工', '单' are not allowed",
    "a\u200bb": "U+200B is not allowed",          # zero-width space
    "\u202eabc": "U+202E is not allowed",         # right-to-left override
    "a/../b": "(no empty, . or .. segment)",
    "a/./b": "(no empty, . or .. segment)",
    "..": "is not a ticket id",
    "/a": "is not a ticket id",
    "a/": "is not a ticket id",
    "a//b": "is not a ticket id",
    "-a": "is not a ticket id",
    "x" * 65: "must be 1 to 64 characters, got 65",
}


@pytest.mark.parametrize("tid", GOOD_IDS)
def test_valid_ids(tid: str) -> None:
    assert ticket_id_problem(tid) is None
    assert check_ticket_id(tid) == tid


@pytest.mark.parametrize(("tid", "message"), list(BAD_IDS.items()))
def test_refused_ids_name_ticket_id(tid: str, message: str) -> None:
    with pytest.raises(InvalidFields) as info:
        check_ticket_id(tid)
    assert set(info.value.errors) == {"ticket_id"}
    assert message in info.value.errors["ticket_id"], info.value.errors
    assert info.value.ticket_id == "(invalid id)"  # never echoes a raw id into messages


@pytest.mark.parametrize("value", [None, 42, b"T1", object(), ["T1"]])
def test_an_id_must_be_text(value: object) -> None:
    with pytest.raises(InvalidFields) as info:
        check_ticket_id(value)
    assert info.value.errors["ticket_id"].startswith("must be text, got ")


@settings(max_examples=300, derandomize=True, database=None)
@given(st.from_regex(TICKET_ID_PATTERN, fullmatch=True))
def test_every_accepted_id_is_a_url_path_as_it_is(tid: str) -> None:
    if ticket_id_problem(tid) is None:
        assert quote(tid, safe="/:~+") == tid  # nothing to percent-encode: it round-trips


def test_limits_are_configurable_and_checked() -> None:
    assert Limits() == Limits(text_length=10_000, reason_length=2_000, fields=200,
                              idempotency_key_length=128, body_bytes=1_000_000)
    with pytest.raises(ConfigurationError, match=r"Limits\.fields must be a whole number"):
        Limits(fields=0)
    with pytest.raises(ConfigurationError, match="at most 128"):
        Limits(idempotency_key_length=129)


def test_a_command_gets_every_problem_at_once() -> None:
    limits = Limits(reason_length=10, fields=2)
    with pytest.raises(InvalidFields) as info:
        check_fire(limits, ticket_id="T\n1", trigger="Dispatch!", actor=Actor("", "Centre"),
                   fields={"a": 1, "b": 2, "c": 3}, reason="r" * 11, idempotency_key="k 1")
    assert sorted(info.value.errors) == ["actor", "fields", "idempotency_key", "reason",
                                         "role", "ticket_id", "trigger"]
    assert info.value.errors["reason"] == (
        "the reason of 11 characters is longer than the 10 allowed")
    assert info.value.errors["fields"] == "3 fields, more than the 2 one command may set"


def test_text_must_be_storable() -> None:
    with pytest.raises(InvalidFields) as info:
        check_report(Limits(), actor=GW, fields={"description": "a\x00b", "area": "\ud800"},
                     reason="x\x00")
    assert info.value.errors == {
        "description": "the text contains a NUL character (U+0000); remove it",
        "area": "the text is not valid Unicode text (a lone surrogate); send UTF-8 text",
        "reason": "the reason contains a NUL character (U+0000); remove it"}
    check_command(Limits(), fields={"description": "tab\tnew\nline \x1b ok"})  # allowed


@pytest.mark.parametrize(("key", "message"), [
    ("", "must be 1 to 128 characters, got 0"),
    ("k" * 129, "must be 1 to 128 characters, got 129"),
    ("k" * 200, "must be 1 to 128 characters, got 200"),
    ("two words", "must be visible ASCII characters"),
    ("ключ", "must be visible ASCII characters"),
    (7, "must be text, got int"),
])
def test_idempotency_keys(key: object, message: str) -> None:
    with pytest.raises(InvalidFields) as info:
        check_idempotency_key(key)
    assert info.value.errors["idempotency_key"].startswith(message)
    assert check_idempotency_key("k" * 128) == "k" * 128


# -- the engine calls them at its edge ---------------------------------------------------------

@pytest.mark.parametrize("tid", ["", "a\x00b", " ", "a/../b"])
def test_engine_report_refuses_bad_ids(tmp_path: Path, tid: str) -> None:
    eng = Engine(tmp_path / "v.sqlite")
    try:
        try:
            eng.report("grid_incident", {"category": "x"}, actor=GW, ticket_id=tid)
        except InvalidFields as exc:
            assert set(exc.errors) == {"ticket_id"}
        else:
            raise AssertionError(f"{tid!r} was accepted (an empty id got a generated one)")
    finally:
        eng.stop()


def test_engine_report_refuses_an_object_as_id(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "v.sqlite")
    try:
        try:
            eng.report("grid_incident", {"category": "x"}, actor=GW,
                       ticket_id=object())  # type: ignore[arg-type]
        except InvalidFields as exc:
            assert set(exc.errors) == {"ticket_id"}
        except Exception as exc:  # main: a raw ProgrammingError
            raise AssertionError(f"{type(exc).__name__}: {exc}") from None
        else:
            raise AssertionError("accepted")
    finally:
        eng.stop()


def test_a_command_without_an_actor_or_a_report_without_fields_is_invalid_fields(
        tmp_path) -> None:
    """None for the actor (or a bare string), or None for a report's fields, is the engine's
    InvalidFields saying what to pass; main raised AttributeError deep inside."""
    from helpers import START

    from engine import Actor, Engine, InvalidFields, VirtualClock

    eng = Engine(tmp_path / "v.sqlite", clock=VirtualClock(START))
    try:
        centre = Actor("ops-1", "centre")
        eng.report("grid_incident", {"category": "noise"}, actor=centre, ticket_id="T-1")
        with pytest.raises(InvalidFields) as info:
            eng.report("grid_incident", None, actor=centre)  # type: ignore[arg-type]
        assert "({} for none)" in info.value.errors["fields"]
        for bad in (None, "ops-1"):
            with pytest.raises(InvalidFields) as info:
                eng.fire("T-1", "dispatch", actor=bad)  # type: ignore[arg-type]
            assert "Actor(id, role)" in info.value.errors["actor"]
            with pytest.raises(InvalidFields):
                eng.report("grid_incident", {"category": "noise"}, actor=bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidFields):
                eng.escalate("T-1", actor=bad, reason="x")  # type: ignore[arg-type]
        assert [h.kind for h in eng.history("T-1")] == ["report"]
    finally:
        eng.stop()
