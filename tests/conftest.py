"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint import settings

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


@pytest.fixture(scope="session")
def analyzer():
    from faceprint import Analyzer

    return Analyzer()
