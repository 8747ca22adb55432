"""Face tracking measured on synthetic videos whose ground truth is exact.

Three parts, usable on their own:

* **Synthesis.** A :class:`Scenario` places people (:class:`Actor`) on a generated background:
  each is a sprite cut from LFW photos (the 250x250 deep-funneled images: a feathered ellipse
  around the face), moved along :class:`Waypoint`\\ s, held on one photo for ``hold_frames``
  frames, then the next; each photo is scaled and moved so that its face box (measured by a
  detector on the photo, :func:`measure_faces`, or :data:`FACE_BOX`) fills the waypoint's.
  Solid :class:`Occluder` bars may cover them; a new *shot* (a hard cut) changes the
  background. :meth:`Scenario.truth` gives each frame's faces (:class:`TruthBox`: the face box,
  who it is, whether that person is enrolled, the visible fraction) from the geometry alone;
  :func:`render` draws the frames. Both are deterministic for a scenario (its ``seed``).
  :func:`standard_scenarios` builds the ones the tests and the bench use, :func:`lfw_cast` the
  people who play them (enrolment photos apart from the video's).
* **Counting** (CLEAR-MOT style, own code). :func:`evaluate_tracking` matches each frame's
  predicted tracks to the truth by IoU and counts misses (FN), false positives (FP), identity
  switches (IDSW), track transfers, false names and the frames each person waited for the right
  name (:class:`TrackingResult`).
* **Running.** :func:`watch_scenario` drives a :class:`~faceprint.video.watch.Watcher` frame by
  frame over a scenario (rendered, or decoded from a file) and counts.

A ground-truth *object* is one appearance of a person: somebody who leaves and comes back later
is a new object (a tracker is not expected to re-identify across an absence), while the
``identity`` says who it is. Faces less visible than ``min_visible`` (half hidden by an occluder,
half outside the frame) are *optional*: missing them is no FN and a track on them is no FP.
Used by tests/integration/video/test_synthetic.py and bench/video_fps.py.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from faceprint.gallery import Gallery
from faceprint.imageio import load_image
from faceprint.pipeline import Analyzer
from faceprint.types import Box
from faceprint.video.source import frames_from_arrays
from faceprint.video.types import VideoSource
from faceprint.video.watch import TrackView, Watcher, WatchOptions, WatchSummary

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CAST",
    "DEFAULT_STRANGERS",
    "FACE_ASPECT",
    "FACE_BOX",
    "LFW_SIZE",
    "Actor",
    "Cast",
    "ObjectReport",
    "Occluder",
    "PredictedFace",
    "Scenario",
    "ScenarioRun",
    "TrackedFace",
    "TrackingResult",
    "TruthBox",
    "Waypoint",
    "evaluate_tracking",
    "lfw_cast",
    "lfw_people",
    "measure_faces",
    "render",
    "split_photos",
    "standard_scenarios",
    "watch_scenario",
]

# --------------------------------------------------------------------------------------------
# Ground truth and predictions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TruthBox:
    """One face in one frame: ``box`` is clipped to the frame; ``visible`` is the fraction of the
    whole (unclipped) face box that is on screen and not covered by anything in front of it;
    ``visible_box`` bounds that uncovered part (``None`` when nothing is seen): a detector sees
    only it, so a prediction matching it matches the face."""

    object_id: int
    identity: str
    enrolled: bool
    box: Box
    visible: float
    visible_box: Box | None = None

    def iou(self, other: Box) -> float:
        """The better IoU of ``other`` with the whole face box or with its visible part."""
        best = self.box.iou(other)
        if self.visible_box is not None and self.visible < 1.0:
            best = max(best, self.visible_box.iou(other))
        return best


class TrackedFace(Protocol):
    """What the counting needs of a tracker's output for one face in one frame
    (:class:`faceprint.video.watch.TrackView` has these)."""

    @property
    def track(self) -> int: ...

    @property
    def box(self) -> Box: ...

    @property
    def identity(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PredictedFace:
    """A plain :class:`TrackedFace` (tests, stored predictions)."""

    track: int
    box: Box
    identity: str | None = None


@dataclass(slots=True)
class ObjectReport:
    """One ground-truth object over the whole video."""

    object_id: int
    identity: str
    enrolled: bool
    first_frame: int
    last_frame: int
    required_frames: int = 0  # frames visible at least min_visible
    matched_frames: int = 0
    tracks: list[int] = field(default_factory=list)  # predicted track ids, in order of first match
    first_required_frame: int | None = None
    first_named_frame: int | None = None  # first frame matched to a track with the right name

    @property
    def frames_to_name(self) -> int | None:
        """Frames from the first frame the face is required (visible enough) to the first frame
        its track carries the right name (0: named at once); ``None`` if never, or not enrolled."""
        if self.first_named_frame is None or self.first_required_frame is None:
            return None
        return max(0, self.first_named_frame - self.first_required_frame)

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object_id,
            "identity": self.identity,
            "enrolled": self.enrolled,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "required_frames": self.required_frames,
            "matched_frames": self.matched_frames,
            "tracks": list(self.tracks),
            "frames_to_name": self.frames_to_name,
        }


@dataclass(slots=True)
class TrackingResult:
    """Counts over a whole video. ``gt`` counts the required truth boxes (the MOTA denominator).

    * ``idsw``: a truth object matched to a different track than the one it was last matched
      to (CLEAR-MOT identity switch).
    * ``transfers``: a track matched to a different object than the one it last followed (the
      switch seen from the track's side: a track carried across a cut or a crossing onto someone
      else; CLEAR-MOT does not count it, so it is reported on its own).
    * ``false_names``: frames in which a track matched to a face carries a name that is not that
      face's person, or any name while the person is not enrolled. ``false_name_tracks``: how
      many tracks ever did. ``stray_names``: named tracks matching no face at all.
    * ``name_changes``: times a track's name changed from one name to another (flicker; a track
      going from unknown to a name is not a change).
    """

    frames: int
    gt: int
    matches: int
    fn: int
    fp: int
    idsw: int
    transfers: int
    false_names: int
    false_name_tracks: int
    stray_names: int
    name_changes: int
    objects: list[ObjectReport]

    @property
    def mota(self) -> float:
        """1 - (FN + FP + IDSW) / GT (1.0 for an empty truth with no false positives)."""
        if self.gt == 0:
            return 1.0 if self.fp == 0 else -math.inf
        return 1.0 - (self.fn + self.fp + self.idsw) / self.gt

    def frames_to_name(self) -> dict[int, int | None]:
        """Object id -> frames to its first correct name, for enrolled objects that were required."""
        return {o.object_id: o.frames_to_name for o in self.objects if o.enrolled and o.first_required_frame is not None}

    def to_dict(self) -> dict[str, Any]:
        waits = [v for v in self.frames_to_name().values() if v is not None]
        return {
            "frames": self.frames,
            "gt": self.gt,
            "matches": self.matches,
            "fn": self.fn,
            "fp": self.fp,
            "idsw": self.idsw,
            "transfers": self.transfers,
            "false_names": self.false_names,
            "false_name_tracks": self.false_name_tracks,
            "stray_names": self.stray_names,
            "name_changes": self.name_changes,
            "mota": round(self.mota, 4),
            "frames_to_name_median": float(np.median(waits)) if waits else None,
            "frames_to_name_max": max(waits) if waits else None,
            "never_named": sum(1 for v in self.frames_to_name().values() if v is None),
            "objects": [o.to_dict() for o in self.objects],
        }


def evaluate_tracking(
    truth: Sequence[Sequence[TruthBox]],
    predicted: Sequence[Sequence[TrackedFace]],
    *,
    iou_min: float = 0.5,
    min_visible: float = 0.5,
) -> TrackingResult:
    """Count a tracker's errors against per-frame ground truth (both indexed by frame).

    Matching, per frame, as in CLEAR MOT: a truth object keeps the track it was matched to in
    the previous frame while their IoU stays >= ``iou_min``; the rest are matched greedily by
    descending IoU (>= ``iou_min``), one to one, faces visible at least ``min_visible`` first.
    The IoU is :meth:`TruthBox.iou`'s: with the whole face box, or with its visible part when it
    is partly hidden. Truth boxes below ``min_visible`` take part in
    matching (a track on them is not a false positive) but are not required (no miss).
    """
    if len(truth) != len(predicted):
        raise ValueError(f"truth has {len(truth)} frames, predictions {len(predicted)}")
    objects: dict[int, ObjectReport] = {}
    last_track_of: dict[int, int] = {}  # object -> track it was last matched to
    last_object_of: dict[int, int] = {}  # track -> object it last matched
    name_of_track: dict[int, str] = {}
    false_tracks: set[int] = set()
    gt = matches = fn = fp = idsw = transfers = false_names = stray = changes = 0
    previous: dict[int, int] = {}  # object -> track, matched in the previous frame

    for frame, (faces, preds) in enumerate(zip(truth, predicted, strict=True)):
        for t in faces:
            report = objects.get(t.object_id)
            if report is None:
                report = objects[t.object_id] = ObjectReport(t.object_id, t.identity, t.enrolled, frame, frame)
            report.last_frame = frame
            if t.visible >= min_visible:
                report.required_frames += 1
                gt += 1
                if report.first_required_frame is None:
                    report.first_required_frame = frame
        for p in preds:  # flicker: a name replaced by another name
            if p.identity is not None:
                old = name_of_track.get(p.track)
                if old is not None and old != p.identity:
                    changes += 1
                name_of_track[p.track] = p.identity

        pairs = _match(faces, preds, previous, iou_min, min_visible)
        matched_truth = {i for i, _ in pairs}
        matched_preds = {j for _, j in pairs}
        current: dict[int, int] = {}
        for i, j in pairs:
            t, p = faces[i], preds[j]
            report = objects[t.object_id]
            matches += 1
            report.matched_frames += 1
            current[t.object_id] = p.track
            if t.object_id in last_track_of and last_track_of[t.object_id] != p.track:
                idsw += 1
            if p.track in last_object_of and last_object_of[p.track] != t.object_id:
                transfers += 1
            last_track_of[t.object_id] = p.track
            last_object_of[p.track] = t.object_id
            if p.track not in report.tracks:
                report.tracks.append(p.track)
            if p.identity is not None:
                if not t.enrolled or p.identity != t.identity:
                    false_names += 1
                    false_tracks.add(p.track)
                elif report.first_named_frame is None:
                    report.first_named_frame = frame
        fn += sum(1 for i, t in enumerate(faces) if i not in matched_truth and t.visible >= min_visible)
        for j, p in enumerate(preds):
            if j not in matched_preds:
                fp += 1
                if p.identity is not None:
                    stray += 1
        previous = current

    return TrackingResult(
        frames=len(truth), gt=gt, matches=matches, fn=fn, fp=fp, idsw=idsw, transfers=transfers,
        false_names=false_names, false_name_tracks=len(false_tracks), stray_names=stray, name_changes=changes,
        objects=sorted(objects.values(), key=lambda o: o.object_id),
    )


def _match(
    faces: Sequence[TruthBox], preds: Sequence[TrackedFace], previous: Mapping[int, int], iou_min: float,
    min_visible: float,
) -> list[tuple[int, int]]:
    """(truth index, prediction index) pairs: last frame's correspondences first, then greedy by
    IoU, faces visible enough before hidden ones (a box over a face and the face hidden right
    behind it is the visible face's)."""
    pairs: list[tuple[int, int]] = []
    used_t: set[int] = set()
    used_p: set[int] = set()
    index_of_track = {p.track: j for j, p in enumerate(preds)}
    for i, t in enumerate(faces):
        j_prev = index_of_track.get(previous.get(t.object_id, -1))
        if j_prev is not None and j_prev not in used_p and t.iou(preds[j_prev].box) >= iou_min:
            pairs.append((i, j_prev))
            used_t.add(i)
            used_p.add(j_prev)
    scored = sorted(
        ((t.iou(p.box), i, j) for i, t in enumerate(faces) if i not in used_t
         for j, p in enumerate(preds) if j not in used_p),
        key=lambda s: (faces[s[1]].visible < min_visible, -s[0], s[1], s[2]),
    )
    for iou, i, j in scored:
        if iou < iou_min or i in used_t or j in used_p:
            continue
        pairs.append((i, j))
        used_t.add(i)
        used_p.add(j)
    return pairs


# --------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------

#: Side of the deep-funneled LFW images the sprites are cut from.
LFW_SIZE = 250
#: Where the face is in a 250x250 deep-funneled LFW image when it has not been measured
#: (:func:`measure_faces`). Measured on 76 photos of the 8 people with most photos in lfw_dev:
#: fr-detect's median box is (80, 59, 171, 191), dlib HOG's is (67, 80, 175, 187); this box has
#: IoU >= 0.7 with both. Single photos vary by about +-10 px and +-15% in size around it.
FACE_BOX = Box(74.0, 66.0, 174.0, 190.0)
#: Every truth box has this width/height ratio (FACE_BOX's): between fr-detect's taller boxes
#: and HOG's square ones.
FACE_ASPECT = FACE_BOX.width / FACE_BOX.height
#: The sprite is an ellipse around the face, in units of the face box's height: centre a little
#: above the box centre, semi-axes (width, height). Tight, so that neighbours in the LFW photo
#: stay out; feathered over its outer ``_FEATHER`` fraction.
_ELLIPSE_RISE = 0.05
_ELLIPSE_AXES = (0.53, 0.73)
_FEATHER = 0.15


@dataclass(frozen=True, slots=True)
class Waypoint:
    """Where an actor's face is at ``frame``: its centre (pixels) and its face-box height (pixels).
    Between waypoints the position and size are interpolated linearly."""

    frame: int
    x: float
    y: float
    face_height: float


@dataclass(frozen=True, slots=True)
class Actor:
    """One appearance of a person: on screen from the first waypoint's frame to the last's.
    ``photos`` are LFW image paths shown in turn, each for ``hold_frames`` frames; ``faces`` the
    face box in each photo (:func:`measure_faces`; empty: :data:`FACE_BOX` for all): each photo
    is scaled and placed so that its face fills the waypoint's face box. A higher ``z`` is drawn
    in front."""

    object_id: int
    identity: str
    enrolled: bool
    photos: tuple[str, ...]
    path: tuple[Waypoint, ...]
    z: int = 0
    hold_frames: int = 10
    faces: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        if not self.photos or not self.path:
            raise ValueError("an actor needs photos and at least one waypoint")
        if self.faces and len(self.faces) != len(self.photos):
            raise ValueError(f"{len(self.faces)} face boxes for {len(self.photos)} photos")
        if any(b.frame <= a.frame for a, b in zip(self.path, self.path[1:], strict=False)):
            raise ValueError("waypoints must have increasing frames")

    @property
    def first_frame(self) -> int:
        return self.path[0].frame

    @property
    def last_frame(self) -> int:
        return self.path[-1].frame

    def at(self, frame: int) -> Waypoint | None:
        """The interpolated position at ``frame``, or ``None`` when off stage."""
        if frame < self.first_frame or frame > self.last_frame:
            return None
        for a, b in zip(self.path, self.path[1:], strict=False):
            if a.frame <= frame <= b.frame:
                u = (frame - a.frame) / (b.frame - a.frame)
                return Waypoint(frame, a.x + u * (b.x - a.x), a.y + u * (b.y - a.y),
                                a.face_height + u * (b.face_height - a.face_height))
        return self.path[0]

    def photo(self, frame: int) -> tuple[str, Box]:
        """The photo shown at ``frame`` and the face box in it."""
        k = ((frame - self.first_frame) // self.hold_frames) % len(self.photos)
        return self.photos[k], self.faces[k] if self.faces else FACE_BOX


@dataclass(frozen=True, slots=True)
class Occluder:
    """A solid bar drawn over everything in frames ``first_frame`` .. ``last_frame``."""

    first_frame: int
    last_frame: int
    box: Box
    colour: tuple[int, int, int] = (40, 40, 40)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A synthetic video: its size, length, actors, occluders and the frames that start a new
    shot (each shot has its own background). ``noise`` is the amplitude of per-frame pixel noise."""

    name: str
    width: int
    height: int
    n_frames: int
    actors: tuple[Actor, ...]
    occluders: tuple[Occluder, ...] = ()
    shots: tuple[int, ...] = ()
    fps: float = 30.0
    seed: int = 0
    noise: int = 2

    def enrolled(self) -> list[str]:
        return sorted({a.identity for a in self.actors if a.enrolled})

    def truth(self) -> list[list[TruthBox]]:
        """Each frame's faces, from the geometry alone (no photo is read)."""
        return [self.frame_truth(f) for f in range(self.n_frames)]

    def frame_truth(self, frame: int) -> list[TruthBox]:
        placed = self.placed(frame)
        if not placed:
            return []
        # Who is on top at each pixel: each actor's sprite (alpha >= 0.5) in z order, its own face
        # box counted as its own, then the occluders.
        owner = np.full((self.height, self.width), -1, dtype=np.int32)
        for k, (_, where) in enumerate(placed):
            origin, alpha = _sprite_alpha(where, self.width, self.height)
            _paint(owner, alpha >= 0.5, origin, k)
            fb = _face_box(where)
            x1, y1, x2, y2 = _clip_int(fb, self.width, self.height)
            owner[y1:y2, x1:x2] = k
        for occ in self.occluders:
            if occ.first_frame <= frame <= occ.last_frame:
                x1, y1, x2, y2 = _clip_int(occ.box, self.width, self.height)
                owner[y1:y2, x1:x2] = -2
        faces = []
        for k, (actor, where) in enumerate(placed):
            fb = _face_box(where)
            x1, y1, x2, y2 = _clip_int(fb, self.width, self.height)
            mine = owner[y1:y2, x1:x2] == k
            seen = int(np.count_nonzero(mine))
            clipped = Box(max(0.0, fb.x1), max(0.0, fb.y1), min(float(self.width), fb.x2), min(float(self.height), fb.y2))
            whole = (round(fb.x2) - round(fb.x1)) * (round(fb.y2) - round(fb.y1))  # the pixels seen when all on screen
            visible_box = None
            if seen:
                rows, cols = np.nonzero(mine.any(axis=1))[0], np.nonzero(mine.any(axis=0))[0]
                visible_box = Box(float(x1 + cols[0]), float(y1 + rows[0]), float(x1 + cols[-1] + 1), float(y1 + rows[-1] + 1))
            faces.append(TruthBox(actor.object_id, actor.identity, actor.enrolled, clipped,
                                  round(min(1.0, seen / max(whole, 1)), 4), visible_box))
        return sorted(faces, key=lambda t: t.object_id)

    def placed(self, frame: int) -> list[tuple[Actor, Waypoint]]:
        """Actors on stage at ``frame`` with their positions, back to front."""
        on = [(a, w) for a in self.actors if (w := a.at(frame)) is not None]
        return sorted(on, key=lambda aw: (aw[0].z, aw[0].object_id))

    def shot_of(self, frame: int) -> int:
        return sum(1 for s in self.shots if s <= frame)


def render(scenario: Scenario) -> Iterator[np.ndarray]:
    """The scenario's frames (``HxWx3`` RGB ``uint8``), deterministic for its ``seed``."""
    photos: dict[str, np.ndarray] = {}
    backgrounds: dict[int, np.ndarray] = {}
    for frame in range(scenario.n_frames):
        shot = scenario.shot_of(frame)
        if shot not in backgrounds:
            backgrounds[shot] = _background(scenario.width, scenario.height, scenario.seed * 1000 + shot)
        canvas = backgrounds[shot].astype(np.float32)
        for actor, where in scenario.placed(frame):
            path, face = actor.photo(frame)
            if path not in photos:
                photos[path] = _lfw_photo(path)
            _paste(canvas, photos[path], face, where)
        for occ in scenario.occluders:
            if occ.first_frame <= frame <= occ.last_frame:
                x1, y1, x2, y2 = _clip_int(occ.box, scenario.width, scenario.height)
                canvas[y1:y2, x1:x2] = occ.colour
        if scenario.noise:
            rng = np.random.default_rng((scenario.seed, frame))
            canvas += rng.integers(-scenario.noise, scenario.noise + 1, size=canvas.shape[:2], dtype=np.int16)[..., None]
        yield np.clip(canvas, 0, 255).astype(np.uint8)


def _lfw_photo(path: str) -> np.ndarray:
    rgb = load_image(path)
    if rgb.shape[:2] != (LFW_SIZE, LFW_SIZE):
        rgb = cv2.resize(rgb, (LFW_SIZE, LFW_SIZE), interpolation=cv2.INTER_AREA)
    return rgb


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth coloured blobs (no edges a detector could take for a face)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(20, 236, size=(5, 8, 3)).astype(np.float32)
    small = 0.5 * small + 0.5 * small.mean(axis=2, keepdims=True)  # muted, like a real room
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255)


def _face_box(where: Waypoint) -> Box:
    h = where.face_height
    w = h * FACE_ASPECT
    return Box(where.x - w / 2, where.y - h / 2, where.x + w / 2, where.y + h / 2)


def _sprite_alpha(where: Waypoint, width: int, height: int) -> tuple[tuple[int, int], np.ndarray]:
    """(top-left, mask 0..1) of the feathered ellipse of a face at ``where``, cut to the frame."""
    h = where.face_height
    cx, cy = where.x, where.y - _ELLIPSE_RISE * h
    ax, ay = _ELLIPSE_AXES[0] * h, _ELLIPSE_AXES[1] * h
    x1, y1 = max(0, int(math.floor(cx - ax))), max(0, int(math.floor(cy - ay)))
    x2, y2 = min(width, int(math.ceil(cx + ax))), min(height, int(math.ceil(cy + ay)))
    if x2 <= x1 or y2 <= y1:
        return (0, 0), np.zeros((0, 0), dtype=np.float32)
    xs = (np.arange(x1, x2, dtype=np.float32) + 0.5 - cx) / ax
    ys = (np.arange(y1, y2, dtype=np.float32) + 0.5 - cy) / ay
    r = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    return (x1, y1), np.clip((1.0 - r) / _FEATHER, 0.0, 1.0)


def _paint(owner: np.ndarray, mask: np.ndarray, origin: tuple[int, int], label: int) -> None:
    ox, oy = origin
    region = owner[oy:oy + mask.shape[0], ox:ox + mask.shape[1]]
    region[mask] = label


def _paste(canvas: np.ndarray, photo: np.ndarray, face: Box, where: Waypoint) -> None:
    """Blend the photo into the canvas, scaled and moved so that its ``face`` box's centre and
    height land on ``where``'s, through the feathered ellipse."""
    (ox, oy), alpha = _sprite_alpha(where, canvas.shape[1], canvas.shape[0])
    if alpha.size == 0:
        return
    s = where.face_height / face.height
    fx, fy = face.center
    # photo pixel (u, v) -> patch pixel: s * (u - fx) + where.x - ox (pixel centres, hence the 0.5s)
    matrix = np.array([[s, 0.0, where.x - ox - s * fx + 0.5 * s - 0.5],
                       [0.0, s, where.y - oy - s * fy + 0.5 * s - 0.5]], dtype=np.float64)
    patch = cv2.warpAffine(photo, matrix, (alpha.shape[1], alpha.shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    a = alpha[..., None]
    region = canvas[oy:oy + alpha.shape[0], ox:ox + alpha.shape[1]]
    region[...] = region * (1.0 - a) + patch * a


def _clip_int(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    return (min(width, max(0, int(round(box.x1)))), min(height, max(0, int(round(box.y1)))),
            min(width, max(0, int(round(box.x2)))), min(height, max(0, int(round(box.y2)))))


# --------------------------------------------------------------------------------------------
# LFW people and the standard scenarios
# --------------------------------------------------------------------------------------------


def lfw_people(root: str | Path, *, min_photos: int = 1, variant: str = "images_deepfunneled") -> dict[str, list[str]]:
    """lfw_dev's people -> their photo paths (sorted), from ``identities.csv``, in ``variant``
    (the 250x250 deep-funneled images by default)."""
    root = Path(root)
    people: dict[str, list[str]] = defaultdict(list)
    with (root / "identities.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            rel = row["path"].split("/", 1)[1]  # images/<Name>/<Name>_NNNN.jpg
            people[row["identity"]].append(str(root / variant / rel))
    return {name: sorted(paths) for name, paths in sorted(people.items()) if len(paths) >= min_photos}


def measure_faces(analyzer: Analyzer, photos: Iterable[str]) -> dict[str, Box]:
    """Each photo's face box, by ``analyzer``'s detector: of the faces found, the one nearest the
    photo's centre (LFW centres the person it is labelled with); :data:`FACE_BOX` when none is
    found. With these the truth box is where the detector would put the face in the photo."""
    boxes = {}
    for path in photos:
        rgb = _lfw_photo(path)
        centre = (rgb.shape[1] / 2.0, rgb.shape[0] / 2.0)
        faces = analyzer.detect_array(rgb)
        if not faces:
            logger.debug("no face found in %s: its sprite uses the default face box", path)
            boxes[path] = FACE_BOX
            continue
        best = min(faces, key=lambda f: math.dist(f.box.center, centre))
        boxes[path] = best.box
    return boxes


def split_photos(paths: Sequence[str], n_enroll: int = 4, n_video: int = 8, seed: int = 0) -> tuple[list[str], list[str]]:
    """Disjoint (enrolment photos, video photos) of one person, chosen by ``seed``."""
    if len(paths) < n_enroll + 1:
        raise ValueError(f"need more than {n_enroll} photos, got {len(paths)}")
    order = np.random.default_rng(seed).permutation(len(paths))
    chosen = [paths[i] for i in order]
    return chosen[:n_enroll], chosen[n_enroll:n_enroll + n_video]


def standard_scenarios(
    cast: Mapping[str, Sequence[str]],
    strangers: Mapping[str, Sequence[str]],
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    seconds: float = 4.0,
    seed: int = 0,
    faces: Mapping[str, Box] | None = None,
) -> list[Scenario]:
    """The test scenarios, sized to ``width`` x ``height``. ``cast``: enrolled people -> their
    video photos (at least 3 people); ``strangers``: people not enrolled (at least 1);
    ``faces``: the face box in each photo (:func:`measure_faces`; default :data:`FACE_BOX`).

    * ``enter_leave``: one person walks in from the left edge and out at the right, another comes
      in from the right edge, stays, and leaves the way they came;
    * ``crossing``: two people cross at the same height, the second in front (the first is hidden
      for a few frames);
    * ``half_occluder``: a bar covers half of one face for 0.5 s; another face stays clear;
    * ``stranger``: an enrolled person beside one who is not enrolled (must stay unknown);
    * ``cut_swap``: a hard cut replaces each person with another one at the same place (the
      first person reappears where the second was);
    * ``scale``: a face grows from small to large (walking towards the camera).
    """
    names = list(cast)
    if len(names) < 3 or not strangers:
        raise ValueError("standard_scenarios needs at least 3 enrolled people and 1 stranger")
    stranger = next(iter(strangers))
    n = int(round(seconds * fps))
    w, h = float(width), float(height)
    fh = 0.24 * h  # face height: 173 px at 720p
    half_w = fh * FACE_ASPECT / 2

    def actor(oid: int, name: str, path: Sequence[Waypoint], *, z: int = 0, enrolled: bool = True,
              photos: Mapping[str, Sequence[str]] = cast) -> Actor:
        shown = tuple(photos[name])
        boxes = tuple((faces or {}).get(p, FACE_BOX) for p in shown)
        return Actor(oid, name, enrolled, shown, tuple(path), z=z, faces=boxes)

    def wp(frame: float, x: float, y: float, size: float = fh) -> Waypoint:
        return Waypoint(int(round(frame)), x, y, size)

    last = n - 1
    scenarios = [
        Scenario("enter_leave", width, height, n, (
            actor(1, names[0], [wp(0, -half_w * 0.6, 0.35 * h), wp(last, w + half_w * 0.6, 0.35 * h)]),
            actor(2, names[1], [wp(0.15 * n, w + half_w * 0.6, 0.70 * h), wp(0.4 * n, 0.6 * w, 0.70 * h),
                                wp(0.6 * n, 0.6 * w, 0.70 * h), wp(last, w + half_w * 0.6, 0.70 * h)]),
        ), fps=fps, seed=seed),
        Scenario("crossing", width, height, n, (
            actor(1, names[0], [wp(0, 0.15 * w, 0.5 * h), wp(last, 0.85 * w, 0.5 * h)]),
            actor(2, names[1], [wp(0, 0.85 * w, 0.5 * h), wp(last, 0.15 * w, 0.5 * h)], z=1),
        ), fps=fps, seed=seed + 1),
        Scenario("half_occluder", width, height, n, (
            actor(1, names[2], [wp(0, 0.32 * w, 0.48 * h), wp(last, 0.32 * w, 0.52 * h)]),
            actor(2, names[0], [wp(0, 0.72 * w, 0.45 * h), wp(last, 0.7 * w, 0.45 * h)]),
        ), occluders=(
            # hides the left 45% of person 1's face for 0.5 s, mid-video (visible 0.55: still required)
            Occluder(int(0.4 * n), int(0.4 * n + 0.5 * fps) - 1,
                     Box(0.32 * w - 3 * half_w, 0.3 * h - fh, 0.32 * w - 0.1 * half_w, 0.7 * h + fh)),
        ), fps=fps, seed=seed + 2),
        Scenario("stranger", width, height, n, (
            actor(1, names[1], [wp(0, 0.3 * w, 0.5 * h), wp(last, 0.33 * w, 0.52 * h)]),
            actor(2, stranger, [wp(0, 0.7 * w, 0.5 * h), wp(last, 0.67 * w, 0.48 * h)], enrolled=False, photos=strangers),
        ), fps=fps, seed=seed + 3),
        Scenario("cut_swap", width, height, n, (
            actor(1, names[0], [wp(0, 0.35 * w, 0.5 * h), wp(n // 2 - 1, 0.37 * w, 0.5 * h)]),
            actor(2, names[1], [wp(0, 0.7 * w, 0.5 * h), wp(n // 2 - 1, 0.68 * w, 0.5 * h)]),
            actor(3, names[-1], [wp(n // 2, 0.37 * w, 0.5 * h), wp(last, 0.35 * w, 0.5 * h)]),
            actor(4, names[0], [wp(n // 2, 0.68 * w, 0.5 * h), wp(last, 0.7 * w, 0.5 * h)]),
        ), shots=(n // 2,), fps=fps, seed=seed + 4),
        Scenario("scale", width, height, n, (
            actor(1, names[min(3, len(names) - 1)], [wp(0, 0.5 * w, 0.45 * h, 0.12 * h), wp(last, 0.5 * w, 0.5 * h, 0.45 * h)]),
        ), fps=fps, seed=seed + 5),
    ]
    return scenarios


#: People of lfw_dev with the most photos: enrolled in the standard scenarios.
DEFAULT_CAST = ("Tony_Blair", "Hugo_Chavez", "Jacques_Chirac", "Laura_Bush", "Lleyton_Hewitt")
#: Not enrolled: must stay unknown.
DEFAULT_STRANGERS = ("Andre_Agassi",)


@dataclass(frozen=True, slots=True)
class Cast:
    """Who plays: each enrolled person's enrolment photos and (other) video photos, and the
    strangers' video photos."""

    enroll: dict[str, list[str]]
    video: dict[str, list[str]]
    strangers: dict[str, list[str]]
    faces: dict[str, Box] = field(default_factory=dict)  # face box in each video photo (if measured)

    def scenarios(self, **kwargs: Any) -> list[Scenario]:
        """:func:`standard_scenarios` played by this cast (keyword arguments passed on)."""
        return standard_scenarios(self.video, self.strangers, faces=self.faces, **kwargs)

    def enroll_all(self, gallery: Gallery) -> dict[str, int]:
        """Enrol every cast member from their enrolment photos; name -> faces accepted.
        ``ValueError`` when someone gets none (the gallery rejected every photo)."""
        accepted = {name: len(gallery.enroll(name, photos).enrolled) for name, photos in self.enroll.items()}
        if missing := [name for name, count in accepted.items() if count == 0]:
            raise ValueError(f"no enrolment photo of {', '.join(missing)} was accepted")
        return accepted


def lfw_cast(
    root: str | Path,
    enrolled: Sequence[str] = DEFAULT_CAST,
    strangers: Sequence[str] = DEFAULT_STRANGERS,
    *,
    n_enroll: int = 4,
    n_video: int = 8,
    seed: int = 0,
    analyzer: Analyzer | None = None,
) -> Cast:
    """A :class:`Cast` from lfw_dev at ``root``: disjoint enrolment and video photos per person
    (:func:`split_photos`), deterministic for ``seed``. With an ``analyzer`` the face box in
    each video photo is measured (:func:`measure_faces`)."""
    people = lfw_people(root)
    if unknown := [n for n in (*enrolled, *strangers) if n not in people]:
        raise ValueError(f"not in {root}: {', '.join(unknown)}")
    split = {n: split_photos(people[n], n_enroll, n_video, seed) for n in enrolled}
    video = {n: v for n, (_, v) in split.items()}
    others = {n: split_photos(people[n], 0, n_video, seed)[1] for n in strangers}
    faces = {} if analyzer is None else measure_faces(analyzer, [p for ps in (*video.values(), *others.values()) for p in ps])
    return Cast(enroll={n: e for n, (e, _) in split.items()}, video=video, strangers=others, faces=faces)


@dataclass(slots=True)
class ScenarioRun:
    """A scenario watched: the counts, the time spent and the tracks seen on each frame.
    ``process_seconds`` is the time in :meth:`Watcher.process` only; ``wall_seconds`` adds
    producing the frames (decoding a file, or rendering)."""

    scenario: str
    result: TrackingResult
    frames: int
    detected_frames: int
    process_seconds: float
    wall_seconds: float
    summary: WatchSummary
    predictions: list[list[TrackView]]

    @property
    def fps(self) -> float:
        """Frames a second through the watcher (decoding or rendering excluded)."""
        return self.frames / self.process_seconds if self.process_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "frames": self.frames, "detected_frames": self.detected_frames,
                "process_seconds": round(self.process_seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
                "fps": round(self.fps, 2), **self.result.to_dict()}


def watch_scenario(
    scenario: Scenario,
    analyzer: Analyzer,
    gallery: Gallery | None,
    options: WatchOptions = WatchOptions(),
    *,
    source: VideoSource | None = None,
    confirmed_only: bool = True,
    iou_min: float = 0.5,
    min_visible: float = 0.5,
) -> ScenarioRun:
    """Run a :class:`Watcher` frame by frame over the scenario (rendered, or ``source``: e.g.
    the scenario written to a file and decoded) and count its errors against the truth.
    ``confirmed_only``: count only confirmed tracks (those a user is shown)."""
    frames: Iterable[Any] = source if source is not None else frames_from_arrays(render(scenario), fps=scenario.fps,
                                                                                 source=scenario.name)
    watcher = Watcher(analyzer, gallery, options)
    predictions: list[list[TrackView]] = []
    busy = 0.0
    start = time.perf_counter()
    try:
        for frame in frames:
            tick = time.perf_counter()
            seen = watcher.process(frame)
            busy += time.perf_counter() - tick
            predictions.append([t for t in seen.tracks if t.confirmed or not confirmed_only])
    finally:
        if source is not None:
            source.close()
    watcher.finish()
    wall = time.perf_counter() - start
    truth = scenario.truth()
    if len(predictions) != len(truth):
        raise ValueError(f"{scenario.name}: the source gave {len(predictions)} frames, the scenario has {len(truth)}")
    counts = evaluate_tracking(truth, predictions, iou_min=iou_min, min_visible=min_visible)
    return ScenarioRun(scenario.name, counts, len(predictions), watcher.detected_frames, busy, wall,
                       watcher.summary(), predictions)
