"""Every error Gridwhistle raises is rooted in ``engine.errors.GridwhistleError``.

The project rule: errors are typed, rooted in one base exception, and say what to do. The
walk imports every module of ``engine`` and ``adapters`` and checks every exception class
they define; the few that are deliberately not Gridwhistle errors are listed in
:data:`NOT_ROOTED`, each with the reason. The adapters' errors are rendered by their own
handlers, so the HTTP tests at the end check that each still answers as before now that it
is a Gridwhistle error too (Starlette picks the handler of the most derived class).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import served_client

import adapters
import engine
from adapters.http import ApiKey, create_app
from adapters.http.forms import FormError
from adapters.http.middleware import BodyTooLarge
from adapters.http.open311 import Open311Error
from adapters.http.problems import Problem
from engine import Engine, Limits, VirtualClock, find_tickets
from engine.errors import GridwhistleError

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
