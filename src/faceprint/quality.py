"""Face image quality: is this face good enough to enrol or to trust a match on?

A transparent score from three measured factors (not a learned FIQA model): the face's size
in pixels, its head pose, and the sharpness of the aligned chip (variance of the Laplacian).
Each factor maps to [0, 1]; the score is their product, and every factor that falls below
its floor is named in ``reasons`` so a person can fix the photo.

Floors, measured on lfw_dev (150x150 news photos, 300-image sample, hog + dlib chip):
face side 52-75 px (1st-95th percentile); chip sharpness median 41, 1st percentile 10.6,
and a Gaussian blur of 5x5 on such a photo gives ~7. So ``min_sharpness = 6`` rejects only
faces blurrier than anything in LFW.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceprint.types import Face


@dataclass(frozen=True, slots=True)
class QualityPolicy:
    min_face_size: float = 40.0  # px, box side; below: face_too_small
    good_face_size: float = 80.0  # px; at or above: full size score
    max_yaw: float = 45.0  # degrees; beyond: pose reason
    max_pitch: float = 40.0
    min_sharpness: float = 6.0  # variance of the Laplacian of the grey chip
    good_sharpness: float = 25.0
    min_score: float = 0.25  # below: low_quality


@dataclass(frozen=True, slots=True)
class Quality:
    score: float
    size: float
    sharpness: float
    reasons: tuple[str, ...]  # "small", "pose", "blur" -- empty when all is well

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "size": round(self.size, 1),
            "sharpness": round(self.sharpness, 2),
            "reasons": list(self.reasons),
        }


def _ramp(value: float, low: float, high: float) -> float:
    if high <= low:
        return 1.0 if value >= high else 0.0
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def sharpness(chip: np.ndarray) -> float:
    import cv2

    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assess(face: Face, chip: np.ndarray, policy: QualityPolicy = QualityPolicy()) -> Quality:
    reasons: list[str] = []
    size = face.size
    size_score = _ramp(size, policy.min_face_size * 0.5, policy.good_face_size)
    if size < policy.min_face_size:
        reasons.append("small")
    pose_score = 1.0
    if face.pose is not None:
        yaw, pitch = abs(face.pose.yaw), abs(face.pose.pitch)
        pose_score = min(_ramp(90 - yaw, 90 - policy.max_yaw * 1.5, 90 - policy.max_yaw * 0.5),
                         _ramp(90 - pitch, 90 - policy.max_pitch * 1.5, 90 - policy.max_pitch * 0.5))
        if yaw > policy.max_yaw or pitch > policy.max_pitch:
            reasons.append("pose")
    sharp = sharpness(chip)
    sharp_score = _ramp(sharp, policy.min_sharpness * 0.5, policy.good_sharpness)
    if sharp < policy.min_sharpness:
        reasons.append("blur")
    return Quality(score=size_score * pose_score * sharp_score, size=size, sharpness=sharp, reasons=tuple(reasons))
