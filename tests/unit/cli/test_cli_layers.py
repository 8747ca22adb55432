"""The CLI package's own layers: the command groups import only ``faceprint.cli.common`` (never
each other, never the root); only ``faceprint.cli.root`` knows them all. Checked by
import-linter (lazy imports inside functions included), as tests/unit/test_layers.py does for
the whole package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

CONTRACT = """\
[importlinter]
root_package = faceprint

[importlinter:contract:cli-layers]
name = faceprint.cli: root > independent command groups > common
type = layers
containers =
    faceprint.cli
layers =
    root
    images | gallery | people | evaluation | service
    common
"""


def test_command_groups_import_only_common(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is in the 'test' extra")
    config = tmp_path / ".importlinter"
    config.write_text(CONTRACT)
    cwd = os.getcwd()
    os.chdir(REPO / "src")  # import-linter finds the package by its import name
    try:
        status = cli.lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert status == 0, out[out.find("Broken contracts"):] or out
