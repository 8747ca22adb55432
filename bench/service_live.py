"""What one webcam frame costs the service: ``POST /v1/streams/{id}/frames`` and
``POST /v1/liveness/sessions/{id}/frames`` against ``POST /v1/identify`` on the same JPEG, and
``POST /v1/videos/identify`` on a clip, in frames a second.

    python bench/service_live.py [--frames 40] [--out bench/results_service_live.json]

Prints ONE JSON document (progress on stderr); writes it to ``--out`` too (``-``: not).

The service runs in this process (FastAPI's TestClient: the whole ASGI app, middleware and auth
included, no socket), over a fresh SQLite gallery with Hugo Chavez enrolled, ``threads=2``.
The frames are those of the service's tests (tests/integration/service/live_frames.py): lfw_dev
photos of Hugo Chavez enlarged onto a grey 640x480 frame, JPEG quality 92 (about 40 KB), as the
web page sends them. Each route is called ``--frames`` times one after another (as the page
does: the next frame once the answer is in), after one untimed call. The liveness session uses
the fixed challenge ``turn_left,blink`` and the frames that answer it (the tests' sequence), so
its frames include its verdict. The clip: the same frames, 10 s at 10 fps, written as mp4
(``VideoWriter``), uploaded once.

The machine is shared (see ``machine``): timings are rough.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' frames (tests/integration/service/live_frames.py)

from machine import machine  # noqa: E402


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def summary(ms: list[float]) -> dict[str, Any]:
    ordered = sorted(ms)
    return {"calls": len(ms), "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "per_second": round(1000.0 / statistics.mean(ordered), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_service_live.json")))
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from faceprint.service import Settings, create_app
    from faceprint.service.auth import KeyStore
    from faceprint.video.source import VideoWriter
    from tests.integration.service.live_frames import ENROL, LEFT, OPEN, WARM_UP, answer, frame, jpeg

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-live-"))
    gallery = tmp / "gallery.db"
    store = KeyStore(gallery)
    key, _ = store.create(["recognize", "manage"], "bench")
    store.close()
    app = create_app(Settings(gallery=gallery, threads=2, rate_limit=0, liveness_challenge="turn_left,blink"))
    auth = {"Authorization": f"Bearer {key}"}
    results: dict[str, Any] = {}
    with TestClient(app) as client:
        subject = client.post("/v1/subjects", headers=auth, json={"name": "Hugo Chavez"}).json()["id"]
        files = [("images", (f"{n}.jpg", jpeg(n), "image/jpeg")) for n in ENROL]
        assert client.post(f"/v1/subjects/{subject}/faces", headers=auth, files=files).status_code == 200
        image = jpeg(OPEN)
        results["frame"] = {"width": 640, "height": 480, "jpeg_bytes": len(image)}

        def timed(call) -> list[float]:
            call()
            out = []
            for _ in range(args.frames):
                t = time.perf_counter()
                call()
                out.append((time.perf_counter() - t) * 1000.0)
            return out

        def identify() -> None:
            r = client.post("/v1/identify", headers=auth, files={"image": ("f.jpg", image, "image/jpeg")})
            assert r.status_code == 200 and r.json()["faces"][0]["identity"] == "Hugo Chavez"

        log("identify ...")
        results["identify"] = summary(timed(identify))

        stream = client.post("/v1/streams", headers=auth, json={}).json()["stream_id"]

        def stream_frame() -> None:
            r = client.post(f"/v1/streams/{stream}/frames", headers=auth, files={"image": ("f.jpg", image, "image/jpeg")})
            assert r.status_code == 200

        log("stream frames ...")
        results["stream_frame"] = summary(timed(stream_frame))
        tracks = client.post(f"/v1/streams/{stream}/frames", headers=auth,
                             files={"image": ("f.jpg", image, "image/jpeg")}).json()["tracks"]
        results["stream_frame"]["named"] = [t["identity"] for t in tracks]
        client.delete(f"/v1/streams/{stream}", headers=auth)

        log("liveness frames ...")
        sequence = WARM_UP + answer("turn_left") + answer("blink")
        sid = client.post("/v1/liveness/sessions", headers=auth).json()["session_id"]
        ms, state, started = [], "pending", time.perf_counter()
        for seq, name in enumerate(sequence):
            t = time.perf_counter()
            r = client.post(f"/v1/liveness/sessions/{sid}/frames", headers=auth, data={"seq": str(seq)},
                            files={"image": ("f.jpg", jpeg(name), "image/jpeg")})
            ms.append((time.perf_counter() - t) * 1000.0)
            state = r.json()["state"]
            if state != "pending":
                break
        results["liveness_frame"] = {**summary(ms), "state": state, "frames_to_verdict": len(ms),
                                     "seconds_to_verdict": round(time.perf_counter() - started, 2)}

        log("video ...")
        clip = tmp / "clip.mp4"
        with VideoWriter(clip, 10.0, (640, 480)) as out:
            for i in range(100):
                out.write(frame(LEFT if 40 <= i < 50 else OPEN))
        buf = io.BytesIO(clip.read_bytes())
        t = time.perf_counter()
        r = client.post("/v1/videos/identify", headers=auth, files={"video": ("clip.mp4", buf, "video/mp4")})
        wall = time.perf_counter() - t
        doc = r.json()
        results["video_identify"] = {"frames": doc["timing"]["frames"], "seconds": round(wall, 2),
                                     "fps": round(doc["timing"]["frames"] / wall, 2), "width": 640, "height": 480,
                                     "identities": [t_["identity"] for t_ in doc["tracks"]]}
        model = client.get("/v1/models", headers=auth).json()
    report = {"bench": "service_live", "models": {"detector": model["detector"], "embedder": model["embedder"]},
              "frames": args.frames, "results": results, "machine": machine()}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
