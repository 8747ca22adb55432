"""Detection scores of true faces and false positives, per detector: the data behind each
detector card's ``min_score`` (the score below which the Analyzer drops a face by default).

Every detector runs with no minimum (``Analyzer(min_score=-inf)``; fr-detect still applies
its own network threshold of 0.7, which is part of its decoding) on data whose faces are known:

* ``compreface``: compreface_samples/images, one nose point per face (46 noses, 18 photos,
  0-8 faces each). A detection is a true face when its box holds a nose not yet taken (best
  score first), else a false positive; recall is noses matched / noses.
* ``counted``: face_recognition_examples (every image in identities.csv, 1 face each, and the
  3 of multi_face.csv, 2 each), dlib_examples' Tom_Cruise_avp_2014_4.jpg (1) and the two photos
  of ``make demo`` (examples/demo.py: scikit-image's astronaut and its mirrored, shrunk,
  rotated copy, 1 face each). With ``n`` faces known and no boxes, the ``n`` best-scoring
  detections count as the true faces and the rest as false positives. obama_and_biden.jpg
  counts 3 (multi_face.csv says 2, from its name; a child is in the photo too).
* ``lfw``: every ``--lfw-step``-th image of lfw_dev (one person at the centre of each). The
  detection holding the image centre is the true face; other detections are not counted
  (LFW photos often show real faces behind). Gives recall only.

For each detector and candidate floor: true faces kept (recall), false positives kept.
``suggested``: the lowest floor that drops every false positive measured, and the recall it
costs; ``card``: the value the detector's card carries now (chosen from these numbers; see
bench/README.md, section 'Minimum detection score'). Prints one JSON document and writes
bench/results_min_score.json.

    .venv/bin/python bench/min_score.py [--lfw-step 8] [--detectors fr-detect,hog,mmod,haar]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import models
from faceprint.pipeline import Analyzer
from machine import machine  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _demo_photos(workdir: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "examples"))
    import demo

    return demo.sample_photos(workdir)


def compreface_truth() -> dict[Path, list[tuple[float, float]]]:
    base = DATA / "compreface_samples"
    noses: dict[Path, list[tuple[float, float]]] = {}
    with open(base / "face_counts.csv") as fh:
        for row in csv.DictReader(fh):
            noses[base / row["path"]] = []
    with open(base / "noses.csv") as fh:
        for row in csv.DictReader(fh):
            noses[base / row["path"]].append((float(row["nose_x"]), float(row["nose_y"])))
    return noses


def counted_truth(workdir: Path) -> dict[Path, int]:
    fr = DATA / "face_recognition_examples"
    counts: dict[Path, int] = {}
    with open(fr / "identities.csv") as fh:
        for row in csv.DictReader(fh):
            counts[fr / row["path"]] = 1
    with open(fr / "multi_face.csv") as fh:
        for row in csv.DictReader(fh):
            counts[fr / row["path"]] = int(row["expected_face_count"])
    # multi_face.csv counts from the file name; the photo also shows a child (bottom right),
    # seen by eye: every detector finds her.
    counts[fr / "examples/knn_examples/test/obama_and_biden.jpg"] = 3
    counts[DATA / "dlib_examples" / "images" / "Tom_Cruise_avp_2014_4.jpg"] = 1
    for photo in _demo_photos(workdir):
        counts[photo] = 1
    return counts


def lfw_images(step: int) -> list[Path]:
    with open(DATA / "lfw_dev" / "identities.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [DATA / "lfw_dev" / r["path"] for r in rows[::step]]


def label_detector(name: str, compreface: dict[Path, list[tuple[float, float]]], counted: dict[Path, int],
                   lfw: list[Path]) -> dict[str, Any]:
    """Scores of true faces and false positives of one detector, per data set."""
    analyzer = Analyzer(detector=name, min_score=-math.inf)
    true_scores: dict[str, list[float]] = {"compreface": [], "counted": [], "lfw": []}
    false_scores: dict[str, list[dict[str, Any]]] = {"compreface": [], "counted": []}
    n_true = {"compreface": sum(len(v) for v in compreface.values()), "counted": sum(counted.values()), "lfw": len(lfw)}
    started = time.perf_counter()
    for path, noses in compreface.items():
        faces = sorted(analyzer.detect(path), key=lambda f: -f.score)
        free = list(noses)
        for f in faces:
            hit = next((n for n in free if f.box.x1 <= n[0] <= f.box.x2 and f.box.y1 <= n[1] <= f.box.y2), None)
            if hit is not None:
                free.remove(hit)
                true_scores["compreface"].append(f.score)
            else:
                false_scores["compreface"].append({"image": path.name, "score": round(f.score, 4),
                                                   "box": [round(v) for v in f.box.to_list()]})
    for path, n in counted.items():
        faces = sorted(analyzer.detect(path), key=lambda f: -f.score)
        true_scores["counted"] += [f.score for f in faces[:n]]
        false_scores["counted"] += [{"image": path.name, "score": round(f.score, 4),
                                     "box": [round(v) for v in f.box.to_list()]} for f in faces[n:]]
    for path in lfw:
        rgb = analyzer.load(path)
        cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
        central = [f.score for f in analyzer.detect_array(rgb)
                   if f.box.x1 <= cx <= f.box.x2 and f.box.y1 <= cy <= f.box.y2]
        if central:
            true_scores["lfw"].append(max(central))
    return {"true": true_scores, "false": false_scores, "n_true": n_true,
            "seconds": round(time.perf_counter() - started, 1)}


def sweep(labelled: dict[str, Any], floors: list[float]) -> list[dict[str, Any]]:
    rows = []
    for floor in floors:
        row: dict[str, Any] = {"min_score": floor}
        for ds, scores in labelled["true"].items():
            kept = sum(s >= floor for s in scores)
            row[f"recall_{ds}"] = round(kept / labelled["n_true"][ds], 4) if labelled["n_true"][ds] else None
        for ds, fps in labelled["false"].items():
            row[f"false_{ds}"] = sum(fp["score"] >= floor for fp in fps)
        rows.append(row)
    return rows


def summarise(name: str, labelled: dict[str, Any]) -> dict[str, Any]:
    all_true = sorted(s for scores in labelled["true"].values() for s in scores)
    all_false = sorted(fp["score"] for fps in labelled["false"].values() for fp in fps)
    # Candidate floors: just above each false positive, and the card's value.
    card = models.get_card(name, "detector").min_score
    above = [math.nextafter(s, math.inf) for s in all_false]
    floors = sorted({round(f, 4) for f in [*above, *([card] if card is not None else [])]} | {-math.inf})
    floors = [f if math.isfinite(f) else -1e9 for f in floors]
    suggested = round(math.nextafter(all_false[-1], math.inf) + 5e-5, 4) if all_false else None
    table = sweep(labelled, floors)
    return {
        "detector": name,
        "card_min_score": card,
        "n_true": labelled["n_true"],
        "true_scores": {"min": round(all_true[0], 4) if all_true else None,
                        "p01": round(float(np.percentile(all_true, 1)), 4) if all_true else None,
                        "p05": round(float(np.percentile(all_true, 5)), 4) if all_true else None,
                        "median": round(float(np.median(all_true)), 4) if all_true else None},
        "lowest_true": {ds: [round(s, 4) for s in sorted(scores)[:8]] for ds, scores in labelled["true"].items()},
        "false_positives": {ds: sorted(fps, key=lambda fp: -fp["score"]) for ds, fps in labelled["false"].items()},
        "suggested_min_score": suggested,
        "at_suggested": sweep(labelled, [suggested])[0] if suggested is not None else None,
        "at_card": sweep(labelled, [card])[0] if card is not None else None,
        "no_floor": sweep(labelled, [-math.inf])[0],
        "sweep": table,
        "seconds": labelled["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw-step", type=int, default=8)
    parser.add_argument("--detectors", default="fr-detect,hog,mmod,haar")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_min_score.json")))
    parser.add_argument("--update", action="store_true",
                        help="Keep the other detectors' entries of the results file (mmod takes ~25 min on 2 cores)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="min-score-") as tmp:
        compreface = compreface_truth()
        counted = counted_truth(Path(tmp))
        lfw = lfw_images(args.lfw_step)
        results = []
        for name in args.detectors.split(","):
            print(f"{name} ...", file=sys.stderr, flush=True)
            results.append(summarise(name, label_detector(name, compreface, counted, lfw)))
    if args.update and Path(args.out).exists():
        previous = json.loads(Path(args.out).read_text())
        done = {r["detector"] for r in results}
        results = [r for r in previous["detectors"] if r["detector"] not in done] + results
        for r in results:  # the card values may have changed since
            r["card_min_score"] = models.get_card(r["detector"], "detector").min_score
    doc = {
        "data": {"compreface": f"compreface_samples/images ({len(compreface)} photos, noses.csv)",
                 "counted": f"{len(counted)} images of known face count (face_recognition_examples, dlib_examples' "
                            "Tom Cruise, the 2 photos of make demo)",
                 "lfw": f"lfw_dev identities.csv every {args.lfw_step}th image ({len(lfw)}), the face at the centre"},
        "machine": machine(),
        "detectors": results,
    }
    text = json.dumps(doc, indent=1)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
