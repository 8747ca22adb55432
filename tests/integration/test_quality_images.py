"""Face quality on the shipped faces (tests/data/faces), with dlib's pipeline and the default
(fr-detect + fr-landmark + fr-feature, when the pack is installed): a blurred or tiny copy of a
face scores lower than the original, and the embedding norm counts only where it is informative."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceprint import Analyzer
from faceprint.imageio import load_image
from faceprint.quality import assess
from tests.conftest import face_image, needs_pack

PIPELINES = ["dlib-resnet34", "fr-feature"]


@pytest.fixture(scope="module", params=PIPELINES)
def analyzer(request: pytest.FixtureRequest) -> Analyzer:
    if request.param == "fr-feature":
        needs_pack()
    return Analyzer(embedder=request.param)


def _blurred(rgb: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), 3.0)  # on these ~100-200 px faces: under full sharpness marks, face still found


def _tiny(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (rgb.shape[1] // 3, rgb.shape[0] // 3), interpolation=cv2.INTER_AREA)


def _largest(analyzer: Analyzer, rgb: np.ndarray):
    faces = analyzer.embed_faces(rgb, analyzer.detect_array(rgb))
    assert faces, "the face must still be found"
    return faces[0]


@pytest.mark.parametrize("name", ["collins.jpg", "hopper.jpg"])
def test_a_blurred_or_tiny_copy_scores_lower(analyzer, name):
    rgb = load_image(face_image(name))
    original = _largest(analyzer, rgb)
    assert original.quality is not None and original.quality.reasons == () and original.quality.score > 0.7
    blurred = _largest(analyzer, _blurred(rgb))
    tiny = _largest(analyzer, _tiny(rgb))
    assert blurred.quality is not None and tiny.quality is not None
    assert blurred.quality.score < original.quality.score
    assert blurred.quality.measures["sharpness"] < original.quality.measures["sharpness"]
    assert tiny.quality.score < original.quality.score and "small" in tiny.quality.reasons


def test_the_norm_factor_only_where_the_model_s_norm_is_informative(analyzer):
    rgb = load_image(face_image("collins.jpg"))
    embedded = _largest(analyzer, rgb)
    face_quality, quality = embedded.face.quality, embedded.quality
    assert face_quality is not None and quality is not None
    assert "embedding_norm" not in face_quality.factors  # detection alone has no embedding
    if analyzer.embedder_card.name == "fr-feature":
        assert embedded.embedding_norm is not None and 2.0 < embedded.embedding_norm < 6.0
        assert "embedding_norm" in quality.factors
        assert quality.score == pytest.approx(face_quality.score * quality.factors["embedding_norm"])
    else:  # dlib's ResNet: its norm was measured uninformative, and it reports none
        assert embedded.embedding_norm is None and "embedding_norm" not in quality.factors
        assert quality.score == pytest.approx(face_quality.score)
    # The gallery's assess() gives the same score from the embedded face.
    assert assess(embedded).score == pytest.approx(quality.score)


def test_the_batch_engine_gives_the_same_quality(analyzer):
    path = face_image("two_people.jpg")
    (result,) = list(analyzer.embed_many([str(path)]))
    direct = analyzer.embed(str(path))
    assert len(result.faces) == len(direct) == 2
    for a, b in zip(result.faces, direct):
        assert a.quality is not None and b.quality is not None
        assert a.quality.score == pytest.approx(b.quality.score, abs=1e-4)
        assert set(a.quality.factors) == set(b.quality.factors)
        assert a.to_dict()["quality"]["reasons"] == []
