"""Clustering quality against ground truth: pure numpy, no models, no files.

Conventions (the whole module):

* ``labels_true``: one identity per item (any integers or strings; every value is a real
  identity). ``labels_pred``: one cluster per item; a **negative** label (``-1``) means
  *unassigned*, and every unassigned item counts as **its own singleton cluster** -- it is
  never paired with anything. So leaving a face out costs recall, never precision, and
  putting a face in a singleton cluster scores exactly like leaving it unassigned.
* Everything is computed from the contingency table of (true, predicted) cells, found with
  one sort: O(N log N), no pair loops.
* Pairwise: over all unordered pairs of distinct items. precision = share of the pairs
  put in one predicted cluster that are of one identity; recall = share of same-identity
  pairs put in one cluster.
* BCubed (Bagga & Baldwin 1998; Amigo et al. 2009): per item, precision = share of its
  predicted cluster (itself included) with its identity, recall = share of its identity
  (itself included) in its predicted cluster; both averaged over the items.
* F1 is the harmonic mean (0 when both are 0). Where a quantity is undefined (no items; no
  predicted pairs for pairwise precision; no same-identity pairs for pairwise recall) it is
  ``nan``, never a made-up 0 or 1; ``to_dict()`` writes ``nan`` as ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceprint.errors import InvalidArgumentError

__all__ = [
    "ClusteringScores",
    "PRF",
    "bcubed",
    "contingency",
    "pairwise",
    "score_clustering",
]


@dataclass(frozen=True, slots=True)
class PRF:
    """Precision, recall and their F1."""

    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r):
            return math.nan
        return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)

    def to_dict(self, digits: int = 4) -> dict[str, float | None]:
        return {"precision": _num(self.precision, digits), "recall": _num(self.recall, digits),
                "f1": _num(self.f1, digits)}


def _num(v: float, digits: int = 4) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), digits)


# --- the contingency table ----------------------------------------------------------------------
def _labels(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(labels_true)
    p = np.asarray(labels_pred)
    if t.ndim != 1 or p.ndim != 1:
        raise InvalidArgumentError(f"labels must be 1-D; got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise InvalidArgumentError(f"labels_true and labels_pred differ in length ({t.size} vs {p.size})")
    if p.size and p.dtype.kind not in "iu":
        if p.dtype.kind == "f" and np.isfinite(p).all() and (p == np.round(p)).all():
            p = p.astype(np.int64)
        else:
            raise InvalidArgumentError(f"labels_pred must be integers; got dtype {p.dtype}")
    p = p.astype(np.int64, copy=False)
    _, t_idx = np.unique(t, return_inverse=True)
    # Unassigned items: each its own cluster, numbered after the real ones.
    p = p.copy()
    neg = p < 0
    if neg.any():
        base = int(p[~neg].max()) + 1 if (~neg).any() else 0
        p[neg] = base + np.arange(int(neg.sum()))
    _, p_idx = np.unique(p, return_inverse=True)
    return t_idx.reshape(-1).astype(np.int64), p_idx.reshape(-1).astype(np.int64)


def contingency(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cells, true_sizes, pred_sizes)``: the counts of the non-empty (identity, cluster)
    cells, each identity's size and each predicted cluster's size (unassigned items are
    singleton clusters). The sums of all three are N."""
    t, p = _labels(labels_true, labels_pred)
    if t.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    n_pred = int(p.max()) + 1
    _, cells = np.unique(t * n_pred + p, return_counts=True)
    return cells.astype(np.int64), np.bincount(t).astype(np.int64), np.bincount(p).astype(np.int64)


def _pairs(n: np.ndarray) -> float:
    n = n.astype(np.float64)
    return float((n * (n - 1.0) / 2.0).sum())


def pairwise(labels_true: Any, labels_pred: Any) -> PRF:
    """Pairwise precision and recall (see the module notes)."""
    cells, a, b = contingency(labels_true, labels_pred)
    tp, pred_pairs, true_pairs = _pairs(cells), _pairs(b), _pairs(a)
    return PRF(tp / pred_pairs if pred_pairs else math.nan, tp / true_pairs if true_pairs else math.nan)


def bcubed(labels_true: Any, labels_pred: Any) -> PRF:
    """BCubed precision and recall (see the module notes)."""
    t, p = _labels(labels_true, labels_pred)
    n = t.size
    if n == 0:
        return PRF(math.nan, math.nan)
    n_pred = int(p.max()) + 1
    key = t * n_pred + p
    uniq, inv, cells = np.unique(key, return_inverse=True, return_counts=True)
    per_item_cell = cells[inv.reshape(-1)].astype(np.float64)
    a = np.bincount(t)[t].astype(np.float64)
    b = np.bincount(p)[p].astype(np.float64)
    return PRF(float((per_item_cell / b).mean()), float((per_item_cell / a).mean()))


@dataclass(frozen=True, slots=True)
class ClusteringScores:
    """Everything :func:`score_clustering` measures of one clustering."""

    pairwise: PRF
    bcubed: PRF
    n_items: int
    n_true: int  # identities
    n_true_2plus: int  # identities with two or more items
    n_predicted: int  # predicted clusters (unassigned items not counted)
    n_predicted_2plus: int  # predicted clusters with two or more items
    n_unassigned: int

    @property
    def unassigned_share(self) -> float:
        return self.n_unassigned / self.n_items if self.n_items else math.nan

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        return {
            "pairwise": self.pairwise.to_dict(digits),
            "bcubed": self.bcubed.to_dict(digits),
            "n_items": self.n_items,
            "true_people": self.n_true,
            "true_people_2plus": self.n_true_2plus,
            "predicted_clusters": self.n_predicted,
            "predicted_clusters_2plus": self.n_predicted_2plus,
            "unassigned": self.n_unassigned,
            "unassigned_share": _num(self.unassigned_share, digits),
        }


def score_clustering(labels_true: Any, labels_pred: Any) -> ClusteringScores:
    """Pairwise and BCubed P/R/F1, cluster counts and the unassigned share."""
    t, _ = _labels(labels_true, labels_pred)  # validates
    p = np.asarray(labels_pred).astype(np.int64)
    assigned = p[p >= 0]
    true_sizes = np.bincount(t) if t.size else np.zeros(0, np.int64)
    _, pred_sizes = np.unique(assigned, return_counts=True)
    return ClusteringScores(
        pairwise=pairwise(labels_true, labels_pred),
        bcubed=bcubed(labels_true, labels_pred),
        n_items=int(t.size),
        n_true=int(true_sizes.size),
        n_true_2plus=int(np.count_nonzero(true_sizes >= 2)),
        n_predicted=int(pred_sizes.size),
        n_predicted_2plus=int(np.count_nonzero(pred_sizes >= 2)),
        n_unassigned=int(p.size - assigned.size),
    )
