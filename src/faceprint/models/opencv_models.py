"""OpenCV's Haar cascade face detector (opencv-python-headless < 5 ships the cascades)."""

from __future__ import annotations

import numpy as np

from faceprint.errors import ModelUnavailableError
from faceprint.models.base import BuiltinModel, RawDetection
from faceprint.models.card import ModelCard
from faceprint.types import Box

_CASCADE = "haarcascade_frontalface_default.xml"


class HaarDetector:
    """Viola-Jones boosted Haar cascade. Very fast, many false positives; a baseline."""

    min_face = 40

    def __init__(self, card: ModelCard) -> None:
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise ModelUnavailableError("OpenCV is not installed: pip install 'opencv-python-headless<5'") from exc
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise ModelUnavailableError(
                "this OpenCV build has no Haar cascades (OpenCV 5 removed them); "
                "install opencv-python-headless<5",
                details={"opencv": cv2.__version__},
            )
        self.card = card
        self._cv2 = cv2
        path = cv2.data.haarcascades + _CASCADE  # type: ignore[attr-defined]  # absent from cv2's stubs
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ModelUnavailableError(f"cannot load {path}")

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        cv2 = self._cv2
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        scale = 2**upsample
        if upsample:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        grey = cv2.equalizeHist(grey)
        rects, _levels, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_face, self.min_face), outputRejectLevels=True
        )
        out: list[RawDetection] = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights) if len(rects) else []):
            out.append(RawDetection(Box(x / scale, y / scale, (x + w) / scale, (y + h) / scale), float(weight)))
        return out


HAAR_CARD = ModelCard(
    name="haar",
    version="opencv4-frontalface-default",
    kind="detector",
    description="OpenCV Haar cascade (frontal face, default). A fast classical baseline with more false positives than hog.",
    input="RGB uint8, any size (converted to equalised greyscale)",
    source=f"opencv-python-headless<5: cv2.data.haarcascades/{_CASCADE}",
    licence="Intel License Agreement For Open Source Computer Vision Library (BSD-style)",
    # A compromise: its false positives score as high as faces (up to 6.5); 1.0 drops the weak
    # ones (make demo's at 0.72) for 1 of 46 faces in group photos and 3 of 479 LFW faces
    # (bench/README.md, section 'Minimum detection score').
    min_score=1.0,
)

#: What the registry registers from this family (card, loader, aliases).
BUILTIN: tuple[BuiltinModel, ...] = ((HAAR_CARD, HaarDetector, ("opencv-haar",)),)
