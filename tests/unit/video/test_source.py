"""Opening videos (files, webcams, stream URLs) and writing them: real files written here,
real OpenCV decoding, a real local HTTP server for the stream cases."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceprint.errors import (
    ImageTooLargeError,
    InvalidArgumentError,
    VideoNotFoundError,
    VideoUnreadableError,
    VideoWriteError,
)
from faceprint.video.source import (
    VideoWriter,
    frames_from_arrays,
    is_stream_url,
    open_source,
    rgb_to_yuv420,
    webcam_index,
    write_y4m,
)
from faceprint.video.types import VideoSource
from tests.conftest import shared

HAMILTON = ("face_recognition_examples", "examples", "short_hamilton_clip.mp4")


def smooth_frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frames of large flat colour blocks (lossy codecs and 4:2:0 keep them nearly exact),
    a different colour set for each frame."""
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(n):
        blocks = rng.integers(30, 225, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        frames.append(np.kron(blocks, np.ones((16, 16, 1), np.uint8))[:height, :width].copy())
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    with VideoWriter(path, fps, (frames[0].shape[1], frames[0].shape[0])) as writer:
        for rgb in frames:
            writer.write(rgb)
    return path


# --- writing and reading back ---------------------------------------------------------------
@pytest.mark.parametrize(("extension", "tolerance"), [(".mp4", 12.0), (".webm", 12.0), (".avi", 12.0), (".y4m", 2.0)])
def test_round_trip(tmp_path: Path, extension: str, tolerance: float) -> None:
    frames = smooth_frames(12)
    path = write_video(tmp_path / f"clip{extension}", frames)
    source = open_source(path)
    assert isinstance(source, VideoSource)
    assert (source.info.width, source.info.height) == (64, 48)
    assert source.info.frame_count in (None, 12)  # webm keeps no frame count
    assert not source.info.live
    read = list(source)
    assert len(read) == 12
    assert [f.index for f in read] == list(range(12))
    for original, frame in zip(frames, read):
        assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8
        assert np.abs(frame.rgb.astype(int) - original).mean() < tolerance


def test_y4m_is_bt601_video_range_and_close_after_the_round_trip(tmp_path: Path) -> None:
    frames = smooth_frames(3, 32, 16)
    path = tmp_path / "fake.y4m"
    assert write_y4m(path, frames, fps=30) == 3
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W32 H16 F30:1 Ip A1:1 C420jpeg"
    frame_bytes = 32 * 16 * 3 // 2
    assert len(rest) == 3 * (len(b"FRAME\n") + frame_bytes)
    assert rest.startswith(b"FRAME\n")
    y, u, v = rgb_to_yuv420(np.array([[[0, 0, 0], [255, 255, 255]], [[0, 0, 0], [255, 255, 255]]], np.uint8))
    assert y.tolist() == [[16, 235], [16, 235]]  # video range, not full range
    assert u.shape == v.shape == (1, 1)
    read = list(open_source(path))
    assert len(read) == 3
    for original, frame in zip(frames, read):
        assert np.abs(frame.rgb.astype(int) - original).max() <= 4  # a few grey levels after YUV and back


def test_y4m_frame_rate_as_a_fraction(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.y4m"
    write_y4m(path, smooth_frames(2, 16, 16), fps=29.97)
    assert path.read_bytes().split(b"\n", 1)[0].split()[3] == b"F2997:100"  # exact, not rounded to 30
    assert open_source(path).info.fps == pytest.approx(29.97, abs=0.01)


@pytest.mark.parametrize("extension", [".mp4", ".y4m"])
def test_an_odd_size_is_cropped_to_even_and_says_so(tmp_path: Path, extension: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    frames = [f[:47, :63] for f in smooth_frames(4)]
    with caplog.at_level(logging.WARNING, logger="faceprint.video.source"):
        with VideoWriter(tmp_path / f"odd{extension}", 25, (63, 47)) as writer:
            assert writer.size == (62, 46) and writer.frame_size == (63, 47)
            for rgb in frames:
                writer.write(rgb)
    assert "63x47 is odd" in caplog.text and "62x46" in caplog.text
    read = list(open_source(tmp_path / f"odd{extension}"))
    assert len(read) == 4 and read[0].rgb.shape == (46, 62, 3)


def test_writer_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="extension"):
        VideoWriter(tmp_path / "clip.mov", 25, (64, 48))
    with pytest.raises(InvalidArgumentError, match="fps"):
        VideoWriter(tmp_path / "clip.mp4", 0, (64, 48))
    with VideoWriter(tmp_path / "clip.avi", 25, (64, 48)) as writer:
        with pytest.raises(InvalidArgumentError, match="64x48"):
            writer.write(np.zeros((48, 65, 3), np.uint8))
        with pytest.raises(InvalidArgumentError, match="uint8"):
            writer.write(np.zeros((48, 64), np.uint8))
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.close()  # idempotent
    with pytest.raises(InvalidArgumentError, match="closed"):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(InvalidArgumentError):
        write_y4m(tmp_path / "x.mp4", smooth_frames(1))
    with pytest.raises(InvalidArgumentError, match="no frames"):
        write_y4m(tmp_path / "x.y4m", [])


def test_writer_creates_the_folder_and_fails_clearly_where_it_cannot(tmp_path: Path) -> None:
    write_video(tmp_path / "new" / "folder" / "clip.mp4", smooth_frames(2))
    assert (tmp_path / "new" / "folder" / "clip.mp4").stat().st_size > 0
    (tmp_path / "file").write_text("not a folder")
    for name in ("clip.mp4", "clip.y4m"):
        with pytest.raises(VideoWriteError):
            VideoWriter(tmp_path / "file" / name, 25, (64, 48))


# --- what is not a video ----------------------------------------------------------------------
def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFoundError) as exc:
        open_source(tmp_path / "mistyped.mp4")
    assert exc.value.code == "video_not_found"
    assert "mistyped.mp4" in exc.value.message


def _truncated(tmp_path: Path) -> Path:
    whole = write_video(tmp_path / "whole.mp4", smooth_frames(20)).read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(whole[: len(whole) // 2])  # OpenCV writes the index (moov) last: it is cut off
    return path


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    return path


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 200)  # FFmpeg's tty demuxer would "decode" it
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "still.png"
    Image.fromarray(smooth_frames(1)[0]).save(path)  # FFmpeg would open it as a 1-frame video
    return path


def _jpeg_named_avi(tmp_path: Path) -> Path:
    path = tmp_path / "still.avi"
    Image.fromarray(smooth_frames(1)[0]).save(path, "JPEG")
    return path


@pytest.mark.parametrize("make", [_truncated, _corrupt, _text, _empty, _png, _jpeg_named_avi, lambda p: p])
def test_what_is_not_a_video_is_unreadable(tmp_path: Path, make: object) -> None:
    assert callable(make)
    path = make(tmp_path)
    with pytest.raises(VideoUnreadableError) as exc:
        open_source(path)
    assert exc.value.code == "video_unreadable"
    assert exc.value.details["source"] == str(path)


def test_frames_over_max_pixels_are_refused(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", smooth_frames(2))
    with pytest.raises(ImageTooLargeError) as exc:
        open_source(path, max_pixels=64 * 48 - 1)
    assert exc.value.details["pixels"] == 64 * 48
    assert len(list(open_source(path, max_pixels=64 * 48))) == 2


def test_bad_arguments(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", smooth_frames(2))
    for kwargs in ({"max_frames": -1}, {"open_timeout_s": 0}, {"max_pixels": 0}):
        with pytest.raises(InvalidArgumentError):
            open_source(path, **kwargs)
    for wrong in (-1, True):
        with pytest.raises(InvalidArgumentError):
            open_source(wrong)


# --- reading ------------------------------------------------------------------------------------
def test_max_frames_close_and_iterating_once(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", smooth_frames(10))
    assert [f.index for f in open_source(path, max_frames=4)] == [0, 1, 2, 3]
    assert list(open_source(path, max_frames=0)) == []
    source = open_source(path)
    frames = iter(source)
    assert next(frames).index == 0 and next(frames).index == 1
    assert [f.index for f in source][:1] == [2]  # frames come once: a new loop goes on
    source.close()
    source.close()
    assert list(source) == []
    with open_source(path) as opened:  # type: ignore[attr-defined]
        assert next(iter(opened)).index == 0


def test_file_times_are_the_containers(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", smooth_frames(10), fps=25)
    source = open_source(path)
    assert source.info.fps == pytest.approx(25)
    times = [f.time_s for f in source]
    assert times == pytest.approx([i / 25 for i in range(10)], abs=1e-3)


def test_frames_from_arrays() -> None:
    frames = smooth_frames(5)
    source = frames_from_arrays(frames, fps=10, source="synthetic")
    assert source.info.to_dict() == {"source": "synthetic", "width": 64, "height": 48, "fps": 10.0,
                                     "frame_count": 5, "live": False}
    read = list(source)
    assert [f.time_s for f in read] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert all(f.rgb is original for f, original in zip(read, frames))
    assert list(source) == []
    lazy = frames_from_arrays(iter(frames))
    assert lazy.info.frame_count is None and len(list(lazy)) == 5
    with pytest.raises(InvalidArgumentError, match="no frames"):
        frames_from_arrays([])
    with pytest.raises(InvalidArgumentError, match="uint8"):
        frames_from_arrays([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(InvalidArgumentError, match="pixels"):
        frames_from_arrays([np.zeros((0, 4, 3), np.uint8)])
    mixed = frames_from_arrays([frames[0], frames[1][:32]])
    with pytest.raises(InvalidArgumentError, match="64x48"):
        list(mixed)


# --- webcams and streams ------------------------------------------------------------------------
def test_which_sources_are_webcams_and_streams() -> None:
    assert webcam_index("0") == 0 and webcam_index("9") == 9 and webcam_index(3) == 3
    assert webcam_index("10") is None and webcam_index("./0") is None and webcam_index(Path("0")) is None
    assert is_stream_url("rtsp://cam/1") and is_stream_url("HTTPS://x/y.m3u8") and not is_stream_url("file.mp4")


@pytest.mark.skipif(not sys.platform.startswith("linux") or Path("/dev/video9").exists(),
                    reason="needs Linux without a 10th camera")
def test_a_missing_camera_is_not_found() -> None:
    with pytest.raises(VideoNotFoundError, match="camera"):
        open_source("9")


@pytest.fixture
def http_server() -> Iterator[tuple[int, dict[str, bytes | None]]]:
    """A local HTTP server that answers every request with ``behaviour["body"]`` and then
    stays silent (never closing), or says nothing at all when the body is None."""
    behaviour: dict[str, bytes | None] = {"body": None}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()
    connections: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            connections.append(conn)
            conn.recv(65536)
            body = behaviour["body"]
            if body is not None:
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n" + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], behaviour
    stop.set()
    thread.join(5)
    for conn in connections:
        conn.close()
    listener.close()


def test_a_silent_stream_times_out_instead_of_hanging(http_server: tuple[int, dict[str, bytes | None]]) -> None:
    port, _ = http_server
    started = time.monotonic()
    with pytest.raises(VideoUnreadableError) as exc:
        open_source(f"http://viewer:s3cret@127.0.0.1:{port}/live.ts", open_timeout_s=1.0, read_timeout_s=1.0)
    assert time.monotonic() - started < 60  # a hang guard, not a timing measurement
    assert "s3cret" not in exc.value.message and "s3cret" not in str(exc.value.details)
    assert "viewer:***@" in exc.value.details["source"]
    assert "streamable" in exc.value.message


def test_a_stream_that_stops_ends_the_frames(tmp_path: Path, http_server: tuple[int, dict[str, bytes | None]]) -> None:
    path = tmp_path / "stream.ts"  # MPEG-TS: streamable, no index needed
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30, (64, 48))
    for rgb in smooth_frames(60):
        writer.write(rgb)
    writer.release()
    data = path.read_bytes()
    port, behaviour = http_server
    behaviour["body"] = data[: len(data) // 2]  # then the server goes quiet, connection open
    source = open_source(f"http://127.0.0.1:{port}/stream.ts", open_timeout_s=2.0, read_timeout_s=1.0)
    assert source.info.live and source.info.frame_count is None
    frames = list(source)
    assert 1 <= len(frames) < 60
    times = [f.time_s for f in frames]
    assert times[0] == 0.0 and times == sorted(times)


def test_a_refused_rtsp_stream_is_unreadable_and_masked() -> None:
    with pytest.raises(VideoUnreadableError) as exc:
        open_source("rtsp://admin:hunter2@127.0.0.1:1/stream", open_timeout_s=2.0)
    assert "hunter2" not in exc.value.message


# --- the real clip --------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_hamilton_clip() -> None:
    source = open_source(shared(*HAMILTON))
    assert (source.info.width, source.info.height, source.info.frame_count) == (640, 360, 275)
    assert source.info.fps == pytest.approx(29.97, abs=0.01)
    frames = list(source)
    assert len(frames) == 275
    assert frames[82].time_s == pytest.approx(2.736, abs=0.001)
    assert all(b.time_s > a.time_s for a, b in zip(frames, frames[1:]))


class ScriptedCapture:
    """Stands in for cv2.VideoCapture where no camera or misbehaving stream is at hand: returns
    ``n`` frames whose ``CAP_PROP_POS_MSEC`` values are scripted."""

    def __init__(self, positions: list[float], fps: float = 25.0) -> None:
        self.positions = positions
        self.fps = fps
        self.read_count = 0
        self.released = False

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.read_count >= len(self.positions):
            return False, None
        self.read_count += 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def get(self, prop: int) -> float:
        values = {cv2.CAP_PROP_FRAME_WIDTH: 8.0, cv2.CAP_PROP_FRAME_HEIGHT: 8.0, cv2.CAP_PROP_FPS: self.fps,
                  cv2.CAP_PROP_FRAME_COUNT: float(len(self.positions)), cv2.CAP_PROP_FOURCC: 0.0}
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self.positions[self.read_count - 1]
        return values.get(prop, 0.0)

    def getBackendName(self) -> str:  # noqa: N802 - OpenCV's name
        return "scripted"

    def release(self) -> None:
        self.released = True


def scripted_times(kind: str, positions: list[float]) -> tuple[list[float], ScriptedCapture]:
    from faceprint.video.source import CaptureSource

    capture = ScriptedCapture(positions)
    source = CaptureSource(capture, "scripted", kind, max_pixels=100)  # type: ignore[arg-type]
    return [f.time_s for f in source], capture


def test_times_never_go_back() -> None:
    times, capture = scripted_times("file", [0.0, 40.0, 80.0, 0.0, 160.0])  # a file's bad timestamp
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])
    assert capture.released  # the end of the frames releases the capture
    times, _ = scripted_times("stream", [5000.0, 5040.0, 5080.0])  # relative to the first frame
    assert times == pytest.approx([0.0, 0.04, 0.08])
    times, _ = scripted_times("stream", [5000.0, 5040.0, 0.0, 0.0, 0.0])  # then stuck: the clock takes over
    assert times[:2] == pytest.approx([0.0, 0.04])
    assert all(b >= a for a, b in zip(times, times[1:]))
    times, _ = scripted_times("camera", [123456.0, 1.0, 999999.0])  # a driver's clock is ignored
    assert times[0] < 5.0 and all(b >= a for a, b in zip(times, times[1:]))
