"""Gallery migration (faceprint.gallery.migrate): the box-matching threshold and a real migration.

1. ``match``: how far apart the boxes of dlib's HOG and fr-detect are for the same face, and how
   close another face's box comes (no annotations needed), on photos both detectors read: a random
   300 lfw_dev images (seed 0), compreface_samples, dlib_examples, the first 60
   face_recognition_examples and tests/data/faces. For every HOG box: the best and second-best
   IoU among fr-detect's boxes of the photo (the same in the other direction). The gap between
   the same face's IoU and a neighbour's is where ``MATCH_IOU`` must sit.
2. ``migration``: a dlib gallery of ``--people`` lfw_dev people with 2+ photos (first photo of
   each, in name order) is migrated to fr-feature; faces lost, seconds, and how each enrolled
   person's second photo is identified before and after (right, unknown, wrong; at each model's
   FAR 1e-3 threshold).

Needs ../shared/data and the faceplugin pack.

    python bench/gallery_migrate.py [--people 200] > bench/results_gallery_migrate.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import Analyzer, settings
from faceprint.gallery import Enrolled, Gallery
from faceprint.gallery.migrate import MATCH_IOU, migrate_gallery
from machine import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = settings.shared_data(ROOT)


def photos() -> list[Path]:
    random.seed(0)
    lfw = sorted((DATA / "lfw_dev" / "images").glob("*/*.jpg"))
    files = sorted(p for p in (ROOT / "tests" / "data" / "faces").iterdir() if p.suffix in {".jpg", ".png"})
    files += random.sample(lfw, 300)
    files += sorted((DATA / "compreface_samples").rglob("*.jp*g"))
    files += sorted((DATA / "dlib_examples").rglob("*.jp*g"))
    files += sorted((DATA / "face_recognition_examples").rglob("*.jp*g"))[:60]
    return files


def quantiles(values: list[float]) -> dict[str, float]:
    a = np.array(values)
    return {f"p{q:g}": round(float(np.quantile(a, q / 100)), 3) for q in (0, 1, 5, 50, 95, 100)} if values else {}


def match() -> dict[str, Any]:
    hog, fr = Analyzer(embedder="dlib-resnet34"), Analyzer(embedder="fr-feature")
    sides: dict[str, dict[str, list[float]]] = {"hog_in_fr": {"best": [], "second": []},
                                                 "fr_in_hog": {"best": [], "second": []}}
    files = photos()
    used = 0
    for i, f in enumerate(files):
        try:
            rgb = hog.load(f)
        except Exception:  # noqa: BLE001 - a file a detector cannot read is left out
            continue
        used += 1
        a, b = [x.box for x in hog.detect_array(rgb)], [x.box for x in fr.detect_array(rgb)]
        for name, (mine, theirs) in {"hog_in_fr": (a, b), "fr_in_hog": (b, a)}.items():
            for box in mine:
                ious = sorted((box.iou(o) for o in theirs), reverse=True) + [0.0, 0.0]
                sides[name]["best"].append(float(ious[0]))
                sides[name]["second"].append(float(ious[1]))
        print(f"match {i + 1}/{len(files)}", file=sys.stderr, end="\r")
    out: dict[str, Any] = {"photos": used}
    for name, lists in sides.items():
        best = lists["best"]
        out[name] = {
            "boxes": len(best),
            "best_iou": quantiles(best),
            "best_below_match_iou": sum(v < MATCH_IOU for v in best),
            "best_in_0.2_0.45": sum(0.2 <= v < 0.45 for v in best),
            "second_best_iou_max": round(max(lists["second"], default=0.0), 3),
            "second_best_above_0.1": sum(v > 0.1 for v in lists["second"]),
        }
    return out


def migration(people: int) -> dict[str, Any]:
    root = DATA / "lfw_dev" / "images"
    chosen = [d for d in sorted(root.iterdir()) if len(list(d.glob("*.jpg"))) >= 2][:people]
    enrol = [(d.name, str(sorted(d.glob("*.jpg"))[0])) for d in chosen]
    probes = {d.name: sorted(d.glob("*.jpg"))[1] for d in chosen}

    def identification(gallery: Gallery, names: list[str]) -> dict[str, int]:
        """Each enrolled person's second photo, its face nearest the centre (lfw_dev is centred)."""
        out = {"right": 0, "unknown": 0, "wrong": 0, "no_face": 0}
        for name in names:
            found = gallery.identify(probes[name], top_k=1)
            centre = min(found, key=lambda f: abs(f.box.center[0] - 125) + abs(f.box.center[1] - 125), default=None)
            key = ("no_face" if centre is None else "right" if centre.identity == name
                   else "unknown" if centre.identity is None else "wrong")
            out[key] += 1
        return out

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lfw.db"
        with Gallery.open(path, analyzer=Analyzer(embedder="dlib-resnet34")) as g:
            names = [r.subject for r in g.enroll_many(enrol) if isinstance(r, Enrolled)]
            before = identification(g, names)
        start = time.perf_counter()
        result = migrate_gallery(path, to="fr-feature", drop_missing=True)
        seconds = time.perf_counter() - start
        with Gallery.open(path) as g:
            after = identification(g, names)
    return {
        "people": len(chosen), "enrolled_with_dlib": len(names), "migrated": result.templates,
        "lost": [f.to_dict() for f in result.lost], "migration_seconds": round(seconds, 1),
        "second_photo_at_far_1e-3": {"dlib-resnet34": before, "fr-feature": after},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200)
    args = parser.parse_args()
    doc = {"machine": machine(), "match_iou": MATCH_IOU, "match": match(), "migration": migration(args.people)}
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
