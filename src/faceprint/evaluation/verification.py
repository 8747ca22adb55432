"""The verification protocol on labelled pairs: accuracy, AUC, EER, TAR@FAR, the model card's
thresholds checked, error rates per group, robustness to perturbations, and a time budget."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceprint import models
from faceprint.evaluation import metrics as M
from faceprint.evaluation.datasets import PairList, ProgressFactory
from faceprint.evaluation.embedding import EmbeddingRun, PipelineSpec, embed_images, pair_scores
from faceprint.evaluation.perturb import Perturbation
from faceprint.evaluation.summary import public_summary, summarize_scores
from faceprint.evaluation.time_budget import TimeBudgetResult, time_budget
from faceprint.models.card import Calibration

__all__ = ["DEFAULT_FARS", "PerturbationResult", "VerificationResult", "calibration_check", "evaluate_pairs"]

DEFAULT_FARS = (1e-1, 1e-2, 1e-3)


@dataclass
class PerturbationResult:
    perturbation: Perturbation
    summary: dict[str, Any]
    scores: np.ndarray
    failures: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.perturbation.to_dict(), **public_summary(self.summary), "failures": self.failures}


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
            "accuracy": M.json_number(s["accuracy"]),
            "accuracy_std": M.json_number(s["accuracy_std"]),
            "auc": M.json_number(s["auc"]),
            "eer": M.json_number(s["eer"]),
            "tar_at_far": {k: M.json_number(v) for k, v in s["tar_at_far"].items()},
            "calibration": self.calibration,
            "images_per_s": M.json_number(self.run.images_per_s),
            # --- extra fields ---
            "pairs_file": self.pairs.source,
            "n_pairs_listed": self.pairs.n_listed,
            "n_genuine": int(self.pairs.same.sum()),
            "n_impostor": int((~self.pairs.same).sum()),
            "pipeline": self.spec.to_dict(),
            "accuracy_stderr": M.json_number(s["accuracy_stderr"]),
            "accuracy_protocol": s["accuracy_protocol"],
            "optimistic": s["optimistic"],
            "folds": s["folds"],
            "eer_threshold": M.json_number(s["eer_threshold"]),
            "tar_at_far_detail": [p.to_dict() for p in s["tar_at_far_detail"]],
            "calibration_source": self.calibration_source,
            "failures_detail": {**self.run.failure_dict(), "pairs_affected": pairs_hit},
            "fallback": self.run.fallback.to_dict(),
            "jobs": self.run.jobs,
            "seconds": round(self.seconds, 2),
        }
        if "best_threshold" in s:
            doc["best_threshold"] = M.json_number(s["best_threshold"])
        if self.groups is not None:
            g = self.groups
            doc["groups"] = {
                "column": self.pairs.group_by,
                "threshold": M.json_number(g["threshold"]),
                "threshold_source": g["threshold_source"],
                "far": g["far"],
                "per_group": [r.to_dict() for r in g["groups"]],
                "fmr_max_min_ratio": M.json_number(g["fmr_max_min_ratio"]),
                "fnmr_max_min_ratio": M.json_number(g["fnmr_max_min_ratio"]),
                "fmr_ratio_unbounded": g["fmr_max_min_ratio"] == math.inf,
                "fnmr_ratio_unbounded": g["fnmr_max_min_ratio"] == math.inf,
                "note": g["note"],
            }
        if self.perturbations:
            doc["perturbations"] = [p.to_dict() for p in self.perturbations]
        if self.time_budget is not None:
            doc["time_budget"] = self.time_budget.to_dict()
        return doc


def calibration_check(card: models.ModelCard, scores: np.ndarray, same: np.ndarray) -> list[dict[str, Any]]:
    """For each FAR the model card names: its threshold, and the FAR and FRR measured here."""
    if card.calibration is None:
        return []
    n_imp, n_gen = int((~same).sum()), int(same.sum())
    rows: list[dict[str, Any]] = []
    for far, t in sorted(card.calibration.thresholds.items(), reverse=True):
        far_m, frr_m = M.far_frr_at(scores, same, t)
        rows.append({
            "far_nominal": far, "threshold": t, "far_measured": M.json_number(far_m), "frr_measured": M.json_number(frr_m),
            "n_false_accepts": int(((scores >= t) & ~same).sum()), "n_impostor": n_imp, "n_genuine": n_gen,
            "resolvable": n_imp > 0 and far * n_imp >= 1 - 1e-9,
        })
    return rows


def calibration_name(card: models.ModelCard) -> str | None:
    """Where ``card``'s thresholds come from, for results: its calibration data set, and the
    calibration card file when one was applied."""
    cal = card.calibration
    if cal is None:
        return None
    return f"calibration card {cal.origin} ({cal.dataset})" if cal.origin else cal.dataset


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
    calibration: Calibration | None = None,
) -> VerificationResult:
    """The verification protocol on labelled pairs (see the module notes and ``faceprint eval
    pairs --help``). ``calibration``: check (and decide groups with) a calibration card's
    thresholds instead of the model card's own (:func:`faceprint.evaluation.calibrate.read_card`)."""
    t0 = time.perf_counter()
    card = models.get_card(spec.model, "embedder")
    if calibration is not None:
        card = card.with_calibration(calibration)  # before embedding: a wrong card fails at once
    run = embed_images(pairs.images(), pairs.resolve, spec, jobs=jobs, progress=progress)
    scores = pair_scores(run, run, pairs)
    summary = summarize_scores(scores, pairs.same, pairs.folds, fars)
    result = VerificationResult(
        pairs=pairs, spec=spec, model_id=card.id, run=run, scores=scores, summary=summary,
        calibration=calibration_check(card, scores, pairs.same),
        calibration_source=calibration_name(card), fars=tuple(fars),
    )
    if pairs.groups is not None:
        if card.calibration is not None:
            where = f"calibration card {card.calibration.origin}" if card.calibration.origin else "model card"
            threshold, source = card.threshold_for(group_far), f"{where}, FAR {group_far:g} on {card.calibration.dataset}"
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
    boxes = {p: box for p in probes if (box := run.records[p].box) is not None}
    for pert in perturbations:
        prun = embed_images(probes, pairs.resolve, spec, jobs=jobs, perturbation=pert, face_boxes=boxes,
                            fallback=run.fallback, progress=progress, label=f"probes {pert.label}")
        pscores = pair_scores(run, prun, pairs)
        result.perturbations.append(
            PerturbationResult(pert, summarize_scores(pscores, pairs.same, pairs.folds, fars), pscores, prun.failures))
    if time_budget_ms is not None:
        result.time_budget = time_budget(pairs, spec, run, summary, scores, time_budget_ms, fars, jobs, progress)
    result.seconds = time.perf_counter() - t0
    return result
