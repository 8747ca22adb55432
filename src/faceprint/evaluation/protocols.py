"""Benchmark protocols: verification on labelled pairs, 1:N identification, robustness and
time-budget sweeps.

The protocols are library code: the ``faceprint eval`` commands only parse, call these and
format. Each returns a result object with ``to_dict()`` (JSON-ready; ``nan`` becomes
``null``) that also keeps the arrays the HTML report plots.

How images become embeddings (the same for every protocol, :func:`embed_images`):

* Every distinct image is decoded and embedded **once**, in batches (several processes with
  ``jobs > 1``; dlib's detectors use one core each).
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

import csv
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import models
from faceprint.batch import default_jobs
from faceprint.errors import FaceprintError, InvalidArgumentError
from faceprint.evaluation import metrics as M
from faceprint.evaluation.perturb import Perturbation, centre_box
from faceprint.pipeline import Analyzer, DetectionPolicy
from faceprint.types import Box

__all__ = [
    "DEFAULT_FARS",
    "DEFAULT_FPIRS",
    "EmbeddingRun",
    "Fallback",
    "IdentificationResult",
    "IdentityList",
    "ImageRecord",
    "PairList",
    "PipelineSpec",
    "ProgressFactory",
    "VerificationResult",
    "embed_images",
    "evaluate_identification",
    "evaluate_pairs",
    "read_identities",
    "read_pairs",
    "measure_configurations",
]

DEFAULT_FARS = (1e-1, 1e-2, 1e-3)
DEFAULT_FPIRS = (1e-1, 1e-2)
NO_DETECTOR = "none"  # a pipeline configuration with no detector: every image is a centre crop
UNREADABLE_SCORE = -1.0

#: ``progress(label, total)`` starts a task and returns ``advance(n)``.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(label: str, total: int) -> Callable[[int], None]:
    return lambda n: None


# --- reading benchmark files ----------------------------------------------------------------------
_TRUE = {"1", "true", "yes", "y", "same", "t"}
_FALSE = {"0", "false", "no", "n", "different", "diff", "f"}


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"{path} does not exist or is not a file", details={"path": str(path)})
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader if any((v or "").strip() for v in r.values())]
            columns = [c.strip() for c in (reader.fieldnames or [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidArgumentError(f"{path} is not a readable CSV file: {exc}", details={"path": str(path)}) from None
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]
    return columns, rows


def _need(columns: list[str], wanted: Sequence[str], path: Path, what: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidArgumentError(
            f"{path} is not a {what} file: column(s) {', '.join(missing)} missing (it has: {', '.join(columns) or 'none'})",
            details={"path": str(path), "missing": missing, "columns": columns},
        )


def csv_kind(path: Path) -> str:
    """``"pairs"`` (path_a, path_b, same) or ``"identities"`` (path, identity)."""
    columns, _ = _read_csv(path)
    if {"path_a", "path_b", "same"} <= set(columns):
        return "pairs"
    if {"path", "identity"} <= set(columns):
        return "identities"
    raise InvalidArgumentError(
        f"{path}: expected columns path_a,path_b,same (pairs) or path,identity (identities); it has: {', '.join(columns)}",
        details={"path": str(path), "columns": columns},
    )


@dataclass(frozen=True)
class PairList:
    """Labelled pairs: paths as listed (relative to ``root`` unless absolute)."""

    path_a: tuple[str, ...]
    path_b: tuple[str, ...]
    same: np.ndarray  # bool
    root: Path
    source: str
    folds: np.ndarray | None = None
    groups: tuple[str, ...] | None = None
    group_by: str | None = None
    n_listed: int = 0  # pairs in the file (before any subsampling)

    def __len__(self) -> int:
        return len(self.path_a)

    def resolve(self, path: str) -> str:
        return str(self.root / path)

    def images(self) -> list[str]:
        """Every distinct image, in first-seen order."""
        return list(dict.fromkeys([*self.path_a, *self.path_b]))

    def subsample(self, max_pairs: int | None) -> PairList:
        """An evenly spaced subset of ``max_pairs`` pairs (keeps the folds' and labels' mix
        when the file lists them in blocks, as LFW does)."""
        if not max_pairs or max_pairs >= len(self):
            return self
        idx = np.unique(np.linspace(0, len(self) - 1, max_pairs).round().astype(int))
        pick = lambda seq: tuple(seq[i] for i in idx)  # noqa: E731
        return replace(
            self, path_a=pick(self.path_a), path_b=pick(self.path_b), same=self.same[idx],
            folds=None if self.folds is None else self.folds[idx],
            groups=None if self.groups is None else pick(self.groups),
        )


def read_pairs(path: str | os.PathLike, root: str | os.PathLike | None = None, group_by: str | None = None) -> PairList:
    """Read ``path_a,path_b,same[,fold][,GROUP...]``. ``root`` defaults to the CSV's folder."""
    path = Path(path)
    columns, rows = _read_csv(path)
    _need(columns, ("path_a", "path_b", "same"), path, "pairs (path_a,path_b,same)")
    if group_by is not None and group_by not in columns:
        raise InvalidArgumentError(
            f"--group-by {group_by!r}: {path} has no such column (it has: {', '.join(columns)})",
            details={"group_by": group_by, "columns": columns},
        )
    if not rows:
        raise InvalidArgumentError(f"{path} lists no pairs", details={"path": str(path)})
    same = []
    for i, r in enumerate(rows, start=2):
        v = r["same"].lower()
        if v in _TRUE:
            same.append(True)
        elif v in _FALSE:
            same.append(False)
        else:
            raise InvalidArgumentError(f"{path} line {i}: same={r['same']!r} is not 1/0 (or true/false)")
        if not r["path_a"] or not r["path_b"]:
            raise InvalidArgumentError(f"{path} line {i}: empty path")
    folds = None
    if "fold" in columns and any(r["fold"] for r in rows):
        raw = [r["fold"] for r in rows]
        if not all(raw):
            raise InvalidArgumentError(f"{path}: some pairs have a fold and some do not")
        folds = np.array([int(v) for v in raw]) if all(v.lstrip("-").isdigit() for v in raw) else np.array(raw)
    groups = tuple(r[group_by] or "(blank)" for r in rows) if group_by else None
    return PairList(
        path_a=tuple(r["path_a"] for r in rows), path_b=tuple(r["path_b"] for r in rows),
        same=np.array(same, dtype=bool), root=Path(root) if root is not None else path.parent,
        source=str(path), folds=folds, groups=groups, group_by=group_by, n_listed=len(rows),
    )


@dataclass(frozen=True)
class IdentityList:
    paths: tuple[str, ...]
    identities: tuple[str, ...]
    root: Path
    source: str
    n_listed: int = 0

    def resolve(self, path: str) -> str:
        return str(self.root / path)

    def by_identity(self) -> dict[str, list[str]]:
        """identity -> its images in file order (identities in first-seen order)."""
        out: dict[str, list[str]] = {}
        for p, i in zip(self.paths, self.identities):
            out.setdefault(i, []).append(p)
        return out

    def subsample(self, max_identities: int | None) -> IdentityList:
        """Every k-th identity (sorted by name), ``max_identities`` of them."""
        groups = self.by_identity()
        if not max_identities or max_identities >= len(groups):
            return self
        names = sorted(groups)
        keep = {names[i] for i in np.unique(np.linspace(0, len(names) - 1, max_identities).round().astype(int))}
        pairs = [(p, i) for p, i in zip(self.paths, self.identities) if i in keep]
        return replace(self, paths=tuple(p for p, _ in pairs), identities=tuple(i for _, i in pairs))


def read_identities(path: str | os.PathLike, root: str | os.PathLike | None = None) -> IdentityList:
    """Read ``path,identity[,...]``. ``root`` defaults to the CSV's folder. Repeated paths
    are read once (the first identity given wins; a conflicting one is an error)."""
    path = Path(path)
    columns, rows = _read_csv(path)
    _need(columns, ("path", "identity"), path, "identities (path,identity)")
    seen: dict[str, str] = {}
    for i, r in enumerate(rows, start=2):
        if not r["path"] or not r["identity"]:
            raise InvalidArgumentError(f"{path} line {i}: empty path or identity")
        prior = seen.setdefault(r["path"], r["identity"])
        if prior != r["identity"]:
            raise InvalidArgumentError(f"{path}: {r['path']} is listed as both {prior!r} and {r['identity']!r}")
    if not seen:
        raise InvalidArgumentError(f"{path} lists no images", details={"path": str(path)})
    return IdentityList(tuple(seen), tuple(seen.values()), Path(root) if root is not None else path.parent,
                        str(path), len(rows))


# --- the pipeline under test -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """A picklable description of the pipeline to evaluate (worker processes rebuild it)."""

    detector: str = models.DEFAULT_DETECTOR
    model: str = models.DEFAULT_EMBEDDER
    policy: DetectionPolicy = DetectionPolicy()
    select: str = "center"
    batch_size: int = 32
    #: (path, kind, name) of user ONNX files to register in worker processes.
    file_models: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.select not in ("center", "largest"):
            raise InvalidArgumentError(f"select must be 'center' or 'largest', not {self.select!r}")

    @classmethod
    def create(cls, detector: str = models.DEFAULT_DETECTOR, model: str = models.DEFAULT_EMBEDDER, **kwargs: Any) -> PipelineSpec:
        """Check the names now and note any user ONNX files among them."""
        from faceprint.models.onnx_models import is_file_model

        files = []
        cards = [models.get_card(model, "embedder")]
        if detector != NO_DETECTOR:
            cards.append(models.get_card(detector, "detector"))
        for card in cards:
            if is_file_model(card):
                files.append((str(card.extra["path"]), card.kind, card.name))
        return cls(detector=detector, model=model, file_models=tuple(files), **kwargs)

    def analyzer(self) -> Analyzer:
        from faceprint.models.onnx_models import register_onnx_model

        for path, kind, name in self.file_models:
            register_onnx_model(path, kind=kind, name=name)  # the same card again is a no-op
        detector = models.DEFAULT_DETECTOR if self.detector == NO_DETECTOR else self.detector
        return Analyzer(detector=detector, embedder=self.model, policy=self.policy, batch_size=self.batch_size)

    @property
    def label(self) -> str:
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
        return centre_box(width, height, self.fraction, self.offset)

    def to_dict(self) -> dict[str, Any]:
        return {"face_fraction": round(self.fraction, 4), "offset": [round(v, 4) for v in self.offset],
                "source": self.source}

    @classmethod
    def estimate(cls, records: Sequence[ImageRecord]) -> Fallback:
        found = [r for r in records if r.status == "ok" and r.box is not None and r.size]
        if not found:
            return cls()
        side = np.array([math.sqrt(max(r.box.area, 0.0)) / min(r.size) for r in found])
        dx = np.array([(r.box.center[0] - r.size[0] / 2) / r.size[0] for r in found])
        dy = np.array([(r.box.center[1] - r.size[1] / 2) / r.size[1] for r in found])
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


def fallback_chip(rgb: np.ndarray, box: Box, spec_chip) -> np.ndarray:
    """The embedder's chip cut from an expected-face box without landmarks: the box, widened
    by the chip's padding, scaled to the chip size (outside the image: black)."""
    import cv2

    pad = spec_chip.padding if spec_chip.kind == "dlib" else 0.1
    side = max(box.width, box.height) * (1.0 + 2.0 * pad)
    cx, cy = box.center
    s = spec_chip.size / side
    matrix = np.array([[s, 0.0, spec_chip.size / 2 - s * cx], [0.0, s, spec_chip.size / 2 - s * cy]])
    chip = cv2.warpAffine(rgb, matrix, (spec_chip.size, spec_chip.size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(chip)


class _Runner:
    """Runs the pipeline on lists of images in one process."""

    def __init__(self, spec: PipelineSpec, fallback: Fallback | None) -> None:
        self.spec = spec
        self.fallback = fallback
        self.analyzer = spec.analyzer()

    def run(self, items: Sequence[tuple[str, str, Perturbation | None, Box | None]]) -> list[ImageRecord]:
        """``items``: (listed path, file path, perturbation, face box for occlusion)."""
        analyzer = self.analyzer
        records: list[ImageRecord | None] = [None] * len(items)
        arrays: dict[int, np.ndarray] = {}
        for i, (key, file, pert, hint) in enumerate(items):
            try:
                rgb = analyzer.load(file)
            except FaceprintError as exc:
                records[i] = ImageRecord(key, "unreadable", error=exc.to_dict())
                continue
            if pert is not None:
                rgb = pert.apply(rgb, face_box=hint, seed_text=key)
            arrays[i] = rgb
        order = list(arrays)
        if self.spec.detector != NO_DETECTOR and order:
            for i, analysis in zip(order, analyzer.embed_many(arrays[i] for i in order)):
                rgb = arrays[i]
                size = (rgb.shape[1], rgb.shape[0])
                if analysis.error is not None:
                    records[i] = ImageRecord(items[i][0], "unreadable", size=size, error=analysis.error.to_dict())
                elif not analysis.faces:
                    records[i] = ImageRecord(items[i][0], "no_face", size=size)
                else:
                    chosen = _select(analysis.faces, size, self.spec.select)
                    records[i] = ImageRecord(items[i][0], "ok", chosen.embedding.astype(np.float32), len(analysis.faces),
                                             chosen.face.box, size)
        else:
            for i in order:
                rgb = arrays[i]
                records[i] = ImageRecord(items[i][0], "no_face", size=(rgb.shape[1], rgb.shape[0]))
        if self.fallback is not None:
            self.embed_fallbacks([(records[i], arrays[i]) for i in order if records[i].status == "no_face"])
        return [r for r in records if r is not None]

    def embed_fallbacks(self, pending: list[tuple[ImageRecord, np.ndarray]]) -> None:
        """Embed the centre crop of the expected face box of each (record, image)."""
        assert self.fallback is not None
        embedder = self.analyzer.embedder
        for start in range(0, len(pending), self.spec.batch_size):
            part = pending[start : start + self.spec.batch_size]
            chips = []
            for rec, rgb in part:
                rec.box = self.fallback.box(rgb.shape[1], rgb.shape[0])
                chips.append(fallback_chip(rgb, rec.box, embedder.chip))
            for (rec, _), vec in zip(part, embedder.embed_chips(chips)):
                rec.embedding = np.asarray(vec, dtype=np.float32)


def _select(faces, size: tuple[int, int], how: str):
    if how == "largest" or len(faces) == 1:
        return faces[0]  # the pipeline lists faces largest first
    cx, cy = size[0] / 2.0, size[1] / 2.0
    return min(faces, key=lambda f: (f.face.box.center[0] - cx) ** 2 + (f.face.box.center[1] - cy) ** 2)


_worker: _Runner | None = None


def _can_spawn() -> bool:
    """Worker processes re-import ``__main__``; a program read from stdin cannot be."""
    import sys

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def _worker_init(spec: PipelineSpec, fallback: Fallback | None) -> None:
    global _worker
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker = _Runner(spec, fallback)


def _worker_run(items: list) -> list[ImageRecord]:
    assert _worker is not None
    return _worker.run(items)


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
        return sum(1 for r in self.records.values() if r.status == status)

    @property
    def failures(self) -> int:
        return self.n_images - self.count("ok")

    @property
    def images_per_s(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else math.nan

    def failure_dict(self, limit: int = 50) -> dict[str, Any]:
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
            emb = self.records[p].embedding
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
    items = [(p, resolve(p), perturbation, face_boxes.get(p)) for p in paths]
    advance = (progress or _no_progress)(label, len(items))
    if spec.detector == NO_DETECTOR and fallback is None:
        fallback = Fallback()  # nothing is detected, so nothing to estimate the face size from
    inline = fallback if use_fallback else None  # known up front: workers embed the crops
    # Worker processes take ~1 s to start and load models: worth it from a few hundred images.
    jobs = max(1, min(jobs, default_jobs(), math.ceil(len(items) / 256)))
    if jobs > 1 and not _can_spawn():
        jobs = 1
    t0 = time.perf_counter()
    records: list[ImageRecord] = []
    chunks = [items[i : i + 16] for i in range(0, len(items), 16)]
    if jobs == 1:
        runner = _Runner(spec, inline)
        for part in chunks:
            records += runner.run(part)
            advance(len(part))
    else:
        runner = None
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(spec, inline)) as pool:
            for part, done in zip(chunks, pool.map(_worker_run, chunks)):
                records += done
                advance(len(part))
    used = fallback or Fallback.estimate(records)
    pending = [r for r in records if r.status == "no_face" and r.embedding is None]
    if use_fallback and pending:
        # The expected face size comes from this run's faces: embed the crops now.
        runner = runner or _Runner(spec, used)
        runner.fallback = used
        work = []
        for rec in pending:
            rgb = runner.analyzer.load(resolve(rec.path))
            if perturbation is not None:
                rgb = perturbation.apply(rgb, face_box=face_boxes.get(rec.path), seed_text=rec.path)
            work.append((rec, rgb))
        runner.embed_fallbacks(work)
    seconds = time.perf_counter() - t0
    return EmbeddingRun(spec, {r.path: r for r in records}, used, seconds, jobs, perturbation)


def _pair_scores(run_a: EmbeddingRun, run_b: EmbeddingRun, pairs: PairList) -> np.ndarray:
    a, ok_a = run_a.matrix(pairs.path_a)
    b, ok_b = run_b.matrix(pairs.path_b)
    scores = np.clip(np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64)), -1.0, 1.0)
    scores[~(ok_a & ok_b)] = UNREADABLE_SCORE
    return scores


# --- verification -----------------------------------------------------------------------------------
def _summary(scores: np.ndarray, same: np.ndarray, folds: np.ndarray | None, fars: Sequence[float]) -> dict[str, Any]:
    """Accuracy (k-fold or optimistic), AUC, EER and TAR@FAR of one set of pair scores."""
    out: dict[str, Any] = {}
    if folds is not None and len(set(folds.tolist())) >= 2:
        kf = M.kfold_accuracy(scores, same, folds)
        out.update(accuracy=kf.mean, accuracy_std=kf.std, accuracy_stderr=kf.stderr,
                   accuracy_protocol=f"{len(kf.folds)}-fold: threshold chosen on the other folds",
                   optimistic=False, folds=[f.to_dict() for f in kf.folds], _kfold=kf)
    else:
        acc, t = M.best_threshold_accuracy(scores, same)
        out.update(accuracy=acc, accuracy_std=math.nan, accuracy_stderr=math.nan,
                   accuracy_protocol="best threshold on these same pairs (no folds): optimistic",
                   optimistic=True, best_threshold=t, folds=[])
    out["auc"] = M.auc(scores, same)
    out["eer"], out["eer_threshold"] = M.eer(scores, same)
    points = [M.tar_at_far(scores, same, f) for f in fars]
    out["tar_at_far"] = {M.far_key(p.far_target): p.tar for p in points}
    out["tar_at_far_detail"] = points
    return out


@dataclass
class PerturbationResult:
    perturbation: Perturbation
    summary: dict[str, Any]
    scores: np.ndarray
    failures: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.perturbation.to_dict(), **_public(self.summary), "failures": self.failures}


@dataclass
class TimeBudgetResult:
    budget_ms: float
    candidates: list[dict[str, Any]]
    chosen: PipelineSpec
    fits: bool
    summary: dict[str, Any] | None = None
    failures: int = 0
    scores: np.ndarray | None = None
    images_per_s: float = math.nan
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        chosen_ms = next((c["ms_per_image"] for c in self.candidates if c["label"] == self.chosen.label), None)
        return {
            "budget_ms": self.budget_ms,
            "fits": self.fits,
            "chosen": self.chosen.to_dict(),
            "ms_per_image": chosen_ms,
            "candidates": self.candidates,
            **(_public(self.summary) if self.summary else {}),
            "failures": self.failures,
            "images_per_s": M._num(self.images_per_s),
            "note": self.note,
            "machine": _machine(),
        }


def _machine() -> dict[str, Any]:
    """Where the timings were measured."""
    import platform

    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(), "cores_available": default_jobs(),
            "python": platform.python_version()}


@dataclass
class VerificationResult:
    pairs: PairList
    spec: PipelineSpec
    model_id: str
    run: EmbeddingRun
    scores: np.ndarray
    summary: dict[str, Any]
    calibration: list[dict[str, Any]]
    calibration_source: str | None
    fars: tuple[float, ...]
    groups: dict[str, Any] | None = None
    perturbations: list[PerturbationResult] = field(default_factory=list)
    time_budget: TimeBudgetResult | None = None
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        return self.run.failures

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        ok = {p: r.status for p, r in self.run.records.items()}
        pairs_hit = sum(1 for a, b in zip(self.pairs.path_a, self.pairs.path_b) if ok[a] != "ok" or ok[b] != "ok")
        doc: dict[str, Any] = {
            "model": self.model_id,
            "n_pairs": len(self.pairs),
            "n_images": self.run.n_images,
            "failures": self.failures,
            "accuracy": M._num(s["accuracy"]),
            "accuracy_std": M._num(s["accuracy_std"]),
            "auc": M._num(s["auc"]),
            "eer": M._num(s["eer"]),
            "tar_at_far": {k: M._num(v) for k, v in s["tar_at_far"].items()},
            "calibration": self.calibration,
            "images_per_s": M._num(self.run.images_per_s),
            # --- extra fields ---
            "pairs_file": self.pairs.source,
            "n_pairs_listed": self.pairs.n_listed,
            "n_genuine": int(self.pairs.same.sum()),
            "n_impostor": int((~self.pairs.same).sum()),
            "pipeline": self.spec.to_dict(),
            "accuracy_stderr": M._num(s["accuracy_stderr"]),
            "accuracy_protocol": s["accuracy_protocol"],
            "optimistic": s["optimistic"],
            "folds": s["folds"],
            "eer_threshold": M._num(s["eer_threshold"]),
            "tar_at_far_detail": [p.to_dict() for p in s["tar_at_far_detail"]],
            "calibration_source": self.calibration_source,
            "failures_detail": {**self.run.failure_dict(), "pairs_affected": pairs_hit},
            "fallback": self.run.fallback.to_dict(),
            "jobs": self.run.jobs,
            "seconds": round(self.seconds, 2),
        }
        if "best_threshold" in s:
            doc["best_threshold"] = M._num(s["best_threshold"])
        if self.groups is not None:
            g = self.groups
            doc["groups"] = {
                "column": self.pairs.group_by,
                "threshold": M._num(g["threshold"]),
                "threshold_source": g["threshold_source"],
                "far": g["far"],
                "per_group": [r.to_dict() for r in g["groups"]],
                "fmr_max_min_ratio": M._num(g["fmr_max_min_ratio"]),
                "fnmr_max_min_ratio": M._num(g["fnmr_max_min_ratio"]),
                "fmr_ratio_unbounded": g["fmr_max_min_ratio"] == math.inf,
                "fnmr_ratio_unbounded": g["fnmr_max_min_ratio"] == math.inf,
                "note": g["note"],
            }
        if self.perturbations:
            doc["perturbations"] = [p.to_dict() for p in self.perturbations]
        if self.time_budget is not None:
            doc["time_budget"] = self.time_budget.to_dict()
        return doc


def _public(summary: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in summary.items():
        if k.startswith("_"):
            continue
        if k == "tar_at_far_detail":
            out[k] = [p.to_dict() for p in v]
        elif k == "tar_at_far":
            out[k] = {kk: M._num(vv) for kk, vv in v.items()}
        elif isinstance(v, float):
            out[k] = M._num(v)
        else:
            out[k] = v
    return out


def calibration_check(card: models.ModelCard, scores: np.ndarray, same: np.ndarray) -> list[dict[str, Any]]:
    """For each FAR the model card names: its threshold, and the FAR and FRR measured here."""
    if card.calibration is None:
        return []
    n_imp, n_gen = int((~same).sum()), int(same.sum())
    rows = []
    for far, t in sorted(card.calibration.thresholds.items(), reverse=True):
        far_m, frr_m = M.far_frr_at(scores, same, t)
        rows.append({
            "far_nominal": far, "threshold": t, "far_measured": M._num(far_m), "frr_measured": M._num(frr_m),
            "n_false_accepts": int(((scores >= t) & ~same).sum()), "n_impostor": n_imp, "n_genuine": n_gen,
            "resolvable": n_imp > 0 and far * n_imp >= 1 - 1e-9,
        })
    return rows


def evaluate_pairs(
    pairs: PairList,
    spec: PipelineSpec,
    *,
    jobs: int = 1,
    fars: Sequence[float] = DEFAULT_FARS,
    perturbations: Sequence[Perturbation] = (),
    time_budget_ms: float | None = None,
    group_far: float = 1e-3,
    progress: ProgressFactory | None = None,
) -> VerificationResult:
    """The verification protocol on labelled pairs (see the module notes and ``faceprint eval
    pairs --help``)."""
    t0 = time.perf_counter()
    card = models.get_card(spec.model, "embedder")
    run = embed_images(pairs.images(), pairs.resolve, spec, jobs=jobs, progress=progress)
    scores = _pair_scores(run, run, pairs)
    summary = _summary(scores, pairs.same, pairs.folds, fars)
    result = VerificationResult(
        pairs=pairs, spec=spec, model_id=card.id, run=run, scores=scores, summary=summary,
        calibration=calibration_check(card, scores, pairs.same),
        calibration_source=card.calibration.dataset if card.calibration else None, fars=tuple(fars),
    )
    if pairs.groups is not None:
        if card.calibration is not None:
            threshold, source = card.threshold_for(group_far), f"model card, FAR {group_far:g} on {card.calibration.dataset}"
        else:
            threshold, _ = M.threshold_at_far(scores[~pairs.same], group_far)
            source = f"FAR {group_far:g} measured on all pairs of this file (the model has no calibration)"
        g = M.group_error_rates(scores, pairs.same, pairs.groups, threshold)
        g.update(threshold_source=source, far=group_far, note=(
            "FMR/FNMR per group at one global threshold. A ratio is null when a group has no "
            "errors (the data cannot bound it) or fewer than two groups have such pairs."))
        result.groups = g
    # Robustness: the probe side (path_b) degraded, the reference side (path_a) clean.
    probes = list(dict.fromkeys(pairs.path_b))
    boxes = {p: run.records[p].box for p in probes if run.records[p].box is not None}
    for pert in perturbations:
        prun = embed_images(probes, pairs.resolve, spec, jobs=jobs, perturbation=pert, face_boxes=boxes,
                            fallback=run.fallback, progress=progress, label=f"probes {pert.label}")
        pscores = _pair_scores(run, prun, pairs)
        result.perturbations.append(
            PerturbationResult(pert, _summary(pscores, pairs.same, pairs.folds, fars), pscores, prun.failures))
    if time_budget_ms is not None:
        result.time_budget = _time_budget(pairs, spec, run, summary, scores, time_budget_ms, fars, jobs, progress)
    result.seconds = time.perf_counter() - t0
    return result


# --- time budget ------------------------------------------------------------------------------------
def candidate_configurations(spec: PipelineSpec) -> list[PipelineSpec]:
    """The configurations a time budget chooses from, in a fixed order of expected accuracy
    (the first that fits wins): the given one; the same detector on a smaller detection
    image (max side 800), without upsampling small images, and both (max side 800 and 480);
    the same steps with the Haar detector; finally no detector at all (the centre crop)."""
    base = spec.policy
    steps = [(base.upsample, base.max_side), (base.upsample, 800), (0, base.max_side), (0, 800), (0, 480)]
    dets = [spec.detector] + (["haar"] if spec.detector not in ("haar", NO_DETECTOR) else [])
    out = []
    for det in dets:
        for upsample, max_side in steps:
            if det == NO_DETECTOR:
                break
            policy = replace(base, upsample=upsample, max_side=min(max_side, base.max_side))
            out.append(replace(spec, detector=det, policy=policy))
    out.append(replace(spec, detector=NO_DETECTOR))
    seen, unique = set(), []
    for c in out:
        if c.label not in seen:
            seen.add(c.label)
            unique.append(c)
    return unique


def measure_configurations(
    candidates: Sequence[PipelineSpec],
    files: Sequence[tuple[str, str]],
    fallback: Fallback,
    sizes: Sequence[tuple[int, int]] = (),
    advance: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Mean wall-clock ms per image (decode, detect, landmarks, align, embed) of each
    configuration, measured here on ``files`` (listed path, file) one image at a time, in
    this process, after one untimed warm-up image.

    A configuration that would treat every image of ``sizes`` exactly like an earlier one
    (same detector, same detection scale and upsampling) is not measured again: it gets
    that one's timing and ``same_as`` its label.
    """
    rows: list[dict[str, Any]] = []
    plans: dict[tuple, dict[str, Any]] = {}
    for cand in candidates:
        plan = (cand.detector, tuple(cand.policy.plan(w, h) for w, h in sizes)) if sizes else None
        if cand.detector != NO_DETECTOR and plan in plans:
            src = plans[plan]
            rows.append({**src, "label": cand.label, "config": cand.to_dict(), "same_as": src["label"]})
        else:
            runner = _Runner(cand, fallback)
            runner.run([(files[0][0], files[0][1], None, None)])  # warm-up: models load here
            times = []
            for key, file in files:
                t = time.perf_counter()
                runner.run([(key, file, None, None)])
                times.append(time.perf_counter() - t)
            row = {"label": cand.label, "config": cand.to_dict(), "ms_per_image": 1000.0 * float(np.mean(times)),
                   "ms_p90": 1000.0 * float(np.percentile(times, 90)), "n_measured": len(times), "same_as": None}
            rows.append(row)
            if plan is not None and cand.detector != NO_DETECTOR:
                plans[plan] = row
        if advance:
            advance(1)
    return rows


def _time_budget(pairs, spec, run, summary, scores, budget_ms, fars, jobs, progress) -> TimeBudgetResult:
    if not budget_ms > 0:
        raise InvalidArgumentError(f"the time budget must be positive; got {budget_ms}")
    images = [p for p in pairs.images() if run.records[p].status != "unreadable"] or pairs.images()
    n_sample = min(20, len(images))
    sample = [images[int(i)] for i in np.linspace(0, len(images) - 1, n_sample).round()]
    files = [(p, pairs.resolve(p)) for p in sample]
    sizes = [run.records[p].size for p in sample if run.records[p].size]
    candidates = candidate_configurations(spec)
    advance = (progress or _no_progress)("timing configurations", len(candidates))
    rows = measure_configurations(candidates, files, run.fallback, sizes, advance)
    for r in rows:
        r["fits"] = r["ms_per_image"] <= budget_ms
    chosen_row = next((r for r in rows if r["fits"]), None)
    fits = chosen_row is not None
    if chosen_row is None:
        chosen_row = min(rows, key=lambda r: r["ms_per_image"])
    chosen = next(c for c in candidates if c.label == chosen_row["label"])
    note = "" if fits else f"no configuration fits {budget_ms:g} ms/image on this machine; the fastest is reported"
    if chosen.label == spec.label or chosen_row.get("same_as") == spec.label:
        return TimeBudgetResult(budget_ms, rows, chosen, fits, summary, run.failures, scores, run.images_per_s,
                                note or "the unconstrained configuration fits the budget")
    crun = embed_images(pairs.images(), pairs.resolve, chosen, jobs=jobs, fallback=run.fallback, progress=progress,
                        label=f"embedding ({chosen.label})")
    cscores = _pair_scores(crun, crun, pairs)
    return TimeBudgetResult(budget_ms, rows, chosen, fits, _summary(cscores, pairs.same, pairs.folds, fars),
                            crun.failures, cscores, crun.images_per_s, note)


# --- identification ----------------------------------------------------------------------------------
@dataclass
class IdentificationResult:
    ids: IdentityList
    spec: PipelineSpec
    model_id: str
    enrol_per_subject: int
    n_subjects_enrolled: int
    n_templates: int
    rejections: list[dict[str, Any]]
    fte_subjects: list[str]
    stranger_sources: dict[str, int]
    mated_ranks: np.ndarray
    mated_scores: np.ndarray
    nonmated_scores: np.ndarray
    cmc: np.ndarray
    open_set: list[M.IdentificationPoint]
    at_card: dict[str, Any] | None
    run: EmbeddingRun
    mated_paths: list[str]
    nonmated_paths: list[str]
    worst: dict[str, list[dict[str, Any]]]
    seconds: float = 0.0
    enrol_seconds: float = 0.0

    def rank(self, k: int) -> float:
        return float(self.cmc[k - 1]) if len(self.cmc) >= k else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "identities_file": self.ids.source,
            "n_images": len(self.ids.paths),
            "n_identities": len(set(self.ids.identities)),
            "enrol_per_subject": self.enrol_per_subject,
            "n_subjects_enrolled": self.n_subjects_enrolled,
            "n_templates": self.n_templates,
            "enrolment_rejected": len(self.rejections),
            "enrolment_rejections": self.rejections[:50],
            "failed_to_enrol_subjects": len(self.fte_subjects),
            "n_mated_probes": int(self.mated_ranks.size),
            "n_nonmated_probes": int(self.nonmated_scores.size),
            "nonmated_probe_sources": self.stranger_sources,
            "failures": self.run.failures,
            "failures_detail": self.run.failure_dict(),
            "rank1": M._num(self.rank(1)),
            "rank5": M._num(self.rank(5)),
            "cmc": [M._num(v) for v in self.cmc],
            "fnir_at_fpir": {M.far_key(p.fpir_target): M._num(p.fnir) for p in self.open_set},
            "dir_at_fpir": {M.far_key(p.fpir_target): M._num(p.dir) for p in self.open_set},
            "open_set": [p.to_dict() for p in self.open_set],
            "at_calibrated_threshold": self.at_card,
            "pipeline": self.spec.to_dict(),
            "fallback": self.run.fallback.to_dict(),
            "images_per_s": M._num(self.run.images_per_s),
            "enrol_seconds": round(self.enrol_seconds, 2),
            "seconds": round(self.seconds, 2),
            "notes": (
                "Closed-set rank-k over mated probes (subject enrolled); ties count against the "
                "probe. Open set: the threshold gives the FPIR on non-mated probes (subjects not "
                "enrolled: too few images, held out, or failed to enrol); FNIR = share of mated "
                "probes whose subject is not at rank 1 with a score at or above it; DIR = 1 - FNIR."
            ),
        }


def _holdout(names: list[str], fraction: float) -> set[str]:
    names = sorted(names)
    if fraction <= 0 or not names:
        return set()
    return {n for i, n in enumerate(names) if math.floor((i + 1) * fraction) > math.floor(i * fraction)}


def evaluate_identification(
    ids: IdentityList,
    spec: PipelineSpec,
    *,
    enrol_per_subject: int = 1,
    holdout: float | None = None,
    max_rank: int = 20,
    fpirs: Sequence[float] = DEFAULT_FPIRS,
    card_far: float = 1e-3,
    jobs: int = 1,
    progress: ProgressFactory | None = None,
    n_worst: int = 8,
) -> IdentificationResult:
    """Closed- and open-set 1:N identification through a temporary :class:`Gallery`.

    The first ``enrol_per_subject`` images (file order) of every identity with more images
    than that are enrolled by the gallery's own rules (one face, quality); when one is
    rejected the identity's next image is tried instead, as long as one image is left to
    probe with. Rejected images are reported and used no further; the images after the
    enrolled ones are mated probes. Identities with too few images are non-mated probes
    (strangers). When there are none, ``holdout`` (default 0.2 then, else 0) of the other
    identities, evenly spread in name order, are held out as strangers. A subject none of
    whose enrolment images is accepted has failed to enrol: its other images become
    non-mated probes, and it is counted.
    """
    from faceprint.gallery import Gallery

    if enrol_per_subject < 1:
        raise InvalidArgumentError("enrol_per_subject must be at least 1")
    t0 = time.perf_counter()
    card = models.get_card(spec.model, "embedder")
    groups = ids.by_identity()
    enough = [n for n, ps in groups.items() if len(ps) > enrol_per_subject]
    too_few = [n for n, ps in groups.items() if len(ps) <= enrol_per_subject]
    if holdout is None:
        holdout = 0.2 if not too_few else 0.0
    held = _holdout(enough, holdout)
    enrol_names = [n for n in enough if n not in held]
    if not enrol_names:
        raise InvalidArgumentError(
            f"no identity in {ids.source} has more than {enrol_per_subject} image(s) to enrol and probe with",
            details={"enrol_per_subject": enrol_per_subject},
        )
    analyzer = spec.analyzer()
    rejections: list[dict[str, Any]] = []
    fte: list[str] = []
    thumbs: dict[int, bytes | None] = {}
    with tempfile.TemporaryDirectory(prefix="faceprint-eval-") as tmp:
        with Gallery.open(Path(tmp) / "eval.db", analyzer=analyzer) as gallery:
            t_enrol = time.perf_counter()
            advance = (progress or _no_progress)("enrolling", len(enrol_names))
            enrolled_names = []
            n_templates = 0
            tried: dict[str, int] = {}
            for name in enrol_names:
                files = groups[name]
                accepted = n = 0
                # The next image is tried when one is rejected, as long as one is left to probe with.
                while accepted < enrol_per_subject and n < len(files) - 1:
                    report = gallery.enroll(name, [ids.resolve(files[n])])
                    for r in report.rejected:
                        rejections.append({"path": files[n], "identity": name, "code": r.code, "message": r.message})
                    accepted += len(report.enrolled)
                    n += 1
                tried[name] = n
                if accepted:
                    enrolled_names.append(name)
                    n_templates += accepted
                else:
                    fte.append(name)
                advance(1)
            enrol_seconds = time.perf_counter() - t_enrol
            enrolled = set(enrolled_names)
            mated_paths = [p for n in enrolled_names for p in groups[n][tried[n]:]]
            nonmated_paths = ([p for n in too_few for p in groups[n]] + [p for n in sorted(held) for p in groups[n]]
                              + [p for n in fte for p in groups[n][tried[n]:]])
            probe_identity = {p: n for n, ps in groups.items() for p in ps}
            run = embed_images(mated_paths + nonmated_paths, ids.resolve, spec, jobs=jobs, progress=progress,
                               label="embedding probes")
            top_k = max(1, min(max_rank, len(enrolled)))
            cands_m = _search(gallery, run, mated_paths, top_k)
            cands_n = _search(gallery, run, nonmated_paths, top_k)
            mated_ranks = np.full(len(mated_paths), np.inf)
            mated_scores = np.full(len(mated_paths), -np.inf)
            for i, (p, cands) in enumerate(zip(mated_paths, cands_m)):
                for r, c in enumerate(cands, start=1):
                    if c.subject == probe_identity[p]:
                        mated_ranks[i], mated_scores[i] = r, c.similarity
                        break
            nonmated_scores = np.array([c[0].similarity if c else -np.inf for c in cands_n], dtype=np.float64)
            worst = _worst_identification(mated_paths, cands_m, mated_ranks, nonmated_paths, cands_n, nonmated_scores,
                                          probe_identity, n_worst)
            for item in worst["nonmated"] + worst["mated_misses"]:
                fid = item.get("candidate_face_id")
                if fid is not None and fid not in thumbs:
                    try:
                        thumbs[fid] = gallery.thumbnail(fid)
                    except FaceprintError:
                        thumbs[fid] = None
                item["candidate_thumbnail"] = thumbs.get(fid)
    curve = M.cmc(mated_ranks, max(1, min(max_rank, len(enrolled))))
    open_set = [M.fnir_at_fpir(mated_scores, mated_ranks, nonmated_scores, f) for f in fpirs]
    at_card = None
    if card.calibration is not None:
        t = card.threshold_for(card_far)
        hits = (mated_ranks <= 1) & (mated_scores >= t)
        at_card = {
            "far": card_far, "threshold": t,
            "fpir": M._num(float((nonmated_scores >= t).mean())) if nonmated_scores.size else None,
            "fnir": M._num(1.0 - float(hits.mean())) if hits.size else None,
            "note": "the 1:1 threshold of the model card used for 1:N: FPIR grows with the gallery size",
        }
    sources = {
        "too_few_images": sum(len(groups[n]) for n in too_few),
        "held_out": sum(len(groups[n]) for n in held),
        "failed_to_enrol": sum(len(groups[n][tried[n]:]) for n in fte),
        "subjects_too_few_images": len(too_few),
        "subjects_held_out": len(held),
    }
    result = IdentificationResult(
        ids=ids, spec=spec, model_id=card.id, enrol_per_subject=enrol_per_subject,
        n_subjects_enrolled=len(enrolled), n_templates=n_templates, rejections=rejections, fte_subjects=fte,
        stranger_sources=sources, mated_ranks=mated_ranks, mated_scores=mated_scores,
        nonmated_scores=nonmated_scores, cmc=curve, open_set=open_set, at_card=at_card, run=run,
        mated_paths=mated_paths, nonmated_paths=nonmated_paths, worst=worst, enrol_seconds=enrol_seconds,
    )
    result.seconds = time.perf_counter() - t0
    return result


def _search(gallery, run: EmbeddingRun, paths: list[str], top_k: int) -> list[list]:
    if not paths:
        return []
    vectors, present = run.matrix(paths)
    out: list[list] = [[] for _ in paths]
    rows = np.flatnonzero(present)
    for start in range(0, rows.size, 256):
        part = rows[start : start + 256]
        for i, cands in zip(part, gallery.search(vectors[part], top_k=top_k)):
            out[int(i)] = list(cands)
    return out


def _worst_identification(mated_paths, cands_m, mated_ranks, nonmated_paths, cands_n, nonmated_scores,
                          identity, n) -> dict[str, list[dict[str, Any]]]:
    nonmated = []
    for i in np.argsort(-nonmated_scores, kind="stable")[:n]:
        cands = cands_n[i]
        if not cands:
            continue
        c = cands[0]
        nonmated.append({"probe": nonmated_paths[i], "probe_identity": identity[nonmated_paths[i]],
                         "candidate": c.subject, "score": c.similarity, "candidate_face_id": c.face_id})
    misses = []
    miss_idx = [i for i in range(len(mated_paths)) if mated_ranks[i] != 1 and cands_m[i]]
    miss_idx.sort(key=lambda i: -cands_m[i][0].similarity)
    for i in miss_idx[:n]:
        c = cands_m[i][0]
        misses.append({"probe": mated_paths[i], "probe_identity": identity[mated_paths[i]], "candidate": c.subject,
                       "score": c.similarity, "mated_rank": M._num(mated_ranks[i]), "candidate_face_id": c.face_id})
    return {"nonmated": nonmated, "mated_misses": misses}
