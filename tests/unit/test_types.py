import numpy as np
import pytest

from faceprint.errors import FaceIndexError, ModelMismatchError, NoFaceError
from faceprint.pipeline import DetectionPolicy, select_face
from faceprint.types import Box, EmbeddedFace, Face, Landmarks


def _face(x1, y1, x2, y2):
    return Face(Box(x1, y1, x2, y2), 1.0, Landmarks(np.zeros((5, 2)), "dlib5"))


def test_box_geometry():
    a, b = Box(0, 0, 10, 10), Box(5, 0, 15, 10)
    assert a.area == 100 and a.center == (5, 5)
    assert a.iou(b) == pytest.approx(50 / 150)
    assert a.iou(Box(20, 20, 30, 30)) == 0.0
    assert Box(-5, -5, 50, 50).clipped(40, 30) == Box(0, 0, 40, 30)


def test_landmarks_validate_their_scheme():
    with pytest.raises(ValueError):
        Landmarks(np.zeros((4, 2)), "dlib5")
    with pytest.raises(ValueError):
        Landmarks(np.zeros((5, 2)), "nonsense")
    marks = Landmarks(np.array([[9, 1], [7, 1], [1, 1], [3, 1], [5, 4]], float), "dlib5")
    assert marks["nose_base"] == (5.0, 4.0)
    left, right = marks.eye_centers()
    assert left[0] < right[0]


def test_select_face_explains_its_choice():
    faces = [_face(0, 0, 100, 100), _face(0, 0, 50, 50)]
    assert select_face(faces[:1], None) == (0, "only")
    assert select_face(faces, None) == (0, "largest")
    assert select_face(faces, 1) == (1, "index")
    with pytest.raises(FaceIndexError) as info:
        select_face(faces, 2)
    assert info.value.code == "face_not_found"
    with pytest.raises(NoFaceError):
        select_face([], None)


def test_embeddings_of_different_models_do_not_compare():
    v = np.ones(4, np.float32) / 2
    a = EmbeddedFace(_face(0, 0, 1, 1), v, "m@1")
    b = EmbeddedFace(_face(0, 0, 1, 1), v, "other@1")
    assert a.similarity(a) == pytest.approx(1.0)
    with pytest.raises(ModelMismatchError) as info:
        a.similarity(b)
    assert info.value.code == "model_mismatch"


@pytest.mark.parametrize(
    "size,expected",
    [((150, 150), (1.0, 1)), ((640, 480), (1.0, 1)), ((1280, 960), (1.0, 0)), ((4000, 3000), (0.4, 0))],
)
def test_detection_policy_downscales_big_and_upsamples_small(size, expected):
    scale, up = DetectionPolicy().plan(*size)
    assert (round(scale, 3), up) == expected
    assert DetectionPolicy(upsample=2).plan(*size)[1] == 2
