"""Bounded definitions (issue 11): aliases, sizes and counts refused before the costly steps,
graph checks linear in the file's size, names the state machine claims refused at validate,
and DOT diagrams that survive states named like DOT keywords."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from adapters.diagrams import dot
from engine import DefinitionError, Problem, parse_definition
from engine.definition import checks as checks_module
from engine.definition import load_definition

REPO = Path(__file__).resolve().parents[1]

SMALL = """\
format: 1
name: small
initial: open
roles: {centre: {}, system: {}}
levels: [{name: community}]
report: {roles: [centre]}
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: finish, source: open, dest: closed, roles: [centre]}
"""


def problems_of(text: str, **kwargs: object) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="x.yaml", **kwargs)  # type: ignore[arg-type]
    return list(info.value.problems)


def chain(n: int) -> str:
    """A lifecycle of ``n`` states in a row, each left by one transition."""
    lines = ["format: 1", "name: big", "initial: s0", "roles: {centre: {}, system: {}}",
             "levels: [{name: community}]", "report: {roles: [centre]}", "states:"]
    lines += [f"  s{i}: {{}}" for i in range(n - 1)] + [f"  s{n - 1}: {{final: true}}"]
    lines.append("transitions:")
    lines += [f"  - {{trigger: t{i}, source: s{i}, dest: s{i + 1}, roles: [centre]}}"
              for i in range(n - 1)]
    return "\n".join(lines) + "\n"


def bomb(levels: int) -> str:
    """The billion laughs: each level a list of nine aliases of the level below."""
    out = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        out.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return SMALL + "\n".join(out) + "\n"


# -- aliases ---------------------------------------------------------------------------------

def test_an_alias_bomb_is_refused_at_the_line_of_its_largest_alias() -> None:
    text = bomb(7)  # stands for 9**7 = 4.8 million values (main expanded them all)
    (problem,) = problems_of(text)
    assert problem.path == "a6[0]"
    assert problem.line == text.splitlines().index(next(
        line for line in text.splitlines() if line.startswith("a6:"))) + 1
    assert re.search(r"aliases make the document stand for [0-9,]{9} values", problem.message)
    assert "more than the limit of 1,000,000 (max_yaml_nodes)" in problem.message
    assert "GRIDWHISTLE_MAX_YAML_NODES" in problem.message


def test_a_billion_laughs_under_one_kilobyte_fails_fast_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(10))
    assert path.stat().st_size < 1024
    # On main this ran for minutes (every alias expanded while walking); the timeout only
    # guards the suite against that hang.
    done = subprocess.run([sys.executable, "-m", "adapters.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1
    assert (f"{path}:21: a9[0]: aliases make the document stand for 4,412,961,558 values, "
            "more than the limit of 1,000,000 (max_yaml_nodes); the alias here is the "
            "largest") in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_aliases_within_the_limit_still_work() -> None:
    text = SMALL + textwrap.dedent("""\
        calendars:
          office:
            zone: Asia/Shanghai
            hours:
              monday: &day ["08:30-12:00", "13:30-17:30"]
              tuesday: *day
        """)
    cal = parse_definition(text).spec.calendars["office"]
    assert cal.hours["tuesday"] == ["08:30-12:00", "13:30-17:30"]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    text = SMALL + "deep: " + "[" * 40 + "]" * 40 + "\n"
    (problem,) = problems_of(text)
    assert (problem.line, problem.path) == (SMALL.count("\n") + 1, "deep" + "[0]" * 32)
    assert "values nest more than 32 levels deep (max_depth)" in problem.message


# -- sizes and counts --------------------------------------------------------------------------

def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(SMALL + "description: " + "x" * 5_000_000 + "\n")
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    (problem,) = info.value.problems
    assert problem.message.startswith("the file has 5,000,259 bytes")
    assert "more than the limit of 4,000,000 (max_bytes)" in problem.message
    assert "GRIDWHISTLE_MAX_BYTES" in problem.message


def test_section_counts_are_limited_with_the_limit_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.definition import DefinitionLimits

    text = chain(30)
    (problem,) = problems_of(text, limits=DefinitionLimits(max_states=20))
    assert (problem.line, problem.path) == (7, "states")
    assert problem.message == (
        "30 entries, more than the limit of 20 (max_states); split the lifecycle, or raise "
        "the limit with the environment variable GRIDWHISTLE_MAX_STATES or "
        "DefinitionLimits(max_states=...)")
    monkeypatch.setenv("GRIDWHISTLE_MAX_TRANSITIONS", "10")
    (problem,) = problems_of(text)
    assert (problem.path, problem.message[:47]) == (
        "transitions", "29 entries, more than the limit of 10 (max_tran")
    monkeypatch.setenv("GRIDWHISTLE_MAX_TRANSITIONS", "100")
    assert len(parse_definition(text).spec.states) == 30


def test_a_bad_limit_variable_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import ConfigurationError

    monkeypatch.setenv("GRIDWHISTLE_MAX_STATES", "lots")
    with pytest.raises(ConfigurationError, match="GRIDWHISTLE_MAX_STATES='lots' is not a"):
        parse_definition(SMALL)


def test_ten_thousand_states_are_within_the_default_limits() -> None:
    spec = parse_definition(chain(10_000)).spec
    assert len(spec.states) == 10_000
    assert len(spec.transitions) == 9_999


def _lines_run_in_checks(text: str) -> int:
    """How many lines of engine/definition/checks.py run while loading ``text``."""
    counts: Counter[str] = Counter()
    target = checks_module.__file__

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        if frame.f_code.co_filename != target:
            return None
        if event == "line":
            counts["lines"] += 1
        return tracer

    sys.settrace(tracer)
    try:
        parse_definition(text)
    finally:
        sys.settrace(None)
    return counts["lines"]


def test_graph_checks_grow_linearly_with_the_number_of_states() -> None:
    # Counted, not timed: on main the reachability check walked every transition for every
    # state (quadratic: 10,000 states took 24-46 s), so twice the states ran four times the
    # lines.
    small, large = _lines_run_in_checks(chain(400)), _lines_run_in_checks(chain(800))
    assert large < 2.2 * small, (small, large)


def test_a_broken_file_lists_a_bounded_number_of_names_and_problems() -> None:
    text = chain(2000).replace("dest: s", "dest: x")  # every transition to an unknown state
    problems = problems_of(text)
    assert len(problems) == 1001
    note, first = problems[0], problems[1]
    assert note.message == ("more than 1,000 problems; fix these and validate again to see "
                            "the rest")
    assert first.message.startswith("unknown state 'x1'; declared states: s0, s1, s10, s100")
    assert first.message.endswith(", ... (2,000 in all)")


# -- names the state machine claims -------------------------------------------------------------

@pytest.mark.parametrize("name", ["state", "trigger"])
def test_a_trigger_named_like_the_machines_attributes_is_refused_at_validate(name: str) -> None:
    (problem,) = problems_of(SMALL.replace("trigger: finish", f"trigger: {name}"))
    assert (problem.file, problem.line, problem.path) == ("x.yaml", 11, "transitions[0].trigger")
    assert f"{name!r} is reserved: the state machine (the transitions library)" in problem.message


def test_a_trigger_named_like_a_method_the_machine_adds_is_refused() -> None:
    text = SMALL.replace("trigger: finish", "trigger: is_open")
    (problem,) = problems_of(text)
    assert (problem.line, problem.path) == (11, "transitions[0].trigger")
    assert "clashes with the method the state machine adds for state 'open'" in problem.message


def test_ordinary_words_stay_allowed_as_names() -> None:
    text = (SMALL.replace("trigger: finish", "trigger: to_review")
            .replace("open", "node").replace("closed", "edge"))
    assert parse_definition(text).spec.initial == "node"


# -- DOT ----------------------------------------------------------------------------------------

KEYWORDS = """\
format: 1
name: keywords
initial: node
roles: {centre: {}}
levels: [{name: community}]
report: {roles: [centre]}
states:
  node: {}
  edge: {}
  graph: {}
  subgraph: {final: true}
transitions:
  - {trigger: a, source: node, dest: edge, roles: [centre]}
  - {trigger: b, source: edge, dest: graph, roles: [centre]}
  - {trigger: c, source: graph, dest: subgraph, roles: [centre]}
"""


def test_states_named_like_dot_keywords_are_drawn() -> None:
    text = dot(parse_definition(KEYWORDS), highlight="graph")
    assert '  "node" -> "edge" [label="a [centre]"];' in text
    assert '  "__start" -> "node";' in text
    exe = shutil.which("dot")
    if exe is None:
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    done = subprocess.run([exe, "-Tsvg"], input=text, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('class="node"') == 5  # four states and the start point
    assert done.stdout.count('class="edge"') == 4


# -- durations beyond what date arithmetic can hold ------------------------------------------


@pytest.mark.parametrize("after", ["P99999999D", "P9999999999999999999D", "P5300W"])
def test_a_deadline_longer_than_a_hundred_years_is_refused_at_validate(after: str) -> None:
    """main: validate said ok, and the first report overflowed (OverflowError: a 500 over
    HTTP, a traceback from replay)."""
    text = SMALL.replace(
        "transitions:", f"deadlines:\n  slow: {{state: open, after: {after}, "
        "on_breach: record}\ntransitions:")
    (problem,) = problems_of(text)
    assert problem.path == "deadlines.slow.after"
    assert problem.message == f"{after!r} is longer than 100 years; write at most P36525D"
    assert parse_definition(text.replace(after, "P36525D"), file="x.yaml")
