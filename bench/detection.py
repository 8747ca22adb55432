"""Face detection side by side: HOG (faceprint's default DetectionPolicy) against fr-detect
(the Faceplugin pack's detector) with its pyramid policy and as a single pass.

    FACEPRINT_MODELS_DIR=... python bench/detection.py [--explore] [--out bench/results_detection.json]

Writes ONE JSON document (progress on stderr). Not a test. Every image goes through what
``Analyzer.detect_array`` does before the landmarks: ``DetectionPolicy().plan`` (downscale
to 1600 px, the upsample count), ``detector.detect``, boxes back to full resolution, boxes
under 2 px dropped. Sets (``$FACEPRINT_SHARED_DATA`` or ``../shared/data``):

* ``compreface``: 18 photos, 46 nose points (``noses.csv``); a box is right when it holds a
  nose, one to one (CompreFace's own test); boxes holding no nose are false positives.
* ``deepface_selfie``: deepface's ``selfie-many-people.jpg`` (>= 7 faces).
* ``deepface_counts``: img1-3 (1 face each) and couple.jpg (2); exact counts.
* ``dlib_examples``: bald_guys.jpg (a collage; count not stated) and Tom_Cruise (1 face).
* ``inspireface``: pose/* (6 photos, 1 face each), rotate/rot_{0,90,180,270} (1 each),
  bulk/* (view.jpg 0, the rest 1), crop/no_face.png (0).
* ``astronaut``: scikit-image's astronaut.png, exactly 1 face.
* ``shipped``: tests/data/faces (collins, hopper: 1; two_people: 2; no_face: 0).

For exact counts, found = min(count, expected) and false positives = max(0, count -
expected); a lower bound (the selfie) has no false positives by count. Times are wall-clock
milliseconds per photo for detection alone (the plan's resize included, decoding excluded),
one process, with the detector's own thread setting; the machine is shared, so the load
average is recorded.

``--explore`` adds the measurements that chose the policy (colour order, letterbox vs
squeeze, score threshold, pyramid depth, overlap, session options and threads).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceprint import settings  # noqa: E402
from faceprint.imageio import load_image  # noqa: E402
from faceprint.models.base import Detector, RawDetection  # noqa: E402
from faceprint.pipeline import DetectionPolicy  # noqa: E402
from machine import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = settings.shared_data(ROOT)


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


@dataclass
class Item:
    """One photo and what is known about its faces."""

    group: str
    path: Path
    expected: int | None  # exact count, or a lower bound when ``at_least``
    at_least: bool = False
    noses: list[tuple[float, float]] = field(default_factory=list)
    #: Builds the picture when it is not a file (the collages).
    make: Callable[[], np.ndarray] | None = None

    def load(self) -> np.ndarray:
        return self.make() if self.make is not None else load_image(str(self.path))

    @property
    def name(self) -> str:
        return self.path.name


def astronaut_path() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / "astronaut.png"


def items() -> list[Item]:
    out: list[Item] = []
    cf = DATA / "compreface_samples"
    if cf.is_dir():
        noses: dict[str, list[tuple[float, float]]] = {}
        with open(cf / "noses.csv", newline="") as f:
            for row in csv.DictReader(f):
                noses.setdefault(row["path"], []).append((float(row["nose_x"]), float(row["nose_y"])))
        with open(cf / "face_counts.csv", newline="") as f:
            for row in csv.DictReader(f):
                out.append(Item("compreface", cf / row["path"], int(row["face_count"]), noses=noses.get(row["path"], [])))
    if cf.is_dir():
        out += collages(cf, [it for it in out if it.group == "compreface" and len(it.noses) >= 2])
    df = DATA / "deepface_tests" / "images"
    if df.is_dir():
        out.append(Item("deepface_selfie", df / "selfie-many-people.jpg", 7, at_least=True))
        for name, n in (("img1.jpg", 1), ("img2.jpg", 1), ("img3.jpg", 1), ("couple.jpg", 2)):
            out.append(Item("deepface_counts", df / name, n))
    dl = DATA / "dlib_examples" / "images"
    if dl.is_dir():
        out.append(Item("dlib_examples", dl / "bald_guys.jpg", None))
        out.append(Item("dlib_examples", dl / "Tom_Cruise_avp_2014_4.jpg", 1))
    ins = DATA / "inspireface_tests" / "images"
    if ins.is_dir():
        for p in sorted((ins / "pose").iterdir()):
            out.append(Item("inspireface_pose", p, 1))
        for r in (0, 90, 180, 270):
            out.append(Item("inspireface_rotate", ins / "rotate" / f"rot_{r}.jpg", 1))
        for name in ("kun.jpg", "jntm.jpg", "woman.png", "yifei.jpg"):
            out.append(Item("inspireface_bulk", ins / "bulk" / name, 1))
        out.append(Item("inspireface_bulk", ins / "bulk" / "view.jpg", 0))
        out.append(Item("inspireface_bulk", ins / "crop" / "no_face.png", 0))
    out.append(Item("astronaut", astronaut_path(), 1))
    shipped = ROOT / "tests" / "data" / "faces"
    for name, n in (("collins.jpg", 1), ("hopper.jpg", 1), ("two_people.jpg", 2), ("no_face.png", 0)):
        out.append(Item("shipped", shipped / name, n))
    return out


def collages(folder: Path, groups: list[Item]) -> list[Item]:
    """Small faces in big photos, which no set here has: the compreface group photos (about
    800x533, faces 36-110 px) laid side by side on a grid, ``n x n`` photos per collage, so
    that the faces keep their pixel size while the picture grows to 1600 / 2400 / 3200 px.
    Noses move with their photo."""
    import cv2

    photos = [(it, load_image(str(it.path))) for it in groups]
    cell_w, cell_h = 800, 534
    out = []
    for n in (2, 3, 4):
        chosen = [photos[i % len(photos)] for i in range(n * n)]

        def make(chosen: list[tuple[Item, np.ndarray]] = chosen, n: int = n) -> np.ndarray:
            canvas = np.full((cell_h * n, cell_w * n, 3), 128, np.uint8)
            for k, (_, rgb) in enumerate(chosen):
                r, c = divmod(k, n)
                h, w = rgb.shape[:2]
                tile = rgb if (w, h) == (cell_w, cell_h) else cv2.resize(rgb, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
                canvas[r * cell_h : (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w] = tile
            return canvas

        noses: list[tuple[float, float]] = []
        for k, (it, rgb) in enumerate(chosen):
            r, c = divmod(k, n)
            h, w = rgb.shape[:2]
            noses += [(c * cell_w + x * cell_w / w, r * cell_h + y * cell_h / h) for x, y in it.noses]
        out.append(Item("compreface_collage", folder / f"collage_{n}x{n}", len(noses), noses=noses, make=make))
    return out


# --- running a detector the way the pipeline does ------------------------------------------
def detect_like_pipeline(detector: Detector, rgb: np.ndarray, policy: DetectionPolicy) -> list[RawDetection]:
    """``Analyzer.detect_array`` up to the landmarks: plan, detect, boxes back to full size."""
    import cv2

    h, w = rgb.shape[:2]
    scale, upsample = policy.plan(w, h)
    work = rgb
    if scale < 1.0:
        work = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    out = []
    for det in detector.detect(work, upsample):
        box = (det.box if scale >= 1.0 else det.box.scaled(1.0 / scale)).clipped(w, h)
        if box.width >= 2 and box.height >= 2:
            out.append(RawDetection(box, det.score))
    return out


def match_noses(dets: list[RawDetection], noses: list[tuple[float, float]]) -> tuple[int, int]:
    """(noses matched, boxes matching none): each box takes at most one nose, one to one,
    best-scoring box first, the nose nearest its centre."""
    free = list(noses)
    fp = 0
    for d in sorted(dets, key=lambda d: -d.score):
        inside = [n for n in free if d.box.x1 <= n[0] <= d.box.x2 and d.box.y1 <= n[1] <= d.box.y2]
        if not inside:
            fp += 1
            continue
        cx, cy = d.box.center
        best = min(inside, key=lambda n: (n[0] - cx) ** 2 + (n[1] - cy) ** 2)
        free.remove(best)
    return len(noses) - len(free), fp


def score_item(item: Item, dets: list[RawDetection]) -> dict[str, Any]:
    n = len(dets)
    if item.noses or item.group == "compreface":
        found, fp = match_noses(dets, item.noses)
        return {"faces": n, "found": found, "expected": len(item.noses), "false_positives": fp}
    if item.expected is None:
        return {"faces": n}
    if item.at_least:
        return {"faces": n, "found": min(n, item.expected), "expected": item.expected, "at_least": True}
    return {"faces": n, "found": min(n, item.expected), "expected": item.expected,
            "false_positives": max(0, n - item.expected)}


def evaluate(name: str, detector: Detector, images: list[tuple[Item, np.ndarray]],
             policy: DetectionPolicy, repeats: int = 1) -> dict[str, Any]:
    per_image = []
    times = []
    for item, rgb in images:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            dets = detect_like_pipeline(detector, rgb, policy)
            best = min(best, time.perf_counter() - t0)
        times.append(best)
        row = {"group": item.group, "image": item.name, "size": [rgb.shape[1], rgb.shape[0]],
               "ms": round(best * 1000, 1), **score_item(item, dets)}
        per_image.append(row)
    groups: dict[str, dict[str, Any]] = {}
    for row in per_image:
        g = groups.setdefault(row["group"], {"photos": 0, "faces": 0, "found": 0, "expected": 0,
                                            "false_positives": 0, "ms": 0.0})
        g["photos"] += 1
        g["faces"] += row["faces"]
        g["found"] += row.get("found", 0)
        g["expected"] += row.get("expected", 0)
        g["false_positives"] += row.get("false_positives", 0)
        g["ms"] += row["ms"]
    for g in groups.values():
        g["ms_per_photo"] = round(g.pop("ms") / g["photos"], 1)
    summary = {
        "found": sum(g["found"] for g in groups.values()),
        "expected": sum(g["expected"] for g in groups.values()),
        "false_positives": sum(g["false_positives"] for g in groups.values()),
        "ms_per_photo": round(1000 * float(np.mean(times)), 1),
    }
    log(f"{name:40s} {summary} " + " ".join(f"{k}={v['found']}/{v['expected']} fp{v['false_positives']}"
                                           for k, v in groups.items()))
    return {"name": name, "summary": summary, "groups": groups, "images": per_image}


# --- the detectors --------------------------------------------------------------------------
def hog() -> Detector:
    from faceprint import models

    return models.load_detector("hog")


def fr(policy: Any, threads: int | None = None, **session: Any) -> Detector:
    from faceprint.models.faceplugin import detect

    kwargs: dict[str, Any] = {}
    if threads is not None:
        kwargs["threads"] = threads
    return detect.FrDetector(detect.FR_DETECT_CARD, policy, **kwargs)


def session_speed(images: list[tuple[Item, np.ndarray]]) -> list[dict[str, Any]]:
    """The network alone on the photos' whole-image inputs: graph optimisation ALL vs EXTENDED
    vs BASIC, 1 vs 2 intra-op threads, one pass per run vs batches of 16."""
    import onnxruntime as ort

    from faceprint.models.faceplugin import detect

    path = detect.pack_file("faceplugin", detect.MODEL_PATH)
    data = detect.batchable_model(path.read_bytes())
    blobs = [detect.network_input(rgb, detect.whole_image(rgb.shape[1], rgb.shape[0], "letterbox"), "rgb")
             for _, rgb in images]
    batch = np.concatenate(blobs[: detect.BATCH])
    out = []
    for level_name in ("ORT_ENABLE_ALL", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_BASIC"):
        for threads in (1, 2):
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level_name)
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            s = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
            for b in blobs[:3]:
                s.run(None, {"input": b})
            single, batched = [], []
            for _ in range(3):
                t0 = time.perf_counter()
                for b in blobs:
                    s.run(None, {"input": b})
                single.append((time.perf_counter() - t0) / len(blobs))
                t0 = time.perf_counter()
                s.run(None, {"input": batch})
                batched.append((time.perf_counter() - t0) / len(batch))
            row = {"graph_optimization": level_name, "threads": threads,
                   "ms_per_pass": round(1000 * min(single), 2), "ms_per_pass_batch16": round(1000 * min(batched), 2)}
            log(row)
            out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--explore", action="store_true", help="also measure the policy's alternatives")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_detection.json"))
    args = ap.parse_args()

    from faceprint.models.faceplugin import detect

    all_items = [it for it in items() if it.make is not None or it.path.exists()]
    images = [(it, it.load()) for it in all_items]
    log(f"{len(images)} photos from {DATA}")
    policy = DetectionPolicy()
    result: dict[str, Any] = {
        "machine": machine(onnxruntime=__import__("onnxruntime").__version__),
        "data": str(DATA),
        "pipeline_policy": asdict(policy),
        "fr_detect_policy": asdict(detect.FrDetectPolicy()),
        "runs": [],
    }
    runs: list[tuple[str, Callable[[], Detector]]] = [
        ("hog (default DetectionPolicy)", hog),
        ("fr-detect (pyramid policy)", lambda: fr(detect.FrDetectPolicy())),
        ("fr-detect (single pass)", lambda: fr(detect.SINGLE_PASS)),
    ]
    if args.explore:
        base = detect.FrDetectPolicy()
        variants: list[tuple[str, Any]] = [
            ("single pass, squeeze, BGR (as the package's JS)", replace(base, levels=0, fit="squeeze", colour="bgr")),
            ("single pass, squeeze, RGB", replace(base, levels=0, fit="squeeze")),
            ("single pass, letterbox, BGR", replace(base, levels=0, colour="bgr")),
            ("pyramid, BGR", replace(base, colour="bgr")),
            ("pyramid, squeeze", replace(base, fit="squeeze")),
            ("pyramid, 1 level", replace(base, levels=1)),
            ("pyramid, 3 levels", replace(base, levels=3)),
            ("pyramid, max_scale 2", replace(base, max_scale=2.0)),
            ("pyramid, overlap 0.15", replace(base, overlap=0.15)),
            ("pyramid, overlap 0.4", replace(base, overlap=0.4)),
            ("pyramid, tile score >= 0.9", replace(base, tile_score_threshold=0.9)),
            ("pyramid, tile score >= 0.97", replace(base, tile_score_threshold=0.97)),
            ("pyramid, tiles' scores as the whole image's (0.7)", replace(base, tile_score_threshold=0.7)),
            ("pyramid, any tile box size", replace(base, tile_face=(0.0, 1e9))),
            ("pyramid, containment 0.5", replace(base, containment=0.5)),
            ("pyramid, no containment", replace(base, containment=1.0)),
        ]
        for t in (0.5, 0.6, 0.8, 0.9):
            variants.append((f"single pass, score >= {t}", replace(base, levels=0, score_threshold=t)))
        for label, pol in variants:
            runs.append((f"fr-detect ({label})", lambda pol=pol: fr(pol)))
        runs.append(("fr-detect (pyramid policy, 2 threads)", lambda: fr(base, threads=2)))
    for k, (name, make) in enumerate(runs):
        det = make()
        run = evaluate(name, det, images, policy)
        if k >= 3:  # the alternatives: totals per set only, to keep the file readable
            run.pop("images")
        result["runs"].append(run)
    if args.explore:
        result["session_options"] = session_speed(images)
    text = json.dumps(result, indent=1)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text + "\n")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
