"""Liveness signals on the test frames: writes bench/results_liveness_signals.json. Needs
../shared/data (and the faceplugin pack for the default configuration).

Every lfw_dev photo the liveness tests use (tests/integration/liveness/conftest.py) is made into
the same 640x480 test frame (its central 110x110 enlarged 4x, a resize only) and read once by
:class:`faceprint.liveness.signals.SignalReader` with each pipeline: the default (fr-detect +
fr-landmark + fr-feature) and dlib's (hog + dlib5 + dlib68 for the eyes + dlib-resnet34). Per
photo: the eye aspect ratio from the pipeline's 68 points (what the checker uses), for the
default pipeline also dlib68's run on fr-detect's box (the research's preferred blink signal),
yaw and pitch, the face's size, other faces at >= 40% of its size, the cosine similarity to the
person's open frontal photo, and the time to read the frame. Then the blink thresholds the
checker derives from the open photo's baseline, and which closed photos fall below them.

Also, exactly (no sampling): for a recording that answered one random challenge, the chance that
a new random challenge (random_challenge's distribution) is one the same frames answer: the same
order of actions, each blink step asking for no more blinks than were recorded (unasked blinks
during a turn step are ignored, so extra recorded blinks do not fail it).

    python bench/liveness_signals.py            # both pipelines
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from itertools import product
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import machine, save_run  # noqa: E402

PHOTOS = {
    "Hugo_Chavez": {"open": "0007", "closed": ["0017", "0063", "0047"], "left": ["0003", "0049"],
                    "right": ["0006", "0033"]},
    "Edmund_Stoiber": {"open": "0012", "closed": ["0010"], "left": ["0005"], "right": ["0013"]},
    "Vicente_Fox": {"open": "0003", "closed": [], "left": ["0011"], "right": ["0027"]},
    "Laura_Bush": {"open": "0014", "closed": ["0003"], "left": ["0002"], "right": ["0011"]},
}


def read_photos(name: str, analyzer) -> dict:
    from faceprint import models
    from faceprint.liveness.signals import SignalReader, eye_aspect_ratio, eye_thresholds_for
    from faceprint.types import cosine_similarity
    from tests.integration.liveness.conftest import make_frame

    reader = SignalReader(analyzer)
    dlib68 = models.load("dlib68", "landmarks") if reader.eye_model != "dlib68" else None
    th = eye_thresholds_for(reader.eye_model)
    out: dict = {"eye_landmarks": reader.eye_model, "model": reader.model_id, "people": {}}
    read_times = []
    for person, roles in PHOTOS.items():
        rows = {}
        ref = None
        for role, ids in [("open", [roles["open"]]), ("closed", roles["closed"]), ("left", roles["left"]),
                          ("right", roles["right"])]:
            for num in ids:
                photo = f"{person}_{num}"
                rgb = make_frame(photo)
                start = time.perf_counter()
                sig = reader.read(rgb)
                read_times.append(time.perf_counter() - start)
                faces = reader.analyzer.detect_array(rgb)
                row = {"role": role, "size": round(sig.size or 0, 1), "yaw": round(sig.yaw or 0, 1),
                       "pitch": round(sig.pitch or 0, 1), "ear": round(sig.ear or 0, 4),
                       "other_faces_40pct": sig.others}
                if dlib68 is not None and faces:
                    row["ear_dlib68_on_this_box"] = round(eye_aspect_ratio(dlib68.predict(rgb, faces[0].box)), 4)
                if ref is None:
                    ref = sig.embedding
                row["similarity_to_open"] = round(cosine_similarity(ref, sig.embedding), 4)
                rows[photo] = row
        base = rows[f"{person}_{roles['open']}"]["ear"]
        summary = {"baseline": base, "closed_below": round(th.closed_below(base), 4),
                   "open_above": round(th.open_above(base), 4)}
        for row in rows.values():
            if row["role"] == "closed":
                row["reads_closed"] = row["ear"] < summary["closed_below"]
        out["people"][person] = {"photos": rows, "thresholds": summary}
    read_times.sort()
    out["read_ms_median"] = round(1000 * read_times[len(read_times) // 2], 1)
    out["eye_thresholds"] = th.to_dict()
    return out


def challenge_distribution(n_steps: int, max_blinks: int = 2) -> dict[tuple, Fraction]:
    """random_challenge's exact distribution over (actions, counts) for ``n_steps``."""
    actions = ("blink", "turn_left", "turn_right")
    weights: dict[tuple, Fraction] = {}
    for seq in product(actions, repeat=n_steps):
        if any(a == b for a, b in zip(seq, seq[1:])):
            continue
        p = Fraction(1, 3) * Fraction(1, 2) ** (n_steps - 1)  # first free, then 2 choices each
        if n_steps >= 2 and ("blink" not in seq or all(s == "blink" for s in seq)):
            continue  # rejected and redrawn
        blinks = seq.count("blink")
        for counts in product(range(1, max_blinks + 1), repeat=blinks):
            weights[(seq, counts)] = p * Fraction(1, max_blinks) ** blinks
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def replay_odds(n_steps: int) -> dict:
    dist = challenge_distribution(n_steps)
    # A replay answers a new challenge with the same order whose blink counts are <= recorded:
    # averaged over the recorded challenge drawn from the same distribution.
    p = Fraction(0)
    for (seq, counts), p_rec in dist.items():
        p += p_rec * sum(q for (s2, c2), q in dist.items() if s2 == seq and all(a <= b for a, b in zip(c2, counts)))
    orders = len({seq for seq, _ in dist})
    return {"n_steps": n_steps, "orders": orders, "challenges": len(dist), "replay_answers_new_challenge": float(p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results_liveness_signals.json"))
    args = parser.parse_args()
    from faceprint import Analyzer
    from faceprint.models import packs

    run: dict = {"machine": machine(), "frame": "640x480, central 110x110 of the 150x150 lfw_dev photo x4 (cubic)"}
    configs = {"dlib": Analyzer(embedder="dlib-resnet34")}
    if packs.installed("faceplugin", verify=False):
        configs = {"default": Analyzer(), **configs}
    for name, analyzer in configs.items():
        run[name] = read_photos(name, analyzer)
    run["replay"] = [replay_odds(n) for n in (2, 3, 4, 5)]
    save_run(args.out, "liveness_signals", run)


if __name__ == "__main__":
    main()
