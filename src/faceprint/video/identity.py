"""A name per track, not per frame: the track's embeddings, quality-weighted, searched in the gallery.

The rules (:class:`IdentityPolicy`, numbers from docs/research/video_watch.md section 3):

- **unknown -> a name**: the track's aggregate (the quality-weighted mean of every embedding it
  has, :func:`aggregate`) reaches the threshold of the model card's FAR (``far``, default
  1e-3) after at least ``min_frames`` detections, ``margin`` above the next subject; or at once
  (the *instant rule*) when one face of quality at least ``instant_min_quality`` reaches the
  stricter threshold of ``instant_far`` (1e-4). Thresholds come from the embedder's card through
  :func:`faceprint.pipeline.resolve_threshold`, never from a number written for one model.
- **a name -> another name: never.** When the last ``window`` faces (weighted) fall below the
  threshold of ``split_far`` (1e-2) for the name during ``split_after`` detections running, or
  their mean turns away from the whole track's (cosine below ``split_cosine``), the keeper says
  *split*: the caller ends the track (``appearance_changed``) and a new one starts, which may
  earn its own name.
- One person is never two faces at once: a name held by a live track is not given to another.

On the clip, Miranda's per-frame similarity in 82-210 is 0.400-0.772 against a threshold of
0.336 (fr-feature, FAR 1e-3); different faces stay at or under 0.336; so a named track never
has a reason to change, and the rules above leave no room for flicker.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceprint.errors import InvalidArgumentError
from faceprint.gallery import Candidate, Gallery
from faceprint.pipeline import resolve_threshold
from faceprint.types import EmbeddedFace
from faceprint.video.track import Track, face_quality

logger = logging.getLogger(__name__)

#: The least weight a face gets in an aggregate: a quality-0 face still counts a little.
MIN_WEIGHT = 0.01


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """When a track gets a name, and when it must split (see the module's docstring)."""

    instant_far: float | None = 1e-4
    instant_min_quality: float = 0.5
    min_frames: int = 3
    margin: float = 0.05
    window: int = 10
    split_far: float | None = 1e-2
    split_after: int = 5
    split_cosine: float = 0.3

    def __post_init__(self) -> None:
        if self.min_frames < 1 or self.window < 1 or self.split_after < 1:
            raise InvalidArgumentError("min_frames, window and split_after must be at least 1")
        if self.margin < 0:
            raise InvalidArgumentError(f"margin must be at least 0; got {self.margin}")


@dataclass(frozen=True, slots=True)
class TrackIdentity:
    """A track's name (None: unknown), its aggregate's similarity to that name (or to the best
    candidate while unknown; None with nobody to compare with), the frame at which it was named
    and by which rule, and how many faces the aggregate holds."""

    identity: str | None = None
    similarity: float | None = None
    named_at_frame: int | None = None
    frames_used: int = 0
    rule: str | None = None  # "aggregate" | "instant"


def weight(face: EmbeddedFace) -> float:
    return max(face_quality(face), MIN_WEIGHT)


def aggregate(faces: Sequence[EmbeddedFace]) -> np.ndarray:
    """The quality-weighted mean of the faces' embeddings, L2-normalised (weights
    ``max(quality, 0.01)``)."""
    if not faces:
        raise ValueError("no faces to aggregate")
    total = np.zeros(faces[0].embedding.shape, dtype=np.float64)
    for face in faces:
        total += weight(face) * face.embedding.astype(np.float64)
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 0 else total


@dataclass(slots=True, eq=False)
class _State:
    """What the keeper knows of one track."""

    total: np.ndarray
    frames: int = 0
    recent: deque[tuple[float, np.ndarray]] = field(default_factory=deque)
    known: TrackIdentity = field(default_factory=TrackIdentity)
    contrary: int = 0
    instant: tuple[str, float, int] | None = None  # (name, similarity, frame) by the instant rule

    def mean(self) -> np.ndarray:
        norm = float(np.linalg.norm(self.total))
        return self.total / norm if norm > 0 else self.total

    def recent_mean(self) -> np.ndarray:
        total = sum((w * e for w, e in self.recent), np.zeros_like(self.total))
        norm = float(np.linalg.norm(total))
        return total / norm if norm > 0 else total


@dataclass(frozen=True, slots=True)
class Observation:
    """What one face did to its track's identity: the state now, whether it was named now, and
    whether the track must split (end with ``appearance_changed``)."""

    identity: TrackIdentity
    newly_named: bool = False
    must_split: bool = False


class IdentityKeeper:
    """Names tracks from ``gallery`` (see the module's docstring). ``far``/``threshold``: the
    decision, as everywhere in faceprint (default FAR 1e-3)."""

    def __init__(self, gallery: Gallery, policy: IdentityPolicy = IdentityPolicy(), *,
                 far: float | None = None, threshold: float | None = None) -> None:
        self.gallery = gallery
        self.policy = policy
        card = gallery.analyzer.embedder_card
        self.threshold, self.far, self.threshold_source = resolve_threshold(card, far=far, threshold=threshold)
        self.instant_threshold = self._stricter(policy.instant_far)
        self.split_threshold = self._looser(policy.split_far)
        self.states: dict[int, _State] = {}
        self.holders: dict[str, int] = {}  # name -> the live track holding it
        logger.info("track identities at similarity %.4f (FAR %s, %s); instant %s; split below %s", self.threshold,
                    self.far, self.threshold_source, self.instant_threshold, self.split_threshold)

    def _calibrated(self, far: float | None) -> float | None:
        card = self.gallery.analyzer.embedder_card
        if far is None or card.calibration is None or not card.calibration.thresholds:
            return None
        try:
            return card.threshold_for(far)
        except InvalidArgumentError:  # outside the calibrated range: that rule is off
            return None

    def _stricter(self, far: float | None) -> float | None:
        value = self._calibrated(far)
        return None if value is None else max(value, self.threshold)

    def _looser(self, far: float | None) -> float | None:
        value = self._calibrated(far)
        return None if value is None else min(value, self.threshold)

    def identity(self, track_id: int) -> TrackIdentity:
        state = self.states.get(track_id)
        return state.known if state is not None else TrackIdentity()

    def observe(self, observations: Sequence[tuple[Track, EmbeddedFace]], frame: int) -> dict[int, Observation]:
        """Take each track's new face (one detection frame's; one gallery search for all);
        each track's :class:`Observation`, by track id."""
        if not observations:
            return {}
        states = []
        for track, face in observations:
            state = self.states.get(track.id)
            if state is None:
                state = self.states[track.id] = _State(np.zeros(face.embedding.shape, dtype=np.float64))
            w = weight(face)
            vector = face.embedding.astype(np.float64)
            state.total += w * vector
            state.frames += 1
            state.recent.append((w, vector))
            while len(state.recent) > self.policy.window:
                state.recent.popleft()
            states.append(state)
        # Three queries a track: the whole track, its recent faces, the new face.
        queries = np.stack([q for s, (_, f) in zip(states, observations)
                            for q in (s.mean(), s.recent_mean(), f.embedding.astype(np.float64))]).astype(np.float32)
        found = self.gallery.search(queries, top_k=5)
        out: dict[int, Observation] = {}
        for i, ((track, face), state) in enumerate(zip(observations, states)):
            whole, recent, single = found[3 * i: 3 * i + 3]
            out[track.id] = self._decide(track, face, state, whole, recent, single, frame)
        return out

    def _decide(self, track: Track, face: EmbeddedFace, state: _State, whole: list[Candidate], recent: list[Candidate],
                single: list[Candidate], frame: int) -> Observation:
        known = state.known
        if known.identity is not None:
            sim = _similarity_to(whole, known.identity)
            state.known = TrackIdentity(known.identity, sim if sim is not None else known.similarity, known.named_at_frame,
                                        state.frames, known.rule)
            return Observation(state.known, must_split=self._contrary(state, recent))
        policy = self.policy
        # The instant rule: one good face far above the threshold.
        if (self.instant_threshold is not None and single and single[0].similarity >= self.instant_threshold
                and face_quality(face) >= policy.instant_min_quality and self._free(single[0].subject, track.id)):
            return self._name(track, state, single[0].subject, single[0].similarity, frame, "instant")
        best = whole[0] if whole else None
        if best is not None and state.frames >= policy.min_frames and best.similarity >= self.threshold:
            runner_up = whole[1].similarity if len(whole) > 1 else -1.0
            if best.similarity - runner_up >= policy.margin and self._free(best.subject, track.id):
                return self._name(track, state, best.subject, best.similarity, frame, "aggregate")
        state.known = TrackIdentity(None, None if best is None else best.similarity, None, state.frames, None)
        return Observation(state.known)

    def _free(self, name: str, track_id: int) -> bool:
        holder = self.holders.get(name)
        return holder is None or holder == track_id

    def _name(self, track: Track, state: _State, name: str, similarity: float, frame: int, rule: str) -> Observation:
        self.holders[name] = track.id
        state.known = TrackIdentity(name, similarity, frame, state.frames, rule)
        state.contrary = 0
        logger.debug("track %d named %s at frame %d (%s, %.4f)", track.id, name, frame, rule, similarity)
        return Observation(state.known, newly_named=True)

    def _contrary(self, state: _State, recent: list[Candidate]) -> bool:
        """Whether the track's recent faces have stopped being its name's long enough to split."""
        name = state.known.identity
        assert name is not None
        if float(np.dot(state.recent_mean(), state.mean())) < self.policy.split_cosine:
            return True
        if self.split_threshold is None:
            return False
        sim = _similarity_to(recent, name)
        if sim is None or sim < self.split_threshold:
            state.contrary += 1
        else:
            state.contrary = 0
        return state.contrary >= self.policy.split_after

    def forget(self, track_id: int) -> TrackIdentity:
        """The track ended: its last identity; its name is free again."""
        state = self.states.pop(track_id, None)
        if state is None:
            return TrackIdentity()
        name = state.known.identity
        if name is not None and self.holders.get(name) == track_id:
            del self.holders[name]
        return state.known


def _similarity_to(candidates: Sequence[Candidate], name: str) -> float | None:
    return next((c.similarity for c in candidates if c.subject == name), None)
