"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint import settings
from tests.postgres import postgres_server, postgres_url  # noqa: F401  (a real PostgreSQL: tests/postgres.py)

#: Where a gallery can be: the suites of the gallery, people and service run on each (one
#: parametrised fixture, so behaviour cannot drift between them).
GALLERY_BACKENDS = ("sqlite", "postgresql")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = settings.shared_data(REPO)
#: Small public-domain face images shipped with the tests (see tests/data/faces/README.md).
FACES = REPO / "tests" / "data" / "faces"


def shared(*parts: str) -> Path:
    """A path under ../shared/data; skips the calling test when the data is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared test data at {path} (absent on this machine)")
    return path


def face_image(name: str) -> Path:
    """A shipped test image: collins.jpg, collins_2.jpg, hopper.jpg, hopper_2.jpg,
    two_people.jpg or no_face.png. Never skips: these are part of the repository."""
    path = FACES / name
    assert path.is_file(), f"missing shipped test image {path}"
    return path


def needs_pack(name: str = "faceplugin") -> None:
    """Skip the calling test, naming the install command, when model pack ``name`` is absent."""
    from faceprint.models import packs

    if not packs.installed(name, verify=False):
        pytest.skip(packs.PACKS[name].missing_message)


def default_model_id() -> str:
    """``name@version`` of the default embedder here: fr-feature's with the pack, else dlib's."""
    from faceprint import models
    from faceprint.models.defaults import default_models

    return models.get_card(default_models().embedder, "embedder").id


def default_dim() -> int:
    """The default embedder's embedding size: 512 (fr-feature) with the pack, else 128 (dlib)."""
    from faceprint import models
    from faceprint.models.defaults import default_models

    dim = models.get_card(default_models().embedder, "embedder").embedding_dim
    assert dim is not None
    return dim


def default_threshold(far: float = 1e-3) -> float:
    """The default embedder's calibrated threshold at ``far``."""
    from faceprint import models
    from faceprint.models.defaults import default_models

    return models.get_card(default_models().embedder, "embedder").threshold_for(far)


@pytest.fixture(scope="session")
def analyzer():
    """The default pipeline: fr-detect + fr-landmark + fr-feature with the pack, else dlib's."""
    from faceprint import Analyzer

    return Analyzer()


@pytest.fixture(scope="session")
def dlib_analyzer():
    """hog + dlib5 + dlib-resnet34, whatever is installed: for checks against references that
    face_recognition (dlib's models) asserts."""
    from faceprint import Analyzer

    return Analyzer(embedder="dlib-resnet34")


def new_gallery_location(request: pytest.FixtureRequest, folder: Path, backend: str, name: str = "gallery.db") -> Path | str:
    """Where a new, empty gallery of ``backend`` is: a file in ``folder`` (SQLite), or a fresh
    database on the session's PostgreSQL (``postgres_server``; skips without pgserver)."""
    if backend == "sqlite":
        return folder / name
    server = request.getfixturevalue("postgres_server")
    return str(server.url(server.create_database()))


@pytest.fixture(params=GALLERY_BACKENDS)
def gallery_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new gallery's location on each backend (a file, or a fresh PostgreSQL database URL)."""
    return new_gallery_location(request, tmp_path, request.param)
