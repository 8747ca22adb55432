"""The pipeline under test, run over benchmark images: :class:`PipelineSpec`, and
:func:`embed_images`, which every protocol uses.

How images become embeddings:

* Every distinct image is decoded and embedded **once**, by the pipeline's own engine
  (:func:`faceprint.batch.analyze_many`, as ``faceprint embed`` runs it): worker processes
  decode and detect with ``jobs > 1``, the chips are embedded here in batches. A
  perturbation is applied to each decoded image before detection, in the worker.
* With several faces in an image the one nearest the image centre is used (``select=
  "center"``, right for benchmark crops such as LFW whose subject is centred) or the largest
  (``select="largest"``).
* An image where no face is found is **not dropped**: a centre crop of the expected face size
  is embedded instead (the standard fallback), and the image is counted in ``failures``. The
  expected face size and position are the medians of the faces found in the same run
  (relative to the image), or a centred square of 0.45 x the shorter side when none was
  found. An unreadable image cannot be embedded at all: its pairs score -1 (the lowest
  cosine similarity, always rejected) and it is counted in ``failures`` too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from faceprint import models
from faceprint.align import ChipSpec
from faceprint.batch import analyze_many, can_spawn
from faceprint.errors import FaceprintError, InvalidArgumentError
from faceprint.evaluation.datasets import PairList, ProgressFactory, no_progress
from faceprint.evaluation.perturb import Perturbation, centre_box
from faceprint.models import defaults as model_defaults
from faceprint.models.card import ModelKind
from faceprint.pipeline import Analyzer, DetectionPolicy
from faceprint.settings import usable_cores
from faceprint.types import Box, EmbeddedFace, ImageAnalysis

__all__ = [
    "NO_DETECTOR",
    "UNREADABLE_SCORE",
    "EmbeddingRun",
    "Fallback",
    "ImageRecord",
    "PipelineSpec",
    "embed_images",
    "fallback_chip",
    "pair_scores",
]

NO_DETECTOR = "none"  # a pipeline configuration with no detector: every image is a centre crop
UNREADABLE_SCORE = -1.0

#: Worker processes take ~1 s to start and load models: one per this many images at most.
IMAGES_PER_WORKER = 256


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """A picklable description of the pipeline to evaluate (worker processes rebuild it)."""

    #: Model names; "" (the default) is filled in when the spec is made, as :class:`Analyzer`
    #: does (:func:`faceprint.models.defaults.resolve`).
    detector: str = ""
    model: str = ""
    policy: DetectionPolicy = DetectionPolicy()
    select: str = "center"
    batch_size: int = 32
    #: The landmark model run on the detector's boxes (unless the detector gives its own).
    landmarks: str = ""
    #: (path, kind, name) of user ONNX files to register in worker processes.
    file_models: tuple[tuple[str, ModelKind, str], ...] = ()

    def __post_init__(self) -> None:
        if self.select not in ("center", "largest"):
            raise InvalidArgumentError(f"select must be 'center' or 'largest', not {self.select!r}")
        # Concrete names from here on: worker processes must run the same models.
        given_detector = None if self.detector == NO_DETECTOR else self.detector or None
        chosen = model_defaults.resolve(given_detector, self.landmarks or None, self.model or None)
        object.__setattr__(self, "detector", self.detector if self.detector == NO_DETECTOR else chosen.detector)
        object.__setattr__(self, "model", chosen.embedder)
        object.__setattr__(self, "landmarks", chosen.landmarks)

    @classmethod
    def create(cls, detector: str = "", model: str = "", **kwargs: Any) -> PipelineSpec:
        """Check the names now and note any user ONNX files among them."""
        from faceprint.models.onnx import is_file_model

        spec = cls(detector=detector, model=model, **kwargs)
        files = []
        models.get_card(spec.landmarks, "landmarks")
        cards = [models.get_card(spec.model, "embedder")]
        if spec.detector != NO_DETECTOR:
            cards.append(models.get_card(spec.detector, "detector"))
        for card in cards:
            if is_file_model(card):
                files.append((str(card.extra["path"]), card.kind, card.name))
        return replace(spec, file_models=tuple(files)) if files else spec

    def analyzer(self) -> Analyzer:
        """The Analyzer this spec describes (registering its user ONNX files here first)."""
        from faceprint.models.onnx import register_onnx_model

        for path, kind, name in self.file_models:
            register_onnx_model(path, kind=kind, name=name)  # the same card again is a no-op
        detector = None if self.detector == NO_DETECTOR else self.detector
        return Analyzer(detector=detector, embedder=self.model, landmarks=self.landmarks, policy=self.policy,
                        batch_size=self.batch_size)

    @property
    def label(self) -> str:
        """A short description for tables and reports."""
        if self.detector == NO_DETECTOR:
            return "no detector (centre crop)"
        p = self.policy
        up = "auto" if p.upsample is None else str(p.upsample)
        return f"{self.detector} upsample={up} max_side={p.max_side}"

    def to_dict(self) -> dict[str, Any]:
        p = self.policy
        return {
            "detector": self.detector,
            "model": self.model,
            "landmarks": self.landmarks,
            "select": self.select,
            "upsample": "auto" if p.upsample is None else p.upsample,
            "upsample_below": p.upsample_below,
            "max_side": p.max_side,
            "label": self.label,
        }


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a face is expected when none is found: a square of ``fraction`` x the shorter
    side, centred at the image centre shifted by ``offset`` (fractions of width, height)."""

    fraction: float = 0.45
    offset: tuple[float, float] = (0.0, 0.0)
    source: str = "default: 0.45 x the shorter side, centred"

    def box(self, width: int, height: int) -> Box:
        """The expected face box in an image of this size."""
        return centre_box(width, height, self.fraction, self.offset)

    def to_dict(self) -> dict[str, Any]:
        return {"face_fraction": round(self.fraction, 4), "offset": [round(v, 4) for v in self.offset],
                "source": self.source}

    @classmethod
    def estimate(cls, records: Iterable[ImageRecord]) -> Fallback:
        """The medians of the faces found in ``records`` (the default when none was found)."""
        found = [(r.box, r.size) for r in records if r.status == "ok" and r.box is not None and r.size]
        if not found:
            return cls()
        side = np.array([math.sqrt(max(box.area, 0.0)) / min(size) for box, size in found])
        dx = np.array([(box.center[0] - size[0] / 2) / size[0] for box, size in found])
        dy = np.array([(box.center[1] - size[1] / 2) / size[1] for box, size in found])
        return cls(float(np.median(side)), (float(np.median(dx)), float(np.median(dy))),
                   f"median of the {len(found)} faces found in this run")


@dataclass(slots=True)
class ImageRecord:
    """What the pipeline made of one listed image."""

    path: str
    status: str  # "ok" | "no_face" (embedded by the centre fallback) | "unreadable"
    embedding: np.ndarray | None = None
    n_faces: int = 0
    box: Box | None = None  # the face used: detected, or the fallback's expected box
    size: tuple[int, int] | None = None  # (width, height)
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "faces_found": self.n_faces,
                "box": self.box.to_list() if self.box else None, "error": self.error}


def fallback_chip(rgb: np.ndarray, box: Box, spec_chip: ChipSpec) -> np.ndarray:
    """The embedder's chip cut from an expected-face box without landmarks: the box, widened
    by the chip's padding, scaled to the chip size (outside the image: black)."""
    import cv2

    pad = spec_chip.padding if spec_chip.kind == "dlib" else 0.1
    side = max(box.width, box.height) * (1.0 + 2.0 * pad)
    cx, cy = box.center
    s = spec_chip.size / side
    matrix = np.array([[s, 0.0, spec_chip.size / 2 - s * cx], [0.0, s, spec_chip.size / 2 - s * cy]])
    chip: np.ndarray = cv2.warpAffine(rgb, matrix, (spec_chip.size, spec_chip.size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(chip)


@dataclass
class EmbeddingRun:
    """Embeddings of a set of images under one pipeline (and perturbation)."""

    spec: PipelineSpec
    records: dict[str, ImageRecord]
    fallback: Fallback
    seconds: float
    jobs: int
    perturbation: Perturbation | None = None

    @property
    def n_images(self) -> int:
        return len(self.records)

    def count(self, status: str) -> int:
        """How many images have this status."""
        return sum(1 for r in self.records.values() if r.status == status)

    @property
    def failures(self) -> int:
        return self.n_images - self.count("ok")

    @property
    def images_per_s(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else math.nan

    def failure_dict(self, limit: int = 50) -> dict[str, Any]:
        """The images without a detected face, for JSON (the first ``limit`` listed)."""
        bad = [r for r in self.records.values() if r.status != "ok"]
        return {
            "no_face": self.count("no_face"),
            "unreadable": self.count("unreadable"),
            "images": [{"path": r.path, "reason": r.status, **({"error": r.error} if r.error else {})} for r in bad[:limit]],
            "images_left_out": max(0, len(bad) - limit),
        }

    def matrix(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, present)``: a row per path (zeros where the image was unreadable)."""
        dim = next((r.embedding.shape[0] for r in self.records.values() if r.embedding is not None), 1)
        out = np.zeros((len(paths), dim), dtype=np.float32)
        present = np.zeros(len(paths), dtype=bool)
        for i, p in enumerate(paths):
            emb: np.ndarray | None = self.records[p].embedding
            if emb is not None:
                out[i] = emb
                present[i] = True
        return out, present


def embed_images(
    paths: Sequence[str],
    resolve: Callable[[str], str],
    spec: PipelineSpec,
    *,
    jobs: int = 1,
    perturbation: Perturbation | None = None,
    face_boxes: dict[str, Box] | None = None,
    fallback: Fallback | None = None,
    use_fallback: bool = True,
    progress: ProgressFactory | None = None,
    label: str = "embedding",
) -> EmbeddingRun:
    """Run the pipeline once on every distinct path (see the module notes).

    ``fallback``: the expected face box for images without a detected face; by default
    estimated from the faces found in this run. ``use_fallback=False`` leaves such images
    without an embedding (status ``no_face``), as calibration wants. ``face_boxes`` gives,
    per path, the face box an occlusion perturbation covers.
    """
    paths = list(dict.fromkeys(paths))
    face_boxes = face_boxes or {}
    advance = (progress or no_progress)(label, len(paths))
    if spec.detector == NO_DETECTOR and fallback is None:
        fallback = Fallback()  # nothing is detected, so nothing to estimate the face size from
    jobs = max(1, min(jobs, usable_cores(), math.ceil(len(paths) / IMAGES_PER_WORKER)))
    if jobs > 1 and not can_spawn():
        jobs = 1
    analyzer = spec.analyzer()
    images = _Images(analyzer, resolve, perturbation, face_boxes)
    t0 = time.perf_counter()
    records: dict[str, ImageRecord] = {}
    if spec.detector == NO_DETECTOR:  # decoded once here, the crop embedded at once
        for start in range(0, len(paths), spec.batch_size):
            part = paths[start : start + spec.batch_size]
            records.update(images.without_detection(part, fallback if use_fallback else None))
            advance(len(part))
    else:
        files = [resolve(p) for p in paths]
        transform = images.transform(dict(zip(files, paths)))
        for key, analysis in zip(paths, analyze_many(analyzer, files, embed=True, jobs=jobs, transform=transform)):
            records[key] = _record(key, analysis, spec.select)
            advance(1)
    used = fallback or Fallback.estimate(records.values())
    pending = [r for r in records.values() if r.status == "no_face" and r.embedding is None]
    if use_fallback and pending:
        images.embed_fallbacks(pending, used, spec.batch_size)
    seconds = time.perf_counter() - t0
    return EmbeddingRun(spec, records, used, seconds, jobs, perturbation)


@dataclass(frozen=True)
class _Perturbed:
    """The transform :func:`faceprint.batch.analyze_many` applies to each decoded image (in the
    worker): the perturbation, seeded by the image's listed path, over its known face box."""

    perturbation: Perturbation
    keys: dict[str, str]  # file -> listed path
    face_boxes: dict[str, Box]  # listed path -> face box

    def __call__(self, file: str, rgb: np.ndarray) -> np.ndarray:
        key = self.keys.get(file, file)
        return self.perturbation.apply(rgb, face_box=self.face_boxes.get(key), seed_text=key)


class _Images:
    """Reading listed images in this process: for the fallback crops, and for the
    configuration without a detector."""

    def __init__(self, analyzer: Analyzer, resolve: Callable[[str], str], perturbation: Perturbation | None,
                 face_boxes: dict[str, Box]) -> None:
        self.analyzer = analyzer
        self.resolve = resolve
        self.perturbation = perturbation
        self.face_boxes = face_boxes

    def transform(self, keys: dict[str, str]) -> _Perturbed | None:
        if self.perturbation is None:
            return None
        return _Perturbed(self.perturbation, keys, self.face_boxes)

    def load(self, key: str) -> np.ndarray:
        """The listed image, decoded and (with a perturbation) degraded as the run saw it."""
        rgb = self.analyzer.load(self.resolve(key))
        if self.perturbation is not None:
            rgb = self.analyzer.load(self.perturbation.apply(rgb, face_box=self.face_boxes.get(key), seed_text=key))
        return rgb

    def without_detection(self, keys: Sequence[str], fallback: Fallback | None) -> dict[str, ImageRecord]:
        """Records of ``keys`` with no detector run: ``no_face``, with (given a ``fallback``)
        the centre crop embedded."""
        records: dict[str, ImageRecord] = {}
        crops: list[tuple[ImageRecord, np.ndarray]] = []
        for key in keys:
            try:
                rgb = self.load(key)
            except FaceprintError as exc:
                records[key] = ImageRecord(key, "unreadable", error=exc.to_dict())
                continue
            records[key] = ImageRecord(key, "no_face", size=(rgb.shape[1], rgb.shape[0]))
            crops.append((records[key], rgb))
        if fallback is not None:
            self._embed_crops(crops, fallback)
        return records

    def embed_fallbacks(self, records: list[ImageRecord], fallback: Fallback, batch_size: int) -> None:
        """Embed the centre crop of the expected face box of each record's image (read again:
        the engine keeps no decoded image), ``batch_size`` images at a time."""
        for start in range(0, len(records), batch_size):
            part = records[start : start + batch_size]
            self._embed_crops([(rec, self.load(rec.path)) for rec in part], fallback)

    def _embed_crops(self, crops: list[tuple[ImageRecord, np.ndarray]], fallback: Fallback) -> None:
        if not crops:
            return
        embedder = self.analyzer.embedder
        chips = []
        for rec, rgb in crops:
            rec.box = fallback.box(rgb.shape[1], rgb.shape[0])
            chips.append(fallback_chip(rgb, rec.box, embedder.chip))
        for (rec, _), vec in zip(crops, embedder.embed_chips(chips)):
            rec.embedding = np.asarray(vec, dtype=np.float32)


def _record(key: str, analysis: ImageAnalysis, select: str) -> ImageRecord:
    """What the pipeline made of one listed image (no fallback yet)."""
    if analysis.error is not None:
        return ImageRecord(key, "unreadable", size=analysis.image_size, error=analysis.error.to_dict())
    if not analysis.faces:
        return ImageRecord(key, "no_face", size=analysis.image_size)
    faces = [f for f in analysis.faces if isinstance(f, EmbeddedFace)]
    chosen = _select(faces, analysis.image_size or (0, 0), select)
    return ImageRecord(key, "ok", chosen.embedding.astype(np.float32), len(faces), chosen.face.box,
                       analysis.image_size)


def _select(faces: Sequence[EmbeddedFace], size: tuple[int, int], how: str) -> EmbeddedFace:
    if how == "largest" or len(faces) == 1:
        return faces[0]  # the pipeline lists faces largest first
    cx, cy = size[0] / 2.0, size[1] / 2.0
    return min(faces, key=lambda f: (f.face.box.center[0] - cx) ** 2 + (f.face.box.center[1] - cy) ** 2)


def pair_scores(run_a: EmbeddingRun, run_b: EmbeddingRun, pairs: PairList) -> np.ndarray:
    """The cosine similarity of each pair (``path_a`` from ``run_a``, ``path_b`` from ``run_b``);
    :data:`UNREADABLE_SCORE` where either image has no embedding."""
    a, ok_a = run_a.matrix(pairs.path_a)
    b, ok_b = run_b.matrix(pairs.path_b)
    scores = np.clip(np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64)), -1.0, 1.0)
    scores[~(ok_a & ok_b)] = UNREADABLE_SCORE
    return scores
