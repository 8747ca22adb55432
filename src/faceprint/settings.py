"""Every ``FACEPRINT_*`` environment variable faceprint reads, in one place.

Nothing else in the package reads ``os.environ`` for a ``FACEPRINT_*`` name: ask this module.
Each accessor reads the environment when called (not at import), so a test or a CLI option
that sets a variable before the call is honoured.

===============================  ===============================================================
variable                         meaning
===============================  ===============================================================
``FACEPRINT_GALLERY``            the gallery database (``--gallery``); default ``gallery.db`` in
                                 the user data folder
``FACEPRINT_MODELS_DIR``         a folder of user ONNX models (``NAME.onnx`` + ``NAME.json``)
                                 registered at start-up (``--models-dir``); installed model packs
                                 go in its ``packs/`` (default: ``models`` in the user data folder)
``FACEPRINT_CACHE_DIR``          where converted models are cached (default: the user cache
                                 folder); safe to delete
``FACEPRINT_DLIB_RUNTIME``       ``onnx`` | ``dlib`` | ``auto`` (default): which runtime computes
                                 dlib's ResNet embeddings
``FACEPRINT_DEBUG``              ``1``: the CLI prints the traceback of an unexpected error
``FACEPRINT_LOG_LEVEL``          the service's log level (``debug``, ``info``, ...; default ``info``)
``FACEPRINT_MASTER_KEY_FILE``    the master key file of encrypted galleries (default:
                                 ``master.key`` in the user config folder, if it exists)
``FACEPRINT_KEYRING_DIR``        where the keyrings of encrypted PostgreSQL galleries are
                                 (``<keyring id>.keys``; default: ``keyrings`` in the user data
                                 folder)
``FACEPRINT_DASK``               the Dask scheduler (``--dask``, e.g. ``tcp://scheduler:8786``)
                                 that runs ``embed``/``enroll``/``cluster``/``eval``'s image work;
                                 unset: the local worker pool
``FACEPRINT_SHARED_DATA``        the folder of test data sets (tests and benchmarks only; default
                                 ``../shared/data`` beside the repository)
===============================  ===============================================================

``FACEPRINT_SERVICE_SETTINGS`` carries the service's settings as JSON from ``faceprint serve``
to its uvicorn worker processes (set by :func:`faceprint.service.serve`, not by hand).

The library configures no logging handlers; loggers are named after modules
(``faceprint.models.dlib_onnx`` ...), so ``logging.getLogger("faceprint")`` controls them all.
"""

from __future__ import annotations

import os
from pathlib import Path

GALLERY = "FACEPRINT_GALLERY"
MODELS_DIR = "FACEPRINT_MODELS_DIR"
CACHE_DIR = "FACEPRINT_CACHE_DIR"
DLIB_RUNTIME = "FACEPRINT_DLIB_RUNTIME"
DEBUG = "FACEPRINT_DEBUG"
LOG_LEVEL = "FACEPRINT_LOG_LEVEL"
SHARED_DATA = "FACEPRINT_SHARED_DATA"
MASTER_KEY_FILE = "FACEPRINT_MASTER_KEY_FILE"
KEYRING_DIR = "FACEPRINT_KEYRING_DIR"
SERVICE_SETTINGS = "FACEPRINT_SERVICE_SETTINGS"
DASK = "FACEPRINT_DASK"

#: Every variable above, with a one-line description (``faceprint --help`` and docs list them).
VARIABLES: dict[str, str] = {
    GALLERY: "the gallery database (default: gallery.db in the user data folder)",
    MODELS_DIR: "a folder of user ONNX models registered at start-up",
    CACHE_DIR: "where converted models are cached (default: the user cache folder)",
    DLIB_RUNTIME: "onnx | dlib | auto: the runtime of dlib's ResNet embedder",
    DEBUG: "1: print the traceback of an unexpected error",
    LOG_LEVEL: "the service's log level (default: info)",
    SHARED_DATA: "the test data folder (tests and benchmarks only)",
    MASTER_KEY_FILE: "the master key file of encrypted galleries (default: master.key in the user config folder)",
    KEYRING_DIR: "the keyrings of encrypted PostgreSQL galleries (default: keyrings in the user data folder)",
    DASK: "the Dask scheduler (tcp://host:8786) that runs the batch commands' image work (default: local workers)",
    SERVICE_SETTINGS: "the service's settings as JSON, passed by `faceprint serve` to its worker processes",
}


def _get(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


#: The URL schemes that name a database gallery (PostgreSQL) rather than a SQLite file.
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def gallery_path() -> Path | str:
    """``$FACEPRINT_GALLERY``, else ``gallery.db`` in the user's data folder. A database URL
    (``postgresql://`` or ``postgres://``) is returned as text, a file as a path."""
    value = _get(GALLERY)
    if value:
        return value if value.lower().startswith(DATABASE_URL_SCHEMES) else Path(value).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("faceprint")) / "gallery.db"


def models_dir() -> Path | None:
    """``$FACEPRINT_MODELS_DIR``, or None when unset."""
    value = _get(MODELS_DIR)
    return Path(value).expanduser() if value else None


def models_home() -> Path:
    """Where installed model packs live: ``$FACEPRINT_MODELS_DIR``, else ``models`` in the user
    data folder (packs go in its ``packs/`` subfolder, out of the way of loose ONNX files)."""
    value = _get(MODELS_DIR)
    if value:
        return Path(value).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("faceprint")) / "models"


def cache_dir() -> Path:
    """``$FACEPRINT_CACHE_DIR``, else the user cache folder for faceprint."""
    value = _get(CACHE_DIR)
    if value:
        return Path(value).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("faceprint"))


def dlib_runtime() -> str:
    """``$FACEPRINT_DLIB_RUNTIME`` lower-cased, ``""`` when unset (the caller validates it)."""
    return (_get(DLIB_RUNTIME) or "").lower()


def debug() -> bool:
    """Whether ``$FACEPRINT_DEBUG`` is set to something other than ``0``/``false``."""
    return (_get(DEBUG) or "0").lower() not in ("0", "false", "no", "off")


def log_level(default: str = "info") -> str:
    """``$FACEPRINT_LOG_LEVEL`` lower-cased, else ``default``."""
    return (_get(LOG_LEVEL) or default).lower()


def service_settings() -> str | None:
    """``$FACEPRINT_SERVICE_SETTINGS`` (JSON), or None when unset."""
    return _get(SERVICE_SETTINGS)


def dask_address() -> str | None:
    """``$FACEPRINT_DASK`` (a Dask scheduler address, checked where it is used), or None when unset."""
    return _get(DASK)


def master_key_file() -> Path:
    """``$FACEPRINT_MASTER_KEY_FILE``, else ``master.key`` in the user's config folder (which
    may not exist: an encrypted gallery then asks for a key)."""
    value = _get(MASTER_KEY_FILE)
    if value:
        return Path(value).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("faceprint")) / "master.key"


def keyring_dir() -> Path:
    """``$FACEPRINT_KEYRING_DIR``, else ``keyrings`` in the user's data folder: where an
    encrypted database gallery's keyring file is (kept out of the database, so that its
    backups and replicas hold ciphertext only)."""
    value = _get(KEYRING_DIR)
    if value:
        return Path(value).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("faceprint")) / "keyrings"


def master_key_file_set() -> bool:
    """Whether ``$FACEPRINT_MASTER_KEY_FILE`` is set (then a missing file is an error, not
    "no key")."""
    return _get(MASTER_KEY_FILE) is not None


def shared_data(repo_root: Path) -> Path:
    """``$FACEPRINT_SHARED_DATA``, else ``../shared/data`` beside the repository at ``repo_root``."""
    value = _get(SHARED_DATA)
    return Path(value).expanduser() if value else repo_root.parent / "shared" / "data"


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity mask, not the machine's): the one
    default for every ``--jobs`` / ``jobs=None`` in faceprint."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    n: int | None
    if count is not None:
        n = count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count()
    return max(1, n or 1)
