import numpy as np
import pytest

from faceprint.align import ARCFACE_112_CHIP, ARCFACE_112_TEMPLATE, arcface5_points, extract_chip, similarity_transform
from faceprint.types import Box, Face, Landmarks


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(17.0), 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.array([[0, 0], [10, 0], [3, 7], [8, 9], [1, 5]], dtype=float)
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects():
    src = np.array([[0, 0], [1, 0], [0, 1]], dtype=float)
    mirrored = src * np.array([-1, 1])
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_arcface_chip_puts_landmarks_on_the_template():
    # Paint five dots where a face's landmarks are, warp, and find the dots on the template.
    img = np.zeros((400, 400, 3), np.uint8)
    src = ARCFACE_112_TEMPLATE * 2.3 + np.array([90.0, 60.0])
    for x, y in src:
        img[int(round(y)) - 3 : int(round(y)) + 4, int(round(x)) - 3 : int(round(x)) + 4] = 255
    face = Face(Box(80, 50, 350, 330), 1.0, Landmarks(src, "arcface5"))
    chip = extract_chip(img, face, ARCFACE_112_CHIP)
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
    for x, y in ARCFACE_112_TEMPLATE:
        assert chip[int(round(y)), int(round(x))].max() > 100


def test_arcface_points_from_68_and_refusal_from_dlib5():
    pts68 = np.arange(136, dtype=float).reshape(68, 2)
    face = Face(Box(0, 0, 10, 10), 1.0, Landmarks(np.zeros((5, 2)), "dlib5"), landmarks68=Landmarks(pts68, "ibug68"))
    got = arcface5_points(face)
    assert np.allclose(got[0], pts68[36:42].mean(axis=0)) and np.allclose(got[4], pts68[54])
    with pytest.raises(ValueError, match="mouth"):
        arcface5_points(Face(Box(0, 0, 10, 10), 1.0, Landmarks(np.zeros((5, 2)), "dlib5")))
