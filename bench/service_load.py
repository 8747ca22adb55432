"""Load on the HTTP service: N concurrent clients calling /v1/identify and /v1/verify.

    python bench/service_load.py [--subjects 2000] [--clients 1,4,16] [--requests 320] > bench/results_service_load.json
    python bench/service_load.py --backend postgresql --workers 2 ...   # the gallery in PostgreSQL + pgvector

Prints one JSON document. Not a test. Loopback only, bounded loops.

1. A gallery of ``--subjects`` people is enrolled through the library (the batch pipeline):
   the first usable photo of every lfw_dev person, then second photos of people with several,
   as extra subjects, until the count is reached.
2. ``faceprint serve`` is started on a free loopback port (a real uvicorn process, default
   settings but no rate limit), and a ``recognize`` key is made with ``faceprint keys create``.
3. For each client count N, ``--requests`` requests are sent by N threads, each with its own
   keep-alive connection: alternately ``/v1/identify`` (one photo) and ``/v1/verify`` (two
   photos), multipart uploads of real lfw_dev photos not used for enrolment, in which a face is
   found (a photo without one gets a correct 422 no_face). Reported:
   requests/s, p50/p99 latency per endpoint and overall, and errors (any status but 200, or a
   connection failure). The goal: 0 errors at 16 concurrent clients.

Both the server and the clients run on this machine, so the clients take some of its CPU.

``--backend postgresql``: the gallery is a PostgreSQL database (PostgreSQL 16 + pgvector from the
PyPI package pgserver, started here on a Unix socket in the temporary folder) instead of a SQLite
file; with ``--workers 2`` two service processes share it, each searching in the database.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np

from machine import machine  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw_dev"
EXE = Path(sys.executable).with_name("faceprint")


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def build_gallery(db: Path | str, target: int, jobs: int) -> tuple[int, list[str], float]:
    """Enrol ``target`` subjects; returns (enrolled, unused photos for probing, seconds)."""
    from faceprint.gallery import Enrolled, Gallery

    by_person: dict[str, list[str]] = defaultdict(list)
    for row in csv.DictReader(open(LFW / "identities.csv")):
        by_person[row["identity"]].append(str(LFW / row["path"]))
    people = sorted(by_person)
    rounds = [[(p, by_person[p][0]) for p in people],
              [(f"{p} (2)", by_person[p][1]) for p in people if len(by_person[p]) > 1]]
    used: set[str] = set()
    enrolled = 0
    t0 = time.perf_counter()
    with Gallery.open(db) as gallery:
        for items in rounds:
            need = target - enrolled
            if need <= 0:
                break
            items = items[: int(need * 1.15) + 10]  # some photos are rejected (several faces ...)
            for outcome in gallery.enroll_many(items, jobs=jobs):
                if isinstance(outcome, Enrolled) and enrolled < target:
                    enrolled += 1
                    used.add(outcome.path)
                elif isinstance(outcome, Enrolled):  # past the target: keep the count exact
                    gallery.delete_face(outcome.face_id)
        for name in [s.name for s in gallery.subjects() if s.face_count == 0]:
            gallery.forget(name)
    probes = [p for person in people for p in by_person[person][2:4] if p not in used]
    return enrolled, probes, time.perf_counter() - t0


def with_a_face(paths: list[str], n: int) -> list[bytes]:
    """The first ``n`` photos in which the default detector finds a face: a photo without one
    gets a (correct) 422 no_face, which is not what this load test is about."""
    from faceprint import Analyzer

    analyzer, out = Analyzer(), []
    for p in paths:
        data = Path(p).read_bytes()
        if analyzer.detect(data):
            out.append(data)
            if len(out) == n:
                break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_key(db: Path | str, *scopes: str) -> str:
    """A new API key of ``scopes`` made by `faceprint keys create`."""
    made = subprocess.run([str(EXE), "--gallery", str(db), "keys", "create", "--scope", ",".join(scopes), "--json"],
                          capture_output=True, text=True, check=True)
    return str(json.loads(made.stdout)["key"])


def start_server(db: Path | str, port: int, *options: str) -> subprocess.Popen[str]:
    """`faceprint serve` on loopback ``port`` with no rate limit and ``options``; returns once
    /v1/health answers."""
    server = subprocess.Popen(
        [str(EXE), "--gallery", str(db), "serve", "--port", str(port), "--rate-limit", "0", "--log-level", "warning",
         *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            pass
        if time.time() > deadline or server.poll() is not None:
            stop_server(server)
            raise RuntimeError("the server did not start: " + (server.stderr.read() if server.stderr else ""))
        time.sleep(0.3)


def stop_server(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def multipart(fields: dict[str, tuple[str, bytes] | list[tuple[str, bytes]]]) -> tuple[bytes, str]:
    """A multipart body of file fields: one ``(filename, data)`` each, or a list of them."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, files in fields.items():
        for filename, data in files if isinstance(files, list) else [files]:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def client(port: int, key: str, jobs: list[tuple[str, bytes, str]], out: list[tuple[str, float, int]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for path, body, ctype in jobs:
        t = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {key}", "Content-Type": ctype})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            status = -1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        out.append((path, time.perf_counter() - t, status))
    conn.close()


def pct(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p99_ms": None}
    a = np.asarray(values) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1)}


def run_load(port: int, key: str, probes: list[bytes], clients: int, requests: int) -> dict:
    bodies = []
    for i in range(requests):
        a = probes[i % len(probes)]
        if i % 2 == 0:
            body, ctype = multipart({"image": ("probe.jpg", a)})
            bodies.append(("/v1/identify", body, ctype))
        else:
            body, ctype = multipart({"image_a": ("a.jpg", a), "image_b": ("b.jpg", probes[(i * 7 + 3) % len(probes)])})
            bodies.append(("/v1/verify", body, ctype))
    shares = [bodies[c::clients] for c in range(clients)]
    results: list[list[tuple[str, float, int]]] = [[] for _ in range(clients)]
    threads = [threading.Thread(target=client, args=(port, key, shares[c], results[c])) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    flat = [r for rs in results for r in rs]
    errors = [r for r in flat if r[2] != 200]
    out = {
        "clients": clients,
        "requests": len(flat),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(flat) / wall, 2),
        "errors": len(errors),
        "error_statuses": sorted({r[2] for r in errors}),
        **pct([r[1] for r in flat]),
    }
    for path in ("/v1/identify", "/v1/verify"):
        out[path.rsplit("/", 1)[1]] = pct([r[1] for r in flat if r[0] == path])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=320, help="requests per client count")
    ap.add_argument("--threads", type=int, default=2, help="server worker threads (faceprint serve --threads)")
    ap.add_argument("--workers", type=int, default=1, help="server processes (faceprint serve --workers)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for enrolment")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite", help="where the gallery is")
    args = ap.parse_args()
    if not LFW.is_dir():
        log(f"needs {LFW}")
        return 2
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        db: Path | str = Path(tmp) / "load.db"
        if args.backend == "postgresql":
            import pgserver  # the test extra: PostgreSQL 16 + pgvector

            postgres = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
            postgres.psql("CREATE DATABASE faceprint_load;")
            db = postgres.get_uri("faceprint_load")
            info["postgresql"] = postgres.psql("SHOW server_version;").split("\n")[2].strip()
        log(f"enrolling {args.subjects} subjects ...")
        enrolled, probe_paths, enrol_s = build_gallery(db, args.subjects, args.jobs)
        probes = with_a_face(probe_paths, 200)
        key = make_key(db, "recognize")
        port = free_port()
        server = start_server(db, port, "--threads", str(args.threads), "--workers", str(args.workers))
        try:
            # Warm-up: the first requests load the models and build the index (in every worker).
            run_load(port, key, probes, 4 * args.workers, 8 * args.workers)
            loads = []
            for n in [int(c) for c in args.clients.split(",") if c]:
                log(f"{n} client(s) ...")
                loads.append(run_load(port, key, probes, n, args.requests))
        finally:
            stop_server(server)
    sixteen = next((r for r in loads if r["clients"] == 16), None)
    doc = {
        "benchmark": "bench/service_load.py: faceprint serve under concurrent identify/verify load",
        "machine": {**info, "loadavg_end": os.getloadavg()[0]},
        "settings": {"subjects": enrolled, "enrol_seconds": round(enrol_s, 1), "probe_photos": len(probes),
                     "backend": args.backend,
                     "server": f"{args.workers} uvicorn process(es), --threads {args.threads}, no rate limit, "
                               "the gallery's default models",
                     "requests_per_run": args.requests, "mix": "half identify (1 photo), half verify (2 photos)",
                     "photos": "lfw_dev 250x250 JPEGs, not used for enrolment"},
        "runs": loads,
        "goal": {"zero_errors_at_16_clients": None if sixteen is None else sixteen["errors"] == 0},
    }
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
