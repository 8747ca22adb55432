"""Metrics against values computed by hand on small score sets, ties and degenerate inputs included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceprint.evaluation import metrics as M


# --- ROC and AUC ------------------------------------------------------------------------------
def test_roc_curve_merges_tied_scores_into_one_point():
    far, tar, thr = M.roc_curve([0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0])
    assert thr.tolist() == [math.inf, 0.9, 0.8, 0.3]
    assert tar.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert far.tolist() == [0.0, 0.0, 0.5, 1.0]


def test_auc_counts_ties_half_and_equals_the_trapezoid():
    scores, labels = [0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0]
    # genuine > impostor: (0.9,0.8) (0.9,0.3) (0.8,0.3); tie (0.8,0.8) counts 0.5 -> 3.5 / 4
    assert M.auc(scores, labels) == pytest.approx(0.875)
    far, tar, _ = M.roc_curve(scores, labels)
    assert np.trapezoid(tar, far) == pytest.approx(0.875)


@pytest.mark.parametrize(
    "scores,labels,expected",
    [
        ([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], 1.0),  # perfect
        ([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0], 0.0),  # inverted
        ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5),  # constant scores
    ],
)
def test_auc_extremes(scores, labels, expected):
    assert M.auc(scores, labels) == pytest.approx(expected)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_auc_and_eer_are_nan_without_both_kinds_of_pairs(labels):
    assert math.isnan(M.auc([0.1, 0.5, 0.9], labels))
    value, threshold = M.eer([0.1, 0.5, 0.9], labels)
    assert math.isnan(value) and math.isnan(threshold)


def test_empty_input_is_nan_not_an_error():
    assert math.isnan(M.auc([], []))
    assert math.isnan(M.best_threshold_accuracy([], [])[0])


@pytest.mark.parametrize("scores,labels", [([0.1, 0.2], [1]), ([0.1, float("nan")], [1, 0]), ([0.1, 0.2], [2, 0])])
def test_bad_inputs_are_refused(scores, labels):
    with pytest.raises(ValueError):
        M.auc(scores, labels)


# --- EER --------------------------------------------------------------------------------------
def test_eer_where_far_equals_frr_at_a_point():
    # At threshold 0.75: FAR 1/3 (0.75), FRR 1/3 (0.7).
    value, threshold = M.eer([0.9, 0.8, 0.7, 0.75, 0.6, 0.5], [1, 1, 1, 0, 0, 0])
    assert value == pytest.approx(1 / 3)
    assert threshold == 0.75


def test_eer_perfect_separation_is_zero():
    assert M.eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[0] == 0.0


def test_eer_constant_scores_is_one_half_by_interpolation():
    # Only (FAR, FRR) = (0, 1) and (1, 0): the crossing is half way.
    assert M.eer([0.5] * 4, [1, 0, 1, 0])[0] == pytest.approx(0.5)


def test_eer_on_a_plateau():
    # threshold 0.6: FAR 1/2 (0.6), FRR 1/2 (0.4)
    assert M.eer([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0])[0] == pytest.approx(0.5)


# --- thresholds and TAR at FAR ------------------------------------------------------------------
IMP = [i / 10 for i in range(10)]  # 0.0 .. 0.9
GEN = [0.95, 0.85, 0.5]


def _tar(far):
    return M.tar_at_far(GEN + IMP, [1] * len(GEN) + [0] * len(IMP), far)


def test_tar_at_far_admits_floor_far_n_impostors():
    p = _tar(0.1)  # k = 1: only the 0.9 impostor may pass; threshold just above 0.8
    assert 0.8 < p.threshold < 0.8 + 1e-6
    assert p.n_false_accepts == 1 and p.far_achieved == pytest.approx(0.1)
    assert p.tar == pytest.approx(2 / 3)
    assert p.n_impostor == 10 and p.n_genuine == 3 and p.resolvable
    p = _tar(0.5)  # k = 5: 0.5 .. 0.9 pass
    assert p.n_false_accepts == 5 and p.tar == 1.0


def test_tar_at_far_below_resolution_says_so():
    p = _tar(0.01)  # 0.01 * 10 impostors < 1: no impostor may pass
    assert p.threshold > 0.9 and p.n_false_accepts == 0 and p.far_achieved == 0.0
    assert p.tar == pytest.approx(1 / 3)
    assert not p.resolvable
    assert p.to_dict()["resolvable"] is False and p.to_dict()["n_impostor"] == 10


def test_threshold_at_far_never_splits_ties():
    t, k = M.threshold_at_far([0.5, 0.5, 0.5, 0.5], 0.5)
    assert k == 2 and t > 0.5  # two of four may pass, but they tie with the others: none passes
    p = M.tar_at_far([0.5, 0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0, 0], 0.5)
    assert p.n_false_accepts == 0 and p.tar == 0.0


def test_threshold_at_far_of_one_accepts_everything():
    t, k = M.threshold_at_far([0.3, 0.1, 0.2], 1.0)
    assert t == 0.1 and k == 3


def test_threshold_holds_when_the_same_pair_is_scored_in_float32():
    imp = np.array([0.92577546, 0.5, 0.1], dtype=np.float64)
    t, _ = M.threshold_at_far(imp, 0.1)  # k = 0: just above the top impostor
    assert float(np.float32(imp[0])) < t and imp[0] < t


def test_tar_at_far_without_impostors_is_nan():
    p = M.tar_at_far([0.9, 0.8], [1, 1], 1e-3)
    assert math.isnan(p.threshold) and math.isnan(p.tar) and p.n_impostor == 0 and not p.resolvable
    assert p.to_dict()["tar"] is None  # JSON-safe


def test_tar_at_far_without_genuines_still_gives_a_threshold():
    p = M.tar_at_far([0.2, 0.1], [0, 0], 0.5)
    assert p.threshold > 0.1 and math.isnan(p.tar)


def test_far_frr_at_threshold():
    far, frr = M.far_frr_at(GEN + IMP, [1] * 3 + [0] * 10, 0.5)
    assert far == pytest.approx(0.5) and frr == 0.0  # 0.5 itself is accepted


# --- accuracy and the fold protocol -------------------------------------------------------------
def test_best_threshold_accuracy_takes_the_lowest_best_and_the_midpoint():
    acc, t = M.best_threshold_accuracy([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    # accept >= 0.35 and accept >= 0.8 both get 3 of 4 right; the lower wins, midpoint of 0.1 and 0.35
    assert acc == 0.75 and t == pytest.approx(0.225)


def test_best_threshold_accuracy_degenerate():
    assert M.best_threshold_accuracy([0.5, 0.5], [1, 0]) == (0.5, 0.5)  # constant: accept all
    acc, t = M.best_threshold_accuracy([0.3, 0.7], [0, 0])  # all impostors: reject all
    assert acc == 1.0 and t > 0.7
    assert M.best_threshold_accuracy([0.3, 0.7], [1, 1]) == (1.0, 0.3)  # all genuine


def test_kfold_accuracy_by_hand():
    scores = [0.9, 0.2, 0.6, 0.5, 0.7, 0.65]
    labels = [1, 0, 1, 0, 1, 0]
    folds = [1, 1, 2, 2, 3, 3]
    kf = M.kfold_accuracy(scores, labels, folds)
    # fold 1 trains on {.6+,.5-,.7+,.65-}: best accept >= .6 -> t .55; fold 1 all right
    # fold 2 trains on {.9+,.2-,.7+,.65-}: accept >= .7 -> t .675; .6 genuine rejected
    # fold 3 trains on {.9+,.2-,.6+,.5-}: accept >= .6 -> t .55; .65 impostor accepted
    assert [f.threshold for f in kf.folds] == pytest.approx([0.55, 0.675, 0.55])
    assert [f.accuracy for f in kf.folds] == [1.0, 0.5, 0.5]
    assert kf.mean == pytest.approx(2 / 3)
    assert kf.std == pytest.approx(math.sqrt(1 / 18))  # population std of 1, .5, .5
    assert kf.stderr == pytest.approx(math.sqrt(1 / 18) / math.sqrt(3))
    assert [f["fold"] for f in kf.to_dict()["folds"]] == [1, 2, 3]


def test_kfold_needs_two_folds():
    with pytest.raises(ValueError):
        M.kfold_accuracy([0.1, 0.9], [0, 1], [1, 1])


def test_kfold_never_tunes_on_the_test_fold():
    # Fold 2 alone would be separated at 0.5, but the other folds put the threshold at 0.85.
    scores = [0.9, 0.8, 0.9, 0.8, 0.6, 0.4]
    labels = [1, 0, 1, 0, 1, 0]
    kf = M.kfold_accuracy(scores, labels, [1, 1, 3, 3, 2, 2])
    fold2 = next(f for f in kf.folds if f.fold == 2)
    assert fold2.threshold == pytest.approx(0.85) and fold2.accuracy == 0.5


# --- per group ------------------------------------------------------------------------------------
def test_group_error_rates_and_ratios():
    scores = [0.6, 0.4, 0.55, 0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.45, 0.6, 0.1, 0.2, 0.3]
    labels = [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    groups = ["A"] * 4 + ["B"] * 4 + ["C"] * 6
    g = M.group_error_rates(scores, labels, groups, 0.5)
    rows = {r.group: r for r in g["groups"]}
    assert (rows["A"].fmr, rows["A"].fnmr) == (0.5, 0.5)
    assert (rows["B"].fmr, rows["B"].fnmr) == (0.0, 0.0)
    assert rows["C"].fmr == 0.25 and rows["C"].fnmr == 0.5 and rows["C"].n_impostor == 4
    assert g["fmr_max_min_ratio"] == math.inf  # B has no false matches: unbounded
    g2 = M.group_error_rates(scores[:4] + scores[8:], labels[:4] + labels[8:], groups[:4] + groups[8:], 0.5)
    assert g2["fmr_max_min_ratio"] == pytest.approx(2.0) and g2["fnmr_max_min_ratio"] == 1.0


def test_group_ratio_needs_two_groups():
    g = M.group_error_rates([0.6, 0.4], [1, 0], ["x", "x"], 0.5)
    assert math.isnan(g["fmr_max_min_ratio"])


# --- identification ---------------------------------------------------------------------------------
def test_ranks_from_scores_counts_ties_against_the_probe():
    scores = [[0.9, 0.5, 0.1], [0.3, 0.8, 0.8], [0.2, 0.2, 0.9], [0.5, 0.5, 0.5]]
    ranks = M.ranks_from_scores(scores, [0, 2, 1, -1])
    assert ranks.tolist() == [1, 2, 3, math.inf]


def test_cmc_by_hand():
    assert M.cmc([1, 2, math.inf, 1, 5], 5).tolist() == pytest.approx([0.4, 0.6, 0.6, 0.6, 0.8])
    assert np.isnan(M.cmc([], 3)).all()
    with pytest.raises(ValueError):
        M.cmc([1], 0)


NONMATED = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]


def test_fnir_at_fpir_the_frvt_way():
    mated_scores = [0.95, 0.85, 0.81, 0.99]
    mated_ranks = [1, 1, 1, 2]  # the last is found, but not at rank 1: a miss at any threshold
    p = M.fnir_at_fpir(mated_scores, mated_ranks, NONMATED, 0.1)
    assert 0.8 < p.threshold < 0.8 + 1e-6  # one of ten strangers (0.9) may be returned
    assert p.fpir_achieved == pytest.approx(0.1)
    assert p.dir == 0.75 and p.fnir == pytest.approx(0.25) and p.resolvable
    p = M.fnir_at_fpir(mated_scores, mated_ranks, NONMATED, 0.01)
    assert p.threshold > 0.9 and p.fnir == pytest.approx(0.75) and not p.resolvable
    assert p.to_dict()["n_nonmated"] == 10


def test_fnir_at_a_larger_rank():
    p = M.fnir_at_fpir([0.95, 0.99], [1, 2], NONMATED, 0.1, rank=2)
    assert p.fnir == 0.0


def test_fnir_with_searches_that_returned_nothing():
    # Two strangers got no candidate at all; at FPIR 0.5 one of three may be a false positive.
    p = M.fnir_at_fpir([0.6], [1], [-math.inf, -math.inf, 0.5], 0.5)
    assert p.threshold == 0.5 and p.fpir_achieved == pytest.approx(1 / 3) and p.fnir == 0.0


def test_fnir_degenerate():
    p = M.fnir_at_fpir([0.9], [1], [], 0.1)
    assert math.isnan(p.fnir) and p.n_nonmated == 0 and not p.resolvable
    p = M.fnir_at_fpir([], [], NONMATED, 0.1)
    assert math.isnan(p.fnir) and p.n_mated == 0 and p.fpir_achieved == pytest.approx(0.1)


def test_far_key():
    assert [M.far_key(f) for f in (1e-1, 1e-2, 1e-3, 1e-4)] == ["1e-1", "1e-2", "1e-3", "1e-4"]
