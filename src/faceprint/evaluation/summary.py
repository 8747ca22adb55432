"""One set of pair scores summed up: accuracy (k-fold or optimistic), AUC, EER, TAR@FAR, and
the JSON-ready form of that summary (shared by verification and the time budget)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from faceprint.evaluation import metrics as M

__all__ = ["public_summary", "summarize_scores"]


def summarize_scores(scores: np.ndarray, same: np.ndarray, folds: np.ndarray | None, fars: Sequence[float]) -> dict[str, Any]:
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


def public_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """:func:`summarize_scores`' result for JSON: no private keys, ``nan`` -> ``None``."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        if k.startswith("_"):
            continue
        if k == "tar_at_far_detail":
            out[k] = [p.to_dict() for p in v]
        elif k == "tar_at_far":
            out[k] = {kk: M.json_number(vv) for kk, vv in v.items()}
        elif isinstance(v, float):
            out[k] = M.json_number(v)
        else:
            out[k] = v
    return out
