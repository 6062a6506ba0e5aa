"""Hashed API keys (issue 11): `keys add` prints a key once and stores its hash; an old file
of plain keys is refused with the command that converts it; nothing keeps a key in memory."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers import START
from servers import running

from adapters.http import create_app, load_api_keys
from adapters.http.auth import hash_key
from engine import DefinitionError, Engine, VirtualClock

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_keys_add_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    made = cli("keys", "add", str(path), "--actor", "ops-1", "--role", "centre")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("gwk_") and len(key) == 47
    assert "the only time the key is shown" in made.stderr
    water = cli("keys", "add", str(path), "--actor", "water-3", "--role", "department",
                "--department", "water").stdout.strip()
    text = path.read_text()
    assert key not in text and water not in text  # main kept the keys themselves in the file
    assert hash_key(key) in text and hash_key(water) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = cli("keys", "add", str(path), "--actor", "ops-1", "--role", "centre")
    assert again.returncode == 1
    assert "a key named 'ops-1' exists" in again.stderr
    listed = cli("keys", "list", str(path)).stdout
    assert "ops-1" in listed and "water" in listed and key not in listed

    ring = load_api_keys(path)
    assert key not in repr(vars(ring))  # only hashes in memory
    engine = Engine(tmp_path / "k.sqlite", clock=VirtualClock(START))
    try:
        with running(create_app(engine, api_keys=ring)) as url:
            ok = httpx.post(f"{url}/tickets", json={"fields": {"category": "noise"}},
                            headers={"X-API-Key": key})
            assert ok.status_code == 201, ok.text
            assert ok.json()["state"] == "reported"
            assert engine.history(ok.json()["id"])[0].actor == "ops-1"
            assert httpx.get(f"{url}/tickets", headers={"X-API-Key": key[:-1]}).status_code \
                == 401
    finally:
        engine.stop()


def test_an_old_file_of_plain_keys_is_refused_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("# our keys\nkeys:\n  k-centre-7f3a: {actor: ops-1, role: centre}\n"
                    "  k-water-19c2: {actor: water-3, role: department, department: water}\n"
                    "  k-centre-2: {actor: ops-1, role: centre}\n")
    with pytest.raises(DefinitionError) as info:
        load_api_keys(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.path) == (3, "keys")
    assert f"run `gridwhistle keys migrate {path}` once" in problem.message
    served = cli("serve", "--api-keys", str(path), "--db", str(tmp_path / "s.sqlite"))
    assert served.returncode == 1
    assert "gridwhistle keys migrate" in served.stderr

    done = cli("keys", "migrate", str(path))
    assert (done.returncode, done.stdout.strip()) == (
        0, f"{path}: 3 keys replaced by their SHA-256 hashes")
    text = path.read_text()
    assert "k-centre-7f3a" not in text and "k-water-19c2" not in text
    ring = load_api_keys(path)  # the same keys still work
    assert ring.find("k-centre-7f3a").role == "centre"
    assert ring.find("k-water-19c2").department == "water"
    assert ring.find("k-centre-2").actor == "ops-1"
    assert cli("keys", "migrate", str(path)).stdout.strip() == f"{path}: already hashed"
    assert "ops-1-2" in text  # two keys of one actor get two names


def test_a_keys_file_that_is_not_utf8_gets_one_line_saying_so(tmp_path: Path) -> None:
    """A keys file saved as GBK or UTF-16 (Notepad, PowerShell) is refused by every keys
    command and by serve with the file, the line and what to do; main printed a traceback."""
    unnamed = cli("keys", "add", str(tmp_path / "keys.yaml"), "--actor", "王", "--role",
                  "centre")
    assert unnamed.returncode == 1 and "Traceback" not in unnamed.stderr  # main: a traceback
    assert "give the entry one with --name" in unnamed.stderr
    made = cli("keys", "add", str(tmp_path / "keys.yaml"), "--actor", "王", "--role",
               "centre", "--name", "wang")
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "keys.yaml").read_text(encoding="utf-8") + "# 王：指挥中心值班\n"
    gbk, utf16 = tmp_path / "gbk.yaml", tmp_path / "u16.yaml"
    gbk.write_bytes(text.encode("gbk"))
    utf16.write_bytes(text.encode("utf-16"))
    for path in (gbk, utf16):
        for args in (("keys", "list", str(path)),
                     ("keys", "add", str(path), "--actor", "a-1", "--role", "centre"),
                     ("keys", "migrate", str(path)),
                     ("serve", "--api-keys", str(path), "--db", str(tmp_path / "s.sqlite"))):
            done = cli(*args)
            assert done.returncode == 1, (args, done.stderr)
            assert "Traceback" not in done.stderr, (args, done.stderr)
            assert "is not UTF-8 text" in done.stderr and "save it as UTF-8" in done.stderr, (
                args, done.stderr)
            assert path.name in done.stderr
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert "王" in cli("keys", "list", str(bom)).stdout  # a byte-order mark is fine
