"""Clustering metrics against hand-computed values and brute-force definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from faceprint.clustering import PRF, bcubed, contingency, pairwise, score_clustering
from faceprint.errors import InvalidArgumentError


def approx(v: float) -> object:
    return pytest.approx(v, abs=1e-12)


# --- hand-computed ------------------------------------------------------------------------------
def test_hand_example_with_unassigned():
    # identities: A A A B B C ; clusters: 0 0 1 1 1 and one unassigned (its own singleton)
    true = ["A", "A", "A", "B", "B", "C"]
    pred = [0, 0, 1, 1, 1, -1]
    cells, a, b = contingency(true, pred)
    assert sorted(cells.tolist()) == [1, 1, 2, 2]
    assert sorted(a.tolist()) == [1, 2, 3] and sorted(b.tolist()) == [1, 2, 3]
    # pairs: same cluster & same identity = {0,1} {3,4} -> 2; predicted pairs 1 + 3 = 4; true pairs 3 + 1 = 4
    pw = pairwise(true, pred)
    assert pw.precision == approx(0.5) and pw.recall == approx(0.5) and pw.f1 == approx(0.5)
    # BCubed precision per item: 1, 1, 1/3, 2/3, 2/3, 1 ; recall: 2/3, 2/3, 1/3, 1, 1, 1
    bc = bcubed(true, pred)
    assert bc.precision == approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3 + 1) / 6)
    assert bc.recall == approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1 + 1) / 6)


def test_hand_example_asymmetric():
    # identities 0 0 1 1 ; one cluster of everything
    pw = pairwise([0, 0, 1, 1], [5, 5, 5, 5])
    assert pw.precision == approx(2 / 6) and pw.recall == approx(1.0)
    assert pw.f1 == approx(2 * (1 / 3) / (1 / 3 + 1))
    bc = bcubed([0, 0, 1, 1], [5, 5, 5, 5])
    assert bc.precision == approx(0.5) and bc.recall == approx(1.0)
    assert bc.f1 == approx(2 * 0.5 / 1.5)


def test_perfect_clustering_any_label_names():
    true = np.array([3, 3, 7, 9, 9, 9])
    pred = np.array([2, 2, 0, 1, 1, 1])
    for m in (pairwise(true, pred), bcubed(true, pred)):
        assert (m.precision, m.recall, m.f1) == (1.0, 1.0, 1.0)


def test_all_unassigned_counts_as_singletons():
    true = [0, 0, 1]
    pw = pairwise(true, [-1, -1, -1])
    assert math.isnan(pw.precision)  # no predicted pair: undefined, not 0 or 1
    assert pw.recall == 0.0 and math.isnan(pw.f1)
    bc = bcubed(true, [-1, -1, -1])
    assert bc.precision == 1.0 and bc.recall == approx((0.5 + 0.5 + 1) / 3)


def test_unassigned_scores_like_singletons():
    true = [0, 0, 0, 1, 1]
    a = [0, 0, -1, 1, -1]
    b = [0, 0, 7, 1, 8]
    assert pairwise(true, a) == pairwise(true, b)
    assert bcubed(true, a) == bcubed(true, b)


def test_no_true_pairs():
    pw = pairwise([0, 1, 2], [0, 0, 1])
    assert pw.precision == 0.0 and math.isnan(pw.recall)


def test_precision_and_recall_zero_gives_f1_zero():
    assert PRF(0.0, 0.0).f1 == 0.0
    assert math.isnan(PRF(math.nan, 1.0).f1)


def test_empty():
    pw, bc = pairwise([], []), bcubed([], [])
    assert all(math.isnan(v) for v in (pw.precision, pw.recall, bc.precision, bc.recall))
    s = score_clustering([], [])
    assert s.n_items == 0 and s.n_predicted == 0 and math.isnan(s.unassigned_share)
    d = s.to_dict()
    assert d["pairwise"]["f1"] is None and d["unassigned_share"] is None


def test_single_item():
    s = score_clustering([4], [0])
    assert s.bcubed.f1 == 1.0 and math.isnan(s.pairwise.precision)
    assert s.n_predicted == 1 and s.n_true == 1


def test_score_clustering_counts():
    s = score_clustering([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, -1])
    assert s.n_items == 6 and s.n_true == 3 and s.n_true_2plus == 2
    assert s.n_predicted == 2 and s.n_predicted_2plus == 2
    assert s.n_unassigned == 1 and s.unassigned_share == approx(1 / 6)
    assert set(s.to_dict()) >= {"pairwise", "bcubed", "predicted_clusters", "true_people", "unassigned_share"}


# --- brute force on random labels ---------------------------------------------------------------
def _brute(true, pred):
    pred = list(pred)
    nxt = max([p for p in pred if p >= 0], default=-1) + 1
    for i, p in enumerate(pred):
        if p < 0:
            pred[i], nxt = nxt, nxt + 1
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(true)), 2):
        same_t, same_p = true[i] == true[j], pred[i] == pred[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    n = len(true)
    bp = sum(sum(pred[j] == pred[i] and true[j] == true[i] for j in range(n)) / sum(pred[j] == pred[i] for j in range(n))
             for i in range(n)) / n
    br = sum(sum(pred[j] == pred[i] and true[j] == true[i] for j in range(n)) / sum(true[j] == true[i] for j in range(n))
             for i in range(n)) / n
    return tp / (tp + fp) if tp + fp else math.nan, tp / (tp + fn) if tp + fn else math.nan, bp, br


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    true = rng.integers(0, int(rng.integers(1, 8)), n).tolist()
    pred = rng.integers(-1, int(rng.integers(1, 8)), n).tolist()
    p, r, bp, br = _brute(true, pred)
    pw, bc = pairwise(true, pred), bcubed(true, pred)
    for got, want in ((pw.precision, p), (pw.recall, r), (bc.precision, bp), (bc.recall, br)):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)


# --- input checks -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "true, pred",
    [
        ([0, 1], [0]),
        ([[0, 1]], [[0, 1]]),
        ([0, 1], [0.5, 1.0]),
        ([0, 1], ["a", "b"]),
    ],
)
def test_bad_input(true, pred):
    with pytest.raises(InvalidArgumentError):
        score_clustering(true, pred)


def test_integral_float_predictions_accepted():
    assert pairwise([0, 0], [1.0, 1.0]).precision == 1.0
