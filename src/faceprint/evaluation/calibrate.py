"""Calibrate an embedder's thresholds at named false-accept rates on labelled data.

The threshold for FAR ``f`` is the similarity that at most a fraction ``f`` of the impostor
pairs (different people) reach or exceed (:func:`faceprint.evaluation.metrics.threshold_at_far`).
To make small FARs resolvable, *every* impostor pair the labels allow is formed, not only
the pairs a file lists:

* from an identities file (``path,identity``): every pair of images of different
  identities, and every pair of images of one identity as genuine pairs;
* from a pairs file (``path_a,path_b,same``): images joined by ``same`` pairs are one person
  (transitively); two such groups are different people only where the file has a
  ``same=0`` pair between them, and then every image of one against every image of the
  other is an impostor pair. Groups never compared are not assumed different.

Images where no face is detected are left out and counted (the deployed pipeline refuses
them, so they have no place in its thresholds). FARs with fewer than one impostor pair
(``far * n_impostor < 1``) cannot be measured and are left out of the card, with a note.
Impostor pairs share images, so they are not independent: the counts are what they are, not
a confidence interval.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import models
from faceprint.errors import InvalidArgumentError
from faceprint.evaluation import metrics as M
from faceprint.evaluation.datasets import ProgressFactory, csv_kind, read_identities, read_pairs
from faceprint.evaluation.embedding import PipelineSpec, embed_images
from faceprint.models.card import Calibration
from faceprint.models.onnx import calibration_from_dict

__all__ = [
    "CARD_FARS",
    "CalibrationResult",
    "ScoreCalibration",
    "calibrate_csv",
    "calibrate_embeddings",
    "python_literal",
    "read_card",
    "write_card",
]

CARD_FARS = (1e-2, 1e-3, 1e-4)
_BLOCK = 2048


@dataclass
class ScoreCalibration:
    """Thresholds from all genuine and impostor pairs of a set of embeddings."""

    fars: tuple[float, ...]
    thresholds: dict[float, float]
    frr: dict[float, float]
    far_measured: dict[float, float]
    false_accepts: dict[float, int]
    n_genuine: int
    n_impostor: int
    genuine_mean: float
    impostor_mean: float
    genuine_scores: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def resolvable(self, far: float) -> bool:
        return self.n_impostor > 0 and far * self.n_impostor >= 1 - 1e-9


def _as_labels(labels: Sequence[Any] | np.ndarray) -> np.ndarray:
    _, ids = np.unique(np.asarray([str(v) for v in labels], dtype=object), return_inverse=True)
    return ids.astype(np.int64)


def calibrate_embeddings(
    embeddings: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    fars: Sequence[float] = CARD_FARS,
    *,
    different: set[tuple[int, int]] | None = None,
) -> ScoreCalibration:
    """Thresholds at ``fars`` from every pair of rows of ``embeddings`` (L2-normalised).

    ``labels``: the person of each row (integers ``0..k-1``, or any values, which are then
    numbered in sorted order). ``different``: when given, only rows of two labels ``(a, b)``
    with ``a < b`` in this set form impostor pairs (labels must then be integers); by default
    every pair of rows with different labels does.

    Memory stays bounded: rows are scored in blocks and only the highest
    ``floor(max(fars) * n_impostor) + 1`` impostor scores are kept, which is all the
    thresholds need.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    lab = np.asarray(labels, dtype=np.int64) if np.asarray(labels).dtype.kind in "iu" else _as_labels(labels)
    n = emb.shape[0]
    if n != lab.size:
        raise ValueError("embeddings and labels differ in length")
    fars = tuple(sorted({float(f) for f in fars}, reverse=True))
    counts = np.bincount(lab) if n else np.zeros(0, np.int64)
    n_genuine = int((counts * (counts - 1) // 2).sum())
    if different is None:
        n_impostor = n * (n - 1) // 2 - n_genuine
    else:
        n_impostor = int(sum(counts[a] * counts[b] for a, b in different))
    keep = min(n_impostor, int(math.floor(max(fars) * n_impostor + 1e-9)) + 1) if fars else 0
    genuine: list[np.ndarray] = []
    top = np.zeros(0, dtype=np.float64)
    imp_sum = 0.0
    buffer: list[np.ndarray] = []
    buffered = 0
    allowed = None
    if different is not None:
        k = int(lab.max()) + 1 if n else 0
        allowed = np.zeros((k, k), dtype=bool)
        for a, b in different:
            allowed[a, b] = allowed[b, a] = True
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        sims = np.clip(emb[start:stop].astype(np.float64) @ emb[start:].T.astype(np.float64), -1.0, 1.0)
        rows = np.arange(start, stop)[:, None]
        cols = np.arange(start, n)[None, :]
        upper = cols > rows
        same = lab[start:stop][:, None] == lab[start:][None, :]
        genuine.append(sims[upper & same])
        imp_mask = upper & ~same
        if allowed is not None:
            imp_mask &= allowed[lab[start:stop][:, None], lab[start:][None, :]]
        imp = sims[imp_mask]
        imp_sum += float(imp.sum())
        if keep:
            buffer.append(imp)
            buffered += imp.size
            if buffered > 4 * keep + 1_000_000:
                top = _top(np.concatenate([top, *buffer]), keep)
                buffer, buffered = [], 0
    if keep:
        top = _top(np.concatenate([top, *buffer]), keep)
    gen = np.concatenate(genuine) if genuine else np.zeros(0)
    thresholds, frr, far_measured, false_accepts = {}, {}, {}, {}
    for far in fars:
        if n_impostor == 0:
            continue
        k = int(math.floor(far * n_impostor + 1e-9))
        if k >= n_impostor:
            t = float(top.min())
        else:
            # A cosine similarity cannot exceed 1: when the impostor to reject scores 1 (the same
            # picture under two names), no threshold can; the FAR measured then says so.
            t = min(M.just_above(float(np.sort(top)[::-1][k])), 1.0)
        accepted = int((top >= t).sum())
        thresholds[far] = t
        frr[far] = float((gen < t).mean()) if gen.size else math.nan
        far_measured[far] = accepted / n_impostor
        false_accepts[far] = accepted
    return ScoreCalibration(
        fars=fars, thresholds=thresholds, frr=frr, far_measured=far_measured, false_accepts=false_accepts,
        n_genuine=int(gen.size), n_impostor=n_impostor,
        genuine_mean=float(gen.mean()) if gen.size else math.nan,
        impostor_mean=imp_sum / n_impostor if n_impostor else math.nan, genuine_scores=gen,
    )


def _top(values: np.ndarray, keep: int) -> np.ndarray:
    if values.size <= keep:
        return values
    return np.partition(values, values.size - keep)[values.size - keep :]


@dataclass
class CalibrationResult:
    """A calibration run on a benchmark file, ready to become a model card's calibration."""

    model_id: str
    spec: PipelineSpec
    dataset: str
    source_kind: str  # "identities" | "pairs"
    n_images: int
    n_embedded: int
    n_identities: int
    no_face: list[str]
    unreadable: list[str]
    scores: ScoreCalibration
    images_per_s: float
    seconds: float
    n_listed_impostor_pairs: int | None = None

    @property
    def card_fars(self) -> list[float]:
        """The FARs the data can resolve (the ones written to a card)."""
        s = self.scores
        return [f for f in s.fars if s.resolvable(f) and f in s.thresholds and s.far_measured[f] <= f * (1 + 1e-9)]

    @property
    def notes(self) -> str:
        s = self.scores
        skipped = [f for f in s.fars if f not in self.card_fars]
        parts = [
            f"faceprint calibrate, {self.spec.label}, {self.spec.select} face; "
            f"{len(self.no_face)} of {self.n_images} images had no detected face"
            + (f" and {len(self.unreadable)} could not be read" if self.unreadable else "")
            + " and were left out.",
            ("Impostor pairs: every pair of different identities."
             if self.source_kind == "identities" else
             "Impostor pairs: every image pair between two same-person groups that the file lists as different "
             f"({self.n_listed_impostor_pairs} different pairs listed)."),
            "Impostor pairs share images, so they are not independent.",
        ]
        if s.fars and s.n_impostor:
            low = min(self.card_fars) if self.card_fars else None
            if low is not None:
                parts.append(f"At FAR {low:g} about {int(low * s.n_impostor)} impostor pairs decide the threshold.")
        if skipped:
            parts.append("Not calibrated (fewer than one impostor pair at that FAR, or impostor pairs scoring 1): "
                         + ", ".join(f"{f:g}" for f in skipped) + ".")
        return " ".join(parts)

    def to_calibration(self) -> Calibration:
        s = self.scores
        return Calibration(
            dataset=self.dataset,
            n_images=self.n_embedded,
            n_identities=self.n_identities,
            n_genuine_pairs=s.n_genuine,
            n_impostor_pairs=s.n_impostor,
            thresholds={f: s.thresholds[f] for f in self.card_fars},
            frr={f: round(s.frr[f], 6) for f in self.card_fars if not math.isnan(s.frr[f])},
            notes=self.notes,
            model=self.model_id,  # a card applies to this model only (read_card, --calibration)
        )

    def sidecar_calibration(self) -> dict[str, Any]:
        """The ``calibration`` object of an ONNX model's sidecar JSON (see
        :mod:`faceprint.models.onnx`); also what :meth:`Calibration.to_dict` gives."""
        if not self.card_fars:
            raise InvalidArgumentError(
                f"no FAR of {', '.join(f'{f:g}' for f in self.scores.fars)} can be resolved with "
                f"{self.scores.n_impostor} impostor pairs; use more images or larger FARs",
                details={"n_impostor_pairs": self.scores.n_impostor},
            )
        return self.to_calibration().to_dict()

    def to_dict(self) -> dict[str, Any]:
        s = self.scores
        rows = []
        for far in s.fars:
            rows.append({
                "far": far,
                "threshold": M.json_number(s.thresholds.get(far, math.nan)),
                "far_measured": M.json_number(s.far_measured.get(far, math.nan)),
                "frr": M.json_number(s.frr.get(far, math.nan)),
                "n_false_accepts": s.false_accepts.get(far),
                "resolvable": s.resolvable(far),
                "in_card": far in self.card_fars,
            })
        return {
            "model": self.model_id,
            "pipeline": self.spec.to_dict(),
            "dataset": self.dataset,
            "source_kind": self.source_kind,
            "n_images": self.n_images,
            "n_embedded": self.n_embedded,
            "n_identities": self.n_identities,
            "no_face": self.no_face,
            "unreadable": self.unreadable,
            "n_genuine_pairs": s.n_genuine,
            "n_impostor_pairs": s.n_impostor,
            "n_listed_impostor_pairs": self.n_listed_impostor_pairs,
            "thresholds": {M.far_key(f): M.json_number(s.thresholds[f]) for f in s.fars if f in s.thresholds},
            "rows": rows,
            "genuine_mean": M.json_number(s.genuine_mean),
            "impostor_mean": M.json_number(s.impostor_mean),
            "notes": self.notes,
            "images_per_s": M.json_number(self.images_per_s),
            "seconds": round(self.seconds, 2),
        }


class _Groups:
    """Union-find over image indices."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def calibrate_csv(
    path: str | os.PathLike,
    spec: PipelineSpec,
    *,
    root: str | os.PathLike | None = None,
    fars: Sequence[float] = CARD_FARS,
    jobs: int = 1,
    dataset: str | None = None,
    progress: ProgressFactory | None = None,
) -> CalibrationResult:
    """Embed every image of a pairs or identities file once and calibrate on all the pairs
    its labels allow (see the module notes)."""
    import time

    t0 = time.perf_counter()
    path = Path(path)
    kind = csv_kind(path)
    card = models.get_card(spec.model, "embedder")
    if kind == "identities":
        ids = read_identities(path, root)
        images, resolve = list(ids.paths), ids.resolve
        ident = dict(zip(ids.paths, ids.identities))
    else:
        pairs = read_pairs(path, root)
        images, resolve = pairs.images(), pairs.resolve
    run = embed_images(images, resolve, spec, jobs=jobs, use_fallback=False, progress=progress)
    ok = [p for p in images if run.records[p].status == "ok"]
    emb, _ = run.matrix(ok)
    n_listed = None
    if kind == "identities":
        labels = _as_labels([ident[p] for p in ok])
        different = None
    else:
        index = {p: i for i, p in enumerate(images)}
        uf = _Groups(len(images))
        for a, b, same in zip(pairs.path_a, pairs.path_b, pairs.same):
            if same:
                uf.union(index[a], index[b])
        group = [uf.find(index[p]) for p in ok]
        labels = _as_labels(group)
        label_of = {g: int(lab) for g, lab in zip(group, labels)}
        different_groups: set[tuple[int, int]] = set()
        n_listed = int((~pairs.same).sum())
        for a, b, same in zip(pairs.path_a, pairs.path_b, pairs.same):
            if same:
                continue
            ga, gb = uf.find(index[a]), uf.find(index[b])
            if ga == gb:
                raise InvalidArgumentError(
                    f"{path}: {a} and {b} are listed as different people, but same-person pairs join them",
                    details={"path_a": a, "path_b": b},
                )
            if ga in label_of and gb in label_of:  # both groups have an embedded image
                la, lb = label_of[ga], label_of[gb]
                different_groups.add((min(la, lb), max(la, lb)))
        different = different_groups
    scores = calibrate_embeddings(emb, labels, fars, different=different)
    name = dataset or f"{path.parent.name}/{path.name}"
    desc = (f"{name}: {len(images)} images, every pair its labels allow ({scores.n_genuine} genuine, "
            f"{scores.n_impostor} impostor)")
    return CalibrationResult(
        model_id=card.id, spec=spec, dataset=desc, source_kind=kind, n_images=len(images), n_embedded=len(ok),
        n_identities=int(len(set(labels.tolist()))) if len(ok) else 0,
        no_face=[p for p in images if run.records[p].status == "no_face"],
        unreadable=[p for p in images if run.records[p].status == "unreadable"],
        scores=scores, images_per_s=run.images_per_s, seconds=time.perf_counter() - t0,
        n_listed_impostor_pairs=n_listed,
    )


def write_card(path: str | os.PathLike, result: CalibrationResult) -> dict[str, Any]:
    """Write the calibration as an ONNX sidecar-shaped JSON document ``{"calibration": ...}``.

    An existing JSON object at ``path`` (a model's sidecar) keeps its other keys and gets its
    ``calibration`` replaced, so ``faceprint calibrate ... --out mymodel.json`` calibrates
    ``mymodel.onnx`` in place. Written atomically. Returns the document written.
    """
    target = Path(path)
    doc: dict[str, Any] = {}
    if target.exists():
        try:
            doc = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgumentError(f"{target} exists and is not a JSON document: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidArgumentError(f"{target} exists and is not a JSON object")
    doc["calibration"] = result.sidecar_calibration()
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return doc


def read_card(path: str | os.PathLike[str], label: str | None = None) -> Calibration:
    """The calibration of a card file (:func:`write_card`'s ``{"calibration": ...}``, or an ONNX
    model's sidecar holding one), to apply with :meth:`faceprint.pipeline.Analyzer.use_calibration`
    (``--calibration CARD.json``). Its ``origin`` (what results name) is ``label``, default
    ``path`` as given; its ``model`` the embedder it was measured with (from the card, or a
    sidecar's name and version).
    :class:`InvalidArgumentError` when the file is missing, not a card, or names no model."""
    source = Path(path)
    try:
        doc = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgumentError(f"no such calibration card: {source}", details={"path": str(source)}) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"{source} is not a JSON calibration card: {exc}", details={"path": str(source)}) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("calibration"), dict):
        raise InvalidArgumentError(
            f"{source} is not a calibration card (no \"calibration\" object); `faceprint calibrate --out` writes one",
            details={"path": str(source)},
        )
    calibration = calibration_from_dict(doc["calibration"])
    assert calibration is not None  # a dict always gives one (or raises)
    model = calibration.model
    if not model and isinstance(doc.get("name"), str) and isinstance(doc.get("version"), str):
        model = f"{doc['name']}@{doc['version']}"  # an ONNX sidecar: its own model
    if not model:
        raise InvalidArgumentError(
            f"{source} does not name the model it was measured with (cards written before faceprint named it); "
            "run `faceprint calibrate` again", details={"path": str(source)},
        )
    return replace(calibration, model=model, origin=label or str(path))


def python_literal(out: dict[str, Any], thresholds: dict[float, float], frr: dict[float, float],
                   name: str = "DLIB_RESNET34_CALIBRATION") -> str:
    """The :class:`Calibration` literal of ``src/faceprint/models/calibration_<model>.py``
    from the output of ``bench/calibrate_thresholds.py``."""
    th = ",\n        ".join(f"{k:.0e}: {v!r}" for k, v in thresholds.items())
    fr = ",\n        ".join(f"{k:.0e}: {round(v, 6)!r}" for k, v in frr.items())
    return f'''{name} = Calibration(
    dataset="lfw_dev: LFW View 2 folds 1-3 ({out["n_images"]} images, 150x150), every pair formed from its identities",
    n_images={out["n_embedded"]},
    n_identities={out["n_identities"]},
    n_genuine_pairs={out["n_genuine_pairs"]},
    n_impostor_pairs={out["n_impostor_pairs"]},
    thresholds={{
        {th},
    }},
    frr={{
        {fr},
    }},
    notes=(
        "detector {out["detector"]}, face nearest the image centre; {len(out["no_face"])} of {out["n_images"]} images "
        "had no detected face and were left out. Impostor pairs share images, so they are not "
        "independent; at FAR 1e-5 about {int(out["n_impostor_pairs"] * 1e-5)} impostor pairs decide the threshold."
    ),
)'''
