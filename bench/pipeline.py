"""End-to-end speed of faceprint against face_recognition, where the time goes, and the
accuracy faceprint keeps.

    python bench/pipeline.py [--limit N] [--skip-baseline] [--skip-stages] [--skip-sessions]
                             [--skip-accuracy] [--skip-policies] [--jobs N] [--rounds 2] > out.json

Prints ONE JSON document (progress goes to stderr). Not a test. Two faceprint configurations
run next to face_recognition in every comparison (:data:`CONFIGS`):

* ``faceprint_default``: ``Analyzer()``, the installed default (fr-detect + fr-landmark +
  fr-feature with the Faceplugin pack; hog + dlib5 + dlib-resnet34 without it: the models each
  run resolved to are recorded);
* ``faceprint_dlib``: hog + dlib5 + dlib-resnet34, named explicitly.

Sections:

* ``throughput``: decode + detect + align + embed from a cold start, on (a) the 3,825 images of
  ``lfw_dev/images`` (150x150) and (b) the photos of ``deepface_tests`` and
  ``compreface_samples`` (0.1 to 36 megapixels). Each faceprint round is a fresh Python process
  (imports, model loading and worker start-up included) running
  ``Analyzer(...).embed_many(jobs=N)``; ``face_recognition`` (``load_image_file`` +
  ``face_encodings``: HOG with one upsample at full resolution, 5 landmarks, dlib's ResNet in
  dlib) runs in a fresh pool of N processes, so all use the same cores. The rounds alternate
  the order of the tools. A single-process comparison (faceprint ``jobs=1``, models loaded,
  against face_recognition in this process) on a fixed subset gives the per-core ratio.
  ``ratios`` sums up each configuration's speed against face_recognition.
* ``stages``: where the time goes: CPU and wall ms per image / per face of decode, detect,
  landmarks, align and embed, one process, models loaded (face_recognition: its decode, HOG,
  5-point predictor, then dlib's descriptor, which cuts its chip itself: "align + embed").
* ``embedder_sessions``: fr-feature's network in onnxruntime with and without its denormal
  weights flushed, at graph optimisation "extended" and "all", 1 and 2 intra-op threads,
  batches of 1 and 32, and in OpenCV's DNN module; fr-landmark likewise; agreement of the
  embeddings (cosine) with the unflushed onnxruntime ones, on real chips.
* ``lfw_accuracy``: the official lfw_dev pairs, 3 folds (each fold's threshold is the best one
  on the other two), the face nearest the image centre, a missing face counts as "different":
  each configuration from its all-images run, and dlib-resnet34 also with dlib's own runtime (a
  subprocess with ``FACEPRINT_DLIB_RUNTIME=dlib``) and how far its embeddings are from the
  onnxruntime ones.
* ``detection_policy``: recall and cost of several :class:`DetectionPolicy` settings with HOG
  (named: the policy's upsampling is HOG's) on the nose-annotated compreface photos, on
  deepface's face facts and pair images, and on a subset of LFW.

Other jobs may share the machine: every timed run records the load average and the CPU
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
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceprint import settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = settings.shared_data(ROOT)
LFW = DATA / "lfw_dev"
DEEPFACE = DATA / "deepface_tests"
COMPREFACE = DATA / "compreface_samples"

#: The faceprint configurations measured: Analyzer keyword arguments (none: the installed default).
CONFIGS: dict[str, dict[str, str]] = {
    "faceprint_default": {},
    "faceprint_dlib": {"detector": "hog", "landmarks": "dlib5", "embedder": "dlib-resnet34"},
}
BASELINE = "face_recognition"
TOOLS = (*CONFIGS, BASELINE)


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
    """CPU seconds of this process and its reaped descendants (workers, child runs), user + system."""
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


class Clock:
    """CPU (this process, all threads) and wall seconds of the timed blocks, summed per stage."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def time(self, stage: str) -> _Lap:
        return _Lap(self, stage)


class _Lap:
    def __init__(self, clock: Clock, stage: str) -> None:
        self.clock, self.stage = clock, stage

    def __enter__(self) -> None:
        self.c0, self.t0 = time.process_time(), time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        c = self.clock
        c.cpu[self.stage] = c.cpu.get(self.stage, 0.0) + time.process_time() - self.c0
        c.wall[self.stage] = c.wall.get(self.stage, 0.0) + time.perf_counter() - self.t0


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
def resolved_models(config: str) -> dict[str, str]:
    """The models ``config`` runs here (the default follows what is installed)."""
    from faceprint import Analyzer

    a = Analyzer(**CONFIGS[config])
    return {"detector": a.detector_card.id, "landmarks": a.landmarks_card.id, "embedder": a.embedder_card.id}


def run_faceprint(config: str, paths: list[str], jobs: int, *, embeddings: bool = False,
                  env: dict[str, str] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """One cold run of ``config`` in a fresh Python process (imports, model loading and worker
    start-up inside the timing); the centre faces' embeddings when ``embeddings``."""
    with tempfile.TemporaryDirectory() as tmp:
        listing, out = Path(tmp) / "paths.txt", Path(tmp) / "out"
        listing.write_text("\n".join(paths))
        cmd = [sys.executable, __file__, "--run", config, str(listing), str(out), "--jobs", str(jobs)]
        if embeddings:
            cmd.append("--embeddings")
        with Meter() as m:
            subprocess.run(cmd, env={**os.environ, **(env or {})}, check=True)
        stats = json.loads((out.with_suffix(".json")).read_text())
        centre: dict[str, np.ndarray] = {}
        if embeddings:
            data = np.load(out.with_suffix(".npz"), allow_pickle=False)
            centre = {str(p): v for p, v in zip(data["paths"], data["embeddings"])}
    result = m.to_dict(len(paths))
    result.update(jobs=jobs, **stats)
    return result, centre


def _run_main(config: str, listing: str, out: str, jobs: int, embeddings: bool) -> None:
    """The child of :func:`run_faceprint`."""
    from faceprint import Analyzer

    paths = Path(listing).read_text().splitlines()
    analyzer = Analyzer(**CONFIGS[config])
    centre: dict[str, np.ndarray] = {}
    n_faces = with_face = errors = 0
    for r in analyzer.embed_many(paths, jobs=jobs):
        if r.error is not None:
            errors += 1
            continue
        n_faces += len(r.faces)
        with_face += bool(r.faces)
        face = centre_face(r.faces, r.image_size)
        if face is not None and embeddings:
            centre[r.source] = face.embedding
    stats = {"faces": n_faces, "images_with_a_face": with_face, "errors": errors,
             "models": {k: analyzer.config()[k] for k in ("detector", "landmarks", "embedder")},
             "embedder_runtime": getattr(analyzer.embedder, "runtime", None)}
    Path(out).with_suffix(".json").write_text(json.dumps(stats))
    if embeddings:
        keys = sorted(centre)
        np.savez(Path(out).with_suffix(".npz"), paths=np.array(keys),
                 embeddings=np.stack([centre[k] for k in keys]) if keys else np.zeros((0, 0), np.float32))


def run_faceprint_warm(analyzer, paths: list[str]) -> dict:
    """One in-process run (``jobs=1``) with the models already loaded."""
    n_faces = with_face = errors = 0
    with Meter() as m:
        for r in analyzer.embed_many(paths, jobs=1):
            errors += r.error is not None
            n_faces += len(r.faces)
            with_face += bool(r.faces)
    out = m.to_dict(len(paths))
    out.update(jobs=1, faces=n_faces, images_with_a_face=with_face, errors=errors)
    return out


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
    """A fresh pool of ``processes`` (cold: each loads face_recognition's models); one process:
    in this one, models already loaded."""
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


# --- comparisons ---------------------------------------------------------------------------
def compare(paths: list[str], jobs: int, rounds: int, tools: tuple[str, ...] = TOOLS) -> dict:
    """The tools on the same images with the same cores; odd rounds run them in reverse order."""
    from faceprint import Analyzer

    runs: dict[str, list[dict]] = {t: [] for t in tools}
    warm: dict[str, Any] = {}
    if jobs == 1:  # in-process runs share loaded models: warm every tool up so that no round is cold
        if BASELINE in tools:
            _fr_init()
        for config in CONFIGS:
            if config in tools:
                warm[config] = Analyzer(**CONFIGS[config])
                run_faceprint_warm(warm[config], paths[:2])
    for i in range(rounds):
        for tool in (tools if i % 2 == 0 else tools[::-1]):
            log(f"  {tool}, {jobs} {'processes' if tool == BASELINE else 'jobs'}, {len(paths)} images ...")
            if tool == BASELINE:
                run = run_face_recognition(paths, jobs)
            elif jobs == 1:
                run = run_faceprint_warm(warm[tool], paths)
            else:
                run = run_faceprint(tool, paths, jobs)[0]
            runs[tool].append(run)
            log(f"    {run['images_per_s']} img/s, {run['cpu_ms_per_image']} CPU ms/image, "
                f"others used {run['other_processes_cpu_share']:.0%} of the machine")
    out: dict = {}
    for tool, rs in runs.items():
        ips = [r["images_per_s"] for r in rs]
        out[tool] = {
            "models": resolved_models(tool) if tool in CONFIGS else "face_recognition (hog upsample 1, 5 points, dlib ResNet in dlib)",
            "images_per_s_best": max(ips),
            "images_per_s_median": round(float(np.median(ips)), 2),
            "cpu_ms_per_image_median": round(float(np.median([r["cpu_ms_per_image"] for r in rs])), 2),
            "faces": rs[0]["faces"], "images_with_a_face": rs[0]["images_with_a_face"], "errors": rs[0]["errors"],
            "runs": rs,
        }
    if BASELINE in out:
        fr = out[BASELINE]
        out["speedup_vs_face_recognition"] = {
            config: {
                "images_per_s_best": round(out[config]["images_per_s_best"] / fr["images_per_s_best"], 2),
                "images_per_s_median": round(out[config]["images_per_s_median"] / fr["images_per_s_median"], 2),
                "cpu_per_image": round(fr["cpu_ms_per_image_median"] / out[config]["cpu_ms_per_image_median"], 2),
            }
            for config in CONFIGS if config in out
        }
    return out


# --- stages --------------------------------------------------------------------------------
def faceprint_stages(config: str, paths: list[str]) -> tuple[dict, list[np.ndarray]]:
    """CPU and wall ms of each stage of ``config`` in this process, models loaded; the chips.

    detect: the pipeline's plan (downscale to 1600 px, HOG's upsample count) and the
    detector; landmarks: the landmark model on each face found; align: the embedder's chip of
    each face; embed: all chips in batches of ``batch_size``. ``detect_array`` is the
    pipeline's own detect call (detector + landmarks + pose + quality), timed separately.
    """
    import cv2

    from faceprint import Analyzer
    from faceprint.models.faceplugin.detect import FrDetector, plan_windows

    analyzer = Analyzer(**CONFIGS[config])
    detector, landmarker, embedder = analyzer.detector, analyzer.landmarker, analyzer.embedder
    rgb0 = analyzer.load(paths[0])
    embedder.embed_chips([analyzer.aligned_chip(rgb0, f) for f in analyzer.detect_array(rgb0)][:1])  # warm up
    clock, chips, passes = Clock(), [], []
    n_faces = 0
    load0 = os.getloadavg()
    for path in paths:
        with clock.time("decode"):
            rgb = analyzer.load(path)
        h, w = rgb.shape[:2]
        with clock.time("detect"):
            scale, upsample = analyzer.policy.plan(w, h)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = rgb if scale >= 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            detector.detect(work, upsample)
        if isinstance(detector, FrDetector):
            passes.append(len(plan_windows(work.shape[1], work.shape[0], detector.policy)))
        with clock.time("detect_array"):
            faces = analyzer.detect_array(rgb)
        with clock.time("landmarks"):
            for f in faces:
                landmarker.predict(rgb, f.box)
        with clock.time("align"):
            chips += [analyzer.aligned_chip(rgb, f) for f in faces]
        n_faces += len(faces)
    with clock.time("embed"):
        for s in range(0, len(chips), analyzer.batch_size):
            embedder.embed_chips(chips[s : s + analyzer.batch_size])
    n = len(paths)
    per_image = {k: round(1000 * v / n, 2) for k, v in clock.cpu.items()}
    end_to_end = sum(per_image[k] for k in ("decode", "detect_array", "align", "embed"))
    out = {
        "models": resolved_models(config),
        "images": n,
        "faces": n_faces,
        "cpu_ms_per_image": per_image,
        "wall_ms_per_image": {k: round(1000 * v / n, 2) for k, v in clock.wall.items()},
        "cpu_ms_per_face": {k: round(1000 * clock.cpu[k] / max(1, n_faces), 2) for k in ("landmarks", "align", "embed")},
        "cpu_ms_per_image_end_to_end": round(end_to_end, 2),
        "share_of_end_to_end": {k: round(per_image[k] / end_to_end, 3) for k in ("decode", "detect_array", "align", "embed")},
        "loadavg_start": [round(v, 2) for v in load0],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }
    if passes:
        out["fr_detect_passes_per_image"] = {"min": min(passes), "mean": round(float(np.mean(passes)), 2),
                                             "max": max(passes)}
    return out, chips


def face_recognition_stages(paths: list[str]) -> dict:
    """face_recognition's own calls, as ``face_encodings`` makes them, timed one by one."""
    import face_recognition
    from face_recognition import api

    face_recognition.face_encodings(face_recognition.load_image_file(paths[0]))  # warm up
    clock, n_faces = Clock(), 0
    load0 = os.getloadavg()
    for path in paths:
        with clock.time("decode"):
            img = face_recognition.load_image_file(path)
        with clock.time("detect"):
            rects = api.face_detector(img, 1)
        with clock.time("landmarks"):
            shapes = [api.pose_predictor_5_point(img, r) for r in rects]
        with clock.time("align_and_embed"):
            for shape in shapes:
                np.array(api.face_encoder.compute_face_descriptor(img, shape, 1))
        n_faces += len(rects)
    n = len(paths)
    per_image = {k: round(1000 * v / n, 2) for k, v in clock.cpu.items()}
    end_to_end = sum(per_image.values())
    return {
        "models": "face_recognition: hog upsample 1, pose_predictor_5_point, dlib ResNet (dlib runtime)",
        "images": n,
        "faces": n_faces,
        "cpu_ms_per_image": per_image,
        "wall_ms_per_image": {k: round(1000 * v / n, 2) for k, v in clock.wall.items()},
        "cpu_ms_per_face": {k: round(1000 * clock.cpu[k] / max(1, n_faces), 2) for k in ("landmarks", "align_and_embed")},
        "cpu_ms_per_image_end_to_end": round(end_to_end, 2),
        "share_of_end_to_end": {k: round(v / end_to_end, 3) for k, v in per_image.items()},
        "loadavg_start": [round(v, 2) for v in load0],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }


def stages(sets: dict[str, list[str]], with_baseline: bool) -> tuple[dict, list[np.ndarray]]:
    out: dict = {
        "what": ("CPU ms (this process, all its threads) and wall ms per image of each stage, one process, models "
                 "loaded, each configuration with its own session settings. faceprint: decode; detect = the "
                 "pipeline's downscale plan + the detector; landmarks (on each face found); align (the embedder's "
                 "chip); embed (all chips of the set in batches of 32); detect_array = the pipeline's own detect "
                 "call (detector + landmarks + pose + quality), which the end-to-end sum uses with decode, align "
                 "and embed. face_recognition: load_image_file; HOG with one upsample; the 5-point predictor; "
                 "dlib's descriptor, which cuts the chip itself (align_and_embed)"),
    }
    default_chips: list[np.ndarray] = []
    for name, paths in sets.items():
        log(f"stages: {name}, {len(paths)} images")
        row: dict = {}
        for config in CONFIGS:
            row[config], chips = faceprint_stages(config, paths)
            if config == "faceprint_default" and not default_chips:
                default_chips = chips
            log(f"  {config}: {row[config]['cpu_ms_per_image_end_to_end']} CPU ms/image ({row[config]['cpu_ms_per_image']})")
        if with_baseline:
            row[BASELINE] = face_recognition_stages(paths)
            log(f"  {BASELINE}: {row[BASELINE]['cpu_ms_per_image_end_to_end']} CPU ms/image")
            for config in CONFIGS:
                row[config]["cpu_ratio_vs_face_recognition"] = round(
                    row[BASELINE]["cpu_ms_per_image_end_to_end"] / row[config]["cpu_ms_per_image_end_to_end"], 2)
        out[name] = row
    return out, default_chips


# --- embedder sessions ---------------------------------------------------------------------
def embedder_sessions(chips: list[np.ndarray], rounds: int = 3) -> dict:
    """fr-feature's (and fr-landmark's) network under several runtimes and session options."""
    import cv2
    import onnx
    import onnxruntime as ort

    from faceprint.models.faceplugin import feature, landmarks
    from faceprint.models.onnx.common import flush_denormal_weights
    from faceprint.models.packs import FACEPLUGIN, pack_file

    def ort_runner(graph: bytes, level: str, threads: int):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(graph, sess_options=opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0].reshape(len(x), -1)

    def cv_runner(graph: bytes, threads: int):
        net = cv2.dnn.readNetFromONNX(np.frombuffer(graph, np.uint8))

        def run(x: np.ndarray) -> np.ndarray:
            cv2.setNumThreads(threads)  # process-wide: set before every call
            net.setInput(x)
            return net.forward().reshape(len(x), -1)
        return run

    def time_configs(runners: dict[str, Any], x: np.ndarray, batches: tuple[int, ...]) -> dict:
        best: dict[str, dict[str, float]] = {}
        for r in range(rounds):
            for key, run in (runners.items() if r % 2 == 0 else list(runners.items())[::-1]):
                for b in batches:
                    xb = x[:b]
                    reps = max(1, 32 // len(xb))
                    run(xb)
                    c0, t0 = time.process_time(), time.perf_counter()
                    for _ in range(reps):
                        run(xb)
                    cpu = 1000 * (time.process_time() - c0) / (reps * len(xb))
                    wall = 1000 * (time.perf_counter() - t0) / (reps * len(xb))
                    k = f"{key}, batch {b}"
                    prev = best.get(k, {"cpu_ms": 1e9, "wall_ms": 1e9})
                    best[k] = {"cpu_ms": round(min(prev["cpu_ms"], cpu), 2), "wall_ms": round(min(prev["wall_ms"], wall), 2)}
        cv2.setNumThreads(-1)
        return best

    load0 = os.getloadavg()
    raw = pack_file(FACEPLUGIN.name, feature.MODEL_PATH).read_bytes()
    graphs = {"original": feature.session_graph(raw, flush=False), "flushed": feature.session_graph(raw)}
    parsed = onnx.ModelProto()
    parsed.ParseFromString(raw)
    n_denormal = flush_denormal_weights(parsed)
    runners: dict[str, Any] = {}
    for weights, graph in graphs.items():
        for level in ("EXTENDED", "ALL"):
            for threads in (1, 2):
                runners[f"onnxruntime {weights}, {level.lower()}, {threads} thread(s)"] = ort_runner(
                    graph, f"ORT_ENABLE_{level}", threads)
        for threads in (1, 2):
            runners[f"opencv dnn {weights}, {threads} thread(s)"] = cv_runner(graph, threads)
    x = feature.PREPROCESSING.apply(np.stack(chips[:32]))
    reference = runners["onnxruntime original, extended, 1 thread(s)"](x)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    agreement = {}
    for key, run in runners.items():
        out = run(x)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        agreement[key] = round(float((out * reference).sum(axis=1).min()), 7)
    feature_times = time_configs(runners, x, (1, 32))

    lm_raw = pack_file(FACEPLUGIN.name, landmarks.MODEL_PATH).read_bytes()
    lm = onnx.ModelProto()
    lm.ParseFromString(lm_raw)
    lm_denormal = flush_denormal_weights(lm)
    lm_graphs = {"original": lm_raw, "flushed": lm.SerializeToString()}
    lm_runners = {f"onnxruntime {w}, {level.lower()}, 1 thread(s)": ort_runner(g, f"ORT_ENABLE_{level}", 1)
                  for w, g in lm_graphs.items() for level in ("EXTENDED", "ALL")}
    crops = np.stack([np.asarray(c.mean(axis=2)[24:88, 24:88] / landmarks.PIXEL_SCALE, np.float32)[None] for c in chips[:8]])
    lm_ref = lm_runners["onnxruntime original, all, 1 thread(s)"](crops[:1])
    lm_agreement = {k: float(np.abs(r(crops[:1]) - lm_ref).max()) for k, r in lm_runners.items()}
    landmark_times = time_configs(lm_runners, crops, (1,))
    return {
        "what": ("ms per face (per crop for fr-landmark), the best of "
                 f"{rounds} alternating rounds: CPU (this process, all threads) and wall; 'original' is the "
                 "file's weights (batch made dynamic), 'flushed' its denormal weights set to 0 "
                 "(faceprint.models.onnx.common.flush_denormal_weights); chips: the first 32 lfw_dev chips of the "
                 "stages run"),
        "fr_feature": {
            "denormal_weights": n_denormal,
            "min_cosine_vs_onnxruntime_original_extended": agreement,
            "ms_per_face": feature_times,
        },
        "fr_landmark": {
            "denormal_weights": lm_denormal,
            "max_abs_output_difference_vs_original_all": lm_agreement,
            "ms_per_crop": landmark_times,
            "note": "crops: grey centre 64x64 of the chips (the timing does not depend on the content)",
        },
        "loadavg_start": [round(v, 2) for v in load0],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }


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


def lfw_accuracy(centre: dict[str, dict[str, np.ndarray]], jobs: int, limit: int | None) -> dict:
    wanted = pair_images()
    if limit:
        wanted = [p for p in wanted if p in centre["faceprint_dlib"]] or wanted[:limit]
    out: dict = {
        "protocol": ("official lfw_dev pairs (View 2 folds 1-3), 3-fold: each fold's threshold maximises "
                     "accuracy on the other two; the face nearest the image centre; a pair with a missing "
                     "face counts as 'different'"),
    }
    for config, emb in centre.items():
        out[config] = {"models": resolved_models(config), **three_fold({p: emb[p] for p in wanted if p in emb})}
    log("  dlib-resnet34 in dlib's own runtime (subprocess)")
    dlib_run, dlib_emb = run_faceprint("faceprint_dlib", wanted, jobs, embeddings=True,
                                       env={"FACEPRINT_DLIB_RUNTIME": "dlib"})
    onnx_emb = centre["faceprint_dlib"]
    both = [p for p in wanted if p in onnx_emb and p in dlib_emb]
    cos = np.array([float(np.dot(onnx_emb[p], dlib_emb[p])) for p in both])
    diff = np.array([float(np.abs(onnx_emb[p] - dlib_emb[p]).max()) for p in both])
    out["faceprint_dlib_in_dlib_runtime"] = {
        **three_fold(dlib_emb),
        "run": {k: dlib_run[k] for k in ("images", "wall_s", "images_per_s", "embedder_runtime")},
        "embedding_agreement_with_onnxruntime": {
            "images": len(both),
            "min_cosine": round(float(cos.min()), 7) if len(cos) else None,
            "max_abs_component_difference": float(diff.max()) if len(diff) else None,
        },
    }
    return out


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
        analyzer = Analyzer(**CONFIGS["faceprint_dlib"], policy=DetectionPolicy(**kwargs))
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
        "models": resolved_models("faceprint_dlib"),
        "method": (
            "HOG (hog + dlib5, named), detection only (decode excluded), one process, CPU time per photo over the "
            "compreface + deepface photos; a box counts for a nose inside it, one to one (maximum matching); "
            "'errors' = unmatched noses + unmatched boxes, CompreFace's own test criterion"
        ),
        "policies": out,
    }


# --- main ----------------------------------------------------------------------------------
def environment() -> dict:
    import cv2
    import dlib
    import onnxruntime

    from faceprint.settings import usable_cores
    from machine import machine

    return machine(usable_cores=usable_cores(), dlib=dlib.__version__, onnxruntime=onnxruntime.__version__,
                   opencv=cv2.__version__, face_recognition=face_recognition_version())


def _size(path: str) -> float:
    from PIL import Image

    with Image.open(path) as im:
        return im.size[0] * im.size[1] / 1e6


def _sizes(paths: list[str]) -> dict:
    sizes = [_size(p) for p in paths]
    return {"min": round(min(sizes), 3), "median": round(float(np.median(sizes)), 3), "max": round(max(sizes), 3)}


def ratios(throughput: dict) -> dict:
    """Each configuration's speed against face_recognition, per comparison."""
    out: dict = {}
    for name in ("a_lfw_dev", "b_large_photos", "per_core_lfw_subset"):
        section = throughput.get(name) or {}
        comparison = section.get("comparison") or section
        if "speedup_vs_face_recognition" in comparison:
            out[name] = comparison["speedup_vs_face_recognition"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="at most N images per set (a quick run)")
    parser.add_argument("--jobs", type=int, default=None, help="cores for all tools (default: all usable)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run face_recognition")
    parser.add_argument("--skip-stages", action="store_true", help="do not time the stages one by one")
    parser.add_argument("--skip-sessions", action="store_true", help="do not compare embedder session options")
    parser.add_argument("--skip-policies", action="store_true", help="do not compare detection policies")
    parser.add_argument("--skip-accuracy", action="store_true", help="do not measure LFW pair accuracy")
    parser.add_argument("--baseline-every", type=int, default=4,
                        help="compare with face_recognition on every K-th LFW image (default 4; 1 = all)")
    parser.add_argument("--per-core-every", type=int, default=8,
                        help="the single-process comparison uses every K-th LFW image (default 8)")
    parser.add_argument("--stages-every", type=int, default=16,
                        help="the stage timing uses every K-th LFW image (default 16) and every photo")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each comparison (default 2)")
    parser.add_argument("--run", nargs=3, metavar=("CONFIG", "LISTING", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--embeddings", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from faceprint.settings import usable_cores

    jobs = args.jobs or usable_cores()
    if args.run:
        _run_main(*args.run, jobs, args.embeddings)
        return

    doc: dict = {"benchmark": "bench/pipeline.py", "environment": environment(), "jobs": jobs,
                 "configurations": {c: resolved_models(c) for c in CONFIGS}}
    lfw = lfw_images()
    photos = large_photos()
    if args.limit:
        lfw, photos = lfw[: args.limit], photos[: args.limit]
    if not args.skip_baseline and face_recognition_version() is None:
        log("face_recognition is not installed (pip install --no-deps face_recognition); skipping the baseline")
        args.skip_baseline = True

    throughput: dict = {
        "what": (
            "end to end from a cold start: decode + detect + align + embed of every face. faceprint: each run a "
            f"fresh Python process (imports, model loading, worker start-up included) running "
            f"Analyzer(...).embed_many(jobs={jobs}): {jobs} worker processes decode/detect/align, the parent "
            "embeds in batches; the configurations are listed under 'configurations'. face_recognition: "
            "load_image_file + face_encodings (HOG with one upsample at full resolution, 5 landmarks, dlib's "
            f"ResNet) in a fresh pool of {jobs} processes, so all use the same {jobs} cores"
        ),
        "method": (
            f"the machine is shared with other jobs, so each comparison runs {args.rounds} round(s) of every "
            "tool, odd rounds in reverse order (faceprint_default, faceprint_dlib, face_recognition, then "
            "face_recognition, faceprint_dlib, faceprint_default, ...); 'best' is the fastest round (the least "
            "disturbed), 'median' the median; cpu_ms_per_image counts the CPU time of the tool's own processes, "
            "which other jobs disturb far less than wall time; other_processes_cpu_share is the share of the "
            "machine's CPU time that other processes used during each run"
        ),
    }
    centre: dict[str, dict[str, np.ndarray]] = {}
    all_images: dict = {}
    for config in CONFIGS:
        log(f"a_lfw_dev: {config} alone, jobs={jobs}, all {len(lfw)} images")
        all_images[config], centre[config] = run_faceprint(config, lfw, jobs, embeddings=not args.skip_accuracy)
        log(f"  {all_images[config]['images_per_s']} img/s")
    lfw_subset = lfw[:: args.baseline_every]
    throughput["a_lfw_dev"] = {
        "images": len(lfw), "megapixels": _sizes(lfw),
        "all_images": all_images,
        "comparison": None if args.skip_baseline else {
            "images": f"every {args.baseline_every}th image of lfw_dev/images (sorted paths): {len(lfw_subset)}",
            **compare(lfw_subset, jobs, args.rounds)},
    }
    tools = tuple(CONFIGS) if args.skip_baseline else TOOLS
    throughput["b_large_photos"] = {
        "images": f"all {len(photos)} photos of deepface_tests/images and compreface_samples/images",
        "megapixels": _sizes(photos),
        **compare(photos, jobs, args.rounds, tools)}
    per_core = lfw[:: args.per_core_every]
    throughput["per_core_lfw_subset"] = {
        "images": f"every {args.per_core_every}th image of lfw_dev/images (sorted paths): {len(per_core)}",
        "what": "one process each, models already loaded: faceprint jobs=1 (in-process; onnxruntime may "
                "use more threads for the embedding) against face_recognition in this process",
        **compare(per_core, 1, args.rounds, tools)}
    throughput["ratios"] = ratios(throughput)
    doc["throughput"] = throughput

    chips: list[np.ndarray] = []
    if not args.skip_stages:
        stage_sets = {"lfw_dev": lfw[:: args.stages_every], "large_photos": photos}
        doc["stages"], chips = stages(stage_sets, with_baseline=not args.skip_baseline)
    if not args.skip_sessions:
        if not chips:
            _, chips = faceprint_stages("faceprint_default", lfw[:: args.stages_every][:40])
        log("embedder sessions")
        doc["embedder_sessions"] = embedder_sessions(chips)

    if not args.skip_accuracy:
        log("LFW pairs: each configuration (from its all-images run) and dlib's runtime (subprocess)")
        doc["lfw_accuracy"] = lfw_accuracy(centre, jobs, args.limit)
        log("  " + ", ".join(f"{k} {v['accuracy_mean']}" for k, v in doc["lfw_accuracy"].items() if isinstance(v, dict)))

    if not args.skip_policies:
        log("detection policies (HOG)")
        doc["detection_policy"] = policy_comparison(args.limit)
    doc["environment"]["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
