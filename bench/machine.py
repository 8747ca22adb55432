"""What every benchmark records about the machine it ran on (imported by the bench scripts,
which run with this folder on sys.path)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def git_state() -> dict[str, Any]:
    """The commit the benchmark ran on and whether the work tree had uncommitted changes
    (a number from a dirty tree cannot be reproduced from the commit alone)."""
    repo = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine(**extra: Any) -> dict[str, Any]:
    """Date, git commit (and whether the tree was dirty), Python, platform, CPU, cores, numpy,
    ``extra`` (library versions ...) and the load average at the start: the machine is shared,
    so a reader can judge the timings."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        **extra,
        "loadavg_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def save_run(path: str, label: str, run: dict[str, Any]) -> None:
    """Print ``run`` as JSON and, unless ``path`` is ``-``, keep it under ``label`` in the JSON
    file at ``path`` (the other labels' runs stay: "before" and "after" side by side)."""
    import json

    print(json.dumps(run, indent=2))
    if path != "-":
        out = Path(path)
        runs = json.loads(out.read_text()) if out.exists() else {}
        runs[label] = run
        out.write_text(json.dumps(runs, indent=2) + "\n")
