"""Calibrate an embedder's similarity thresholds at named false-accept rates on lfw_dev.

Every image of ../shared/data/lfw_dev/images is embedded once (the face nearest the image
centre: LFW's subject is centred). Then *all* same-person pairs and *all* different-person
pairs formed from its identities are scored; the threshold for FAR f is the similarity that
exactly a fraction f of the impostor pairs reach or exceed. Images with no detected face are
left out and counted. The work is done by faceprint.evaluation (protocols.embed_images,
calibrate.calibrate_embeddings, metrics.kfold_accuracy): `faceprint calibrate` is the same
calibration for any pairs or identities file.

    python bench/calibrate_thresholds.py [--model dlib-resnet34] [--jobs 2] > calib.json

Prints JSON (thresholds, FRR at each, counts, 3-fold accuracy on the official pairs) and,
with --python, the Calibration literal for src/faceprint/models/calibration_<model>.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw_dev"
FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)


def main() -> int:
    from faceprint.evaluation import PipelineSpec, embed_images
    from faceprint.evaluation.calibrate import calibrate_embeddings, python_literal

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
    paths = [r["path"] for r in rows]
    ident = {r["path"]: r["identity"] for r in rows}

    # Every image once, the face nearest the centre; no fallback crop: images without a
    # detected face are left out of the calibration (and counted).
    spec = PipelineSpec.create(args.detector, args.model, select="center")
    run = embed_images(paths, lambda p: str(LFW / p), spec, jobs=args.jobs, use_fallback=False)
    ok = [p for p in paths if run.records[p].status == "ok"]
    failed = [p for p in paths if run.records[p].status != "ok"]
    emb, _ = run.matrix(ok)
    labels = [ident[p] for p in ok]

    cal = calibrate_embeddings(emb, labels, FARS)  # every genuine and every impostor pair
    thresholds = {far: cal.thresholds[far] for far in FARS}
    frr = {far: cal.frr[far] for far in FARS}

    # The official 3-fold pairs, for a sanity check (pairs with a missing face count as wrong).
    acc = official_pairs_accuracy({p: run.records[p].embedding if run.records[p].status == "ok" else None
                                   for p in paths})

    out = {
        "model": args.model,
        "detector": args.detector,
        "dataset": "lfw_dev (LFW View 2 folds 1-3, ../shared/data/lfw_dev/images, 150x150)",
        "n_images": len(paths),
        "n_embedded": len(ok),
        "no_face": failed,
        "n_identities": int(len(set(labels))),
        "n_genuine_pairs": cal.n_genuine,
        "n_impostor_pairs": cal.n_impostor,
        "thresholds": {f"{k:.0e}": round(v, 6) for k, v in thresholds.items()},
        "far_measured": {f"{k:.0e}": cal.far_measured[k] for k in FARS},
        "frr": {f"{k:.0e}": round(v, 6) for k, v in frr.items()},
        "genuine_mean": cal.genuine_mean,
        "impostor_mean": cal.impostor_mean,
        "official_pairs": acc,
        "seconds": round(run.seconds, 1),
        "images_per_s": round(len(paths) / run.seconds, 2),
    }
    print(json.dumps(out, indent=2))
    if args.python:
        print(python_literal(out, thresholds, frr), file=sys.stderr)
    return 0


def official_pairs_accuracy(results: dict[str, np.ndarray | None]) -> dict:
    """3-fold accuracy on the official pairs, through :func:`faceprint.evaluation.metrics.kfold_accuracy`.
    A pair with an image without a detected face scores -2 (rejected)."""
    from faceprint.evaluation.metrics import kfold_accuracy

    pairs = list(csv.DictReader(open(LFW / "pairs.csv")))
    scores, same, folds = [], [], []
    for r in pairs:
        a, b = results.get(r["path_a"]), results.get(r["path_b"])
        scores.append(float(a @ b) if a is not None and b is not None else -2.0)
        same.append(r["same"] == "1")
        folds.append(int(r["fold"]))
    kf = kfold_accuracy(np.array(scores), np.array(same), np.array(folds))
    return {
        "n_pairs": len(pairs),
        "missing_face_pairs": int(np.sum(np.array(scores) == -2.0)),
        "fold_accuracy": [f.accuracy for f in kf.folds],
        "mean_accuracy": kf.mean,
    }


if __name__ == "__main__":
    sys.exit(main())
