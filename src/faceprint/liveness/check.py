"""The liveness check: a challenge answered frame by frame, by one person throughout.

>>> checker = LivenessChecker(Analyzer(), random_challenge())
>>> for frame in frames:                       # the server's receive time, not the client's
...     progress = checker.observe(frame.rgb, frame.time_s)
...     show(progress.prompt)                  # only the pending step is ever revealed
>>> result = checker.finish(last_time_s)       # LivenessResult: passed, reason, steps, identity

What passes (docs/research/liveness.md section 3 has the measurements behind each number):

* **Actions in order.** Step ``i`` is prompted when step ``i-1`` completes (the first at the first
  frame). An action that began before its step's prompt (+ ``reaction_s``) does not count; a
  turn while another action is pending is a ``wrong_action`` failure, and so is a turn while a
  blink is pending. Blinks while a turn is pending are ignored: people blink every few seconds
  unasked, and failing them for it would fail most honest users. Each step must be completed
  within the challenge's ``step_timeout_s`` of its prompt (``timeout``).
* **One face.** Another face at least ``other_face_ratio`` of the main face's size on
  ``multiple_faces_frames`` of the last ``multiple_faces_window`` frames with a face fails
  (``multiple_faces``; not only in a row: a second face that the detector misses every third
  frame must not pass); no face for longer than ``max_face_gap_s`` fails (``no_face``).
* **The same person.** Every frame's embedding must reach the embedder card's threshold at
  ``identity_far`` (1e-3) against the mean of the frames accepted so far (not the first frame:
  on the hamilton clip 41% of a genuine track's frames fall below it against its first frame,
  none against the running mean); at the end the mean of the first third of the frames against
  the mean of the last third must reach the ``ends_far`` (1e-4) threshold. The face's centre may
  move at most ``max_box_shift`` box widths between consecutive frames (``face_jumped``: a
  crude splice). Otherwise ``identity_changed``.

The checker uses only the ``time_s`` it is given (the service passes its own receive time), and
times must not go backwards. It never keeps frames: only signals, and the embeddings of the
accepted frames (for the first-third / last-third comparison).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from faceprint.errors import InvalidArgumentError, ModelMismatchError
from faceprint.liveness.actions import ActionEvent, BlinkDetector, TurnDetector
from faceprint.liveness.challenge import Action, Challenge
from faceprint.liveness.passive import PassiveModel
from faceprint.liveness.signals import EyeThresholds, FrameSignals, SignalReader, eye_thresholds_for
from faceprint.pipeline import Analyzer, resolve_threshold
from faceprint.types import Box, cosine_similarity

logger = logging.getLogger(__name__)

State = Literal["pending", "passed", "failed"]
#: Why a check failed: stable codes for programs (``message`` says it for people).
FailureReason = Literal[
    "no_face", "multiple_faces", "timeout", "wrong_action", "identity_changed", "face_jumped", "expired", "incomplete",
]
FAILURE_REASONS: tuple[FailureReason, ...] = get_args(FailureReason)

MESSAGES: dict[FailureReason, str] = {
    "no_face": "no face was seen for too long",
    "multiple_faces": "more than one face was in view",
    "timeout": "the pending step was not completed in time",
    "wrong_action": "an action other than the one asked for was performed",
    "identity_changed": "the face did not stay the same person's",
    "face_jumped": "the face jumped between frames (the video was cut)",
    "expired": "the session expired before the challenge was completed",
    "incomplete": "the frames ended before the challenge was completed",
}


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """The numbers behind a check (defaults measured: docs/research/liveness.md, bench/README.md
    'Liveness signals')."""

    # eyes
    eye_thresholds: EyeThresholds | None = None  #: None: those measured for the 68-point model in use
    baseline_frames: int = 5  #: open frontal frames needed before a blink can count
    baseline_window: int = 30
    blink_max_yaw: float = 20.0
    max_closed_s: float = 1.0  #: a longer closure (a closed-eye photo held up) is not a blink
    min_eye_face_px: float = 90.0  #: smaller faces' EAR is noise: eyes are not read
    # head turns (yaw > 0 is the user's own left)
    turn_min_yaw: float = 25.0
    frontal_max_yaw: float = 12.0
    turn_hold_frames: int = 3
    turn_hold_s: float = 0.1
    # prompts
    reaction_s: float = 0.2  #: an action starting sooner than this after its prompt does not count
    # faces
    other_face_ratio: float = 0.4
    multiple_faces_frames: int = 3
    multiple_faces_window: int = 10  #: ... of the last this many frames with a face
    max_face_gap_s: float = 1.0
    max_box_shift: float = 0.5  #: box widths the face's centre may move between consecutive frames
    # identity
    identity_far: float = 1e-3
    ends_far: float = 1e-4
    identity_threshold: float | None = None  #: instead of ``identity_far`` (an embedder without calibration)
    ends_threshold: float | None = None
    # passive model: score every Nth frame with one face
    passive_every: int = 5

    def __post_init__(self) -> None:
        for name in ("baseline_frames", "baseline_window", "turn_hold_frames", "multiple_faces_frames", "passive_every"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be at least 1")
        if self.multiple_faces_window < self.multiple_faces_frames:
            raise InvalidArgumentError("multiple_faces_window must be at least multiple_faces_frames")
        for name in ("max_closed_s", "max_face_gap_s", "max_box_shift", "turn_min_yaw"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidArgumentError(f"{name} must be a positive number; got {value}")


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of the challenge and when it happened (seconds on the checker's clock)."""

    action: Action
    count: int
    seen: int
    prompted_at: float | None
    completed_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "count": self.count, "seen": self.seen, "done": self.completed_at is not None,
            "prompted_at": _round(self.prompted_at, 3), "completed_at": _round(self.completed_at, 3),
        }


@dataclass(frozen=True, slots=True)
class LivenessProgress:
    """Where a check stands after a frame. ``prompt`` is the pending step's (None once decided);
    ``signals`` this frame's (the main face's box, EAR, yaw); ``hint`` what is wrong with the
    frame, if anything (``no_face``, ``multiple_faces``, ``small_face``)."""

    state: State
    step: int
    steps: int
    action: Action | None
    prompt: str | None
    seen: int
    count: int
    reason: FailureReason | None
    time_s: float
    signals: FrameSignals | None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        sig = self.signals
        return {
            "state": self.state,
            "step": self.step,
            "steps": self.steps,
            "action": self.action,
            "prompt": self.prompt,
            "seen": self.seen,
            "count": self.count,
            "reason": self.reason,
            "message": MESSAGES[self.reason] if self.reason else None,
            "time_s": round(self.time_s, 3),
            "faces": sig.faces if sig is not None else None,
            "box": sig.box.to_list() if sig is not None and sig.box is not None else None,
            "ear": _round(sig.ear if sig is not None else None, 4),
            "yaw": _round(sig.yaw if sig is not None else None, 1),
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class IdentityConsistency:
    """How well the frames matched each other: the lowest similarity of a frame to the running
    mean before it (``threshold`` at ``far``), and the first third's mean against the last
    third's (``ends_threshold`` at ``ends_far``; None until the end)."""

    far: float | None
    threshold: float
    min_similarity: float | None
    ends_far: float | None
    ends_threshold: float
    ends_similarity: float | None
    frames: int
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "far": self.far, "threshold": round(self.threshold, 6), "min_similarity": _round(self.min_similarity, 6),
            "ends_far": self.ends_far, "ends_threshold": round(self.ends_threshold, 6),
            "ends_similarity": _round(self.ends_similarity, 6), "frames": self.frames, "model": self.model,
        }


@dataclass(frozen=True, slots=True)
class PassiveSummary:
    """The passive model's scores over the frames it saw (probability of live, mean and lowest),
    and its verdict where its sidecar gives a threshold. Reported, not part of ``passed``."""

    model: str
    frames: int
    mean: float | None
    lowest: float | None
    threshold: float | None

    @property
    def live(self) -> bool | None:
        if self.threshold is None or self.mean is None:
            return None
        return self.mean >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "frames": self.frames, "score": _round(self.mean, 4),
                "lowest": _round(self.lowest, 4), "threshold": self.threshold, "live": self.live}


@dataclass(frozen=True, slots=True)
class LivenessResult:
    """The verdict: ``passed``, or the ``reason`` it failed; the steps with their times; the
    identity-consistency numbers; the passive model's score (None without one)."""

    passed: bool
    reason: FailureReason | None
    challenge: Challenge
    steps: tuple[StepRecord, ...]
    identity: IdentityConsistency
    passive: PassiveSummary | None
    eye_baseline: float | None
    eye_landmarks: str
    frames: int
    face_frames: int
    started_at: float | None
    decided_at: float | None
    failed_step: int | None = None

    @property
    def message(self) -> str:
        return "passed" if self.reason is None else MESSAGES[self.reason]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "message": self.message,
            "failed_step": self.failed_step,
            "challenge": self.challenge.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "identity": self.identity.to_dict(),
            "passive": self.passive.to_dict() if self.passive is not None else None,
            "eyes": {"landmarks": self.eye_landmarks, "baseline": _round(self.eye_baseline, 4)},
            "frames": self.frames,
            "face_frames": self.face_frames,
            "started_at": _round(self.started_at, 3),
            "decided_at": _round(self.decided_at, 3),
            "duration_s": (_round(self.decided_at - self.started_at, 3)
                           if self.started_at is not None and self.decided_at is not None else None),
        }


@dataclass(slots=True)
class _Identity:
    threshold: float
    far: float | None
    ends_threshold: float
    ends_far: float | None
    accepted: list[np.ndarray] = field(default_factory=list)
    total: np.ndarray | None = None
    lowest: float | None = None
    ends: float | None = None

    def add(self, embedding: np.ndarray) -> bool:
        """Whether ``embedding`` matches the running mean (it is then added to it)."""
        vector = embedding.astype(np.float64)
        if self.total is not None:
            similarity = cosine_similarity(vector, _unit(self.total))
            self.lowest = similarity if self.lowest is None else min(self.lowest, similarity)
            if similarity < self.threshold:
                return False
            self.total = self.total + vector
        else:
            self.total = vector.copy()
        self.accepted.append(vector)
        return True

    def ends_match(self) -> bool:
        third = len(self.accepted) // 3
        if third < 1:
            return True  # too few frames to split; every one matched the running mean
        first = _unit(np.sum(self.accepted[:third], axis=0))
        last = _unit(np.sum(self.accepted[-third:], axis=0))
        self.ends = cosine_similarity(first, last)
        return self.ends >= self.ends_threshold


class LivenessChecker:
    """Checks ``challenge`` against frames given one at a time (see the module docstring).

    :meth:`observe` reads a frame with ``analyzer`` (the main face's signals, embedding and,
    every ``policy.passive_every`` frames, ``passive``'s score); :meth:`observe_signals` takes a
    frame's :class:`FrameSignals` already read (by :attr:`reader`, or for many checkers at once).
    Both return a :class:`LivenessProgress`; once decided, further frames change nothing.
    """

    def __init__(self, analyzer: Analyzer, challenge: Challenge, *, policy: LivenessPolicy = LivenessPolicy(),
                 passive: PassiveModel | None = None) -> None:
        self.challenge = challenge
        self.policy = policy
        self.passive = passive
        self.reader = SignalReader(analyzer, other_face_ratio=policy.other_face_ratio)
        card = self.reader.analyzer.embedder_card
        threshold, far, _ = resolve_threshold(card, far=None if policy.identity_threshold is not None else policy.identity_far,
                                              threshold=policy.identity_threshold)
        ends, ends_far, _ = resolve_threshold(card, far=None if policy.ends_threshold is not None else policy.ends_far,
                                              threshold=policy.ends_threshold)
        self.identity = _Identity(threshold, far, ends, ends_far)
        self.eye_model = self.reader.eye_model
        thresholds = policy.eye_thresholds or eye_thresholds_for(self.eye_model)
        self.blinks = BlinkDetector(thresholds, min_frames=policy.baseline_frames, window=policy.baseline_window,
                                    max_yaw=policy.blink_max_yaw, max_closed_s=policy.max_closed_s)
        self.turns = TurnDetector(min_yaw=policy.turn_min_yaw, frontal_yaw=policy.frontal_max_yaw,
                                  hold_frames=policy.turn_hold_frames, hold_s=policy.turn_hold_s)
        n = len(challenge.steps)
        self.step = 0
        self.seen = [0] * n
        self.prompted_at: list[float | None] = [None] * n
        self.completed_at: list[float | None] = [None] * n
        self.state: State = "pending"
        self.reason: FailureReason | None = None
        self.failed_step: int | None = None
        self.started_at: float | None = None
        self.decided_at: float | None = None
        self.last_time: float | None = None
        self.last_face_time: float | None = None
        self.last_box: Box | None = None
        #: For each of the last frames with a face, whether another face was in view.
        self.multiple_recent: deque[bool] = deque(maxlen=policy.multiple_faces_window)
        self.frames = 0
        self.face_frames = 0
        self.passive_scores: list[float] = []
        self.events: list[ActionEvent] = []

    # --- frames --------------------------------------------------------------------------------
    def observe(self, rgb: np.ndarray, time_s: float) -> LivenessProgress:
        """Read one RGB frame taken (received) at ``time_s`` and advance the check."""
        if self.state != "pending":
            return self._progress(time_s, None)
        score = self.passive is not None and self.face_frames % self.policy.passive_every == 0
        signals = self.reader.read(rgb, self.passive if score else None)
        return self.observe_signals(signals, time_s)

    def observe_signals(self, signals: FrameSignals, time_s: float) -> LivenessProgress:
        """Advance the check with one frame's signals (read by a :class:`SignalReader` with the
        same embedder: :class:`ModelMismatchError` otherwise) at ``time_s``."""
        if signals.model and signals.model != self.reader.model_id:
            raise ModelMismatchError(
                f"these signals were read with {signals.model}; this checker compares {self.reader.model_id}",
                details={"models": [signals.model, self.reader.model_id]})
        self._check_time(time_s)
        if self.state != "pending":
            return self._progress(time_s, signals)
        self.frames += 1
        if self.started_at is None:
            self.started_at = time_s
            self.prompted_at[0] = time_s
        if self._timed_out(time_s):
            return self._fail("timeout", time_s, signals)
        if not signals.has_face:
            self.blinks.reset()
            self.turns.update(None, time_s)
            since = self.last_face_time if self.last_face_time is not None else self.started_at
            if time_s - since > self.policy.max_face_gap_s:
                return self._fail("no_face", time_s, signals)
            return self._progress(time_s, signals, "no_face")
        self.multiple_recent.append(signals.others > 0)
        if signals.others > 0:
            if sum(self.multiple_recent) >= self.policy.multiple_faces_frames:
                return self._fail("multiple_faces", time_s, signals)
            return self._progress(time_s, signals, "multiple_faces")  # ambiguous: not used
        assert signals.box is not None
        if self.last_box is not None and _shift(self.last_box, signals.box) > self.policy.max_box_shift:
            return self._fail("face_jumped", time_s, signals)
        self.last_box, self.last_face_time = signals.box, time_s
        self.face_frames += 1
        if signals.embedding is not None and not self.identity.add(signals.embedding):
            return self._fail("identity_changed", time_s, signals)
        if signals.passive is not None:
            self.passive_scores.append(signals.passive)
        small = signals.size is not None and signals.size < self.policy.min_eye_face_px
        blink = self.blinks.update(None if small else signals.ear, signals.yaw, time_s)
        turn = self.turns.update(signals.yaw, time_s)
        for event in (blink, turn):
            if event is not None and self.state == "pending":
                self._answer(event, time_s)
        return self._progress(time_s, signals, "small_face" if small and self.state == "pending" else None)

    def _answer(self, event: ActionEvent, time_s: float) -> None:
        self.events.append(event)
        i = self.step
        prompted = self.prompted_at[i]
        assert prompted is not None
        if event.start_s < prompted + self.policy.reaction_s:
            logger.debug("%s at %.3f s began before step %d's prompt (%.3f s): not counted", event.action,
                         event.start_s, i, prompted)
            return
        wanted = self.challenge.steps[i]
        if event.action != wanted:
            if event.action == "blink":
                return  # unasked blinks during a turn step are normal
            self._decide("wrong_action", time_s)
            return
        self.seen[i] += 1
        if self.seen[i] < self.challenge.count(i):
            return
        self.completed_at[i] = event.end_s
        self.step += 1
        if self.step < len(self.challenge.steps):
            self.prompted_at[self.step] = event.end_s
            return
        if not self.identity.ends_match():
            self._decide("identity_changed", time_s)
            return
        self.state, self.decided_at = "passed", time_s
        logger.info("liveness passed at %.3f s (%s)", time_s, self.challenge.describe())

    # --- ending ----------------------------------------------------------------------------------
    def finish(self, time_s: float) -> LivenessResult:
        """The verdict once the frames have ended at ``time_s``: a pending check fails
        (``timeout`` when its step's time was up, else ``incomplete``; ``no_face`` when no face
        was ever seen)."""
        if self.state == "pending":
            self._check_time(time_s)
            if self.face_frames == 0:
                self._decide("no_face", time_s)
            else:
                self._decide("timeout" if self._timed_out(time_s) else "incomplete", time_s)
        return self.result()

    def expire(self, time_s: float) -> LivenessResult:
        """The verdict when the session's time is up (the service's expiry): a pending check fails
        with ``expired``."""
        if self.state == "pending":
            self._decide("expired", time_s)
        return self.result()

    def result(self) -> LivenessResult:
        """The result as it stands (``passed`` False and ``reason`` None while pending)."""
        steps = tuple(StepRecord(a, self.challenge.count(i), self.seen[i], self.prompted_at[i], self.completed_at[i])
                      for i, a in enumerate(self.challenge.steps))
        ident = self.identity
        passive = None
        if self.passive is not None:
            scores = self.passive_scores
            passive = PassiveSummary(self.passive.model_id, len(scores), float(np.mean(scores)) if scores else None,
                                     min(scores) if scores else None, self.passive.threshold)
        return LivenessResult(
            passed=self.state == "passed", reason=self.reason, challenge=self.challenge, steps=steps,
            identity=IdentityConsistency(ident.far, ident.threshold, ident.lowest, ident.ends_far, ident.ends_threshold,
                                         ident.ends, len(ident.accepted), self.reader.model_id),
            passive=passive, eye_baseline=self.blinks.baseline, eye_landmarks=self.eye_model, frames=self.frames,
            face_frames=self.face_frames, started_at=self.started_at, decided_at=self.decided_at,
            failed_step=self.failed_step,
        )

    # --- helpers ---------------------------------------------------------------------------------
    def _check_time(self, time_s: float) -> None:
        if not math.isfinite(time_s):
            raise InvalidArgumentError(f"time_s must be a finite number; got {time_s}")
        if self.last_time is not None and time_s < self.last_time:
            raise InvalidArgumentError(
                f"frame times must not go backwards: {time_s:.3f} s after {self.last_time:.3f} s",
                details={"time_s": time_s, "previous": self.last_time})
        self.last_time = time_s

    def _timed_out(self, time_s: float) -> bool:
        prompted = self.prompted_at[self.step] if self.step < len(self.challenge.steps) else None
        return prompted is not None and time_s - prompted > self.challenge.step_timeout_s

    def _decide(self, reason: FailureReason, time_s: float) -> None:
        self.state, self.reason, self.decided_at = "failed", reason, time_s
        self.failed_step = self.step if self.step < len(self.challenge.steps) else None
        logger.info("liveness failed at %.3f s on step %s: %s", time_s, self.failed_step, reason)

    def _fail(self, reason: FailureReason, time_s: float, signals: FrameSignals | None) -> LivenessProgress:
        self._decide(reason, time_s)
        return self._progress(time_s, signals)

    def _progress(self, time_s: float, signals: FrameSignals | None, hint: str | None = None) -> LivenessProgress:
        n = len(self.challenge.steps)
        pending = self.state == "pending" and self.step < n
        i = min(self.step, n - 1)
        return LivenessProgress(
            state=self.state, step=self.step, steps=n,
            action=self.challenge.steps[i] if pending else None,
            prompt=self.challenge.prompt(i) if pending else None,
            seen=self.seen[i] if pending else 0, count=self.challenge.count(i) if pending else 0,
            reason=self.reason, time_s=time_s, signals=signals, hint=hint,
        )


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _shift(previous: Box, current: Box) -> float:
    """How far the box's centre moved, in the previous box's widths."""
    (x0, y0), (x1, y1) = previous.center, current.center
    return math.hypot(x1 - x0, y1 - y0) / max(previous.width, 1.0)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)
