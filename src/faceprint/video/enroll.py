"""Enrol a person from a track (the wearable's one click): the track's best frames, through the
gallery's normal enrolment checks.

While a video plays, :class:`BestCrops` keeps, for each recent track, the ``n`` faces of highest
quality as crops of the frame around the face (the box grown to twice its size, so that the
detector finds the face again with its context). :func:`enroll_crops` then hands each crop to
:meth:`faceprint.gallery.Gallery.analyze_for_enrollment` and
:meth:`~faceprint.gallery.Gallery.commit_enrollment`: one face per crop, quality, duplicates --
the same rules as ``faceprint enroll``, with each rejected crop's reason.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceprint.gallery import Enrolled, EnrollmentReport, Gallery, Rejected
from faceprint.types import Box, EmbeddedFace
from faceprint.video.track import face_quality

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class FaceCrop:
    """A face's surroundings cut from frame ``frame`` (RGB), and its quality there."""

    frame: int
    quality: float
    rgb: np.ndarray


#: A kept crop is shrunk so that the face's longer side is at most this (quality gives full
#: marks from 80 px): memory stays small whatever the camera's resolution.
MAX_FACE_SIDE = 200


def crop_around(rgb: np.ndarray, box: Box, grow: float = 2.0, max_face_side: int = MAX_FACE_SIDE) -> np.ndarray:
    """The part of ``rgb`` around ``box`` grown ``grow`` times about its centre (clipped), as a
    copy, shrunk when the face is larger than ``max_face_side`` pixels."""
    import cv2

    h, w = rgb.shape[:2]
    cx, cy = box.center
    half_w, half_h = box.width * grow / 2.0, box.height * grow / 2.0
    x1, y1 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    x2, y2 = min(w, int(round(cx + half_w))), min(h, int(round(cy + half_h)))
    crop = np.ascontiguousarray(rgb[y1:y2, x1:x2])
    scale = max_face_side / max(box.width, box.height, 1.0)
    if scale >= 1.0 or crop.size == 0:
        return crop
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small: np.ndarray = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return small


class BestCrops:
    """The ``n`` best crops of each of the last ``max_tracks`` tracks seen (oldest forgotten)."""

    def __init__(self, n: int = 5, max_tracks: int = 32) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.max_tracks = max_tracks
        self.crops: OrderedDict[int, list[FaceCrop]] = OrderedDict()

    def offer(self, track: int, frame: int, rgb: np.ndarray, face: EmbeddedFace) -> None:
        """Keep this face of ``track`` if it is among the track's ``n`` best so far."""
        quality = face_quality(face)
        kept = self.crops.setdefault(track, [])
        self.crops.move_to_end(track)
        if len(kept) >= self.n and quality <= kept[-1].quality:
            return
        kept.append(FaceCrop(frame, quality, crop_around(rgb, face.face.box)))
        kept.sort(key=lambda c: (-c.quality, c.frame))
        del kept[self.n:]
        while len(self.crops) > self.max_tracks:
            self.crops.popitem(last=False)

    def forget(self, track: int) -> None:
        """Drop ``track``'s crops (a track that ended unconfirmed: a hand, a microphone)."""
        self.crops.pop(track, None)

    def best(self, track: int) -> list[FaceCrop]:
        """The track's best crops, best first (empty for a track not seen or forgotten)."""
        return list(self.crops.get(track, []))


def enroll_crops(gallery: Gallery, name: str, crops: Sequence[FaceCrop], *, label: str = "track") -> EnrollmentReport:
    """Enrol each crop's face under ``name`` through the gallery's checks; each crop is named
    ``{label}@frame{N}`` in the report."""
    enrolled: list[Enrolled] = []
    rejected: list[Rejected] = []
    for crop in crops:
        source = f"{label}@frame{crop.frame}"
        prepared, analysis = gallery.analyze_for_enrollment(source, crop.rgb)
        outcome = gallery.commit_enrollment(name, prepared, analysis)
        if isinstance(outcome, Enrolled):
            enrolled.append(outcome)
        else:
            rejected.append(outcome)
    logger.info("enrolled %s from %s: %d face(s), %d rejected", name, label, len(enrolled), len(rejected))
    return EnrollmentReport(tuple(enrolled), tuple(rejected))
