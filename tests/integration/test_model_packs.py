"""The real model pack (npm faceplugin-face-recognition-js@0.0.1) as users get it.

- Installed (``.ci/run`` and ``make demo`` install it with ``faceprint models install faceplugin``):
  ``faceprint models`` lists it and every pinned file resolves. Skips, naming the command, when
  it is not installed.
- A real ``npm pack`` into a fresh models folder (a 41 MB download): only with npm on PATH and
  ``FACEPRINT_TEST_NPM=1``, since ``make test`` must not need the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceprint.models import packs

PACK = packs.PACKS["faceplugin"]


def faceprint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("faceprint")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture
def installed_pack() -> None:
    if not packs.installed(PACK.name):
        pytest.skip(PACK.missing_message)


def test_the_installed_pack_is_listed_and_its_files_resolve(installed_pack):
    proc = faceprint("models", "--json")
    assert proc.returncode == 0, proc.stderr
    (state,) = [p for p in json.loads(proc.stdout)["packs"] if p["name"] == PACK.name]
    assert state["installed"] is True and state["problem"] is None
    assert state["spec"] == PACK.spec and state["source"]
    assert state["licence_text"].startswith("MIT License") and "gitguanqi" in state["licence_text"]
    folder = packs.pack_dir(PACK)
    assert state["path"] == str(folder)
    for path in PACK.files:
        assert packs.pack_file(PACK.name, path) == folder / path
    record = json.loads((folder / packs.MANIFEST).read_text())
    assert record["integrity"] == PACK.integrity and record["files"] == PACK.files

    again = faceprint("models", "install", PACK.name)
    assert again.returncode == 0 and "already installed" in again.stdout
    table = faceprint("models")
    assert table.returncode == 0 and PACK.spec in table.stdout


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm (Node.js) on PATH")
@pytest.mark.skipif(os.environ.get("FACEPRINT_TEST_NPM") != "1",
                    reason="downloads the 41 MB pack from the npm registry: set FACEPRINT_TEST_NPM=1 to run it")
def test_a_real_npm_install_into_a_fresh_models_folder(tmp_path):
    env = {"FACEPRINT_MODELS_DIR": str(tmp_path)}
    proc = faceprint("models", "install", PACK.name, "--json", env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (report,) = json.loads(proc.stdout)["installed"]
    assert report["source"] == "npm" and report["already_installed"] is False
    folder = tmp_path / "packs" / PACK.name / PACK.version
    assert report["path"] == str(folder)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        [*PACK.files, packs.MANIFEST])
    listed = faceprint("models", "--json", env=env)
    (state,) = [p for p in json.loads(listed.stdout)["packs"] if p["name"] == PACK.name]
    assert state["installed"] is True and state["source"] == "npm"
