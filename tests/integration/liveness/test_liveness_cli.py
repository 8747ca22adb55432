"""``faceprint liveness SOURCE`` on a video file written from the genuine test sequence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceprint.cli.root import app
from tests.integration.liveness.conftest import FPS, FRAME_SIZE, HUGO_BLINK2_LEFT_RIGHT, HUGO_CLOSED, HUGO_LEFT, HUGO_OPEN, frames_of

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def genuine_video(tmp_path_factory) -> Path:
    """The genuine Hugo_Chavez sequence as an MJPG .avi (a lossy codec, as real files are)."""
    from faceprint.video.source import VideoWriter

    path = tmp_path_factory.mktemp("liveness") / "genuine.avi"
    with VideoWriter(path, FPS, FRAME_SIZE) as writer:
        for rgb in frames_of(HUGO_BLINK2_LEFT_RIGHT):
            writer.write(rgb)
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, ["liveness", *args])


def test_a_genuine_recording_passes_its_own_challenge(genuine_video):
    result = invoke(str(genuine_video), "--challenge", "blink:2,left,right", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["passed"] is True and doc["reason"] is None
    assert doc["challenge"]["challenge"] == "blink:2,turn_left,turn_right"
    assert [s["done"] for s in doc["steps"]] == [True, True, True]
    assert doc["source"]["frame_count"] == sum(k for _, k in HUGO_BLINK2_LEFT_RIGHT)
    assert doc["identity"]["ends_similarity"] >= doc["identity"]["ends_threshold"]


def test_the_recording_fails_another_order_with_exit_1(genuine_video):
    result = invoke(str(genuine_video), "--challenge", "turn_right,blink,turn_left")
    assert result.exit_code == 1, result.output
    assert "FAILED (wrong_action)" in result.stdout


def test_a_still_photo_video_fails_and_a_passive_model_is_reported(tmp_path):
    """A y4m of one photo held 20 frames; the passive model is the unit tests' toy graph."""
    from faceprint.video.source import write_y4m
    from tests.unit.liveness.test_passive import pad_onnx, sidecar

    path = tmp_path / "still.y4m"
    write_y4m(path, frames_of([(HUGO_OPEN, 20)]))
    model = pad_onnx(tmp_path / "pad.onnx")
    sidecar(model)
    result = invoke(str(path), "--challenge", "blink", "--passive-model", str(model), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["passed"] is False and doc["reason"] == "incomplete"
    assert doc["passive"]["model"] == "test-pad@1" and doc["passive"]["frames"] == 4  # every 5th of 20 frames
    assert 0.0 <= doc["passive"]["score"] <= 1.0


def test_a_file_needs_the_challenge_it_answers(genuine_video):
    result = invoke(str(genuine_video), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "invalid_argument"


@pytest.mark.parametrize("challenge", ["blink,jump", "blink:9", "blink:x", ""])
def test_a_bad_challenge_is_a_usage_error(genuine_video, challenge):
    result = invoke(str(genuine_video), "--challenge", challenge, "--json")
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"]["code"] == "invalid_argument"


def test_a_missing_file_is_a_usage_error(tmp_path):
    """A mistyped video path exits 2, as a mistyped gallery path does."""
    result = invoke(str(tmp_path / "nothing.mp4"), "--challenge", "blink", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "video_not_found"


def test_ctrl_c_prints_the_result_so_far_and_exits_130(monkeypatch):
    from faceprint.video import source
    from faceprint.video.source import frames_from_arrays

    def interrupted_after_a_few():
        yield from frames_of([(HUGO_OPEN, 5)])
        raise KeyboardInterrupt

    monkeypatch.setattr(source, "open_source", lambda path, **kw: frames_from_arrays(interrupted_after_a_few(), FPS))
    result = invoke("clip.mp4", "--challenge", "blink", "--json")
    assert result.exit_code == 130, result.output
    doc = json.loads(result.stdout)
    assert doc["interrupted"] is True and doc["passed"] is False and doc["reason"] == "incomplete"


def test_the_source_is_opened_before_the_models(monkeypatch, tmp_path):
    """A mistyped path is said at once, not after the models load (nor hidden by a model's error)."""
    from faceprint import pipeline
    from faceprint.errors import ModelUnavailableError

    def no_models(**kw):
        raise ModelUnavailableError("the models were loaded before the source was opened")

    monkeypatch.setattr(pipeline, "Analyzer", no_models)  # the command imports it when it runs
    result = invoke(str(tmp_path / "nothing.mp4"), "--challenge", "blink", "--json")
    assert json.loads(result.stdout)["error"]["code"] == "video_not_found"
    result = invoke(str(tmp_path / "nothing.mp4"), "--challenge", "blink", "--passive-model",
                    str(tmp_path / "none.onnx"), "--json")
    assert json.loads(result.stdout)["error"]["code"] == "video_not_found"


def test_a_webcam_gets_a_random_challenge_with_its_prompts_printed(monkeypatch):
    """A webcam index without --challenge: the challenge is drawn (here pinned, and the camera
    replaced by the test frames) and each step's prompt is printed as it comes."""
    from faceprint.cli import liveness
    from faceprint.liveness.challenge import Challenge
    from faceprint.video import source
    from faceprint.video.source import frames_from_arrays

    frames = frames_of([(HUGO_OPEN, 10), (HUGO_LEFT, 8), (HUGO_OPEN, 10), (HUGO_CLOSED, 4), (HUGO_OPEN, 6)])
    drawn = []

    def pinned(n_steps, rng=None, **kw):
        drawn.append(n_steps)
        return Challenge.parse("turn_left,blink", **kw)

    monkeypatch.setattr(liveness, "random_challenge", pinned)
    monkeypatch.setattr(source, "open_source", lambda path, **kw: frames_from_arrays(frames, FPS, "camera 0"))
    result = invoke("0", "--steps", "2")
    assert result.exit_code == 0, result.output
    assert drawn == [2]
    assert "step 1/2: Turn your head to your left" in result.output and "step 2/2: Blink once" in result.output
    assert "PASSED" in result.output
