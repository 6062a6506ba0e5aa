"""The import contracts (pyproject's tool.importlinter): the engine's layers and the adapters'
import one way, the engine never imports its adapters, and the adapters stay above the
facade. The second test breaks each contract on a copy of the code and checks that
``lint-imports`` names the break, so a contract that stopped checking anything fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_contracts_are_kept() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout


def test_each_contract_catches_an_import_that_breaks_it(tmp_path: Path) -> None:
    for part in ("engine", "adapters"):
        shutil.copytree(ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    probes = {
        "engine/store/writer.py": "import engine.facade",  # a lower layer imports the facade
        "engine/sla/clocks.py": "import engine.ladder.ladder",  # two independent participants
        "engine/runtime/kernel.py": "import adapters.http",  # the engine imports an adapter
        "adapters/diagrams/render.py": "import adapters.cli",  # the adapters' layers
        "adapters/http/api.py": "import engine.runtime.kernel",  # below the facade
    }
    for path, line in probes.items():
        with (tmp_path / path).open("a", encoding="utf-8") as f:
            f.write(f"\n{line}  # probe\n")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Contracts: 0 kept, 4 broken." in done.stdout
    for shown in ("engine.store.writer -> engine.facade",
                  "engine.sla.clocks -> engine.ladder.ladder",
                  "engine.runtime.kernel -> adapters.http",
                  "adapters.diagrams.render -> adapters.cli",
                  "adapters.http.api -> engine.runtime.kernel"):
        assert shown in done.stdout, (shown, done.stdout)
