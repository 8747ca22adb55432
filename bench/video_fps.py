"""Frames a second of `faceprint watch` (the Watcher) against face_recognition's video example,
with the accuracy each keeps, on the hamilton clip and on 720p synthetic videos.

    python bench/video_fps.py [--every 1,2,3,5] [--seconds 4] [--skip-clip] [--skip-synthetic]
                              [--skip-face-recognition] [--dlib-watch] [--out bench/results_video_fps.json]

Prints ONE JSON document (progress on stderr); writes it to ``--out`` too (``-``: not).

Configurations, all in this one process, one after the other on the same cores:

* ``faceprint_every_N``: ``Watcher(Analyzer(), gallery, WatchOptions(every=N))`` frame by frame
  over ``open_source(file)``: detect + embed every Nth frame (and on a cut), boxes predicted
  between, per-track identity. ``Analyzer()`` is the installed default (fr-detect + fr-landmark
  + fr-feature with the Faceplugin pack); the models are recorded.
* ``face_recognition``: the approach of face_recognition's ``examples/facerec_from_video_file.py``
  with the ``face_recognition`` package (1.3.0 here): every frame, ``face_locations`` (HOG, one
  upsample) + ``face_encodings`` at full resolution, each face named by its nearest known
  encoding within ``tolerance=0.50`` (the example's value; it compares with one photo a person,
  here every enrolment photo counts). No tracking, so identity switches do not apply (null).
* ``faceprint_dlib_every_1`` (``--dlib-watch``): the Watcher with
  ``Analyzer(detector="hog", embedder="dlib-resnet34")``.

Inputs (``$FACEPRINT_SHARED_DATA`` or ``../shared/data``):

* ``face_recognition_examples/examples/short_hamilton_clip.mp4`` (275 frames, 640x360). Its
  MANIFEST gives the shots: 0-19 wide stage (Miranda small), 20-81 Alex Lacamoire (not
  enrolled), 82-210 Lin-Manuel Miranda, 211-274 the audience with Barack Obama. Enrolled:
  Miranda from ``examples/lin-manuel-miranda.png``, Obama from ``tests/test_images/obama.jpg``,
  ``obama2.jpg``, ``obama3.jpg``, ``examples/obama-480p.jpg``, ``examples/obama_small.jpg``.
  Accuracy there (no per-frame boxes exist): frames from 82 to Miranda's first name and from 211
  to Obama's, the share of 82-210 with a face named Miranda, how many tracks carry his name in
  82-210 (1 = no switch), false names (a name in a shot where that person is not: frames x faces).
* Six 1280x720 synthetic videos (faceprint.evaluation.tracking.standard_scenarios, ``--seconds``
  each, 30 fps) from lfw_dev photos, written to mp4 with ``VideoWriter`` and decoded by
  ``open_source``, with exact ground truth: the CLEAR-MOT counts of
  ``evaluate_tracking`` (FN, FP, IDSW, false names, MOTA, frames to first name), summed.

``fps`` is frames / wall seconds, decoding included; ``cpu_ms_per_frame`` is this process's CPU
time (all its threads) a frame, steadier than fps on a shared machine. The machine is shared
(see the load in ``machine``): timings are rough.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceprint import Analyzer, settings  # noqa: E402
from faceprint.evaluation.tracking import (  # noqa: E402
    PredictedFace,
    Scenario,
    evaluate_tracking,
    lfw_cast,
    render,
)
from faceprint.gallery import Gallery  # noqa: E402
from faceprint.types import Box  # noqa: E402
from faceprint.video.source import VideoWriter, open_source  # noqa: E402
from faceprint.video.types import VideoSource  # noqa: E402
from faceprint.video.watch import Watcher, WatchOptions  # noqa: E402
from machine import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = settings.shared_data(ROOT)
FRE = DATA / "face_recognition_examples"
CLIP = FRE / "examples" / "short_hamilton_clip.mp4"
MIRANDA, OBAMA = "Lin-Manuel Miranda", "Barack Obama"
CLIP_ENROL = {
    MIRANDA: [FRE / "examples" / "lin-manuel-miranda.png"],
    OBAMA: [FRE / "tests" / "test_images" / n for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")]
    + [FRE / "examples" / n for n in ("obama-480p.jpg", "obama_small.jpg")],
}
#: The clip's shots (MANIFEST) and who may be named in each.
CLIP_SHOTS = [((0, 19), {MIRANDA}), ((20, 81), set()), ((82, 210), {MIRANDA}), ((211, 274), {OBAMA})]
TOLERANCE = 0.50  # facerec_from_video_file.py's compare_faces tolerance


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- the two ways of watching ---------------------------------------------------------------------
#: Per frame: (track id or None, box, name or None) of each face shown.
Shown = list[tuple[int | None, Box, str | None]]


class Timed:
    """Wall and CPU seconds of this process (all its threads) over a ``with`` block."""

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def timing(frames: int, timed: Timed) -> dict[str, Any]:
    return {"frames": frames, "seconds": round(timed.wall, 2), "fps": round(frames / timed.wall, 2),
            "cpu_ms_per_frame": round(1000 * timed.cpu / frames, 1)}


def watch_frames(source: VideoSource, analyzer: Analyzer, gallery: Gallery, every: int) -> tuple[list[Shown], Timed, int]:
    """The Watcher over ``source``: confirmed tracks per frame, the time (decoding included),
    frames detected on."""
    watcher = Watcher(analyzer, gallery, WatchOptions(every=every))
    shown: list[Shown] = []
    with Timed() as timed:
        for frame in source:
            result = watcher.process(frame)
            shown.append([(t.track, t.box, t.identity) for t in result.tracks if t.confirmed])
        watcher.finish()
        source.close()
    return shown, timed, watcher.detected_frames


class FaceRecognitionExample:
    """facerec_from_video_file.py's loop with the face_recognition package."""

    def __init__(self, enrol: dict[str, list[str]]) -> None:
        import face_recognition

        self.fr = face_recognition
        self.names: list[str] = []
        encodings = []
        for name, paths in enrol.items():
            for path in paths:
                image = face_recognition.load_image_file(str(path))
                found = face_recognition.face_encodings(image)
                if len(found) == 1:  # as faceprint's enrolment: one face a photo
                    self.names.append(name)
                    encodings.append(found[0])
        self.known = np.array(encodings)
        self.enrolled = {n: self.names.count(n) for n in enrol}

    def frames(self, source: VideoSource) -> tuple[list[Shown], Timed, None]:
        shown: list[Shown] = []
        with Timed() as timed:
            self.run(source, shown)
        return shown, timed, None

    def run(self, source: VideoSource, shown: list[Shown]) -> None:
        for frame in source:
            rgb = frame.rgb
            locations = self.fr.face_locations(rgb)
            encodings = self.fr.face_encodings(rgb, locations)
            faces: Shown = []
            for (top, right, bottom, left), encoding in zip(locations, encodings, strict=True):
                distances = self.fr.face_distance(self.known, encoding)
                best = int(np.argmin(distances)) if len(distances) else -1
                name = self.names[best] if best >= 0 and distances[best] <= TOLERANCE else None
                faces.append((None, Box(float(left), float(top), float(right), float(bottom)), name))
            shown.append(faces)
        source.close()


# --- accuracy ------------------------------------------------------------------------------------
def clip_accuracy(shown: list[Shown]) -> dict[str, Any]:
    def first_named(name: str, lo: int, hi: int) -> int | None:
        for f in range(lo, min(hi, len(shown) - 1) + 1):
            if any(n == name for _, _, n in shown[f]):
                return f - lo
        return None

    miranda_frames = [f for f in range(82, min(211, len(shown))) if any(n == MIRANDA for _, _, n in shown[f])]
    miranda_tracks = {t for f in range(82, min(211, len(shown))) for t, _, n in shown[f] if n == MIRANDA and t is not None}
    false_names = 0
    for (lo, hi), allowed in CLIP_SHOTS:
        for f in range(lo, min(hi, len(shown) - 1) + 1):
            false_names += sum(1 for _, _, n in shown[f] if n is not None and n not in allowed)
    obama_frames = [f for f in range(211, len(shown)) if any(n == OBAMA for _, _, n in shown[f])]
    return {
        "miranda_frames_to_name": first_named(MIRANDA, 82, 210),
        "miranda_named_share_82_210": round(len(miranda_frames) / 129, 3),
        "miranda_tracks_82_210": len(miranda_tracks) if any(t is not None for s in shown for t, _, _ in s) else None,
        "obama_frames_to_name": first_named(OBAMA, 211, 274),
        "obama_named_share_211_274": round(len(obama_frames) / 64, 3),
        "false_names": false_names,
    }


def synthetic_accuracy(scenario: Scenario, shown: list[Shown], *, tracked: bool) -> dict[str, Any]:
    preds = [[PredictedFace(t if t is not None else 1_000_000 + 100 * f + i, box, name)
              for i, (t, box, name) in enumerate(frame)] for f, frame in enumerate(shown)]
    counts = evaluate_tracking(scenario.truth(), preds).to_dict()
    counts.pop("objects")
    if not tracked:  # one "track" per detection: switches are meaningless without tracking
        for key in ("idsw", "transfers", "name_changes", "mota"):
            counts[key] = None
    return counts


def total(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    out: dict[str, Any] = {}
    for key in ("frames", "gt", "fn", "fp", "idsw", "transfers", "false_names", "stray_names", "name_changes", "never_named"):
        values = [r[key] for r in rows]
        out[key] = None if any(v is None for v in values) else sum(values)
    out["seconds"] = round(sum(r["seconds"] for r in rows), 2)
    out["fps"] = round(out["frames"] / out["seconds"], 2) if out["seconds"] else None
    out["cpu_ms_per_frame"] = round(1000 * sum(r["cpu_seconds"] for r in rows) / out["frames"], 1)
    if out["idsw"] is not None and out["gt"]:
        out["mota"] = round(1 - (out["fn"] + out["fp"] + out["idsw"]) / out["gt"], 4)
    waits = [r["frames_to_name_max"] for r in rows if r["frames_to_name_max"] is not None]
    out["frames_to_name_max"] = max(waits) if waits else None
    medians = [r["frames_to_name_median"] for r in rows if r["frames_to_name_median"] is not None]
    out["frames_to_name_median_of_videos"] = float(np.median(medians)) if medians else None
    return out


# --- runs ----------------------------------------------------------------------------------------
def clip_runs(args: argparse.Namespace, analyzer: Analyzer, dlib: Analyzer | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    configs: list[tuple[str, Callable[[], tuple[list[Shown], Timed, int | None]]]] = []

    def clip() -> VideoSource:
        return open_source(CLIP, max_frames=args.clip_frames)

    with tempfile.TemporaryDirectory() as tmp:
        galleries = {}
        for label, an in (("fr", analyzer), ("dlib", dlib)):
            if an is None:
                continue
            g = Gallery.open(Path(tmp) / f"{label}.db", analyzer=an)
            for name, paths in CLIP_ENROL.items():
                report = g.enroll(name, [str(p) for p in paths])
                log(f"clip gallery {label}: {name}: {len(report.enrolled)} enrolled")
            galleries[label] = g
        for every in args.every:
            configs.append((f"faceprint_every_{every}",
                            lambda every=every: watch_frames(clip(), analyzer, galleries["fr"], every)))
        if not args.skip_face_recognition:
            example = FaceRecognitionExample({n: [str(p) for p in ps] for n, ps in CLIP_ENROL.items()})
            out["face_recognition_enrolled"] = example.enrolled
            configs.append(("face_recognition", lambda: example.frames(clip())))
        if dlib is not None:
            configs.append(("faceprint_dlib_every_1", lambda: watch_frames(clip(), dlib, galleries["dlib"], 1)))
        for label, run in configs:
            log(f"clip: {label} ...")
            shown, timed, detected = run()
            out[label] = {**timing(len(shown), timed), "detected_frames": detected, **clip_accuracy(shown)}
            log(f"  {json.dumps(out[label])}")
        for g in galleries.values():
            g.close()
    return out


def synthetic_runs(args: argparse.Namespace, analyzer: Analyzer, dlib: Analyzer | None) -> dict[str, Any]:
    cast = lfw_cast(DATA / "lfw_dev", analyzer=analyzer)
    scenarios = cast.scenarios(width=1280, height=720, seconds=args.seconds)
    out: dict[str, Any] = {"videos": [s.name for s in scenarios], "width": 1280, "height": 720,
                           "seconds_each": args.seconds, "fps_video": 30,
                           "cast": {n: len(p) for n, p in cast.video.items()}, "strangers": list(cast.strangers)}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for s in scenarios:
            files[s.name] = Path(tmp) / f"{s.name}.mp4"
            with VideoWriter(files[s.name], s.fps, (s.width, s.height)) as writer:
                for rgb in render(s):
                    writer.write(rgb)
        log(f"synthetic: {len(files)} videos written")
        galleries = {}
        for label, an in (("fr", analyzer), ("dlib", dlib)):
            if an is None:
                continue
            g = Gallery.open(Path(tmp) / f"{label}.db", analyzer=an)
            out[f"enrolled_{label}"] = cast.enroll_all(g)
            galleries[label] = g
        configs: list[tuple[str, Analyzer | None, int]] = [(f"faceprint_every_{e}", analyzer, e) for e in args.every]
        if not args.skip_face_recognition:
            example = FaceRecognitionExample(cast.enroll)
            out["face_recognition_enrolled"] = example.enrolled
            configs.append(("face_recognition", None, 1))
        if dlib is not None:
            configs.append(("faceprint_dlib_every_1", dlib, 1))
        for label, an, every in configs:
            rows = []
            for s in scenarios:
                source = open_source(files[s.name])
                if an is None:
                    shown, timed, detected = example.frames(source)
                else:
                    shown, timed, detected = watch_frames(source, an, galleries["fr" if an is analyzer else "dlib"], every)
                row = {"scenario": s.name, **timing(len(shown), timed), "cpu_seconds": round(timed.cpu, 2),
                       "detected_frames": detected, **synthetic_accuracy(s, shown, tracked=an is not None)}
                rows.append(row)
                log(f"synthetic: {label} {s.name}: {row['fps']} fps, {row['cpu_ms_per_frame']} CPU ms/frame, "
                    f"idsw {row['idsw']}, false names {row['false_names']}, fn {row['fn']}, fp {row['fp']}")
            out[label] = {"total": total(rows), "videos": rows}
            log(f"  {label}: {json.dumps(out[label]['total'])}")
        for g in galleries.values():
            g.close()
    return out


def models_of(analyzer: Analyzer) -> dict[str, Any]:
    return {"detector": analyzer.detector_card.id, "landmarks": analyzer.landmarks_card.id,
            "embedder": analyzer.embedder_card.id, "min_score": analyzer.min_score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", default="1,2,3,5", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each synthetic video")
    parser.add_argument("--skip-clip", action="store_true")
    parser.add_argument("--clip-frames", type=int, default=None, help="only the clip's first N frames (a smoke test)")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-face-recognition", action="store_true")
    parser.add_argument("--dlib-watch", action="store_true", help="also the Watcher with hog + dlib-resnet34")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results_video_fps.json"))
    args = parser.parse_args()

    analyzer = Analyzer()
    dlib = Analyzer(detector="hog", embedder="dlib-resnet34") if args.dlib_watch else None
    from importlib.metadata import version

    result: dict[str, Any] = {
        "machine": machine(face_recognition=version("face_recognition"), dlib=version("dlib-bin"),
                           opencv=version("opencv-python-headless"), onnxruntime=version("onnxruntime")),
        "models": models_of(analyzer),
        "dlib_models": models_of(dlib) if dlib is not None else None,
        "every": args.every,
    }
    started = time.perf_counter()
    if not args.skip_clip:
        result["clip"] = clip_runs(args, analyzer, dlib)
    if not args.skip_synthetic:
        result["synthetic_720p"] = synthetic_runs(args, analyzer, dlib)
    result["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
