"""Loading lifecycle definitions: the bundled file, YAML pitfalls, and problem reports."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from engine import (
    DefinitionError,
    Problem,
    UnknownDefinition,
    bundled_names,
    load_definition,
    parse_definition,
)
from engine.definition import bundled_workflows_dir
from engine.definition.schema import WorkingSpan

INVALID_DIR = Path(__file__).parent / "definitions" / "invalid"
INVALID_FILES = sorted(INVALID_DIR.glob("*.yaml"))

# A small valid lifecycle; tests edit it to introduce one mistake at a time.
SMALL = """\
format: 1
name: small
initial: open
roles:
  centre: {}
levels:
  - {name: community}
report:
  roles: [centre]
states:
  open: {}
  closed: {final: true}
transitions:
  - trigger: finish
    source: open
    dest: closed
    roles: [centre]
"""


def problems_of(text: str, file: str = "x.yaml") -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file=file)
    return list(info.value.problems)


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


# -- the bundled lifecycle ----------------------------------------------------------------------


def test_bundled_grid_incident_loads_by_name():
    assert "grid_incident" in bundled_names()
    definition = load_definition("grid_incident")
    path = bundled_workflows_dir() / "grid_incident.yaml"
    text = path.read_text(encoding="utf-8")

    spec = definition.spec
    assert definition.name == "grid_incident"
    assert definition.file == str(path)
    assert definition.source == text
    assert definition.digest == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert spec.initial == "reported"
    assert list(spec.roles) == ["grid_worker", "centre", "department", "street_office",
                               "district_office", "city_platform", "system", "resident",
                               "outside_org"]
    assert [level.name for level in spec.levels] == ["community", "street", "district", "city"]
    assert list(spec.states) == [
        "reported", "dispatched", "on_site", "waiting_reporter", "resolved", "escalated",
        "closed", "merged", "callback", "handed_off", "voided"]
    assert [n for n, s in spec.states.items() if s.final] == ["closed", "merged", "voided"]
    assert [n for n, s in spec.states.items() if s.void] == ["voided"]
    assert [(t.trigger, t.source, t.dest, t.roles, t.reason_required)
            for t in spec.transitions] == [
        ("dispatch", ["reported", "escalated"], "dispatched", ["centre"], False),
        ("arrive", ["dispatched", "escalated"], "on_site", ["department"], False),
        ("resolve", ["on_site", "escalated"], "resolved", ["department"], False),
        ("close", ["resolved"], "closed", ["centre"], False),
        ("reject", ["resolved"], "dispatched", ["centre"], True),
        ("ask_reporter", ["on_site"], "waiting_reporter", ["department"], True),
        ("answer", ["waiting_reporter"], "on_site", ["grid_worker", "centre"], False),
        ("escalate", ["reported", "dispatched", "on_site", "waiting_reporter", "escalated"],
         "escalated", ["system", "centre"], True),
        ("acknowledge", ["escalated"], "escalated",
         ["street_office", "district_office", "city_platform"], False),
        ("reopen", ["resolved", "callback"], "dispatched", ["resident", "centre"], True),
        ("merge", ["reported", "dispatched", "on_site", "waiting_reporter", "escalated"],
         "merged", ["centre"], True),
        ("verify", ["resolved"], "callback", ["centre"], False),
        ("confirm", ["callback"], "closed", ["resident", "centre"], False),
        ("callback_expired", ["callback"], "closed", ["system"], True),
        ("hand_off", ["escalated"], "handed_off", ["district_office", "city_platform"], False),
        ("org_answer", ["handed_off"], "resolved", ["outside_org"], False),
        ("org_return", ["handed_off"], "escalated", ["outside_org"], True),
        ("escalate", ["handed_off"], "escalated", ["system", "centre"], True),
        ("void", ["reported", "dispatched", "on_site", "waiting_reporter", "escalated"],
         "voided", ["centre", "district_office"], True),
    ]
    deadlines = {n: (d.state, d.stop_in, d.after, d.at_field, d.on_breach)
                 for n, d in spec.deadlines.items()}
    assert deadlines == {
        "dispatch_due": ("reported", None, timedelta(minutes=30), None, "escalate"),
        "arrival_due": ("dispatched", None, timedelta(hours=2), None, "record"),
        "resolution": (None, ["resolved", "callback", "closed"], None, "target_at",
                       "escalate"),
        "callback_due": ("callback", None, WorkingSpan(working_days=3, calendar="centre_hours"),
                         None, "record"),
    }
    assert spec.resolution_deadline == "resolution"
    assert spec.fields["category"].required is True
    assert spec.fields["target_at"].type == "datetime"
    assert spec.states["reported"].title == {"zh": "已上报", "en": "Reported"}


def test_load_by_path_equals_load_by_name():
    path = bundled_workflows_dir() / "grid_incident.yaml"
    by_path = load_definition(path)
    assert by_path.digest == load_definition("grid_incident").digest
    assert by_path.file == str(path)


def test_unknown_lifecycle_name_lists_the_bundled_ones():
    with pytest.raises(UnknownDefinition) as info:
        load_definition("no_such_lifecycle")
    assert info.value.name == "no_such_lifecycle"
    assert "grid_incident" in info.value.known
    assert "grid_incident" in str(info.value)


# -- YAML 1.1 surprises -------------------------------------------------------------------------


def test_states_and_triggers_named_like_yaml11_booleans_stay_strings():
    text = """\
format: 1
name: switch
initial: no
roles: {centre: {}}
levels: [{name: base}]
report: {roles: [centre]}
states:
  no: {}
  off: {}
  yes: {final: true}
transitions:
  - {trigger: on, source: no, dest: off, roles: [centre]}
  - {trigger: n, source: [off], dest: yes, roles: centre}
  - {trigger: y, source: [no, off], dest: yes, roles: [centre]}
"""
    spec = parse_definition(text).spec
    assert spec.initial == "no"
    assert list(spec.states) == ["no", "off", "yes"]
    assert [(t.trigger, t.source, t.dest) for t in spec.transitions] == [
        ("on", ["no"], "off"),
        ("n", ["off"], "yes"),
        ("y", ["no", "off"], "yes"),
    ]
    assert spec.states["yes"].final is True
    assert spec.states["no"].final is False


def test_lifecycle_with_yaml11_names_runs_in_the_engine(engine, centre):
    text = """\
format: 1
name: switch
initial: no
roles: {centre: {}}
levels: [{name: base}]
report: {roles: [centre]}
states:
  no: {}
  yes: {final: true}
transitions:
  - {trigger: on, source: no, dest: yes, roles: [centre]}
"""
    engine.deploy(parse_definition(text))
    ticket = engine.report("switch", {}, actor=centre, ticket_id="S1")
    assert ticket.state == "no"
    assert engine.fire("S1", "on", actor=centre).state == "yes"
    assert engine.get("S1").state == "yes"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "y", "n"])
def test_boolean_written_as_yaml11_word_is_an_error_saying_true_or_false(word):
    text = SMALL.replace("closed: {final: true}", f"closed: {{final: {word}}}")
    assert problems_of(text) == [
        Problem("x.yaml", line_of(text, "closed:"), "states.closed.final",
                f"{word!r} is not a boolean here; write true or false "
                "(YAML 1.1's yes/no/on/off are read as text)"),
    ]


@pytest.mark.parametrize("word", ["true", "True", "TRUE"])
def test_true_in_any_case_is_a_boolean(word):
    text = SMALL.replace("closed: {final: true}", f"closed: {{final: {word}}}")
    assert parse_definition(text).spec.states["closed"].final is True


def test_sexagesimal_and_octal_looking_values_stay_text():
    text = (SMALL.replace("  open: {}", "  open: {title: 10:00, description: 0755}")
            .replace("name: small", "name: small\ndescription: 10:00"))
    spec = parse_definition(text).spec
    assert spec.description == "10:00"
    assert spec.states["open"].title == {"en": "10:00"}
    assert spec.states["open"].description == "0755"


# -- problems: duplicate keys, tags, unknown keys ---------------------------------------------


def test_duplicate_key_is_an_error_with_both_lines():
    text = SMALL.replace("    dest: closed\n", "    dest: closed\n    dest: open\n")
    first = line_of(text, "dest: closed")
    second = line_of(text, "dest: open")
    assert problems_of(text, "dup.yaml") == [
        Problem("dup.yaml", second, "transitions[0].dest",
                f"duplicate key 'dest' (first defined on line {first}); keep one of them"),
    ]
    assert str(problems_of(text, "dup.yaml")[0]) == (
        f"dup.yaml:{second}: transitions[0].dest: duplicate key 'dest' "
        f"(first defined on line {first}); keep one of them")


def test_duplicate_top_level_key_is_an_error():
    text = SMALL + "initial: closed\n"
    assert problems_of(text) == [
        Problem("x.yaml", line_of(text, "initial: closed"), "initial",
                "duplicate key 'initial' (first defined on line 3); keep one of them"),
    ]


def test_every_problem_in_a_file_is_reported_at_once():
    text = SMALL.replace("name: small", "name: small\nname: again").replace(
        "  open: {}", "  open: {colour: red}") + (
        "deadlines:\n  finish_due: {state: open, after: 2h}\n")
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [
        (line_of(text, "name: again"), "name"),
        (line_of(text, "colour: red"), "states.open.colour"),
        (line_of(text, "after: 2h"), "deadlines.finish_due.after"),
    ]
    assert problems[0].message == (
        "duplicate key 'name' (first defined on line 2); keep one of them")
    assert problems[1].message == ("unknown field; allowed here: description, final, title, "
                                   "void")
    assert problems[2].message.startswith("'2h' is not an ISO 8601 duration; write e.g. PT30M")
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="x.yaml")
    assert str(info.value).splitlines() == [
        "3 problems in lifecycle file x.yaml; fix them and load again:",
        *(f"  {p}" for p in problems),
    ]


def test_every_graph_problem_is_reported_at_once():
    text = (SMALL.replace("  open: {}", "  open: {}\n  waiting: {}")
            .replace("    dest: closed\n    roles: [centre]\n",
                     "    dest: closed\n    roles: [centre]\n"
                     "  - {trigger: park, source: open, dest: waiting, roles: [centre]}\n"
                     "  - {trigger: drop, source: open, dest: bin, roles: [clerk]}\n"))
    assert [str(p) for p in problems_of(text)] == [
        f"x.yaml:{line_of(text, 'waiting: {}')}: states.waiting: state 'waiting' has no way "
        "out; add a transition from it or mark it final: true",
        f"x.yaml:{line_of(text, 'dest: bin')}: transitions[2].dest: unknown state 'bin'; "
        "declared states: closed, open, waiting",
        f"x.yaml:{line_of(text, 'dest: bin')}: transitions[2].roles[0]: unknown role "
        "'clerk'; declared roles: centre",
    ]


def test_graph_checks_run_once_the_structure_is_valid():
    # Stage by stage: every parse and schema problem at once; the graph checks (names that
    # resolve, reachability) need a well-formed file and run on the next load.
    text = SMALL.replace("closed: {final: true}", "closed: {final: yes}").replace(
        "dest: closed", "dest: closd")
    assert [p.path for p in problems_of(text)] == ["states.closed.final"]
    fixed = text.replace("final: yes", "final: true")
    # closd does not resolve, and so closed cannot be reached
    assert [p.path for p in problems_of(fixed)] == ["states.closed", "transitions[0].dest"]


@pytest.mark.parametrize(("tagged", "message"), [
    ("!!python/object:os.system small",
     "tag 'tag:yaml.org,2002:python/object:os.system' is not allowed; definitions hold plain "
     "values"),
    ("!!python/object/apply:os.system [echo]",
     "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed here"),
    ("!!python/name:os.system ''",
     "tag 'tag:yaml.org,2002:python/name:os.system' is not allowed; definitions hold plain "
     "values"),
    ("!!binary c21hbGw=",
     "tag 'tag:yaml.org,2002:binary' is not allowed; definitions hold plain values"),
    ("!custom small", "tag '!custom' is not allowed; definitions hold plain values"),
])
def test_non_standard_tags_are_rejected(tagged, message):
    text = SMALL.replace("name: small", f"name: {tagged}")
    problems = problems_of(text)
    assert problems[0] == Problem("x.yaml", 2, "name", message)
    assert all(p.path == "name" for p in problems)


def test_standard_tags_are_allowed():
    text = SMALL.replace("name: small", "name: !!str small")
    assert parse_definition(text).name == "small"


def test_python_object_apply_is_never_constructed(tmp_path):
    target = tmp_path / "pwned"
    text = SMALL.replace(
        "name: small", f"name: small\ndescription: !!python/object/apply:os.mkdir ['{target}']")
    assert problems_of(text) == [
        Problem("x.yaml", 3, "description",
                "tag 'tag:yaml.org,2002:python/object/apply:os.mkdir' is not allowed here"),
        Problem("x.yaml", 3, "description", "Input should be a valid string"),
    ]
    assert not target.exists()


def test_python_object_tag_on_a_mapping_is_rejected():
    text = SMALL.replace("  open: {}", "  open: !!python/object:types.SimpleNamespace {}")
    assert problems_of(text) == [
        Problem("x.yaml", line_of(text, "open: !!python"), "states.open",
                "tag 'tag:yaml.org,2002:python/object:types.SimpleNamespace' is not allowed "
                "here"),
    ]


@pytest.mark.parametrize(("edit", "needle", "path", "allowed"), [
    (("name: small", "name: small\ncolour: red"), "colour: red", "colour",
     "calendars, callback, categories, centre_roles, deadlines, departments, description, "
     "escalation_trigger, evidence, field_permissions, fields, format, grids, handoff, "
     "initial, ladder, lags, levels, name, "
     "organisations, oversight, patrol, periodic, report, requirements, resolution_deadline, "
     "roles, routing, slas, states, title, transitions, valid_from, valid_until"),
    (("  open: {}", "  open: {colour: red}"), "colour: red", "states.open.colour",
     "description, final, title, void"),
    (("    dest: closed\n", "    dest: closed\n    reason_requird: true\n"), "reason_requird",
     "transitions[0].reason_requird",
     "actions, dest, during, guards, internal, reason_required, roles, source, title, trigger"),
    (("  roles: [centre]\nstates", "  roles: [centre]\n  who: x\nstates"), "who: x",
     "report.who", "roles"),
    (("  - {name: community}", "  - {name: community, colour: red}"), "colour: red",
     "levels[0].colour", "budget, handler, handler_only, name, title"),
    (("  centre: {}", "  centre: {rank: 1}"), "rank: 1", "roles.centre.rank",
     "description, title"),
])
def test_unknown_keys_list_the_allowed_ones(edit, needle, path, allowed):
    text = SMALL.replace(*edit)
    assert text != SMALL
    assert problems_of(text) == [
        Problem("x.yaml", line_of(text, needle), path, f"unknown field; allowed here: {allowed}"),
    ]


def test_unknown_key_in_a_deadline_lists_the_deadline_keys():
    text = SMALL + "deadlines:\n  finish_due: {state: open, after: PT1H, repeat: true}\n"
    assert problems_of(text) == [
        Problem("x.yaml", line_of(text, "repeat: true"), "deadlines.finish_due.repeat",
                "unknown field; allowed here: after, at_field, on_breach, state, stop_in, "
                "title"),
    ]


# -- the folder of invalid lifecycles ------------------------------------------------------------


def test_invalid_folder_holds_a_few_files_each_with_expected_problems():
    assert 6 <= len(INVALID_FILES) <= 12
    for path in INVALID_FILES:
        assert path.with_suffix(".expected").is_file(), path.name


@pytest.mark.parametrize("path", INVALID_FILES, ids=[p.stem for p in INVALID_FILES])
def test_invalid_definition_reports_exactly_the_expected_problems(path):
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    with pytest.raises(DefinitionError) as info:
        parse_definition(path.read_text(encoding="utf-8"), file=path.name)
    assert [str(p) for p in info.value.problems] == expected
    assert all(p.file == path.name for p in info.value.problems)


def test_format_must_be_the_number_1_not_a_boolean():
    problems = problems_of(SMALL.replace("format: 1", "format: true"))
    assert [(p.path, p.message) for p in problems] == [
        ("format", "format is the number 1 (the version of this file format)")]


def test_names_longer_than_64_characters_are_refused():
    long_name = "s" * 65
    problems = problems_of(SMALL.replace("name: small", f"name: {long_name}"))
    assert [p.path for p in problems] == ["name"]
    assert "at most 64 characters" in problems[0].message


def test_a_routed_lifecycle_must_let_its_work_orders_resolve_the_ticket():
    """Work orders resolve their ticket as the role ``department`` (arrive, then resolve):
    a routed lifecycle that does not let that role fire them is refused at validation, with
    the line of ``routing``, instead of leaving its tickets unresolved for ever."""
    text = (Path(__file__).parent.parent / "workflows" / "grid_incident.yaml").read_text(
        encoding="utf-8")
    blocked = text.replace("""    source: [on_site, escalated]
    dest: resolved
    roles: [department]""", """    source: [on_site, escalated]
    dest: resolved
    roles: [centre]""", 1)
    assert blocked != text
    found = problems_of(blocked, "routed.yaml")
    mine = [p for p in found if "'resolve' as the role 'department'" in p.message]
    assert len(mine) == 1 and mine[0].path == "routing"
    assert mine[0].line == line_of(blocked, "routing:") and mine[0].file == "routed.yaml"
    no_arrive = text.replace("""    source: [dispatched, escalated]
    dest: on_site
    roles: [department]""", """    source: [escalated]
    dest: on_site
    roles: [department]""", 1)
    assert any("'arrive' transition from 'dispatched'" in p.message
               for p in problems_of(no_arrive))
    # resolve is the department's only from elsewhere: arriving tickets would stay put
    split = text.replace("""  - trigger: resolve
    title: {zh: 处置完毕, en: Resolve}
    source: [on_site, escalated]
    dest: resolved
    roles: [department]""", """  - trigger: resolve
    title: {zh: 处置完毕, en: Resolve}
    source: [escalated]
    dest: resolved
    roles: [department]
  - trigger: resolve
    title: {zh: 处置完毕, en: Resolve}
    source: [on_site]
    dest: resolved
    roles: [centre]""", 1)
    assert split != text
    [found] = [p for p in problems_of(split) if "arrives in 'on_site'" in p.message]
    assert found.path == "routing" and "from 'on_site'" in found.message
