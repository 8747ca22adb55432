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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from faceprint.errors import FaceprintError
from faceprint.types import Box, EmbeddedFace

logger = logging.getLogger(__name__)

#: Why a track ended.
END_REASONS: tuple[str, ...] = ("lost", "cut", "appearance_changed", "end_of_stream")


#: The gates where the embedder has no calibration: fr-feature's, measured on the clip (one
#: person's consecutive frames: cosine 0.775 at least; different faces 0.336 at most).
FALLBACK_COS_MIN = 0.2
FALLBACK_REID_COS = 0.5


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How faces are joined into tracks (defaults measured on the hamilton clip).

    The cosine gates depend on the embedder (dlib's cosines between strangers sit near 0.9,
    fr-feature's near 0), so by default they are the embedder card's thresholds at a FAR
    (:meth:`for_model`): ``cos_min`` at ``gate_far`` 0.03 (fr-feature: 0.19, the 0.2 measured
    on the clip); ``reid_cos`` at ``reid_far`` 1e-3 (fr-feature: 0.336), the stricter gate of
    the second pass, which joins a face to a track it does not overlap (a head that moved
    fast, or ducked, between two detections) when it is within ``reid_distance`` box sizes.
    """

    iou_min: float = 0.3
    cos_min: float | None = None  # cosine(new face, track's last embedding); None: from the card
    max_age_s: float = 0.5  # unmatched this long: the track ends ("lost")
    min_hits: int = 3  # detections before a track is confirmed (hand/microphone false positives)
    gate_far: float = 0.03
    reid_cos: float | None = None
    reid_far: float = 1e-3
    reid_distance: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_min <= 1.0:
            raise ValueError(f"iou_min must be in [0, 1]; got {self.iou_min}")
        for name in ("cos_min", "reid_cos"):
            value = getattr(self, name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [-1, 1]; got {value}")
        if self.max_age_s < 0:
            raise ValueError(f"max_age_s must be at least 0; got {self.max_age_s}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be at least 1; got {self.min_hits}")
        if self.reid_distance < 0:
            raise ValueError(f"reid_distance must be at least 0; got {self.reid_distance}")

    def for_model(self, threshold_for: Callable[[float], float] | None) -> TrackerConfig:
        """This config with its unset gates filled in: the embedder's thresholds at
        ``gate_far`` and ``reid_far`` (``threshold_for``: its card's), else the fallbacks."""

        def gate(value: float | None, far: float, fallback: float) -> float:
            if value is not None:
                return value
            if threshold_for is None:
                return fallback
            try:
                return float(threshold_for(far))
            except FaceprintError:  # no calibration, or not that far
                return fallback

        return replace(self, cos_min=gate(self.cos_min, self.gate_far, FALLBACK_COS_MIN),
                       reid_cos=gate(self.reid_cos, self.reid_far, FALLBACK_REID_COS))


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
    """(track index, face index) pairs, one to one. First greedily by IoU + cosine, best
    first, a pair failing either gate never made; then, among those left, by cosine alone
    above the stricter ``reid_cos`` for a face within ``reid_distance`` box sizes of the
    track. Boxes are predicted to ``time_s`` when given."""
    config = config.for_model(None) if config.cos_min is None or config.reid_cos is None else config
    assert config.cos_min is not None and config.reid_cos is not None
    boxes = [track.box if time_s is None else track.predict(time_s) for track in tracks]
    cosines = np.array([[float(np.dot(t.embedding.astype(np.float64), f.embedding.astype(np.float64))) for f in faces]
                        for t in tracks]).reshape(len(tracks), len(faces))
    pairs: list[tuple[float, int, int]] = []
    for ti, box in enumerate(boxes):
        for fi, face in enumerate(faces):
            overlap = box.iou(face.face.box)
            if overlap >= config.iou_min and cosines[ti, fi] >= config.cos_min:
                pairs.append((overlap + cosines[ti, fi], ti, fi))
    used_tracks: set[int] = set()
    used_faces: set[int] = set()
    out: list[tuple[int, int]] = []
    second: list[tuple[float, int, int]] = []
    for ti, (track, box) in enumerate(zip(tracks, boxes)):
        for fi, face in enumerate(faces):
            if cosines[ti, fi] >= config.reid_cos and _near(box, track.box, face.face.box, config.reid_distance):
                second.append((float(cosines[ti, fi]), ti, fi))
    for stage in (pairs, second):
        stage.sort(key=lambda p: (-p[0], p[1], p[2]))
        for _, ti, fi in stage:
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            out.append((ti, fi))
    return out


def _near(predicted: Box, last: Box, box: Box, sizes: float) -> bool:
    """Whether ``box``'s centre is within ``sizes`` box sizes (the larger side of either box)
    of the track's predicted or last box's centre."""
    reach = sizes * max(last.width, last.height, box.width, box.height)
    cx, cy = box.center
    return any(np.hypot(cx - b.center[0], cy - b.center[1]) <= reach for b in (predicted, last))


class FaceTracker:
    """Live tracks, updated one detection frame at a time (see the module's docstring)."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config.for_model(None)  # gates left unset: the fallbacks
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
