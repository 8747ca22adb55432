"""Protocols, calibration, perturbations and the report with synthetic embeddings (no models, no data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import faceprint.evaluation as E
from faceprint import models
from faceprint.errors import InvalidArgumentError
from faceprint.evaluation import calibrate as C
from faceprint.evaluation import metrics as M
from faceprint.evaluation import perturb as P
from faceprint.types import Box


# --- reading files ------------------------------------------------------------------------------
def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_pairs_with_folds_groups_and_a_default_root(tmp_path):
    path = write(tmp_path, "p.csv", "path_a,path_b,same,fold,light\na.jpg,b.jpg,1,1,day\na.jpg,c.jpg,0,2,night\n")
    pairs = E.read_pairs(path, group_by="light")
    assert pairs.same.tolist() == [True, False] and pairs.folds.tolist() == [1, 2]
    assert pairs.groups == ("day", "night") and pairs.root == tmp_path
    assert pairs.images() == ["a.jpg", "b.jpg", "c.jpg"]
    assert pairs.resolve("a.jpg") == str(tmp_path / "a.jpg")


@pytest.mark.parametrize(
    "text,message",
    [
        ("path_a,path_b\na,b\n", "same"),
        ("path_a,path_b,same\na,b,maybe\n", "not 1/0"),
        ("path_a,path_b,same\n", "no pairs"),
        ("path_a,path_b,same,fold\na,b,1,1\na,c,0,\n", "fold"),
    ],
)
def test_read_pairs_refuses_bad_files(tmp_path, text, message):
    with pytest.raises(InvalidArgumentError, match=message):
        E.read_pairs(write(tmp_path, "p.csv", text))


def test_group_by_must_name_a_column(tmp_path):
    with pytest.raises(InvalidArgumentError, match="no such column"):
        E.read_pairs(write(tmp_path, "p.csv", "path_a,path_b,same\na,b,1\n"), group_by="age")


def test_subsample_is_even_and_keeps_folds():
    same = np.array([True] * 6 + [False] * 6)
    pairs = E.PairList(tuple(f"a{i}" for i in range(12)), tuple(f"b{i}" for i in range(12)), same,
                       root=Path("."), source="x", folds=np.repeat([1, 2], 6))
    sub = pairs.subsample(4)
    assert len(sub) == 4 and sub.same.sum() == 2 and sorted(set(sub.folds.tolist())) == [1, 2]
    assert pairs.subsample(None) is pairs


def test_read_identities_and_conflicts(tmp_path):
    ids = E.read_identities(write(tmp_path, "i.csv", "path,identity\nx/1.jpg,x\nx/2.jpg,x\ny/1.jpg,y\nx/1.jpg,x\n"))
    assert ids.by_identity() == {"x": ["x/1.jpg", "x/2.jpg"], "y": ["y/1.jpg"]}
    with pytest.raises(InvalidArgumentError, match="both"):
        E.read_identities(write(tmp_path, "j.csv", "path,identity\na.jpg,x\na.jpg,y\n"))
    assert E.csv_kind(tmp_path / "i.csv") == "identities"
    with pytest.raises(InvalidArgumentError, match="expected columns"):
        E.csv_kind(write(tmp_path, "k.csv", "file,name\na,b\n"))


def test_holdout_is_evenly_spread():
    names = [f"s{i:02d}" for i in range(10)]
    assert E.held_out_names(names, 0.2) == {"s04", "s09"}
    assert E.held_out_names(names, 0.0) == set()


# --- perturbations -----------------------------------------------------------------------------------
def test_parse_perturbations():
    ps = P.parse_perturbations(["blur", "jpeg:20", "occlusion:high", "blur:2"])
    assert [p.label for p in ps] == ["blur:1", "blur:2", "blur:4", "jpeg:20", "occlusion:0.6"]
    with pytest.raises(InvalidArgumentError, match="unknown perturbation"):
        P.parse_perturbations(["rain:2"])
    with pytest.raises(InvalidArgumentError, match="between"):
        P.parse_perturbations(["jpeg:0"])
    with pytest.raises(InvalidArgumentError, match="not a number"):
        P.parse_perturbations(["noise:lots"])


@pytest.mark.parametrize("spec", ["blur:2", "jpeg:10", "downscale:4", "noise:20", "occlusion:0.5"])
def test_perturbations_keep_shape_and_change_pixels(spec):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)
    (p,) = P.parse_perturbations([spec])
    out = p.apply(img, seed_text="a.jpg")
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)
    assert np.array_equal(out, p.apply(img, seed_text="a.jpg"))  # deterministic


def test_occlusion_covers_the_bottom_of_the_face_box():
    img = np.zeros((100, 100, 3), np.uint8)
    out = P.parse_perturbations(["occlusion:0.5"])[0].apply(img, face_box=Box(20, 20, 60, 60))
    assert (out[40:60, 20:60] == 128).all() and (out[:40] == 0).all() and (out[60:] == 0).all()


# --- verification with synthetic embeddings ----------------------------------------------------------
def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def identity_vectors(paths, noise=0.05, seed=0):
    """Images of one folder are one person: its base vector plus a little noise."""
    rng = np.random.default_rng(seed)
    base: dict[str, np.ndarray] = {}
    out = {}
    for p in paths:
        who = p.split("/")[0]
        if who not in base:
            base[who] = rng.normal(size=16)
        out[p] = unit(base[who] + noise * rng.normal(size=16))
    return out


def fake_run(vectors, status=None):
    records = {}
    for p, v in vectors.items():
        st = (status or {}).get(p, "ok")
        records[p] = E.ImageRecord(p, st, None if st == "unreadable" else v, 1, Box(5, 5, 15, 15), (20, 20))
    return E.EmbeddingRun(E.PipelineSpec(), records, E.Fallback(), 2.0, 1)


@pytest.fixture
def pairs():
    rows = []
    people = [f"p{i}" for i in range(12)]
    for i, who in enumerate(people):
        rows.append((f"{who}/1.jpg", f"{who}/2.jpg", True, 1 + i % 3))
        other = people[(i + 1) % len(people)]
        rows.append((f"{who}/1.jpg", f"{other}/2.jpg", False, 1 + i % 3))
    return E.PairList(tuple(r[0] for r in rows), tuple(r[1] for r in rows), np.array([r[2] for r in rows]),
                      root=Path("/data"), source="synthetic.csv", folds=np.array([r[3] for r in rows]),
                      groups=tuple("even" if r[3] % 2 == 0 else "odd" for r in rows), group_by="parity",
                      n_listed=len(rows))


@pytest.fixture
def fake_embedding(monkeypatch):
    calls = []

    def fake(paths, resolve, spec, *, perturbation=None, status=None, **kwargs):
        paths = list(dict.fromkeys(paths))
        calls.append((len(paths), perturbation))
        noise = 0.05 if perturbation is None else 0.05 + perturbation.strength
        return fake_run(identity_vectors(paths, noise=noise), status=status)

    from faceprint.evaluation import verification

    monkeypatch.setattr(verification, "embed_images", fake)
    return calls


def test_evaluate_pairs_gives_the_issue_json_fields(pairs, fake_embedding):
    spec = E.PipelineSpec.create()  # the default models, whichever are installed
    result = E.evaluate_pairs(pairs, spec, perturbations=P.parse_perturbations(["blur:4"]))
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strictly JSON: no NaN
    for key, kind in {"model": str, "n_pairs": int, "n_images": int, "failures": int, "accuracy": float,
                      "accuracy_std": float, "auc": float, "eer": float, "tar_at_far": dict, "calibration": list,
                      "images_per_s": float}.items():
        assert isinstance(doc[key], kind), key
    assert doc["model"] == models.get_card(spec.model).id and doc["n_pairs"] == 24 and doc["n_images"] == 24
    assert set(doc["tar_at_far"]) == {"1e-1", "1e-2", "1e-3"}
    assert doc["accuracy"] == 1.0 and doc["auc"] == 1.0 and doc["optimistic"] is False
    assert {"far_nominal", "threshold", "far_measured", "frr_measured"} <= set(doc["calibration"][0])
    assert [r["far_nominal"] for r in doc["calibration"]] == [0.1, 0.01, 0.001, 0.0001, 1e-05]
    assert not doc["calibration"][2]["resolvable"]  # 12 impostor pairs cannot show FAR 1e-3
    assert doc["groups"]["column"] == "parity" and {g["group"] for g in doc["groups"]["per_group"]} == {"even", "odd"}
    (pert,) = doc["perturbations"]
    assert pert["label"] == "blur:4" and pert["accuracy"] < 1.0  # heavy noise on the probe side
    assert fake_embedding[1] == (12, P.parse_perturbations(["blur:4"])[0])  # only the 12 probe images again


def test_without_folds_accuracy_is_flagged_optimistic(pairs, fake_embedding):
    from dataclasses import replace

    doc = E.evaluate_pairs(replace(pairs, folds=None), E.PipelineSpec.create()).to_dict()
    assert doc["optimistic"] is True and doc["accuracy_std"] is None and "optimistic" in doc["accuracy_protocol"]


def test_unreadable_images_score_lowest_and_count_but_pairs_stay(pairs):
    vectors = identity_vectors(pairs.images())
    run = fake_run(vectors, status={"p0/1.jpg": "unreadable", "p1/2.jpg": "no_face"})
    scores = E.pair_scores(run, run, pairs)
    assert len(scores) == len(pairs)
    assert (scores[[0, 1]] == E.UNREADABLE_SCORE).all()  # both pairs of p0/1.jpg
    assert run.failures == 2 and run.failure_dict()["no_face"] == 1 and run.failure_dict()["unreadable"] == 1


def test_fallback_estimate_from_found_faces():
    recs = [E.ImageRecord(f"{i}", "ok", None, 1, Box(30, 30, 70, 70), (100, 100)) for i in range(3)]
    recs.append(E.ImageRecord("x", "no_face", None, 0, None, (100, 100)))
    fb = E.Fallback.estimate(recs)
    assert fb.fraction == pytest.approx(0.4) and fb.offset == (0.0, 0.0) and "3 faces" in fb.source
    assert fb.box(200, 100).to_list() == [80.0, 30.0, 120.0, 70.0]
    assert E.Fallback.estimate([]).fraction == 0.45


def test_fallback_chip_is_the_expected_box_scaled():
    from faceprint.align import DLIB_RESNET_CHIP

    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 40:60] = 255  # a white square at the centre
    chip = E.fallback_chip(img, Box(40, 40, 60, 60), DLIB_RESNET_CHIP)
    assert chip.shape == (150, 150, 3)
    assert chip[75, 75].tolist() == [255, 255, 255] and chip[5, 5].tolist() == [0, 0, 0]
    assert chip[30:120, 75].min() == 255 and chip[:20, 75].max() == 0  # the box: the middle 100 px (padding 0.25)


def test_candidate_configurations_go_from_the_given_to_the_cheapest():
    spec = E.PipelineSpec.create()
    cands = E.candidate_configurations(spec)
    labels = [c.label for c in cands]
    assert labels[0] == f"{spec.detector} upsample=auto max_side=1600"
    assert {c.model for c in cands} == {spec.model} and {c.landmarks for c in cands} == {spec.landmarks}
    assert labels[-1] == "no detector (centre crop)"
    assert "haar upsample=0 max_side=480" in labels and len(labels) == len(set(labels))


# --- calibration -------------------------------------------------------------------------------------
def brute_force(emb, labels, different=None):
    gen, imp = [], []
    for i in range(len(emb)):
        for j in range(i + 1, len(emb)):
            s = float(np.clip(emb[i].astype(np.float64) @ emb[j].astype(np.float64), -1, 1))
            if labels[i] == labels[j]:
                gen.append(s)
            elif different is None or (min(labels[i], labels[j]), max(labels[i], labels[j])) in different:
                imp.append(s)
    return np.array(gen), np.array(imp)


@pytest.mark.parametrize("block", [2048, 7])
def test_calibrate_embeddings_matches_brute_force(monkeypatch, block):
    monkeypatch.setattr(C, "_BLOCK", block)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 8, 40)
    emb = np.stack([unit(v) for v in rng.normal(size=(40, 8)) + 2 * np.eye(8)[labels]])
    cal = C.calibrate_embeddings(emb, labels, (1e-1, 1e-2))
    gen, imp = brute_force(emb, labels)
    assert cal.n_genuine == gen.size and cal.n_impostor == imp.size
    for far in (1e-1, 1e-2):
        t, _ = M.threshold_at_far(imp, far)
        assert cal.thresholds[far] == t
        assert cal.frr[far] == pytest.approx(float((gen < t).mean()))
        assert cal.far_measured[far] == pytest.approx(float((imp >= t).mean()))
    assert cal.impostor_mean == pytest.approx(imp.mean()) and cal.genuine_mean == pytest.approx(gen.mean())


def test_calibrate_embeddings_only_known_different_labels():
    rng = np.random.default_rng(4)
    labels = np.array([0, 0, 1, 1, 2, 2, 3])
    emb = np.stack([unit(v) for v in rng.normal(size=(7, 8))])
    cal = C.calibrate_embeddings(emb, labels, (0.5,), different={(0, 1), (2, 3)})
    gen, imp = brute_force(emb, labels, {(0, 1), (2, 3)})
    assert cal.n_impostor == imp.size == 4 + 2 and cal.n_genuine == 3
    assert cal.thresholds[0.5] == M.threshold_at_far(imp, 0.5)[0]


def test_calibrate_csv_from_pairs_forms_every_impostor_pair_the_labels_allow(tmp_path, monkeypatch):
    # a ~ a2 ~ a3 (one person), b ~ b2; a vs b listed different; c vs d listed different; e never compared.
    text = ("path_a,path_b,same\na/1,a/2,1\na/2,a/3,1\nb/1,b/2,1\na/1,b/1,0\nc/1,d/1,0\ne/1,e/2,1\n")
    path = write(tmp_path, "pairs.csv", text)
    monkeypatch.setattr(C, "embed_images", lambda paths, resolve, spec, **kw: fake_run(identity_vectors(paths)))
    result = C.calibrate_csv(path, E.PipelineSpec.create(), fars=(1e-1,))
    assert result.source_kind == "pairs"
    assert result.scores.n_genuine == 3 + 1 + 1  # a: 3 pairs, b: 1, e: 1
    assert result.scores.n_impostor == 3 * 2 + 1  # every a x every b, and c x d; e against nobody
    assert result.n_listed_impostor_pairs == 2
    with pytest.raises(InvalidArgumentError, match="same-person pairs join them"):
        C.calibrate_csv(write(tmp_path, "bad.csv", "path_a,path_b,same\na,b,1\nb,c,1\na,c,0\n"),
                        E.PipelineSpec.create())


def test_calibration_card_is_a_valid_onnx_sidecar_and_leaves_out_unresolvable_fars(tmp_path, monkeypatch):
    from faceprint.models.onnx import calibration_from_dict

    lines = ["path,identity"] + [f"p{i}/{k}.jpg,p{i}" for i in range(20) for k in range(3)]
    path = write(tmp_path, "ids.csv", "\n".join(lines) + "\n")
    monkeypatch.setattr(C, "embed_images", lambda paths, resolve, spec, **kw: fake_run(identity_vectors(paths)))
    result = C.calibrate_csv(path, E.PipelineSpec.create(), dataset="my faces")
    assert result.scores.n_impostor == 60 * 59 // 2 - 20 * 3 == 1710
    assert result.card_fars == [1e-2, 1e-3]  # 1e-4 * 1710 < 1 impostor pair
    sidecar = tmp_path / "model.json"
    sidecar.write_text(json.dumps({"colour": "bgr", "calibration": {"thresholds": {"1e-3": 0.1}}}))
    doc = C.write_card(sidecar, result)
    on_disk = json.loads(sidecar.read_text())
    assert on_disk == doc and on_disk["colour"] == "bgr"  # the sidecar's other keys are kept
    cal = calibration_from_dict(on_disk["calibration"])
    assert set(cal.thresholds) == {1e-2, 1e-3} and cal.n_impostor_pairs == 1710 and cal.n_identities == 20
    assert cal.dataset.startswith("my faces") and "1e-4" not in json.dumps(on_disk["calibration"]["thresholds"])
    assert "Not calibrated" in cal.notes and "0.0001" in cal.notes
    assert result.to_dict()["rows"][-1] == {**result.to_dict()["rows"][-1], "resolvable": False, "in_card": False}


def test_calibration_with_too_few_pairs_writes_nothing(tmp_path, monkeypatch):
    path = write(tmp_path, "ids.csv", "path,identity\na/1,a\na/2,a\nb/1,b\n")
    monkeypatch.setattr(C, "embed_images", lambda paths, resolve, spec, **kw: fake_run(identity_vectors(paths)))
    result = C.calibrate_csv(path, E.PipelineSpec.create())
    with pytest.raises(InvalidArgumentError, match="can be resolved"):
        C.write_card(tmp_path / "card.json", result)
    assert not (tmp_path / "card.json").exists()


# --- the report (HTML only; the browser test is in tests/integration) -------------------------------
def test_verification_report_is_self_contained(pairs, fake_embedding):
    from faceprint.evaluation.report import verification_report

    result = E.evaluate_pairs(pairs, E.PipelineSpec.create(), perturbations=P.parse_perturbations(["noise:0.5"]))
    page = verification_report(result)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    plots = re.findall(r'<img class="plot"[^>]*src="data:image/png;base64,', page)
    assert len(plots) >= 4  # ROC, DET, histogram, perturbation
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing outside the page
    assert "Calibration check" in page and "Worst errors" in page and "LFW carries no" not in page
    assert "parity" in page


def test_an_impostor_pair_scoring_one_cannot_be_calibrated_away():
    v = unit([1.0, 0.0, 0.0])
    emb = np.stack([v, v, unit([0.0, 1.0, 0.0]), unit([0.0, 0.0, 1.0])])  # rows 0 and 1: one picture, two names
    cal = C.calibrate_embeddings(emb, [0, 1, 2, 3], (0.1,))
    assert cal.thresholds[0.1] == 1.0  # capped: a cosine never exceeds 1
    assert cal.far_measured[0.1] == pytest.approx(1 / 6)  # the FAR it really gives, above the 0.1 asked
