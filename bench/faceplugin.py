"""The Faceplugin models (fr-detect, fr-landmark, fr-feature, fr-feature-flip) against dlib, on
faceprint's own harness: writes bench/results_faceplugin.json. Needs ../shared/data and the
pack (`faceprint models install faceplugin`).

Per configuration (detector + landmarks + embedder) every lfw_dev image is embedded once
(faceprint.evaluation.embed_images, the face nearest the centre, no fallback crop: images
without a face are left out and counted), then:

* lfw_dev's official 1,800 pairs: 3-fold accuracy, AUC, EER (a pair with a missing face
  scores -2, i.e. is rejected, as in bench/calibrate_thresholds.py);
* ALL pairs formed from identities.csv: thresholds at FAR 1e-1..1e-5 and TAR at each
  (faceprint.evaluation.calibrate.calibrate_embeddings, as the dlib card's calibration);
* per perceived gender (gender.csv): FMR and FNMR at the configuration's own FAR 1e-3
  threshold over all pairs whose two images have that gender, and the max/min ratios.

Then, at each configuration's FAR 1e-3 threshold: deepface's 520 labelled pairs, the
InspireFace pairs and identities (every impostor pair), `eval identify` on orl_faces
(when the embedder's card is calibrated), and the speed of each model alone (ms per photo
for a detector, per face for landmarks, per face in batches of 32 for an embedder).

    python bench/faceplugin.py [--jobs 2] [--cache /tmp/fp_cache] [--python]

--python prints the Calibration literals for src/faceprint/models/faceplugin/calibration.py.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LFW = DATA / "lfw_dev"
FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
OUT = Path(__file__).resolve().parent / "results_faceplugin.json"

#: (detector, landmarks, embedder). dlib's reference first; fr-feature on dlib5 points shows
#: what fr-landmark's points are worth on the same fr-detect boxes.
CONFIGS: list[tuple[str, str, str]] = [
    ("hog", "dlib5", "dlib-resnet34"),
    ("fr-detect", "fr-landmark", "fr-feature"),
    ("fr-detect", "fr-landmark", "fr-feature-flip"),
    ("fr-detect", "dlib5", "fr-feature"),
]


def label(config: tuple[str, str, str]) -> str:
    return "+".join(config)


def embed(config: tuple[str, str, str], paths: list[str], root: Path, jobs: int,
          cache: Path | None, tag: str) -> tuple[dict[str, np.ndarray], list[str], float]:
    """{path: embedding} of the images where a face was found, the paths without one, seconds."""
    from faceprint.evaluation import PipelineSpec, embed_images

    file = cache / f"{tag}-{label(config)}.npz" if cache else None
    if file and file.exists():
        z = np.load(file, allow_pickle=False)
        ok = [str(p) for p in z["ok"]]
        return dict(zip(ok, z["emb"])), [str(p) for p in z["missing"]], float(z["seconds"])
    detector, landmarks, model = config
    spec = PipelineSpec.create(detector, model, landmarks=landmarks, select="center")
    run = embed_images(paths, lambda p: str(root / p), spec, jobs=jobs, use_fallback=False)
    ok = [p for p in paths if run.records[p].status == "ok"]
    missing = [p for p in paths if run.records[p].status != "ok"]
    emb, _ = run.matrix(ok) if ok else (np.zeros((0, 1), np.float32), None)
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, ok=np.array(ok), emb=emb, missing=np.array(missing, dtype=str), seconds=run.seconds)
    return dict(zip(ok, emb)), missing, run.seconds


def official_pairs(emb: dict[str, np.ndarray]) -> dict[str, Any]:
    from faceprint.evaluation.metrics import auc, eer, kfold_accuracy

    rows = list(csv.DictReader(open(LFW / "pairs.csv")))
    scores = np.array([float(emb[r["path_a"]] @ emb[r["path_b"]]) if r["path_a"] in emb and r["path_b"] in emb
                       else -2.0 for r in rows])
    same = np.array([r["same"] == "1" for r in rows])
    kf = kfold_accuracy(scores, same, np.array([int(r["fold"]) for r in rows]))
    rate, _ = eer(scores, same)
    return {
        "n_pairs": len(rows),
        "missing_face_pairs": int(np.sum(scores == -2.0)),
        "fold_accuracy": [round(f.accuracy, 6) for f in kf.folds],
        "mean_accuracy": round(kf.mean, 6),
        "stderr": round(kf.stderr, 6),
        "auc": round(auc(scores, same), 6),
        "eer": round(rate, 6),
    }


def all_pairs(emb: dict[str, np.ndarray], ident: dict[str, str]) -> dict[str, Any]:
    from faceprint.evaluation.calibrate import calibrate_embeddings

    paths = sorted(emb)
    cal = calibrate_embeddings(np.stack([emb[p] for p in paths]), [ident[p] for p in paths], FARS)
    return {
        "n_embedded": len(paths),
        "n_identities": len({ident[p] for p in paths}),
        "n_genuine_pairs": cal.n_genuine,
        "n_impostor_pairs": cal.n_impostor,
        "thresholds": {f"{f:.0e}": cal.thresholds[f] for f in FARS},
        "far_measured": {f"{f:.0e}": cal.far_measured[f] for f in FARS},
        "frr": {f"{f:.0e}": round(cal.frr[f], 6) for f in FARS},
        "tar": {f"{f:.0e}": round(1 - cal.frr[f], 6) for f in FARS},
        "genuine_mean": round(cal.genuine_mean, 6),
        "impostor_mean": round(cal.impostor_mean, 6),
    }


def per_gender(emb: dict[str, np.ndarray], threshold: float) -> dict[str, Any]:
    """FMR and FNMR per perceived gender over every pair of two images of that gender."""
    rows = [r for r in csv.DictReader(open(LFW / "gender.csv")) if r["gender"] and r["path"] in emb]
    groups: dict[str, Any] = {}
    for gender in sorted({r["gender"] for r in rows}):
        mine = [r for r in rows if r["gender"] == gender]
        e = np.stack([emb[r["path"]] for r in mine]).astype(np.float32)
        _, who = np.unique([r["identity"] for r in mine], return_inverse=True)
        gen = imp = false_match = false_non_match = 0
        for start in range(0, len(mine), 512):  # blocks of rows against every later row
            s = e[start:start + 512] @ e.T
            i = np.arange(start, min(start + 512, len(mine)))[:, None]
            later = np.arange(len(mine))[None, :] > i
            same = who[i] == who[None, :]
            gen += int((later & same).sum())
            imp += int((later & ~same).sum())
            false_non_match += int((later & same & (s < threshold)).sum())
            false_match += int((later & ~same & (s >= threshold)).sum())
        groups[gender] = {
            "n_images": len(mine), "n_genuine_pairs": gen, "n_impostor_pairs": imp,
            "false_matches": false_match, "false_non_matches": false_non_match,
            "fmr": false_match / imp if imp else None, "fnmr": false_non_match / gen if gen else None,
        }

    def ratio(key: str) -> float | None:
        values = [g[key] for g in groups.values() if g[key] is not None]
        if len(values) < 2 or min(values) == 0:
            return None
        return round(max(values) / min(values), 3)

    return {"threshold": threshold, "groups": groups,
            "fmr_max_min_ratio": ratio("fmr"), "fnmr_max_min_ratio": ratio("fnmr")}


def labelled_pairs(config: tuple[str, str, str], folder: Path, threshold: float, jobs: int,
                   cache: Path | None) -> dict[str, Any]:
    """Accuracy at ``threshold`` on a folder's pairs.csv, and the largest face of each image."""
    rows = list(csv.DictReader(open(folder / "pairs.csv")))
    paths = sorted({r[k] for r in rows for k in ("path_a", "path_b")})
    emb, missing, _ = embed(config, paths, folder, jobs, cache, folder.name)
    right, wrong = 0, []
    false_accepts = false_rejects = 0
    for r in rows:
        a, b = emb.get(r["path_a"]), emb.get(r["path_b"])
        score = float(a @ b) if a is not None and b is not None else -2.0
        match = score >= threshold
        if match == (r["same"] == "1"):
            right += 1
        else:
            wrong.append([r["path_a"], r["path_b"], r["same"], round(score, 4)])
            false_accepts += int(match)
            false_rejects += int(not match)
    return {"n_pairs": len(rows), "n_same": sum(r["same"] == "1" for r in rows), "no_face": missing,
            "accuracy": right / len(rows), "false_accepts": false_accepts, "false_rejects": false_rejects,
            "wrong": wrong[:20]}


def inspireface(config: tuple[str, str, str], threshold: float, jobs: int, cache: Path | None) -> dict[str, Any]:
    folder = DATA / "inspireface_tests"
    out = labelled_pairs(config, folder, threshold, jobs, cache)
    ids = list(csv.DictReader(open(folder / "identities.csv")))
    emb, missing, _ = embed(config, [r["path"] for r in ids], folder, jobs, cache, "inspireface_ids")
    who = {r["path"]: r["identity"] for r in ids}
    gen = [float(emb[a] @ emb[b]) for a, b in itertools.combinations(sorted(emb), 2) if who[a] == who[b]]
    imp = [float(emb[a] @ emb[b]) for a, b in itertools.combinations(sorted(emb), 2) if who[a] != who[b]]
    out["identities"] = {
        "n_images": len(ids), "no_face": missing,
        "genuine_pairs": len(gen), "genuine_accepted": int(sum(s >= threshold for s in gen)),
        "impostor_pairs": len(imp), "impostor_accepted": int(sum(s >= threshold for s in imp)),
        "max_impostor": round(max(imp), 4) if imp else None, "min_genuine": round(min(gen), 4) if gen else None,
    }
    return out


def orl_identify(config: tuple[str, str, str], jobs: int) -> dict[str, Any]:
    from faceprint import models
    from faceprint.evaluation import PipelineSpec
    from faceprint.evaluation.datasets import read_identities
    from faceprint.evaluation.identification import evaluate_identification

    detector, landmarks, model = config
    if models.get_card(model, "embedder").calibration is None:
        return {"skipped": "the embedder's card has no calibration yet"}
    spec = PipelineSpec.create(detector, model, landmarks=landmarks, select="center")
    result = evaluate_identification(read_identities(DATA / "orl_faces" / "identities.csv"), spec, jobs=jobs)
    d = result.to_dict()
    for bulky in ("enrolment_rejections", "failures_detail", "open_set", "notes"):
        d.pop(bulky, None)
    d["cmc"] = d["cmc"][:5]
    return d


def speed(config: tuple[str, str, str], n_photos: int = 64) -> dict[str, Any]:
    """ms per photo (detector), per face (landmarks), per face in batches of 32 (embedder),
    one process, on lfw_dev images (150x150, upsampled once by the pipeline for HOG)."""
    from faceprint import Analyzer, models

    detector_name, landmarks_name, model_name = config
    analyzer = Analyzer(detector=detector_name, landmarks=landmarks_name, embedder=model_name)
    rows = list(csv.DictReader(open(LFW / "identities.csv")))[:: max(1, 3825 // n_photos)][:n_photos]
    images = [analyzer.load(LFW / r["path"]) for r in rows]
    analyzer.detect_array(images[0])  # warm-up: load every model once
    t = time.perf_counter()
    faces = [analyzer.detect_array(rgb) for rgb in images]
    full_detect = (time.perf_counter() - t) / len(images)
    detector, marks = models.load_detector(detector_name), models.load_landmarks(landmarks_name)
    upsample = 1 if detector_name == "hog" else 0  # the pipeline's default for small images
    t = time.perf_counter()
    for rgb in images:
        detector.detect(rgb, upsample)
    detect_ms = (time.perf_counter() - t) / len(images) * 1e3
    boxes = [(rgb, f.box) for rgb, fs in zip(images, faces) for f in fs]
    t = time.perf_counter()
    for rgb, box in boxes:
        marks.predict(rgb, box)
    landmark_ms = (time.perf_counter() - t) / max(1, len(boxes)) * 1e3
    chips = [analyzer.aligned_chip(rgb, f) for rgb, fs in zip(images, faces) for f in fs][:32]
    embedder = models.load_embedder(model_name)
    embedder.embed_chips(chips)
    t = time.perf_counter()
    for _ in range(3):
        embedder.embed_chips(chips)
    embed_ms = (time.perf_counter() - t) / (3 * len(chips)) * 1e3
    return {"photos": len(images), "faces": len(boxes), "detect_ms_per_photo": round(detect_ms, 2),
            "detect_and_landmarks_ms_per_photo": round(full_detect * 1e3, 2),
            "landmarks_ms_per_face": round(landmark_ms, 2), "embed_ms_per_face_batch32": round(embed_ms, 2)}


def python_literal(name: str, config: tuple[str, str, str], n_images: int, missing: int, cal: dict[str, Any]) -> str:
    th = ",\n        ".join(f"{f:.0e}: {cal['thresholds'][f'{f:.0e}']!r}" for f in FARS)
    fr = ",\n        ".join(f"{f:.0e}: {cal['frr'][f'{f:.0e}']!r}" for f in FARS)
    detector, landmarks, _ = config
    return f'''{name} = Calibration(
    dataset="lfw_dev: LFW View 2 folds 1-3 ({n_images} images, 150x150), every pair formed from its identities",
    n_images={cal["n_embedded"]},
    n_identities={cal["n_identities"]},
    n_genuine_pairs={cal["n_genuine_pairs"]},
    n_impostor_pairs={cal["n_impostor_pairs"]},
    thresholds={{
        {th},
    }},
    frr={{
        {fr},
    }},
    notes=(
        "detector {detector}, landmarks {landmarks}, face nearest the image centre; {missing} of {n_images} "
        "images had no detected face and were left out. Impostor pairs share images, so they are not "
        "independent; at FAR 1e-5 about {int(cal["n_impostor_pairs"] * 1e-5)} impostor pairs decide the threshold."
    ),
)'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="keep embeddings here (.npz) between runs")
    ap.add_argument("--skip", action="append", default=[], choices=["extra", "speed"],
                    help="leave out the deepface/InspireFace/ORL checks or the speed runs")
    ap.add_argument("--python", action="store_true", help="print the Calibration literals to stderr")
    args = ap.parse_args()
    if not LFW.is_dir():
        print(f"{LFW} not found", file=sys.stderr)
        return 2
    import onnxruntime

    import faceprint

    result: dict[str, Any] = {"machine": machine(faceprint=faceprint.__version__, onnxruntime=onnxruntime.__version__,
                                                 jobs=args.jobs),
                              "configs": []}
    rows = list(csv.DictReader(open(LFW / "identities.csv")))
    paths = [r["path"] for r in rows]
    ident = {r["path"]: r["identity"] for r in rows}
    for config in CONFIGS:
        print(f"{label(config)} ...", file=sys.stderr, flush=True)
        emb, missing, seconds = embed(config, paths, LFW, args.jobs, args.cache, "lfw_dev")
        cal = all_pairs(emb, ident)
        threshold = cal["thresholds"]["1e-03"]
        entry: dict[str, Any] = {
            "detector": config[0], "landmarks": config[1], "model": config[2],
            "lfw_dev": {"n_images": len(paths), "no_face": missing, "seconds": round(seconds, 1),
                        "official_pairs": official_pairs(emb), "all_pairs": cal,
                        "per_gender_at_far_1e-3": per_gender(emb, threshold)},
        }
        if "extra" not in args.skip:
            entry["deepface_pairs_at_far_1e-3"] = labelled_pairs(config, DATA / "deepface_tests", threshold,
                                                                 args.jobs, args.cache)
            entry["inspireface_at_far_1e-3"] = inspireface(config, threshold, args.jobs, args.cache)
            entry["orl_identify"] = orl_identify(config, args.jobs)
        if "speed" not in args.skip:
            entry["speed"] = speed(config)
        result["configs"].append(entry)
        if args.python and config[1] == "fr-landmark":
            name = config[2].upper().replace("-", "_") + "_CALIBRATION"
            print(python_literal(name, config, len(paths), len(missing), cal), file=sys.stderr)
    result["machine"]["loadavg_at_end"] = [round(v, 2) for v in __import__("os").getloadavg()]
    OUT.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
