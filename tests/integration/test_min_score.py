"""The detectors' minimum score (card ``min_score``, ``Analyzer(min_score=)``, ``--min-score``):
measured in bench/min_score.py so that the false positive ``make demo`` used to show first (HOG's
"face" on the suit patch of NASA's astronaut portrait, score 0.12) is gone, while real faces stay."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from faceprint import Analyzer, models
from faceprint.errors import InvalidArgumentError
from tests.conftest import needs_pack

ROOT = Path(__file__).resolve().parents[2]
FACEPRINT = str(Path(sys.executable).with_name("faceprint"))
#: Where the suit patch is in skimage's astronaut.png (512 x 512): well below the face.
PATCH_TOP = 300


@pytest.fixture(scope="module")
def demo_photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The two photos `make demo` shows (examples/demo.py), made the way the demo makes them."""
    pytest.importorskip("skimage")
    spec = importlib.util.spec_from_file_location("faceprint_demo", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return list(demo.sample_photos(tmp_path_factory.mktemp("demo")))


def _patch_faces(faces: list) -> list:
    return [f for f in faces if f.box.y1 > PATCH_TOP]


def test_every_builtin_detector_card_has_a_measured_min_score() -> None:
    for card in models.list_cards("detector"):
        if card.name in {"hog", "mmod", "haar", "fr-detect"}:
            assert card.min_score is not None, card.name
            assert card.to_dict()["min_score"] == card.min_score


def test_hog_default_drops_the_suit_patch_and_min_score_zero_brings_it_back(demo_photos: list[Path]) -> None:
    photo = demo_photos[0]
    default = Analyzer(detector="hog", embedder="dlib-resnet34")
    assert default.min_score == models.get_card("hog", "detector").min_score
    faces = default.detect(photo)
    assert len(faces) == 1 and not _patch_faces(faces)  # the astronaut, and nothing on her suit
    everything = default.detect(photo, min_score=0)  # per call
    assert len(everything) == 2 and len(_patch_faces(everything)) == 1
    assert _patch_faces(everything)[0].score < default.min_score  # type: ignore[operator]
    assert len(Analyzer(detector="hog", embedder="dlib-resnet34", min_score=0).detect(photo)) == 2


@pytest.mark.parametrize("detector", ["hog", "haar", "fr-detect"])
def test_the_demo_photos_show_one_face_each(detector: str, demo_photos: list[Path]) -> None:
    if detector == "fr-detect":
        needs_pack()
    analyzer = Analyzer(detector=detector)
    assert [len(analyzer.detect(p)) for p in demo_photos] == [1, 1]
    # ... where hog and haar gave a second "face" (on the suit patch or a corner) before
    if detector != "fr-detect":
        assert sum(len(analyzer.detect(p, min_score=-1e9)) for p in demo_photos) > 2


def test_min_score_travels_to_worker_processes() -> None:
    analyzer = Analyzer(detector="hog", embedder="dlib-resnet34", min_score=0.5)
    assert Analyzer(**analyzer.config()).min_score == 0.5


def test_nan_min_score_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        Analyzer(detector="hog", min_score=float("nan"))


def _cli_faces(*args: str) -> list[dict]:
    run = subprocess.run([FACEPRINT, "detect", "--json", *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["results"][0]["faces"]


def test_cli_min_score(demo_photos: list[Path]) -> None:
    photo = str(demo_photos[0])
    assert len(_cli_faces(photo, "--detector", "hog")) == 1
    faces = _cli_faces(photo, "--detector", "hog", "--min-score", "0")
    assert len(faces) == 2 and any(f["box"][1] > PATCH_TOP for f in faces)
