"""What liveness reads from one frame: the main face, how many other faces, its eye aspect
ratio, yaw/pitch and embedding (and a passive score when asked).

Eye state is the eye aspect ratio (EAR, Soukupova & Cech 2016) of the 68 iBUG points the
Analyzer gives with ``landmarks68=True``: fr-landmark's own 68 with the Faceplugin pack, dlib68
(on dlib's HOG box) with the dlib pipeline. Measured on lfw_dev photos enlarged to webcam size
(bench/liveness_signals.py): with the default pipeline fr-landmark's EAR separated every closed
photo used in the tests from its open baseline, where dlib68 run on fr-detect's box missed
Hugo_Chavez_0063 (0.243 against an open 0.245). The research's whole-lfw_dev ranking
(docs/research/liveness.md section 1) favoured dlib68 at LFW's native 60 px faces; at the sizes a
webcam gives, the pipeline's own 68 points are used, and dlib68 is not loaded a second time.

A :class:`SignalReader` reads frames; :class:`FrameSignals` is plain data so that a caller can
compute a frame's signals once and feed them to several checkers
(:meth:`faceprint.liveness.check.LivenessChecker.observe_signals`), as the tests do.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from faceprint.errors import InvalidImageError
from faceprint.models.base import Landmarks68Model
from faceprint.pipeline import Analyzer
from faceprint.types import Box, Face, Landmarks

logger = logging.getLogger(__name__)

# iBUG 300-W: points 36-41 the image-left eye, 42-47 the image-right eye, each p1..p6 clockwise
# from the outer corner.
_EYES = (slice(36, 42), slice(42, 48))


def eye_aspect_ratio(landmarks: Landmarks) -> float:
    """The mean over both eyes of ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)`` (ibug68 points):
    about 0.3 for an open eye, below 0.2 closed."""
    if landmarks.scheme != "ibug68":
        raise ValueError(f"the eye aspect ratio needs ibug68 landmarks, not {landmarks.scheme}")
    values = []
    for part in _EYES:
        p = landmarks.points[part].astype(np.float64)
        width = float(np.linalg.norm(p[0] - p[3]))
        height = float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4]))
        values.append(height / (2.0 * width) if width > 1e-6 else 0.0)
    return float(np.mean(values))


@dataclass(frozen=True, slots=True)
class EyeThresholds:
    """When an EAR reads closed or open again, relative to the person's open-eye baseline ``B``:
    closed below ``min(closed_max, closed_ratio * B)``, open again above
    ``max(open_min, open_ratio * B)`` (the gap between them is the hysteresis)."""

    closed_max: float
    closed_ratio: float
    open_min: float
    open_ratio: float

    def closed_below(self, baseline: float) -> float:
        return min(self.closed_max, self.closed_ratio * baseline)

    def open_above(self, baseline: float) -> float:
        return max(self.open_min, self.open_ratio * baseline)

    def to_dict(self) -> dict[str, float]:
        return {"closed_max": self.closed_max, "closed_ratio": self.closed_ratio,
                "open_min": self.open_min, "open_ratio": self.open_ratio}


#: Per 68-point model. Closed/open ratios from docs/research/liveness.md section 3 (closed EAR /
#: open baseline over 7 lfw_dev pairs: dlib68 0.14-0.52, fr-landmark 0.38-0.62 with one miss),
#: checked on the test frames (bench/liveness_signals.py).
EYE_THRESHOLDS: dict[str, EyeThresholds] = {
    "fr-landmark": EyeThresholds(closed_max=0.22, closed_ratio=0.70, open_min=0.22, open_ratio=0.85),
    "dlib68": EyeThresholds(closed_max=0.20, closed_ratio=0.65, open_min=0.22, open_ratio=0.85),
}


def eye_landmarks_model(analyzer: Analyzer) -> str:
    """The model that gives ``analyzer``'s 68 points: its landmark model when that computes 68
    (fr-landmark), else dlib68 (as :class:`~faceprint.pipeline.Analyzer` chooses)."""
    return analyzer.landmarks_card.name if isinstance(analyzer.landmarker, Landmarks68Model) else "dlib68"


def eye_thresholds_for(model: str) -> EyeThresholds:
    """The thresholds measured for ``model``'s 68 points (fr-landmark's, the tighter ones, for a
    model not measured)."""
    return EYE_THRESHOLDS.get(model, EYE_THRESHOLDS["fr-landmark"])


class FaceScorer(Protocol):
    """A passive presentation-attack model: the probability that ``face`` of ``rgb`` is live."""

    def score(self, rgb: np.ndarray, face: Face) -> float: ...


@dataclass(frozen=True, slots=True, eq=False)
class FrameSignals:
    """One frame as liveness sees it. ``faces`` counts every face detected; ``others`` those other
    than the main (largest) one whose size is at least the reader's ratio of the main face's.
    The rest describe the main face and are None without one."""

    faces: int
    others: int = 0
    box: Box | None = None
    size: float | None = None
    ear: float | None = None
    yaw: float | None = None
    pitch: float | None = None
    embedding: np.ndarray | None = None
    model: str = ""
    passive: float | None = None

    @property
    def has_face(self) -> bool:
        return self.faces > 0 and self.box is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces": self.faces,
            "box": self.box.to_list() if self.box is not None else None,
            "ear": None if self.ear is None else round(self.ear, 4),
            "yaw": None if self.yaw is None else round(self.yaw, 1),
            "pitch": None if self.pitch is None else round(self.pitch, 1),
            "passive": None if self.passive is None else round(self.passive, 4),
        }


class SignalReader:
    """Reads :class:`FrameSignals` from frames with ``analyzer`` (a copy of it that also gives 68
    landmarks; the caller's Analyzer is not changed)."""

    def __init__(self, analyzer: Analyzer, *, other_face_ratio: float = 0.4) -> None:
        if analyzer.want_68:
            self.analyzer = analyzer
        else:  # a shallow copy shares the loaded models and any calibration applied to it
            self.analyzer = copy.copy(analyzer)
            self.analyzer.want_68 = True
        self.other_face_ratio = other_face_ratio
        self.eye_model = eye_landmarks_model(self.analyzer)
        logger.debug("liveness reads eyes from %s's 68 points", self.eye_model)

    @property
    def model_id(self) -> str:
        return self.analyzer.model_id

    def read(self, rgb: np.ndarray, passive: FaceScorer | None = None) -> FrameSignals:
        """The signals of one RGB frame; ``passive`` scores the main face when given.
        :class:`~faceprint.errors.InvalidImageError` or :class:`~faceprint.errors.ImageTooLargeError`
        for what the Analyzer refuses in an image (no pixels, a bad shape or dtype, too many pixels)."""
        if not isinstance(rgb, np.ndarray):
            raise InvalidImageError(f"a frame must be a numpy array, not {type(rgb).__name__}")
        rgb = self.analyzer.load(rgb)
        faces = self.analyzer.detect_array(rgb)
        if not faces:
            return FrameSignals(faces=0, model=self.model_id)
        main = faces[0]  # largest first
        others = sum(1 for f in faces[1:] if f.size >= self.other_face_ratio * main.size)
        (embedded,) = self.analyzer.embed_faces(rgb, [main])
        ear = eye_aspect_ratio(main.landmarks68) if main.landmarks68 is not None else None
        return FrameSignals(
            faces=len(faces), others=others, box=main.box, size=main.size, ear=ear,
            yaw=main.pose.yaw if main.pose else None, pitch=main.pose.pitch if main.pose else None,
            embedding=embedded.embedding, model=self.model_id,
            passive=passive.score(rgb, main) if passive is not None else None,
        )
