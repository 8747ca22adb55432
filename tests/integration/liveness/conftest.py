"""Test sequences for liveness, assembled from real lfw_dev photos (no painted or warped edits).

Each photo (150x150) is cut to its central 110x110 (the border holds other people's faces in
several of them), enlarged 4x (a resize only) and placed at the same position in a black 640x480
frame, then held for k frames of a 30 fps sequence. The photos (docs/research/liveness.md lists
how they were found; each was checked by eye; numbers from bench/liveness_signals.py):

Hugo_Chavez
  0007 open, frontal (yaw ~0; EAR 0.30 fr-landmark / 0.27 dlib68) -- the baseline and rest pose
  0017 eyes closed (EAR 0.175 / 0.080)
  0063 lids lowered, looking down (EAR 0.139 / 0.152)
  0003 head turned to his own left: nose toward the image's right, yaw +45 (+40 dlib5)
  0006 head turned to his own right: nose toward the image's left, yaw -46 (-33 dlib5)
Vicente_Fox (another person, for the identity switch)
  0003 frontal, 0011 turned left (yaw +43), 0027 turned right (yaw -43)
Edmund_Stoiber
  0012 open frontal, 0010 eyes closed, 0005 turned left (yaw +32; dlib5's points read +9),
  0013 turned right (yaw -41)
Laura_Bush
  0014 open frontal (0007, the research's, shows another face at 41% of hers), 0003 eyes
  lowered (EAR 0.144 / 0.147), 0002 turned left (yaw +45), 0011 turned right (yaw -54)

Photos with a second face of similar size (Hugo_Chavez_0033: Lula; 0049; Vicente_Fox_0011) are
avoided as the one-face rule would fail them, or used where that does not decide the test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tests.conftest import shared

FPS = 30.0
FRAME_SIZE = (640, 480)  # (W, H)
CROP = 20  # pixels cut from each side of a 150x150 lfw_dev photo
SCALE = 4

#: A sequence: (photo, frames held) in order; a photo is "Identity_NNNN", or two joined by "+"
#: for a frame showing both side by side.
Sequence_ = Sequence[tuple[str, int]]

HUGO_OPEN, HUGO_CLOSED, HUGO_LIDS_DOWN = "Hugo_Chavez_0007", "Hugo_Chavez_0017", "Hugo_Chavez_0063"
HUGO_LEFT, HUGO_RIGHT = "Hugo_Chavez_0003", "Hugo_Chavez_0006"  # the user's own left (yaw > 0) / right (yaw < 0)
FOX_OPEN, FOX_LEFT, FOX_RIGHT = "Vicente_Fox_0003", "Vicente_Fox_0011", "Vicente_Fox_0027"
STOIBER_OPEN, STOIBER_CLOSED, STOIBER_LEFT, STOIBER_RIGHT = (
    "Edmund_Stoiber_0012", "Edmund_Stoiber_0010", "Edmund_Stoiber_0005", "Edmund_Stoiber_0013")
LAURA_OPEN, LAURA_CLOSED, LAURA_LEFT, LAURA_RIGHT = (
    "Laura_Bush_0014", "Laura_Bush_0003", "Laura_Bush_0002", "Laura_Bush_0011")

#: Hugo_Chavez answering blink:2, turn_left, turn_right. Each action starts 10 frames (1/3 s)
#: after the previous one ended: an action sooner than 0.2 s after its prompt does not count.
HUGO_BLINK2_LEFT_RIGHT: Sequence_ = (
    (HUGO_OPEN, 10), (HUGO_CLOSED, 4), (HUGO_OPEN, 10), (HUGO_LIDS_DOWN, 4), (HUGO_OPEN, 10),
    (HUGO_LEFT, 8), (HUGO_OPEN, 10), (HUGO_RIGHT, 8), (HUGO_OPEN, 6),
)


def photo_path(name: str) -> str:
    identity = name.rsplit("_", 1)[0]
    return str(shared("lfw_dev", "images", identity, f"{name}.jpg"))


def photo_rgb(name: str, scale: float = SCALE) -> np.ndarray:
    """The photo's central part, enlarged ``scale`` times (cv2 cubic resize)."""
    import cv2

    bgr = cv2.imread(photo_path(name))
    assert bgr is not None, name
    cut = cv2.cvtColor(bgr[CROP:-CROP, CROP:-CROP], cv2.COLOR_BGR2RGB)
    big: np.ndarray = cv2.resize(cut, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return big


def make_frame(name: str) -> np.ndarray:
    """A 640x480 frame showing ``name`` (or two photos joined by "+", side by side) at a fixed place."""
    w, h = FRAME_SIZE
    frame = np.zeros((h, w, 3), np.uint8)
    names = name.split("+")
    if len(names) == 1:
        img = photo_rgb(name)
        y, x = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
        frame[y:y + img.shape[0], x:x + img.shape[1]] = img
        return frame
    for i, part in enumerate(names):  # two photos, each in its half
        img = photo_rgb(part, scale=2.6)
        y, x = (h - img.shape[0]) // 2, i * (w // 2) + (w // 2 - img.shape[1]) // 2
        frame[y:y + img.shape[0], x:x + img.shape[1]] = img
    return frame


def blank_frame() -> np.ndarray:
    w, h = FRAME_SIZE
    return np.full((h, w, 3), 96, np.uint8)


@dataclass(frozen=True)
class Timed:
    """A frame of a sequence: its photo and its time."""

    name: str
    time_s: float


def timeline(sequence: Sequence_, start_s: float = 0.0) -> Iterator[Timed]:
    i = 0
    for name, frames in sequence:
        for _ in range(frames):
            yield Timed(name, start_s + i / FPS)
            i += 1


def frames_of(sequence: Sequence_) -> list[np.ndarray]:
    """The sequence's frames as arrays (one array per distinct photo, repeated)."""
    cache: dict[str, np.ndarray] = {}
    out = []
    for item in timeline(sequence):
        if item.name not in cache:
            cache[item.name] = blank_frame() if item.name == "blank" else make_frame(item.name)
        out.append(cache[item.name])
    return out


class Pipeline:
    """An Analyzer and each distinct photo's :class:`FrameSignals` read with it (once)."""

    def __init__(self, name: str, analyzer: object) -> None:
        from faceprint.liveness.signals import SignalReader

        self.name = name
        self.analyzer = analyzer
        self.reader = SignalReader(analyzer)  # type: ignore[arg-type]
        self.cache: dict[str, object] = {}

    def signals(self, name: str) -> Any:
        if name not in self.cache:
            self.cache[name] = self.reader.read(blank_frame() if name == "blank" else make_frame(name))
        return self.cache[name]


@pytest.fixture(scope="module", params=["default", "dlib"])
def pipeline(request: pytest.FixtureRequest) -> Pipeline:
    """The default pipeline (fr-detect + fr-landmark + fr-feature with the pack) and dlib's
    (hog + dlib5 + dlib68 for the eyes + dlib-resnet34): the check must work with either."""
    return Pipeline(request.param, request.getfixturevalue("analyzer" if request.param == "default" else "dlib_analyzer"))
