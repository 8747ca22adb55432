"""``faceprint watch`` through a real subprocess on a video made from the shipped test faces:
JSON Lines, the readable output, ``--out``, proctoring, enrolment from a track, Ctrl-C, and
typed errors with the CLI's exit statuses. No ../shared needed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import face_image
from tests.integration.test_cli import faceprint

FPS = 30.0
EMPTY = 45  # frames of background before the face comes in (1.5 s)
WITH_FACE = 90


def frames(n_empty: int = EMPTY, n_face: int = WITH_FACE) -> list[np.ndarray]:
    """A 320x240 grey room, empty for ``n_empty`` frames, then Collins's face moving slowly."""
    rng = np.random.default_rng(15)
    room = np.clip(rng.normal(120, 8, (240, 320, 3)), 0, 255).astype(np.uint8)
    face = np.asarray(Image.open(face_image("collins.jpg")).convert("RGB").resize((130, 130)))
    out = [room.copy() for _ in range(n_empty)]
    for i in range(n_face):
        frame = room.copy()
        x = 60 + (i // 2) % 60  # drifts right, then starts over (a long video stays in the frame)
        frame[50:180, x:x + 130] = face
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from faceprint.video.source import VideoWriter

    path = tmp_path_factory.mktemp("video") / "collins.avi"
    with VideoWriter(path, FPS, (320, 240)) as writer:
        for rgb in frames():
            writer.write(rgb)
    return path


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gallery") / "g.db"
    proc = faceprint("--gallery", str(path), "enroll", "Collins", str(face_image("collins_2.jpg")), "--json")
    assert proc.returncode == 0, proc.stderr
    return path


def lines(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="module")
def proctored(video: Path, gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    annotated = tmp_path_factory.mktemp("out") / "annotated.webm"
    proc = faceprint("--gallery", str(gallery), "watch", str(video), "--json", "--proctor", "Collins",
                     "--out", str(annotated))
    assert proc.returncode == 0, proc.stderr
    return lines(proc), annotated


def test_json_lines_name_the_face_and_end_with_the_summary(proctored):
    events, _ = proctored
    assert events[0]["event"] == "video_started" and events[-1]["event"] == "summary"
    for event in events:
        assert list(event)[:7] == ["event", "frame", "time_s", "track", "identity", "similarity", "box"]
    identified = [e for e in events if e["event"] == "identified"]
    assert [e["identity"] for e in identified] == ["Collins"]
    assert EMPTY <= identified[0]["since_frame"] and identified[0]["frame"] <= EMPTY + 5
    summary = events[-1]
    assert summary["frames"] == EMPTY + WITH_FACE and summary["identities"] == ["Collins"]
    assert summary["fps"] > 0 and summary["interrupted"] is False
    (track,) = summary["tracks"]
    assert track["identity"] == "Collins" and track["end_reason"] == "end_of_stream"


def test_proctoring_reports_the_empty_start_with_its_duration(proctored):
    events, _ = proctored
    ended = [e for e in events if e["event"] == "proctor_ended"]
    assert [e["kind"] for e in ended] == ["no_face"]
    assert ended[0]["start_frame"] == 0 and EMPTY <= ended[0]["end_frame"] <= EMPTY + 3
    assert ended[0]["duration_s"] == pytest.approx(EMPTY / FPS, abs=0.15)
    assert events[-1]["proctor"] == [{k: v for k, v in ended[0].items() if k in events[-1]["proctor"][0]}]


def test_out_writes_the_annotated_video(proctored):
    from faceprint.video.source import open_source

    _, annotated = proctored
    source = open_source(annotated)
    assert (source.info.width, source.info.height) == (320, 240)
    assert sum(1 for _ in source) == EMPTY + WITH_FACE


def test_readable_output(video: Path, gallery: Path):
    proc = faceprint("--gallery", str(gallery), "watch", str(video), "--every", "2", columns=100)
    assert proc.returncode == 0, proc.stderr
    assert "identified Collins" in proc.stdout and "track started" in proc.stdout
    assert "frames/s" in proc.stdout and "Collins" in proc.stdout.splitlines()[-1]
    assert "watching" in proc.stderr and "detecting every 2 frames" in proc.stderr


def test_enrol_a_track_then_identify_the_person(video: Path, tmp_path: Path):
    new = tmp_path / "new.db"
    proc = faceprint("--gallery", str(new), "watch", str(video), "--enroll-track", "1", "--name", "Eileen",
                     "--enroll-frames", "3", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "created a new gallery" in proc.stderr
    (enrolled,) = [e for e in lines(proc) if e["event"] == "enrolled"]
    assert enrolled["track"] == 1 and enrolled["identity"] == "Eileen" and enrolled["error"] is None
    assert 1 <= len(enrolled["face_ids"]) <= 3 and len(enrolled["frames"]) == 3
    found = faceprint("--gallery", str(new), "identify", str(face_image("collins.jpg")), "--json")
    assert json.loads(found.stdout)["results"][0]["faces"][0]["identity"] == "Eileen"


def test_enrolling_a_track_that_is_not_there_fails_after_the_summary(video: Path, gallery: Path):
    proc = faceprint("--gallery", str(gallery), "watch", str(video), "--enroll-track", "99", "--name", "X",
                     "--max-frames", "10", "--json")
    assert proc.returncode == 2
    events = lines(proc)
    assert events[-2]["event"] == "summary"
    assert events[-1]["error"]["code"] == "invalid_argument" and "no track 99" in events[-1]["error"]["message"]


@pytest.mark.parametrize(("args", "code", "status"), [
    (["watch", "{missing}", "--json"], "video_not_found", 2),
    (["watch", "{text}", "--json"], "video_unreadable", 1),
    (["watch", "{video}", "--enroll-track", "1", "--json"], "invalid_argument", 2),
    (["--gallery", "{nowhere}", "watch", "{video}", "--json"], "gallery_not_found", 2),
    (["--gallery", "{gallery}", "watch", "{video}", "--proctor", "Nobody", "--json"], "subject_not_found", 1),
    (["--gallery", "{gallery}", "watch", "{video}", "--far", "2", "--json"], "invalid_argument", 2),
    # --out's extension is checked before anything is opened (the gallery here would be not found)
    (["--gallery", "{nowhere}", "watch", "{video}", "--out", "{nowhere}.mkv", "--json"], "invalid_argument", 2),
])
def test_bad_inputs_get_typed_errors(args, code, status, video: Path, gallery: Path, tmp_path: Path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 20)
    names = {"missing": tmp_path / "nope.mp4", "text": text, "video": video, "nowhere": tmp_path / "none.db",
             "gallery": gallery}
    proc = faceprint(*[a.format(**names) for a in args])
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["error"]["code"] == code


def test_out_never_overwrites_the_source(video: Path, tmp_path: Path):
    """``--out`` naming SOURCE (or a link to it) would truncate the video while it is read."""
    link = tmp_path / "same.avi"
    link.symlink_to(video)
    before = video.read_bytes()
    for out in (video, link):
        proc = faceprint("watch", str(video), "--out", str(out), "--json")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1])["error"]["code"] == "invalid_argument"
    assert video.read_bytes() == before


def test_a_refused_run_writes_no_annotated_video(video: Path, gallery: Path, tmp_path: Path):
    out = tmp_path / "annotated.avi"
    proc = faceprint("--gallery", str(gallery), "watch", str(video), "--proctor", "Nobody", "--out", str(out), "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["error"]["code"] == "subject_not_found"
    assert not out.exists()


def test_every_below_one_is_a_usage_error(video: Path):
    proc = faceprint("watch", str(video), "--every", "0")
    assert proc.returncode == 2


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_ends_the_tracks_and_prints_the_summary(gallery: Path, tmp_path: Path):
    from faceprint.video.source import VideoWriter

    long_video = tmp_path / "long.avi"
    with VideoWriter(long_video, FPS, (320, 240)) as writer:
        for rgb in frames(5, 600):
            writer.write(rgb)
    exe = Path(sys.executable).with_name("faceprint")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]
    proc = subprocess.Popen([*cmd, "--gallery", str(gallery), "watch", str(long_video), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # wait until a track is being followed
        seen.append(json.loads(line))
        if seen[-1]["event"] == "track_started":
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    seen += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 130
    assert seen[-1]["event"] == "summary" and seen[-1]["interrupted"] is True
    assert seen[-1]["frames"] < 605
    ended = [e for e in seen if e["event"] == "track_ended"]
    assert ended and ended[-1]["reason"] == "end_of_stream"
