"""Optional extras: the library and CLI work without them, and a command that needs a missing one
says which extra to install (missing_dependency), never a bare ImportError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import MissingDependencyError

# Setting sys.modules[name] = None makes `import name` raise ImportError, as if not installed.
BLOCK = "import sys\nfor m in {mods!r}: sys.modules[m] = None\n"
EXTRAS = ("fastapi", "uvicorn", "python_multipart", "multipart", "matplotlib", "sklearn")


def run(code: str, *mods: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK.format(mods=list(mods)) + code], capture_output=True, text=True, timeout=120)


def test_library_and_cli_import_without_any_extra() -> None:
    code = (
        "import faceprint, faceprint.gallery, faceprint.clustering, faceprint.evaluation, faceprint.cli\n"
        "from faceprint.clustering import cluster\n"
        "import numpy as np\n"
        "x = np.eye(4, dtype=np.float32)\n"
        "print(cluster(x, threshold=0.5).n_clusters)\n"
    )
    done = run(code, *EXTRAS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4"


def test_service_command_without_the_service_extra_names_it(tmp_path: Path) -> None:
    code = (
        "from faceprint.cli import main\n"
        f"sys.argv = ['faceprint', '--gallery', {str(tmp_path / 'g.db')!r}, 'keys', 'list']\n"
        "main()\n"
    )
    done = run(code, "fastapi")
    assert done.returncode == 1, done.stderr
    assert "pip install 'faceprint[service]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_sklearn_algorithm_without_the_cluster_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.clustering import cluster

    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(MissingDependencyError) as exc:
        cluster(np.eye(4, dtype=np.float32), "dbscan", threshold=0.5)
    assert exc.value.details["extra"] == "cluster"
