"""What running the batch pipeline on Dask costs against the local worker pool, on the same cores.

    python bench/dask_overhead.py [--images 400] [--rounds 2] [--chunks 1,4,8,32] [--chunk-images 200]
                                  [--label run] [--out bench/results_dask_overhead.json]
    python bench/dask_overhead.py --full-enroll

Prints ONE JSON document (progress on stderr) and keeps it under ``--label`` (``full_enroll``
for ``--full-enroll``) in ``--out``. Each round runs every configuration once, in a rotated
order, so that they share the machine's load alike; wall-clock rates are the fastest round's,
CPU time an image the median round's (steadier than wall time on a shared machine).
The data: ``--images`` images of ``lfw_dev/images`` evenly spread over the sorted list (the same
subset for every configuration), embedded with ``Analyzer()`` (the installed default models).

* ``runs.local_jobs_1`` / ``local_jobs_2``: :func:`faceprint.batch.analyze_many` with ``jobs=1``
  (this process) and ``jobs=2`` (a fresh pool of 2 spawned workers each call, as ``faceprint
  embed`` runs it: the workers' start-up and model loading are in its time and CPU;
  ``steady_images_per_s`` leaves the start-up out: images 2..N over the time from the first
  result to the last).
* ``runs.dask_1_worker`` / ``dask_2_workers``: the same call with a
  :class:`faceprint.dask_engine.DaskEngine` on a ``distributed.LocalCluster`` of 1 and 2 worker
  processes (1 thread each) on this machine, both started (and warmed on a few images) first,
  as a long-lived cluster is. The workers decode, detect, align *and embed*.
  ``worker_cpu_s_per_image``: the CPU the worker processes used an image (their ``psutil`` CPU
  times); ``images_per_worker_core_s``, its inverse, is the per-core throughput a capacity plan
  needs. ``client_cpu_s_per_image``: this process's (for the local pool: with its workers').
* ``chunks``: 2 workers, by chunk size (:data:`faceprint.dask_engine.CHUNK_SIZE`), on the first
  ``--chunk-images``.
* ``agreement_dask_vs_local_jobs_1``: max |difference| of the embeddings; same faces.
* ``--full-enroll``: ``faceprint enroll --folders lfw_dev/images`` through the CLI, with
  ``-j 2`` and with ``--dask`` (2 workers), into two galleries: seconds, subjects identical,
  max |difference| of the templates (matched by subject and image SHA-256).

The machine is shared with other jobs: each run records the load average; the numbers are rough.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from distributed import LocalCluster

from faceprint import settings
from faceprint.batch import analyze_many
from faceprint.dask_engine import CHUNK_SIZE, DaskEngine
from faceprint.pipeline import Analyzer
from faceprint.types import ImageAnalysis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine, save_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def subset(n: int) -> list[str]:
    files = sorted(str(p) for p in (settings.shared_data(REPO) / "lfw_dev" / "images").glob("*/*.jpg"))
    step = max(1, len(files) // n)
    return files[::step][:n]


def timed(results: Any, n: int) -> tuple[list[ImageAnalysis], dict[str, Any]]:
    """Consume ``results``: the analyses and the rates (overall, and from the first result on)."""
    start = time.perf_counter()
    out: list[ImageAnalysis] = []
    first = 0.0
    for analysis in results:
        if not out:
            first = time.perf_counter()
        out.append(analysis)
    end = time.perf_counter()
    assert len(out) == n
    return out, {
        "seconds": round(end - start, 2),
        "images_per_s": round(n / (end - start), 1),
        "first_result_s": round(first - start, 2),
        "steady_images_per_s": round((n - 1) / (end - first), 1) if end > first else None,
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }


def own_cpu() -> float:
    """CPU seconds of this process (all its threads) and of its finished, waited-for children
    (the local pool's workers: the pool joins them when it shuts down)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def worker_cpu(engine: DaskEngine) -> float:
    times = engine.client.run(lambda: sum(psutil.Process().cpu_times()[:2]))
    return float(sum(times.values()))


class Config:
    """One way of running the same call: locally with ``jobs``, or on ``engine``."""

    def __init__(self, name: str, jobs: int = 1, engine: DaskEngine | None = None) -> None:
        self.name, self.jobs, self.engine = name, jobs, engine
        self.runs: list[dict[str, Any]] = []
        self.first: list[ImageAnalysis] = []

    def run(self, analyzer: Analyzer, files: list[str]) -> dict[str, Any]:
        cpu0, workers0 = own_cpu(), worker_cpu(self.engine) if self.engine else 0.0
        got, run = timed(analyze_many(analyzer, files, embed=True, jobs=self.jobs, engine=self.engine), len(files))
        client = own_cpu() - cpu0
        workers = worker_cpu(self.engine) - workers0 if self.engine else 0.0
        n = len(files)
        run["cpu_s_per_image"] = round((client + workers) / n, 4)  # everything this run cost
        run["client_cpu_s_per_image"] = round(client / n, 4)
        if self.engine:
            run["worker_cpu_s_per_image"] = round(workers / n, 4)
            run["images_per_worker_core_s"] = round(n / workers, 1)
        run["images_per_cpu_s"] = round(n / (client + workers), 1)
        self.runs.append(run)
        self.first = self.first or got
        log(f"{self.name}: {run['images_per_s']} images/s, {run['cpu_s_per_image'] * 1000:.0f} ms CPU an image")
        return run

    def summary(self) -> dict[str, Any]:
        """The fastest round (the machine is shared: slower ones lost time to other jobs) and
        every round's rate; CPU an image is the median of the rounds (steadier than wall time)."""
        fastest = max(self.runs, key=lambda r: r["images_per_s"])
        return {**fastest, "rounds_images_per_s": [r["images_per_s"] for r in self.runs],
                "median_cpu_s_per_image": float(np.median([r["cpu_s_per_image"] for r in self.runs]))}


def max_diff(a: list[ImageAnalysis], b: list[ImageAnalysis]) -> dict[str, Any]:
    same_faces = all(len(x.faces) == len(y.faces) for x, y in zip(a, b))
    diffs = [float(np.abs(f.embedding - g.embedding).max()) for x, y in zip(a, b) for f, g in zip(x.faces, y.faces)]
    return {"same_sources": [x.source for x in a] == [y.source for y in b], "same_face_counts": same_faces,
            "faces": len(diffs), "max_abs_diff": max(diffs, default=0.0)}


def cluster(workers: int) -> LocalCluster:
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)


def full_enroll() -> dict[str, Any]:
    """``enroll --folders`` on all of lfw_dev through the CLI, local pool against Dask."""
    from faceprint.gallery import Gallery

    root = settings.shared_data(REPO) / "lfw_dev" / "images"
    cli = [sys.executable, "-m", "faceprint"]
    out: dict[str, Any] = {}
    faces: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp, cluster(2) as two:
        for how, extra in (("local_jobs_2", ["-j", "2"]), ("dask_2_workers", ["--dask", two.scheduler_address])):
            db = Path(tmp) / f"{how}.db"
            t0 = time.perf_counter()
            done = subprocess.run([*cli, "--gallery", str(db), "enroll", "--folders", str(root), "--json", *extra],
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            report = json.loads(done.stdout.splitlines()[-1])
            with Gallery.open(db, create=False) as g:
                faces[how] = {(f.subject, f.image_sha256): f.embedding for f in g.store.export_faces()}
            out[how] = {"exit": done.returncode, "seconds": round(seconds, 1), "enrolled": len(report["enrolled"]),
                        "rejected": len(report["rejected"]), "loadavg": [round(v, 2) for v in os.getloadavg()]}
            log(f"enroll --folders ({how}): {out[how]}")
    local, remote = faces["local_jobs_2"], faces["dask_2_workers"]
    out["same_subjects_and_images"] = local.keys() == remote.keys()
    out["subjects"] = len({s for s, _ in local})
    out["templates"] = len(local)
    out["max_abs_diff"] = max((float(np.abs(local[k] - remote[k]).max()) for k in local.keys() & remote.keys()), default=None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--chunks", default="1,4,8,32", help="chunk sizes to time on 2 workers ('': none)")
    ap.add_argument("--chunk-images", type=int, default=200, help="images of each chunk-size run")
    ap.add_argument("--full-enroll", action="store_true")
    ap.add_argument("--label", default="run")
    ap.add_argument("--out", default=str(REPO / "bench" / "results_dask_overhead.json"))
    args = ap.parse_args()

    import distributed

    if args.full_enroll:  # a run of its own (about 2 x 10 min on 2 busy cores)
        save_run(args.out, "full_enroll", {"machine": machine(distributed=distributed.__version__),
                                           "full_enroll": full_enroll()})
        return

    doc: dict[str, Any] = {"machine": machine(distributed=distributed.__version__), "chunk_size": CHUNK_SIZE}
    files = subset(args.images)
    analyzer = Analyzer()
    doc["data"] = {"images": len(files), "from": "lfw_dev/images, evenly spread over the sorted list",
                   "model": analyzer.model_id, "detector": analyzer.detector_card.name}
    list(analyze_many(analyzer, files[:8], embed=True, jobs=1))  # models loaded in this process
    with cluster(1) as one, cluster(2) as two, DaskEngine.connect(one.scheduler_address) as dask_1, \
            DaskEngine.connect(two.scheduler_address) as dask_2:
        for engine in (dask_1, dask_2):  # the plugin and its models on every worker, as on a long-lived cluster
            list(analyze_many(analyzer, files[:16], embed=True, engine=engine))
        configs = [Config("local_jobs_1", 1), Config("local_jobs_2", 2), Config("dask_1_worker", engine=dask_1),
                   Config("dask_2_workers", engine=dask_2)]
        for r in range(args.rounds):  # interleaved (rotated), so that every configuration sees the same load
            for config in configs[r % len(configs):] + configs[: r % len(configs)]:
                config.run(analyzer, files)
        doc["runs"] = {c.name: c.summary() for c in configs}
        doc["agreement_dask_vs_local_jobs_1"] = max_diff(configs[3].first, configs[0].first)
        doc["data"]["faces"] = sum(len(a.faces) for a in configs[0].first)
        chunks = [int(c) for c in args.chunks.split(",") if c.strip()]
        sized = {size: Config(f"dask_2_workers_chunks_of_{size}", engine=dask_2) for size in chunks}
        for _ in range(args.rounds if chunks else 0):
            for size, config in sized.items():
                dask_2.chunk_size = size
                config.run(analyzer, files[: args.chunk_images])
        doc["chunks"] = {str(size): config.summary() for size, config in sized.items()}
    runs = doc["runs"]

    def ratio(a: str, b: str, key: str) -> float:
        return round(runs[a][key] / runs[b][key], 2)

    doc["ratios"] = {  # Dask against the local pool on the same cores; < 1: Dask slower / costlier
        "images_per_s_dask_2_vs_local_jobs_2": ratio("dask_2_workers", "local_jobs_2", "images_per_s"),
        "images_per_s_dask_1_vs_local_jobs_1": ratio("dask_1_worker", "local_jobs_1", "images_per_s"),
        "cpu_per_image_local_jobs_2_vs_dask_2": ratio("local_jobs_2", "dask_2_workers", "median_cpu_s_per_image"),
        "cpu_per_image_local_jobs_1_vs_dask_1": ratio("local_jobs_1", "dask_1_worker", "median_cpu_s_per_image"),
    }
    save_run(args.out, args.label, doc)


if __name__ == "__main__":
    main()
