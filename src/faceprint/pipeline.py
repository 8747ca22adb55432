"""The Analyzer: decode -> detect -> landmarks -> pose -> align -> embed, batched.

One configured object per model combination. It is what the module-level functions, the
CLI and the service call; none of them hold face logic of their own.

Many images at once (:meth:`Analyzer.detect_many`, :meth:`Analyzer.embed_many`) run on a
:class:`ManyImagesEngine`. The worker-process engine lives in :mod:`faceprint.batch`, a layer
above this one (it builds Analyzers in its workers), so this module never imports it: the
engine is given to an Analyzer (``engine=``), or plugged in for all of them with
:func:`use_engine` -- which :mod:`faceprint.batch` does when it is imported, and
``import faceprint`` imports it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np

from faceprint import models
from faceprint.align import ChipSpec, extract_chip
from faceprint.errors import FaceIndexError, InvalidArgumentError, NoFaceError
from faceprint.imageio import DEFAULT_LIMITS, ImageLimits, ImageSource, describe_source, load_image
from faceprint.models import defaults as model_defaults
from faceprint.models.base import Detector, Embedder, LandmarkModel, Landmarks68Model, NormReportingEmbedder
from faceprint.models.card import Calibration
from faceprint.pose import estimate_pose
from faceprint.quality import assess as assess_quality
from faceprint.quality import measure as measure_quality
from faceprint.types import (
    Box,
    EmbeddedFace,
    Face,
    ImageAnalysis,
    Landmarks,
    SelectedFace,
    Verification,
)

logger = logging.getLogger(__name__)

DEFAULT_FAR = 1e-3


class ManyImagesEngine(Protocol):
    """Runs an Analyzer over many images: one :class:`ImageAnalysis` per input, in input order
    (see :func:`faceprint.batch.analyze_many`, the engine ``import faceprint`` plugs in)."""

    def __call__(self, analyzer: Analyzer, images: Iterable[ImageSource], *, embed: bool,
                 jobs: int | None = 1) -> Iterator[ImageAnalysis]: ...


_default_engine: ManyImagesEngine | None = None


def use_engine(engine: ManyImagesEngine) -> None:
    """Make ``engine`` the one every Analyzer without an ``engine=`` of its own uses for
    :meth:`Analyzer.detect_many` and :meth:`Analyzer.embed_many`."""
    global _default_engine
    _default_engine = engine


@dataclass(frozen=True, slots=True)
class DetectionPolicy:
    """How big an image the detector sees.

    Large photos are detected on a copy whose longer side is at most ``max_side`` (boxes are
    mapped back; landmarks and chips use the full-resolution image). Small images are
    upsampled once when their longer side (after that downscale) is at most
    ``upsample_below``, so that faces smaller than the detector's minimum (80 px for HOG) are
    still found -- without paying 4x on every large photo. ``upsample`` forces a fixed count
    instead (the CLI's ``--upsample N``).

    With the defaults a face is found in a large photo when its side is at least about
    ``80 * long_side / 1600`` px (200 px in a 4000 px photo), and in a small image (long side
    <= 1000) from about 40 px.

    Upsampling only small images keeps the recall of always upsampling at well under half
    its cost on photos; downscaling to 1600 px costs no recall against full resolution at half
    the cost, and a smaller ``max_side`` would raise the smallest face found in a large photo
    further than the measured sets test (measured with HOG: bench/README.md, section
    'Detection policy').
    """

    max_side: int = 1600
    upsample_below: int = 1000
    upsample: int | None = None
    #: Faces whose box side is below this many pixels (in the original image) are dropped.
    min_face_size: int = 0

    def plan(self, width: int, height: int) -> tuple[float, int]:
        """(scale to apply before detecting, upsample count) for an image of this size."""
        long_side = max(width, height)
        scale = min(1.0, self.max_side / long_side) if long_side > 0 else 1.0
        if self.upsample is not None:
            return scale, self.upsample
        return scale, 1 if long_side * scale <= self.upsample_below else 0


class Analyzer:
    """A configured face pipeline.

    >>> analyzer = Analyzer()                       # the best installed models
    >>> faces = analyzer.embed("photo.jpg")          # list[EmbeddedFace]
    >>> analyzer.verify("a.jpg", "b.jpg", far=1e-3)  # Verification

    Models not named are filled in by :func:`faceprint.models.defaults.resolve`: the default
    embedder (fr-feature with the Faceplugin pack installed, else dlib-resnet34), and the
    detector and landmarks its card was calibrated with (``Analyzer(embedder="dlib-resnet34")``
    is hog + dlib5 + dlib-resnet34 whatever is installed).
    """

    def __init__(
        self,
        detector: str | None = None,
        embedder: str | None = None,
        *,
        landmarks: str | None = None,
        landmarks68: bool = False,
        policy: DetectionPolicy | None = None,
        limits: ImageLimits = DEFAULT_LIMITS,
        batch_size: int = 32,
        engine: ManyImagesEngine | None = None,
        min_score: float | None = None,
    ) -> None:
        # Resolve names now so a typo fails here, not on the first image; load lazily.
        chosen = model_defaults.resolve(detector, landmarks, embedder)
        self.embedder_card = models.get_card(chosen.embedder, "embedder")
        self.detector_card = models.get_card(chosen.detector, "detector")
        self.landmarks_card = models.get_card(chosen.landmarks, "landmarks")
        self.want_68 = landmarks68
        self.policy = policy or DetectionPolicy()
        self.limits = limits
        if batch_size < 1:
            raise InvalidArgumentError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.engine = engine
        #: Faces the detector scores below this are dropped (None: none are). Default: the
        #: detector card's ``min_score``, measured to drop its false positives (bench/min_score.py).
        self.min_score = self.detector_card.min_score if min_score is None else check_min_score(min_score)

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this Analyzer (in a worker process); not the
        engine (a worker runs one image at a time)."""
        return {
            "detector": self.detector_card.name,
            "embedder": self.embedder_card.name,
            "landmarks": self.landmarks_card.name,
            "landmarks68": self.want_68,
            "policy": self.policy,
            "limits": self.limits,
            "batch_size": self.batch_size,
            "min_score": self.min_score,
        }

    # --- models (loaded on first use, shared per process) ---------------------------------
    @property
    def detector(self) -> Detector:
        return models.load(self.detector_card.name, "detector")

    @property
    def landmarker(self) -> LandmarkModel:
        return models.load(self.landmarks_card.name, "landmarks")

    @property
    def embedder(self) -> Embedder:
        return models.load(self.embedder_card.name, "embedder")

    @property
    def model_id(self) -> str:
        """The embedding model's ``name@version``, recorded with every embedding."""
        return self.embedder_card.id

    def use_calibration(self, calibration: Calibration) -> None:
        """Decide ``far=`` thresholds with ``calibration`` (a calibration card's, e.g. from
        :func:`faceprint.evaluation.calibrate.read_card`) instead of the embedder card's own;
        results name its ``origin`` in ``threshold_source``. :class:`ModelMismatchError` when it
        was measured with another model than this Analyzer's embedder."""
        self.embedder_card = self.embedder_card.with_calibration(calibration)
        logger.info("thresholds of %s from the calibration card %s (%s)", self.model_id, calibration.origin,
                    calibration.dataset)

    # --- single image ---------------------------------------------------------------------
    def load(self, image: ImageSource) -> np.ndarray:
        return load_image(image, self.limits)

    def detect(self, image: ImageSource, *, min_score: float | None = None) -> list[Face]:
        """Faces in ``image``, largest first. An image with no face gives ``[]``.
        ``min_score`` overrides the Analyzer's :attr:`min_score` for this call."""
        return self.detect_array(self.load(image), min_score=min_score)

    def detect_array(self, rgb: np.ndarray, *, min_score: float | None = None) -> list[Face]:
        """Faces in an already-decoded RGB image, largest first, scoring at least ``min_score``
        (default: the Analyzer's :attr:`min_score`)."""
        floor = self.min_score if min_score is None else check_min_score(min_score)
        h, w = rgb.shape[:2]
        scale, upsample = self.policy.plan(w, h)
        work = rgb if scale >= 1.0 else _resize(rgb, scale)
        raw = self.detector.detect(work, upsample)
        faces: list[Face] = []
        for det in raw:
            if floor is not None and det.score < floor:
                continue
            box = (det.box if scale >= 1.0 else det.box.scaled(1.0 / scale)).clipped(w, h)
            if box.width < 2 or box.height < 2:
                continue
            if min(box.width, box.height) < self.policy.min_face_size:
                continue
            if det.landmarks is not None:  # the detector's own 5 points (arcface5)
                pts = det.landmarks.points if scale >= 1.0 else det.landmarks.points / scale
                marks = Landmarks(pts, det.landmarks.scheme)
            else:
                marks = self.landmarker.predict(rgb, box)
            marks68 = self._landmarks68(rgb, box) if self.want_68 else None
            # Pose from the 5 points: dlib68 fits badly on boxes other than HOG's (e.g. mmod).
            pose = estimate_pose(marks)
            face = Face(box=box, score=det.score, landmarks=marks, pose=pose, landmarks68=marks68,
                        detector=self.detector_card.name)
            faces.append(replace(face, quality=measure_quality(rgb, face)))
        faces.sort(key=lambda f: f.box.area, reverse=True)
        return faces

    def embed(self, image: ImageSource) -> list[EmbeddedFace]:
        """Every face in ``image`` with its embedding, largest first."""
        rgb = self.load(image)
        return self.embed_faces(rgb, self.detect_array(rgb))

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[EmbeddedFace]:
        """Embeddings for given faces of an already-decoded image (batched)."""
        return self.embed_chips(faces, [self.aligned_chip(rgb, f) for f in faces])

    def embed_chips(self, faces: Sequence[Face], chips: Sequence[np.ndarray]) -> list[EmbeddedFace]:
        """``faces`` embedded from their aligned ``chips`` (:meth:`aligned_chip`), in batches of
        ``batch_size``; each with its raw embedding norm when the embedder reports one, and its
        quality (:func:`faceprint.quality.assess`: the face's, with the norm's factor where
        the model's norm is informative)."""
        if len(chips) != len(faces):
            raise InvalidArgumentError(f"{len(faces)} faces but {len(chips)} chips")
        embedder = self.embedder
        vectors: list[np.ndarray] = []
        norms: list[float | None] = []
        for start in range(0, len(chips), self.batch_size):
            group = list(chips[start : start + self.batch_size])
            if isinstance(embedder, NormReportingEmbedder):
                vecs, raw_norms = embedder.embed_chips_with_norms(group)
            else:
                vecs, raw_norms = embedder.embed_chips(group), None
            vectors.extend(vecs)
            norms.extend([float(n) for n in raw_norms] if raw_norms is not None else [None] * len(group))
        out = []
        for face, vector, norm in zip(faces, vectors, norms):
            embedded = EmbeddedFace(face=face, embedding=vector, model=self.model_id, embedding_norm=norm)
            out.append(replace(embedded, quality=assess_quality(embedded)))
        return out

    def _landmarks68(self, rgb: np.ndarray, box: Box) -> Landmarks:
        # The configured model's own 68 points when it computes them (fr-landmark), else dlib68
        # (whose training data forbids commercial use: README, Models and thresholds).
        if isinstance(self.landmarker, Landmarks68Model):
            return self.landmarker.predict68(rgb, box)
        landmarker: LandmarkModel = models.load("dlib68", "landmarks")
        return landmarker.predict(rgb, box)

    def aligned_chip(self, rgb: np.ndarray, face: Face, spec: ChipSpec | None = None) -> np.ndarray:
        """The aligned chip the embedder takes for ``face`` of ``rgb`` (or one cut to a
        ``spec`` given), adding the landmarks its alignment needs when ``face`` lacks them."""
        spec = spec or self.embedder.chip
        if spec.kind == "dlib" and face.landmarks.scheme not in {"dlib5", "ibug68"} and face.landmarks68 is None:
            # dlib's chips need dlib's points: the configured model's when it gives them, else dlib5.
            dlib_points = self.landmarker if self.landmarker.scheme in {"dlib5", "ibug68"} else models.load("dlib5", "landmarks")
            face = replace(face, landmarks=dlib_points.predict(rgb, face.box))
        elif spec.kind == "template" and face.landmarks.scheme != "arcface5" and face.landmarks68 is None:
            # dlib's 5 points have no mouth corners; the 68-point model supplies them.
            face = replace(face, landmarks68=self._landmarks68(rgb, face.box))
        return extract_chip(rgb, face, spec)

    # --- many images ----------------------------------------------------------------------
    def detect_many(self, images: Iterable[ImageSource], *, jobs: int | None = 1) -> Iterator[ImageAnalysis]:
        """One :class:`ImageAnalysis` per input, in input order, as they complete; a bad input
        gives an entry with ``error`` set and the rest go on.

        ``jobs`` worker processes decode and detect in parallel (``None``: one per CPU core;
        ``1``: in this process). With ``jobs > 1`` call this from under an
        ``if __name__ == "__main__":`` guard (workers are spawned). Memory stays bounded
        however many images there are; see :mod:`faceprint.batch`.
        """
        return self._many_images_engine()(self, images, embed=False, jobs=jobs)

    def embed_many(self, images: Iterable[ImageSource], *, jobs: int | None = 1) -> Iterator[ImageAnalysis]:
        """Like :meth:`detect_many` with embeddings; the chips of several images are embedded
        together in batches of ``batch_size`` (in this process, while workers detect)."""
        return self._many_images_engine()(self, images, embed=True, jobs=jobs)

    def _many_images_engine(self) -> ManyImagesEngine:
        engine = self.engine or _default_engine
        if engine is None:  # pragma: no cover - ``import faceprint`` plugs faceprint.batch in
            raise RuntimeError("no engine for many images: import faceprint.batch (import faceprint does)")
        return engine

    # --- verification ---------------------------------------------------------------------
    def verify(
        self,
        image_a: ImageSource,
        image_b: ImageSource,
        *,
        far: float | None = None,
        threshold: float | None = None,
        face_a: int | None = None,
        face_b: int | None = None,
        labels: tuple[str | None, str | None] = (None, None),
    ) -> Verification:
        """Are the faces in ``image_a`` and ``image_b`` the same person?

        Decided at the model's calibrated threshold for ``far`` (default 1e-3), or at an
        explicit ``threshold``. With several faces in an image the largest is used unless
        ``face_a``/``face_b`` picks one (index into the largest-first list).
        ``labels`` name the images in errors and in the result (default: their paths, or a
        description such as ``<array 480x640x3>``). Raises :class:`NoFaceError` when an image
        has no face.
        """
        limit, far_value, source = resolve_threshold(self.embedder_card, far=far, threshold=threshold)
        emb_a, sel_a = self.pick_face(image_a, face_a, labels[0])
        emb_b, sel_b = self.pick_face(image_b, face_b, labels[1])
        similarity = emb_a.similarity(emb_b)
        return Verification(
            similarity=similarity,
            threshold=limit,
            far=far_value,
            match=similarity >= limit,
            model=self.model_id,
            faces=(sel_a, sel_b),
            threshold_source=source,
        )

    def pick_face(self, image: ImageSource, index: int | None = None,
                  label: str | None = None) -> tuple[EmbeddedFace, SelectedFace]:
        """The chosen face of ``image`` (largest, or ``index``: see :func:`select_face`),
        embedded, and how it was chosen; ``label`` names the image in errors and in the result
        (default: its path, or a description). Raises :class:`NoFaceError` without a face."""
        label = label or describe_source(image)
        rgb = self.load(image)
        faces = self.detect_array(rgb)
        i, how = select_face(faces, index, label)
        (embedded,) = self.embed_faces(rgb, [faces[i]])
        chosen = SelectedFace(label, i, len(faces), how, faces[i].box, faces[i].score)
        return embedded, chosen


def select_face(faces: Sequence[Face], index: int | None,
                label: str = "image") -> tuple[int, Literal["only", "largest", "index"]]:
    """Which face of a largest-first list to use, and how it was chosen."""
    if not faces:
        raise NoFaceError(f"no face found in {label}", details={"path": label})
    if index is None:
        return 0, "only" if len(faces) == 1 else "largest"
    if not 0 <= index < len(faces):
        raise FaceIndexError(
            f"{label} has {len(faces)} face(s); face index {index} does not exist",
            details={"path": label, "faces_found": len(faces), "face_index": index},
        )
    return index, "index"


def check_min_score(value: float) -> float:
    """``value`` as a detection-score floor; :class:`InvalidArgumentError` when it is NaN."""
    if math.isnan(value):
        raise InvalidArgumentError("min_score must be a number", details={"min_score": value})
    return float(value)


def threshold_source(card: models.ModelCard) -> str:
    """What a ``far=`` decision's threshold came from: ``"calibrated"`` (the model card's own
    calibration) or ``"card:<file>"`` (a calibration card applied with
    :meth:`Analyzer.use_calibration`)."""
    origin = card.calibration.origin if card.calibration else ""
    return f"card:{origin}" if origin else "calibrated"


def resolve_threshold(
    card: models.ModelCard, *, far: float | None, threshold: float | None
) -> tuple[float, float | None, str]:
    """(threshold, the FAR it stands for, its source) from ``far=`` or ``threshold=``: the
    source is ``"user"`` for ``threshold=``, else :func:`threshold_source`."""
    if far is not None and threshold is not None:
        raise InvalidArgumentError("give far= or threshold=, not both")
    if threshold is not None:
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise InvalidArgumentError(
                f"threshold is a cosine similarity in [-1, 1]; got {threshold}", details={"threshold": threshold}
            )
        far_value = card.far_for(threshold) if card.calibration else None
        return float(threshold), far_value, "user"
    far = DEFAULT_FAR if far is None else far
    return card.threshold_for(far), far, threshold_source(card)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized: np.ndarray = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return resized
