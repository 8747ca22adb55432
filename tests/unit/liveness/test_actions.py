"""Blink and turn detection from per-frame numbers (EAR, yaw) at 30 fps."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.liveness.actions import BlinkDetector, TurnDetector
from faceprint.liveness.signals import EYE_THRESHOLDS, eye_aspect_ratio, eye_thresholds_for
from faceprint.types import Landmarks

DT = 1 / 30


def feed_blinks(detector: BlinkDetector, ears, yaw=0.0, start=0.0):
    events = []
    for i, ear in enumerate(ears):
        event = detector.update(ear, yaw, start + i * DT)
        if event is not None:
            events.append(event)
    return events


def test_an_open_closed_open_transition_is_a_blink():
    d = BlinkDetector(EYE_THRESHOLDS["fr-landmark"])
    events = feed_blinks(d, [0.30] * 10 + [0.15] * 4 + [0.30] * 5)
    assert len(events) == 1 and events[0].action == "blink"
    assert events[0].start_s == pytest.approx(10 * DT) and events[0].end_s == pytest.approx(14 * DT)
    assert d.baseline == pytest.approx(0.30)


def test_no_blink_before_a_baseline_nor_from_a_closed_still():
    d = BlinkDetector(EYE_THRESHOLDS["fr-landmark"])
    assert feed_blinks(d, [0.30] * 2 + [0.15] * 2 + [0.30] * 3) == []  # closed before 5 frames were seen
    d = BlinkDetector(EYE_THRESHOLDS["fr-landmark"])
    assert feed_blinks(d, [0.15] * 90) == []  # closed eyes from the start: never a transition


def test_a_closure_held_too_long_is_not_a_blink():
    d = BlinkDetector(EYE_THRESHOLDS["fr-landmark"], max_closed_s=1.0)
    assert feed_blinks(d, [0.30] * 10 + [0.15] * 40 + [0.30] * 5) == []
    assert len(feed_blinks(d, [0.15] * 3 + [0.30] * 3, start=100)) == 1  # then a real one counts


def test_hysteresis_keeps_a_closure_until_the_eyes_are_clearly_open():
    th = EYE_THRESHOLDS["fr-landmark"]
    d = BlinkDetector(th)
    base = 0.30
    between = (th.closed_below(base) + th.open_above(base)) / 2
    events = feed_blinks(d, [base] * 10 + [0.15, between, 0.15, between, between, base])
    assert len(events) == 1 and events[0].end_s == pytest.approx(15 * DT)


def test_eyes_are_not_read_with_the_head_turned():
    d = BlinkDetector(EYE_THRESHOLDS["dlib68"])
    feed_blinks(d, [0.30] * 10)
    assert feed_blinks(d, [0.10] * 3 + [0.30] * 3, yaw=35.0, start=1.0) == []


def feed_yaws(detector: TurnDetector, yaws, start=0.0):
    return [e for i, y in enumerate(yaws) if (e := detector.update(y, start + i * DT)) is not None]


def test_a_turn_held_three_frames_after_frontal_counts_once():
    d = TurnDetector()
    events = feed_yaws(d, [0] * 5 + [40] * 10 + [0] * 3 + [-40] * 4)
    assert [e.action for e in events] == ["turn_left", "turn_right"]  # yaw > 0: the user's own left
    assert events[0].start_s == pytest.approx(5 * DT) and events[0].end_s == pytest.approx(7 * DT)


def test_a_turn_needs_frontal_first_and_a_return_before_the_next():
    d = TurnDetector()
    assert feed_yaws(d, [40] * 10) == []  # never frontal: not armed
    d = TurnDetector()
    assert len(feed_yaws(d, [0] * 3 + [40] * 5 + [20] * 3 + [40] * 5)) == 1  # 20 is not back to frontal


def test_a_brief_turn_or_a_small_one_is_not_a_turn():
    assert feed_yaws(TurnDetector(), [0] * 3 + [40, 40] + [0] * 3) == []  # 2 frames, 1/30 s apart
    assert feed_yaws(TurnDetector(), [0] * 3 + [20] * 10) == []
    # at 5 fps two frames 0.2 s apart are enough
    assert len([e for i, y in enumerate([0, 40, 40]) if (e := TurnDetector().update(y, i * 0.2))]) <= 1
    d = TurnDetector()
    assert [d.update(y, i * 0.2) for i, y in enumerate([0, 40, 40])][-1] is not None


def test_eye_aspect_ratio_of_a_drawn_eye():
    points = np.zeros((68, 2))
    for start in (36, 42):  # an eye 30 wide and 9 high: EAR 0.3
        points[start:start + 6] = [[0, 0], [10, -4.5], [20, -4.5], [30, 0], [20, 4.5], [10, 4.5]]
    assert eye_aspect_ratio(Landmarks(points, "ibug68")) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        eye_aspect_ratio(Landmarks(np.zeros((5, 2)), "dlib5"))


def test_thresholds_per_landmark_model():
    assert eye_thresholds_for("dlib68") is EYE_THRESHOLDS["dlib68"]
    assert eye_thresholds_for("some-other") is EYE_THRESHOLDS["fr-landmark"]
    th = EYE_THRESHOLDS["dlib68"]
    assert th.closed_below(0.30) == pytest.approx(0.195) and th.open_above(0.30) == pytest.approx(0.255)
