"""Cluster unknown faces into people: algorithms (:mod:`.algorithms`), their scores against
ground truth (:mod:`.metrics`; ``bench/cluster.py`` compares them), and the people of a photo
collection, kept in a gallery and corrected by a person (:mod:`.people`)."""

from faceprint.clustering.algorithms import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_FAR,
    Clustering,
    agglomerative,
    chinese_whispers,
    cluster,
    dbscan,
    dlib_chinese_whispers,
    enforce_cannot_link,
    hdbscan,
    similarity_graph,
    threshold_for_far,
)
from faceprint.clustering.metrics import PRF, ClusteringScores, bcubed, contingency, pairwise, score_clustering
from faceprint.clustering.people import PassReport, People, Person, PhotoFace, Question, Who

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_FAR",
    "PRF",
    "PassReport",
    "People",
    "Person",
    "PhotoFace",
    "Question",
    "Who",
    "Clustering",
    "ClusteringScores",
    "agglomerative",
    "bcubed",
    "chinese_whispers",
    "cluster",
    "contingency",
    "dbscan",
    "dlib_chinese_whispers",
    "enforce_cannot_link",
    "hdbscan",
    "pairwise",
    "score_clustering",
    "similarity_graph",
    "threshold_for_far",
]
