"""The crops kept for enrolling from a track: the best faces, bounded in number and size."""

from __future__ import annotations

import numpy as np

from faceprint.types import Box
from faceprint.video.enroll import MAX_FACE_SIDE, BestCrops, crop_around
from tests.unit.video.scripted import face


def test_crop_around_grows_clips_and_shrinks_large_faces():
    rgb = np.zeros((360, 640, 3), np.uint8)
    assert crop_around(rgb, Box(100, 100, 180, 200)).shape == (200, 160, 3)  # twice the box
    assert crop_around(rgb, Box(0, 0, 80, 100)).shape == (150, 120, 3)  # clipped at the edges
    big = crop_around(np.zeros((1080, 1920, 3), np.uint8), Box(700, 200, 1200, 800))
    assert max(big.shape[:2]) <= 2 * MAX_FACE_SIDE + 1


def test_best_crops_keeps_the_best_of_recent_tracks():
    rgb = np.zeros((100, 100, 3), np.uint8)
    vector = np.eye(8, dtype=np.float32)[0]
    crops = BestCrops(n=2, max_tracks=2)
    for frame, quality in enumerate((0.3, 0.9, 0.5, 0.9, 0.1)):
        crops.offer(1, frame, rgb, face((10, 10, 40, 40), vector, quality=quality))
    assert [(c.frame, c.quality) for c in crops.best(1)] == [(1, 0.9), (3, 0.9)]
    crops.offer(2, 0, rgb, face((10, 10, 40, 40), vector))
    crops.offer(3, 0, rgb, face((10, 10, 40, 40), vector))
    assert crops.best(1) == [] and crops.best(3)  # the oldest track forgotten
