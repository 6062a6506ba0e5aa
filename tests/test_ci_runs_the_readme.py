"""CI runs the test command the README gives a new user (and nothing else in its place)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", quick, re.S)
    assert block is not None
    commands = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]  # the main job, then the tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = [line.strip() for line in ci.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert steps[-1] == commands[1]
    assert sum(step == commands[1] for step in steps) == 1
