"""Property-based API testing: Schemathesis generates requests from our OpenAPI document and
sends them to the app under a real uvicorn server; no answer may be a 5xx, whichever role's
key sends them (issue 11: one key per role of the bundled lifecycle, at most 50 examples per
operation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from helpers import START
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from servers import running

from adapters.http import ApiKey, create_app
from engine import Actor, Engine, VirtualClock, load_definition

ROLES = sorted(load_definition("grid_incident").spec.roles)
KEYS = {f"k-{role}": ApiKey(actor=f"{role}-1", role=role,
                            department="water" if role == "department" else None)
        for role in ROLES}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite"
    engine = Engine(path, clock=VirtualClock(START))
    for i in range(3):
        engine.report("grid_incident", {"category": "noise", "target_at": START},
                      actor=Actor("gw", "centre"), ticket_id=f"T{i}")
    engine.fire("T1", "dispatch", actor=Actor("ops", "centre"), fields={"department": "water"})
    engine.report("grid_incident", {"category": "noise"}, actor=Actor("gw", "centre"),
                  ticket_id="14-00011080/lead")
    with running(create_app(engine, api_keys=KEYS)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    engine.stop()


def test_no_request_gets_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand (Hypothesis over each operation's strategy) rather than through
    # schemathesis' pytest plugin, which does not support pytest 9 yet.
    assert len(ROLES) >= 8
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # 12 + the department commands and GET /reports + evidence, call-back, Open311 media
    # + issue 11's oversight (extensions, suspensions, notices: 8)
    assert len(operations) == 37
    for operation in operations:

        @given(case=operation.as_strategy(), key=st.sampled_from(sorted(KEYS)))
        @settings(max_examples=50, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, key: str) -> None:
            if (case.headers or {}).get("X-API-Key") not in KEYS:
                case.headers = {**(case.headers or {}), "X-API-Key": key}
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])

        check()
