"""Face quality factors against recognition errors on lfw_dev: writes bench/results_quality.json.
Needs ../shared/data (and the faceplugin pack for the fr configuration).

Per configuration (detector + landmarks + embedder: the default fr-detect + fr-landmark +
fr-feature, and hog + dlib5 + dlib-resnet34) every image of an lfw_dev identity with two or
more images is analysed once (the face nearest the centre) and each face gets:

* ``det_score``: the detector's score;
* ``size``: the face's side in pixels (geometric mean of the box's sides);
* ``pose``: ``-max(|yaw| / 45, |pitch| / 40)`` (the quality policy's limits; higher = more frontal),
  and ``yaw``, ``pitch``, ``roll``;
* ``eye_ratio``: the distance between the eye centres over the face's side (landmark geometry:
  small when the head is turned or the points are off);
* ``sharpness``: variance of the Laplacian of the grey quality chip (112 px, aligned on the
  eyes: faceprint.quality.quality_chip, measured at detection), and ``sharpness_chip``: the
  same on the embedder's own aligned chip (what faceprint.quality measured before);
* ``norm``: the norm of the network's raw output, before L2 normalisation;
* ``quality``: the library's score (faceprint.quality.assess of the embedded face, as
  `faceprint embed` shows it), and ``quality_before``: the score as it was before the norm and
  detector factors (size x pose x sharpness of the embedder's chip, floors 6 / 25).

Then, over all genuine pairs (every two images of one identity, both with a face):

(a) Spearman's rank correlation of each factor with the face's genuine similarity (the mean
    cosine similarity to the same identity's other images), and between the factors;
(b) error-versus-reject curves: FNMR at the card's FAR 1e-3 threshold after rejecting the
    lowest-quality x% of images (x = 0, 1, 2, 5, 10, 20; a pair counts while both its images
    are kept), per factor, for combined scores, and for random rejection (the mean of 50
    draws: what a factor must beat). FMR over the kept impostor pairs (every two images of
    different identities) is given beside it;
(c) the enrolment gate: the share of faces the library's score flags (a reason, or a score
    under QualityPolicy.min_score) and the FNMR of the genuine pairs with and without them;
(d) the sharpness floors: the quality chip's sharpness of every 13th image as it is and after
    a 5x5 and a 9x9 Gaussian blur (same landmarks).

    python bench/quality.py [--cache /tmp/fq_cache] [--limit N] [--config fr|dlib]

--cache keeps the per-face measurements and embeddings (an .npz per configuration); delete
it after changing the pipeline. Runs in about 7 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw_dev"
OUT = Path(__file__).resolve().parent / "results_quality.json"
FAR = 1e-3
REJECT = (0.0, 0.01, 0.02, 0.05, 0.10, 0.20)
RANDOM_DRAWS = 50

CONFIGS: dict[str, tuple[str, str, str]] = {
    "fr": ("fr-detect", "fr-landmark", "fr-feature"),
    "dlib": ("hog", "dlib5", "dlib-resnet34"),
}
#: Per-face measurements, in the order of the cache's columns.
FACTORS = ("det_score", "size", "pose", "yaw", "pitch", "roll", "eye_ratio", "sharpness", "sharpness_chip",
           "norm", "quality", "quality_before", "flagged")
#: The factors whose error-versus-reject curve is reported (raw values: higher = better).
RANKED = ("det_score", "size", "pose", "eye_ratio", "sharpness", "sharpness_chip", "norm", "quality_before",
          "quality")
#: The score before this measurement: size x pose x sharpness of the embedder's chip.
BEFORE: dict[str, Any] = dict(min_sharpness=6.0, good_sharpness=25.0, detector_scores={}, embedding_norms={})


def identities() -> dict[str, list[str]]:
    """identity -> its image paths (relative to lfw_dev), for identities with 2+ images."""
    by_id: dict[str, list[str]] = defaultdict(list)
    with (LFW / "identities.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            by_id[row["identity"]].append(row["path"])
    return {k: sorted(v) for k, v in sorted(by_id.items()) if len(v) >= 2}


def raw_norms(embedder: Any, chips: list[np.ndarray]) -> np.ndarray:
    """The raw norms of ``chips`` for an embedder that does not report them (dlib's ResNet,
    through its onnxruntime network's raw descriptors)."""
    net = getattr(embedder, "onnx_net", None)
    if net is None:
        raise SystemExit(f"{embedder.card.name}: no raw output to measure (dlib runtime?)")
    return np.asarray(np.linalg.norm(net.descriptors(chips).astype(np.float64), axis=1), np.float32)


def measure(config: tuple[str, str, str], paths: list[str], cache: Path | None) -> dict[str, Any]:
    """Per-face factors and embeddings of ``paths`` (missing faces: NaN rows), with seconds."""
    file = cache / f"quality-{'+'.join(config)}-{len(paths)}.npz" if cache else None
    if file and file.exists():
        z = np.load(file, allow_pickle=False)
        return {"factors": z["factors"], "emb": z["emb"], "found": z["found"], "seconds": float(z["seconds"])}
    from faceprint.pipeline import Analyzer
    from faceprint.quality import QualityPolicy, assess, rate, sharpness

    detector, landmarks, model = config
    analyzer = Analyzer(detector=detector, landmarks=landmarks, embedder=model)
    embedder = analyzer.embedder
    policy, before = QualityPolicy(), QualityPolicy(**BEFORE)
    factors = np.full((len(paths), len(FACTORS)), np.nan)
    found = np.zeros(len(paths), bool)
    emb: np.ndarray | None = None
    faces: list[Any] = []
    chips: list[np.ndarray] = []
    rows: list[int] = []
    start = time.perf_counter()

    def put(i: int, key: str, value: float) -> None:
        factors[i, FACTORS.index(key)] = value

    def flush() -> None:
        nonlocal emb
        if not chips:
            return
        embedded = analyzer.embed_chips(faces, chips)  # the library's norms and quality
        missing = [e.embedding_norm is None for e in embedded]
        norms = raw_norms(embedder, chips) if any(missing) else None
        if emb is None:
            emb = np.zeros((len(paths), len(embedded[0].embedding)), np.float32)
        for k, (i, e) in enumerate(zip(rows, embedded)):
            emb[i] = e.embedding
            norm = e.embedding_norm if e.embedding_norm is not None else float(norms[k])  # type: ignore[index]
            put(i, "norm", norm)
            q = assess(e, policy=policy)
            put(i, "quality", q.score)
            put(i, "flagged", float(bool(q.reasons) or q.score < policy.min_score))
        faces.clear()
        chips.clear()
        rows.clear()

    for i, path in enumerate(paths):
        rgb = analyzer.load(str(LFW / path))
        found_faces = analyzer.detect_array(rgb)
        if not found_faces:
            continue
        cx, cy = rgb.shape[1] / 2, rgb.shape[0] / 2
        face = min(found_faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)
        chip = analyzer.aligned_chip(rgb, face)
        yaw, pitch, roll = (face.pose.yaw, face.pose.pitch, face.pose.roll) if face.pose else (0.0, 0.0, 0.0)
        left, right = face.landmarks.eye_centers()
        chip_sharpness = sharpness(chip)
        measured_sharpness = face.quality.sharpness if face.quality else None
        values: dict[str, float] = {
            "det_score": face.score, "size": face.size, "pose": -max(abs(yaw) / 45, abs(pitch) / 40),
            "yaw": yaw, "pitch": pitch, "roll": roll,
            "eye_ratio": float(np.linalg.norm(right - left)) / max(face.size, 1e-6),
            "sharpness": np.nan if measured_sharpness is None else measured_sharpness,
            "sharpness_chip": chip_sharpness,
            "quality_before": rate(face.size, face.pose, chip_sharpness, policy=before).score,
        }
        for k, v in values.items():
            put(i, k, v)
        found[i] = True
        faces.append(face)
        chips.append(chip)
        rows.append(i)
        if len(chips) >= 32:
            flush()
        if (i + 1) % 500 == 0:
            print(f"  {'+'.join(config)}: {i + 1}/{len(paths)}", file=sys.stderr)
    flush()
    seconds = time.perf_counter() - start
    if emb is None:
        raise SystemExit("no face found in any image")
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, factors=factors, emb=emb, found=found, seconds=seconds)
    return {"factors": factors, "emb": emb, "found": found, "seconds": seconds}


def blur_sample(config: tuple[str, str, str], paths: list[str]) -> dict[str, dict[str, float]]:
    """Percentiles of the quality chip's sharpness of every 13th image, as it is and blurred
    (the landmarks of the original, so that only the blur changes)."""
    import cv2

    from faceprint.pipeline import Analyzer
    from faceprint.quality import quality_chip, sharpness

    analyzer = Analyzer(detector=config[0], landmarks=config[1], embedder=config[2])
    values: dict[str, list[float]] = {"original": [], "gaussian_5x5": [], "gaussian_9x9": []}
    for path in paths[::13]:
        rgb = analyzer.load(str(LFW / path))
        found = analyzer.detect_array(rgb)
        if not found:
            continue
        values["original"].append(sharpness(quality_chip(rgb, found[0])))
        for k in (5, 9):
            values[f"gaussian_{k}x{k}"].append(sharpness(quality_chip(cv2.GaussianBlur(rgb, (k, k), 0), found[0])))
    return {k: percentiles(np.array(v)) for k, v in values.items()}


def ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), for Spearman's correlation."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        if j > i:
            r[order[i : j + 1]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def reject_curve(quality: np.ndarray, genuine: tuple[np.ndarray, np.ndarray, np.ndarray],
                 impostor_sims: np.ndarray, same: np.ndarray, threshold: float,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
    """FNMR (and FMR) at ``threshold`` after rejecting the lowest-``quality`` x% of images.
    Ties are broken at random so that a saturated factor rejects no particular image."""
    ga, gb, gsim = genuine
    n = len(quality)
    order = np.lexsort((rng.random(n), quality))  # lowest quality first
    rows = []
    for x in REJECT:
        kept = np.ones(n, bool)
        kept[order[: int(round(x * n))]] = False
        g = kept[ga] & kept[gb]
        imp = kept[:, None] & kept[None, :] & ~same
        imp_count = int(np.triu(imp, 1).sum())
        false_matches = int(np.triu(imp & (impostor_sims >= threshold), 1).sum())
        rows.append({
            "reject": x,
            "fnmr": float(np.mean(gsim[g] < threshold)),
            "genuine_pairs": int(g.sum()),
            "fmr": false_matches / max(imp_count, 1),
        })
    return rows


def random_curve(n: int, genuine: tuple[np.ndarray, np.ndarray, np.ndarray], threshold: float,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
    ga, gb, gsim = genuine
    rows = []
    for x in REJECT:
        values = []
        for _ in range(RANDOM_DRAWS if x > 0 else 1):
            kept = np.ones(n, bool)
            kept[rng.permutation(n)[: int(round(x * n))]] = False
            g = kept[ga] & kept[gb]
            values.append(float(np.mean(gsim[g] < threshold)))
        rows.append({"reject": x, "fnmr": float(np.mean(values)), "fnmr_sd": float(np.std(values))})
    return rows


def percentiles(x: np.ndarray) -> dict[str, float]:
    return {f"p{p}": round(float(np.percentile(x, p)), 4) for p in (1, 5, 10, 25, 50, 75, 90, 95, 99)}


def analyse(name: str, config: tuple[str, str, str], paths: list[str], ident: list[str],
            cache: Path | None) -> dict[str, Any]:
    from faceprint import models

    card = models.get_card(config[2], "embedder")
    threshold = card.threshold_for(FAR)
    m = measure(config, paths, cache)
    found = m["found"]
    keep = np.flatnonzero(found)
    emb = m["emb"][keep].astype(np.float64)
    f = {k: m["factors"][keep, i] for i, k in enumerate(FACTORS)}
    labels = np.array([ident[i] for i in keep])
    sims = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, True)
    ga, gb = np.nonzero(np.triu(same, 1))
    genuine = (ga, gb, sims[ga, gb])
    # Each face's genuine similarity: the mean over its identity's other found images.
    other = same.copy()
    np.fill_diagonal(other, False)
    has_other = other.any(axis=1)
    genuine_mean = np.where(has_other, (sims * other).sum(axis=1) / np.maximum(other.sum(axis=1), 1), np.nan)
    rng = np.random.default_rng(0)

    ok = has_other
    measured = [k for k in FACTORS if k != "flagged"]
    correlation = {k: round(spearman(f[k][ok], genuine_mean[ok]), 4) for k in measured}
    between = {a: {b: round(spearman(f[a], f[b]), 3) for b in RANKED} for a in RANKED}
    curves = {k: reject_curve(f[k], genuine, sims, same, threshold, rng) for k in RANKED}
    # Candidate combinations, as rank products (geometric mean of percentile ranks), so that no
    # floor is assumed: what the norm / the detector score add to the score before them.
    pct = {k: (ranks(f[k]) + 1) / len(keep) for k in RANKED}
    combos = {
        "quality_before*norm": pct["quality_before"] * pct["norm"],
        "quality_before*det_score": pct["quality_before"] * pct["det_score"],
        "quality_before*norm*det_score": pct["quality_before"] * pct["norm"] * pct["det_score"],
    }
    for k, v in combos.items():
        curves[k] = reject_curve(v, genuine, sims, same, threshold, rng)
        correlation[k] = round(spearman(v[ok], genuine_mean[ok]), 4)
    flagged = f["flagged"] > 0
    with_flagged = flagged[ga] | flagged[gb]
    gate = {
        "faces_flagged": round(float(flagged.mean()), 4),
        "faces_with_pose_reason": round(float((-f["pose"] > 1).mean()), 4),
        # pose.py's pitch cannot go below -atan(k / A): the faces sitting exactly there.
        "faces_at_the_lowest_pitch": round(float((f["pitch"] <= f["pitch"].min() + 0.01).mean()), 4),
        "lowest_pitch": round(float(f["pitch"].min()), 2),
        "fnmr_pairs_with_a_flagged_face": round(float(np.mean(genuine[2][with_flagged] < threshold)), 4),
        "fnmr_other_pairs": round(float(np.mean(genuine[2][~with_flagged] < threshold)), 4),
    }
    return {
        "config": "+".join(config),
        "threshold_far_1e-3": threshold,
        "images": len(paths),
        "faces_found": int(found.sum()),
        "genuine_pairs": int(len(ga)),
        "impostor_pairs": int(np.triu(~same, 1).sum()),
        "seconds": round(m["seconds"], 1),
        "distribution": {k: percentiles(f[k]) for k in measured},
        "spearman_with_genuine_similarity": correlation,
        "spearman_between_factors": between,
        "error_versus_reject": curves,
        "random_rejection": random_curve(len(keep), genuine, threshold, rng),
        "enrolment_gate": gate,
        "sharpness_of_blurred_copies": blur_sample(config, paths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="folder for the per-face measurements")
    parser.add_argument("--limit", type=int, default=None, help="only the first N identities (a quick check)")
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append", help="default: all")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not write {OUT.name}")
    args = parser.parse_args()
    by_id = identities()
    names = list(by_id)[: args.limit] if args.limit else list(by_id)
    paths = [p for n in names for p in by_id[n]]
    ident = [n for n in names for _ in by_id[n]]
    info = machine()
    results = {}
    for key in args.config or list(CONFIGS):
        print(f"{key}: {len(paths)} images of {len(names)} identities", file=sys.stderr)
        results[key] = analyse(key, CONFIGS[key], paths, ident, args.cache)
    info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    doc = {"machine": info, "data": "lfw_dev identities with 2+ images (identities.csv)", "far": FAR,
           "reject": list(REJECT), "configs": results}
    text = json.dumps(doc, indent=1)
    print(text)
    if not args.no_write and not args.limit:
        OUT.write_text(text + "\n")


if __name__ == "__main__":
    main()
