"""The package's layers (DESIGN.md): no import points up, no cycles.

The contracts live in pyproject.toml ([tool.importlinter]); this runs them, so a new upward
import (lazy ones inside functions included) fails the test suite, not only `lint-imports`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is in the 'test' extra")
    cwd = os.getcwd()
    # import-linter configures its logging with dictConfig, which disables every logger that
    # exists then (faceprint's included): later tests reading faceprint's log would see nothing.
    enabled = [log for log in logging.root.manager.loggerDict.values()
               if isinstance(log, logging.Logger) and not log.disabled]
    os.chdir(REPO)  # the contracts name the package by its import name, found from the repo
    try:
        status = cli.lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        os.chdir(cwd)
        for log in enabled:
            log.disabled = False
    out = capsys.readouterr().out
    assert status == 0, out[out.find("Broken contracts"):] or out
