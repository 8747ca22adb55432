"""``fr-landmark``: the Faceplugin pack's 68-point landmark network (``model/fr_landmark.onnx``).

The network takes one grey 64x64 crop of a face box, float32 ``[1, 1, 64, 64]`` scaled
``x / 256``, and gives 136 numbers: the 68 iBUG 300-W points ``(x, y)``, each a fraction of
the crop's width and height. It runs on each detected box, cut as the package's JavaScript
cuts it (lib/fr_landmark.js, ``alignLandmarkImage`` with scale 1.0): the box itself, shifted
inside the image when it sticks out, resized to 64x64 (bilinear) and made grey.

The pipeline aligns ArcFace chips from 5 points, so :meth:`FrLandmarks.predict` gives the
``arcface5`` points derived from the 68 (:func:`faceprint.align.arcface5_from_ibug68`: eye
centres from the 6 points of each eye, the nose tip, the outer mouth corners);
:meth:`FrLandmarks.predict68` gives all 68.

Where this differs from the JavaScript: it maps the points back with the crop actually cut
(the JS uses the box it was given, wrong by the shift for a box that sticks out of the
image), and it makes grey from RGB with the standard weights (the JS converts an RGBA canvas
with ``COLOR_BGR2GRAY``, swapping the red and blue weights; on 150 lfw_dev faces the two
agree with dlib's 68 points equally well). The JS reduces 68 points to 5 differently (eyes
from 4 eyelid points, mouth corners averaged with the inner lip corners); faceprint uses the
same reduction as for dlib's 68 points.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from faceprint.align import arcface5_from_ibug68
from faceprint.errors import ModelFormatError
from faceprint.models.base import BuiltinModel
from faceprint.models.card import ModelCard
from faceprint.models.onnx.common import GraphOptimization, open_session, run_session
from faceprint.models.packs import FACEPLUGIN, pack_file
from faceprint.types import Box, Landmarks

logger = logging.getLogger(__name__)

#: The pack file holding the network.
MODEL_PATH = "model/fr_landmark.onnx"
#: The network's fixed input side (grey, square).
INPUT_SIZE = 64
#: Pixel scaling of the package's JavaScript: ``x / 256``.
PIXEL_SCALE = 256.0
N_POINTS = 68
#: Graph optimisation "all" (onnxruntime's default): about 4x faster than "extended" here
#: (bench/README.md, section 'Faceplugin models'). The file holds 26,567 denormal weights, but
#: unlike fr_feature's they cost under 0.1 ms a face (0.42-0.55 ms a crop with them, 0.36-0.44
#: flushed, 1 thread: bench/README.md, section 'End to end against face_recognition'; 0.2% of
#: an lfw_dev image's time), so the file runs as it is.
OPTIMIZATION: GraphOptimization = "all"
#: One intra-op thread: a 64x64 grey input gains nothing from more, and the batch engine
#: already runs one worker process per core.
THREADS = 1


@dataclass(frozen=True, slots=True)
class CropWindow:
    """The pixels cut for the network: columns ``x .. x + width``, rows ``y .. y + height``."""

    x: int
    y: int
    width: int
    height: int


def crop_window(box: Box, image_width: int, image_height: int) -> CropWindow:
    """The crop the package's JavaScript cuts for ``box``: the box (its corners truncated to
    whole pixels), shrunk only when it is larger than the image, shifted inside the image."""
    x1, y1, x2, y2 = int(box.x1), int(box.y1), int(box.x2), int(box.y2)
    box_w, box_h = max(abs(x2 - x1), 1), max(abs(y2 - y1), 1)
    scale = min((image_height - 1) / box_h, (image_width - 1) / box_w, 1.0)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = x1 + box_w / 2, y1 + box_h / 2
    left, top, right, bottom = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > image_width - 1:
        left, right = left - (right - image_width + 1), float(image_width - 1)
    if bottom > image_height - 1:
        top, bottom = top - (bottom - image_height + 1), float(image_height - 1)
    x, y = max(int(left), 0), max(int(top), 0)
    width = max(min(int(right - left), image_width - 1 - x), 1)
    height = max(min(int(bottom - top), image_height - 1 - y), 1)
    return CropWindow(x, y, width, height)


def network_input(image: np.ndarray, window: CropWindow) -> np.ndarray:
    """The ``[1, 1, 64, 64]`` float32 tensor for the ``window`` of an RGB uint8 ``image``."""
    import cv2

    crop = image[window.y : window.y + window.height, window.x : window.x + window.width]
    grey = cv2.cvtColor(cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2GRAY)
    return (grey.astype(np.float32) / PIXEL_SCALE)[None, None]


def points_in_image(output: np.ndarray, window: CropWindow) -> np.ndarray:
    """The network's 136 outputs (fractions of the crop) as ``(68, 2)`` image pixels."""
    rel = np.asarray(output, dtype=np.float64).reshape(N_POINTS, 2)
    return rel * (window.width, window.height) + (window.x, window.y)


class FrLandmarks:
    """The Faceplugin 68-point landmark network; :meth:`predict` gives ``arcface5`` points."""

    scheme = "arcface5"

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.path = pack_file(FACEPLUGIN.name, MODEL_PATH)  # raises ModelUnavailableError with the install line
        self._session = open_session(
            self.path, FACEPLUGIN.files[MODEL_PATH], optimization=OPTIMIZATION, threads=THREADS
        )
        logger.info("fr-landmark loaded from %s", self.path)

    def predict68(self, image: np.ndarray, box: Box) -> Landmarks:
        """All 68 points (``ibug68``) of the face in ``box`` of an RGB uint8 ``image``."""
        h, w = image.shape[:2]
        window = crop_window(box, w, h)
        (out,) = run_session(self._session, ["output"], {"input": network_input(image, window)}, self.card)
        if out.size != 2 * N_POINTS:
            raise ModelFormatError(
                f"{self.card.id}: expected {2 * N_POINTS} outputs; got shape {list(out.shape)}",
                details={"model": self.card.id},
            )
        return Landmarks(points_in_image(out, window), "ibug68")

    def predict(self, image: np.ndarray, box: Box) -> Landmarks:
        """The 5 points ArcFace alignment needs (``arcface5``), derived from the 68."""
        return Landmarks(arcface5_from_ibug68(self.predict68(image, box).points), self.scheme)


FR_LANDMARK_CARD = ModelCard(
    name="fr-landmark",
    version=FACEPLUGIN.version,
    kind="landmarks",
    description=(
        "Faceplugin's 68-point landmark network (iBUG 300-W markup) run on each detected box; gives the "
        "5 points of ArcFace alignment (eye centres, nose tip, mouth corners) derived from the 68."
    ),
    input=(
        f"RGB uint8 image + face box; the box is cut, resized to {INPUT_SIZE}x{INPUT_SIZE}, made grey and "
        f"fed as float32 [1, 1, {INPUT_SIZE}, {INPUT_SIZE}], x / {PIXEL_SCALE:g}"
    ),
    source=f"{FACEPLUGIN.registry} {FACEPLUGIN.spec}: {MODEL_PATH} (faceprint models install {FACEPLUGIN.name})",
    licence=FACEPLUGIN.licence,
    extra={
        "format": "onnx",
        "pack": FACEPLUGIN.name,
        "path": MODEL_PATH,
        "sha256": FACEPLUGIN.files[MODEL_PATH],
        "provenance": FACEPLUGIN.provenance,
        "points": N_POINTS,
        "graph_optimization": OPTIMIZATION,
        "scheme": "arcface5 (from ibug68)",
    },
)

#: What the registry registers from this module (card, loader, aliases).
BUILTIN: list[BuiltinModel] = [(FR_LANDMARK_CARD, FrLandmarks, ("faceplugin-landmark",))]
