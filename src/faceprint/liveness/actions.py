"""Actions seen in a stream of per-frame signals: blinks (from the eye aspect ratio against the
person's own open-eye baseline, with hysteresis) and head turns (from yaw, re-armed by a return
to frontal). Each detector is fed one frame at a time and says when an action has completed;
the checker (:mod:`faceprint.liveness.check`) decides whether it answers the pending step.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from faceprint.liveness.challenge import Action
from faceprint.liveness.signals import EyeThresholds


@dataclass(frozen=True, slots=True)
class ActionEvent:
    """An action that completed: it began at ``start_s`` (eyes first closed; yaw first past the
    turn threshold) and was complete at ``end_s``."""

    action: Action
    start_s: float
    end_s: float

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}


class BlinkDetector:
    """Open -> closed -> open, closed for at most ``max_closed_s``.

    The open-eye baseline is the median EAR of the last ``window`` frames read as open while the
    face was near frontal; blinks are looked for only once ``min_frames`` such frames were seen.
    Frames with ``|yaw| > max_yaw`` are skipped: the far eye's EAR is unreliable when the head is
    turned (docs/research/liveness.md section 1). A closure held longer than ``max_closed_s`` (a
    photo with closed eyes held up) is not a blink: 1 s, longer than the 0.5 s of a spontaneous
    blink, because a blink on request is often slower. Pitch is not used to gate (looking down
    lowers the EAR like a blink): dlib5's pitch reads -25.6, its floor, on most frontal test
    photos, so a pitch gate would block every blink with the dlib pipeline; a blink still needs
    the eyes to open again.
    """

    def __init__(self, thresholds: EyeThresholds, *, min_frames: int = 5, window: int = 30,
                 max_yaw: float = 20.0, max_closed_s: float = 1.0) -> None:
        self.thresholds = thresholds
        self.min_frames = min_frames
        self.max_yaw = max_yaw
        self.max_closed_s = max_closed_s
        self.open_ears: deque[float] = deque(maxlen=window)
        self.closed_since: float | None = None

    @property
    def baseline(self) -> float | None:
        """The open-eye EAR baseline, once enough frames were seen."""
        return statistics.median(self.open_ears) if len(self.open_ears) >= self.min_frames else None

    def update(self, ear: float | None, yaw: float | None, time_s: float) -> ActionEvent | None:
        """Feed one frame (``ear``/``yaw`` None: no usable face); the blink it completes, if any."""
        if ear is None or yaw is None or abs(yaw) > self.max_yaw:
            return None
        baseline = self.baseline
        if self.closed_since is not None:
            assert baseline is not None  # a closure starts only against a baseline
            if ear <= self.thresholds.open_above(baseline):
                return None  # still closed (or between the thresholds: hysteresis)
            start, self.closed_since = self.closed_since, None
            self.open_ears.append(ear)
            if time_s - start <= self.max_closed_s:
                return ActionEvent("blink", start, time_s)
            return None  # held closed too long
        if baseline is not None and ear < self.thresholds.closed_below(baseline):
            self.closed_since = time_s
            return None
        self.open_ears.append(ear)
        return None

    def reset(self) -> None:
        """Forget a closure under way (the face was lost)."""
        self.closed_since = None


class TurnDetector:
    """A head turn: yaw beyond ``min_yaw`` (either sign) for ``hold_frames`` consecutive frames,
    or for two frames at least ``hold_s`` apart, after the face was seen frontal
    (``|yaw| <= frontal_yaw``). After a turn the face must come back to frontal before another
    turn counts. ``yaw > 0`` is the user's own left (:data:`faceprint.liveness.challenge.YAW_SIGN`).
    """

    def __init__(self, *, min_yaw: float = 25.0, frontal_yaw: float = 12.0, hold_frames: int = 3,
                 hold_s: float = 0.1) -> None:
        self.min_yaw = min_yaw
        self.frontal_yaw = frontal_yaw
        self.hold_frames = hold_frames
        self.hold_s = hold_s
        self.armed = False
        self.sign = 0
        self.count = 0
        self.since = 0.0

    def update(self, yaw: float | None, time_s: float) -> ActionEvent | None:
        """Feed one frame (``yaw`` None: no usable face); the turn it completes, if any."""
        if yaw is None:
            self.count = 0
            return None
        if abs(yaw) <= self.frontal_yaw:
            self.armed, self.count = True, 0
            return None
        if not self.armed or abs(yaw) < self.min_yaw:
            self.count = 0
            return None
        sign = 1 if yaw > 0 else -1
        if self.count == 0 or sign != self.sign:
            self.sign, self.count, self.since = sign, 1, time_s
        else:
            self.count += 1
        if self.count >= self.hold_frames or (self.count >= 2 and time_s - self.since >= self.hold_s):
            self.armed, self.count = False, 0
            return ActionEvent("turn_left" if sign > 0 else "turn_right", self.since, time_s)
        return None
