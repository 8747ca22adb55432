"""The checker's state machine, fed synthetic per-frame signals (EAR, yaw, box, embedding) at
30 fps: order, prompts, time limits, one face, identity continuity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.liveness.challenge import Challenge
from faceprint.liveness.check import FAILURE_REASONS, MESSAGES, LivenessChecker, LivenessPolicy
from faceprint.liveness.signals import FrameSignals
from faceprint.types import Box
from tests.conftest import default_dim

DT = 1 / 30
BOX = Box(220, 100, 420, 380)


def unit(theta_deg: float = 0.0, dim: int | None = None) -> np.ndarray:
    """A unit vector in the plane of the first two axes, ``theta`` degrees from the first."""
    v = np.zeros(dim or default_dim(), np.float32)
    v[0], v[1] = math.cos(math.radians(theta_deg)), math.sin(math.radians(theta_deg))
    return v


def frame(ear=0.30, yaw=0.0, *, emb=None, box=BOX, faces=1, others=0, size=224.0, passive=None) -> FrameSignals:
    if faces == 0:
        return FrameSignals(faces=0)
    return FrameSignals(faces=faces, others=others, box=box, size=size, ear=ear, yaw=yaw, pitch=0.0,
                        embedding=unit() if emb is None else emb, passive=passive)


OPEN, CLOSED, LEFT, RIGHT = frame(), frame(ear=0.12), frame(yaw=40.0), frame(yaw=-40.0)
# Each action starts 8 frames (0.27 s) after the previous one ended: past the 0.2 s reaction time.
BLINK = [OPEN] * 8 + [CLOSED] * 3 + [OPEN] * 4
TURN_LEFT = [OPEN] * 8 + [LEFT] * 5 + [OPEN] * 4
TURN_RIGHT = [OPEN] * 8 + [RIGHT] * 5 + [OPEN] * 4


def feed(checker: LivenessChecker, frames, start: float = 0.0, dt: float = DT):
    progress = None
    for i, f in enumerate(frames):
        progress = checker.observe_signals(f, start + i * dt)
    return progress, start + len(frames) * dt


@pytest.fixture
def check(analyzer):
    def make(challenge: str, **policy) -> LivenessChecker:
        return LivenessChecker(analyzer, Challenge.parse(challenge), policy=LivenessPolicy(**policy))
    return make


def test_the_challenge_answered_in_order_passes(check):
    c = check("blink:2,turn_left,turn_right")
    progress, end = feed(c, [OPEN] * 4 + BLINK + BLINK + TURN_LEFT + TURN_RIGHT)
    assert progress.state == "passed" and progress.prompt is None
    result = c.finish(end)
    assert result.passed and result.reason is None and result.message == "passed"
    assert [s.seen for s in result.steps] == [2, 1, 1]
    prompted = [s.prompted_at for s in result.steps]
    done = [s.completed_at for s in result.steps]
    assert prompted[1] == done[0] and prompted[2] == done[1]  # each step is prompted as the last completes
    doc = result.to_dict()
    assert doc["identity"]["min_similarity"] == pytest.approx(1.0) and doc["eyes"]["baseline"] == pytest.approx(0.3)


def test_progress_reveals_only_the_pending_step(check):
    c = check("turn_left,blink")
    p = c.observe_signals(OPEN, 0.0)
    assert (p.state, p.step, p.action) == ("pending", 0, "turn_left") and "left" in p.prompt
    p, _ = feed(c, TURN_LEFT, start=0.5)
    assert p.step == 1 and p.action == "blink" and p.prompt == "Blink once"
    doc = p.to_dict()
    assert set(doc) >= {"state", "step", "steps", "action", "prompt", "reason", "message", "box", "ear", "yaw", "hint"}
    assert doc["reason"] is None and doc["box"] == BOX.to_list()


def test_a_wrong_turn_fails(check):
    c = check("turn_left,turn_right")
    p, end = feed(c, [OPEN] * 10 + TURN_RIGHT)
    assert p.state == "failed" and p.reason == "wrong_action"
    assert c.finish(end).failed_step == 0


def test_a_turn_while_a_blink_is_pending_fails(check):
    p, _ = feed(check("blink,turn_left"), [OPEN] * 10 + TURN_LEFT)
    assert p.reason == "wrong_action"


def test_unasked_blinks_during_a_turn_step_are_ignored(check):
    c = check("turn_left")
    p, _ = feed(c, [OPEN] * 4 + BLINK + BLINK + TURN_LEFT)
    assert p.state == "passed"


def test_an_action_before_its_prompt_does_not_count(check):
    c = check("blink", reaction_s=1.0)
    p, end = feed(c, BLINK)  # the blink starts at 0.27 s: before 0 + 1.0 s
    assert p.state == "pending" and c.seen[0] == 0
    p, _ = feed(c, [OPEN] * 20 + BLINK, start=end)
    assert p.state == "passed"


def test_a_step_not_done_in_time_fails(check):
    c = check("blink")
    p, end = feed(c, [OPEN] * 200)  # 6.7 s of a still face against a 5 s limit
    assert p.state == "failed" and p.reason == "timeout"
    assert c.observe_signals(OPEN, end).state == "failed"  # decided: further frames change nothing


def test_only_the_times_given_count(check):
    """The same frames, a frame every 0.25 s: the two blinks are then further apart than the
    step's time limit."""
    frames = [OPEN] * 4 + BLINK + [OPEN] * 8 + BLINK
    assert feed(check("blink:2"), frames)[0].state == "passed"
    assert feed(check("blink:2"), frames, dt=0.25)[0].reason == "timeout"


def test_times_must_not_go_backwards(check):
    c = check("blink")
    c.observe_signals(OPEN, 1.0)
    with pytest.raises(InvalidArgumentError):
        c.observe_signals(OPEN, 0.5)
    with pytest.raises(InvalidArgumentError):
        c.observe_signals(OPEN, float("nan"))


def test_signals_of_another_embedder_are_refused(check):
    from dataclasses import replace

    from faceprint.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError):
        check("blink").observe_signals(replace(OPEN, model="other-model@1"), 0.0)


def test_a_second_face_fails_after_a_few_frames(check):
    two = frame(others=1, faces=2)
    p, _ = feed(check("blink"), [OPEN] * 5 + [two] * 2 + [OPEN])
    assert p.state == "pending"
    p, _ = feed(check("blink"), [OPEN] * 5 + [two] * 3)
    assert p.reason == "multiple_faces"


def test_a_second_face_missed_every_third_frame_still_fails(check):
    """Not only in a row: another face on 3 of the last 10 frames with a face fails."""
    two = frame(others=1, faces=2)
    p, _ = feed(check("blink"), [OPEN] * 5 + [two, two, OPEN] * 4)
    assert p.reason == "multiple_faces"
    p, _ = feed(check("blink"), [OPEN] * 5 + ([two] + [OPEN] * 5) * 4)  # a stray detection now and then
    assert p.state == "pending"


@pytest.mark.parametrize(("rgb", "error"), [
    (np.zeros((0, 0, 3), np.uint8), "InvalidImageError"),
    (np.zeros((64, 64), np.int64), "InvalidImageError"),
    (np.zeros((64, 64, 3, 2), np.uint8), "InvalidImageError"),
    ([[0, 0, 0]], "InvalidImageError"),
    ("huge", "ImageTooLargeError"),
])
def test_bad_frames_get_typed_errors(check, rgb, error):
    """What the Analyzer refuses in an image it refuses in a frame, before reading it."""
    from faceprint.errors import FaceprintError

    if isinstance(rgb, str):  # more pixels than the limit, without allocating them
        rgb = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (10_001, 10_001, 3))
    c = check("blink")
    with pytest.raises(FaceprintError) as exc:
        c.observe(rgb, 0.0)
    assert type(exc.value).__name__ == error
    assert c.frames == 0


def test_no_face_for_too_long_fails(check):
    none = frame(faces=0)
    p, _ = feed(check("blink"), [OPEN] * 5 + [none] * 20 + [OPEN])  # 0.67 s gap
    assert p.state == "pending"
    p, _ = feed(check("blink"), [OPEN] * 5 + [none] * 40)
    assert p.reason == "no_face" and p.to_dict()["message"] == MESSAGES["no_face"]


def test_a_jumping_face_fails(check):
    moved = frame(box=Box(BOX.x1 + 150, BOX.y1, BOX.x2 + 150, BOX.y2))
    p, _ = feed(check("blink"), [OPEN] * 5 + [moved])
    assert p.reason == "face_jumped"


def test_another_person_fails(check):
    p, _ = feed(check("blink"), [OPEN] * 5 + [frame(emb=unit(90.0))])
    assert p.reason == "identity_changed"


def test_a_slow_drift_to_another_face_fails_at_the_end(check):
    """Each frame stays close to the running mean, but the first third and the last third of
    the frames are far apart: the end-to-end check catches it."""
    frames = [frame(emb=unit(100.0 * i / 60)) for i in range(50)]
    frames += [frame(yaw=40.0, emb=unit(100.0 * i / 60)) for i in range(50, 56)]
    c = check("turn_left", identity_threshold=0.5, ends_threshold=0.6)
    p, _ = feed(c, frames)
    assert p.reason == "identity_changed"
    ident = c.result().identity
    assert ident.min_similarity >= 0.5 and ident.ends_similarity < 0.6
    steady = check("turn_left", identity_threshold=0.5, ends_threshold=0.6)
    assert feed(steady, [OPEN] * 50 + [LEFT] * 6)[0].state == "passed"


def test_small_faces_give_no_eye_reading(check):
    small = [frame(ear=e, size=60.0) for e in [0.3] * 6 + [0.12] * 3 + [0.3] * 4]
    p, _ = feed(check("blink"), small)
    assert p.state == "pending" and p.hint == "small_face"


def test_finish_and_expire_name_why(check):
    assert check("blink").finish(0.0).reason == "no_face"
    c = check("blink")
    _, end = feed(c, [OPEN] * 10)
    assert c.finish(end).reason == "incomplete"
    c = check("blink")
    _, end = feed(c, [OPEN] * 10)
    assert c.finish(end + 10).reason == "timeout"
    c = check("blink")
    feed(c, [OPEN] * 10)
    assert c.expire(1.0).reason == "expired"
    assert set(MESSAGES) == set(FAILURE_REASONS)


def test_policy_values_are_checked():
    with pytest.raises(InvalidArgumentError):
        LivenessPolicy(max_closed_s=0)
    with pytest.raises(InvalidArgumentError):
        LivenessPolicy(multiple_faces_frames=0)
    with pytest.raises(InvalidArgumentError):
        LivenessPolicy(multiple_faces_frames=4, multiple_faces_window=3)
