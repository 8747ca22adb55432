"""Boxes, track ids and names drawn on video frames (``faceprint watch --out``), with the same
drawing as still photos (:func:`faceprint.draw.draw_faces`: labels never cover one another)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceprint.draw import KNOWN, UNKNOWN, Mark, draw_faces
from faceprint.types import Box


@dataclass(frozen=True, slots=True)
class TrackMark:
    """One tracked face to draw: its box, its label (e.g. ``"#3 Ada 0.71"``), and whether the
    track has a name (green) or not (orange)."""

    box: Box
    label: str
    known: bool


def draw_tracks(rgb: np.ndarray, marks: Sequence[TrackMark]) -> np.ndarray:
    """A copy of the RGB frame ``rgb`` (``HxWx3`` ``uint8``) with each mark's box and label drawn."""
    if not marks:
        return np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    image = draw_faces(rgb, [Mark(m.box, m.label, KNOWN if m.known else UNKNOWN) for m in marks])
    return np.array(image, dtype=np.uint8)
