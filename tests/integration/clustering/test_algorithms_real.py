"""The clustering algorithms on real photos: the default's quality above floors measured by
bench/cluster.py, and the one-person-once-a-photo guarantee on every lfw_dev photo."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from faceprint import Analyzer
from faceprint.clustering import DEFAULT_FAR, cluster, score_clustering
from tests.conftest import shared


def test_bald_guys_collage_gives_four_people(analyzer):
    """dlib's example: a collage of four actors, several faces each (one image: no photo ids)."""
    faces = analyzer.embed(shared("dlib_examples", "images", "bald_guys.jpg"))
    result = cluster(np.stack([f.embedding for f in faces]))
    sizes = Counter(result.labels.tolist())
    # Measured (2026-11-28): 24 faces -> clusters of 6, 6, 6, 5 and one face alone.
    assert sum(1 for n in sizes.values() if n >= 2) == 4


def test_orl_faces_default_clustering():
    from faceprint.evaluation import PipelineSpec, embed_images

    root = shared("orl_faces")
    rows = list(csv.DictReader(open(root / "identities.csv")))
    files = [r["path"] for r in rows]
    run = embed_images(files, lambda p: str(root / p), PipelineSpec.create(), jobs=1)
    vectors, present = run.matrix(files)
    truth = np.array([r["identity"] for r in rows])[present]
    result = cluster(vectors[present], far=DEFAULT_FAR)
    scores = score_clustering(truth, result.labels)
    print(f"\norl_faces: {int(present.sum())} faces, {result.n_clusters} clusters for 40 people; BCubed "
          f"P {scores.bcubed.precision:.3f} R {scores.bcubed.recall:.3f} F1 {scores.bcubed.f1:.3f}")
    # Measured (2026-11-28): 400 faces (12 from the centre-crop fallback), 43 clusters for 40
    # people, BCubed P 1.000 R 0.968 F1 0.983.
    assert scores.bcubed.precision >= 0.99 and scores.bcubed.f1 >= 0.95


@pytest.mark.slow
def test_lfw_dev_every_photo_default_clustering_and_cannot_link():
    root = shared("lfw_dev")
    rows = list(csv.DictReader(open(root / "identities.csv")))
    paths = [str(root / r["path"]) for r in rows]
    vectors, photo, labelled, truth = [], [], [], []
    for k, (row, analysis) in enumerate(zip(rows, Analyzer().embed_many(paths, jobs=None))):
        if not analysis.faces:
            continue
        h, w = analysis.image_size[1], analysis.image_size[0]
        centre = min(range(len(analysis.faces)), key=lambda i: (analysis.faces[i].face.box.center[0] - w / 2) ** 2
                     + (analysis.faces[i].face.box.center[1] - h / 2) ** 2)
        for i, f in enumerate(analysis.faces):
            vectors.append(f.embedding)
            photo.append(k)
            labelled.append(i == centre)  # the labelled face; background faces are clustered, not scored
            truth.append(row["identity"])
    vectors, photo, labelled = np.stack(vectors), np.array(photo), np.array(labelled)
    result = cluster(vectors, photo_ids=photo)
    for label in range(result.n_clusters):  # one person appears once a photo
        members = photo[result.labels == label]
        assert len(members) == len(set(members.tolist()))
    scores = score_clustering(np.array(truth)[labelled], result.labels[labelled])
    print(f"\nlfw_dev: {len(vectors)} faces, {result.n_clusters} clusters; BCubed P {scores.bcubed.precision:.3f} "
          f"R {scores.bcubed.recall:.3f} F1 {scores.bcubed.f1:.3f}")
    # Measured (2026-11-28, bench/cluster.py): 4,027 faces, BCubed P 0.972 R 0.928 F1 0.949.
    assert scores.bcubed.precision >= 0.95 and scores.bcubed.f1 >= 0.93
