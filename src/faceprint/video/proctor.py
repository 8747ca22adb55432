"""Proctoring: is the enrolled candidate the one at the screen, alone, present, and looking?

Four conditions are watched on every frame, from the tracks (never from raw detections):

- ``no_face``: no person in view;
- ``multiple_faces``: more than one person in view;
- ``not_subject``: a person in view who is not the subject (unknown, or named someone else);
- ``looking_away``: the subject's head turned beyond ``yaw_limit`` or ``pitch_limit`` degrees.

A *person* is a confirmed track (:attr:`TrackerConfig.min_hits` detections) with at least
``min_hits`` faces the embedder finds distinct, or one followed for ``min_seen_s`` (0.5 s). On
the hamilton clip the detector fires on Miranda's hand and microphone for up to 7 frames running
(0.2 s), and every one of those detections is flagged ``indistinct`` by its embedding norm
(docs/research/video_watch.md, section 3); but so are many detections of real, small or blurred
faces: the four audience tracks of frames 211-274 (64 frames each) have 2, 6, 12 and 31 distinct
faces. A person behind the candidate is often such a face, so time in view counts too.

A condition is reported when it has held for ``min_duration_s`` (``proctor_started``, with the
time it began) and ends when it has been gone for ``grace_s`` (``proctor_ended``, with start,
end and duration); a flicker shorter than that is not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faceprint.errors import InvalidArgumentError
from faceprint.video.events import Event
from faceprint.video.identity import TrackIdentity
from faceprint.video.track import Track

#: The conditions, in the order they are checked.
PROCTOR_KINDS: tuple[str, ...] = ("no_face", "multiple_faces", "not_subject", "looking_away")


@dataclass(frozen=True, slots=True)
class ProctorPolicy:
    """Whom to watch for and how strictly."""

    subject: str
    yaw_limit: float = 30.0
    pitch_limit: float = 25.0
    min_duration_s: float = 1.0
    grace_s: float = 0.5
    min_hits: int = 3  # distinct faces before a track counts as a person
    min_seen_s: float = 0.5  # ... or seconds followed (the clip's hand/microphone tracks: at most 0.2 s)

    def __post_init__(self) -> None:
        if not self.subject.strip():
            raise InvalidArgumentError("the proctored subject needs a name")
        for name in ("yaw_limit", "pitch_limit"):
            value = getattr(self, name)
            if not 0 < value <= 180:
                raise InvalidArgumentError(f"{name} must be in (0, 180] degrees; got {value:g}")
        if self.min_duration_s < 0 or self.grace_s < 0 or self.min_seen_s < 0:
            raise InvalidArgumentError("min_duration_s, grace_s and min_seen_s must be at least 0")


@dataclass(frozen=True, slots=True)
class Interval:
    """One reported condition: ``kind`` from ``start`` to ``end`` (frames and seconds)."""

    kind: str
    start_frame: int
    start_s: float
    end_frame: int
    end_s: float
    track: int | None = None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start_frame": self.start_frame, "start_s": round(self.start_s, 3),
                "end_frame": self.end_frame, "end_s": round(self.end_s, 3), "duration_s": round(self.duration_s, 3),
                "track": self.track}


@dataclass(slots=True)
class _Condition:
    start_frame: int
    start_s: float
    track: int | None
    reported: bool = False
    cleared: tuple[int, float] | None = None  # the frame (and time) it stopped holding, within grace


def is_person(track: Track, min_hits: int, min_seen_s: float = 0.5) -> bool:
    """A confirmed track with at least ``min_hits`` distinct faces, or followed for at least
    ``min_seen_s`` seconds (see the module's docstring)."""
    seen_s = track.last_time_s - track.first_time_s
    return track.confirmed and (track.distinct_hits >= min_hits or seen_s >= min_seen_s)


class Proctor:
    """Watches one frame at a time (:meth:`observe`) and reports :data:`PROCTOR_KINDS` events."""

    def __init__(self, policy: ProctorPolicy) -> None:
        self.policy = policy
        self.open: dict[str, _Condition] = {}
        self.intervals: list[Interval] = []

    def observe(self, frame: int, time_s: float, tracks: Sequence[tuple[Track, TrackIdentity]]) -> list[Event]:
        """Check the conditions against the tracks in view at ``frame``; the events it causes."""
        people = [(t, i) for t, i in tracks if is_person(t, self.policy.min_hits, self.policy.min_seen_s)]
        subject = next((t for t, i in people if i.identity == self.policy.subject), None)
        strangers = [t for t, i in people if i.identity != self.policy.subject]
        holding: dict[str, int | None] = {}
        if not people:
            holding["no_face"] = None
        if len(people) > 1:
            holding["multiple_faces"] = None
        if strangers:
            holding["not_subject"] = strangers[0].id
        if subject is not None and self._looking_away(subject):
            holding["looking_away"] = subject.id
        events: list[Event] = []
        for kind in PROCTOR_KINDS:
            condition = self.open.get(kind)
            if kind in holding:
                if condition is None:
                    condition = self.open[kind] = _Condition(frame, time_s, holding[kind])
                condition.cleared = None
                if not condition.reported and time_s - condition.start_s >= self.policy.min_duration_s:
                    condition.reported = True
                    events.append(Event("proctor_started", frame, time_s, track=condition.track, extra={
                        "kind": kind, "start_frame": condition.start_frame, "start_s": round(condition.start_s, 3)}))
            elif condition is not None:
                if not condition.reported:
                    del self.open[kind]
                    continue
                if condition.cleared is None:
                    condition.cleared = (frame, time_s)
                if time_s - condition.cleared[1] >= self.policy.grace_s:
                    del self.open[kind]
                    events.append(self._ended(kind, condition, frame, time_s))
        return events

    def _looking_away(self, track: Track) -> bool:
        pose = track.face.face.pose
        return pose is not None and (abs(pose.yaw) > self.policy.yaw_limit or abs(pose.pitch) > self.policy.pitch_limit)

    def _ended(self, kind: str, condition: _Condition, frame: int, time_s: float) -> Event:
        """The ``proctor_ended`` event, reported at ``frame``: the condition ended where it
        stopped holding (``condition.cleared``), else at ``frame`` (the end of the stream)."""
        end_frame, end_s = condition.cleared or (frame, time_s)
        interval = Interval(kind, condition.start_frame, condition.start_s, end_frame, end_s, condition.track)
        self.intervals.append(interval)
        extra = {k: v for k, v in interval.to_dict().items() if k != "track"}
        return Event("proctor_ended", frame, time_s, track=condition.track, extra=extra)

    def finish(self, frame: int, time_s: float) -> list[Event]:
        """The stream ended at ``frame``: every reported condition still open ends there."""
        events = [self._ended(kind, c, frame, time_s) for kind, c in self.open.items() if c.reported]
        self.open.clear()
        return events
