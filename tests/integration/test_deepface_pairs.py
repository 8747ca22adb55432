"""Verification accuracy on deepface's 520 labelled pairs at the default operating point."""

from __future__ import annotations

import csv

from faceprint.errors import NoFaceError
from faceprint.pipeline import DEFAULT_FAR, select_face
from tests.conftest import shared


def test_deepface_pairs_accuracy_at_default_far(analyzer, record_property):
    root = shared("deepface_tests")
    pairs = list(csv.DictReader(open(root / "pairs.csv")))
    assert len(pairs) == 520
    # Embed each image once (the largest face, as verify() does), then score every pair.
    embeddings = {}
    for path in sorted({p for row in pairs for p in (row["path_a"], row["path_b"])}):
        faces = analyzer.embed(root / path)
        try:
            i, _ = select_face([f.face for f in faces], None, path)
        except NoFaceError:
            embeddings[path] = None  # a pair with a missing face counts as "different"
            continue
        embeddings[path] = faces[i]
    threshold = analyzer.embedder_card.threshold_for(DEFAULT_FAR)
    correct = missing = 0
    for row in pairs:
        a, b = embeddings[row["path_a"]], embeddings[row["path_b"]]
        if a is None or b is None:
            missing += 1
            predicted = False
        else:
            predicted = a.similarity(b) >= threshold
        correct += predicted == (row["same"] == "1")
    accuracy = correct / len(pairs)
    record_property("deepface_pairs_accuracy", accuracy)
    print(f"\ndeepface pairs: accuracy {accuracy:.4f} ({correct}/{len(pairs)}) at FAR {DEFAULT_FAR:g}, "
          f"threshold {threshold:.4f}; {missing} pairs with an image without a face")
    assert accuracy >= 0.95
