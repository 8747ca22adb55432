"""Cluster face embeddings into people: graph, density-based and agglomerative algorithms.

Every algorithm takes ``embeddings`` -- an ``(N, D)`` array of L2-normalised vectors, so that
cosine similarity is the dot product -- and a cosine-similarity ``threshold``, normally the
embedder's calibrated threshold at some false-accept rate (:func:`threshold_for_far`). Each
returns a :class:`Clustering`: one label per face, clusters numbered ``0..n_clusters-1`` by
descending size (ties: first face first), ``-1`` for a face left unassigned (noise of the
density-based algorithms, or a cluster smaller than ``min_cluster_size``).

**Cannot-link guarantee.** With ``photo_ids`` (one int per face) no cluster ever holds two
faces of one photo: one person cannot appear twice in a photo. The agglomerative algorithms
build that in (a pair of one photo gets an infinite-like distance, which blocks every merge
that would join them under average and complete linkage); the graph algorithms drop the edges
between such faces; and every algorithm ends with :func:`enforce_cannot_link`, which keeps,
per photo and cluster, the face most similar to the rest of the cluster and moves the others
out (to their own singleton clusters, or to ``-1`` where the algorithm has a notion of noise).
That last step alone makes the guarantee hold for any labels.

Algorithms (:data:`ALGORITHMS`; :func:`cluster` dispatches by name):

* :func:`chinese_whispers` -- this module's own Chinese Whispers over the graph of pairs with
  similarity ``>= threshold`` (edge weight = similarity), seeded, deterministic.
* :func:`dlib_chinese_whispers` -- dlib's ``chinese_whispers_clustering`` (unweighted edges,
  euclidean distance ``< sqrt(2 - 2 * threshold)``, which is ``cos > threshold`` for unit
  vectors), dlib's fixed seed.
* :func:`dbscan` -- sklearn DBSCAN on the sparse graph of cosine distances ``1 - cos <= 1 -
  threshold``; ``min_samples`` counts the face itself.
* :func:`hdbscan` -- sklearn HDBSCAN on euclidean distance between the unit vectors
  (monotone in cosine); it has no similarity threshold (``cluster_selection_epsilon`` is
  broken in scikit-learn 1.9 under NumPy 2, issue #33219).
* :func:`agglomerative` -- sklearn AgglomerativeClustering, precomputed cosine distance,
  ``linkage`` average or complete, cut at ``distance_threshold = 1 - threshold``. Complete
  linkage makes every cluster a clique (all pairs above the threshold).

**Chosen default** (:data:`DEFAULT_ALGORITHM`, :data:`DEFAULT_FAR`): :func:`chinese_whispers`
at FAR 3e-5, the best BCubed F1 on lfw_dev of the settings compared, on the sparse graph where
the runner-up needs the dense ``N x N`` matrix (measured: bench/README.md, section
'Clustering default').

Thresholds: clustering needs a far stricter *pairwise* FAR than 1:1 verification. A graph over
N faces has ~``FAR * N^2 / 2`` false edges, and CW and DBSCAN (single linkage) chain people
together through them; average and complete linkage tolerate looser FARs. The larger the
collection, the stricter the FAR it needs (measured: bench/README.md, section 'Clustering
thresholds').

Sizes: our CW and DBSCAN build the similarity graph in blocks of rows (memory: the edges, not
``N^2``); dlib's CW computes all ``N^2`` distances itself; agglomerative needs the full
``N x N`` float64 distance matrix and SciPy's O(N^2) linkage -- keep it below ~10,000 faces on
a small machine (measured: bench/README.md, section 'Clustering sizes').
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from faceprint.errors import InvalidArgumentError, ModelMismatchError, import_optional

if TYPE_CHECKING:  # pragma: no cover - scipy is imported when a graph is built
    from scipy import sparse

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_FAR",
    "Clustering",
    "agglomerative",
    "chinese_whispers",
    "cluster",
    "dbscan",
    "dlib_chinese_whispers",
    "enforce_cannot_link",
    "hdbscan",
    "similarity_graph",
    "symmetric_products",
    "threshold_for_far",
]

Algorithm = Literal["chinese_whispers", "dlib_chinese_whispers", "dbscan", "hdbscan", "agglomerative"]
ALGORITHMS: tuple[str, ...] = ("chinese_whispers", "dlib_chinese_whispers", "dbscan", "hdbscan", "agglomerative")

#: The algorithm and calibrated FAR :func:`cluster` uses when not told (measured, see above).
DEFAULT_ALGORITHM: str = "chinese_whispers"
DEFAULT_FAR: float = 3e-5
NORM_TOLERANCE = 1e-3  # |norm - 1| allowed for an "L2-normalised" row


@dataclass(frozen=True, slots=True, eq=False)
class Clustering:
    """The result of clustering ``N`` faces.

    ``labels[i]`` is face ``i``'s cluster, ``0..n_clusters-1`` by descending cluster size, or
    ``-1`` when the face is unassigned. ``params`` holds every setting that produced it
    (``threshold`` included); ``n_moved`` counts faces the cannot-link step took out of a
    cluster.
    """

    labels: np.ndarray
    n_clusters: int
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    n_moved: int = 0
    seconds: float = 0.0

    @property
    def n_items(self) -> int:
        return int(self.labels.size)

    @property
    def n_unassigned(self) -> int:
        return int(np.count_nonzero(self.labels < 0))

    @property
    def threshold(self) -> float | None:
        t = self.params.get("threshold")
        return None if t is None else float(t)

    def sizes(self) -> np.ndarray:
        """The size of each cluster, index = label (so descending)."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_clusters)

    def members(self, label: int) -> np.ndarray:
        """Indices of the faces in cluster ``label`` (ascending)."""
        return np.flatnonzero(self.labels == label)

    def to_dict(self, *, with_labels: bool = True) -> dict[str, Any]:
        sizes = self.sizes()
        out: dict[str, Any] = {
            "algorithm": self.algorithm,
            "params": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.params.items()},
            "n_items": self.n_items,
            "n_clusters": self.n_clusters,
            "n_clusters_2plus": int(np.count_nonzero(sizes >= 2)),
            "largest_cluster": int(sizes.max()) if sizes.size else 0,
            "n_unassigned": self.n_unassigned,
            "n_moved": self.n_moved,
            "seconds": round(self.seconds, 4),
        }
        if with_labels:
            out["labels"] = [int(v) for v in self.labels]
        return out


# --- thresholds -------------------------------------------------------------------------------
def threshold_for_far(far: float = DEFAULT_FAR, model: str | None = None, *, dim: int | None = None) -> float:
    """The embedder's calibrated cosine threshold at ``far`` (its model card's table).

    ``model`` defaults to the default embedder (:func:`faceprint.models.defaults.default_models`;
    dlib-resnet34: FAR 1e-3 -> 0.9258, fr-feature: 0.3363). ``dim``, the embeddings' size when
    known, must be the model's: another model's threshold would merge or split everyone.
    Raises :class:`InvalidArgumentError` outside the calibrated range (1e-1 .. 1e-5 there).
    """
    from faceprint import models
    from faceprint.models.defaults import default_models

    card = models.get_card(model or default_models().embedder, "embedder")
    if dim is not None and card.embedding_dim is not None and dim != card.embedding_dim:
        raise ModelMismatchError(
            f"{dim}-D embeddings are not {card.id}'s ({card.embedding_dim}-D); name the model that made them "
            "(model=...) or give a threshold",
            details={"dim": dim, "model": card.id, "model_dim": card.embedding_dim},
        )
    return float(card.threshold_for(far))


# --- input checks -------------------------------------------------------------------------------
def _check_embeddings(embeddings: Any) -> np.ndarray:
    try:
        x = np.asarray(embeddings)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"embeddings must be a numeric (N, D) array: {exc}") from None
    if x.ndim != 2:
        raise InvalidArgumentError(f"embeddings must be a 2-D (N, D) array; got shape {x.shape}",
                                   details={"shape": list(x.shape)})
    if x.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"embeddings must be numbers; got dtype {x.dtype}", details={"dtype": str(x.dtype)})
    if x.shape[0] and x.shape[1] == 0:
        raise InvalidArgumentError("embeddings have no dimensions (shape (N, 0))", details={"shape": list(x.shape)})
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise InvalidArgumentError("embeddings contain NaN or infinite values")
    if x.shape[0]:
        norms = np.linalg.norm(x.astype(np.float64), axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
        if bad.size:
            raise InvalidArgumentError(
                f"embeddings must be L2-normalised (row {int(bad[0])} has norm {norms[bad[0]]:.4g}); "
                "cosine similarity is taken as the dot product",
                details={"rows": bad[:10].tolist()},
            )
    return np.ascontiguousarray(x)


def _check_threshold(threshold: Any) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"threshold must be a number; got {threshold!r}") from None
    if not math.isfinite(t) or not -1.0 <= t <= 1.0:
        raise InvalidArgumentError(f"threshold must be a cosine similarity in [-1, 1]; got {threshold!r}",
                                   details={"threshold": threshold})
    return t


def _check_photo_ids(photo_ids: Any, n: int) -> np.ndarray | None:
    if photo_ids is None:
        return None
    p = np.asarray(photo_ids)
    if p.ndim != 1 or p.shape[0] != n:
        raise InvalidArgumentError(f"photo_ids must be a 1-D array of length {n} (one per face); got shape {p.shape}",
                                   details={"shape": list(p.shape), "n": n})
    if p.size and p.dtype.kind not in "iu":
        if p.dtype.kind == "f" and np.isfinite(p).all() and (p == np.round(p)).all():
            p = p.astype(np.int64)
        else:
            raise InvalidArgumentError(f"photo_ids must be integers; got dtype {p.dtype}")
    return p.astype(np.int64, copy=False)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}; got {value!r}", details={name: value})
    return int(value)


# --- shared steps -------------------------------------------------------------------------------
def similarity_graph(embeddings: np.ndarray, threshold: float, *, photo_ids: np.ndarray | None = None,
                     block: int = 2048) -> sparse.csr_matrix:
    """The pairs with cosine similarity ``>= threshold`` as a symmetric ``scipy.sparse`` CSR
    matrix of similarities (no diagonal; no edge between two faces of one photo).

    Symmetric by construction: each pair's similarity is computed once (rows ``i`` against
    the columns ``j > i``) and mirrored. Computing ``x @ x.T`` whole gives ``s[i, j]`` and
    ``s[j, i]`` from different BLAS kernels and summation orders; they can differ by ~1e-7
    (seen with OpenBLAS on Intel), which near the threshold made an edge in one direction only.

    Built ``block`` rows at a time: memory is ``block x N`` floats plus the edges.
    """
    from scipy import sparse

    x = _check_embeddings(embeddings)
    n = x.shape[0]
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        s = x[start:start + block] @ x[start:].T  # columns start.. only: j >= i below
        r, c = np.nonzero(s >= threshold)
        keep = c > r  # the upper triangle: each pair once, no diagonal
        r, c = r[keep], c[keep]
        rows.append(r + start)
        cols.append(c + start)
        vals.append(np.clip(s[r, c], -1.0, 1.0))
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    v = np.concatenate(vals).astype(np.float64) if vals else np.zeros(0)
    if photo_ids is not None and r.size:
        keep = photo_ids[r] != photo_ids[c]
        r, c, v = r[keep], c[keep], v[keep]
    # The mirror image: the same value in both directions, bit for bit.
    return sparse.csr_matrix((np.concatenate([v, v]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n))


def symmetric_products(x: np.ndarray) -> np.ndarray:
    """``x @ x.T`` with ``out[i, j] == out[j, i]`` exactly: the upper triangle mirrored (a
    BLAS product may round the two halves differently)."""
    s = x @ x.T
    upper = np.triu(s, 1)
    return upper + upper.T + np.diag(np.diag(s))


def enforce_cannot_link(embeddings: np.ndarray, labels: np.ndarray, photo_ids: np.ndarray | None, *,
                        noise: bool = False) -> tuple[np.ndarray, int]:
    """``(labels, n_moved)`` with no cluster holding two faces of one photo.

    In each cluster, of the faces that share a photo the one with the highest mean similarity
    to the cluster's faces from *other* photos stays (ties, or a cluster of one photo only:
    the lowest index); the others leave -- to ``-1`` with ``noise=True``, else each to a new
    singleton cluster (new labels above the largest used). Labels ``< 0`` are left alone.
    """
    labels = np.array(labels, dtype=np.int64, copy=True)
    if photo_ids is None or labels.size < 2:
        return labels, 0
    x = np.asarray(embeddings, dtype=np.float64)
    idx = np.flatnonzero(labels >= 0)
    order = idx[np.lexsort((idx, photo_ids[idx], labels[idx]))]
    lab, pid = labels[order], photo_ids[order]
    new_run = np.r_[True, (lab[1:] != lab[:-1]) | (pid[1:] != pid[:-1])]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], order.size]
    bad = np.flatnonzero(ends - starts > 1)
    if bad.size == 0:
        return labels, 0
    n_clusters = int(labels.max()) + 1
    csum = np.zeros((n_clusters, x.shape[1]))
    np.add.at(csum, labels[idx], x[idx])
    ccount = np.bincount(labels[idx], minlength=n_clusters)
    next_label = n_clusters
    moved = 0
    for b in bad:
        members = order[starts[b]:ends[b]]  # ascending index within the run
        c = int(labels[members[0]])
        others = ccount[c] - members.size
        if others > 0:
            strength = x[members] @ (csum[c] - x[members].sum(axis=0)) / others
            keep = members[int(np.argmax(strength))]
        else:
            keep = members[0]
        for i in members:
            if i == keep:
                continue
            moved += 1
            if noise:
                labels[i] = -1
            else:
                labels[i] = next_label
                next_label += 1
    return labels, moved


def _canonical(labels: np.ndarray, min_cluster_size: int = 1) -> tuple[np.ndarray, int]:
    """Clusters renumbered by descending size then first face; smaller than
    ``min_cluster_size`` -> -1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    assigned = labels >= 0
    if not assigned.any():
        return out, 0
    uniq, first, inv, counts = np.unique(labels[assigned], return_index=True, return_inverse=True,
                                         return_counts=True)
    keep = counts >= min_cluster_size
    order = np.lexsort((first, -counts))
    order = order[keep[order]]
    new = np.full(uniq.size, -1, dtype=np.int64)
    new[order] = np.arange(order.size)
    out[assigned] = new[inv]
    return out, int(order.size)


def _finish(name: str, x: np.ndarray, raw: np.ndarray, photo_ids: np.ndarray | None, *, noise: bool,
            min_cluster_size: int, params: dict[str, Any], t0: float) -> Clustering:
    labels, moved = enforce_cannot_link(x, raw, photo_ids, noise=noise)
    labels, k = _canonical(labels, min_cluster_size)
    params = {**params, "min_cluster_size": min_cluster_size, "cannot_link": photo_ids is not None}
    return Clustering(labels, k, name, params, moved, time.perf_counter() - t0)


def _empty(name: str, params: dict[str, Any]) -> Clustering:
    return Clustering(np.zeros(0, dtype=np.int64), 0, name, params)


# --- Chinese Whispers ---------------------------------------------------------------------------
def chinese_whispers(embeddings: Any, threshold: float, *, photo_ids: Any = None, seed: int = 0,
                     max_iter: int = 50, weighted: bool = True, min_cluster_size: int = 1) -> Clustering:
    """Chinese Whispers (Biemann 2006) over the graph of pairs with similarity ``>= threshold``.

    Every face starts in its own cluster; in each round the faces (those with an edge) are
    visited in a random order (``seed``) and each takes the label with the largest summed
    edge weight among its neighbours (weight = similarity, or 1 with ``weighted=False``; ties:
    the smallest label). Stops when a round changes nothing, or after ``max_iter`` rounds.
    Faces without an edge stay singletons. No noise: every face has a cluster unless
    ``min_cluster_size`` > 1 (smaller clusters -> -1).

    Cost: building the graph is one ``N x N`` product in blocks; each round is a Python loop
    over the faces with an edge (measured: bench/README.md, section 'Clustering sizes').
    """
    t0 = time.perf_counter()
    x = _check_embeddings(embeddings)
    t = _check_threshold(threshold)
    pid = _check_photo_ids(photo_ids, x.shape[0])
    _check_int("max_iter", max_iter, 1)
    mcs = _check_int("min_cluster_size", min_cluster_size, 1)
    params = {"threshold": t, "seed": int(seed), "max_iter": max_iter, "weighted": bool(weighted)}
    if x.shape[0] == 0:
        return _empty("chinese_whispers", {**params, "min_cluster_size": mcs, "cannot_link": pid is not None})
    g = similarity_graph(x, t, photo_ids=pid)
    indptr, indices = g.indptr, g.indices
    weights = g.data if weighted else np.ones_like(g.data)
    labels = np.arange(x.shape[0], dtype=np.int64)
    active = np.flatnonzero(np.diff(indptr) > 0)
    rng = np.random.default_rng(seed)
    rounds = 0
    while rounds < max_iter:
        rounds += 1
        changed = 0
        for i in rng.permutation(active):
            a, b = indptr[i], indptr[i + 1]
            nb = labels[indices[a:b]]
            if b - a == 1:
                best = nb[0]
            else:
                uniq, inv = np.unique(nb, return_inverse=True)
                best = uniq[int(np.argmax(np.bincount(inv, weights=weights[a:b])))]
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if changed == 0:
            break
    params["rounds"] = rounds
    return _finish("chinese_whispers", x, labels, pid, noise=False, min_cluster_size=mcs, params=params, t0=t0)


def dlib_chinese_whispers(embeddings: Any, threshold: float, *, photo_ids: Any = None,
                          min_cluster_size: int = 1) -> Clustering:
    """dlib's ``chinese_whispers_clustering``: edges where the euclidean distance is below
    ``sqrt(2 - 2 * threshold)`` (= cosine above ``threshold`` for unit vectors), unweighted,
    100 rounds, dlib's fixed seed. Photo ids are applied afterwards only
    (:func:`enforce_cannot_link`). All ``N^2`` distances in C++, on one core (measured:
    bench/README.md, section 'Clustering sizes').
    """
    import dlib

    t0 = time.perf_counter()
    x = _check_embeddings(embeddings)
    t = _check_threshold(threshold)
    pid = _check_photo_ids(photo_ids, x.shape[0])
    mcs = _check_int("min_cluster_size", min_cluster_size, 1)
    dist = math.sqrt(max(0.0, 2.0 - 2.0 * t))
    params = {"threshold": t, "euclidean_threshold": dist}
    if x.shape[0] == 0:
        return _empty("dlib_chinese_whispers", {**params, "min_cluster_size": mcs, "cannot_link": pid is not None})
    descriptors = [dlib.vector(row.astype(np.float64).tolist()) for row in x]
    raw = np.asarray(dlib.chinese_whispers_clustering(descriptors, dist), dtype=np.int64)
    return _finish("dlib_chinese_whispers", x, raw, pid, noise=False, min_cluster_size=mcs, params=params, t0=t0)


# --- density-based ------------------------------------------------------------------------------
def dbscan(embeddings: Any, threshold: float, *, min_samples: int = 2, photo_ids: Any = None) -> Clustering:
    """sklearn DBSCAN with cosine distance ``1 - cos`` and ``eps = 1 - threshold``.

    A face is a core face when at least ``min_samples`` faces (itself included) are within
    the threshold; clusters are the core faces' connected components plus the faces they
    reach; the rest is noise (-1). ``min_samples=2`` is single linkage cut at the threshold
    (singletons are noise). Runs on the sparse similarity graph.
    """
    DBSCAN = import_optional("sklearn.cluster", "cluster").DBSCAN

    t0 = time.perf_counter()
    x = _check_embeddings(embeddings)
    t = _check_threshold(threshold)
    pid = _check_photo_ids(photo_ids, x.shape[0])
    ms = _check_int("min_samples", min_samples, 1)
    params = {"threshold": t, "eps": 1.0 - t, "min_samples": ms}
    if x.shape[0] == 0:
        return _empty("dbscan", {**params, "min_cluster_size": 1, "cannot_link": pid is not None})
    g = similarity_graph(x, t, photo_ids=pid)
    g.data = np.maximum(1.0 - g.data, 1e-12)  # distances; a stored entry is a neighbour
    raw = DBSCAN(eps=1.0 - t + 1e-9, min_samples=ms, metric="precomputed").fit_predict(g)
    return _finish("dbscan", x, raw, pid, noise=True, min_cluster_size=1, params=params, t0=t0)


def hdbscan(embeddings: Any, threshold: float | None = None, *, min_cluster_size: int = 2,
            min_samples: int | None = None, photo_ids: Any = None,
            cluster_selection_method: Literal["eom", "leaf"] = "eom",
            cluster_selection_epsilon: float = 0.0) -> Clustering:
    """sklearn HDBSCAN on the euclidean distance between the unit vectors (``d^2 = 2 - 2
    cos``: the same order as cosine). Faces outside every cluster are noise (-1).

    HDBSCAN has no similarity threshold: ``threshold`` is accepted (so that :func:`cluster`
    can pass one) and recorded, but not used. ``cluster_selection_epsilon`` (euclidean; for a
    cosine threshold ``t`` it would be ``sqrt(2 - 2 t)``) is passed on, but values above 0
    can crash in scikit-learn 1.9 under NumPy 2.x (they did on lfw_dev: ``TypeError: only
    0-dimensional arrays ...``, scikit-learn issue #33219); that error is raised as
    :class:`InvalidArgumentError`.
    Cost: a tree over the 128-D points, slower than the graph algorithms on large sets
    (measured: bench/README.md, section 'Clustering sizes').
    """
    HDBSCAN = import_optional("sklearn.cluster", "cluster").HDBSCAN

    t0 = time.perf_counter()
    x = _check_embeddings(embeddings)
    t = None if threshold is None else _check_threshold(threshold)
    pid = _check_photo_ids(photo_ids, x.shape[0])
    mcs = _check_int("min_cluster_size", min_cluster_size, 2)
    ms = None if min_samples is None else _check_int("min_samples", min_samples, 1)
    if cluster_selection_method not in ("eom", "leaf"):
        raise InvalidArgumentError(f"cluster_selection_method must be 'eom' or 'leaf'; got {cluster_selection_method!r}")
    eps = float(cluster_selection_epsilon)
    if not math.isfinite(eps) or eps < 0:
        raise InvalidArgumentError(f"cluster_selection_epsilon must be >= 0; got {cluster_selection_epsilon!r}")
    params = {"threshold": t, "threshold_used": False, "min_samples": ms,
              "cluster_selection_method": cluster_selection_method, "cluster_selection_epsilon": eps}
    if x.shape[0] < 2:  # HDBSCAN needs two points; one face is noise
        return Clustering(np.full(x.shape[0], -1, dtype=np.int64), 0, "hdbscan",
                          {**params, "min_cluster_size": mcs, "cannot_link": pid is not None})
    model = HDBSCAN(min_cluster_size=mcs, min_samples=ms, cluster_selection_epsilon=eps,
                    cluster_selection_method=cluster_selection_method, metric="euclidean", copy=True)
    try:
        raw = model.fit_predict(x.astype(np.float64))
    except TypeError as exc:  # scikit-learn #33219
        raise InvalidArgumentError(
            f"HDBSCAN failed with cluster_selection_epsilon={eps} (scikit-learn issue #33219 under NumPy 2): {exc}",
            details={"cluster_selection_epsilon": eps},
        ) from None
    return _finish("hdbscan", x, raw, pid, noise=True, min_cluster_size=mcs, params=params, t0=t0)


# --- agglomerative ------------------------------------------------------------------------------
def agglomerative(embeddings: Any, threshold: float, *, linkage: Literal["average", "complete"] = "average",
                  photo_ids: Any = None, min_cluster_size: int = 1) -> Clustering:
    """sklearn AgglomerativeClustering on cosine distance, cut at ``1 - threshold``.

    Two clusters merge while their ``linkage`` distance is below ``1 - threshold``: average
    linkage = mean similarity of all cross pairs above the threshold; complete = every cross
    pair above it (clusters are cliques). Faces of one photo get a distance larger than any
    average could absorb, so such merges never happen. Needs the dense ``N x N`` matrix.
    """
    AgglomerativeClustering = import_optional("sklearn.cluster", "cluster").AgglomerativeClustering

    t0 = time.perf_counter()
    x = _check_embeddings(embeddings)
    t = _check_threshold(threshold)
    pid = _check_photo_ids(photo_ids, x.shape[0])
    mcs = _check_int("min_cluster_size", min_cluster_size, 1)
    if linkage not in ("average", "complete"):
        raise InvalidArgumentError(f"linkage must be 'average' or 'complete'; got {linkage!r}")
    params = {"threshold": t, "linkage": linkage, "distance_threshold": 1.0 - t}
    n = x.shape[0]
    if n < 2:
        return _finish("agglomerative", x, np.zeros(n, np.int64), pid, noise=False, min_cluster_size=mcs,
                       params=params, t0=t0)
    xd = x.astype(np.float64)
    d = 1.0 - symmetric_products(xd)
    np.clip(d, 0.0, 2.0, out=d)
    np.fill_diagonal(d, 0.0)
    if pid is not None:
        big = 4.0 * float(n) ** 2  # mean over any block holding this pair stays above 2
        same = pid[:, None] == pid[None, :]
        np.fill_diagonal(same, False)
        d[same] = big
    raw = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage=linkage,
                                  distance_threshold=1.0 - t).fit_predict(d)
    return _finish("agglomerative", x, raw, pid, noise=False, min_cluster_size=mcs, params=params, t0=t0)


# --- one entry point ----------------------------------------------------------------------------
def cluster(embeddings: Any, algorithm: str = DEFAULT_ALGORITHM, *, threshold: float | None = None,
            far: float | None = None, model: str | None = None, photo_ids: Any = None,
            **params: Any) -> Clustering:
    """Cluster with ``algorithm`` (one of :data:`ALGORITHMS`).

    The threshold is ``threshold`` when given, else the calibrated one of ``model`` (default
    embedder) at ``far`` (default :data:`DEFAULT_FAR`). ``params`` go to the algorithm
    (e.g. ``linkage=``, ``min_samples=``, ``seed=``); the result's params record ``far``.
    """
    funcs: dict[str, Callable[..., Clustering]] = {
        "chinese_whispers": chinese_whispers,
        "dlib_chinese_whispers": dlib_chinese_whispers,
        "dbscan": dbscan,
        "hdbscan": hdbscan,
        "agglomerative": agglomerative,
    }
    func = funcs.get(algorithm)
    if func is None:
        raise InvalidArgumentError(f"unknown clustering algorithm {algorithm!r}; choose from: {', '.join(ALGORITHMS)}",
                                   details={"algorithm": algorithm, "choices": list(ALGORITHMS)})
    if threshold is not None and far is not None:
        raise InvalidArgumentError("give threshold= or far=, not both")
    if threshold is None:
        far = DEFAULT_FAR if far is None else far
        shape = np.shape(embeddings)
        threshold = threshold_for_far(far, model, dim=int(shape[1]) if len(shape) == 2 else None)
    allowed = [n for n, p in inspect.signature(func).parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(params) - set(allowed) - {"photo_ids"})
    if unknown:
        raise InvalidArgumentError(f"{algorithm} takes no parameter(s) {', '.join(unknown)}; it takes: {', '.join(allowed)}",
                                   details={"algorithm": algorithm, "unknown": unknown, "allowed": allowed})
    result = func(embeddings, threshold, photo_ids=photo_ids, **params)
    if far is not None:
        result = replace(result, params={**result.params, "far": far})
    return result
