"""Calibrate an embedder's similarity thresholds at named false-accept rates on lfw_dev.

Every image of ../shared/data/lfw_dev/images is embedded once (the face nearest the image
centre: LFW's subject is centred). Then *all* same-person pairs and *all* different-person
pairs formed from its identities are scored; the threshold for FAR f is the similarity that
exactly a fraction f of the impostor pairs reach or exceed. Images with no detected face are
left out and counted.

    python bench/calibrate_thresholds.py [--model dlib-resnet34] [--jobs 2] > calib.json

Prints JSON (thresholds, FRR at each, counts, 3-fold accuracy on the official pairs) and,
with --python, the Calibration literal for src/faceprint/models/calibration_<model>.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw_dev"
FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)

_analyzer = None


def _init(model: str, detector: str) -> None:
    global _analyzer
    from faceprint import Analyzer

    _analyzer = Analyzer(detector=detector, embedder=model)


def _embed_centre(path: str) -> tuple[str, np.ndarray | None]:
    from faceprint.errors import FaceprintError

    try:
        rgb = _analyzer.load(path)
        faces = _analyzer.detect_array(rgb)
    except FaceprintError:
        return path, None
    if not faces:
        return path, None
    h, w = rgb.shape[:2]
    face = min(faces, key=lambda f: (f.box.center[0] - w / 2) ** 2 + (f.box.center[1] - h / 2) ** 2)
    (emb,) = _analyzer.embed_faces(rgb, [face])
    return path, emb.embedding


def impostor_threshold(scores_desc: np.ndarray, far: float) -> float:
    """Smallest similarity t with (#impostors >= t) / n <= far, for scores sorted descending."""
    n = len(scores_desc)
    k = int(np.floor(far * n))  # at most k impostors may reach the threshold
    if k >= n:
        return float(scores_desc[-1])
    # Everything strictly above scores_desc[k] is <= k pairs; nudge just above it.
    return float(np.nextafter(np.float32(scores_desc[k]), np.float32(2.0)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dlib-resnet34")
    ap.add_argument("--detector", default="hog")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (smoke test)")
    ap.add_argument("--python", action="store_true", help="also print the Calibration literal to stderr")
    args = ap.parse_args()
    if not LFW.is_dir():
        print(json.dumps({"error": f"{LFW} not found"}))
        return 2

    rows = list(csv.DictReader(open(LFW / "identities.csv")))
    if args.limit:
        rows = rows[: args.limit]
    paths = [str(LFW / r["path"]) for r in rows]
    ident = {str(LFW / r["path"]): r["identity"] for r in rows}

    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(args.model, args.detector)) as pool:
        results = dict(pool.map(_embed_centre, paths, chunksize=16))
    elapsed = time.perf_counter() - t0
    ok = [p for p in paths if results[p] is not None]
    failed = [p for p in paths if results[p] is None]
    emb = np.stack([results[p] for p in ok]).astype(np.float64)
    labels = np.array([ident[p] for p in ok])
    _, label_ids = np.unique(labels, return_inverse=True)

    sims = emb @ emb.T
    iu = np.triu_indices(len(ok), k=1)
    pair_sims = sims[iu]
    same = label_ids[iu[0]] == label_ids[iu[1]]
    genuine = pair_sims[same]
    impostor = np.sort(pair_sims[~same])[::-1]

    thresholds = {far: impostor_threshold(impostor, far) for far in FARS}
    frr = {far: float(np.mean(genuine < t)) for far, t in thresholds.items()}
    far_measured = {far: float(np.mean(impostor >= t)) for far, t in thresholds.items()}

    # The official 3-fold pairs, for a sanity check (pairs with a missing face count as wrong).
    acc = official_pairs_accuracy(results)

    out = {
        "model": args.model,
        "detector": args.detector,
        "dataset": "lfw_dev (LFW View 2 folds 1-3, ../shared/data/lfw_dev/images, 150x150)",
        "n_images": len(paths),
        "n_embedded": len(ok),
        "no_face": [str(Path(p).relative_to(LFW)) for p in failed],
        "n_identities": int(len(set(labels))),
        "n_genuine_pairs": int(len(genuine)),
        "n_impostor_pairs": int(len(impostor)),
        "thresholds": {f"{k:.0e}": round(v, 6) for k, v in thresholds.items()},
        "far_measured": {f"{k:.0e}": v for k, v in far_measured.items()},
        "frr": {f"{k:.0e}": round(v, 6) for k, v in frr.items()},
        "genuine_mean": float(genuine.mean()),
        "impostor_mean": float(impostor.mean()),
        "official_pairs": acc,
        "seconds": round(elapsed, 1),
        "images_per_s": round(len(paths) / elapsed, 2),
    }
    print(json.dumps(out, indent=2))
    if args.python:
        print(python_literal(out, thresholds, frr), file=sys.stderr)
    return 0


def official_pairs_accuracy(results: dict[str, np.ndarray | None]) -> dict:
    pairs = list(csv.DictReader(open(LFW / "pairs.csv")))
    scores, same, folds = [], [], []
    for r in pairs:
        a, b = results.get(str(LFW / r["path_a"])), results.get(str(LFW / r["path_b"]))
        scores.append(float(a @ b) if a is not None and b is not None else -2.0)
        same.append(r["same"] == "1")
        folds.append(int(r["fold"]))
    scores_a, same_a, folds_a = np.array(scores), np.array(same), np.array(folds)
    accs = []
    for fold in sorted(set(folds)):
        train, test = folds_a != fold, folds_a == fold
        cands = np.unique(scores_a[train])
        best = max(cands, key=lambda t: np.mean((scores_a[train] >= t) == same_a[train]))
        accs.append(float(np.mean((scores_a[test] >= best) == same_a[test])))
    return {
        "n_pairs": len(pairs),
        "missing_face_pairs": int(np.sum(scores_a == -2.0)),
        "fold_accuracy": accs,
        "mean_accuracy": float(np.mean(accs)),
    }


def python_literal(out: dict, thresholds: dict, frr: dict) -> str:
    th = ",\n        ".join(f"{k:.0e}: {v!r}" for k, v in thresholds.items())
    fr = ",\n        ".join(f"{k:.0e}: {round(v, 6)!r}" for k, v in frr.items())
    return f'''DLIB_RESNET34_CALIBRATION = Calibration(
    dataset="lfw_dev: LFW View 2 folds 1-3 ({out["n_images"]} images, 150x150), every pair formed from its identities",
    n_images={out["n_embedded"]},
    n_identities={out["n_identities"]},
    n_genuine_pairs={out["n_genuine_pairs"]},
    n_impostor_pairs={out["n_impostor_pairs"]},
    thresholds={{
        {th},
    }},
    frr={{
        {fr},
    }},
    notes=(
        "detector {out["detector"]}, face nearest the image centre; {len(out["no_face"])} of {out["n_images"]} images "
        "had no detected face and were left out. Impostor pairs share images, so they are not "
        "independent; at FAR 1e-5 about {int(out["n_impostor_pairs"] * 1e-5)} impostor pairs decide the threshold."
    ),
)'''


if __name__ == "__main__":
    sys.exit(main())
