import math
from types import MappingProxyType

import numpy as np
import pytest

from faceprint.quality import (
    EMBEDDING_NORM_RAMPS,
    QUALITY_CHIP_SIZE,
    QualityPolicy,
    Ramp,
    assess,
    measure,
    quality_chip,
    rate,
    sharpness,
)
from faceprint.types import Box, EmbeddedFace, Face, Landmarks, Pose, Quality


def _face(side: float, yaw: float = 0.0, pitch: float = 0.0, *, score: float = 1.0, detector: str = "",
          quality: Quality | None = None) -> Face:
    return Face(Box(0, 0, side, side), score, Landmarks(np.zeros((5, 2)), "dlib5"), Pose(yaw, pitch, 0.0),
                detector=detector, quality=quality)


def _chip(sharp: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    if sharp:
        return rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    return np.full((150, 150, 3), 128, np.uint8)


def _embedded(face: Face, model: str, norm: float | None) -> EmbeddedFace:
    return EmbeddedFace(face=face, embedding=np.ones(4, np.float32) / 2, model=model, embedding_norm=norm)


def test_a_large_frontal_sharp_face_is_good():
    q = assess(_face(120), _chip(True))
    assert q.score == 1.0 and q.reasons == ()
    assert set(q.factors) == {"size", "pose", "sharpness"}


def test_each_problem_is_named():
    assert "small" in assess(_face(30), _chip(True)).reasons
    assert "pose" in assess(_face(120, yaw=60), _chip(True)).reasons
    assert "pose" in assess(_face(120, pitch=-50), _chip(True)).reasons
    flat = assess(_face(120), _chip(False))
    assert "blur" in flat.reasons and flat.score == 0.0


def test_score_falls_with_size_and_policy_is_configurable():
    scores = [assess(_face(s), _chip(True)).score for s in (25, 40, 60, 80, 120)]
    assert scores == sorted(scores) and scores[0] < scores[-1]
    assert "small" not in assess(_face(30), _chip(True), QualityPolicy(min_face_size=20)).reasons


def test_sharpness_of_flat_and_noisy_chips():
    assert sharpness(_chip(False)) == 0.0
    assert sharpness(_chip(True)) > 1000


def test_the_score_is_the_product_of_the_factors_and_to_dict_shows_them():
    q = rate(60.0, Pose(20.0, 5.0, 0.0), 30.0, detector="hog", detector_score=0.5)
    assert q.score == pytest.approx(math.prod(q.factors.values()))
    assert 0.0 < q.score < 1.0 and q.reasons == ()
    d = q.to_dict()
    assert set(d) == {"score", "factors", "reasons", "measures"}
    assert set(d["factors"]) == {"size", "pose", "sharpness", "detector_score"}
    assert d["measures"]["size"] == 60.0 and d["measures"]["detector_score"] == 0.5 and d["reasons"] == []
    assert q.size == 60.0 and q.sharpness == 30.0


def test_a_missing_measure_is_no_factor():
    q = rate(120.0, None, None)
    assert q.factors == {"size": 1.0} and q.score == 1.0 and set(q.measures) == {"size"}


def test_ramp():
    r = Ramp(2.0, 4.0, floor=2.5)
    assert r(1.0) == 0.0 and r(3.0) == pytest.approx(0.5) and r(5.0) == 1.0
    assert r.below_floor(2.4) and not r.below_floor(2.6)
    assert not Ramp(0.0, 1.0).below_floor(-10.0)


def test_the_norm_factor_counts_only_for_models_whose_norm_is_informative():
    low = rate(120.0, None, 100.0, embedder="fr-feature", embedding_norm=2.0)
    assert low.factors["embedding_norm"] == 0.0 and low.score == 0.0 and low.reasons == ("indistinct",)
    good = rate(120.0, None, 100.0, embedder="fr-feature", embedding_norm=4.2)
    assert good.factors["embedding_norm"] == 1.0 and good.reasons == ()
    # dlib's ResNet (measured: not informative) and an unknown model: the norm is shown, not scored.
    for model in ("dlib-resnet34", "my-onnx-model"):
        q = rate(120.0, None, 100.0, embedder=model, embedding_norm=0.1)
        assert "embedding_norm" not in q.factors and q.measures["embedding_norm"] == pytest.approx(0.1)
        assert q.score == 1.0 and q.reasons == ()
    assert "fr-feature" in EMBEDDING_NORM_RAMPS and "dlib-resnet34" not in EMBEDDING_NORM_RAMPS


def test_assess_an_embedded_face_by_its_model_name():
    face = _face(120, quality=rate(120.0, None, 100.0))
    fr = assess(_embedded(face, "fr-feature@0.0.1", 2.9))
    assert 0.0 < fr.factors["embedding_norm"] < 1.0 and fr.score == pytest.approx(fr.factors["embedding_norm"])
    dlib = assess(_embedded(face, "dlib-resnet34@v1", 0.5))
    assert "embedding_norm" not in dlib.factors and dlib.score == 1.0
    without_norm = assess(_embedded(face, "fr-feature@0.0.1", None))
    assert "embedding_norm" not in without_norm.factors


def test_the_detector_score_counts_for_measured_detectors_only():
    weak, strong = rate(120.0, None, None, detector="hog", detector_score=0.2), rate(120.0, None, None, detector="hog", detector_score=2.0)
    assert weak.score < strong.score == 1.0
    other = rate(120.0, None, None, detector="fr-detect", detector_score=0.8)
    assert "detector_score" not in other.factors and other.measures["detector_score"] == pytest.approx(0.8)


def test_the_policy_carries_its_own_model_tables():
    policy = QualityPolicy(embedding_norms=MappingProxyType({"my-model": Ramp(10.0, 20.0, floor=12.0)}),
                           detector_scores=MappingProxyType({}))
    q = rate(120.0, None, None, detector="hog", detector_score=0.0, embedder="my-model", embedding_norm=11.0, policy=policy)
    assert q.factors == {"size": 1.0, "embedding_norm": pytest.approx(0.1)} and q.reasons == ("indistinct",)


def test_sharpness_measured_at_detection_wins_over_a_chip():
    measured = _face(120, quality=rate(120.0, None, 3.0))  # blurred when it was detected
    assert "blur" in assess(measured, _chip(True)).reasons
    assert "blur" not in assess(_face(120), _chip(True)).reasons  # a face made by hand: the chip


def test_quality_chip_puts_the_eyes_on_the_template():
    rgb = np.zeros((200, 300, 3), np.uint8)
    rgb[95:106, 95:106] = 255  # two white squares where the eye centres are
    rgb[95:106, 155:166] = 255
    marks = Landmarks(np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 130.0], [110.0, 150.0], [150.0, 150.0]]),
                      "arcface5")
    face = Face(Box(70, 60, 190, 180), 1.0, marks)
    chip = quality_chip(rgb, face)
    assert chip.shape == (QUALITY_CHIP_SIZE, QUALITY_CHIP_SIZE, 3) and chip.dtype == np.uint8
    assert chip[52, 38].min() > 200 and chip[52, 73].min() > 200 and chip[52, 56].max() < 50
    q = measure(rgb, face)
    assert q.sharpness is not None and q.sharpness > 0 and set(q.factors) == {"size", "sharpness"}  # no pose given
