"""Compare face clustering algorithms on real faces: which one groups unknown faces into people.

    python bench/cluster.py [--model dlib-resnet34] [--cache] [--quick] [--no-synthetic] [--jobs 2] [--out PATH]

``--model`` names the embedder (default: the library's default, fr-feature with the Faceplugin
pack installed); the detector and landmarks follow it (:func:`faceprint.models.defaults.resolve`:
hog + dlib5 for dlib-resnet34, fr-detect + fr-landmark for fr-feature), and every threshold is
that model's card's (:func:`faceprint.clustering.threshold_for_far`). With dlib-resnet34, about
2.5 min on 2 cores from cold (~35 s of it embedding), ~1.5 min with a warm ``--cache``; with
fr-feature about 5 min of embedding more. ``--quick`` runs 4 FARs instead of 7,
``--no-synthetic`` skips the synthetic 4k/12k-face check.

Prints ONE JSON document (progress goes to stderr) and writes it to
bench/results_cluster.json for dlib-resnet34, bench/results_cluster_<model>.json for another
model (``--out`` to change, ``--out -`` not to write). Not a test.

Data (``FACEPRINT_SHARED_DATA``, default ``../shared/data``):

* ``lfw_dev``: all 3,825 images of ``lfw_dev/images`` (1,708 people, 1,214 of them with one
  image). Every face the model's pipeline (e.g. hog + dlib5 + dlib-resnet34) finds goes into the
  clustering input, each with its image as its photo id (cannot-link). Only the face nearest
  the image centre carries the image's identity label; the other (background) faces are
  *clustered but not scored* -- they are unknown people, which is realistic for a photo
  collection, and they can only hurt the scored faces by pulling them into wrong clusters.
  Images where no face is found are left out (counted in ``images_without_face``).
* ``orl_faces``: 400 greyscale 92x112 images of 40 people. Images where the detector finds no face are
  embedded from a centre crop (:func:`faceprint.evaluation.embedding.embed_images`' fallback);
  the count is reported. Every image is its own photo id.
* ``bald_guys``: dlib's ``bald_guys.jpg`` collage; dlib's example says clustering its faces
  should give 4 people. The collage shows each person several times in ONE image, so here the
  photo-id constraint is switched off (it would forbid any two of its faces to share a
  cluster). Faces are not labelled individually: only the cluster count is checked.

Embeddings are cached in ``/tmp/faceprint-cluster-<name>-<hash>.npz`` (keyed by the data set, its
file list and the pipeline's models) with ``--cache``.

Scoring (see :mod:`faceprint.clustering.metrics`): pairwise and BCubed precision/recall/F1
over the scored faces, with every unassigned (-1) face counted as its own singleton; predicted
clusters are counted over the scored faces (clusters holding at least one scored face).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
DATA = Path(os.environ.get("FACEPRINT_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: The model whose run is bench/results_cluster.json (the one the clustering defaults were chosen with).
REFERENCE_MODEL = "dlib-resnet34"


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- data ----------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    embeddings: np.ndarray  # (N, D) float32, every face fed to the clustering
    photo_ids: np.ndarray | None  # (N,) int, or None: no cannot-link
    truth: np.ndarray  # (N,) int identity, -1: not scored
    face_size: np.ndarray  # (N,) px (side of the box); nan for a fallback crop
    n_people: int  # distinct identities among the scored faces
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> np.ndarray:
        return self.truth >= 0


def _read_ids(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["path"] for r in rows], [r["identity"] for r in rows]


def pipeline_of(model: str) -> str:
    """detector + landmarks + embedder, as :func:`faceprint.models.defaults.resolve` completes them."""
    from faceprint.models.defaults import resolve

    return " + ".join(resolve(embedder=model).to_dict().values())


def _cache_path(name: str, files: list[str], model: str, extra: str = "") -> Path:
    h = hashlib.sha1("\n".join([name, pipeline_of(model), extra, *files]).encode()).hexdigest()[:16]
    return Path("/tmp") / f"faceprint-cluster-{name}-{h}.npz"


def _save(path: Path, ds: Dataset) -> None:
    np.savez(path, embeddings=ds.embeddings, photo_ids=np.array([]) if ds.photo_ids is None else ds.photo_ids,
             truth=ds.truth, face_size=ds.face_size, n_people=ds.n_people, info=json.dumps(ds.info))


def _load(path: Path, name: str) -> Dataset:
    z = np.load(path)
    pid = z["photo_ids"]
    return Dataset(name, z["embeddings"], pid if pid.size else None, z["truth"], z["face_size"],
                   int(z["n_people"]), json.loads(str(z["info"])))


def _centre_index(faces, size: tuple[int, int]) -> int:
    cx, cy = size[0] / 2.0, size[1] / 2.0
    d = [(f.face.box.center[0] - cx) ** 2 + (f.face.box.center[1] - cy) ** 2 for f in faces]
    return int(np.argmin(d))


def embed_all_faces(paths: list[str], identities: list[str] | None, jobs: int, model: str) -> Dataset:
    """Every face of every image; the centre face carries the image's identity."""
    from faceprint import Analyzer

    ident_index = {n: i for i, n in enumerate(sorted(set(identities)))} if identities else {}
    emb, pid, truth, size = [], [], [], []
    no_face = unreadable = background = 0
    t0 = time.perf_counter()
    for i, analysis in enumerate(Analyzer(embedder=model).embed_many(paths, jobs=jobs)):
        if analysis.error is not None:
            unreadable += 1
            continue
        if not analysis.faces:
            no_face += 1
            continue
        centre = _centre_index(analysis.faces, analysis.image_size)
        for j, f in enumerate(analysis.faces):
            emb.append(f.embedding.astype(np.float32))
            pid.append(i)
            truth.append(ident_index[identities[i]] if identities and j == centre else -1)
            size.append(f.face.size)
            background += j != centre
        if (i + 1) % 500 == 0:
            log(f"  embedded {i + 1}/{len(paths)} images")
    truth_a = np.array(truth, dtype=np.int64)
    info = {
        "images": len(paths),
        "faces": len(emb),
        "images_without_face": no_face,
        "images_unreadable": unreadable,
        "background_faces_not_scored": background,
        "embed_seconds": round(time.perf_counter() - t0, 1),
    }
    return Dataset("", np.asarray(emb, np.float32).reshape(len(emb), -1), np.array(pid, np.int64), truth_a,
                   np.array(size, np.float64), len(set(truth_a[truth_a >= 0].tolist())), info)


def load_lfw(jobs: int, cache: bool, model: str) -> Dataset:
    root = DATA / "lfw_dev"
    files, ids = _read_ids(root / "identities.csv")
    cp = _cache_path("lfw_dev", files, model)
    if cache and cp.exists():
        return _load(cp, "lfw_dev")
    log(f"lfw_dev: embedding {len(files)} images")
    ds = embed_all_faces([str(root / f) for f in files], ids, jobs, model)
    ds.name = "lfw_dev"
    ds.info["identities_listed"] = len(set(ids))
    if cache:
        _save(cp, ds)
    return ds


def load_orl(jobs: int, cache: bool, model: str) -> Dataset:
    from faceprint.evaluation import PipelineSpec, embed_images

    root = DATA / "orl_faces"
    files, ids = _read_ids(root / "identities.csv")
    cp = _cache_path("orl_faces", files, model, "fallback")
    if cache and cp.exists():
        return _load(cp, "orl_faces")
    log(f"orl_faces: embedding {len(files)} images")
    t0 = time.perf_counter()
    run = embed_images(files, lambda p: str(root / p), PipelineSpec.create(model=model), jobs=jobs)
    vec, present = run.matrix(files)
    ident_index = {n: i for i, n in enumerate(sorted(set(ids)))}
    truth = np.array([ident_index[n] for n in ids], np.int64)
    truth[~present] = -1
    sizes = np.array([math.sqrt(r.box.area) if r.status == "ok" and r.box else np.nan
                      for r in (run.records[f] for f in files)])
    info = {
        "images": len(files),
        "faces": int(present.sum()),
        "images_face_detected": run.count("ok"),
        "images_centre_crop_fallback": run.count("no_face"),
        "images_unreadable": run.count("unreadable"),
        "fallback": run.fallback.to_dict(),
        "embed_seconds": round(time.perf_counter() - t0, 1),
    }
    ds = Dataset("orl_faces", vec[present], np.arange(int(present.sum()), dtype=np.int64), truth[present],
                 sizes[present], len(set(truth[present].tolist())), info)
    if cache:
        _save(cp, ds)
    return ds


def load_bald_guys(cache: bool, model: str) -> Dataset:
    path = DATA / "dlib_examples" / "images" / "bald_guys.jpg"
    cp = _cache_path("bald_guys", [str(path)], model)
    if cache and cp.exists():
        ds = _load(cp, "bald_guys")
        ds.info.pop("background_faces_not_scored", None)
        return ds
    ds = embed_all_faces([str(path)], None, 1, model)
    ds.info.pop("background_faces_not_scored", None)
    ds.name = "bald_guys"
    ds.photo_ids = None
    ds.n_people = 4
    ds.info["note"] = "a collage: one image, several faces per person; photo ids off; only the count is checked"
    if cache:
        _save(cp, ds)
    return ds


# --- runs ---------------------------------------------------------------------------------------
FARS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
QUICK_FARS = (1e-2, 1e-3, 1e-4, 1e-5)


def configs(fars: tuple[float, ...]) -> list[tuple[str, dict[str, Any], float | None]]:
    """(algorithm, params, far) to run; far None: the algorithm takes no threshold."""
    out: list[tuple[str, dict[str, Any], float | None]] = []
    for far in fars:
        out += [
            ("chinese_whispers", {}, far),
            ("chinese_whispers", {"weighted": False}, far),
            ("dlib_chinese_whispers", {}, far),
            ("dbscan", {"min_samples": 2}, far),
            ("dbscan", {"min_samples": 3}, far),
            ("agglomerative", {"linkage": "average"}, far),
            ("agglomerative", {"linkage": "complete"}, far),
        ]
    out += [("hdbscan", {"min_cluster_size": m}, None) for m in (2, 3, 5)]
    return out


def label(algorithm: str, params: dict[str, Any]) -> str:
    extra = ",".join(f"{k}={v}" for k, v in params.items())
    return f"{algorithm}({extra})" if extra else algorithm


def run_one(ds: Dataset, model: str, algorithm: str, params: dict[str, Any], far: float | None,
            subset: np.ndarray | None = None):
    from faceprint.clustering import cluster, threshold_for_far

    x, pid, truth = ds.embeddings, ds.photo_ids, ds.truth
    if subset is not None:
        x, truth = x[subset], truth[subset]
        pid = None if pid is None else pid[subset]
    t = threshold_for_far(far, model, dim=x.shape[1]) if far is not None else None
    t0 = time.perf_counter()
    if far is None:
        res = cluster(x, algorithm, threshold=0.0, photo_ids=pid, **params)  # threshold unused (hdbscan)
    else:
        res = cluster(x, algorithm, far=far, model=model, photo_ids=pid, **params)
    wall = time.perf_counter() - t0
    return res, truth, t, wall


def score_row(ds: Dataset, algorithm: str, params: dict[str, Any], far: float | None, res, truth, t, wall) -> dict:
    from faceprint.clustering import score_clustering

    row: dict[str, Any] = {
        "dataset": ds.name,
        "algorithm": algorithm,
        "config": label(algorithm, params),
        "far": far,
        "threshold": None if t is None else round(t, 5),
        "faces_clustered": res.n_items,
        "clusters_all_faces": res.n_clusters,
        "cannot_link_moved": res.n_moved,
        "seconds": round(wall, 3),
    }
    if ds.name == "bald_guys":
        sizes = res.sizes()
        row.update(true_people=ds.n_people, predicted_clusters=res.n_clusters,
                   predicted_clusters_2plus=int(np.count_nonzero(sizes >= 2)), cluster_sizes=sizes.tolist(),
                   unassigned=res.n_unassigned, count_ok=int(np.count_nonzero(sizes >= 2)) == ds.n_people
                   and res.n_clusters == ds.n_people)
        return row
    scored = truth >= 0
    sc = score_clustering(truth[scored], res.labels[scored])
    row.update(sc.to_dict())
    return row


def size_buckets(ds: Dataset, res, truth: np.ndarray, t: float | None) -> list[dict]:
    """Per predicted-cluster size (all faces it holds): how many are pure, pairwise precision
    of their scored faces, and whether they are cliques (every pair >= t)."""
    from faceprint.clustering import pairwise

    labels = res.labels
    sizes = res.sizes()
    out = []
    for lo, hi in ((2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 10**9)):
        which = np.flatnonzero((sizes >= lo) & (sizes <= hi))
        if which.size == 0:
            continue
        pure = judged = cliques = 0
        sel = np.isin(labels, which) & (truth >= 0)
        for c in which:
            m = np.flatnonzero(labels == c)
            tm = truth[m][truth[m] >= 0]
            if tm.size >= 2:
                judged += 1
                pure += int(np.all(tm == tm[0]))
            if t is not None:
                s = ds.embeddings[m] @ ds.embeddings[m].T
                cliques += int((s[np.triu_indices(m.size, 1)] >= t - 1e-7).all())
        pw = pairwise(truth[sel], labels[sel])
        out.append({
            "size": f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"),
            "clusters": int(which.size),
            "clusters_with_2plus_scored": judged,
            "pure_share": round(pure / judged, 4) if judged else None,
            "pairwise_precision": None if math.isnan(pw.precision) else round(pw.precision, 4),
            "clique_share": round(cliques / which.size, 4) if t is not None else None,
        })
    return out


def machine() -> dict:
    import dlib
    import scipy
    import sklearn

    from machine import machine as describe

    return describe(scipy=scipy.__version__, scikit_learn=sklearn.__version__, dlib=dlib.__version__)


def rule_far(n_faces: int) -> float:
    """The FAR :class:`faceprint.clustering.people.People` uses for a collection of ``n_faces``."""
    from faceprint.clustering.people import FALSE_NEIGHBOURS, FAR_RANGE

    return float(np.clip(FALSE_NEIGHBOURS / max(n_faces, 1), *FAR_RANGE))


def assignment_check(ds: Dataset, model: str) -> dict[str, Any]:
    """People's assign step (:mod:`faceprint.clustering.people`) on lfw_dev's scored faces.

    Of each identity with 2+ faces, the first half (rounded up) forms a known person; the other
    faces, and the faces of one-image identities (no person of their own), are assigned as
    People does: score = mean of the top-3 similarities to a person's faces, assigned when it
    reaches the threshold at the collection's FAR and beats the runner-up by ASSIGN_MARGIN;
    accepted without a question from the threshold at FAR / ACCEPT_FACTOR, asked about down to
    FAR x ASK_FACTOR. Checks those constants against this model's scale of scores.
    """
    from faceprint.clustering import threshold_for_far
    from faceprint.clustering.people import ACCEPT_FACTOR, ASK_FACTOR, ASSIGN_MARGIN, FAR_RANGE

    idx = np.flatnonzero(ds.truth >= 0)
    truth, x = ds.truth[idx], ds.embeddings[idx]
    counts = np.bincount(truth)
    order = np.argsort(truth, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty(len(truth), np.int64)
    pos[order] = np.arange(len(truth)) - starts[truth[order]]
    known = (counts[truth] >= 2) & (pos < (counts[truth] + 1) // 2)
    people = np.unique(truth[known])
    sims = x[~known] @ x[known].T
    kt = truth[known]
    scores = np.empty((int((~known).sum()), len(people)), np.float32)
    for j, p in enumerate(people):
        s = np.sort(sims[:, kt == p], axis=1)
        scores[:, j] = s[:, -3:].mean(axis=1)
    top2 = np.sort(scores, axis=1)[:, -2:]
    best, gap = top2[:, 1], top2[:, 1] - top2[:, 0]
    correct = people[np.argmax(scores, axis=1)] == truth[~known]
    has_person = np.isin(truth[~known], people)

    lo = FAR_RANGE[0]
    far = rule_far(len(ds.embeddings))

    def counts_at(t: float, margin: float) -> dict[str, int]:
        a = (best >= t) & (gap >= margin)
        return {"assigned_correct": int((a & correct).sum()), "assigned_wrong": int((a & ~correct).sum()),
                "missed": int((has_person & ~(a & correct)).sum())}

    t = threshold_for_far(far, model)
    accept, ask = threshold_for_far(max(lo, far / ACCEPT_FACTOR), model), threshold_for_far(min(1e-1, far * ASK_FACTOR), model)
    assigned = (best >= t) & (gap >= ASSIGN_MARGIN)
    auto = assigned & (best >= accept)
    asked_assigned = assigned & ~auto
    asked_unsorted = ~assigned & (best >= ask)
    return {
        "known_people": len(people),
        "known_faces": int(known.sum()),
        "probes": int((~known).sum()),
        "probes_with_a_person": int(has_person.sum()),
        "collection_faces": len(ds.embeddings),
        "far": far,
        "threshold": round(t, 4),
        "accept_threshold": round(accept, 4),
        "ask_threshold": round(ask, 4),
        "by_margin": [{"margin": m, **counts_at(t, m)} for m in (0.0, ASSIGN_MARGIN, 0.01, 0.02, 0.05)],
        "by_far_at_assign_margin": [{"far": f, "threshold": round(threshold_for_far(f, model), 4),
                                     **counts_at(threshold_for_far(f, model), ASSIGN_MARGIN)}
                                    for f in (1e-3, 1e-4, 3e-5, 1e-5)],
        "auto_accepted": {"correct": int((auto & correct).sum()), "wrong": int((auto & ~correct).sum())},
        "asked_assigned": {"correct": int((asked_assigned & correct).sum()), "wrong": int((asked_assigned & ~correct).sum())},
        "asked_unsorted": {"right_person_offered": int((asked_unsorted & correct).sum()),
                           "wrong_person_offered": int((asked_unsorted & ~correct).sum())},
        "not_asked_but_had_a_person": int((has_person & ~assigned & ~asked_unsorted).sum()),
        "gap_median": {"correct_above_threshold": round(float(np.median(gap[(best >= t) & correct])), 4),
                       "wrong_above_threshold": (round(float(np.median(gap[(best >= t) & ~correct])), 4)
                                                 if ((best >= t) & ~correct).any() else None)},
    }


def best(rows: list[dict], dataset: str, key=lambda r: r["bcubed"]["f1"] or 0.0) -> dict:
    return max((r for r in rows if r["dataset"] == dataset), key=key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="embedder (default: the library's default); detector and landmarks follow it")
    ap.add_argument("--cache", action="store_true", help="read/write embeddings in /tmp")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help=f"FARs {QUICK_FARS} only")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic 4k/12k scale check")
    ap.add_argument("--out", default=None, help="default: bench/results_cluster.json for dlib-resnet34, "
                    "bench/results_cluster_<model>.json for another model; '-': do not write")
    args = ap.parse_args()
    from faceprint.clustering import DEFAULT_ALGORITHM, DEFAULT_FAR, threshold_for_far
    from faceprint.clustering.people import ACCEPT_FACTOR, ASK_FACTOR, ASSIGN_MARGIN, FALSE_NEIGHBOURS, FAR_RANGE
    from faceprint.models.defaults import default_models

    model = args.model or default_models().embedder
    out = args.out or str(ROOT / "bench" / ("results_cluster.json" if model == REFERENCE_MODEL else
                                            f"results_cluster_{model.replace('-', '_')}.json"))
    log(f"model {model}: {pipeline_of(model)}")

    t_start = time.perf_counter()
    info = machine()
    t0 = time.perf_counter()
    data = [load_lfw(args.jobs, args.cache, model), load_orl(args.jobs, args.cache, model), load_bald_guys(args.cache, model)]
    embed_s = time.perf_counter() - t0
    fars = QUICK_FARS if args.quick else FARS
    rows: list[dict] = []
    t0 = time.perf_counter()
    for ds in data:
        for algorithm, params, far in configs(fars):
            res, truth, t, wall = run_one(ds, model, algorithm, params, far)
            row = score_row(ds, algorithm, params, far, res, truth, t, wall)
            rows.append(row)
            bc = row.get("bcubed", {})
            log(f"{ds.name:10s} {row['config']:45s} far={far!s:7s} bcubed_f1={bc.get('f1')} "
                f"clusters={row['predicted_clusters']} {wall:.2f}s")
    sweep_s = time.perf_counter() - t0

    # Best configuration of each algorithm family per data set (by BCubed F1).
    table = []
    for ds in data[:2]:
        for cfg in dict.fromkeys(r["config"] for r in rows if r["dataset"] == ds.name):
            r = max((r for r in rows if r["dataset"] == ds.name and r["config"] == cfg),
                    key=lambda r: r["bcubed"]["f1"] or 0.0)
            table.append({k: r[k] for k in ("dataset", "config", "far", "threshold", "pairwise", "bcubed",
                                            "predicted_clusters", "predicted_clusters_2plus", "true_people",
                                            "true_people_2plus", "unassigned_share", "seconds")})

    # The default: best BCubed F1 on lfw_dev; orl_faces and bald_guys as checks.
    def at(ds: str, cfg: str, far: float | None) -> dict:
        return next(x for x in rows if x["dataset"] == ds and x["config"] == cfg and x["far"] == far)

    candidates = []
    for r in sorted((r for r in rows if r["dataset"] == "lfw_dev"), key=lambda r: -(r["bcubed"]["f1"] or 0.0))[:8]:
        orl, bald = at("orl_faces", r["config"], r["far"]), at("bald_guys", r["config"], r["far"])
        candidates.append({
            "config": r["config"], "far": r["far"], "threshold": r["threshold"],
            "lfw_dev_bcubed": r["bcubed"], "lfw_dev_pairwise": r["pairwise"],
            "orl_faces_bcubed": orl["bcubed"],
            "mean_bcubed_f1": round(((r["bcubed"]["f1"] or 0) + (orl["bcubed"]["f1"] or 0)) / 2, 4),
            "bald_guys_clusters_2plus": bald["predicted_clusters_2plus"], "bald_guys_sizes": bald["cluster_sizes"],
        })
    chosen = {
        "algorithm": DEFAULT_ALGORITHM,
        "params": "weighted=True, seed=0 (function defaults)",
        "far": DEFAULT_FAR,
        "threshold": round(threshold_for_far(DEFAULT_FAR, model), 5),
        "matches_best_lfw_dev_bcubed_f1": candidates[0]["config"] == DEFAULT_ALGORITHM
        and candidates[0]["far"] == DEFAULT_FAR,
        "reason": CHOSEN_REASON if model == REFERENCE_MODEL else
        f"chosen with {REFERENCE_MODEL} (bench/results_cluster.json); here rechecked with {model}",
        "candidates_top8_lfw_dev": candidates,
        "best_on_orl_faces": {k: best(rows, "orl_faces")[k] for k in ("config", "far", "bcubed")},
    }

    # Minimum cluster size (for starting a new person) and per-size purity, for the default.
    min_size: dict[str, Any] = {}
    for ds in data[:2]:
        entries = []
        for k in (1, 2, 3, 4, 5):
            res, truth, t, wall = run_one(ds, model, DEFAULT_ALGORITHM, {"min_cluster_size": k}, DEFAULT_FAR)
            r = score_row(ds, DEFAULT_ALGORITHM, {"min_cluster_size": k}, DEFAULT_FAR, res, truth, t, wall)
            entries.append({"min_cluster_size": k, **{x: r[x] for x in ("pairwise", "bcubed", "predicted_clusters",
                                                                          "unassigned_share")}})
        res, truth, t, _ = run_one(ds, model, DEFAULT_ALGORITHM, {}, DEFAULT_FAR)
        cres, ctruth, ct, _ = run_one(ds, model, "agglomerative", {"linkage": "complete"}, DEFAULT_FAR)
        strict_far = 1e-4 if DEFAULT_FAR > 1e-4 else 1e-5
        sres, struth, st, _ = run_one(ds, model, "agglomerative", {"linkage": "complete"}, strict_far)
        min_size[ds.name] = {
            "sweep": entries,
            "by_cluster_size": size_buckets(ds, res, truth, t),
            "cliques_complete_linkage_same_far": size_buckets(ds, cres, ctruth, ct),
            f"cliques_complete_linkage_far_{strict_far:.0e}": size_buckets(ds, sres, struth, st),
        }

    # How much does Chinese Whispers' random visiting order move the scores?
    seed_spread = []
    for seed in range(5):
        res, truth, t, wall = run_one(data[0], model, "chinese_whispers", {"seed": seed}, DEFAULT_FAR)
        r = score_row(data[0], "chinese_whispers", {"seed": seed}, DEFAULT_FAR, res, truth, t, wall)
        seed_spread.append({"seed": seed, "bcubed": r["bcubed"], "pairwise_f1": r["pairwise"]["f1"],
                            "predicted_clusters": r["predicted_clusters"]})

    # Face-size floor: faces smaller than the floor are not clustered at all.
    floor_rows = []
    lfw = data[0]
    for floor in (0, 40, 50, 60, 70):
        keep = ~(lfw.face_size < floor)
        res, truth, t, wall = run_one(lfw, model, DEFAULT_ALGORITHM, {}, DEFAULT_FAR, subset=keep)
        r = score_row(lfw, DEFAULT_ALGORITHM, {}, DEFAULT_FAR, res, truth, t, wall)
        floor_rows.append({"min_face_px": floor, "faces_kept": int(keep.sum()),
                           "scored_faces_kept": int((truth >= 0).sum()),
                           **{x: r[x] for x in ("pairwise", "bcubed", "predicted_clusters", "true_people")}})

    # Does the best FAR depend on how many faces are clustered? (false edges grow as N^2)
    scale = []
    rng = np.random.default_rng(0)
    people = np.unique(lfw.truth[lfw.truth >= 0])
    photo_person = np.full(int(lfw.photo_ids.max()) + 1, -1)
    photo_person[lfw.photo_ids[lfw.truth >= 0]] = lfw.truth[lfw.truth >= 0]
    order = rng.permutation(people)
    for frac in (0.25, 0.5, 1.0):
        chosen_people = np.zeros(int(people.max()) + 1, bool)
        chosen_people[order[: int(round(frac * people.size))]] = True
        keep = chosen_people[photo_person[lfw.photo_ids]] & (photo_person[lfw.photo_ids] >= 0)
        for algorithm, params in (("chinese_whispers", {}), ("agglomerative", {"linkage": "average"}),
                                  ("dbscan", {"min_samples": 2})):
            f1s = {}
            for far in fars:
                res, truth, t, wall = run_one(lfw, model, algorithm, params, far, subset=keep)
                r = score_row(lfw, algorithm, params, far, res, truth, t, wall)
                f1s[f"{far:.0e}"] = r["bcubed"]["f1"]
            top_far = max(f1s, key=lambda k: f1s[k] or 0.0)
            row = {"people_fraction": frac, "faces": int(keep.sum()), "config": label(algorithm, params),
                   "bcubed_f1_by_far": f1s, "best_far": top_far, "best_far_x_faces": round(float(top_far) * int(keep.sum()), 3)}
            if algorithm == DEFAULT_ALGORITHM:  # what People's FAR rule picks for this many faces
                far_n = rule_far(int(keep.sum()))
                res, truth, t, wall = run_one(lfw, model, algorithm, params, far_n, subset=keep)
                row["people_rule"] = {"far": far_n, "bcubed_f1": score_row(lfw, algorithm, params, far_n, res, truth, t,
                                                                           wall)["bcubed"]["f1"]}
            scale.append(row)
            log(f"scale {frac} {label(algorithm, params)} faces={int(keep.sum())} best={top_far} {f1s}")

    # The same question on synthetic lfw-like embeddings (bench/search.py's model), larger N.
    synthetic = []
    if not args.no_synthetic:
        from faceprint.clustering import cluster, score_clustering
        from search import SHAPES, make_gallery  # bench/search.py

        shape = next((s for s in SHAPES.values() if s.model == model), None)
        for n in (4000, 12000) if shape else ():
            x, ident, _, _ = make_gallery(n, 1, seed=1, shape=shape)
            for algorithm, params in (("chinese_whispers", {}), ("agglomerative", {"linkage": "average"})):
                f1s, secs = {}, {}
                for far in (1e-3, 3e-4, 1e-4, 3e-5, 1e-5):  # People's rule: 3e-5 at 4k faces, 1e-5 at 12k
                    t0 = time.perf_counter()
                    res = cluster(x, algorithm, far=far, model=model, **params)
                    secs[f"{far:.0e}"] = round(time.perf_counter() - t0, 2)
                    f1s[f"{far:.0e}"] = round(score_clustering(ident, res.labels).bcubed.f1, 4)
                synthetic.append({"faces": n, "identities": int(ident.max()) + 1, "config": label(algorithm, params),
                                  "bcubed_f1_by_far": f1s, "seconds_by_far": secs, "people_rule_far": rule_far(n)})
                log(f"synthetic {n} {label(algorithm, params)} {f1s}")
        if shape is None:
            log(f"no synthetic shape for {model} in bench/search.py: synthetic check skipped")

    people_check = {
        "constants": {"FALSE_NEIGHBOURS": FALSE_NEIGHBOURS, "FAR_RANGE": list(FAR_RANGE), "ACCEPT_FACTOR": ACCEPT_FACTOR,
                      "ASK_FACTOR": ASK_FACTOR, "ASSIGN_MARGIN": ASSIGN_MARGIN},
        "assignment_lfw_dev": assignment_check(lfw, model),
    }
    log(f"people constants: {people_check}")

    doc = {
        "benchmark": "face clustering: Chinese Whispers (own, dlib), DBSCAN, HDBSCAN, agglomerative",
        "machine": info,
        "settings": {
            "model": model,
            "pipeline": f"faceprint.Analyzer(embedder={model!r}): {pipeline_of(model)}",
            "fars": list(fars),
            "thresholds": {f"{f:.0e}": round(threshold_for_far(f, model), 5) for f in fars},
            "threshold_source": f"{model} model card, calibrated on lfw_dev itself (pairwise FAR); "
                                "values between calibrated FARs are interpolated in log10(FAR)",
            "scoring": "pairwise and BCubed over scored faces; unassigned (-1) = own singleton; predicted "
                       "clusters counted over scored faces",
            "cannot_link": "photo id = image (lfw_dev, orl_faces); off for bald_guys (one collage image)",
        },
        "datasets": {ds.name: {"true_people": ds.n_people, **ds.info} for ds in data},
        "table_best_per_config": table,
        "chosen_default": chosen,
        "min_cluster_size": min_size,
        "chinese_whispers_seed_spread_lfw_dev": seed_spread,
        "face_size_floor_lfw_dev": floor_rows,
        "scale_lfw_dev_people_subsets": scale,
        "scale_synthetic": {"model": f"bench/search.py Synth shaped like {model} (lfw_dev-like cosine statistics), "
                                     "1-10 images per identity, no photo ids, seed 1", "rows": synthetic},
        "people_constants": people_check,
        "results": rows,
        "seconds": {"embedding_or_cache": round(embed_s, 1), "sweep": round(sweep_s, 1),
                    "total": round(time.perf_counter() - t_start, 1)},
        "notes": NOTES if model == REFERENCE_MODEL else notes(data, model),
    }
    text = json.dumps(doc, indent=1)
    print(text)
    if out != "-":
        Path(out).write_text(text + "\n")


CHOSEN_REASON = (
    "chinese_whispers (this module's own, similarity-weighted, seed 0) at FAR 3e-5 (cosine 0.9465, interpolated "
    "in log10(FAR) between the card's 1e-4 and 1e-5 points): the best BCubed F1 on lfw_dev of all 52 settings "
    "(0.949: precision 0.972, recall 0.928; 1,821 clusters for 1,698 people), and on the checks: orl_faces 0.984 "
    "(precision 1.0) and bald_guys 4 clusters of 2+ faces (6, 6, 6, 5 and one face alone). The runner-up, "
    "agglomerative average linkage at FAR 3e-4 (lfw_dev 0.944, orl_faces 0.991: a mean of the two 0.002 higher), "
    "was not chosen: it needs the dense N x N matrix (~3 GB at 20k faces) where CW works on the sparse graph in "
    "seconds, and its lead on orl_faces is a handful of its 400 faces. dlib's CW gives the same quality (0.947) at "
    "~4x the time and cannot drop same-photo edges. CW needs a much stricter pairwise FAR than verification: at "
    "1e-3 it chains people together (0.70) because false edges grow with N^2 (FAR x N = false neighbours per face: "
    "0.12 at 3e-5 with 4k faces). See scale_* for how the best FAR moves with N."
)
NOTES: list[str] = [
    "Thresholds come from the dlib-resnet34 card, calibrated on lfw_dev itself: lfw_dev numbers are tuned on "
    "their own data; orl_faces and bald_guys are the out-of-sample checks (orl_faces is easy: 40 people, frontal).",
    "lfw_dev: 224 background faces (not the centre face of their image) are clustered but not scored; 22 images "
    "without a detected face are left out. Pairwise scores are dominated by the largest identities (Tony_Blair: "
    "144 images = 10,296 of the 26,452 same-person pairs); BCubed weighs every face equally.",
    "orl_faces: HOG found a face in 388 of 400 images (after the default upsampling of small images); the other "
    "12 are embedded from a centre crop (evaluation.embedding.embed_images' fallback).",
    "HDBSCAN: cluster_selection_epsilon (which would carry a threshold) crashes in scikit-learn 1.9 under "
    "NumPy 2.x (scikit-learn issue #33219), so HDBSCAN runs without a threshold; rows have far null.",
    "Unassigned (-1) faces count as singletons in every metric; predicted_clusters counts clusters holding at "
    "least one scored face, so DBSCAN/HDBSCAN (noise) show few clusters and a high unassigned_share.",
]



def notes(data: list[Dataset], model: str) -> list[str]:
    """NOTES' facts for another model's run, from its own data."""
    lfw, orl = data[0].info, data[1].info
    return [
        f"Thresholds come from the {model} card, calibrated on lfw_dev itself: lfw_dev numbers are tuned on their own "
        "data; orl_faces and bald_guys are the out-of-sample checks (orl_faces is easy: 40 people, frontal).",
        f"lfw_dev: {lfw['background_faces_not_scored']} background faces (not the centre face of their image) are "
        f"clustered but not scored; {lfw['images_without_face']} images without a detected face are left out.",
        f"orl_faces: the detector found a face in {orl['images_face_detected']} of {orl['images']} images; the other "
        f"{orl['images_centre_crop_fallback']} are embedded from a centre crop.",
        NOTES[3],
        NOTES[4],
    ]


if __name__ == "__main__":
    if "--embed-only" in sys.argv:
        model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else REFERENCE_MODEL
        for ds in (load_bald_guys(True, model), load_orl(2, True, model), load_lfw(2, True, model)):
            log(ds.name, ds.embeddings.shape, ds.n_people, ds.info)
    else:
        main()
