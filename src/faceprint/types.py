"""Typed results. Every public result has ``to_dict()`` giving plain JSON-ready values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from faceprint.errors import FaceprintError, ModelMismatchError

#: Named landmark schemes and the meaning of each point, in order. "left"/"right" are the
#: *image* sides (left = smaller x), not the subject's, so the names hold for any photo.
LANDMARK_SCHEMES: dict[str, tuple[str, ...]] = {
    # dlib's 5-point shape predictor: two corners per eye and the base of the nose.
    "dlib5": (
        "right_eye_outer",
        "right_eye_inner",
        "left_eye_outer",
        "left_eye_inner",
        "nose_base",
    ),
    # The InsightFace/ArcFace 5-point convention used by SCRFD, RetinaFace, YuNet.
    "arcface5": ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"),
    # iBUG 300-W 68-point markup (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth).
    "ibug68": tuple(f"p{i}" for i in range(68)),
}


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in pixels, ``(x1, y1)`` top-left and ``(x2, y2)`` bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def scaled(self, factor: float) -> Box:
        return Box(self.x1 * factor, self.y1 * factor, self.x2 * factor, self.y2 * factor)

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
        )

    def to_list(self) -> list[float]:
        return [round(float(v), 2) for v in (self.x1, self.y1, self.x2, self.y2)]


@dataclass(frozen=True, slots=True, eq=False)
class Landmarks:
    """``points`` is an ``(N, 2)`` float array of ``(x, y)`` pixels in ``scheme`` order."""

    points: np.ndarray
    scheme: str

    def __post_init__(self) -> None:
        names = LANDMARK_SCHEMES.get(self.scheme)
        if names is None:
            raise ValueError(f"unknown landmark scheme {self.scheme!r}")
        if self.points.shape != (len(names), 2):
            raise ValueError(f"{self.scheme} needs {len(names)} points, got {self.points.shape}")

    @property
    def names(self) -> tuple[str, ...]:
        return LANDMARK_SCHEMES[self.scheme]

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, name: str) -> tuple[float, float]:
        x, y = self.points[self.names.index(name)]
        return (float(x), float(y))

    def eye_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """(image-left eye centre, image-right eye centre)."""
        p = self.points
        if self.scheme == "dlib5":
            return (p[2] + p[3]) / 2.0, (p[0] + p[1]) / 2.0
        if self.scheme == "arcface5":
            return p[0], p[1]
        return p[36:42].mean(axis=0), p[42:48].mean(axis=0)

    def to_list(self) -> list[list[float]]:
        return [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]


@dataclass(frozen=True, slots=True)
class Pose:
    """Head pose in degrees, estimated from landmarks with a generic 3-D face.

    Signs: ``yaw`` > 0 when the face turns towards the image's right, ``pitch`` > 0 when it
    looks up, ``roll`` > 0 when it tilts clockwise in the image. Expect errors of ~10 degrees:
    it is for filtering and quality, not measurement.
    """

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict[str, float]:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}


@dataclass(frozen=True, slots=True, eq=False)
class Quality:
    """How fit a face is for recognition, as :mod:`faceprint.quality` rates it.

    ``factors`` are the ``[0, 1]`` scores whose product is ``score`` (size, pose, sharpness,
    and, where they were measured to help, the detector's score and the embedding's norm);
    ``measures`` the raw values behind them (pixels, degrees, variance of the Laplacian,
    the detector's score, the raw embedding norm); ``reasons`` name each factor below its
    floor ("small", "pose", "blur", "indistinct"), empty when all is well.
    """

    score: float
    factors: dict[str, float]
    measures: dict[str, float]
    reasons: tuple[str, ...] = ()

    @property
    def size(self) -> float:
        """The face's side in pixels."""
        return self.measures["size"]

    @property
    def sharpness(self) -> float | None:
        """Variance of the Laplacian of the face's grey quality chip, when it was measured."""
        return self.measures.get("sharpness")

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(float(self.score), 4),
            "factors": {k: round(float(v), 4) for k, v in self.factors.items()},
            "reasons": list(self.reasons),
            "measures": {k: round(float(v), 4) for k, v in self.measures.items()},
        }


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """One detected face; ``quality`` is rated at detection (:func:`faceprint.quality.measure`)."""

    box: Box
    score: float
    landmarks: Landmarks
    pose: Pose | None = None
    landmarks68: Landmarks | None = None
    detector: str = ""
    quality: Quality | None = None

    @property
    def size(self) -> float:
        """The face's side length in pixels (geometric mean of box width and height)."""
        return math.sqrt(max(self.box.area, 0.0))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": self.box.to_list(),
            "score": round(float(self.score), 4),
            "landmarks": self.landmarks.to_list(),
            "landmark_scheme": self.landmarks.scheme,
            "pose": self.pose.to_dict() if self.pose else None,
            "quality": self.quality.to_dict() if self.quality else None,
        }
        if self.landmarks68 is not None:
            out["landmarks68"] = self.landmarks68.to_list()
        return out


@dataclass(frozen=True, slots=True, eq=False)
class EmbeddedFace:
    """A face with its embedding: ``float32``, L2-normalised, made by ``model``.

    ``embedding_norm`` is the norm of the network's raw output before normalisation, when the
    embedder reports it; ``quality`` the face's quality with the norm's factor where the
    model's norm tracks recognisability (:mod:`faceprint.quality`), else the face's own.
    """

    face: Face
    embedding: np.ndarray
    model: str
    embedding_norm: float | None = None
    quality: Quality | None = None

    def similarity(self, other: EmbeddedFace) -> float:
        if other.model != self.model:
            raise ModelMismatchError(
                f"cannot compare an embedding of {self.model} with one of {other.model}",
                details={"models": [self.model, other.model]},
            )
        return cosine_similarity(self.embedding, other.embedding)

    def to_dict(self) -> dict[str, Any]:
        out = self.face.to_dict()
        quality = self.quality or self.face.quality
        out["quality"] = quality.to_dict() if quality else None
        out["embedding"] = [float(v) for v in self.embedding]
        return out


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two (already L2-normalised) embeddings, clipped to [-1, 1]."""
    return float(np.clip(np.dot(a.astype(np.float64), b.astype(np.float64)), -1.0, 1.0))


@dataclass(frozen=True, slots=True, eq=False)
class ImageAnalysis:
    """What was found in one image: its faces (embedded or not) or the error that stopped it."""

    source: str
    faces: tuple[Face, ...] | tuple[EmbeddedFace, ...] = ()
    image_size: tuple[int, int] | None = None  # (width, height)
    error: FaceprintError | None = None  # kept whole so callers can re-raise it

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.source,
            "image_size": list(self.image_size) if self.image_size else None,
            "faces": [f.to_dict() for f in self.faces],
            "error": self.error.to_dict() if self.error is not None else None,
        }


FaceSelection = Literal["only", "largest", "index"]


@dataclass(frozen=True, slots=True)
class SelectedFace:
    """Which face of an image a comparison used, and why."""

    source: str
    face_index: int
    faces_found: int
    selection: FaceSelection
    box: Box
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.source,
            "face_index": self.face_index,
            "faces_found": self.faces_found,
            "selection": self.selection,
            "box": self.box.to_list(),
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer to "are these the same person?" with everything needed to judge it.

    ``far`` is the false-accept rate the threshold stands for on the model's calibration
    data (interpolated between calibrated points when ``threshold=`` was given).
    """

    similarity: float
    threshold: float
    far: float | None
    match: bool
    model: str
    faces: tuple[SelectedFace, SelectedFace]
    threshold_source: str = "calibrated"  # or "user"

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": round(self.similarity, 6),
            "threshold": round(self.threshold, 6),
            "far": self.far,
            "match": self.match,
            "model": self.model,
            "threshold_source": self.threshold_source,
            "faces": [f.to_dict() for f in self.faces],
        }

    def __str__(self) -> str:
        verdict = "MATCH" if self.match else "no match"
        far = f" (FAR {self.far:.0e})" if self.far is not None else ""
        return f"{verdict}: similarity {self.similarity:.4f} vs threshold {self.threshold:.4f}{far} [{self.model}]"
