"""What the service's strict JSON parsing costs (issue 13): ``faceprint.service.parsing.loads_strict``
(no NaN/Infinity, nesting at most 32, no lone surrogates) against plain ``json.loads``, on the
bodies the service reads: a JSON image request (one base64 image, 1-29 MB) and a body of many
small values (the worst case for the checks' walk over the parsed value).

    python bench/strict_json.py [--rounds 5] > bench/results_strict_json.json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from faceprint.service.parsing import loads_strict
from machine import machine


def image_body(megabytes: float) -> bytes:
    raw = os.urandom(int(megabytes * 1_000_000 * 3 / 4))
    return json.dumps({"image": base64.b64encode(raw).decode(), "where": {"team": "a"}}).encode()


def many_values_body(items: int) -> bytes:
    return json.dumps({"metadata": [{"k": i, "v": f"value {i}", "f": i / 7} for i in range(items)]}).encode()


def best_ms(fn: Callable[[bytes], Any], body: bytes, rounds: int) -> dict[str, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn(body)
        times.append((time.perf_counter() - started) * 1000.0)
    return {"min_ms": round(min(times), 2), "median_ms": round(statistics.median(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bodies = {f"image_{mb}MB": image_body(mb) for mb in (1, 10, 29)}
    bodies["values_100k"] = many_values_body(100_000)
    rows = []
    for name, body in bodies.items():
        print(f"{name}: {len(body):,} bytes", file=sys.stderr)
        plain = best_ms(json.loads, body, args.rounds)
        strict = best_ms(loads_strict, body, args.rounds)
        rows.append({"body": name, "bytes": len(body), "json.loads": plain, "loads_strict": strict,
                     "overhead_median": round(strict["median_ms"] / plain["median_ms"] - 1.0, 3)})
    json.dump({"machine": machine(), "rounds": args.rounds, "results": rows}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
