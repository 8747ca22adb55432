"""Clustering algorithms on synthetic unit vectors: separated blobs, the cannot-link guarantee,
thresholds and input checks. No models, no data files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceprint import models
from faceprint.clustering import (
    ALGORITHMS,
    Clustering,
    agglomerative,
    bcubed,
    chinese_whispers,
    cluster,
    dbscan,
    dlib_chinese_whispers,
    enforce_cannot_link,
    hdbscan,
    similarity_graph,
    threshold_for_far,
)
from faceprint.clustering.algorithms import symmetric_products
from faceprint.errors import InvalidArgumentError, ModelMismatchError
from faceprint.models.defaults import default_models

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def blobs(n_people: int, per: int, spread: float = 0.05, seed: int = 0, dim: int = DIM):
    """Well separated identities: random centres (cos ~ 0 apart), samples at cos ~ 0.99."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((n_people, dim)))
    truth = np.repeat(np.arange(n_people), per)
    x = unit(centres[truth] + spread * rng.standard_normal((truth.size, dim)) / math.sqrt(dim) * 3)
    return x, truth


# Each entry: name, callable(x, threshold, photo_ids) -> Clustering
RUNNERS = {
    "chinese_whispers": lambda x, t, p: chinese_whispers(x, t, photo_ids=p),
    "chinese_whispers_unweighted": lambda x, t, p: chinese_whispers(x, t, photo_ids=p, weighted=False),
    "dlib_chinese_whispers": lambda x, t, p: dlib_chinese_whispers(x, t, photo_ids=p),
    "dbscan": lambda x, t, p: dbscan(x, t, photo_ids=p),
    "dbscan3": lambda x, t, p: dbscan(x, t, min_samples=3, photo_ids=p),
    "hdbscan": lambda x, t, p: hdbscan(x, t, photo_ids=p),
    "agglomerative_average": lambda x, t, p: agglomerative(x, t, photo_ids=p),
    "agglomerative_complete": lambda x, t, p: agglomerative(x, t, linkage="complete", photo_ids=p),
}


# --- separated blobs -> perfect -----------------------------------------------------------------
@pytest.mark.parametrize("name", RUNNERS)
def test_separated_blobs_are_clustered_perfectly(name):
    x, truth = blobs(6, 5)
    res = RUNNERS[name](x, 0.7, None)
    assert isinstance(res, Clustering)
    assert res.labels.shape == (30,) and res.labels.dtype == np.int64
    assert res.n_clusters == 6 and res.n_unassigned == 0
    bc = bcubed(truth, res.labels)
    assert bc.precision == 1.0 and bc.recall == 1.0
    assert res.params["threshold"] == pytest.approx(0.7)


@pytest.mark.parametrize("name", RUNNERS)
def test_separated_blobs_with_photo_ids_of_different_people(name):
    # Faces of one photo are always of different people: the constraint costs nothing here.
    x, truth = blobs(5, 4, seed=3)
    photo = np.tile(np.arange(4), 5)  # photo k holds the k-th face of every person
    res = RUNNERS[name](x, 0.7, photo)
    assert bcubed(truth, res.labels).f1 == 1.0
    assert res.n_moved == 0


def test_labels_are_canonical():
    x, _ = blobs(3, 1)
    y, _ = blobs(1, 5, seed=9)
    z, _ = blobs(1, 3, seed=11)
    data = np.concatenate([x, z, y])  # singletons, then a cluster of 3, then one of 5
    res = chinese_whispers(data, 0.7)
    assert res.sizes().tolist() == [5, 3, 1, 1, 1]
    assert res.labels.tolist() == [2, 3, 4, 1, 1, 1, 0, 0, 0, 0, 0]
    assert res.members(1).tolist() == [3, 4, 5]


def test_singletons_and_noise():
    x, _ = blobs(4, 1)  # four unrelated faces
    assert chinese_whispers(x, 0.7).n_clusters == 4
    assert agglomerative(x, 0.7).n_clusters == 4
    d = dbscan(x, 0.7)
    assert d.n_clusters == 0 and d.n_unassigned == 4


def test_min_cluster_size_unassigns_small_clusters():
    a, _ = blobs(1, 4, seed=1)
    b, _ = blobs(1, 2, seed=2)
    c, _ = blobs(1, 1, seed=3)
    x = np.concatenate([a, b, c])
    for k, want in ((1, [4, 2, 1]), (2, [4, 2]), (3, [4]), (5, [])):
        res = chinese_whispers(x, 0.7, min_cluster_size=k)
        assert res.sizes().tolist() == want
        assert res.n_unassigned == 7 - sum(want)
    assert agglomerative(x, 0.7, min_cluster_size=3).sizes().tolist() == [4]


def test_chinese_whispers_is_deterministic():
    rng = np.random.default_rng(5)
    x = unit(rng.standard_normal((200, 8)))
    a = chinese_whispers(x, 0.6, seed=1)
    b = chinese_whispers(x, 0.6, seed=1)
    assert np.array_equal(a.labels, b.labels)
    assert a.params["rounds"] >= 1


@pytest.mark.parametrize("name", RUNNERS)
def test_empty_input_gives_zero_clusters(name):
    res = RUNNERS[name](np.zeros((0, DIM), np.float32), 0.7, None)
    assert res.n_clusters == 0 and res.labels.shape == (0,)
    res = RUNNERS[name](np.zeros((0, DIM), np.float32), 0.7, np.zeros(0, np.int64))
    assert res.n_clusters == 0


@pytest.mark.parametrize("name", RUNNERS)
def test_one_and_two_faces(name):
    x, _ = blobs(1, 2)
    one = RUNNERS[name](x[:1], 0.7, None)
    assert one.labels.shape == (1,)
    two = RUNNERS[name](x, 0.7, np.array([0, 0]))  # same photo: never together
    assert two.labels.shape == (2,)
    assert not (two.labels[0] >= 0 and two.labels[0] == two.labels[1])


# --- thresholds ---------------------------------------------------------------------------------
def _pair_at(cos: float) -> np.ndarray:
    return np.array([[1.0, 0.0], [cos, math.sqrt(1 - cos * cos)]], dtype=np.float32)


@pytest.mark.parametrize("name", ["chinese_whispers", "dlib_chinese_whispers", "dbscan", "agglomerative_average",
                                  "agglomerative_complete"])
def test_threshold_is_cosine(name):
    t = 0.9258
    together = RUNNERS[name](_pair_at(t + 1e-3), t, None)
    assert together.n_clusters == 1 and together.n_unassigned == 0
    apart = RUNNERS[name](_pair_at(t - 1e-3), t, None)
    assert not (apart.labels[0] >= 0 and apart.labels[0] == apart.labels[1])


def test_threshold_for_far_uses_model_card():
    assert threshold_for_far(1e-3, "dlib-resnet34") == pytest.approx(0.92578, abs=1e-4)
    assert threshold_for_far(1e-3, "fr-feature") == pytest.approx(0.3363, abs=1e-4)  # cards list without the pack
    assert threshold_for_far(1e-4, "dlib-resnet34") > threshold_for_far(1e-3, "dlib-resnet34")
    # No model named: the default embedder's card, whichever is installed.
    assert threshold_for_far(1e-3) == models.get_card(default_models().embedder).threshold_for(1e-3)
    with pytest.raises(InvalidArgumentError):
        threshold_for_far(0.5)


def test_another_models_threshold_is_refused_by_dimension():
    x, _ = blobs(3, 4, dim=128)
    with pytest.raises(ModelMismatchError) as info:
        cluster(x, far=1e-3, model="fr-feature")  # 128-D vectors cannot be fr-feature's (512-D)
    assert info.value.code == "model_mismatch"
    assert cluster(x, far=1e-3, model="dlib-resnet34").threshold == pytest.approx(0.92578, abs=1e-4)


def test_cluster_dispatches_and_records_far():
    x, truth = blobs(3, 4, spread=0.01, dim=128)
    res = cluster(x, far=1e-3, model="dlib-resnet34")
    assert res.params["far"] == 1e-3 and res.threshold == pytest.approx(threshold_for_far(1e-3, "dlib-resnet34"))
    assert bcubed(truth, res.labels).f1 == 1.0
    for algorithm in ALGORITHMS:
        assert cluster(x, algorithm, threshold=0.7).algorithm == algorithm
    assert cluster(x, "agglomerative", threshold=0.7, linkage="complete").params["linkage"] == "complete"
    d = cluster(x, "hdbscan", threshold=0.7).to_dict()
    assert d["algorithm"] == "hdbscan" and len(d["labels"]) == 12


def test_similarity_graph():
    x, _ = blobs(2, 3)
    g = similarity_graph(x, 0.7, block=2)
    assert g.shape == (6, 6) and g.nnz == 12  # two triangles, both directions, no diagonal
    assert (g != g.T).nnz == 0
    g = similarity_graph(x, 0.7, photo_ids=np.array([0, 0, 1, 2, 3, 4]))
    assert g.nnz == 10


@pytest.mark.parametrize("block", [1, 7, 2048])
def test_similarity_graph_is_exactly_symmetric_at_the_threshold(block):
    """Every pair's similarity is computed once and mirrored: with thresholds placed exactly
    on similarities, an edge exists in both directions or in neither, and both carry the same
    value bit for bit (whatever rounding the CPU's BLAS kernels do)."""
    x, _ = blobs(3, 10, spread=0.3, seed=4)
    sims = np.triu(x @ x.T, 1)
    for t in np.unique(sims[sims > 0.5])[:-5:7]:  # (not the top ones: there is always an edge)
        g = similarity_graph(x, float(t), block=block).tocoo()
        edges = {(int(i), int(j)): float(v) for i, j, v in zip(g.row, g.col, g.data)}
        assert edges, t
        assert all(edges.get((j, i)) == v for (i, j), v in edges.items())
        assert all(i != j for i, j in edges)


def test_symmetric_products_is_exactly_symmetric():
    x, _ = blobs(4, 9, spread=0.5, seed=1)
    s = symmetric_products(x.astype(np.float64))
    assert np.array_equal(s, s.T)
    np.testing.assert_allclose(s, x.astype(np.float64) @ x.T.astype(np.float64), atol=1e-12)


# --- the cannot-link guarantee ------------------------------------------------------------------
def _violations(labels: np.ndarray, photo_ids: np.ndarray) -> int:
    assigned = labels >= 0
    pairs = np.stack([labels[assigned], photo_ids[assigned]], axis=1)
    return int(assigned.sum() - np.unique(pairs, axis=0).shape[0])


def _random_faces(seed: int):
    """Few people, many faces, few photos: same-photo pairs of one person are common."""
    rng = np.random.default_rng(seed)
    n_people = int(rng.integers(1, 6))
    n = int(rng.integers(2, 60))
    x, _ = blobs(n_people, 1, seed=seed)
    who = rng.integers(0, n_people, n)
    faces = unit(x[who] + rng.uniform(0.0, 0.3) * rng.standard_normal((n, DIM)) / math.sqrt(DIM))
    photo_ids = rng.integers(0, int(rng.integers(1, 10)), n)
    return faces, photo_ids


@pytest.mark.parametrize("name", RUNNERS)
@pytest.mark.parametrize("seed", range(12))
def test_no_cluster_ever_holds_two_faces_of_one_photo(name, seed):
    x, photo_ids = _random_faces(seed)
    t = float(np.random.default_rng(seed).uniform(0.3, 0.95))
    res = RUNNERS[name](x, t, photo_ids)
    assert _violations(res.labels, photo_ids) == 0
    assert res.params["cannot_link"] is True


@pytest.mark.parametrize("seed", range(20))
def test_enforce_cannot_link_on_any_labels(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    x = unit(rng.standard_normal((n, 8)))
    labels = rng.integers(-1, int(rng.integers(1, 6)), n)
    photo_ids = rng.integers(0, int(rng.integers(1, 12)), n)
    for noise in (False, True):
        out, moved = enforce_cannot_link(x, labels, photo_ids, noise=noise)
        assert _violations(out, photo_ids) == 0
        assigned = labels >= 0
        expected = assigned.sum() - np.unique(np.stack([labels[assigned], photo_ids[assigned]], 1), axis=0).shape[0]
        assert moved == expected
        assert np.array_equal(out[labels < 0], labels[labels < 0])  # unassigned stay unassigned
        assert int(np.count_nonzero(out != labels)) == moved
        if noise:
            assert np.count_nonzero(out < 0) == np.count_nonzero(labels < 0) + moved
        else:
            new = out[out != labels]
            assert len(set(new.tolist())) == new.size and (new > labels.max()).all()


def test_enforce_cannot_link_keeps_the_stronger_face():
    c = np.array([1.0, 0.0, 0.0])
    near = unit(np.array([1.0, 0.1, 0.0]))
    far_ = unit(np.array([1.0, 0.8, 0.0]))
    x = np.stack([far_, near, c]).astype(np.float32)
    out, moved = enforce_cannot_link(x, np.array([0, 0, 0]), np.array([7, 7, 8]))
    assert moved == 1 and out.tolist() == [1, 0, 0]
    # a cluster made of one photo only: the lowest index stays
    out, moved = enforce_cannot_link(x, np.array([0, 0, 0]), np.array([7, 7, 7]), noise=True)
    assert moved == 2 and out.tolist() == [0, -1, -1]
    out, moved = enforce_cannot_link(x, np.array([0, 0, 0]), None)
    assert moved == 0 and out.tolist() == [0, 0, 0]


@pytest.mark.parametrize("linkage", ["average", "complete"])
def test_agglomerative_builds_the_constraint_in(linkage):
    x, photo_ids = _random_faces(4)
    res = agglomerative(x, 0.3, linkage=linkage, photo_ids=photo_ids)
    assert res.n_moved == 0 and _violations(res.labels, photo_ids) == 0


def test_two_faces_of_one_person_in_one_photo_are_split():
    x, _ = blobs(1, 3, spread=0.01)
    photo_ids = np.array([1, 1, 2])
    for name in RUNNERS:
        if name.startswith("hdbscan"):
            continue
        res = RUNNERS[name](x, 0.7, photo_ids)
        assert res.labels[0] != res.labels[1] or res.labels[0] < 0, name
        assert _violations(res.labels, photo_ids) == 0


# --- input checks -------------------------------------------------------------------------------
GOOD = blobs(2, 2)[0]


@pytest.mark.parametrize(
    "embeddings",
    [
        np.ones(4, np.float32),  # 1-D
        np.ones((2, 2, 2), np.float32),  # 3-D
        np.array([[np.nan, 0.0], [1.0, 0.0]], np.float32),
        np.array([[np.inf, 0.0], [1.0, 0.0]], np.float32),
        np.array([[2.0, 0.0], [1.0, 0.0]], np.float32),  # not normalised
        np.zeros((2, 4), np.float32),  # zero vectors
        np.array([["a", "b"]]),
        np.zeros((3, 0), np.float32),
    ],
)
@pytest.mark.parametrize("name", RUNNERS)
def test_bad_embeddings(name, embeddings):
    with pytest.raises(InvalidArgumentError):
        RUNNERS[name](embeddings, 0.7, None)


@pytest.mark.parametrize("threshold", [math.nan, 1.5, -2.0, "high", None])
@pytest.mark.parametrize("func", [chinese_whispers, dlib_chinese_whispers, dbscan, agglomerative])
def test_bad_threshold(func, threshold):
    with pytest.raises(InvalidArgumentError):
        func(GOOD, threshold)


@pytest.mark.parametrize("photo_ids", [[0, 1, 2], [[0, 1, 2, 3]], [0.5, 1, 2, 3], ["a", "b", "c", "d"]])
@pytest.mark.parametrize("name", RUNNERS)
def test_bad_photo_ids(name, photo_ids):
    with pytest.raises(InvalidArgumentError):
        RUNNERS[name](GOOD, 0.7, np.asarray(photo_ids))


def test_bad_parameters():
    with pytest.raises(InvalidArgumentError):
        dbscan(GOOD, 0.7, min_samples=0)
    with pytest.raises(InvalidArgumentError):
        hdbscan(GOOD, min_cluster_size=1)
    with pytest.raises(InvalidArgumentError):
        hdbscan(GOOD, cluster_selection_epsilon=-1.0)
    with pytest.raises(InvalidArgumentError):
        agglomerative(GOOD, 0.7, linkage="single")
    with pytest.raises(InvalidArgumentError):
        chinese_whispers(GOOD, 0.7, min_cluster_size=0)
    with pytest.raises(InvalidArgumentError):
        chinese_whispers(GOOD, 0.7, max_iter=True)
    with pytest.raises(InvalidArgumentError):
        cluster(GOOD, "kmeans", threshold=0.7)
    with pytest.raises(InvalidArgumentError):
        cluster(GOOD, threshold=0.7, far=1e-3)
    with pytest.raises(InvalidArgumentError):
        cluster(GOOD, "dbscan", threshold=0.7, linkage="average")  # not a DBSCAN parameter


def test_integral_float_photo_ids_accepted():
    res = chinese_whispers(GOOD, 0.7, photo_ids=np.array([0.0, 1.0, 0.0, 1.0]))
    assert res.n_clusters == 2
