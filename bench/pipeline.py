"""End-to-end speed of faceprint against face_recognition, and the accuracy faceprint keeps.

    python bench/pipeline.py [--limit N] [--skip-baseline] [--skip-policies] [--jobs N] > out.json

Prints ONE JSON document (progress goes to stderr). Not a test. Sections:

* ``throughput``: decode + detect + align + embed, from a cold start (model loading and worker
  start-up included), on (a) the 3,825 images of ``lfw_dev/images`` (150x150) and (b) the
  photos of ``deepface_tests`` and ``compreface_samples`` (0.1 to 36 megapixels). faceprint
  runs with its default models and policy through ``Analyzer.embed_many(jobs=N)``;
  ``face_recognition`` (``load_image_file`` + ``face_encodings``: HOG with one upsample at full
  resolution, 5 landmarks, dlib's ResNet in dlib) runs on the same images in N processes, so
  both have the same cores. A single-process pair (faceprint ``jobs=1`` against one
  face_recognition process) on a fixed subset gives the per-core ratio.
* ``lfw_accuracy``: the official lfw_dev pairs, 3 folds (each fold's threshold is the best one
  on the other two), the face nearest the image centre, a missing face counts as "different";
  with the converted ONNX model and with dlib's own runtime (a subprocess with
  ``FACEPRINT_DLIB_RUNTIME=dlib``), and how far apart their embeddings are.
* ``detection_policy``: recall and cost of several :class:`DetectionPolicy` settings on the
  nose-annotated compreface photos, on deepface's face facts and pair images, and on a subset
  of LFW.

Other jobs may share the machine: every timed section records the load average and the CPU
time the rest of the machine used meanwhile (from /proc/stat).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPRINT_SHARED_DATA", ROOT.parent / "shared" / "data"))
LFW = DATA / "lfw_dev"
DEEPFACE = DATA / "deepface_tests"
COMPREFACE = DATA / "compreface_samples"


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- measuring -----------------------------------------------------------------------------
def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / tick, total / tick


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (workers), user + system."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Meter:
    """Wall time, our CPU time, the rest of the machine's CPU time, load averages."""

    def __enter__(self) -> Meter:
        self.load_start = os.getloadavg()
        self.busy0, self.total0 = _machine_cpu()
        self.cpu0 = _own_cpu()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = _own_cpu() - self.cpu0
        busy1, total1 = _machine_cpu()
        self.machine_busy = busy1 - self.busy0
        self.load_end = os.getloadavg()

    def to_dict(self, n_images: int) -> dict:
        ncpu = os.cpu_count() or 1
        other = max(0.0, self.machine_busy - self.cpu)
        return {
            "images": n_images,
            "wall_s": round(self.wall, 3),
            "images_per_s": round(n_images / self.wall, 2) if self.wall else None,
            "cpu_s": round(self.cpu, 2),
            "cpu_ms_per_image": round(1000 * self.cpu / max(1, n_images), 2),
            "other_processes_cpu_share": round(other / (self.wall * ncpu), 3) if self.wall else None,
            "loadavg_start": [round(v, 2) for v in self.load_start],
            "loadavg_end": [round(v, 2) for v in self.load_end],
        }


# --- data ----------------------------------------------------------------------------------
def lfw_images() -> list[str]:
    return sorted(str(p) for p in (LFW / "images").glob("*/*.jpg"))


def large_photos() -> list[str]:
    return sorted(str(p) for p in (DEEPFACE / "images").glob("*.jpg")) + sorted(
        str(p) for p in (COMPREFACE / "images").glob("*.jpg")
    )


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def centre_face(faces, size):
    if not faces:
        return None
    w, h = size
    return min(faces, key=lambda f: (f.face.box.center[0] - w / 2) ** 2 + (f.face.box.center[1] - h / 2) ** 2)


# --- faceprint -----------------------------------------------------------------------------
def run_faceprint(paths: list[str], jobs: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Cold start: a new Analyzer (the embedder loads inside the timing) and a new pool."""
    from faceprint import Analyzer

    centre: dict[str, np.ndarray] = {}
    n_faces = with_face = errors = 0
    with Meter() as m:
        analyzer = Analyzer()
        for r in analyzer.embed_many(paths, jobs=jobs):
            if r.error is not None:
                errors += 1
                continue
            n_faces += len(r.faces)
            with_face += bool(r.faces)
            face = centre_face(r.faces, r.image_size)
            if face is not None:
                centre[r.source] = face.embedding
    out = m.to_dict(len(paths))
    out.update(jobs=jobs, faces=n_faces, images_with_a_face=with_face, errors=errors,
               embedder_runtime=getattr(analyzer.embedder, "runtime", None))
    return out, centre


# --- face_recognition ----------------------------------------------------------------------
def _fr_one(path: str) -> tuple[int, str | None]:
    import face_recognition

    try:
        return len(face_recognition.face_encodings(face_recognition.load_image_file(path))), None
    except Exception as exc:  # noqa: BLE001 - counted, the run goes on
        return 0, f"{type(exc).__name__}: {exc}"


def _fr_init() -> None:
    import face_recognition  # noqa: F401  (loads its models: part of its start-up)


def run_face_recognition(paths: list[str], processes: int) -> dict:
    n_faces = with_face = errors = 0
    with Meter() as m:
        if processes == 1:
            _fr_init()
            results = map(_fr_one, paths)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(processes, initializer=_fr_init)
            results = pool.imap(_fr_one, paths, chunksize=4)
        for count, error in results:
            n_faces += count
            with_face += count > 0
            errors += error is not None
        if pool is not None:
            pool.close()
            pool.join()
    out = m.to_dict(len(paths))
    out.update(processes=processes, faces=n_faces, images_with_a_face=with_face, errors=errors)
    return out


def face_recognition_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("face_recognition")
    except Exception:  # noqa: BLE001
        return None


# --- LFW accuracy --------------------------------------------------------------------------
def best_threshold(sims: np.ndarray, same: np.ndarray) -> float:
    finite = np.unique(sims[np.isfinite(sims)])
    if not len(finite):
        return float("inf")
    candidates = np.concatenate([[finite[0] - 1e-6], (finite[1:] + finite[:-1]) / 2, [finite[-1] + 1e-6]])
    acc = ((sims[None, :] >= candidates[:, None]) == same[None, :]).mean(axis=1)
    return float(candidates[int(np.argmax(acc))])


def three_fold(embeddings: dict[str, np.ndarray]) -> dict:
    rows = _rows(LFW / "pairs.csv")
    sims = np.full(len(rows), -np.inf)
    missing = 0
    for i, r in enumerate(rows):
        a, b = embeddings.get(str(LFW / r["path_a"])), embeddings.get(str(LFW / r["path_b"]))
        if a is None or b is None:
            missing += 1  # counts as "different": below every threshold
            continue
        sims[i] = float(np.dot(a, b))
    same = np.array([r["same"] == "1" for r in rows])
    folds = np.array([int(r["fold"]) for r in rows])
    per_fold = []
    for f in sorted(set(folds)):
        test = folds == f
        t = best_threshold(sims[~test], same[~test])
        per_fold.append({"fold": int(f), "threshold": round(t, 5) if np.isfinite(t) else None,
                         "accuracy": round(float(((sims[test] >= t) == same[test]).mean()), 4)})
    return {"accuracy_mean": round(float(np.mean([p["accuracy"] for p in per_fold])), 4), "folds": per_fold,
            "pairs": len(rows), "pairs_with_a_missing_face": missing}


def pair_images() -> list[str]:
    rows = _rows(LFW / "pairs.csv")
    return sorted({str(LFW / r[k]) for r in rows for k in ("path_a", "path_b")})


def centre_embeddings_subprocess(paths: list[str], jobs: int, runtime: str) -> tuple[dict[str, np.ndarray], dict]:
    """Centre-face embeddings computed in a child process with FACEPRINT_DLIB_RUNTIME set."""
    with tempfile.TemporaryDirectory() as tmp:
        listing, out = Path(tmp) / "paths.txt", Path(tmp) / "out.npz"
        listing.write_text("\n".join(paths))
        env = {**os.environ, "FACEPRINT_DLIB_RUNTIME": runtime}
        cmd = [sys.executable, __file__, "--centre-embeddings", str(listing), str(out), "--jobs", str(jobs)]
        subprocess.run(cmd, env=env, check=True)
        data = np.load(out, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        return {p: v for p, v in zip(data["paths"], data["embeddings"])}, meta


def _centre_embeddings_main(listing: str, out: str, jobs: int) -> None:
    paths = Path(listing).read_text().splitlines()
    stats, centre = run_faceprint(paths, jobs)
    keys = sorted(centre)
    np.savez(out, paths=np.array(keys), embeddings=np.stack([centre[k] for k in keys]),
             meta=np.array(json.dumps(stats)))


# --- detection policy ----------------------------------------------------------------------
def _max_matching(boxes, points) -> int:
    """Largest one-to-one matching of boxes to points inside them (augmenting paths)."""
    inside = [[j for j, (x, y) in enumerate(points) if b.x1 <= x <= b.x2 and b.y1 <= y <= b.y2] for b in boxes]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in inside[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(boxes)))


POLICIES = {
    "default: max_side 1600, upsample once if long side <= 1000": {},
    "never upsample (max_side 1600)": {"upsample": 0},
    "always upsample once (max_side 1600)": {"upsample": 1},
    "max_side 1024, upsample once if long side <= 1000": {"max_side": 1024},
    "max_side 2400, upsample once if long side <= 1000": {"max_side": 2400},
    "full resolution, upsample once if long side <= 1000": {"max_side": 10**9},
    "face_recognition's: full resolution, always upsample once": {"max_side": 10**9, "upsample": 1},
}


def policy_comparison(limit: int | None) -> dict:
    from faceprint import Analyzer
    from faceprint.pipeline import DetectionPolicy

    noses: dict[str, list[tuple[float, float]]] = {}
    for r in _rows(COMPREFACE / "noses.csv"):
        noses.setdefault(str(COMPREFACE / r["path"]), []).append((float(r["nose_x"]), float(r["nose_y"])))
    compre = sorted(str(p) for p in (COMPREFACE / "images").glob("*.jpg"))
    facts = _rows(DEEPFACE / "face_facts.csv")
    facts = [f for f in facts if f["expected_face_count"]]
    pair_imgs = sorted({str(DEEPFACE / r[k]) for r in _rows(DEEPFACE / "pairs.csv") for k in ("path_a", "path_b")})
    deep = sorted(set(pair_imgs) | {str(DEEPFACE / f["path"]) for f in facts})
    lfw_subset = lfw_images()[::10]
    if limit:
        compre, deep, lfw_subset = compre[:limit], deep[:limit], lfw_subset[:limit]
    photos = compre + deep
    out = {}
    for label, kwargs in POLICIES.items():
        analyzer = Analyzer(policy=DetectionPolicy(**kwargs))
        _ = (analyzer.detector, analyzer.landmarker)  # loaded outside the timing
        counts: dict[str, int] = {}
        boxes: dict[str, list] = {}
        cpu = {"photos": 0.0, "lfw": 0.0}
        load0 = os.getloadavg()
        for group, paths in (("photos", photos), ("lfw", lfw_subset)):
            for path in paths:
                rgb = analyzer.load(path)
                t = time.process_time()
                faces = analyzer.detect_array(rgb)
                cpu[group] += time.process_time() - t
                counts[path] = len(faces)
                boxes[path] = [f.box for f in faces]
        n_noses = sum(len(noses.get(p, [])) for p in compre)
        matched = sum(_max_matching(boxes[p], noses.get(p, [])) for p in compre)
        n_boxes = sum(len(boxes[p]) for p in compre)
        errors = {p: len(boxes[p]) + len(noses.get(p, [])) - 2 * _max_matching(boxes[p], noses.get(p, []))
                  for p in compre}
        fact_results = {}
        for f in facts:
            p = str(DEEPFACE / f["path"])
            if p in counts:
                want = int(f["expected_face_count"])
                ok = counts[p] == want if f["count_kind"] == "exact" else counts[p] >= want
                fact_results[f["path"]] = {"found": counts[p], "expected": ("" if f["count_kind"] == "exact" else ">=") + str(want), "ok": ok}
        pairs_ok = [p for p in pair_imgs if p in counts and counts[p] >= 1]
        out[label] = {
            "policy": {**{"max_side": 1600, "upsample_below": 1000, "upsample": None}, **kwargs},
            "compreface_nose_recall": f"{matched}/{n_noses}",
            "compreface_false_boxes": n_boxes - matched,
            "compreface_images_without_error": f"{sum(e == 0 for e in errors.values())}/{len(compre)}",
            "deepface_facts": fact_results,
            "deepface_facts_ok": f"{sum(v['ok'] for v in fact_results.values())}/{len(fact_results)}",
            "deepface_pair_images_with_a_face": f"{len(pairs_ok)}/{sum(p in counts for p in pair_imgs)}",
            "lfw_every_10th_with_a_face": f"{sum(counts[p] >= 1 for p in lfw_subset)}/{len(lfw_subset)}",
            "detect_cpu_ms_per_photo": round(1000 * cpu["photos"] / max(1, len(photos)), 1),
            "detect_cpu_ms_per_lfw_image": round(1000 * cpu["lfw"] / max(1, len(lfw_subset)), 2),
            "lfw_detect_note": "LFW crops are 150x150: without upsampling their ~70 px faces are below HOG's 80 px",
            "loadavg_start": [round(v, 2) for v in load0],
        }
        log(f"policy {label}: {out[label]['compreface_nose_recall']} noses, "
            f"{out[label]['deepface_pair_images_with_a_face']} pair images, "
            f"{out[label]['lfw_every_10th_with_a_face']} lfw, {out[label]['detect_cpu_ms_per_photo']} ms/photo")
    return {
        "photos": len(photos),
        "method": (
            "detection only (decode excluded), one process, CPU time per photo over the compreface + deepface "
            "photos; a box counts for a nose inside it, one to one (maximum matching); 'errors' = unmatched "
            "noses + unmatched boxes, CompreFace's own test criterion"
        ),
        "policies": out,
    }


# --- main ----------------------------------------------------------------------------------
def environment() -> dict:
    import dlib
    import onnxruntime

    from faceprint.settings import usable_cores
    from machine import machine

    return machine(usable_cores=usable_cores(), dlib=dlib.__version__, onnxruntime=onnxruntime.__version__,
                   face_recognition=face_recognition_version())


def _sizes(paths: list[str]) -> dict:
    sizes = [_size(p) for p in paths]
    return {"min": round(min(sizes), 3), "median": round(float(np.median(sizes)), 3), "max": round(max(sizes), 3)}


def compare(paths: list[str], jobs: int, rounds: int) -> dict:
    """Both tools on the same images with the same cores, in alternating order."""
    runs: dict[str, list[dict]] = {"faceprint": [], "face_recognition": []}
    if jobs == 1:  # in-process runs share loaded models: warm both up so that no round is cold
        _fr_init()
        run_faceprint(paths[:1], 1)
    for i in range(rounds):
        for tool in (("faceprint", "face_recognition") if i % 2 == 0 else ("face_recognition", "faceprint")):
            log(f"  {tool}, {jobs} {'jobs' if tool == 'faceprint' else 'processes'}, {len(paths)} images ...")
            run = run_faceprint(paths, jobs)[0] if tool == "faceprint" else run_face_recognition(paths, jobs)
            runs[tool].append(run)
            log(f"    {run['images_per_s']} img/s, {run['cpu_ms_per_image']} CPU ms/image, "
                f"others used {run['other_processes_cpu_share']:.0%} of the machine")
    out: dict = {}
    for tool, rs in runs.items():
        ips = [r["images_per_s"] for r in rs]
        out[tool] = {
            "images_per_s_best": max(ips),
            "images_per_s_median": round(float(np.median(ips)), 2),
            "cpu_ms_per_image_median": round(float(np.median([r["cpu_ms_per_image"] for r in rs])), 2),
            "faces": rs[0]["faces"], "images_with_a_face": rs[0]["images_with_a_face"], "errors": rs[0]["errors"],
            "runs": rs,
        }
    fp, fr = out["faceprint"], out["face_recognition"]
    out["speedup"] = {
        "images_per_s_best": round(fp["images_per_s_best"] / fr["images_per_s_best"], 2),
        "images_per_s_median": round(fp["images_per_s_median"] / fr["images_per_s_median"], 2),
        "cpu_per_image": round(fr["cpu_ms_per_image_median"] / fp["cpu_ms_per_image_median"], 2),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="at most N images per set (a quick run)")
    parser.add_argument("--jobs", type=int, default=None, help="cores for both (default: all usable)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run face_recognition")
    parser.add_argument("--skip-policies", action="store_true", help="do not compare detection policies")
    parser.add_argument("--skip-accuracy", action="store_true", help="do not measure LFW pair accuracy")
    parser.add_argument("--baseline-every", type=int, default=4,
                        help="compare with face_recognition on every K-th LFW image (default 4; 1 = all)")
    parser.add_argument("--per-core-every", type=int, default=8,
                        help="the single-process comparison uses every K-th LFW image (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each comparison (default 2)")
    parser.add_argument("--centre-embeddings", nargs=2, metavar=("LISTING", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    from faceprint.settings import usable_cores

    jobs = args.jobs or usable_cores()
    if args.centre_embeddings:
        _centre_embeddings_main(*args.centre_embeddings, jobs)
        return

    doc: dict = {"benchmark": "bench/pipeline.py", "environment": environment(), "jobs": jobs}
    lfw = lfw_images()
    photos = large_photos()
    if args.limit:
        lfw, photos = lfw[: args.limit], photos[: args.limit]
    if not args.skip_baseline and face_recognition_version() is None:
        log("face_recognition is not installed (pip install --no-deps face_recognition); skipping the baseline")
        args.skip_baseline = True

    throughput: dict = {
        "what": (
            "end to end from a cold start: decode + detect + align + embed of every face, model loading and "
            "worker start-up included. faceprint: default models and policy (hog, dlib5, dlib-resnet34 in "
            f"onnxruntime), Analyzer.embed_many(jobs={jobs}): {jobs} worker processes decode/detect/align, "
            "the parent embeds in batches. face_recognition: load_image_file + face_encodings (HOG with one "
            f"upsample at full resolution, 5 landmarks, dlib's ResNet) in {jobs} processes, so both use "
            f"the same {jobs} cores"
        ),
        "method": (
            f"the machine is shared with other jobs, so each comparison runs {args.rounds} round(s) of both "
            "tools, alternating which goes first (faceprint, face_recognition, face_recognition, faceprint, ...); "
            "'best' is the fastest round (the least disturbed), 'median' the median; cpu_ms_per_image counts "
            "the CPU time of the tool's own processes, which other jobs disturb far less than wall time; "
            "other_processes_cpu_share is the share of the machine's CPU time that other processes used "
            "during each run"
        ),
    }
    log(f"a_lfw_dev: faceprint alone, jobs={jobs}, all {len(lfw)} images")
    full, centre_onnx = run_faceprint(lfw, jobs)
    log(f"  {full['images_per_s']} img/s")
    lfw_subset = lfw[:: args.baseline_every]
    throughput["a_lfw_dev"] = {
        "images": len(lfw), "megapixels": _sizes(lfw),
        "faceprint_all_images": full,
        "comparison": None if args.skip_baseline else {
            "images": f"every {args.baseline_every}th image of lfw_dev/images (sorted paths): {len(lfw_subset)}",
            **compare(lfw_subset, jobs, args.rounds)},
    }
    if not args.skip_baseline:
        throughput["b_large_photos"] = {
            "images": f"all {len(photos)} photos of deepface_tests/images and compreface_samples/images",
            "megapixels": _sizes(photos),
            **compare(photos, jobs, args.rounds)}
        per_core = lfw[:: args.per_core_every]
        throughput["per_core_lfw_subset"] = {
            "images": f"every {args.per_core_every}th image of lfw_dev/images (sorted paths): {len(per_core)}",
            "what": "one process each, models already loaded: faceprint jobs=1 (in-process; onnxruntime may "
                    "still use a 2nd thread for the embedding) against face_recognition in this process",
            **compare(per_core, 1, args.rounds)}
    else:
        throughput["b_large_photos"] = {"images": len(photos), "megapixels": _sizes(photos),
                                        "faceprint": run_faceprint(photos, jobs)[0]}
    doc["throughput"] = throughput

    if not args.skip_accuracy:
        log("LFW pairs: ONNX (from the throughput run) and dlib's runtime (subprocess)")
        wanted = pair_images()
        if args.limit:
            wanted = [p for p in wanted if p in centre_onnx] or wanted[: args.limit]
        missing = [p for p in wanted if p not in centre_onnx and p not in set(lfw)]
        if missing:  # with --limit, the pair images were not all in the throughput run
            extra, _ = centre_embeddings_subprocess(missing, jobs, "onnx")
            centre_onnx.update(extra)
        dlib_emb, dlib_stats = centre_embeddings_subprocess(wanted, jobs, "dlib")
        both = [p for p in wanted if p in centre_onnx and p in dlib_emb]
        cos = np.array([float(np.dot(centre_onnx[p], dlib_emb[p])) for p in both])
        diff = np.array([float(np.abs(centre_onnx[p] - dlib_emb[p]).max()) for p in both])
        doc["lfw_accuracy"] = {
            "protocol": ("official lfw_dev pairs (View 2 folds 1-3), 3-fold: each fold's threshold maximises "
                         "accuracy on the other two; the face nearest the image centre; a pair with a missing "
                         "face counts as 'different'"),
            "onnxruntime": three_fold({p: centre_onnx[p] for p in wanted if p in centre_onnx}),
            "dlib": three_fold(dlib_emb),
            "dlib_runtime_run": {k: dlib_stats[k] for k in ("images", "wall_s", "images_per_s", "embedder_runtime")},
            "embedding_agreement": {
                "images": len(both),
                "min_cosine_onnx_vs_dlib": round(float(cos.min()), 7) if len(cos) else None,
                "max_abs_component_difference": float(diff.max()) if len(diff) else None,
            },
        }
        log(f"  onnx {doc['lfw_accuracy']['onnxruntime']['accuracy_mean']}, dlib {doc['lfw_accuracy']['dlib']['accuracy_mean']}")

    if not args.skip_policies:
        log("detection policies")
        doc["detection_policy"] = policy_comparison(args.limit)
    doc["environment"]["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(doc, indent=1))


def _size(path: str) -> float:
    from PIL import Image

    with Image.open(path) as im:
        return im.size[0] * im.size[1] / 1e6


if __name__ == "__main__":
    main()
