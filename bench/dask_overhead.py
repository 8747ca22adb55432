"""What running the batch pipeline on Dask costs against the local worker pool, on the same cores.

    python bench/dask_overhead.py [--images 400] [--rounds 2] [--chunks 1,4,8,16,32] [--full-enroll]
                                  [--label run] [--out bench/results_dask_overhead.json]

Prints ONE JSON document (progress on stderr) and keeps it under ``--label`` in ``--out``.
The data: ``--images`` images of ``lfw_dev/images`` evenly spread over the sorted list (the same
subset for every configuration), embedded with ``Analyzer()`` (the installed default models).

* ``local``: :func:`faceprint.batch.analyze_many` with ``jobs=1`` (this process) and ``jobs=2``
  (a fresh pool of 2 spawned workers each call, as ``faceprint embed`` runs it: the workers'
  start-up and model loading are in the time; ``steady_images_per_s`` leaves them out: images
  2..N over the time from the first result to the last).
* ``dask``: the same call with a :class:`faceprint.dask_engine.DaskEngine` on a
  ``distributed.LocalCluster`` of 1 and 2 worker processes (1 thread each) on this machine; the
  cluster and its models are started (and warmed on a few images) first, as a long-lived
  cluster is. The workers decode, detect, align *and embed*; ``worker_cpu_s_per_image`` is the
  CPU the worker processes used an image (their ``psutil`` CPU times), and
  ``images_per_core_s`` its inverse: the per-core throughput a capacity plan needs.
  ``client_cpu_s_per_image``: what this process (the client) spent an image.
* ``chunks``: images/s on 2 workers by chunk size (:data:`faceprint.dask_engine.CHUNK_SIZE`).
* ``agreement``: max |difference| of the embeddings, Dask against ``jobs=1``; same faces.
* ``--full-enroll``: ``faceprint enroll --folders lfw_dev/images`` through the CLI, with
  ``-j 2`` and with ``--dask`` (2 workers), into two galleries: seconds, subjects identical,
  max |difference| of the templates (matched by subject and image SHA-256).

The machine is shared with other jobs: each run records the load average; the numbers are rough.
"""

from __future__ import annotations

import argparse
import json
import os
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
    start, cpu0 = time.perf_counter(), time.process_time()
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
        "client_cpu_s_per_image": round((time.process_time() - cpu0) / n, 4),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }


def worker_cpu(engine: DaskEngine) -> float:
    times = engine.client.run(lambda: sum(psutil.Process().cpu_times()[:2]))
    return float(sum(times.values()))


def max_diff(a: list[ImageAnalysis], b: list[ImageAnalysis]) -> dict[str, Any]:
    same_faces = all(len(x.faces) == len(y.faces) for x, y in zip(a, b))
    diffs = [float(np.abs(f.embedding - g.embedding).max()) for x, y in zip(a, b) for f, g in zip(x.faces, y.faces)]
    return {"same_sources": [x.source for x in a] == [y.source for y in b], "same_face_counts": same_faces,
            "faces": len(diffs), "max_abs_diff": max(diffs, default=0.0)}


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest round (the machine is shared: the slower ones lost time to other jobs)."""
    return {**max(runs, key=lambda r: r["images_per_s"]), "rounds": [r["images_per_s"] for r in runs]}


def dask_runs(analyzer: Analyzer, files: list[str], workers: int, rounds: int, chunks: list[int],
              reference: list[ImageAnalysis]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, DaskEngine.connect(cluster.scheduler_address) as engine:
        list(analyze_many(analyzer, files[:16], embed=True, engine=engine))  # plugin + models on every worker
        runs = []
        for r in range(rounds):
            cpu0 = worker_cpu(engine)
            got, run = timed(analyze_many(analyzer, files, embed=True, engine=engine), len(files))
            per_image = (worker_cpu(engine) - cpu0) / len(files)
            run["worker_cpu_s_per_image"] = round(per_image, 4)
            run["images_per_core_s"] = round(1 / per_image, 1)
            runs.append(run)
            log(f"dask {workers} worker(s) round {r + 1}: {run['images_per_s']} images/s")
            if r == 0:
                out["agreement"] = max_diff(got, reference)
        out["run"] = best(runs)
        for size in chunks:
            engine.chunk_size = size
            sized = [timed(analyze_many(analyzer, files, embed=True, engine=engine), len(files))[1] for _ in range(rounds)]
            out.setdefault("chunks", {})[str(size)] = best(sized)
            log(f"dask {workers} worker(s), chunks of {size}: {out['chunks'][str(size)]['images_per_s']} images/s")
    return out


def full_enroll() -> dict[str, Any]:
    """``enroll --folders`` on all of lfw_dev through the CLI, local pool against Dask."""
    from faceprint.gallery import Gallery

    root = settings.shared_data(REPO) / "lfw_dev" / "images"
    cli = [sys.executable, "-m", "faceprint"]
    out: dict[str, Any] = {}
    faces: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                             host="127.0.0.1", dashboard_address=None) as cluster:
        for how, extra in (("local_jobs_2", ["-j", "2"]), ("dask_2_workers", ["--dask", cluster.scheduler_address])):
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
    ap.add_argument("--chunks", default="1,4,8,16,32", help="chunk sizes to time on 2 workers ('' : none)")
    ap.add_argument("--full-enroll", action="store_true")
    ap.add_argument("--label", default="run")
    ap.add_argument("--out", default=str(REPO / "bench" / "results_dask_overhead.json"))
    args = ap.parse_args()

    import distributed

    doc: dict[str, Any] = {"machine": machine(distributed=distributed.__version__), "chunk_size": CHUNK_SIZE}
    files = subset(args.images)
    analyzer = Analyzer()
    doc["data"] = {"images": len(files), "from": "lfw_dev/images, evenly spread over the sorted list",
                   "model": analyzer.model_id, "detector": analyzer.detector_card.name}
    list(analyze_many(analyzer, files[:8], embed=True, jobs=1))  # models loaded in this process
    local: dict[str, Any] = {}
    reference: list[ImageAnalysis] = []
    for jobs in (1, 2):
        runs = []
        for r in range(args.rounds):
            got, run = timed(analyze_many(analyzer, files, embed=True, jobs=jobs), len(files))
            runs.append(run)
            reference = reference or got
            log(f"local jobs={jobs} round {r + 1}: {run['images_per_s']} images/s")
        local[f"jobs_{jobs}"] = best(runs)
    doc["local"] = local
    doc["data"]["faces"] = sum(len(a.faces) for a in reference)
    chunks = [int(c) for c in args.chunks.split(",") if c.strip()]
    doc["dask"] = {
        f"workers_{n}": dask_runs(analyzer, files, n, args.rounds, chunks if n == 2 else [], reference) for n in (1, 2)
    }
    two = doc["dask"]["workers_2"]["run"]
    doc["overhead"] = {
        "dask_2_vs_local_jobs_2": round(two["images_per_s"] / local["jobs_2"]["images_per_s"], 2),
        "dask_2_vs_local_jobs_2_steady": round(two["steady_images_per_s"] / local["jobs_2"]["steady_images_per_s"], 2),
        "dask_1_vs_local_jobs_1": round(doc["dask"]["workers_1"]["run"]["images_per_s"] / local["jobs_1"]["images_per_s"], 2),
    }
    if args.full_enroll:
        doc["full_enroll"] = full_enroll()
    save_run(args.out, args.label, doc)


if __name__ == "__main__":
    main()
