"""Property-based fuzzers (hypothesis, schemathesis): bounded, seeded, and counted.

Each fuzzer records how many cases it tried and how long it took (:func:`record`); the counts
are printed at the end of the pytest run (``fuzz:`` lines, so CI logs show them) and written
to ``fuzz-summary.json`` in pytest's base temporary folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

#: One fixed profile for every fuzzer: derandomized (the same cases on every run, so a CI failure
#: reproduces locally), no per-example deadline (the machine is shared and slow), no database of
#: past failures written into the repository.
settings.register_profile(
    "faceprint-fuzz",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@dataclass
class FuzzRun:
    name: str
    cases: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


RUNS: dict[str, FuzzRun] = {}
#: Where the JSON summary goes: pytest's base temporary folder (set once a fuzzer runs).
SUMMARY_DIR: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def fuzz_summary_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    SUMMARY_DIR.append(tmp_path_factory.getbasetemp())


@contextmanager
def record(name: str) -> Iterator[FuzzRun]:
    """Time a fuzzer; it counts its own cases in the yielded record's ``cases``."""
    run = RUNS.setdefault(name, FuzzRun(name))
    start = time.monotonic()
    try:
        yield run
    finally:
        run.seconds += time.monotonic() - start


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not RUNS:
        return
    terminalreporter.write_sep("-", "fuzzers: cases tried (seeded, bounded)")
    for run in RUNS.values():
        extra = "".join(f", {k}={v}" for k, v in run.extra.items())
        terminalreporter.write_line(f"fuzz: {run.name}: {run.cases} cases in {run.seconds:.1f} s{extra}")
    if SUMMARY_DIR:
        path = SUMMARY_DIR[0] / "fuzz-summary.json"
        path.write_text(json.dumps([asdict(r) for r in RUNS.values()], indent=2))
        terminalreporter.write_line(f"fuzz: summary written to {path}")
