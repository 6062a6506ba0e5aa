"""Every error Gridwhistle raises is rooted in ``engine.errors.GridwhistleError``.

The project rule: errors are typed, rooted in one base exception, and say what to do. The
walk imports every module of ``engine`` and ``adapters`` and checks every exception class
they define; the few that are deliberately not Gridwhistle errors are listed in
:data:`NOT_ROOTED`, each with the reason. The adapters' errors are rendered by their own
handlers, so the HTTP tests at the end check that each still answers as before now that it
is a Gridwhistle error too (Starlette picks the handler of the most derived class).
"""

from __future__ import annotations

import errno
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from helpers import START
from servers import served_client

import adapters
import engine
from adapters.http import ApiKey, create_app, load_api_keys
from adapters.http.auth import add_api_key
from adapters.http.forms import FormError
from adapters.http.middleware import BodyTooLarge
from adapters.http.open311 import Open311Error, Open311Privacy
from adapters.http.problems import Problem
from engine import (
    Actor,
    BusinessCalendar,
    ConfigurationError,
    Engine,
    EvidenceInvalid,
    FileNotReadable,
    InvalidArgument,
    InvalidArgumentType,
    InvalidFields,
    Limits,
    VirtualClock,
    VirtualClockRequired,
    build_report,
    find_tickets,
    load_definition,
    parse_definition,
)
from engine.errors import GridwhistleError
from engine.testing import temporary_engine

NOT_ROOTED = {
    # Internal signals: raised and caught inside Gridwhistle, never shown to a caller as an
    # error. Making them Gridwhistle errors would let a broad `except GridwhistleError`
    # swallow them on their way to the one place that handles them.
    #
    # console: "no key and no session"; its handler redirects the browser to the sign-in
    # form (a 303, or a 401 "sign in first" for a non-GET), it is never an error body.
    "adapters.http.console.routes._SignIn",
    # replay: a row cannot be replayed; read_rows catches it and turns its message into the
    # row's Rejection (the report's reasons), it never leaves adapters/replay/source.py.
    "adapters.replay.columns.RowError",
    # YAML reading: nesting too deep; _bound catches it and returns a Problem for the
    # DefinitionError (file, line); it never leaves engine/definition/yaml_source.py.
    "engine.definition.yaml_source._TooDeep",
}


def _modules() -> Iterator[object]:
    for package in (engine, adapters):
        yield package
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":  # would run the command
                continue
            yield importlib.import_module(info.name)


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined (not merely imported) in engine/ and adapters/."""
    found: dict[str, type[BaseException]] = {}
    for module in _modules():
        name = getattr(module, "__name__", "")
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == name):
                found[f"{name}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_is_a_gridwhistle_error() -> None:
    classes = exception_classes()
    # the walk sees the adapters' errors (a walk that finds nothing proves nothing)
    for cls in (Problem, Open311Error, FormError, BodyTooLarge, GridwhistleError):
        assert f"{cls.__module__}.{cls.__qualname__}" in classes
    stray = sorted(name for name, cls in classes.items()
                   if not issubclass(cls, GridwhistleError) and name not in NOT_ROOTED)
    assert stray == [], ("not rooted in engine.errors.GridwhistleError; subclass it (or, "
                         "for an internal signal that never reaches a caller, list it in "
                         f"NOT_ROOTED with the reason): {stray}")


def test_the_allow_list_is_not_stale() -> None:
    classes = exception_classes()
    for name in NOT_ROOTED:
        assert name in classes, f"{name} is gone: take it off NOT_ROOTED"
        assert not issubclass(classes[name], GridwhistleError), (
            f"{name} is a GridwhistleError now: take it off NOT_ROOTED")


def test_the_adapters_errors_keep_their_data_and_messages() -> None:
    problem = Problem(403, "wrong-department", "this ticket is another department's",
                      headers={"ETag": '"3"'}, department="water")
    assert isinstance(problem, GridwhistleError)
    assert (problem.status, problem.slug, problem.title, problem.headers, problem.extra,
            str(problem)) == (403, "wrong-department", "Wrong department", {"ETag": '"3"'},
                              {"department": "water"}, "this ticket is another department's")
    o311 = Open311Error(404, "no service 'x'", "xml")
    assert isinstance(o311, GridwhistleError)
    assert (o311.status, o311.description, o311.fmt, str(o311)) == (
        404, "no service 'x'", "xml", "no service 'x'")
    form = FormError(415, "charset 'klingon' is not one this server knows")
    assert isinstance(form, GridwhistleError)
    assert (form.status, form.detail, str(form)) == (
        415, "charset 'klingon' is not one this server knows",
        "charset 'klingon' is not one this server knows")
    large = BodyTooLarge(20_000)
    assert isinstance(large, GridwhistleError)
    assert (large.status_code, large.limit) == (413, 20_000)
    assert "larger than 20,000 bytes" in large.detail


# -- each is still answered by its own handler -----------------------------------------------

KEYS = {"k-hotline": ApiKey(actor="hotline-1", role="centre")}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    eng = Engine(tmp_path / "tree.sqlite", clock=VirtualClock(START))
    with served_client(create_app(eng, api_keys=KEYS, limits=Limits(body_bytes=20_000)),
                       eng) as served:
        yield served


def test_a_problem_is_still_its_own_problem_json(client) -> None:
    http, _ = client
    r = http.get("/tickets")  # no key: auth raises Problem(401, "unauthorized", ...)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "ApiKey"
    body = r.json()
    # its own slug and title, not the generic handler's class name ("problem", "Problem")
    assert (body["type"], body["title"]) == ("urn:gridwhistle:problem:unauthorized",
                                             "Unauthorized")
    assert body["detail"] == "send a valid API key in the X-API-Key header"


def test_open311_and_form_errors_are_still_georeport_error_lists(client) -> None:
    http, eng = client
    r = http.get("/open311/v2/services/nope.json")
    assert r.status_code == 404
    assert r.json() == [{"code": 404, "description": "no service 'nope'"}]
    r = http.get("/open311/v2/services/nope.xml")
    assert r.status_code == 404 and "<errors><error><code>404</code>" in r.text
    # a FormError inside an Open311 POST: converted to the GeoReport v2 list, 415 kept
    r = http.post("/open311/v2/requests.json",
                  content=b"api_key=k-hotline&service_code=noise&address_string=x",
                  headers={"Content-Type": f"{FORM}; charset=klingon"})
    assert r.status_code == 415
    assert r.json()[0]["code"] == 415 and "klingon" in r.json()[0]["description"]
    r = http.post("/open311/v2/requests.json",
                  content=b"api_key=k-hotline&service_code=noise&address_string=\xff",
                  headers={"Content-Type": FORM})
    assert (r.status_code, r.json()[0]["code"]) == (400, 400)
    assert find_tickets(eng, limit=1).total == 0


def test_a_body_too_large_is_still_the_413_of_the_http_error_handler(client) -> None:
    http, eng = client

    def chunks() -> Iterator[bytes]:  # no Content-Length: BodyTooLarge while it is read
        yield b'{"fields": {"category": "noise", "description": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}}'

    r = http.post("/tickets", content=chunks(),
                  headers={"X-API-Key": "k-hotline", "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:gridwhistle:problem:http-413"
    assert find_tickets(eng, limit=1).total == 0


# -- bad input to the public API: typed errors, and the builtin raised before -----------------
#
# Each case below raised a bare builtin before (ValueError, TypeError, AttributeError,
# OSError) or failed deeper down. Each is now a GridwhistleError that says what to do, and
# still the builtin it was where a caller may have caught that.

CENTRE = Actor("ops-1", "centre")


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[Engine]:
    engine_ = Engine(tmp_path / "bad-input.sqlite", clock=VirtualClock(START))
    try:
        yield engine_
    finally:
        engine_.stop()


def test_run_until_with_a_naive_instant_is_an_invalid_argument(eng: Engine) -> None:
    with pytest.raises(InvalidArgument, match="has no time zone; give an aware datetime") as info:
        eng.run_until(datetime(2024, 5, 2, 8))
    assert isinstance(info.value, ValueError)  # as before
    assert info.value.argument == "run_until's instant"
    assert "tzinfo=UTC" in str(info.value)  # what to write instead


def test_run_until_before_now_is_refused_before_any_timer_fires(eng: Engine) -> None:
    ticket = eng.report("grid_incident", {"category": "noise"}, actor=CENTRE)
    clock = eng.clock
    assert isinstance(clock, VirtualClock)
    later = START + timedelta(days=2)
    clock.set(later)  # its deadlines are overdue now, and not fired yet
    with pytest.raises(InvalidArgument, match="is before the clock's now") as info:
        eng.run_until(START + timedelta(days=1))
    assert isinstance(info.value, ValueError)
    assert "give an instant at or after now" in str(info.value)
    # before: the overdue timers fired (and escalated the ticket), then a bare ValueError
    assert [t.status for t in eng.timers(ticket.id)].count("fired") == 0
    assert eng.get(ticket.id).level == "community"
    assert clock.now() == later


def test_run_until_on_the_system_clock_says_to_use_a_virtual_clock(tmp_path: Path) -> None:
    real = Engine(tmp_path / "real.sqlite")
    try:
        with pytest.raises(VirtualClockRequired) as info:
            real.run_until(datetime(2030, 1, 1, tzinfo=UTC))
    finally:
        real.stop()
    assert isinstance(info.value, TypeError)  # as before
    assert isinstance(info.value, ConfigurationError)
    assert (info.value.call, info.value.clock) == ("run_until", "SystemClock")
    assert "clock=VirtualClock(start)" in str(info.value) and "start()" in str(info.value)


def test_a_missing_or_unreadable_keys_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.yaml"
    with pytest.raises(FileNotReadable) as info:
        load_api_keys(missing)
    err = info.value
    assert isinstance(err, ConfigurationError)
    assert isinstance(err, OSError) and err.errno == errno.ENOENT  # as before
    assert err.filename == str(missing) and err.what == "keys file"
    assert str(err) == (f"no keys file at {missing}; make one with `gridwhistle keys add "
                        f"{missing} --actor ID --role ROLE`")
    with pytest.raises(FileNotReadable, match="is a directory, not a keys file") as info:
        load_api_keys(tmp_path)
    assert info.value.errno == errno.EISDIR


def test_create_app_without_an_engine_says_what_to_pass() -> None:
    with pytest.raises(InvalidArgumentType) as info:
        create_app(None, api_keys=KEYS)  # type: ignore[arg-type]
    # before: AttributeError: 'NoneType' object has no attribute 'lifecycle'
    assert isinstance(info.value, TypeError)
    assert (info.value.argument, info.value.given) == ("engine", "NoneType")
    assert "build one with Engine(database, ...)" in str(info.value)


@pytest.mark.parametrize(("kwargs", "cls", "builtin", "words"), [
    ({"lifecycles": []}, InvalidArgument, ValueError, "give at least one lifecycle"),
    # before: served each letter, 'no lifecycle named 'g''
    ({"lifecycles": "grid_incident"}, InvalidArgumentType, TypeError,
     "lifecycles=['grid_incident']"),
    ({"api_keys": ["k-hotline"]}, InvalidArgumentType, TypeError, "a mapping of key to ApiKey"),
    ({"api_keys": {"k": {"actor": "a", "role": "centre"}}}, InvalidArgumentType, TypeError,
     "must be an ApiKey"),
    ({"limits": 20_000}, InvalidArgumentType, TypeError, "Limits(body_bytes="),
    ({"open311_privacy": "key"}, InvalidArgumentType, TypeError, "Open311Privacy(reads="),
], ids=["no lifecycle", "one string", "a list of keys", "a dict for an ApiKey", "a number for "
        "limits", "a string for the privacy"])
def test_create_app_refuses_arguments_it_cannot_use(eng: Engine, kwargs: dict[str, object],
                                                    cls: type[Exception],
                                                    builtin: type[Exception],
                                                    words: str) -> None:
    arguments: dict[str, object] = {"api_keys": KEYS, **kwargs}
    with pytest.raises(cls, match=re.escape(words)) as info:
        create_app(eng, **arguments)  # type: ignore[arg-type]
    assert isinstance(info.value, builtin)
    assert [v.name for v in eng.versions()] == []  # refused before anything was deployed


def test_an_engine_on_no_database_says_what_to_give(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for nothing in (None, 42):
        with pytest.raises(InvalidArgumentType, match="a SQLite file's path or a SQLAlchemy "
                                                      "URL") as info:
            Engine(nothing)
        assert isinstance(info.value, TypeError)
    assert list(tmp_path.iterdir()) == []  # before: a SQLite file named 'None', one '42'


def _calendar() -> BusinessCalendar:
    hours = ((time(9), time(17)),)
    return BusinessCalendar("office", ZoneInfo("Asia/Shanghai"), hours * 5 + ((), ()))


NAIVE = datetime(2024, 5, 2, 8)

CASES: list[tuple[str, Callable[[Engine, Path], object], type[Exception], str]] = [
    # (what, the call, the builtin it raised before, words of the message)
    ("run_due, naive", lambda e, _: e.run_due(NAIVE), ValueError, "give e.g. datetime("),
    ("run_until, text", lambda e, _: e.run_until("2024-06-01"), TypeError,
     "must be an aware datetime, not str"),
    ("impact, naive", lambda e, _: e.impact(load_definition("grid_incident"), until=NAIVE),
     ValueError, "has no time zone"),
    ("Engine, lease", lambda _, p: Engine(p / "x.sqlite", lease_seconds=0), ValueError,
     "the claim lease must be positive"),
    ("Engine, time_source", lambda _, p: Engine(p / "x.sqlite", time_source="server"),
     ValueError, "time_source must be 'auto', 'database' or 'local'"),
    ("Engine, timers_per_transaction",
     lambda _, p: Engine(p / "x.sqlite", timers_per_transaction=0), ValueError,
     "timers_per_transaction must be at least 1"),
    ("deploy, a number", lambda e, _: e.deploy(5), TypeError,  # type: ignore[arg-type]
     "a bundled lifecycle's name, a YAML file's path or a Definition"),
    ("find_tickets, limit", lambda e, _: find_tickets(e, limit=0), ValueError,
     "limit must be between 1 and 500"),
    ("find_tickets, offset", lambda e, _: find_tickets(e, offset=-1), ValueError,
     "offset must be 0 or more"),
    ("find_tickets, due_within", lambda e, _: find_tickets(e, due_within=-1), ValueError,
     "due_within must be 0 or more"),
    # before: an empty page, as if no ticket were in that state (UnknownValue)
    ("find_tickets, state", lambda e, _: (e.deploy("grid_incident"),
                                          find_tickets(e, state="nosuch")), ValueError,
     "state 'nosuch' is not one any deployed lifecycle declares; give one of: callback, "),
    ("find_tickets, level", lambda e, _: (e.deploy("grid_incident"),
                                          find_tickets(e, level="galaxy")), ValueError,
     "level 'galaxy' is not one any deployed lifecycle declares; give one of: city, "),
    ("find_tickets, lifecycle", lambda e, _: (e.deploy("grid_incident"),
                                              find_tickets(e, lifecycle="nosuch")),
     ValueError, "lifecycle 'nosuch' is not one deployed in this database; give one of: "
                 "grid_incident"),
    ("find_tickets, state, nothing deployed", lambda e, _: find_tickets(e, state="reported"),
     ValueError, "no lifecycle is deployed in this database yet"),
    ("timers, status", lambda e, _: e.timers(status="bogus"), ValueError,
     "status 'bogus' is not one a timer can have; give one of: cancelled, fired, pending, "
     "stale"),
    # before: a SQLAlchemy StatementError from the query
    ("find_tickets, naive created_from", lambda e, _: find_tickets(e, created_from=NAIVE),
     ValueError, "created_from 2024-05-02T08:00:00 has no time zone"),
    ("build_report, by", lambda e, _: build_report(e, "grid_incident", by="week"),
     ValueError, "by must be one of"),
    ("build_report, lang", lambda e, _: build_report(e, "grid_incident", lang="fr"),
     ValueError, "lang must be zh or en"),
    ("build_report, empty range",
     lambda e, _: build_report(e, "grid_incident", since=START, until=START), ValueError,
     "the range is empty"),
    ("VirtualClock, naive start", lambda *_: VirtualClock(NAIVE), ValueError,
     "has no time zone"),
    ("VirtualClock.set, back", lambda *_: VirtualClock(START).set(START - timedelta(1)),
     ValueError, "cannot go back"),
    ("VirtualClock.advance, negative", lambda *_: VirtualClock(START).advance(timedelta(-1)),
     ValueError, "negative duration"),
    ("BusinessCalendar.add, negative",
     lambda *_: _calendar().add(START, timedelta(hours=-1)), ValueError,
     "negative working duration"),
    ("parse_definition, bytes", lambda *_: parse_definition(b"format: 1"),  # type: ignore[arg-type]
     TypeError, "decode bytes first"),
    ("Open311Privacy, reads", lambda *_: Open311Privacy(reads="nobody"),  # type: ignore[arg-type]
     ValueError, "Open311Privacy.reads is public or key"),
    ("add_api_key, name", lambda _, p: add_api_key(p / "k.yaml", "a name with spaces",
                                                   ApiKey(actor="a", role="centre")),
     ValueError, "a key's name is 1 to 64 letters"),
]


@pytest.mark.parametrize(("what", "call", "builtin", "words"), CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_to_the_public_api_is_a_typed_error(
        eng: Engine, tmp_path: Path, what: str, call: Callable[[Engine, Path], object],
        builtin: type[Exception], words: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(words)) as info:
        call(eng, tmp_path)
    assert isinstance(info.value, builtin), what  # as before, for callers that caught it
    assert info.value.argument


def test_the_testing_harness_refuses_naive_and_backward_time() -> None:
    with pytest.raises(InvalidArgument, match="has no time zone"), \
            temporary_engine(start=NAIVE):
        pass
    with temporary_engine(start=START) as harness:
        with pytest.raises(InvalidArgument, match="virtual time only moves forward") as info:
            harness.advance(timedelta(minutes=-5))
        assert isinstance(info.value, ValueError)
        with pytest.raises(InvalidArgumentType, match="must be a timedelta"):
            harness.advance(30)  # type: ignore[arg-type]
        assert harness.clock.now() == START


def test_malformed_evidence_and_unstorable_field_values_are_refusals(eng: Engine) -> None:
    # before: TypeError / ValueError from copying the attachments, before they were checked
    with pytest.raises(EvidenceInvalid, match=r"evidence\[0\] must be an object"):
        eng.report("grid_incident", {"category": "noise"}, actor=CENTRE,
                   evidence=[5])  # type: ignore[list-item]
    with pytest.raises(EvidenceInvalid, match="must be a list of objects"):
        eng.report("grid_incident", {"category": "noise"}, actor=CENTRE,
                   evidence="photo.jpg")  # type: ignore[arg-type]
    # before: TypeError 'cannot digest object' from the idempotency key's digest
    with pytest.raises(InvalidFields, match="category: expected text"):
        eng.report("grid_incident", {"category": object()}, actor=CENTRE,
                   idempotency_key="k-1")
    assert find_tickets(eng, limit=1).total == 0
