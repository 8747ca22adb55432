"""fr-detect on real photos (needs the faceplugin model pack; skips naming its install command).

Counts measured with bench/detection.py (bench/README.md, 'fr-detect detection policy').
Images go through what the pipeline does before detecting: downscaled to the default
DetectionPolicy's 1600 px, boxes mapped back.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from faceprint.imageio import load_image
from faceprint.models.base import RawDetection
from faceprint.models.faceplugin import detect
from faceprint.pipeline import DetectionPolicy
from tests.conftest import face_image, needs_pack, shared


@pytest.fixture(scope="module")
def detector() -> detect.FrDetector:
    needs_pack("faceplugin")
    return detect.FrDetector(detect.FR_DETECT_CARD)


def find(detector: detect.FrDetector, rgb: np.ndarray) -> list[RawDetection]:
    import cv2

    h, w = rgb.shape[:2]
    scale, upsample = DetectionPolicy().plan(w, h)
    work = rgb if scale >= 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return [RawDetection(d.box.scaled(1.0 / scale).clipped(w, h), d.score) for d in detector.detect(work, upsample)]


def match_noses(dets: list[RawDetection], noses: list[tuple[float, float]]) -> tuple[int, int]:
    """(noses inside a box, one box per nose; boxes holding no nose)."""
    free = list(noses)
    false_positives = 0
    for d in sorted(dets, key=lambda d: -d.score):
        inside = [n for n in free if d.box.x1 <= n[0] <= d.box.x2 and d.box.y1 <= n[1] <= d.box.y2]
        if inside:
            cx, cy = d.box.center
            free.remove(min(inside, key=lambda n: (n[0] - cx) ** 2 + (n[1] - cy) ** 2))
        else:
            false_positives += 1
    return len(noses) - len(free), false_positives


def compreface_noses() -> dict[str, list[tuple[float, float]]]:
    folder = shared("compreface_samples")
    noses: dict[str, list[tuple[float, float]]] = {}
    with open(folder / "face_counts.csv", newline="") as f:
        for row in csv.DictReader(f):
            noses[row["path"]] = []
    with open(folder / "noses.csv", newline="") as f:
        for row in csv.DictReader(f):
            noses[row["path"]].append((float(row["nose_x"]), float(row["nose_y"])))
    return noses


@pytest.mark.parametrize("name,count", [("collins.jpg", 1), ("hopper.jpg", 1), ("two_people.jpg", 2), ("no_face.png", 0)])
def test_shipped_faces(detector: detect.FrDetector, name: str, count: int) -> None:
    dets = find(detector, load_image(str(face_image(name))))
    assert len(dets) == count
    for d in dets:
        assert 0.0 < d.score <= 1.0 and d.landmarks is None


def test_two_people_boxes_are_on_the_two_faces(detector: detect.FrDetector) -> None:
    # two_people.jpg is the collins crop (left) and the hopper crop (right) on 480x250 grey
    dets = sorted(find(detector, load_image(str(face_image("two_people.jpg")))), key=lambda d: d.box.x1)
    assert dets[0].box.center[0] < 240 < dets[1].box.center[0]
    for d in dets:
        assert 40 <= d.box.height <= 200


def test_astronaut_has_one_face(detector: detect.FrDetector) -> None:
    # HOG finds a second "face" on the suit's patch
    import skimage

    path = Path(skimage.__file__).parent / "data" / "astronaut.png"
    dets = find(detector, load_image(str(path)))
    assert len(dets) == 1
    assert dets[0].box.x1 < 256 < dets[0].box.x2  # Eileen Collins' face, upper middle
    assert dets[0].box.y2 < 256


def test_compreface_noses_all_found_without_false_positives(detector: detect.FrDetector) -> None:
    # measured 46/46, 0 false positives (HOG with the default policy: 44, 1)
    folder = shared("compreface_samples")
    found = total = false_positives = 0
    for rel, noses in compreface_noses().items():
        f, fp = match_noses(find(detector, load_image(str(folder / rel))), noses)
        found, total, false_positives = found + f, total + len(noses), false_positives + fp
    assert total == 46
    assert found >= 45 and false_positives == 0


def test_small_faces_in_a_big_photo(detector: detect.FrDetector) -> None:
    """Nine compreface group photos (800 px wide, faces 36-110 px) on a 3x3 grid: 2400 px
    wide, so the pipeline hands the detector 1600 px and one 320x240 pass misses most faces.
    Measured: the pyramid 42/42, a single pass 24."""
    import cv2

    folder = shared("compreface_samples")
    groups = [(rel, noses) for rel, noses in compreface_noses().items() if len(noses) >= 2]
    cell_w, cell_h, n = 800, 534, 3
    canvas = np.full((cell_h * n, cell_w * n, 3), 128, np.uint8)
    all_noses: list[tuple[float, float]] = []
    for k in range(n * n):
        rel, noses = groups[k % len(groups)]
        rgb = load_image(str(folder / rel))
        h, w = rgb.shape[:2]
        r, c = divmod(k, n)
        canvas[r * cell_h : (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w] = cv2.resize(
            rgb, (cell_w, cell_h), interpolation=cv2.INTER_AREA
        )
        all_noses += [(c * cell_w + x * cell_w / w, r * cell_h + y * cell_h / h) for x, y in noses]
    found, false_positives = match_noses(find(detector, canvas), all_noses)
    assert len(all_noses) == 42
    assert found >= 40 and false_positives == 0
