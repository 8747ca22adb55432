import numpy as np

from faceprint.quality import QualityPolicy, assess, sharpness
from faceprint.types import Box, Face, Landmarks, Pose


def _face(side: float, yaw: float = 0.0, pitch: float = 0.0) -> Face:
    return Face(Box(0, 0, side, side), 1.0, Landmarks(np.zeros((5, 2)), "dlib5"), Pose(yaw, pitch, 0.0))


def _chip(sharp: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    if sharp:
        return rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    return np.full((150, 150, 3), 128, np.uint8)


def test_a_large_frontal_sharp_face_is_good():
    q = assess(_face(120), _chip(True))
    assert q.score == 1.0 and q.reasons == ()


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
