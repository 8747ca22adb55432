"""Track boxes and labels drawn on a frame, with faceprint.draw's colours."""

from __future__ import annotations

import numpy as np

from faceprint.draw import KNOWN, UNKNOWN
from faceprint.types import Box
from faceprint.video.annotate import TrackMark, draw_tracks


def test_draw_tracks_colours_known_and_unknown_and_leaves_the_frame_alone() -> None:
    frame = np.full((240, 320, 3), 90, np.uint8)
    marks = [TrackMark(Box(20, 20, 120, 140), "#1 Ada 0.71", known=True),
             TrackMark(Box(180, 30, 290, 150), "#2", known=False)]
    drawn = draw_tracks(frame, marks)
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8
    assert (frame == 90).all()  # a copy is drawn on
    assert tuple(drawn[80, 20]) == KNOWN  # left edge of the first box
    assert tuple(drawn[90, 180]) == UNKNOWN
    drawn[0, 0] = 0  # writable


def test_no_marks_is_a_copy() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    drawn = draw_tracks(frame, [])
    assert np.array_equal(drawn, frame) and drawn is not frame
