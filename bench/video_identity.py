"""The margins behind `faceprint watch`'s tracking gates and naming hysteresis, on the hamilton clip.

    python bench/video_identity.py [--every 1,2,3,5] [--out bench/results_video_identity.json]

Prints ONE JSON document (progress on stderr); writes it to ``--out`` too (``-``: not).

The clip (``face_recognition_examples/examples/short_hamilton_clip.mp4``, 275 frames, shots
0-19, 20-81, 82-210, 211-274) runs through ``Watcher(Analyzer(), gallery, WatchOptions(every=N))``
with Lin-Manuel Miranda (``examples/lin-manuel-miranda.png``) and Barack Obama (the 5 obama
photos of the MANIFEST) enrolled. For each policy it records:

* the thresholds in use (the embedder card's: naming at FAR 1e-3, the instant rule at 1e-4, the
  split at 1e-2; the tracker's gates at FAR 0.03 and 1e-3);
* each named track: first/last frame, the frame it was named at and by which rule, its
  aggregate similarity then and at its end, the lowest similarity of its last-10-faces window
  to its name (against the split threshold), the lowest cosine between that window's mean and
  the whole track's (against ``split_cosine`` 0.3); name changes and splits (both must be 0);
* the tracker's gate: the lowest cosine between consecutive detections of one confirmed track,
  and at each cut the highest cosine between a track alive before it and a face after it.

``fps`` is frames / wall seconds, decoding included. The machine is shared (see the load in
``machine``): timings are rough; the margins are not timings and do not depend on the load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import Analyzer, settings
from faceprint.gallery import Gallery
from faceprint.video.source import open_source
from faceprint.video.watch import Watcher, WatchOptions
from machine import machine  # bench/machine.py

REPO = Path(__file__).resolve().parents[1]


def enrol(gallery: Gallery, examples: Path) -> None:
    gallery.enroll("Lin-Manuel Miranda", [str(examples / "examples" / "lin-manuel-miranda.png")])
    obama = [examples / "tests" / "test_images" / n for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")]
    obama += [examples / "examples" / n for n in ("obama-480p.jpg", "obama_small.jpg")]
    gallery.enroll("Barack Obama", [str(p) for p in obama])


def run(clip: Path, gallery: Gallery, every: int) -> dict[str, Any]:
    watcher = Watcher(gallery.analyzer, gallery, WatchOptions(every=every))
    keeper = watcher.keeper
    assert keeper is not None
    window_min: dict[int, float] = {}
    whole_cos_min: dict[int, float] = {}
    step_cos_min: dict[int, float] = {}
    names: dict[int, set[str]] = {}
    cut_cos: list[dict[str, Any]] = []
    last: dict[int, np.ndarray] = {}
    events = []
    for frame in open_source(clip):
        before = dict(last)
        result = watcher.process(frame)
        events += result.events
        if not result.detected:
            continue
        if any(e.event == "scene_cut" for e in result.events):
            fresh = [t for t in watcher.tracker.tracks if t.first_frame == frame.index]
            cosines = [float(old @ t.embedding) for old in before.values() for t in fresh]
            cut_cos.append({"frame": frame.index, "max_cosine": round(max(cosines), 4) if cosines else None,
                            "pairs": len(cosines)})
        for track in watcher.tracker.tracks:
            if track.last_frame != frame.index:
                continue
            if track.confirmed and track.id in before:
                step = float(before[track.id] @ track.embedding)
                step_cos_min[track.id] = min(step_cos_min.get(track.id, 1.0), step)
            last[track.id] = track.embedding.astype(np.float64)
        for track_id, state in keeper.states.items():
            name = state.known.identity
            if name is None:
                continue
            names.setdefault(track_id, set()).add(name)
            recent = state.recent_mean()
            found = gallery.search(recent[None].astype(np.float32), top_k=5)[0]
            sim = next((c.similarity for c in found if c.subject == name), -1.0)
            window_min[track_id] = min(window_min.get(track_id, 1.0), sim)
            whole_cos_min[track_id] = min(whole_cos_min.get(track_id, 1.0), float(recent @ state.mean()))
        last = {t.id: last[t.id] for t in watcher.tracker.tracks if t.id in last}
    events += watcher.finish()
    summary = watcher.summary()
    identified = {e.track: e for e in events if e.event == "identified"}
    tracks = []
    for t in summary.tracks:
        e = identified.get(t["track"])
        tracks.append({
            "track": t["track"], "first_frame": t["first_frame"], "last_frame": t["last_frame"], "identity": t["identity"],
            "end_reason": t["end_reason"], "named_at_frame": t["named_at_frame"], "reported_at_frame": e.frame if e else None,
            "rule": e.extra["rule"] if e else None, "similarity_at_naming": round(e.similarity, 4) if e and e.similarity else None,
            "similarity_at_end": t["similarity"], "window_similarity_min": round(window_min[t["track"]], 4) if t["track"] in window_min else None,
            "window_vs_whole_cosine_min": round(whole_cos_min[t["track"]], 4) if t["track"] in whole_cos_min else None,
            "consecutive_cosine_min": round(step_cos_min[t["track"]], 4) if t["track"] in step_cos_min else None,
        })
    return {
        "every": every, "frames": summary.frames, "detected_frames": summary.detected_frames,
        "seconds": round(summary.seconds, 2), "fps": round(summary.fps, 2), "tracks": tracks,
        "name_changes": sum(len(n) - 1 for n in names.values()),
        "splits": sum(1 for e in events if e.event == "track_ended" and e.extra["reason"] == "appearance_changed"),
        "cuts": cut_cos,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", default="1,2,3,5")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_video_identity.json")))
    args = parser.parse_args()
    examples = settings.shared_data(REPO) / "face_recognition_examples"
    clip = examples / "examples" / "short_hamilton_clip.mp4"
    if not clip.exists():
        sys.exit(f"needs {clip}")
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Gallery.open(Path(tmp) / "g.db", analyzer=Analyzer())
        enrol(gallery, examples)
        keeper_policy = WatchOptions().identity
        card = gallery.analyzer.embedder_card
        config = WatchOptions().tracker.for_model(card.threshold_for)
        thresholds = {
            "model": card.id, "name_far_1e-3": round(card.threshold_for(1e-3), 4),
            "instant_far_1e-4": round(card.threshold_for(1e-4), 4), "split_far_1e-2": round(card.threshold_for(1e-2), 4),
            "split_cosine": keeper_policy.split_cosine, "split_after": keeper_policy.split_after, "window": keeper_policy.window,
            "min_frames": keeper_policy.min_frames, "margin": keeper_policy.margin,
            "instant_min_quality": keeper_policy.instant_min_quality,
            "tracker_cos_min": round(config.cos_min or 0.0, 4), "tracker_reid_cos": round(config.reid_cos or 0.0, 4),
        }
        runs = []
        for every in (int(v) for v in args.every.split(",")):
            print(f"every {every} ...", file=sys.stderr, flush=True)
            runs.append(run(clip, gallery, every))
        gallery.close()
    doc = {"machine": machine(), "clip": str(clip.relative_to(examples.parent)), "thresholds": thresholds, "runs": runs}
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
