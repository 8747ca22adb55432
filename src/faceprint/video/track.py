"""Faces followed from frame to frame: an IoU tracker gated by the embedding (numpy only).

Each detected face joins the live track whose box it overlaps (IoU at least
:attr:`TrackerConfig.iou_min`) **and** whose last embedding it resembles (cosine at least
:attr:`TrackerConfig.cos_min`), greedily, best pair first. The cosine gate is what keeps a track
from jumping to another person whose box overlaps: at the hamilton clip's cut before frame 211,
box-only trackers (SORT, ByteTrack, OC-SORT) carried Miranda's track onto Barack Obama (IoU
0.4); the cosines there were -0.10 to 0.13, against 0.775 at least between consecutive frames of
one person (docs/research/video_watch.md, section 2).

A track is *confirmed* after :attr:`TrackerConfig.min_hits` detections: the clip's detections of
a hand or a microphone last 1-2 frames. A track unmatched for :attr:`TrackerConfig.max_age_s`
seconds ends (``lost``); an unconfirmed one ends at its first miss. Between detections (``every``
N frames) boxes move at the track's smoothed velocity (:meth:`FaceTracker.predict`).
Track ids count from 1 in the order tracks start, so a file gives the same ids on every run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceprint.types import Box, EmbeddedFace

logger = logging.getLogger(__name__)

#: Why a track ended.
END_REASONS: tuple[str, ...] = ("lost", "cut", "appearance_changed", "end_of_stream")


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How faces are joined into tracks (defaults measured on the hamilton clip)."""

    iou_min: float = 0.3
    cos_min: float = 0.2  # cosine(new face, track's last embedding)
    max_age_s: float = 0.5  # unmatched this long: the track ends ("lost")
    min_hits: int = 3  # detections before a track is confirmed (hand/microphone false positives)

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_min <= 1.0:
            raise ValueError(f"iou_min must be in [0, 1]; got {self.iou_min}")
        if not -1.0 <= self.cos_min <= 1.0:
            raise ValueError(f"cos_min must be in [-1, 1]; got {self.cos_min}")
        if self.max_age_s < 0:
            raise ValueError(f"max_age_s must be at least 0; got {self.max_age_s}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be at least 1; got {self.min_hits}")


def face_quality(face: EmbeddedFace) -> float:
    """The face's quality score (the embedding's, else the detection's; 1.0 when unrated)."""
    quality = face.quality or face.face.quality
    return 1.0 if quality is None else float(quality.score)


def is_distinct(face: EmbeddedFace) -> bool:
    """Whether the face looks like one to the embedder: not flagged ``indistinct`` by its norm
    (the clip's hand and microphone detections all are; models without a norm flag none)."""
    quality = face.quality or face.face.quality
    return quality is None or "indistinct" not in quality.reasons


@dataclass(slots=True, eq=False)
class Track:
    """One face followed through the video. ``box`` is where it was last detected."""

    id: int
    first_frame: int
    first_time_s: float
    last_frame: int
    last_time_s: float
    box: Box
    face: EmbeddedFace  # the last one matched
    hits: int = 1
    distinct_hits: int = 0  # detections not flagged "indistinct"
    confirmed: bool = False
    #: Box edges' speed in pixels a second (x1, y1, x2, y2), smoothed.
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))

    @property
    def embedding(self) -> np.ndarray:
        return self.face.embedding

    @property
    def duration_s(self) -> float:
        return max(0.0, self.last_time_s - self.first_time_s)

    def predict(self, time_s: float) -> Box:
        """The box at ``time_s`` at the track's velocity (its last box for a new track)."""
        dt = time_s - self.last_time_s
        if dt <= 0 or not self.velocity.any():
            return self.box
        x1, y1, x2, y2 = np.array([self.box.x1, self.box.y1, self.box.x2, self.box.y2]) + self.velocity * dt
        return Box(float(x1), float(y1), float(x2), float(y2))

    def add(self, frame: int, time_s: float, face: EmbeddedFace) -> None:
        """Take ``face`` as this track's detection at ``frame``."""
        dt = time_s - self.last_time_s
        if dt > 0:
            old = np.array([self.box.x1, self.box.y1, self.box.x2, self.box.y2])
            new = np.array([face.face.box.x1, face.face.box.y1, face.face.box.x2, face.face.box.y2])
            step = (new - old) / dt
            self.velocity = step if self.hits == 1 else 0.5 * self.velocity + 0.5 * step
        self.last_frame, self.last_time_s = frame, time_s
        self.box = face.face.box
        self.face = face
        self.hits += 1
        self.distinct_hits += is_distinct(face)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """What one detection frame did: faces matched to tracks (new tracks included, each with
    its first face), tracks confirmed now, and tracks ended with their reason."""

    matched: list[tuple[Track, EmbeddedFace]]
    started: list[Track]
    confirmed: list[Track]
    ended: list[tuple[Track, str]]


def associate(
    tracks: Sequence[Track], faces: Sequence[EmbeddedFace], config: TrackerConfig, time_s: float | None = None
) -> list[tuple[int, int]]:
    """(track index, face index) pairs, one to one, greedily by IoU + cosine, best first; a
    pair failing either gate is never made. Boxes are predicted to ``time_s`` when given."""
    pairs: list[tuple[float, int, int]] = []
    for ti, track in enumerate(tracks):
        box = track.box if time_s is None else track.predict(time_s)
        for fi, face in enumerate(faces):
            overlap = box.iou(face.face.box)
            if overlap < config.iou_min:
                continue
            cosine = float(np.dot(track.embedding.astype(np.float64), face.embedding.astype(np.float64)))
            if cosine < config.cos_min:
                continue
            pairs.append((overlap + cosine, ti, fi))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_tracks: set[int] = set()
    used_faces: set[int] = set()
    out: list[tuple[int, int]] = []
    for _, ti, fi in pairs:
        if ti in used_tracks or fi in used_faces:
            continue
        used_tracks.add(ti)
        used_faces.add(fi)
        out.append((ti, fi))
    return out


class FaceTracker:
    """Live tracks, updated one detection frame at a time (see the module's docstring)."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self.tracks: list[Track] = []
        self.next_id = 1

    def update(self, frame: int, time_s: float, faces: Sequence[EmbeddedFace]) -> TrackUpdate:
        """Match ``faces`` (one detection frame's) to the live tracks; start a track for each
        face left over; end the tracks gone too long (an unconfirmed one at its first miss)."""
        pairs = associate(self.tracks, faces, self.config, time_s)
        matched: list[tuple[Track, EmbeddedFace]] = []
        confirmed: list[Track] = []
        hit: set[int] = set()
        for ti, fi in pairs:
            track, face = self.tracks[ti], faces[fi]
            track.add(frame, time_s, face)
            hit.add(track.id)
            matched.append((track, face))
            if not track.confirmed and track.hits >= self.config.min_hits:
                track.confirmed = True
                confirmed.append(track)
        ended: list[tuple[Track, str]] = []
        for track in self.tracks:
            if track.id in hit:
                continue
            if not track.confirmed or time_s - track.last_time_s > self.config.max_age_s:
                ended.append((track, "lost"))
        gone = {t.id for t, _ in ended}
        self.tracks = [t for t in self.tracks if t.id not in gone]
        taken = {fi for _, fi in pairs}
        started = [self.start(frame, time_s, face) for fi, face in enumerate(faces) if fi not in taken]
        matched += [(track, track.face) for track in started]
        confirmed += [t for t in started if t.confirmed]  # min_hits 1
        return TrackUpdate(matched, started, confirmed, ended)

    def start(self, frame: int, time_s: float, face: EmbeddedFace) -> Track:
        """A new track whose first detection is ``face``."""
        track = Track(self.next_id, frame, time_s, frame, time_s, face.face.box, face,
                      distinct_hits=int(is_distinct(face)), confirmed=self.config.min_hits <= 1)
        self.next_id += 1
        self.tracks.append(track)
        return track

    def split(self, track: Track) -> Track:
        """End ``track`` (its face no longer looks like the rest of it) and start a new one from
        its last face. The caller reports ``track`` ended with ``appearance_changed``."""
        self.tracks = [t for t in self.tracks if t is not track]
        logger.debug("track %d split at frame %d (appearance changed)", track.id, track.last_frame)
        return self.start(track.last_frame, track.last_time_s, track.face)

    def predict(self, time_s: float) -> list[tuple[Track, Box]]:
        """Each live track with its box moved to ``time_s`` (between detections)."""
        return [(t, t.predict(time_s)) for t in self.tracks]

    def end_all(self, reason: str) -> list[tuple[Track, str]]:
        """End every live track (a scene cut, the end of the stream)."""
        ended = [(t, reason) for t in self.tracks]
        self.tracks = []
        return ended
