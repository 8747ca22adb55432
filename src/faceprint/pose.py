"""Head pose (yaw, pitch, roll) from 2-D landmarks, with a generic face's proportions.

Signs (the same as InspireFace's, checked on its ``test_res/data/pose`` images): ``yaw`` > 0
when the face turns towards the image's right (the nose moves right), ``pitch`` > 0 when it
looks up, ``roll`` > 0 when it tilts clockwise in the image (the image-right eye is lower).

Roll is the tilt of the line between the eye centres. Yaw and pitch come from where the
nose point sits relative to the eyes, in units of the (de-rolled) eye distance ``d``:

* yaw: a point at depth ``k*d`` in front of the eye plane moves sideways by ``k*d*sin(yaw)``
  while the eye distance shrinks by ``cos(yaw)``, so ``tan(yaw) = dx / (k*d_seen)``.
* pitch: the nose point's drop below the eye line is ``A*cos(p) - k*sin(p)`` (in units of
  ``d``) where ``A`` is the drop of a frontal face; solve for ``p``.

``A`` per landmark scheme is the median drop ratio over 400 LFW development images (seed 0,
hog detector), so that their median pitch is about 0: 0.731 for dlib5 and 0.526 for ibug68.
``arcface5`` points come from several models (detectors' own, fr-landmark's reduction of
68 points); they are fitted to fr-landmark on fr-detect's boxes, the default pipeline with
the Faceplugin pack, over the same 400 images. ``A`` = 0.60 is its median drop ratio (the
ArcFace 112x112 template's ratio, 0.57, gave a median pitch of -3 degrees). Its nose tip's drop
varies more than pitch explains: against dlib5's pose of the same faces (396 images) a least-
squares fit of the drop gives ``k`` = 0.45, whose reach (sqrt(A^2 + k^2) = 0.75) about 10% of
the faces exceed, and a drop beyond the reach can only be read as looking down the furthest
the model allows (-atan(k/A) = -37 degrees; -42 with k = 0.55): the gallery then rejected ~10%
of ordinary LFW photos for pose. So pitch uses ``k`` = 0.65 (reach 0.88, the drop's 99th
percentile is 0.87): pitch magnitudes come out smaller than dlib5's, but a steep pitch is not
claimed from landmark noise. Yaw uses the fitted depth against dlib5's yaw, 0.39. The ibug68
``A`` is dlib68's: fr-landmark's own 68 points put the nose tip lower (0.60 there too), so the
pipeline takes pose from the 5 points of whichever landmark model runs. Otherwise ``k`` is the
nose point's depth from anthropometric averages. This is an estimate good to roughly 10 degrees, for
filtering and quality, not measurement.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from faceprint.types import Landmarks, Pose


class NoseGeometry(NamedTuple):
    """Where a scheme's nose point is and how it moves (in units of the eye distance ``d``)."""

    point: int  # the nose point's index among the scheme's landmarks
    frontal_drop: float  # A: its drop below the eye line in a frontal, level face
    depth: float  # k: its depth in front of the eye plane, for pitch
    yaw_depth: float | None = None  # the depth for yaw, when measured apart from ``depth``


NOSE_GEOMETRY: dict[str, NoseGeometry] = {
    "dlib5": NoseGeometry(4, 0.73, 0.35),  # base of the nose (subnasale)
    "ibug68": NoseGeometry(30, 0.53, 0.55),  # nose tip (A measured with dlib68)
    # Nose tip, measured with fr-landmark on fr-detect's boxes (see the module docstring).
    "arcface5": NoseGeometry(2, 0.60, 0.65, yaw_depth=0.39),
}


def _measure(landmarks: Landmarks) -> tuple[float, float, float] | None:
    """(roll in degrees, yaw in radians, nose drop / un-foreshortened eye distance), or
    ``None`` when the eyes coincide. The drop ratio of a frontal, level face is ``A``."""
    geometry = NOSE_GEOMETRY[landmarks.scheme]
    nose_idx, depth = geometry.point, geometry.yaw_depth or geometry.depth
    left_eye, right_eye = landmarks.eye_centers()
    nose = landmarks.points[nose_idx]
    eye_vec = right_eye - left_eye
    d = float(np.hypot(*eye_vec))
    if d < 1e-6:
        return None
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Express the nose in a frame aligned with the eye line (x along it, y down across it).
    c, s = eye_vec / d
    rel = nose - (left_eye + right_eye) / 2.0
    dx = rel[0] * c + rel[1] * s
    dy = -rel[0] * s + rel[1] * c
    # The eye distance we see is foreshortened by yaw; undo it for the pitch ratio.
    yaw = math.atan2(dx / d, depth)
    d_true = d / max(math.cos(yaw), 0.2)
    return roll, yaw, float(dy / d_true)


def estimate_pose(landmarks: Landmarks) -> Pose:
    m = _measure(landmarks)
    if m is None:
        return Pose(0.0, 0.0, 0.0)
    roll, yaw, r = m
    _nose_idx, frontal_drop, depth, _yaw_depth = NOSE_GEOMETRY[landmarks.scheme]
    # r = A*cos(p) - k*sin(p) = R*cos(p + phi) with R = hypot(A, k), phi = atan2(k, A).
    radius = math.hypot(frontal_drop, depth)
    phi = math.atan2(depth, frontal_drop)
    pitch = math.acos(max(-1.0, min(1.0, r / radius))) - phi
    return Pose(yaw=math.degrees(yaw), pitch=math.degrees(pitch), roll=roll)
