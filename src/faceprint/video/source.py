"""Frames in and frames out: open a video file, a webcam or a stream URL as a
:class:`~faceprint.video.types.VideoSource`, and write videos (``.mp4``, ``.webm``, ``.avi``,
``.y4m``).

The only module of :mod:`faceprint.video` that opens or writes video. It uses OpenCV's
``VideoCapture``/``VideoWriter`` (the FFmpeg inside ``opencv-python-headless``, already a
dependency; docs/research/video_watch.md §1 measured it against PyAV), except for ``.y4m``,
which is written with numpy (the raw format Chromium's fake webcam reads).

Nothing here hangs on a dead source: a stream URL is opened with OpenCV's
``CAP_PROP_OPEN_TIMEOUT_MSEC`` and read with ``CAP_PROP_READ_TIMEOUT_MSEC`` (both honoured by
its FFmpeg backend: a read that times out returns no frame), so a stream that stops sending ends
the iteration after ``read_timeout_s``. A webcam (V4L2 on Linux) is read with the backend's own
select timeout (10 s in OpenCV), after which ``read()`` fails and the iteration ends too.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

import cv2
import numpy as np

from faceprint.errors import (
    ImageTooLargeError,
    InvalidArgumentError,
    VideoNotFoundError,
    VideoUnreadableError,
    VideoWriteError,
)
from faceprint.gallery.storage.locate import masked_url
from faceprint.imageio import DEFAULT_LIMITS
from faceprint.video.types import Frame, VideoInfo, VideoSource

logger = logging.getLogger(__name__)

#: URL prefixes opened as network streams (anything else that is not a webcam index is a file).
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")

#: What a stream URL must be when it gives no frame (a plain ``.mp4`` over HTTP needs seeking,
#: measured: 0 frames; the same clip as MPEG-TS: every frame).
STREAMABLE_HINT = "a stream URL needs a streamable format (MPEG-TS, HLS, RTSP or fragmented MP4)"

#: The extensions :class:`VideoWriter` writes, and OpenCV's codec for each (``.y4m``: our own writer).
WRITER_CODECS: dict[str, str | None] = {".mp4": "mp4v", ".webm": "VP80", ".avi": "MJPG", ".y4m": None}

# Codecs FFmpeg "decodes" from files that are not video: its tty demuxer draws text files.
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})

SourceKind = Literal["file", "camera", "stream"]


def is_stream_url(source: str) -> bool:
    """Whether ``source`` names a network stream (``rtsp://``, ``rtsps://``, ``http(s)://``)."""
    return source.lower().startswith(STREAM_SCHEMES)


def webcam_index(source: str | int | os.PathLike[str]) -> int | None:
    """The camera index ``source`` names (an ``int``, or one of the strings ``"0"``..``"9"``),
    else ``None``. A file named ``0`` is opened as ``./0``."""
    if isinstance(source, bool):
        return None
    if isinstance(source, int):
        if source < 0:
            raise InvalidArgumentError(f"a webcam index is 0 or more, not {source}", details={"source": source})
        return source
    if isinstance(source, str) and len(source) == 1 and source.isdigit():
        return int(source)
    return None


def open_source(
    source: str | int | os.PathLike[str],
    *,
    max_pixels: int | None = None,
    open_timeout_s: float = 10.0,
    max_frames: int | None = None,
    read_timeout_s: float = 10.0,
) -> VideoSource:
    """Open a video file, a webcam (``0``..``9`` or an ``int``) or a stream URL (``rtsp://``,
    ``http(s)://``; its password is masked in ``info.source``) for reading frames in order.

    The first frame is decoded here, so a source that opens returns at least one frame.
    Raises :class:`~faceprint.errors.VideoNotFoundError` (no such file, no such camera),
    :class:`~faceprint.errors.VideoUnreadableError` (empty, truncated, corrupt, a still image or
    text, no frame; a stream that cannot be opened within ``open_timeout_s``) and
    :class:`~faceprint.errors.ImageTooLargeError` (frames of more than ``max_pixels``, by default
    :data:`faceprint.imageio.DEFAULT_LIMITS`'s). ``max_frames`` stops after that many frames.
    """
    limit = DEFAULT_LIMITS.max_pixels if max_pixels is None else max_pixels
    if limit <= 0:
        raise InvalidArgumentError(f"max_pixels must be positive, not {limit}", details={"max_pixels": limit})
    if max_frames is not None and max_frames < 0:
        raise InvalidArgumentError(f"max_frames must be 0 or more, not {max_frames}", details={"max_frames": max_frames})
    for name, value in (("open_timeout_s", open_timeout_s), ("read_timeout_s", read_timeout_s)):
        if not value > 0:
            raise InvalidArgumentError(f"{name} must be positive, not {value}", details={name: value})
    timeouts = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(1, round(open_timeout_s * 1000)),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, max(1, round(read_timeout_s * 1000)),
    ]

    index = webcam_index(source)
    if index is not None:
        shown = f"camera {index}"
        capture = cv2.VideoCapture(index)  # the platform's camera backend (V4L2, MSMF, AVFoundation)
        if not capture.isOpened():
            capture.release()
            raise VideoNotFoundError(f"no camera at index {index} (or it is in use)", details={"source": shown})
        kind: SourceKind = "camera"
    elif isinstance(source, str) and is_stream_url(source):
        shown = masked_url(source)
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, timeouts)
        if not capture.isOpened():
            capture.release()
            raise VideoUnreadableError(
                f"could not open the stream {shown} within {open_timeout_s:g} s: unreachable, refused, "
                f"not a video, or not streamable ({STREAMABLE_HINT})",
                details={"source": shown},
            )
        kind = "stream"
    else:
        if isinstance(source, int):  # a bool: neither a camera nor a path
            raise InvalidArgumentError(f"not a video source: {source!r}", details={"source": repr(source)})
        path = os.fspath(source)
        shown = path
        _check_video_file(path)
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, timeouts)
        if not capture.isOpened():
            capture.release()
            raise VideoUnreadableError(
                f"{path} is not a video that can be decoded (truncated, corrupt, or an unknown format)",
                details={"source": path},
            )
        codec = fourcc_text(capture.get(cv2.CAP_PROP_FOURCC))
        if codec.strip().lower() in _TEXT_CODECS:
            capture.release()
            raise VideoUnreadableError(f"{path} is text, not a video", details={"source": path, "codec": codec})
        kind = "file"
    try:
        return CaptureSource(capture, shown, kind, max_pixels=limit, max_frames=max_frames)
    except BaseException:
        capture.release()
        raise


def fourcc_text(value: float) -> str:
    """OpenCV's ``CAP_PROP_FOURCC`` (a number) as its four characters (``"h264"``, ``"FMP4"``)."""
    code = int(value) & 0xFFFFFFFF
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).replace("\x00", "")


# Signatures of still-image files FFmpeg would otherwise open as a one-frame "video".
_IMAGE_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WebP"),
    (8, b"heic", "HEIC"),
    (8, b"heix", "HEIC"),
    (8, b"mif1", "HEIF"),
    (8, b"avif", "AVIF"),
)


def _check_video_file(path: str) -> None:
    """Refuse, before FFmpeg sees it, what is no video: a missing path, a folder, an empty file,
    a still image, text."""
    file = Path(path)
    if not file.exists():
        raise VideoNotFoundError(f"no video file at {path}", details={"source": path})
    if file.is_dir():
        raise VideoUnreadableError(f"{path} is a folder, not a video file", details={"source": path})
    try:
        with file.open("rb") as stream:
            head = stream.read(4096)
    except OSError as exc:
        raise VideoUnreadableError(f"cannot read {path}: {exc.strerror or exc}", details={"source": path}) from None
    if not head:
        raise VideoUnreadableError(f"{path} is empty", details={"source": path})
    for offset, signature, name in _IMAGE_SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            raise VideoUnreadableError(f"{path} is a still image ({name}), not a video", details={"source": path, "format": name})
    if _looks_like_text(head):
        raise VideoUnreadableError(f"{path} is text, not a video", details={"source": path})


def _looks_like_text(head: bytes) -> bool:
    if head.startswith(b"YUV4MPEG2") or b"\x00" in head:  # y4m: a text header, then raw pixels
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[:exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f" for c in text)


class CaptureSource:
    """A :class:`~faceprint.video.types.VideoSource` over an opened ``cv2.VideoCapture``
    (made by :func:`open_source`). Iterating yields each frame once; the capture is released at
    the end of the frames, by :meth:`close`, or when leaving a ``with`` block.

    ``time_s``: for a file, OpenCV's ``CAP_PROP_POS_MSEC`` read after each ``read()`` (the
    container's time from the stream start; frame 82 of the hamilton clip is at 2.736 s); for a
    stream, the same relative to its first frame while it increases; for a webcam, or a stream
    whose timestamps stop increasing, a monotonic clock since opening. Times never go back.
    """

    def __init__(self, capture: cv2.VideoCapture, shown: str, kind: SourceKind, *, max_pixels: int,
                 max_frames: int | None = None) -> None:
        self._capture: cv2.VideoCapture | None = capture
        self._kind = kind
        self._max_pixels = max_pixels
        self._max_frames = max_frames
        self._opened_at = time.monotonic()
        self._next_index = 0
        self._last_time = -math.inf
        self._first_pos_ms: float | None = None
        self._pos_clock = kind != "camera"  # a webcam's POS_MSEC is the driver's clock, not the video's

        width = round(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = round(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            self._check_size(width, height, shown)  # before decoding a single pixel
        ok, bgr = capture.read()
        if not ok or bgr is None:
            what = f"{shown} gave no frame"
            if kind == "stream":
                what += f" ({STREAMABLE_HINT})"
            elif kind == "file":
                what += " (truncated, corrupt, or no video stream)"
            raise VideoUnreadableError(what, details={"source": shown})
        height, width = bgr.shape[:2]
        self._check_size(width, height, shown)
        self._pending: tuple[np.ndarray, float] | None = (bgr, capture.get(cv2.CAP_PROP_POS_MSEC))

        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        live = kind != "file"
        self._fps = fps if math.isfinite(fps) and 0 < fps < 1000 else None
        self._info = VideoInfo(
            source=shown,
            width=int(width),
            height=int(height),
            fps=self._fps,
            frame_count=None if live or not (math.isfinite(count) and count > 0) else round(count),
            live=live,
        )
        logger.info(
            "opened %s %s: %dx%d, %s fps, %s frames (OpenCV %s, codec %s)", kind, shown, width, height,
            "?" if self._fps is None else f"{self._fps:.3f}",
            "live" if live else (self._info.frame_count or "?"), capture.getBackendName(),
            fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)) or "?",
        )

    @property
    def info(self) -> VideoInfo:
        return self._info

    def _check_size(self, width: int, height: int, shown: str) -> None:
        if width * height > self._max_pixels:
            raise ImageTooLargeError(
                f"{shown}: frames are {width}x{height} = {width * height:,} pixels; the limit is {self._max_pixels:,}",
                details={"source": shown, "width": width, "height": height, "pixels": width * height,
                         "max_pixels": self._max_pixels},
            )

    def _time(self, pos_ms: float) -> float:
        now = time.monotonic() - self._opened_at
        t: float | None = None
        if self._pos_clock and math.isfinite(pos_ms) and pos_ms >= 0:
            if self._kind == "file":
                t = pos_ms / 1000.0
            else:
                if self._first_pos_ms is None:
                    self._first_pos_ms = pos_ms
                t = (pos_ms - self._first_pos_ms) / 1000.0
            if self._next_index > 0 and t <= self._last_time:
                t = None  # not increasing: this source's timestamps are not usable
        if t is None:
            if self._kind == "file":  # a file is not played in real time: step by its frame rate
                t = self._last_time + 1.0 / (self._fps or 30.0) if self._next_index > 0 else 0.0
            else:
                if self._pos_clock and self._next_index > 0:
                    logger.info("%s: its timestamps stopped increasing; using the clock since opening", self._info.source)
                self._pos_clock = False
                t = now
        if self._next_index > 0:
            t = max(t, self._last_time)
        self._last_time = t
        return t

    def __iter__(self) -> Iterator[Frame]:
        while self._capture is not None:
            if self._max_frames is not None and self._next_index >= self._max_frames:
                self.close()
                return
            if self._pending is not None:
                bgr, pos_ms = self._pending
                self._pending = None
            else:
                ok, read = self._capture.read()
                if not ok or read is None:  # end of file, or a stream silent past its read timeout
                    logger.info("%s ended after %d frames", self._info.source, self._next_index)
                    self.close()
                    return
                bgr, pos_ms = read, self._capture.get(cv2.CAP_PROP_POS_MSEC)
                height, width = bgr.shape[:2]
                if (width, height) != (self._info.width, self._info.height):
                    self._check_size(width, height, self._info.source)
            frame = Frame(self._next_index, self._time(pos_ms), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self._next_index += 1
            yield frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
            self._pending = None
            logger.debug("closed %s", self._info.source)

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class ArraySource:
    """A :class:`~faceprint.video.types.VideoSource` over RGB arrays (tests, synthetic videos):
    frame ``i`` is at ``i / fps`` seconds. Every array must be ``HxWx3`` ``uint8`` of the first
    one's size."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float = 30.0, source: str = "frames") -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise InvalidArgumentError(f"fps must be positive, not {fps}", details={"fps": fps})
        self._fps = fps
        self._frames: Iterator[np.ndarray] | None = iter(frames)
        first = next(self._frames, None)
        if first is None:
            raise InvalidArgumentError("no frames given", details={"source": source})
        self._first: np.ndarray | None = _check_rgb(first, None)
        self._info = VideoInfo(
            source=source,
            width=int(first.shape[1]),
            height=int(first.shape[0]),
            fps=fps,
            frame_count=len(frames) if isinstance(frames, Sequence) else None,
            live=False,
        )
        self._next_index = 0

    @property
    def info(self) -> VideoInfo:
        return self._info

    def __iter__(self) -> Iterator[Frame]:
        while self._frames is not None:
            if self._first is not None:
                rgb, self._first = self._first, None
            else:
                item = next(self._frames, None)
                if item is None:
                    self.close()
                    return
                rgb = _check_rgb(item, (self._info.height, self._info.width))
            frame = Frame(self._next_index, self._next_index / self._fps, rgb)
            self._next_index += 1
            yield frame

    def close(self) -> None:
        self._frames = None
        self._first = None


def frames_from_arrays(frames: Iterable[np.ndarray], fps: float = 30.0, source: str = "frames") -> VideoSource:
    """A video source over RGB arrays (``HxWx3`` ``uint8``, all of one size), timed at ``fps``."""
    return ArraySource(frames, fps, source)


def _check_rgb(rgb: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        described = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InvalidArgumentError(f"a frame must be an HxWx3 uint8 RGB array, not a {described}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InvalidArgumentError(f"a frame must have pixels; got {rgb.shape[1]}x{rgb.shape[0]}",
                                   details={"width": int(rgb.shape[1]), "height": int(rgb.shape[0])})
    if shape is not None and rgb.shape[:2] != shape:
        raise InvalidArgumentError(
            f"every frame must be {shape[1]}x{shape[0]}; got {rgb.shape[1]}x{rgb.shape[0]}",
            details={"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
        )
    return rgb


# --- writing -------------------------------------------------------------------------------
def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes (``uint8``; U and V at half width and height, each the mean of a 2x2
    block) of an even-sized RGB image, in BT.601 video range (Y 16-235, U/V 16-240): what a
    YUV4MPEG2 ``C420jpeg`` file holds (docs/research/liveness.md §4)."""
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise InvalidArgumentError(f"4:2:0 needs an even width and height, not {width}x{height}")
    x = rgb[..., :3].astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b

    def plane(p: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.clip(np.rint(p), 0, 255).astype(np.uint8)
        return out

    def half(p: np.ndarray) -> np.ndarray:
        return plane(p.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)))

    return plane(y), half(u), half(v)


class VideoWriter:
    """Write RGB frames to a video file chosen by its extension: ``.mp4`` (MPEG-4 Part 2,
    ``mp4v``: plays in VLC and ffplay, not in browsers; opencv-python-headless cannot write
    H.264), ``.webm`` (VP8: browsers play it), ``.avi`` (Motion JPEG) or ``.y4m`` (raw YUV 4:2:0,
    BT.601 video range, written with numpy: Chromium's ``--use-file-for-fake-video-capture``
    reads it).

    OpenCV's FFmpeg prints a harmless "tag 'VP80' is not supported ... fallback" line to stderr
    when it opens a ``.webm``; the file is VP8 all the same.

    ``size`` is ``(width, height)``; every frame written must have that size. 4:2:0 video needs
    an even width and height, so an odd one loses its last column or row (logged once; OpenCV's
    codecs would otherwise do it silently); :attr:`size` is the size written. The folder is
    created. A context manager; :meth:`close` finishes the file.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> None:
        self.path = os.fspath(path)
        extension = check_video_extension(self.path)
        if not (math.isfinite(fps) and fps > 0):
            raise InvalidArgumentError(f"fps must be positive, not {fps}", details={"fps": fps})
        width, height = (int(n) for n in size)
        if width < 2 or height < 2:
            raise InvalidArgumentError(f"a video is at least 2x2 pixels, not {width}x{height}", details={"size": [width, height]})
        self.fps = float(fps)
        self.frame_size = (width, height)  # what write() takes
        self.size = (width - width % 2, height - height % 2)  # what the file holds
        if self.size != self.frame_size:
            logger.warning(
                "%s: %dx%d is odd and 4:2:0 video needs an even size; writing %dx%d (the last %s dropped)",
                self.path, width, height, *self.size,
                "column and row" if width % 2 and height % 2 else ("column" if width % 2 else "row"),
            )
        self.frames = 0
        self.codec = WRITER_CODECS[extension] or "y4m C420jpeg"
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        except OSError as exc:
            raise VideoWriteError(f"cannot create the folder of {self.path}: {exc.strerror or exc}", details={"path": self.path}) from None
        self._cv: cv2.VideoWriter | None = None
        self._raw: BinaryIO | None = None
        codec = WRITER_CODECS[extension]
        if codec is None:
            try:
                self._raw = open(self.path, "wb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise VideoWriteError(f"cannot write {self.path}: {exc.strerror or exc}", details={"path": self.path}) from None
            rate = Fraction(self.fps).limit_denominator(1001)
            self._raw.write(f"YUV4MPEG2 W{self.size[0]} H{self.size[1]} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode("ascii"))
        else:
            writer = cv2.VideoWriter(self.path, cv2.VideoWriter.fourcc(*codec), self.fps, self.size)
            if not writer.isOpened():
                writer.release()
                raise VideoWriteError(
                    f"cannot write {self.path} with the {codec} codec (is the folder writable?)",
                    details={"path": self.path, "codec": codec},
                )
            self._cv = writer
        logger.info("writing %s (%s, %dx%d, %.3f fps)", self.path, self.codec, *self.size, self.fps)

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``HxWx3`` ``uint8`` RGB frame of :attr:`frame_size`."""
        if self._cv is None and self._raw is None:
            raise InvalidArgumentError(f"{self.path} is closed; no frame can be written", details={"path": self.path})
        width, height = self.size
        frame = _check_rgb(rgb, (self.frame_size[1], self.frame_size[0]))[:height, :width]
        if self._raw is not None:
            y, u, v = rgb_to_yuv420(frame)
            self._raw.write(b"FRAME\n")
            for plane in (y, u, v):
                self._raw.write(plane.tobytes())
        elif self._cv is not None:
            self._cv.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        elif self._raw is not None:
            self._raw.close()
            self._raw = None
        else:
            return
        logger.info("wrote %s: %d frames", self.path, self.frames)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def check_video_extension(path: str | os.PathLike[str]) -> str:
    """The extension of ``path`` (lower case) when :class:`VideoWriter` writes it, else
    :class:`~faceprint.errors.InvalidArgumentError`."""
    shown = os.fspath(path)
    extension = os.path.splitext(shown)[1].lower()
    if extension not in WRITER_CODECS:
        raise InvalidArgumentError(
            f"cannot write video {shown!r}: the extension must be one of {', '.join(WRITER_CODECS)}",
            details={"path": shown, "extensions": list(WRITER_CODECS)},
        )
    return extension


def write_y4m(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = 30.0) -> int:
    """Write RGB ``frames`` (all of the first one's size) to a ``.y4m`` file (see
    :class:`VideoWriter`); returns the number of frames written."""
    if os.path.splitext(os.fspath(path))[1].lower() != ".y4m":
        raise InvalidArgumentError(f"write_y4m writes a .y4m file, not {os.fspath(path)!r}", details={"path": os.fspath(path)})
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise InvalidArgumentError("no frames to write", details={"path": os.fspath(path)})
    first = _check_rgb(first, None)
    with VideoWriter(path, fps, (int(first.shape[1]), int(first.shape[0]))) as writer:
        writer.write(first)
        for rgb in iterator:
            writer.write(rgb)
        return writer.frames
