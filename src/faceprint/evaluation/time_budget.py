"""The time-budget sweep: the most accurate pipeline configuration that runs within a budget
of milliseconds per image on this machine, and its verification numbers."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from faceprint.errors import InvalidArgumentError
from faceprint.evaluation import metrics as M
from faceprint.evaluation.datasets import PairList, ProgressFactory, no_progress
from faceprint.evaluation.embedding import NO_DETECTOR, EmbeddingRun, Fallback, PipelineSpec, embed_images, pair_scores
from faceprint.evaluation.summary import public_summary, summarize_scores
from faceprint.settings import usable_cores

__all__ = ["TimeBudgetResult", "candidate_configurations", "machine", "measure_configurations", "time_budget"]


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
            **(public_summary(self.summary) if self.summary else {}),
            "failures": self.failures,
            "images_per_s": M.json_number(self.images_per_s),
            "note": self.note,
            "machine": machine(),
        }


def machine() -> dict[str, Any]:
    """Where the timings were measured."""
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "cores_available": usable_cores(), "python": platform.python_version()}


def candidate_configurations(spec: PipelineSpec) -> list[PipelineSpec]:
    """The configurations a time budget chooses from, in a fixed order of expected accuracy
    (the first that fits wins): the given one; the same detector on a smaller detection
    image (max side 800), without upsampling small images, and both (max side 800 and 480);
    the same steps with the Haar detector; finally no detector at all (the centre crop)."""
    base = spec.policy
    steps = [(base.upsample, base.max_side), (base.upsample, 800), (0, base.max_side), (0, 800), (0, 480)]
    dets = [spec.detector] + (["haar"] if spec.detector not in ("haar", NO_DETECTOR) else [])
    out: list[PipelineSpec] = []
    for det in dets:
        for upsample, max_side in steps:
            if det == NO_DETECTOR:
                break
            policy = replace(base, upsample=upsample, max_side=min(max_side, base.max_side))
            out.append(replace(spec, detector=det, policy=policy))
    out.append(replace(spec, detector=NO_DETECTOR))
    seen: set[str] = set()
    unique: list[PipelineSpec] = []
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
    plans: dict[tuple[str, tuple[tuple[float, int], ...]], dict[str, Any]] = {}
    resolve = dict(files).__getitem__
    for cand in candidates:
        plan = (cand.detector, tuple(cand.policy.plan(w, h) for w, h in sizes)) if sizes else None
        if cand.detector != NO_DETECTOR and plan in plans:
            src = plans[plan]
            rows.append({**src, "label": cand.label, "config": cand.to_dict(), "same_as": src["label"]})
        else:
            embed_images([files[0][0]], resolve, cand, fallback=fallback)  # warm-up: models load here
            times = []
            for key, _ in files:
                t = time.perf_counter()
                embed_images([key], resolve, cand, fallback=fallback)
                times.append(time.perf_counter() - t)
            row = {"label": cand.label, "config": cand.to_dict(), "ms_per_image": 1000.0 * float(np.mean(times)),
                   "ms_p90": 1000.0 * float(np.percentile(times, 90)), "n_measured": len(times), "same_as": None}
            rows.append(row)
            if plan is not None and cand.detector != NO_DETECTOR:
                plans[plan] = row
        if advance:
            advance(1)
    return rows


def time_budget(pairs: PairList, spec: PipelineSpec, run: EmbeddingRun, summary: dict[str, Any], scores: np.ndarray,
                budget_ms: float, fars: Sequence[float], jobs: int, progress: ProgressFactory | None) -> TimeBudgetResult:
    """Time the configurations of :func:`candidate_configurations` on a sample of ``pairs``'
    images; the first that fits ``budget_ms`` is chosen and, unless it is ``spec`` itself
    (whose ``run``, ``summary`` and ``scores`` are given), evaluated on every pair."""
    if not budget_ms > 0:
        raise InvalidArgumentError(f"the time budget must be positive; got {budget_ms}")
    images = [p for p in pairs.images() if run.records[p].status != "unreadable"] or pairs.images()
    n_sample = min(20, len(images))
    sample = [images[int(i)] for i in np.linspace(0, len(images) - 1, n_sample).round()]
    files = [(p, pairs.resolve(p)) for p in sample]
    sizes = [size for p in sample if (size := run.records[p].size)]
    candidates = candidate_configurations(spec)
    advance = (progress or no_progress)("timing configurations", len(candidates))
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
    cscores = pair_scores(crun, crun, pairs)
    return TimeBudgetResult(budget_ms, rows, chosen, fits, summarize_scores(cscores, pairs.same, pairs.folds, fars),
                            crun.failures, cscores, crun.images_per_s, note)
