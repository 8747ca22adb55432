"""Landmarks -> canonical face chips, by a similarity transform.

Each embedder declares the chip it was trained on with a :class:`ChipSpec`:

* ``dlib``: dlib's own chip (150x150, padding 0.25 for the ResNet), made by dlib's
  ``get_face_chip`` from 5- or 68-point dlib landmarks. Using dlib's code is deliberate: the
  network was trained on exactly these chips, and a re-implementation that differs by a
  pixel of interpolation costs accuracy.
* ``template``: a fixed 5-point template (e.g. the ArcFace 112x112 one). The similarity
  transform (rotation, uniform scale, translation) that best maps the face's ``arcface5``
  landmarks onto the template, in the least-squares sense (Umeyama 1991), warps the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceprint.types import Face, Landmarks

#: The ArcFace / InsightFace 112x112 template, arcface5 order (left eye, right eye, nose tip,
#: left and right mouth corner), in pixels.
ARCFACE_112_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True, slots=True, eq=False)
class ChipSpec:
    kind: Literal["dlib", "template"]
    size: int
    padding: float = 0.0  # dlib only: border around the face, as a fraction of its size
    template: np.ndarray | None = None  # template only: (5, 2) target points at `size`

    def describe(self) -> str:
        if self.kind == "dlib":
            return f"{self.size}x{self.size} RGB dlib face chip (padding {self.padding})"
        return f"{self.size}x{self.size} RGB chip, 5-point similarity alignment"


DLIB_RESNET_CHIP = ChipSpec(kind="dlib", size=150, padding=0.25)
ARCFACE_112_CHIP = ChipSpec(kind="template", size=112, template=ARCFACE_112_TEMPLATE)


def extract_chip(image: np.ndarray, face: Face, spec: ChipSpec) -> np.ndarray:
    """Cut the aligned ``spec.size`` square chip of ``face`` out of ``image`` (RGB uint8)."""
    if spec.kind == "dlib":
        return _dlib_chip(image, face, spec)
    return warp_to_template(image, arcface5_points(face), spec)


def _dlib_chip(image: np.ndarray, face: Face, spec: ChipSpec) -> np.ndarray:
    import dlib

    marks = face.landmarks68 if face.landmarks68 is not None else face.landmarks
    if marks.scheme not in {"dlib5", "ibug68"}:
        raise ValueError(f"dlib chips need dlib5 or ibug68 landmarks, not {marks.scheme}")
    b = face.box
    rect = dlib.rectangle(int(round(b.x1)), int(round(b.y1)), int(round(b.x2)), int(round(b.y2)))
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in marks.points]
    shape = dlib.full_object_detection(rect, parts)
    chip = dlib.get_face_chip(image, shape, size=spec.size, padding=spec.padding)
    return np.ascontiguousarray(chip)


def arcface5_points(face: Face) -> np.ndarray:
    """The face's landmarks in arcface5 order, derived from 68 points when needed."""
    if face.landmarks.scheme == "arcface5":
        return face.landmarks.points
    if face.landmarks68 is not None:
        return arcface5_from_ibug68(face.landmarks68.points)
    raise ValueError(
        "template alignment needs arcface5 landmarks (from an SCRFD/YuNet-style detector) "
        "or 68-point landmarks; dlib's 5 points have no mouth corners"
    )


def arcface5_from_ibug68(points: np.ndarray) -> np.ndarray:
    """The ``(5, 2)`` arcface5 points of ``(68, 2)`` iBUG 300-W points: each eye's centre (the
    mean of its 6 points), the nose tip (30) and the outer mouth corners (48, 54)."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"ibug68 landmarks are 68 (x, y) points; got an array of shape {p.shape}")
    return np.array([p[36:42].mean(axis=0), p[42:48].mean(axis=0), p[30], p[48], p[54]], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity transform taking ``src`` points to ``dst`` (Umeyama)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c**2).sum() / n
    cov = d_c.T @ s_c / n
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sing * d).sum() / var_s if var_s > 0 else 1.0
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def warp_to_template(image: np.ndarray, points: np.ndarray, spec: ChipSpec) -> np.ndarray:
    import cv2

    assert spec.template is not None
    matrix = similarity_transform(points, spec.template)
    chip = cv2.warpAffine(
        image, matrix, (spec.size, spec.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return np.ascontiguousarray(chip)


def landmarks_from_array(points: np.ndarray, scheme: str) -> Landmarks:
    return Landmarks(np.asarray(points, dtype=np.float64).reshape(-1, 2), scheme)
