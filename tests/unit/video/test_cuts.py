"""Scene cuts from colour-histogram jumps: synthetic shots, and the hamilton clip's three cuts."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.video.cuts import CutDetector, colour_histogram, histogram_distance
from faceprint.video.source import open_source
from tests.conftest import shared


def shot(colours: list[tuple[int, int, int]], n: int, seed: int) -> list[np.ndarray]:
    """``n`` frames of one scene: vertical stripes of ``colours`` that drift sideways, with noise
    and a slow brightness change (what moves within a shot)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        x = (np.arange(320) + 3 * i) // 40 % len(colours)
        row = np.array(colours, np.float32)[x]
        frame = np.repeat(row[None], 180, axis=0) * (1.0 - 0.01 * i) + rng.normal(0, 6, (180, 320, 3))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def test_cuts_between_shots_and_none_within() -> None:
    first = shot([(200, 40, 40), (230, 200, 60), (90, 60, 30)], 15, 1)
    second = shot([(30, 60, 200), (40, 160, 170), (20, 20, 60)], 15, 2)
    third = shot([(60, 170, 60), (200, 40, 40), (240, 240, 240)], 15, 3)
    detector = CutDetector()
    cuts = [i for i, rgb in enumerate(first + second + third) if detector(rgb)]
    assert cuts == [15, 30]
    assert detector.last_distance is not None and detector.last_distance < 0.35


def test_first_frame_reset_and_distances() -> None:
    frames = shot([(200, 40, 40), (30, 60, 200)], 2, 4)
    detector = CutDetector()
    assert detector(frames[0]) is False and detector.last_distance is None
    red = np.full((90, 160, 3), (220, 30, 30), np.uint8)
    blue = np.full((90, 160, 3), (30, 30, 220), np.uint8)
    assert detector(red) is True
    detector.reset()
    assert detector(blue) is False
    assert histogram_distance(colour_histogram(red), colour_histogram(red)) == pytest.approx(0.0, abs=1e-6)
    assert histogram_distance(colour_histogram(red), colour_histogram(blue)) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(InvalidArgumentError):
        CutDetector(threshold=1.5)


@pytest.mark.shared_data
def test_hamilton_cuts_are_the_manifests() -> None:
    detector = CutDetector()
    source = open_source(shared("face_recognition_examples", "examples", "short_hamilton_clip.mp4"))
    assert [frame.index for frame in source if detector(frame.rgb)] == [20, 82, 211]
