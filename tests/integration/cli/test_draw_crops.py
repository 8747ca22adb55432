"""``detect --draw OUT.jpg``, ``detect --crops DIR`` and ``identify --draw``: pictures of the
results, on real photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from faceprint.draw import place_labels
from faceprint.types import Box
from tests.conftest import face_image

FACEPRINT = str(Path(sys.executable).with_name("faceprint"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FACEPRINT, *args], capture_output=True, text=True, timeout=600)


def _changed_at(before: np.ndarray, after: np.ndarray, box: list[float]) -> bool:
    """Whether the picture differs from the photo along the box's top edge (the line drawn)."""
    x1, y1, x2, _ = (int(round(v)) for v in box)
    y = min(max(y1, 0), before.shape[0] - 1)
    strip = np.abs(before[y, x1:x2].astype(int) - after[y, x1:x2].astype(int))
    return float(strip.mean()) > 30  # JPEG noise is a few levels; a drawn line is far more


def test_detect_draw_and_crops(tmp_path: Path) -> None:
    photo = face_image("two_people.jpg")
    drawing, crops = tmp_path / "boxes.jpg", tmp_path / "crops"
    run = _run("detect", str(photo), "--draw", str(drawing), "--crops", str(crops), "--json")
    assert run.returncode == 0, run.stderr
    entry = json.loads(run.stdout)["results"][0]
    faces = entry["faces"]
    assert len(faces) == 2
    original = np.asarray(Image.open(photo).convert("RGB"))
    picture = np.asarray(Image.open(drawing).convert("RGB"))
    assert picture.shape == original.shape  # the photo's own size
    for face in faces:
        assert _changed_at(original, picture, face["box"])
    assert entry["drawing"] == str(drawing)
    files = sorted(crops.glob("*.jpg"))
    assert [f.name for f in files] == ["two_people_face0.jpg", "two_people_face1.jpg"]  # one per face
    assert sorted(entry["crops"]) == [str(f) for f in files]
    for f in files:  # the embedder's chips: square, e.g. 112 (fr-feature) or 150 (dlib)
        w, h = Image.open(f).size
        assert w == h and 96 <= w <= 160


def test_detect_draw_into_a_folder_for_several_images(tmp_path: Path) -> None:
    out = tmp_path / "drawn"
    run = _run("detect", str(face_image("collins.jpg")), str(face_image("hopper.jpg")), "--draw", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["collins_faces.jpg", "hopper_faces.jpg"]


def test_labels_of_close_faces_do_not_collide() -> None:
    # Three faces side by side, closer than a label is wide: a group photo's back row.
    boxes = [Box(100 + 30 * i, 100, 128 + 30 * i, 130) for i in range(3)]
    rects = place_labels(boxes, [(90.0, 14.0)] * 3, 400, 300)
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_identify_draw_names_the_faces(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    enrol = _run("--gallery", str(gallery), "enroll", "Eileen Collins", str(face_image("collins.jpg")), "--json")
    assert enrol.returncode == 0, enrol.stderr
    probe = face_image("collins_2.jpg")
    drawing = tmp_path / "who.jpg"
    run = _run("--gallery", str(gallery), "identify", str(probe), "--draw", str(drawing), "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    [result] = doc["results"]
    [face] = result["faces"]
    assert face["identity"] == "Eileen Collins" and result["drawing"] == str(drawing)
    original = np.asarray(Image.open(probe).convert("RGB"))
    picture = np.asarray(Image.open(drawing).convert("RGB"))
    assert picture.shape == original.shape and _changed_at(original, picture, face["box"])
