"""One client's big enrolment against another client's identify: does recognition stall?

    python bench/service_stall.py [--label after] [--subjects 50] [--images 20] [--side 6300] [--rounds 3]

Prints one JSON document and stores it in ``--out`` (default bench/results_service_stall.json)
under ``--label``, beside the runs of other labels (``before``: the code before the per-request
pixel budget and the FIFO model lock; run it with ``PYTHONPATH=<old checkout>/src`` so that the
server runs the old code). Not a test. Loopback only, bounded loops.

1. A gallery of ``--subjects`` lfw_dev people is enrolled through the library, and
   ``faceprint serve`` started on it (service_load.py's helpers: no rate limit, ``--threads``).
2. ``identify_alone``: one client identifies a real lfw_dev face photo ``--identify`` times.
3. ``detect_big``: one grey ``--side`` x ``--side`` PNG (about 50 kB: within every size limit)
   to /v1/detect: its time and the server's RSS before and after (peak sampled every 20 ms).
4. ``stall``: client A sends ``--rounds`` enrolment requests of ``--images`` such PNGs
   (``POST /v1/subjects/{id}/faces``); when the service refuses one for its pixel budget (413
   ``request_too_large``), A sends the most images of that size the budget allows instead. Client
   B identifies the photo back to back while A runs. Reported: each enrolment request's status
   and seconds, identify's p50/p99/max over the requests made while A ran, the server's peak RSS.

The server and both clients share this machine's cores (and, here, other people's work), so
times are rough; the comparison between labels run on the same machine is the point.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from machine import machine, save_run  # bench/machine.py
from service_load import LFW, build_gallery, free_port, log, make_key, multipart, pct, start_server, stop_server, with_a_face

ROOT = Path(__file__).resolve().parents[1]


def grey_png(side: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, format="PNG")
    return buf.getvalue()


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (uvicorn's workers), MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total_kb, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return round(total_kb / 1024, 1)


class RssPeak:
    """The server's RSS, sampled every 20 ms in a thread while in the ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.peak = self.end = tree_rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, tree_rss_mb(self.pid))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = tree_rss_mb(self.pid)

    def to_dict(self) -> dict[str, float]:
        return {"rss_start_mb": self.start, "rss_peak_mb": self.peak, "rss_end_mb": self.end}


class Client:
    """One keep-alive connection with its own key."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def post(self, path: str, body: bytes, ctype: str) -> tuple[int, dict[str, Any], float]:
        t = time.perf_counter()
        try:
            self.conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {self.key}",
                                                               "Content-Type": ctype})
            resp = self.conn.getresponse()
            raw = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            return -1, {}, time.perf_counter() - t
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {}
        return status, doc, time.perf_counter() - t

    def identify(self, photo: bytes) -> tuple[int, float]:
        body, ctype = multipart({"image": ("probe.jpg", photo)})
        status, _, seconds = self.post("/v1/identify", body, ctype)
        return status, seconds


def enrolment(client: Client, subject_id: int, png: bytes, n: int) -> dict[str, Any]:
    body, ctype = multipart({"images": [(f"grey{i}.png", png) for i in range(n)]})
    status, doc, seconds = client.post(f"/v1/subjects/{subject_id}/faces", body, ctype)
    out: dict[str, Any] = {"images": n, "body_bytes": len(body), "status": status, "seconds": round(seconds, 2)}
    if status == 200:
        out["rejected"] = sorted({r["reason"]["code"] for r in doc.get("rejected", [])})
    else:
        out["error"] = doc.get("error")
    return out


def fitting(answer: dict[str, Any], pixels_each: int) -> int | None:
    """How many images of ``pixels_each`` the refused request's budget allows."""
    details = (answer.get("error") or {}).get("details") or {}
    budget = details.get("max_request_pixels")
    return int(budget // pixels_each) if answer["status"] == 413 and budget else None


def stall(port: int, enrol_key: str, identify_key: str, subject_id: int, png: bytes, side: int, photo: bytes,
          images: int, rounds: int, server_pid: int) -> dict[str, Any]:
    enroller, identifier = Client(port, enrol_key), Client(port, identify_key)
    requests: list[dict[str, Any]] = []
    done = threading.Event()
    window: list[float] = []

    def enrol_rounds() -> None:
        try:
            window.append(time.perf_counter())
            for _ in range(rounds):
                answer = enrolment(enroller, subject_id, png, images)
                requests.append(answer)
                n = fitting(answer, side * side)
                if n:
                    requests.append(enrolment(enroller, subject_id, png, n))
        finally:
            window.append(time.perf_counter())
            done.set()

    latencies: list[float] = []
    statuses: list[int] = []
    thread = threading.Thread(target=enrol_rounds)
    with RssPeak(server_pid) as rss:
        thread.start()
        while not done.is_set():
            status, seconds = identifier.identify(photo)
            latencies.append(seconds)
            statuses.append(status)
        thread.join()
    return {
        "enrol_requests": requests,
        "enrolling_seconds": round(window[1] - window[0], 1),
        "identify": {"requests": len(latencies), "errors": sum(s != 200 for s in statuses), **pct(latencies),
                     "max_ms": round(max(latencies) * 1e3, 1) if latencies else None},
        "server": rss.to_dict(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="current", help="the name this run is stored under in --out")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_service_stall.json"), help="'-': do not write")
    ap.add_argument("--subjects", type=int, default=50)
    ap.add_argument("--images", type=int, default=20, help="big images per enrolment request")
    ap.add_argument("--side", type=int, default=6300, help="the big images' side, px (6300^2 < --max-pixels' 40 MP)")
    ap.add_argument("--rounds", type=int, default=3, help="enrolment requests of --images")
    ap.add_argument("--identify", type=int, default=30, help="identify requests with nothing else running")
    ap.add_argument("--threads", type=int, default=2, help="server worker threads (faceprint serve --threads)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the library's enrolment")
    args = ap.parse_args()
    if not LFW.is_dir():
        log(f"needs {LFW}")
        return 2
    info = machine()
    png = grey_png(args.side)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "stall.db"
        log(f"enrolling {args.subjects} subjects ...")
        enrolled, probe_paths, _ = build_gallery(db, args.subjects, args.jobs)
        photo = with_a_face(probe_paths, 1)[0]
        enrol_key, identify_key = make_key(db, "manage"), make_key(db, "recognize")
        port = free_port()
        server = start_server(db, port, "--threads", str(args.threads))
        try:
            alone = Client(port, identify_key)
            for _ in range(3):  # warm-up: models loaded, index built
                alone.identify(photo)
            log("identify alone ...")
            solo = [alone.identify(photo) for _ in range(args.identify)]
            body, ctype = multipart({"image": ("grey.png", png)})
            log("one big image to /v1/detect ...")
            with RssPeak(server.pid) as rss:
                status, _, seconds = alone.post("/v1/detect", body, ctype)
            detect_big = {"status": status, "seconds": round(seconds, 2), **rss.to_dict()}
            made = Client(port, enrol_key).post("/v1/subjects", json.dumps({"name": "big grey"}).encode(),
                                                "application/json")
            log(f"stall: {args.rounds} enrolment(s) of {args.images} big images against identify ...")
            stalled = stall(port, enrol_key, identify_key, int(made[1]["id"]), png, args.side, photo,
                            args.images, args.rounds, server.pid)
        finally:
            stop_server(server)
    doc = {
        "benchmark": "bench/service_stall.py: identify latency while another client enrols big images",
        "label": args.label,
        "machine": {**info, "loadavg_end": os.getloadavg()[0]},
        "server_source": os.environ.get("PYTHONPATH") or "this checkout",
        "settings": {"subjects": enrolled, "server": f"1 uvicorn process, --threads {args.threads}, no rate limit, "
                                                     "default models and limits",
                     "big_image": f"grey PNG {args.side}x{args.side}, {len(png)} bytes",
                     "probe": "one lfw_dev 250x250 JPEG with a face, not enrolled"},
        "identify_alone": {"requests": len(solo), "errors": sum(s != 200 for s, _ in solo),
                           **pct([t for _, t in solo])},
        "detect_big": detect_big,
        "stall": stalled,
    }
    save_run(args.out, args.label, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
