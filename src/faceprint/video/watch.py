"""Watch a video: detect, track, name each track, report events -- one frame at a time.

:class:`Watcher` is the engine (``faceprint watch``, the service's stream sessions and
``POST /v1/videos/identify``, and the synthetic-video evaluation all drive it):

>>> watcher = Watcher(analyzer, gallery, WatchOptions(every=2))
>>> for frame in source:
...     result = watcher.process(frame)      # FrameResult: result.tracks (TrackView), result.events
>>> events = watcher.finish()                # tracks ended; the last event is "summary"

Per frame: a scene cut (:class:`faceprint.video.cuts.CutDetector`) ends every track; every
``every``-th frame (and on a cut) faces are detected and embedded and matched to tracks
(:mod:`.track`); each track's name comes from its faces together (:mod:`.identity`); between
detections boxes are predicted. Only confirmed tracks get events (``track_started``,
``identified``, ``track_ended``) and count in the summary. :func:`watch` runs a whole source.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint.errors import FaceprintError, InvalidArgumentError, InvalidImageError, ModelMismatchError
from faceprint.gallery import Gallery
from faceprint.pipeline import Analyzer
from faceprint.types import Box, EmbeddedFace
from faceprint.video.annotate import TrackMark, draw_tracks
from faceprint.video.cuts import CutDetector
from faceprint.video.enroll import BestCrops, enroll_crops
from faceprint.video.events import Event, box_list, rounded
from faceprint.video.identity import IdentityKeeper, IdentityPolicy, Observation, TrackIdentity
from faceprint.video.proctor import Proctor, ProctorPolicy
from faceprint.video.track import FaceTracker, Track, TrackerConfig
from faceprint.video.types import Frame, VideoInfo, VideoSource

if TYPE_CHECKING:
    from faceprint.video.source import VideoWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How to watch. ``far``/``threshold``: the naming decision (default FAR 1e-3, the model
    card's threshold). ``every``: detect every Nth frame (boxes predicted between).
    ``enroll_track``/``enroll_name``: enrol that track's ``enroll_frames`` best faces under the
    name when it ends (track ids are the same on every run of a file with the same options).
    ``keep_crops``: keep every recent track's best crops so that :meth:`Watcher.enroll` can enrol
    any of them later (the one-click case; up to 32 tracks x ``enroll_frames`` crops in memory);
    off by default, when only ``enroll_track``'s are kept."""

    every: int = 1
    far: float | None = None
    threshold: float | None = None
    tracker: TrackerConfig = TrackerConfig()
    identity: IdentityPolicy = IdentityPolicy()
    cuts: bool = True
    cut_threshold: float = 0.35
    proctor: ProctorPolicy | None = None
    enroll_track: int | None = None
    enroll_name: str | None = None
    enroll_frames: int = 5
    keep_crops: bool = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InvalidArgumentError(f"every must be at least 1 (detect on every Nth frame); got {self.every}",
                                       details={"every": self.every})
        if (self.enroll_track is None) != (self.enroll_name is None):
            raise InvalidArgumentError("enrolling from a video needs both the track and the name",
                                       details={"track": self.enroll_track, "name": self.enroll_name})
        if self.enroll_name is not None and not self.enroll_name.strip():
            raise InvalidArgumentError("the name to enrol is empty")
        if self.enroll_frames < 1:
            raise InvalidArgumentError(f"enroll_frames must be at least 1; got {self.enroll_frames}")
        if not 0.0 < self.cut_threshold < 1.0:
            raise InvalidArgumentError(f"cut_threshold must be in (0, 1); got {self.cut_threshold}")


@dataclass(frozen=True, slots=True)
class TrackView:
    """One track on one frame: where it is, who (None: unknown), how sure, whether confirmed
    (only confirmed tracks are reported and drawn) and whether the box was predicted (a frame
    between detections) rather than detected."""

    track: int
    box: Box
    identity: str | None
    similarity: float | None
    confirmed: bool
    predicted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"track": self.track, "box": box_list(self.box), "identity": self.identity,
                "similarity": rounded(self.similarity, 4), "confirmed": self.confirmed, "predicted": self.predicted}


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one frame gave: the tracks in view and the events it caused."""

    frame: int
    time_s: float
    detected: bool  # faces were detected on this frame (else boxes were predicted)
    tracks: list[TrackView]
    events: list[Event]

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.frame, "time_s": round(self.time_s, 3), "detected": self.detected,
                "tracks": [t.to_dict() for t in self.tracks], "events": [e.to_dict() for e in self.events]}


@dataclass(frozen=True, slots=True)
class WatchSummary:
    """The run: frames seen and detected on, wall seconds from the first frame to the last
    (decoding included), frames a second, each confirmed track, proctoring intervals."""

    frames: int
    detected_frames: int
    seconds: float
    fps: float
    tracks: list[dict[str, Any]]
    identities: list[str]
    proctor: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "detected_frames": self.detected_frames, "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2), "tracks": self.tracks, "identities": self.identities,
                "proctor": self.proctor, "interrupted": self.interrupted}


@dataclass(slots=True)
class _Record:
    """A confirmed track, for the summary."""

    track: int
    first_frame: int
    first_s: float
    last_frame: int = 0
    last_s: float = 0.0
    frames: int = 0
    identity: TrackIdentity = field(default_factory=TrackIdentity)
    end_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"track": self.track, "first_frame": self.first_frame, "last_frame": self.last_frame,
                "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "duration_s": round(max(0.0, self.last_s - self.first_s), 3), "frames": self.frames,
                "identity": self.identity.identity, "similarity": rounded(self.identity.similarity, 4),
                "named_at_frame": self.identity.named_at_frame, "end_reason": self.end_reason}


class Watcher:
    """Tracks and names the faces of a stream of frames (see the module's docstring).

    ``gallery`` None: tracks are followed but never named (nor proctored, nor enrolled).
    ``analyzer`` must run the gallery's model (:class:`~faceprint.errors.ModelMismatchError`).
    Frames must come in order: each ``Frame.index`` above the last, ``Frame.time_s`` finite and
    never below the last (:class:`~faceprint.errors.InvalidArgumentError`; an index going back
    would stop detection until it caught up, a time going back would keep lost tracks alive).
    ``Frame.rgb`` is checked as the Analyzer checks an image (``InvalidImageError``,
    ``ImageTooLargeError``): an HxWx3 array with pixels, within its pixel limit.
    """

    def __init__(self, analyzer: Analyzer, gallery: Gallery | None = None, options: WatchOptions = WatchOptions()) -> None:
        self.analyzer = analyzer
        self.gallery = gallery
        self.options = options
        if gallery is not None and gallery.model_id != analyzer.model_id:
            raise ModelMismatchError(f"the gallery holds templates of {gallery.model_id}; the video is embedded with "
                                     f"{analyzer.model_id}", details={"gallery_model": gallery.model_id,
                                                                      "model": analyzer.model_id})
        needs = [what for what, wanted in (("proctoring", options.proctor), ("enrolling", options.enroll_track))
                 if wanted is not None]
        if gallery is None and needs:
            raise InvalidArgumentError(f"{' and '.join(needs)} needs a gallery")
        if gallery is not None and options.proctor is not None:
            gallery.subject(options.proctor.subject)  # SubjectNotFoundError before any frame is read
        self.keeper = IdentityKeeper(gallery, options.identity, far=options.far, threshold=options.threshold) \
            if gallery is not None else None
        card = analyzer.embedder_card
        calibrated = card.calibration is not None and bool(card.calibration.thresholds)
        self.tracker = FaceTracker(options.tracker.for_model(card.threshold_for if calibrated else None))
        self.cut_detector: CutDetector | None = None
        if options.cuts:
            self.cut_detector = CutDetector(options.cut_threshold)
        self.proctor = Proctor(options.proctor) if options.proctor is not None else None
        # Crops only where an enrolment can use them: a service stream or a plain watch keeps none.
        enrolling = options.keep_crops or options.enroll_track is not None
        self.crops = BestCrops(options.enroll_frames) if gallery is not None and enrolling else None
        self.records: dict[int, _Record] = {}
        self.frames = 0
        self.detected_frames = 0
        self.last_detection: int | None = None  # the frame index faces were last detected on
        self.last_frame = 0
        self.last_time_s = 0.0
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.interrupted = False
        self.enrolled_track = False
        #: Why the enrolment WatchOptions asked for failed (also in its ``enrolled`` event).
        self.enroll_error: FaceprintError | None = None
        #: The gallery faces enrolled from tracks so far.
        self.enrolled_face_ids: list[int] = []
        self.finished = False

    # --- decisions --------------------------------------------------------------------------
    @property
    def threshold(self) -> float | None:
        return None if self.keeper is None else self.keeper.threshold

    @property
    def far(self) -> float | None:
        return None if self.keeper is None else self.keeper.far

    def identity(self, track: int) -> TrackIdentity:
        return TrackIdentity() if self.keeper is None else self.keeper.identity(track)

    def started(self, info: VideoInfo) -> Event:
        """The ``video_started`` event for ``info``: the source and how it is watched."""
        return Event("video_started", 0, 0.0, extra={
            **info.to_dict(), "model": self.analyzer.model_id, "far": self.far, "threshold": rounded(self.threshold, 4),
            "threshold_source": None if self.keeper is None else self.keeper.threshold_source,
            "every": self.options.every, "gallery": self.gallery is not None})

    # --- frames -----------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        """Take the next frame; the tracks in view on it and the events it caused."""
        if self.finished:
            raise InvalidArgumentError("this watcher has finished; start a new one")
        self._check_order(frame)
        if not isinstance(frame.rgb, np.ndarray):
            raise InvalidImageError(f"a frame must be a numpy array, not {type(frame.rgb).__name__}")
        # The Analyzer's own checks: a typed error for a bad shape or dtype, no pixels, too many.
        frame = Frame(frame.index, frame.time_s, self.analyzer.load(frame.rgb))
        now = time.perf_counter()
        if self.started_at is None:
            self.started_at = now
        self.frames += 1
        self.last_frame, self.last_time_s = frame.index, frame.time_s
        events: list[Event] = []
        cut = self.cut_detector is not None and self.cut_detector(frame.rgb)
        if cut:
            events += self._ended(self.tracker.end_all("cut"))
            events.append(Event("scene_cut", frame.index, frame.time_s))
        detect = cut or self.last_detection is None or frame.index - self.last_detection >= self.options.every
        if detect:
            events += self._detect(frame)
        tracks = self._visible()
        views = [self._view(t, box, predicted=not detect) for t, box in tracks]
        if self.proctor is not None:
            events += self.proctor.observe(frame.index, frame.time_s, [(t, self.identity(t.id)) for t, _ in tracks])
        self.ended_at = time.perf_counter()
        return FrameResult(frame.index, frame.time_s, detect, views, events)

    def _check_order(self, frame: Frame) -> None:
        if not math.isfinite(frame.time_s):
            raise InvalidArgumentError(f"frame {frame.index}: time_s must be a finite number; got {frame.time_s}",
                                       details={"frame": frame.index})
        if self.frames and (frame.index <= self.last_frame or frame.time_s < self.last_time_s):
            raise InvalidArgumentError(
                f"frames must come in order: frame {frame.index} at {frame.time_s:.3f} s after frame "
                f"{self.last_frame} at {self.last_time_s:.3f} s",
                details={"frame": frame.index, "time_s": frame.time_s, "previous_frame": self.last_frame,
                         "previous_time_s": self.last_time_s})

    def _detect(self, frame: Frame) -> list[Event]:
        self.detected_frames += 1
        self.last_detection = frame.index
        rgb = frame.rgb
        faces = self.analyzer.detect_array(rgb)
        embedded: list[EmbeddedFace] = self.analyzer.embed_faces(rgb, faces) if faces else []
        update = self.tracker.update(frame.index, frame.time_s, embedded)
        events = self._ended(update.ended)
        observed: dict[int, Observation] = {}
        if self.keeper is not None:
            observed = self.keeper.observe(update.matched, frame.index)
        matched = [track for track, _ in update.matched]
        newly_confirmed = {t.id for t in update.confirmed}
        for i, track in enumerate(matched):
            seen = observed.get(track.id)
            if seen is not None and seen.must_split:
                events += self._ended([(track, "appearance_changed")])
                fresh = self.tracker.split(track)
                assert self.keeper is not None
                self.keeper.observe([(fresh, fresh.face)], frame.index)
                matched[i] = fresh
        for track in matched:
            if self.crops is not None:
                self.crops.offer(track.id, frame.index, rgb, track.face)
            if not track.confirmed:
                continue
            record = self.records.get(track.id)
            if record is None:
                record = self.records[track.id] = _Record(track.id, track.first_frame, track.first_time_s)
            record.last_frame, record.last_s, record.frames = track.last_frame, track.last_time_s, track.hits
            record.identity = self.identity(track.id)
            known = record.identity
            if track.id in newly_confirmed:
                events.append(Event("track_started", frame.index, frame.time_s, track.id, box=track.box,
                                    extra={"first_frame": track.first_frame}))
            seen = observed.get(track.id)
            if known.identity is not None and (track.id in newly_confirmed or (seen is not None and seen.newly_named)):
                events.append(self._identified(frame, track, known))
        return events

    def _identified(self, frame: Frame, track: Track, known: TrackIdentity) -> Event:
        return Event("identified", frame.index, frame.time_s, track.id, known.identity, known.similarity, track.box, extra={
            "since_frame": track.first_frame, "named_at_frame": known.named_at_frame, "frames_used": known.frames_used,
            "rule": known.rule, "threshold": rounded(self.threshold, 4), "far": self.far})

    def _ended(self, ended: list[tuple[Track, str]]) -> list[Event]:
        events = []
        for track, reason in ended:
            known = self.keeper.forget(track.id) if self.keeper is not None else TrackIdentity()
            if not track.confirmed:
                if self.crops is not None:  # never reported, so never enrolled: its place goes to real tracks
                    self.crops.forget(track.id)
                continue
            record = self.records.get(track.id)
            if record is not None:
                record.identity, record.end_reason = known, reason
            events.append(Event("track_ended", track.last_frame, track.last_time_s, track.id, known.identity,
                                known.similarity, track.box, extra={
                                    "first_frame": track.first_frame, "last_frame": track.last_frame,
                                    "duration_s": round(track.duration_s, 3), "frames": track.hits, "reason": reason}))
            if self.options.enroll_track == track.id and not self.enrolled_track:
                events.append(self._enroll_requested(track.last_frame, track.last_time_s))
        return events

    def _visible(self) -> list[tuple[Track, Box]]:
        """The tracks matched at the last detection, with their boxes now (predicted between)."""
        return [(t, box) for t, box in self.tracker.predict(self.last_time_s) if t.last_frame == self.last_detection]

    def _view(self, track: Track, box: Box, *, predicted: bool) -> TrackView:
        known = self.identity(track.id)
        return TrackView(track.id, box, known.identity, known.similarity, track.confirmed, predicted)

    # --- enrolment ----------------------------------------------------------------------------
    def enroll(self, track: int, name: str) -> Event:
        """Enrol ``track``'s best faces (kept for the last 32 tracks seen) under ``name`` through the
        gallery's checks; the ``enrolled`` event (``enrolled``/``rejected`` as ``faceprint
        enroll`` reports them). :class:`InvalidArgumentError` for a track not seen."""
        if self.gallery is None or self.crops is None:
            raise InvalidArgumentError("enrolling from a video needs a gallery and WatchOptions(keep_crops=True) "
                                       "(or enroll_track)")
        crops = self.crops.best(track)
        if not crops:
            shown = ", ".join(str(t) for t in sorted(self.records)) or "none"
            raise InvalidArgumentError(f"no track {track} in this video (confirmed tracks: {shown}); track ids are "
                                       "the same on every run of a file with the same options",
                                       details={"track": track})
        report = enroll_crops(self.gallery, name, crops, label=f"track {track}")
        face_ids = [e.face_id for e in report.enrolled]
        self.enrolled_face_ids += face_ids
        return Event("enrolled", self.last_frame, self.last_time_s, track, name.strip() if face_ids else None, extra={
            "name": name.strip(), "face_ids": face_ids, "frames": [c.frame for c in crops], **report.to_dict(),
            "error": None})

    def _enroll_requested(self, frame: int, time_s: float) -> Event:
        """The enrolment WatchOptions asked for (once): an ``enrolled`` event, its error inside."""
        self.enrolled_track = True
        track, name = self.options.enroll_track, self.options.enroll_name
        assert track is not None and name is not None
        try:
            return self.enroll(track, name)
        except FaceprintError as exc:
            self.enroll_error = exc
            return Event("enrolled", frame, time_s, track, None, extra={
                "name": name, "face_ids": [], "frames": [], "enrolled": [], "rejected": [], "error": exc.to_dict()})

    # --- the end ------------------------------------------------------------------------------
    def finish(self, *, interrupted: bool = False) -> list[Event]:
        """End every track (``end_of_stream``) and open proctoring interval, do the enrolment
        asked for if its track never ended; the events, the last one ``summary``."""
        if self.finished:
            return [self.summary_event()]
        self.interrupted = self.interrupted or interrupted
        events = self._ended(self.tracker.end_all("end_of_stream"))
        if self.proctor is not None:
            events += self.proctor.finish(self.last_frame, self.last_time_s)
        if self.options.enroll_track is not None and not self.enrolled_track:
            events.append(self._enroll_requested(self.last_frame, self.last_time_s))
        self.finished = True
        events.append(self.summary_event())
        return events

    def summary(self) -> WatchSummary:
        seconds = 0.0 if self.started_at is None or self.ended_at is None else self.ended_at - self.started_at
        tracks = [r.to_dict() for r in sorted(self.records.values(), key=lambda r: r.track)]
        names = sorted({r.identity.identity for r in self.records.values() if r.identity.identity is not None})
        fps = self.frames / seconds if seconds > 0 else 0.0
        proctor = [i.to_dict() for i in self.proctor.intervals] if self.proctor is not None else []
        return WatchSummary(self.frames, self.detected_frames, seconds, fps, tracks, names, proctor, self.interrupted)

    def summary_event(self) -> Event:
        return Event("summary", self.last_frame, self.last_time_s, extra=self.summary().to_dict())


def track_label(view: TrackView) -> str:
    """``"#3 Ada 0.62"`` or ``"#3 unknown"``: what an annotated video shows by a track's box."""
    if view.identity is None:
        return f"#{view.track} unknown"
    return f"#{view.track} {view.identity}" + ("" if view.similarity is None else f" {view.similarity:.2f}")


def annotated(rgb: np.ndarray, tracks: Sequence[TrackView]) -> np.ndarray:
    """A copy of the frame with its confirmed tracks' boxes, ids and names drawn."""
    return draw_tracks(rgb, [TrackMark(v.box, track_label(v), v.identity is not None) for v in tracks if v.confirmed])


def watch(source: VideoSource, analyzer: Analyzer, gallery: Gallery | None = None, options: WatchOptions = WatchOptions(),
          *, annotate_to: VideoWriter | None = None) -> Iterator[Event]:
    """Watch all of ``source``: ``video_started``, each frame's events, then the end's (the last
    is ``summary``). ``annotate_to``: every frame is written there with its confirmed tracks'
    boxes, ids and names. Ctrl-C (KeyboardInterrupt) while a frame is read or processed ends the
    run as the end of the stream would, its summary saying ``interrupted``. ``source`` is closed
    at the end, and also when the Watcher refuses its arguments."""
    try:
        watcher = Watcher(analyzer, gallery, options)
    except BaseException:
        source.close()
        raise
    interrupted = False
    try:
        yield watcher.started(source.info)
        for frame in source:
            result = watcher.process(frame)
            if annotate_to is not None:
                annotate_to.write(annotated(frame.rgb, result.tracks))
            yield from result.events
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
    yield from watcher.finish(interrupted=interrupted)
