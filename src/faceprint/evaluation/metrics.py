"""Verification and identification metrics: pure numpy, no models, no files.

Conventions (the whole module):

* A *score* is a similarity: higher means more alike. A pair is accepted at threshold ``t``
  when ``score >= t`` -- the same rule as :meth:`faceprint.Analyzer.verify`.
* ``labels`` are booleans: ``True`` for a genuine (mated, same-person) pair, ``False`` for an
  impostor (non-mated) pair.
* FAR = FMR = the fraction of impostor scores ``>= t``; FRR = FNMR = the fraction of genuine
  scores ``< t``; TAR = 1 - FRR.
* Where a quantity is undefined (no genuine pairs, no impostor pairs, no data) it is ``nan``,
  never a made-up 0 or 1; JSON writers turn ``nan`` into ``null``.

Thresholds at a target FAR are *conservative*: the threshold admits at most
``floor(far * n_impostor)`` impostors, so the FAR achieved never exceeds the one asked for.
When ``far * n_impostor < 1`` not one impostor may pass and the FAR is below what the data can
resolve; every such result says so (``resolvable``) and gives ``n_impostor``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FoldResult",
    "GroupRates",
    "KFoldResult",
    "OperatingPoint",
    "IdentificationPoint",
    "auc",
    "best_threshold_accuracy",
    "cmc",
    "det_curve",
    "eer",
    "fnir_at_fpir",
    "far_frr_at",
    "group_error_rates",
    "kfold_accuracy",
    "ranks_from_scores",
    "roc_curve",
    "tar_at_far",
    "threshold_at_far",
    "far_key",
    "json_number",
    "just_above",
]


def far_key(far: float) -> str:
    """``1e-3`` -> ``"1e-3"``: how FARs are written as JSON keys (as in model cards)."""
    return f"{far:.0e}".replace("e-0", "e-").replace("e+0", "e")


# --- input checks ---------------------------------------------------------------------------
def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if y.dtype != bool:
        if y.size and not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be booleans or 0/1")
        y = y.astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length ({s.size} vs {y.size})")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers")
    return s, y


def _split(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s, y = _scores_labels(scores, labels)
    return s[y], s[~y]


# --- ROC, AUC, EER, DET ---------------------------------------------------------------------
def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, tar, thresholds)`` at every distinct score, thresholds descending.

    The first point is ``(0, 0)`` at threshold ``+inf`` (reject everything); the last is
    ``(1, 1)`` at the lowest score. Tied scores form one point (never a staircase through a
    tie). ``far`` is all-``nan`` without impostors, ``tar`` all-``nan`` without genuines.
    """
    s, y = _scores_labels(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1] if s.size else np.zeros(0, int)
    tps = np.cumsum(y)[last_of_run]
    fps = np.cumsum(~y)[last_of_run]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tar = np.r_[0, tps] / n_pos if n_pos else np.full(tps.size + 1, np.nan)
        far = np.r_[0, fps] / n_neg if n_neg else np.full(fps.size + 1, np.nan)
    thresholds = np.r_[np.inf, s[last_of_run]]
    return far.astype(np.float64), tar.astype(np.float64), thresholds


def auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve: P(genuine score > impostor score) + 0.5 P(equal).

    The Mann-Whitney statistic; equal to the trapezoidal area under :func:`roc_curve`
    (ties count half). ``nan`` without genuine or without impostor pairs.
    """
    s, y = _scores_labels(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(xs) != 0) + 1]
    ends = np.r_[starts[1:], xs.size]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def eer(scores: Any, labels: Any) -> tuple[float, float]:
    """``(equal error rate, threshold)``.

    Walking the ROC points from the strictest threshold, the EER is where FRR (= 1 - TAR)
    first falls to or below FAR, linearly interpolated between that point and the one
    before; the threshold is the score of the point reached. ``(nan, nan)`` without both
    kinds of pairs.
    """
    far, tar, thr = roc_curve(scores, labels)
    if np.isnan(far).any() or np.isnan(tar).any():
        return math.nan, math.nan
    s, y = _scores_labels(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    # FRR - FAR in exact integers (scaled by n_pos * n_neg): no rounding decides the crossing.
    fn = np.rint((1.0 - tar) * n_pos).astype(np.int64)
    fp = np.rint(far * n_neg).astype(np.int64)
    diff = fn * n_neg - fp * n_pos  # starts > 0 (threshold +inf), ends < 0 (accept all)
    i = int(np.argmax(diff <= 0))
    d0, d1 = float(diff[i - 1]), float(diff[i])
    t = d0 / (d0 - d1) if d0 != d1 else 1.0
    value = far[i - 1] + t * (far[i] - far[i - 1])
    return float(value), float(thr[i])


def det_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, frr, thresholds)``: the ROC points as a detection-error trade-off."""
    far, tar, thr = roc_curve(scores, labels)
    return far, 1.0 - tar, thr


# --- thresholds at a FAR ------------------------------------------------------------------------
def threshold_at_far(impostor_scores: Any, far: float) -> tuple[float, int]:
    """``(threshold, k)``: the smallest threshold at which at most ``k = floor(far * n)`` of
    the ``n`` impostor scores are accepted (``score >= threshold``).

    The threshold lies just above the ``(k+1)``-th highest impostor score: one float32 step
    above it, so that the same pair scored in float32 elsewhere (a vector index) is still
    rejected. With ``k >= n`` every impostor may pass and the threshold is the lowest
    impostor score. Ties are never split: when the ``k``-th and ``(k+1)``-th highest tie,
    fewer than ``k`` pass. ``(nan, 0)`` without impostors.
    """
    if not 0.0 < far <= 1.0:
        raise ValueError(f"far must be in (0, 1]; got {far}")
    imp = np.asarray(impostor_scores, dtype=np.float64).reshape(-1)
    n = imp.size
    if n == 0:
        return math.nan, 0
    k = int(math.floor(far * n + 1e-9))
    if k >= n:
        return float(imp.min()), n
    kth = float(-np.partition(-imp, k)[k])  # the (k+1)-th highest score
    return just_above(kth), k


def just_above(value: float) -> float:
    """The next representable score above ``value`` (in float32 where that is a step up, as
    embeddings are float32): a threshold that rejects a score equal to ``value``."""
    up = float(np.nextafter(np.float32(value), np.float32(np.inf)))
    return up if up > value else float(np.nextafter(value, np.inf))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A verification operating point at a target FAR."""

    far_target: float
    threshold: float
    tar: float
    far_achieved: float
    n_genuine: int
    n_impostor: int
    n_false_accepts: int

    @property
    def resolvable(self) -> bool:
        """Whether the data can show this FAR: at least one impostor may pass."""
        return self.n_impostor > 0 and self.far_target * self.n_impostor >= 1.0 - 1e-9

    @property
    def frr(self) -> float:
        return 1.0 - self.tar

    def to_dict(self) -> dict[str, Any]:
        return {
            "far": self.far_target,
            "threshold": json_number(self.threshold),
            "tar": json_number(self.tar),
            "frr": json_number(self.frr),
            "far_achieved": json_number(self.far_achieved),
            "n_false_accepts": self.n_false_accepts,
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "resolvable": self.resolvable,
        }


def tar_at_far(scores: Any, labels: Any, far: float) -> OperatingPoint:
    """TAR at the conservative threshold for ``far`` (see :func:`threshold_at_far`)."""
    gen, imp = _split(scores, labels)
    t, _ = threshold_at_far(imp, far)
    if math.isnan(t):
        return OperatingPoint(far, math.nan, math.nan, math.nan, gen.size, 0, 0)
    accepted = int((imp >= t).sum())
    tar = float((gen >= t).mean()) if gen.size else math.nan
    return OperatingPoint(far, t, tar, accepted / imp.size, gen.size, imp.size, accepted)


def far_frr_at(scores: Any, labels: Any, threshold: float) -> tuple[float, float]:
    """``(FAR, FRR)`` measured at a given threshold (``nan`` where a side is empty)."""
    gen, imp = _split(scores, labels)
    far = float((imp >= threshold).mean()) if imp.size else math.nan
    frr = float((gen < threshold).mean()) if gen.size else math.nan
    return far, frr


# --- accuracy --------------------------------------------------------------------------------
def best_threshold_accuracy(scores: Any, labels: Any) -> tuple[float, float]:
    """``(accuracy, threshold)`` with the threshold that maximises accuracy on these pairs.

    Candidates: accept every score ``>= u`` for each distinct score ``u``, or accept nothing.
    Of equally accurate candidates the lowest wins. The threshold returned is the midpoint
    between the chosen score and the next lower distinct score (the same decisions on these
    pairs, a margin on both sides for new ones); the lowest score itself when everything is
    accepted, a float step above the highest when nothing is. ``(nan, nan)`` without pairs.
    """
    s, y = _scores_labels(scores, labels)
    if s.size == 0:
        return math.nan, math.nan
    u = np.unique(s)
    gen = np.sort(s[y])
    imp = np.sort(s[~y])
    gen_accepted = gen.size - np.searchsorted(gen, u, side="left")
    imp_rejected = np.searchsorted(imp, u, side="left")
    correct = np.r_[gen_accepted + imp_rejected, imp.size]  # last: reject everything
    j = int(np.argmax(correct))
    if j == u.size:
        threshold = float(np.nextafter(u[-1], np.inf))
    elif j == 0:
        threshold = float(u[0])
    else:
        threshold = float((u[j - 1] + u[j]) / 2.0)
        if not threshold > u[j - 1]:  # adjacent floats: no midpoint between them
            threshold = float(u[j])
    return float(correct[j] / s.size), threshold


@dataclass(frozen=True, slots=True)
class FoldResult:
    fold: Any
    threshold: float
    accuracy: float
    n_pairs: int
    train_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {"fold": self.fold, "threshold": json_number(self.threshold), "accuracy": json_number(self.accuracy),
                "n_pairs": self.n_pairs, "train_accuracy": json_number(self.train_accuracy)}


@dataclass(frozen=True, slots=True)
class KFoldResult:
    """The LFW protocol: for each fold, the threshold that maximises accuracy on the other
    folds, and the accuracy at it on this fold. ``mean`` and ``std`` are over the folds
    (``std`` with ``ddof=0``, as the LFW evaluation scripts report it); ``stderr`` is
    ``std / sqrt(k)``."""

    folds: tuple[FoldResult, ...]
    mean: float
    std: float

    @property
    def stderr(self) -> float:
        k = len(self.folds)
        return float(self.std / math.sqrt(k)) if k else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"mean": json_number(self.mean), "std": json_number(self.std), "stderr": json_number(self.stderr),
                "folds": [f.to_dict() for f in self.folds]}


def kfold_accuracy(scores: Any, labels: Any, folds: Any) -> KFoldResult:
    """Cross-validated accuracy over the given folds (at least two distinct fold values)."""
    s, y = _scores_labels(scores, labels)
    f = np.asarray(folds).reshape(-1)
    if f.shape != s.shape:
        raise ValueError(f"folds and scores differ in length ({f.size} vs {s.size})")
    values = sorted(set(f.tolist()))
    if len(values) < 2:
        raise ValueError("the fold protocol needs at least two folds")
    results = []
    for value in values:
        test = f == value
        train_acc, t = best_threshold_accuracy(s[~test], y[~test])
        acc = float(((s[test] >= t) == y[test]).mean()) if test.any() else math.nan
        results.append(FoldResult(_plain(value), t, acc, int(test.sum()), train_acc))
    accs = np.array([r.accuracy for r in results])
    return KFoldResult(tuple(results), float(accs.mean()), float(accs.std()))


# --- per-group error ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GroupRates:
    group: str
    n_genuine: int
    n_impostor: int
    fmr: float
    fnmr: float

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "n_genuine": self.n_genuine, "n_impostor": self.n_impostor,
                "fmr": json_number(self.fmr), "fnmr": json_number(self.fnmr)}


def group_error_rates(scores: Any, labels: Any, groups: Sequence[Any], threshold: float) -> dict[str, Any]:
    """FMR and FNMR of each group at one global ``threshold``, and the max/min ratio of each
    across the groups that have such pairs.

    A ratio is ``inf`` when the smallest rate is 0 and the largest is not (one group is
    error-free on this data: the data cannot bound the ratio), ``nan`` with fewer than two
    groups that have the pairs for it.
    """
    s, y = _scores_labels(scores, labels)
    g = np.asarray([str(v) for v in groups], dtype=object)
    if g.shape != s.shape:
        raise ValueError(f"groups and scores differ in length ({g.size} vs {s.size})")
    rows = []
    for name in sorted(set(g.tolist())):
        m = g == name
        gen, imp = s[m & y], s[m & ~y]
        rows.append(GroupRates(
            name, int(gen.size), int(imp.size),
            float((imp >= threshold).mean()) if imp.size else math.nan,
            float((gen < threshold).mean()) if gen.size else math.nan,
        ))

    def ratio(values: list[float]) -> float:
        vals = [v for v in values if not math.isnan(v)]
        if len(vals) < 2:
            return math.nan
        hi, lo = max(vals), min(vals)
        if hi == 0:
            return 1.0
        return math.inf if lo == 0 else hi / lo

    return {
        "threshold": threshold,
        "groups": rows,
        "fmr_max_min_ratio": ratio([r.fmr for r in rows]),
        "fnmr_max_min_ratio": ratio([r.fnmr for r in rows]),
    }


# --- identification ------------------------------------------------------------------------------
def ranks_from_scores(scores: Any, mated_index: Any) -> np.ndarray:
    """1-based rank of each probe's mated gallery subject in a ``(probes, subjects)`` score
    matrix; ``inf`` where ``mated_index`` is negative (the probe's subject is not enrolled).

    Ties are counted against the probe: the rank is 1 + the number of *other* subjects that
    score at least as high as the mated one (a tie at the top is not a rank-1 hit).
    """
    m = np.asarray(scores, dtype=np.float64)
    idx = np.asarray(mated_index, dtype=np.int64).reshape(-1)
    if m.ndim != 2 or m.shape[0] != idx.size:
        raise ValueError("scores must be (n_probes, n_subjects) with one mated index per probe")
    ranks = np.full(idx.size, np.inf)
    ok = (idx >= 0) & (idx < m.shape[1])
    rows = np.flatnonzero(ok)
    mated = m[rows, idx[rows]]
    ranks[rows] = (m[rows] >= mated[:, None]).sum(axis=1)  # counts the mated one itself: +1 built in
    return ranks


def cmc(ranks: Any, max_rank: int) -> np.ndarray:
    """Cumulative match characteristic: ``out[k-1]`` = fraction of mated probes found at rank
    ``<= k``, for ``k = 1 .. max_rank``. ``inf`` ranks (not found / not enrolled) never count
    as found. All-``nan`` without probes."""
    r = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if max_rank < 1:
        raise ValueError("max_rank must be at least 1")
    if r.size == 0:
        return np.full(max_rank, np.nan)
    ks = np.arange(1, max_rank + 1)
    return (r[None, :] <= ks[:, None]).mean(axis=1)


@dataclass(frozen=True, slots=True)
class IdentificationPoint:
    """Open-set identification at a target FPIR, the NIST FRVT way.

    ``threshold`` is the conservative threshold at which at most ``floor(fpir * n_nonmated)``
    non-mated searches return a candidate (their top score ``>= threshold``). A mated search
    is a hit when its mated subject is at rank ``<= rank`` with a score ``>= threshold``;
    ``dir`` is the hit rate and ``fnir = 1 - dir``.
    """

    fpir_target: float
    threshold: float
    fnir: float
    dir: float
    fpir_achieved: float
    n_mated: int
    n_nonmated: int
    rank: int

    @property
    def resolvable(self) -> bool:
        return self.n_nonmated > 0 and self.fpir_target * self.n_nonmated >= 1.0 - 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            "fpir": self.fpir_target,
            "threshold": json_number(self.threshold),
            "fnir": json_number(self.fnir),
            "dir": json_number(self.dir),
            "fpir_achieved": json_number(self.fpir_achieved),
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "rank": self.rank,
            "resolvable": self.resolvable,
        }


def fnir_at_fpir(
    mated_scores: Any, mated_ranks: Any, nonmated_scores: Any, fpir: float, rank: int = 1
) -> IdentificationPoint:
    """FNIR and DIR at the threshold that gives ``fpir`` on the non-mated searches.

    ``mated_scores``: for each mated search, the score of its mated subject (any value where
    the rank is ``inf``); ``mated_ranks``: that subject's 1-based rank (``inf``: not
    returned); ``nonmated_scores``: each non-mated search's top score (``-inf`` or any value
    below every threshold when the search returned nothing).
    """
    ms = np.asarray(mated_scores, dtype=np.float64).reshape(-1)
    mr = np.asarray(mated_ranks, dtype=np.float64).reshape(-1)
    nm = np.asarray(nonmated_scores, dtype=np.float64).reshape(-1)
    if ms.shape != mr.shape:
        raise ValueError("mated_scores and mated_ranks differ in length")
    t = _threshold_for_top_scores(nm, fpir)
    if math.isnan(t):
        return IdentificationPoint(fpir, math.nan, math.nan, math.nan, math.nan, ms.size, nm.size, rank)
    fpir_achieved = float(((nm >= t) & np.isfinite(nm)).mean())
    if ms.size == 0:
        return IdentificationPoint(fpir, t, math.nan, math.nan, fpir_achieved, 0, nm.size, rank)
    hit = (mr <= rank) & (ms >= t)
    dir_ = float(hit.mean())
    return IdentificationPoint(fpir, t, 1.0 - dir_, dir_, fpir_achieved, ms.size, nm.size, rank)


def _threshold_for_top_scores(top: np.ndarray, fpir: float) -> float:
    """Like :func:`threshold_at_far` for non-mated top scores, where ``-inf`` marks a search
    that returned no candidate (it can never be a false positive)."""
    if not 0.0 < fpir <= 1.0:
        raise ValueError(f"fpir must be in (0, 1]; got {fpir}")
    n = top.size
    if n == 0:
        return math.nan
    finite = top[np.isfinite(top)]
    k = int(math.floor(fpir * n + 1e-9))
    if k >= finite.size:  # at most k searches returned anything: accept every candidate
        return float(finite.min()) if finite.size else -math.inf
    kth = float(-np.partition(-finite, k)[k])
    return just_above(kth)


# --- helpers -----------------------------------------------------------------------------------
def json_number(x: float | None) -> float | None:
    """A JSON-safe number: ``nan`` and infinities become ``None``."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value

