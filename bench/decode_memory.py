"""Peak memory of decoding one image, per decoding path, in bytes per pixel.

    python bench/decode_memory.py [--label after] [--side 1600] [--rounds 3]

Each decoding path of :mod:`faceprint.imageio` (8-bit RGB, RGBA composited onto white, a palette
with transparency, 16-bit grey PNG and PGM, 32-bit int and float TIFF, JPEG), on noisy
``--side`` x ``--side`` images (tests/fuzz/test_imageio_properties.py's ``at_the_limit``):
the peak resident memory of ``load_image`` above what the process held before (Linux:
/proc/self/clear_refs resets the peak), divided by the pixels. Each round runs in a fresh process
with a fixed mmap threshold (``MALLOC_MMAP_THRESHOLD_``), so that freed memory does not hide a
peak. Prints one JSON document and stores it in ``--out`` (default bench/results_decode_memory.json)
under ``--label``, beside the runs of other labels (``before``: run with
``PYTHONPATH=<old checkout>/src``). The machine is shared: the bytes are what they are, the
load does not change them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from machine import machine, save_run  # bench/machine.py

REPO = Path(__file__).resolve().parents[1]


def one_round(side: int) -> dict[str, float]:
    script = ("import json; from tests.fuzz.test_imageio_properties import measure_costs; "
              f"print(json.dumps(measure_costs({side})))")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": os.pathsep.join([*paths, str(REPO)])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--side", type=int, default=1600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results_decode_memory.json"), help="'-': print only")
    args = parser.parse_args()
    rounds = [one_round(args.side) for _ in range(args.rounds)]
    import faceprint

    run = {
        "machine": machine(faceprint_from=str(Path(faceprint.__file__).parent)),
        "side": args.side,
        "pixels": args.side * args.side,
        # the largest of the rounds: a peak is what a limit must allow for
        "bytes_per_pixel": {name: max(r[name] for r in rounds) for name in rounds[0]},
        "rounds": rounds,
    }
    save_run(args.out, args.label, run)


if __name__ == "__main__":
    main()
