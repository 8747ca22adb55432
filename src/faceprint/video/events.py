"""What ``faceprint watch`` reports: one :class:`Event` per happening, written as JSON Lines.

Every event's dictionary has the keys of :data:`EVENT_KEYS` -- ``event, frame, time_s, track,
identity, similarity, box`` -- always present (``null`` where they do not apply), then the
event's own keys (``reason``, ``first_frame``, ``kind`` ...). Similarities have 4 decimals,
times 3 and boxes whole pixels, so a line stays short and a diff between runs reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from faceprint.types import Box

#: Every kind of event, in the order a run meets them.
EventKind = Literal[
    "video_started", "track_started", "identified", "track_ended", "scene_cut", "enrolled",
    "proctor_started", "proctor_ended", "summary",
]
EVENT_KINDS: tuple[str, ...] = (
    "video_started", "track_started", "identified", "track_ended", "scene_cut", "enrolled",
    "proctor_started", "proctor_ended", "summary",
)
#: The keys every event has, in this order (the issue's schema).
EVENT_KEYS: tuple[str, ...] = ("event", "frame", "time_s", "track", "identity", "similarity", "box")


def box_list(box: Box) -> list[int]:
    """``[x1, y1, x2, y2]`` in whole pixels."""
    return [round(float(v)) for v in (box.x1, box.y1, box.x2, box.y2)]


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True, slots=True)
class Event:
    """One happening at ``frame`` (``time_s`` from the stream's start). ``extra`` holds the
    event's own keys; it cannot replace the common ones of :data:`EVENT_KEYS`."""

    event: EventKind
    frame: int
    time_s: float
    track: int | None = None
    identity: str | None = None
    similarity: float | None = None
    box: Box | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENT_KINDS:
            raise ValueError(f"unknown event {self.event!r}")
        clash = set(self.extra) & set(EVENT_KEYS)
        if clash:
            raise ValueError(f"extra keys {sorted(clash)} would replace the event's own")

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "frame": int(self.frame),
            "time_s": round(float(self.time_s), 3),
            "track": self.track,
            "identity": self.identity,
            "similarity": rounded(self.similarity, 4),
            "box": None if self.box is None else box_list(self.box),
            **self.extra,
        }

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)


def write_jsonl(events: Iterable[Event], out: TextIO) -> None:
    """Write each event as a line of JSON, flushed at once (a live source's reader sees it now)."""
    for event in events:
        out.write(event.to_json() + "\n")
        out.flush()
