"""The best detection score per image of fr-detect with no minimum, on every image of ORL and of
lfw_dev: how low true faces score, which bounds the card's ``min_score`` (bench/README.md,
"Minimum detection score"). Prints JSON. Needs the faceplugin pack; about 1 min on 2 cores.

    python bench/fr_detect_scores.py > /tmp/fr_detect_scores.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from faceprint import Analyzer
from faceprint.errors import FaceprintError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"orl": (DATA / "orl_faces", "*.pgm"), "lfw_dev": (DATA / "lfw_dev" / "images", "*.jpg")}


def best_score(analyzer: Analyzer, path: Path) -> float | None:
    try:
        faces = analyzer.detect(path, min_score=0.0)
    except FaceprintError:
        return None
    return max((f.score for f in faces), default=None)


def main() -> None:
    analyzer = Analyzer(detector="fr-detect", min_score=0.0)
    out: dict[str, object] = {"detector": analyzer.detector_card.id}
    for name, (root, pattern) in SETS.items():
        scores = [best_score(analyzer, p) for p in sorted(root.rglob(pattern))]
        found = np.array([s for s in scores if s is not None])
        out[name] = {
            "images": len(scores),
            "no_face": sum(s is None for s in scores),
            "min": round(float(found.min()), 4),
            "quantiles_0.001_0.01_0.05": np.quantile(found, [0.001, 0.01, 0.05]).round(4).tolist(),
            "below": {str(t): int((found < t).sum()) for t in (0.995, 0.99, 0.95, 0.9, 0.8)},
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
