"""Face image quality: is this face good enough to enrol, or to trust a match on?

A transparent score from measured factors (not a learned FIQA model). Each factor maps a
measure to ``[0, 1]`` with a linear ramp; the score is their product, and every factor whose
measure falls below its floor is named in ``reasons`` so that a person can fix the photo:

* ``size``: the face's side in pixels ("small" below ``min_face_size``);
* ``pose``: yaw and pitch from the landmarks ("pose" beyond ``max_yaw`` / ``max_pitch``);
* ``sharpness``: variance of the Laplacian of the face's grey *quality chip*, 112x112 px,
  aligned on the two eye centres alone (so any landmark scheme gives it, with no embedder:
  :func:`quality_chip`) ("blur" below ``min_sharpness``);
* ``detector_score``: the detector's confidence, for the detectors measured (no reason);
* ``embedding_norm``: the norm of the embedding network's raw output, for the embedders whose
  norm was measured to track recognisability ("indistinct" below the model's floor).

A factor without a measure (no pose, an unmeasured detector or embedder) is left out: it
neither raises nor lowers the score.

Measured on lfw_dev (bench/quality.py, bench/README.md section 'Quality'; 2,611 images of
the 494 identities with 2+ images, 26,634 genuine pairs, FNMR at each card's FAR 1e-3
threshold, after rejecting the lowest-quality 0 / 5 / 10 / 20 % of images):

* fr-feature's norm (a MobileFaceNet, training loss unknown) is the most informative factor
  there is: Spearman 0.56 with a face's mean genuine similarity (the other factors: 0.11
  or less), FNMR 1.45 % -> 0.49 / 0.21 / 0.15 %. Faces with a norm below 2.6 (0.5 % of lfw_dev)
  fail 61 % of their genuine pairs, below 2.4 (0.1 %) 96 %; the median is 3.70. Its ramp:
  0 at 2.4, 1 from 3.4 (the 25th percentile: the score has to rank the worst faces, and a ramp
  up to the median also pulled ordinary faces under ``min_score``), reason below 2.6. dlib-resnet34's norm is not informative (Spearman
  0.05; rejecting by it leaves FNMR at 7.5 %, as random rejection does): no factor.
* Detector scores: hog's (an SVM margin, 1st-99th percentile 0.28-3.30, median 1.70) is
  dlib's best single factor (Spearman 0.22). Its ramp: 0 at -0.5 (hog's own threshold, 0,
  gives 0.28), 1 from 1.3 (the 25th percentile). fr-detect's scores are near 1 (1st
  percentile 0.9988); the 1.2 % of faces under 0.999 fail 35 % of their pairs, but beside
  fr-feature's norm the gain from its score depends on the ramp and the rejected share (from
  none to 0.31 -> 0.14 % at 10 %, and worse at 5 % for some ramps): no factor until other data
  settles it.
* Sharpness: on lfw_dev's quality chips the 1st percentile is 22-30, the 5th 39-49, the
  median 120-138; a 5x5 Gaussian blur of those photos gives a median of 20, a 9x9 one 8.7.
  ``min_sharpness = 15`` names blur only below anything in lfw_dev; full marks from 40.
* Size cannot be measured on lfw_dev (every crop shows the face at 52-80 px); its floors are
  the detectors' reach (40 px) and the 112 px chip of the embedders (full marks from 80 px).
* Pose: rejecting by it alone takes fr's FNMR to 0.60 % at 20 %; limits kept at 45 / 40 deg.

The score: fr's FNMR 1.45 % -> 0.56 / 0.47 / 0.09 % at 5 / 10 / 20 % rejected (size x pose x
sharpness alone: 0.90 / 0.58 / 0.58 %), dlib's 7.54 % -> 6.61 / 6.49 / 5.39 % (7.02 / 6.78 /
6.14 %). The enrolment gate (a reason, or a score under ``min_score``) flags 4.7 % of lfw_dev's
faces with fr (2.8 % for pose; their genuine pairs fail 10 %, the others' 0.6 %) and 2.2 % with
dlib. With the norm's ramp up to 3.7 and pose.py's earlier arcface5 geometry (pitch clipped
at -44 degrees) it flagged 14 % (bench/README.md, section 'Quality').
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from faceprint.align import ARCFACE_112_TEMPLATE, similarity_transform
from faceprint.types import EmbeddedFace, Face, Pose, Quality

__all__ = [
    "DETECTOR_SCORE_RAMPS",
    "EMBEDDING_NORM_RAMPS",
    "QUALITY_CHIP_SIZE",
    "Quality",
    "QualityPolicy",
    "Ramp",
    "assess",
    "measure",
    "quality_chip",
    "rate",
    "sharpness",
]

#: The side of the quality chip whose sharpness is measured.
QUALITY_CHIP_SIZE = 112


@dataclass(frozen=True, slots=True)
class Ramp:
    """A measure's factor: 0 at or below ``low``, 1 at or above ``good``, linear between;
    below ``floor`` (when given) the factor's reason is named."""

    low: float
    good: float
    floor: float | None = None

    def __call__(self, value: float) -> float:
        if self.good <= self.low:
            return 1.0 if value >= self.good else 0.0
        return float(np.clip((value - self.low) / (self.good - self.low), 0.0, 1.0))

    def below_floor(self, value: float) -> bool:
        return self.floor is not None and value < self.floor


#: Detector name -> the ramp of its score (measured: module docstring).
DETECTOR_SCORE_RAMPS: Mapping[str, Ramp] = MappingProxyType({
    "hog": Ramp(-0.5, 1.3),
})

#: Embedder name -> the ramp of its raw embedding norm: only the models whose norm was
#: measured to track recognisability (module docstring); dlib-resnet34's does not.
EMBEDDING_NORM_RAMPS: Mapping[str, Ramp] = MappingProxyType({
    "fr-feature": Ramp(2.4, 3.4, floor=2.6),
})


@dataclass(frozen=True, slots=True)
class QualityPolicy:
    min_face_size: float = 40.0  # px, box side; below: "small"
    good_face_size: float = 80.0  # px; at or above: full size score
    max_yaw: float = 45.0  # degrees; beyond: "pose"
    max_pitch: float = 40.0
    min_sharpness: float = 15.0  # variance of the Laplacian of the grey quality chip; below: "blur"
    good_sharpness: float = 40.0
    min_score: float = 0.25  # below: low_quality
    #: Detector name -> its score's ramp; an unlisted detector's score is no factor.
    detector_scores: Mapping[str, Ramp] = field(default_factory=lambda: DETECTOR_SCORE_RAMPS)
    #: Embedder name -> its raw norm's ramp; an unlisted embedder's norm is no factor.
    embedding_norms: Mapping[str, Ramp] = field(default_factory=lambda: EMBEDDING_NORM_RAMPS)


def _ramp(value: float, low: float, high: float) -> float:
    return Ramp(low, high)(value)


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of ``chip`` in grey (an RGB uint8 image)."""
    import cv2

    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def quality_chip(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The face's 112x112 quality chip: the similarity transform that puts its two eye
    centres where the ArcFace template has them (edges replicated, not black: a black border
    would count as detail)."""
    import cv2

    left, right = face.landmarks.eye_centers()
    matrix = similarity_transform(np.array([left, right]), ARCFACE_112_TEMPLATE[:2] * (QUALITY_CHIP_SIZE / 112))
    chip = cv2.warpAffine(rgb, matrix, (QUALITY_CHIP_SIZE, QUALITY_CHIP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(chip)


def rate(
    size: float,
    pose: Pose | None,
    sharp: float | None,
    *,
    detector: str = "",
    detector_score: float | None = None,
    embedder: str = "",
    embedding_norm: float | None = None,
    policy: QualityPolicy = QualityPolicy(),
) -> Quality:
    """The :class:`Quality` of these measures (a ``None`` measure is no factor; ``detector``
    and ``embedder`` are model names, which pick the score's and the norm's ramps)."""
    factors: dict[str, float] = {}
    measures: dict[str, float] = {"size": float(size)}
    reasons: list[str] = []
    factors["size"] = _ramp(size, policy.min_face_size * 0.5, policy.good_face_size)
    if size < policy.min_face_size:
        reasons.append("small")
    if pose is not None:
        yaw, pitch = abs(pose.yaw), abs(pose.pitch)
        measures.update(yaw=pose.yaw, pitch=pose.pitch)
        factors["pose"] = min(_ramp(90 - yaw, 90 - policy.max_yaw * 1.5, 90 - policy.max_yaw * 0.5),
                              _ramp(90 - pitch, 90 - policy.max_pitch * 1.5, 90 - policy.max_pitch * 0.5))
        if yaw > policy.max_yaw or pitch > policy.max_pitch:
            reasons.append("pose")
    if sharp is not None:
        measures["sharpness"] = float(sharp)
        factors["sharpness"] = _ramp(sharp, policy.min_sharpness * 0.5, policy.good_sharpness)
        if sharp < policy.min_sharpness:
            reasons.append("blur")
    score_ramp = policy.detector_scores.get(detector)
    if detector_score is not None:
        measures["detector_score"] = float(detector_score)
        if score_ramp is not None:
            factors["detector_score"] = score_ramp(detector_score)
    norm_ramp = policy.embedding_norms.get(embedder)
    if embedding_norm is not None:
        measures["embedding_norm"] = float(embedding_norm)
        if norm_ramp is not None:
            factors["embedding_norm"] = norm_ramp(embedding_norm)
            if norm_ramp.below_floor(embedding_norm):
                reasons.append("indistinct")
    return Quality(score=float(np.prod(list(factors.values()))), factors=factors, measures=measures,
                   reasons=tuple(reasons))


def assess(face: Face | EmbeddedFace, chip: np.ndarray | None = None,
           policy: QualityPolicy = QualityPolicy()) -> Quality:
    """The quality of a face under ``policy``; of an :class:`EmbeddedFace`, with its
    embedding norm's factor where its model's norm is informative.

    Sharpness is the one measured on the face's quality chip at detection (``face.quality``,
    :func:`measure`); a face without it (one made by hand) is measured on ``chip``, an
    aligned face chip, when given.
    """
    if isinstance(face, EmbeddedFace):  # the model id is name@version; the ramps go by name
        found, embedder, norm = face.face, face.model.partition("@")[0], face.embedding_norm
    else:
        found, embedder, norm = face, "", None
    sharp = found.quality.sharpness if found.quality is not None else None
    if sharp is None and chip is not None:
        sharp = sharpness(chip)
    return rate(found.size, found.pose, sharp, detector=found.detector, detector_score=found.score,
                embedder=embedder, embedding_norm=norm, policy=policy)


def measure(rgb: np.ndarray, face: Face, policy: QualityPolicy = QualityPolicy()) -> Quality:
    """The quality of ``face`` just found in ``rgb``: its sharpness measured on its quality chip."""
    return rate(face.size, face.pose, sharpness(quality_chip(rgb, face)), detector=face.detector,
                detector_score=face.score, policy=policy)
