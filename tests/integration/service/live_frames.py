"""Webcam-like frames made from real lfw_dev photos, for the stream, liveness and webcam-panel tests.

Each photo's centre (the face, without the neighbours LFW's crops often show) is enlarged 4x by
a plain resize and placed at the same spot of a grey 640x480 frame, so that a sequence of photos
of one person reads as a face held in front of a camera: eyes open or closed, head turned.
Nothing is painted or warped. The photos (Hugo Chavez, docs/research/liveness.md section 3),
measured with the default pipeline (fr-landmark's 68 points, pose from the 5 points):

=================  =========================  ====  =====
photo              what it shows              EAR   yaw
=================  =========================  ====  =====
Hugo_Chavez_0007   eyes open, frontal         0.32    0
Hugo_Chavez_0017   eyes closed, frontal       0.19    0
Hugo_Chavez_0003   head turned to his left    0.28  +43
Hugo_Chavez_0006   head turned to his right   0.31  -45
=================  =========================  ====  =====

(yaw > 0 is the user's own left: :mod:`faceprint.liveness.challenge`). Another person for a
second identity: Vicente_Fox_0003.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image

from tests.conftest import shared

WIDTH, HEIGHT = 640, 480
OPEN, CLOSED, LEFT, RIGHT = "Hugo_Chavez_0007", "Hugo_Chavez_0017", "Hugo_Chavez_0003", "Hugo_Chavez_0006"
#: Other photos of the same person, for enrolment (not used in the sequences).
ENROL = ("Hugo_Chavez_0001", "Hugo_Chavez_0002", "Hugo_Chavez_0010")
OTHER_PERSON = "Vicente_Fox_0003"


def photo_path(name: str):
    person = name.rsplit("_", 1)[0]
    return shared("lfw_dev", "images", person, f"{name}.jpg")


@cache
def frame(name: str, crop: int = 100, size: int = 400) -> np.ndarray:
    """The photo's central ``crop`` pixels (of 150) resized to ``size`` on a grey 640x480 frame."""
    with Image.open(photo_path(name)) as im:
        m = (im.width - crop) // 2
        face = np.asarray(im.convert("RGB").crop((m, m, m + crop, m + crop)).resize((size, size), Image.BICUBIC))
    out = np.full((HEIGHT, WIDTH, 3), 120, np.uint8)
    y0, x0 = (HEIGHT - size) // 2, (WIDTH - size) // 2
    out[y0:y0 + size, x0:x0 + size] = face
    out.setflags(write=False)
    return out


@cache
def jpeg(name: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame(name)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def answer(action: str, count: int = 1) -> list[str]:
    """The photos that perform ``action`` (``count`` blinks) from a frontal, open-eyed face, and
    come back to it: frontal frames first (the prompt's reaction time; the eyes' baseline),
    then the action, then frontal again."""
    if action == "blink":
        return [OPEN, OPEN] + [CLOSED, OPEN, OPEN] * count
    turned = LEFT if action == "turn_left" else RIGHT
    return [OPEN, OPEN, turned, turned, turned, OPEN, OPEN]


#: Open frontal frames before the first step: the blink detector's open-eye baseline needs 5.
WARM_UP = [OPEN] * 5
