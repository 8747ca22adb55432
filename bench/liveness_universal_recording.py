"""How often one recording made for the purpose answers a random liveness challenge: writes
bench/results_liveness_universal_recording.json. No ../shared data and no model is run: the
checker is fed scripted signals (an open-eye EAR of 0.30, closed 0.12; yaw 0 or +/-40 degrees;
one fixed embedding), so only its rules are measured, not the models.

The recording: a face that blinks every ``blink_every_s`` (eyes closed 0.1 s) and turns its head
every ``turn_every_s`` (held 0.5 s at 40 degrees), to its left and right alternately. Unasked
blinks are ignored during a turn step and extra blinks end with their step, so the only secret
of a challenge it does not know is the sequence of turn directions; the recording guesses it by
alternating from a random first side. Each trial draws a challenge from
``faceprint.liveness.challenge.random_challenge`` (a seeded ``random.Random`` here, for a
repeatable run), a random first side and a random phase, and plays the recording into a
:class:`faceprint.liveness.check.LivenessChecker` with the default policy, at 30 frames/s.

    python bench/liveness_universal_recording.py [--trials 300]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import machine, save_run  # noqa: E402

FPS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300, help="challenges per number of steps")
    parser.add_argument("--steps", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--blink-every", type=float, default=0.6)
    parser.add_argument("--turn-every", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "bench" / "results_liveness_universal_recording.json"))
    args = parser.parse_args()

    import numpy as np

    from faceprint.liveness.challenge import random_challenge
    from faceprint.liveness.check import LivenessChecker
    from faceprint.liveness.signals import FrameSignals
    from faceprint.pipeline import Analyzer
    from faceprint.types import Box

    analyzer = Analyzer()  # its embedder card gives the identity thresholds; no frame is read
    embedding = np.zeros(analyzer.embedder_card.embedding_dim or 512, np.float32)
    embedding[0] = 1.0
    box = Box(220, 100, 420, 380)

    def signals(ear: float, yaw: float) -> FrameSignals:
        return FrameSignals(faces=1, box=box, size=224.0, ear=ear, yaw=yaw, pitch=0.0, embedding=embedding,
                            model=analyzer.model_id)

    def recording(first_side: int, offset: float, seconds: float = 40.0) -> list[FrameSignals]:
        frames = []
        for i in range(int(seconds * FPS)):
            t = i / FPS + offset
            k = int(t // args.turn_every)
            within = t - k * args.turn_every
            yaw = 40.0 * (1 if (k + first_side) % 2 == 0 else -1) if 0.8 <= within < 1.3 else 0.0
            ear = 0.12 if yaw == 0.0 and (t % args.blink_every) < 0.1 else 0.30
            frames.append(signals(ear, yaw))
        return frames

    rng = random.Random(args.seed)
    results = {}
    for n in args.steps:
        passed, reasons = 0, {}
        for _ in range(args.trials):
            challenge = random_challenge(n, rng)
            checker = LivenessChecker(analyzer, challenge)
            progress = None
            for i, frame in enumerate(recording(rng.randrange(2), rng.uniform(0.0, args.turn_every))):
                progress = checker.observe_signals(frame, i / FPS)
                if progress.state != "pending":
                    break
            result = checker.finish(progress.time_s if progress is not None else 0.0)
            passed += result.passed
            if not result.passed:
                reasons[result.reason] = reasons.get(result.reason, 0) + 1
        results[str(n)] = {"trials": args.trials, "passed": passed, "rate": round(passed / args.trials, 3),
                           "failed_by": dict(sorted(reasons.items()))}
    run = {"machine": machine(), "blink_every_s": args.blink_every, "turn_every_s": args.turn_every,
           "seed": args.seed, "model": analyzer.model_id, "steps": results}
    save_run(args.out, "liveness_universal_recording", run)


if __name__ == "__main__":
    main()
