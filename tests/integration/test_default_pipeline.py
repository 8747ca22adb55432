"""The default pipeline on real photos when the Faceplugin pack is installed, and the promise that
comes with changing a default: galleries made with dlib keep running dlib (library, CLI, service).
Runs on the public-domain faces shipped in tests/data/faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint import Analyzer
from faceprint.gallery import Gallery
from faceprint.models.defaults import BUILTIN_MODELS, PipelineModels
from tests.conftest import face_image, needs_pack
from tests.integration.test_cli import faceprint, one_json

COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, HOPPER_2 = face_image("hopper.jpg"), face_image("hopper_2.jpg")


@pytest.fixture(autouse=True)
def _pack() -> None:
    needs_pack()


@pytest.fixture
def dlib_gallery(tmp_path: Path) -> Path:
    """A gallery enrolled with dlib's models, as every gallery was before the pack."""
    path = tmp_path / "dlib.db"
    with Gallery.open(path, analyzer=Analyzer(embedder="dlib-resnet34")) as gallery:
        gallery.enroll("Collins", [COLLINS])
        gallery.enroll("Hopper", [HOPPER])
    return path


def test_the_default_is_the_pack_pipeline_and_verifies_the_shipped_faces():
    analyzer = Analyzer()
    chosen = PipelineModels(analyzer.detector_card.name, analyzer.landmarks_card.name, analyzer.embedder_card.name)
    assert chosen == PipelineModels("fr-detect", "fr-landmark", "fr-feature")
    same = analyzer.verify(COLLINS, COLLINS_2)
    assert same.match and same.model == "fr-feature@0.0.1" and same.threshold_source == "calibrated"
    assert not analyzer.verify(COLLINS, HOPPER_2).match
    (face,) = analyzer.embed(COLLINS)
    assert face.embedding.shape == (512,) and face.face.landmarks.scheme == "arcface5"


def test_landmarks68_come_from_fr_landmark_itself():
    # fr-landmark computes 68 points; they are given as they are (no dlib68, whose training data
    # forbids commercial use), and its 5 points are the ones derived from them.
    (face,) = Analyzer(landmarks68=True).detect(COLLINS)
    assert face.landmarks68 is not None and face.landmarks68.scheme == "ibug68"
    assert face.landmarks68.points.shape == (68, 2)
    eye = face.landmarks68.points[36:42].mean(axis=0)  # one eye's 6 points; arcface5 starts with the eyes
    assert np.linalg.norm(face.landmarks.points[:2] - eye, axis=1).min() < 5


def test_a_dlib_gallery_keeps_identifying_with_dlib(dlib_gallery: Path):
    with Gallery.open(dlib_gallery) as gallery:
        a = gallery.analyzer
        assert PipelineModels(a.detector_card.name, a.landmarks_card.name, a.embedder_card.name) == BUILTIN_MODELS
        (found,) = gallery.identify(COLLINS_2)
        assert found.identity == "Collins" and gallery.model_id == "dlib-resnet34@v1"
    # A new gallery pins the default models at its first enrolment.
    with Gallery.open(dlib_gallery.with_name("new.db")) as fresh:
        fresh.enroll("Collins", [COLLINS])
        assert fresh.model_id == "fr-feature@0.0.1" and fresh.store.model() == ("fr-feature@0.0.1", 512)
        (found,) = fresh.identify(COLLINS_2)
        assert found.identity == "Collins"


def test_the_cli_and_the_service_use_the_gallerys_model(dlib_gallery: Path):
    proc = faceprint("--gallery", str(dlib_gallery), "identify", str(HOPPER_2), "--json")
    assert proc.returncode == 0, proc.stderr
    (result,) = one_json(proc)["results"]
    (face,) = result["faces"]
    # Decided at dlib-resnet34's own FAR 1e-3 threshold (fr-feature's is 0.3363).
    assert face["identity"] == "Hopper" and face["threshold"] == pytest.approx(0.9258, abs=1e-3)

    from faceprint.service.settings import Settings
    from faceprint.service.state import Service

    service = Service(Settings(gallery=dlib_gallery))
    try:
        assert service.analyzer.model_id == "dlib-resnet34@v1" and service.analyzer.detector_card.name == "hog"
    finally:
        service.close()
