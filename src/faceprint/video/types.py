"""Plain data shared by every module of :mod:`faceprint.video` (no OpenCV, no models)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded frame.

    ``index`` counts frames in decode order from 0; ``time_s`` is the frame's time from the
    stream's start (the container's timestamps for a file; a monotonic clock since opening for a
    live source that has none); ``rgb`` is ``HxWx3`` ``uint8``.
    """

    index: int
    time_s: float
    rgb: np.ndarray

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a source says about itself. ``source`` is safe to print (a URL's password masked)."""

    source: str
    width: int
    height: int
    fps: float | None
    frame_count: int | None  # None for live sources (webcam, stream)
    live: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else round(self.fps, 3),
            "frame_count": self.frame_count,
            "live": self.live,
        }


@runtime_checkable
class VideoSource(Protocol):
    """Frames in order, once. ``close()`` releases the device/file; iterating after it yields nothing."""

    @property
    def info(self) -> VideoInfo: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...
