"""The gallery's vector index: exact and HNSW, add/replace/remove, padding, filtered search."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.gallery import index as index_mod
from faceprint.gallery.index import (
    EXACT_MAX_SIZE,
    ExactIndex,
    HnswIndex,
    VectorIndex,
    make_index,
)

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def random_unit(rng, n, dim=DIM):
    return unit(rng.standard_normal((n, dim)))


def structured(rng, n_ids: int, per: int, n_queries: int, dim: int = DIM):
    """Identity-structured unit vectors like face embeddings: a shared mean direction, identity
    centres spread around it, noisy samples around each centre (cosines ~0.95 genuine, ~0.8 impostor)."""
    mean = unit(rng.standard_normal(dim))
    centres = mean + 0.45 * random_unit(rng, n_ids, dim)
    ident = np.repeat(np.arange(n_ids), per)
    x = unit(centres[ident] + 0.25 * random_unit(rng, len(ident), dim))
    qid = rng.integers(0, n_ids, n_queries)
    q = unit(centres[qid] + 0.25 * random_unit(rng, n_queries, dim))
    return x, q


def brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int):
    s = q @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(s, order, axis=1)


@pytest.fixture(autouse=True)
def small_projection_fit(monkeypatch):
    """Fit the graph's projection from small first batches, so that these tests exercise it."""
    monkeypatch.setattr(index_mod, "PROJECTION_MIN_FIT", 100)


def hnsw(capacity: int, projected: bool, **kw) -> HnswIndex:
    """An HNSW index whose graph holds 16 principal components (re-ranked on the full 32),
    or the full vectors."""
    return HnswIndex(DIM, capacity, project_dim=16 if projected else None, **kw)


PROJECTED = pytest.mark.parametrize("projected", [True, False], ids=["projected", "full"])


def both(capacity: int = 16):
    return [ExactIndex(DIM, capacity), HnswIndex(DIM, capacity, ef_search=64)]


@pytest.fixture(params=["exact", "hnsw", "hnsw-projected"])
def index(request):
    if request.param == "exact":
        return ExactIndex(DIM)
    return hnsw(8, request.param == "hnsw-projected", ef_search=64)


def test_both_satisfy_the_protocol():
    for ix in both():
        assert isinstance(ix, VectorIndex)
        assert ix.dim == DIM and len(ix) == 0 and ix.ids().dtype == np.int64


def test_exact_topk_matches_brute_force():
    rng = np.random.default_rng(0)
    x = random_unit(rng, 3000, DIM)
    ids = rng.permutation(10_000)[:3000].astype(np.int64) + 5
    q = random_unit(rng, 50, DIM)
    ix = ExactIndex(DIM)
    for a in range(0, 3000, 700):  # several adds: exercises amortised growth
        ix.add(ids[a : a + 700], x[a : a + 700])
    got_ids, got_sims = ix.search(q, 10)
    want_ids, want_sims = brute(x, ids, q, 10)
    assert got_ids.dtype == np.int64 and got_sims.dtype == np.float32
    assert got_ids.shape == (50, 10)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_allclose(got_sims, want_sims, atol=1e-5)
    assert np.all(np.diff(got_sims, axis=1) <= 0)  # best first


def test_exact_single_query_vector_and_big_batches(monkeypatch):
    rng = np.random.default_rng(1)
    x = random_unit(rng, 500, DIM)
    ix = ExactIndex(DIM)
    ix.add(np.arange(500), x)
    one_ids, _ = ix.search(x[7], 1)  # a 1-D query is one query
    assert one_ids.shape == (1, 1) and one_ids[0, 0] == 7
    monkeypatch.setattr(index_mod, "_QUERY_CHUNK_FLOATS", 1000)  # force query chunking
    q = random_unit(rng, 37, DIM)
    got, _ = ix.search(q, 5)
    np.testing.assert_array_equal(got, brute(x, np.arange(500), q, 5)[0])


def test_add_replace_remove_semantics(index):
    rng = np.random.default_rng(2)
    x = random_unit(rng, 40, DIM)
    ids = np.arange(100, 140, dtype=np.int64)
    index.add(ids, x)
    assert len(index) == 40
    # Re-adding an existing id replaces its vector: it is found at its new place, once.
    target = random_unit(rng, 1, DIM)
    index.add(np.array([105]), target)
    assert len(index) == 40
    got, sims = index.search(target, 3)
    assert got[0, 0] == 105 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.count_nonzero(got == 105) == 1
    got, _ = index.search(x[5], 40)  # the old vector is gone
    assert np.count_nonzero(got == 105) == 1
    # Duplicates inside one call: the last vector wins.
    a, b = random_unit(rng, 2, DIM)
    index.add(np.array([107, 107]), np.stack([a, b]))
    assert index.search(b, 1)[0][0, 0] == 107 and len(index) == 40
    # Removal, including unknown ids (ignored) and repeats.
    index.remove(np.array([100, 101, 101, 999_999]))
    assert len(index) == 38
    assert set(index.ids().tolist()) == set(ids.tolist()) - {100, 101}
    got, _ = index.search(x[:2], 40)
    assert not np.isin(got, [100, 101]).any()
    # A removed id can come back.
    index.add(np.array([100]), x[:1])
    assert len(index) == 39 and index.search(x[0], 1)[0][0, 0] == 100
    # Removing everything empties it.
    index.remove(index.ids())
    assert len(index) == 0 and index.ids().size == 0
    got, sims = index.search(x[:3], 4)
    assert (got == -1).all() and np.isneginf(sims).all()


def test_padding_when_fewer_than_k(index):
    rng = np.random.default_rng(3)
    x = random_unit(rng, 3, DIM)
    index.add(np.array([7, 8, 9]), x)
    got, sims = index.search(x, 5)
    assert got.shape == (3, 5) and sims.shape == (3, 5)
    assert (got[:, 3:] == -1).all() and np.isneginf(sims[:, 3:]).all()
    assert (np.sort(got[:, :3], axis=1) == [7, 8, 9]).all()
    assert np.isfinite(sims[:, :3]).all()
    empty_ids, empty_sims = index.search(x, 0)
    assert empty_ids.shape == (3, 0) and empty_sims.shape == (3, 0)


def test_empty_index_and_bad_input(index):
    got, sims = index.search(np.ones((2, DIM), np.float32) / np.sqrt(DIM), 3)
    assert (got == -1).all() and np.isneginf(sims).all()
    with pytest.raises(ValueError):
        index.add(np.array([1, 2]), np.ones((3, DIM), np.float32))
    with pytest.raises(ValueError):
        index.add(np.array([1]), np.ones((1, DIM + 1), np.float32))
    with pytest.raises(ValueError):
        index.add(np.array([-3]), np.ones((1, DIM), np.float32))
    with pytest.raises(TypeError):
        index.add(np.array([1.5]), np.ones((1, DIM), np.float32))


@pytest.mark.parametrize("n_allowed", [3, 400, 1500])
def test_allowed_is_applied_inside_the_search(index, n_allowed):
    """Allowed ids far from the query are still returned: the filter is not a post-filter."""
    rng = np.random.default_rng(4)
    n = 3000
    query = random_unit(rng, 1, DIM)[0]
    near = unit(query + 0.1 * rng.standard_normal((n - n_allowed, DIM)))  # all close to the query
    far = unit(-query + 0.3 * rng.standard_normal((n_allowed, DIM)))  # all far from it
    x = np.concatenate([near, far])
    ids = np.arange(1, n + 1, dtype=np.int64)
    index.add(ids, x)
    allowed = ids[n - n_allowed :]
    allowed_with_junk = np.concatenate([allowed, [10**6, 10**6 + 1]])  # unknown ids ignored
    k = 5
    got, _sims = index.search(query, k, allowed=allowed_with_junk)
    assert np.isin(got[0, : min(k, n_allowed)], allowed).all()
    want_ids, _want_sims = brute(x[n - n_allowed :], allowed, query[None], k)
    if isinstance(index, ExactIndex):
        np.testing.assert_array_equal(got[0, : min(k, n_allowed)], want_ids[0])
    else:  # approximate: found the best allowed one and k allowed ones
        assert got[0, 0] == want_ids[0, 0]
    assert (got[0, n_allowed:] == -1).all()
    # Removed ids stay out of filtered searches too.
    index.remove(allowed[:1])
    got, _ = index.search(query, k, allowed=allowed)
    assert allowed[0] not in got


@PROJECTED
def test_allowed_large_fraction_goes_through_hnsw_filter(monkeypatch, projected):
    """Half the index allowed: HNSW walks the graph with the filter (no exact fallback)."""
    rng = np.random.default_rng(5)
    x, q = structured(rng, 800, 5, 100)
    ids = np.arange(len(x), dtype=np.int64) * 3 + 1  # non-contiguous ids
    ix = hnsw(len(x), projected, ef_search=64)
    ix.add(ids, x)
    allowed = ids[rng.random(len(ids)) < 0.5]
    monkeypatch.setattr(index_mod, "FILTER_EXACT_MAX", 10)  # take the graph path at this small size
    assert len(allowed) > index_mod.FILTER_EXACT_FRACTION * len(ix)
    called = []
    orig = ix._store.search  # the exact mirror: not used on the graph path
    monkeypatch.setattr(ix._store, "search", lambda *a: called.append(1) or orig(*a))
    got, _sims = ix.search(q, 10, allowed=allowed)
    assert not called
    assert np.isin(got, allowed).all()
    sel = np.isin(ids, allowed)
    want, _ = brute(x[sel], ids[sel], q, 1)
    assert np.mean(got[:, 0] == want[:, 0]) >= 0.95


@PROJECTED
def test_hnsw_recall_on_structured_data(projected):
    rng = np.random.default_rng(6)
    x, q = structured(rng, 1500, 4, 300)
    ids = np.arange(len(x), dtype=np.int64)
    ix = hnsw(1024, projected)  # also grows past its initial capacity
    ix.add(ids[:3000], x[:3000])
    ix.add(ids[3000:], x[3000:])
    got, sims = ix.search(q, 10)
    want, want_sims = brute(x, ids, q, 10)
    hit = got[:, 0] == want[:, 0]
    assert np.mean(hit) >= 0.99
    np.testing.assert_allclose(sims[hit, 0], want_sims[hit, 0], atol=1e-5)
    assert (ix._projection is not None) == projected
    # Whatever the graph holds, the similarities returned are the exact ones of the ids returned.
    np.testing.assert_allclose(sims, np.einsum("qkd,qd->qk", x[got], q), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()


@PROJECTED
def test_hnsw_removed_ids_never_returned_and_churn_keeps_every_template_reachable(projected):
    rng = np.random.default_rng(7)
    x, q = structured(rng, 300, 4, 100)
    ids = np.arange(len(x), dtype=np.int64)
    ix = hnsw(len(x), projected, ef_search=64)
    ix.add(ids, x)
    gone = ids[::2]
    ix.remove(gone)
    got, _ = ix.search(np.concatenate([q, x[gone[:50]]]), 20)
    assert not np.isin(got, gone).any()
    assert (got >= 0).all()
    fresh = np.arange(10_000, 10_000 + len(gone), dtype=np.int64)
    ix.add(fresh, x[gone])  # half the graph was removed: this add rebuilds it without them
    assert not ix._tomb and ix._index.get_current_count() == len(ix) == len(x)
    assert set(ix.ids().tolist()) == set(ids[1::2].tolist()) | set(fresh.tolist())
    got, _ = ix.search(x[gone], 1)  # every re-inserted vector is found (its own nearest)
    np.testing.assert_array_equal(got[:, 0], fresh)
    # Updating a live id, and bringing back a removed one, must not duplicate them.
    ix.remove(fresh[:10])
    ix.add(ids[1:2], x[0:1])
    ix.add(fresh[:1], x[gone[0]][None])
    got, _ = ix.search(x[0], 30)
    assert np.count_nonzero(got == 1) == 1 and np.count_nonzero(got == fresh[0]) == 1
    assert set(got[0, :2].tolist()) == {1, int(fresh[0])}  # both hold x[0] now


def test_a_few_removals_do_not_rebuild_the_graph():
    rng = np.random.default_rng(12)
    x, _ = structured(rng, 200, 4, 1)
    ids = np.arange(len(x), dtype=np.int64)
    ix = hnsw(len(x), False, ef_search=64)
    ix.add(ids, x)
    graph = ix._index
    ix.remove(ids[:100])  # 12.5% of the graph
    ix.add(ids[:1] + 5000, x[:1])
    assert ix._index is graph and len(ix._tomb) == 100
    assert not np.isin(ix.search(x[:100], 5)[0], ids[:100]).any()


def test_ids_consistency_after_mixed_operations(index):
    rng = np.random.default_rng(8)
    x = random_unit(rng, 600, DIM)
    truth: dict[int, np.ndarray] = {}
    for _step in range(12):
        new = rng.integers(0, 900, 60)
        index.add(new, x[rng.integers(0, 600, 60)])
        for i in new.tolist():
            truth[i] = True
        drop = rng.integers(0, 900, 40)
        index.remove(drop)
        for i in drop.tolist():
            truth.pop(i, None)
        assert len(index) == len(truth)
        assert set(index.ids().tolist()) == set(truth)
    got, _ = index.search(x[:20], 50)
    assert set(got[got >= 0].tolist()) <= set(truth)


def test_exact_sparse_ids_fall_back_to_a_dict():
    rng = np.random.default_rng(9)
    x = random_unit(rng, 50, DIM)
    ids = np.arange(50, dtype=np.int64) * (1 << 40)  # far beyond a dense lookup table
    ix = ExactIndex(DIM)
    ix.add(ids, x)
    ix.remove(ids[:10])
    got, _ = ix.search(x[10:20], 1, allowed=ids[10:30])
    np.testing.assert_array_equal(got[:, 0], ids[10:20])
    assert set(ix.ids().tolist()) == set(ids[10:].tolist())


@PROJECTED
def test_hnsw_save_and_load(tmp_path, projected):
    rng = np.random.default_rng(10)
    x, q = structured(rng, 200, 3, 20)
    ids = np.arange(len(x), dtype=np.int64) + 1
    ix = hnsw(len(x), projected, ef_search=64)
    ix.add(ids, x)
    ix.remove(ids[:50])
    ix.save(tmp_path / "cache")
    back = HnswIndex.load(tmp_path / "cache")
    assert (back._projection is not None) == projected
    assert len(back) == len(ix) and set(back.ids().tolist()) == set(ix.ids().tolist())
    np.testing.assert_array_equal(back.search(q, 5)[0], ix.search(q, 5)[0])
    back.add(ids[:1], x[:1])  # a removed id comes back after a reload
    assert back.search(x[0], 1)[0][0, 0] == ids[0] and len(back) == len(ix) + 1


def test_make_index_switches_at_the_threshold():
    assert isinstance(make_index(DIM, 0), ExactIndex)
    assert isinstance(make_index(DIM, EXACT_MAX_SIZE - 1), ExactIndex)
    big = make_index(DIM, EXACT_MAX_SIZE)
    assert isinstance(big, HnswIndex) and big._capacity >= EXACT_MAX_SIZE
    assert (big.M, big.ef_construction) == (index_mod.HNSW_M, index_mod.HNSW_EF_CONSTRUCTION)
    huge = make_index(DIM, index_mod.LARGE_GRAPH_SIZE)  # the graph itself is made on the first add
    assert (huge.M, huge.ef_construction) == (index_mod.LARGE_GRAPH_M, index_mod.LARGE_GRAPH_EF_CONSTRUCTION)


def test_projection_needs_enough_templates_in_the_first_batch():
    rng = np.random.default_rng(11)
    x, q = structured(rng, 40, 2, 5)  # 80 templates, below the (patched) minimum of 100
    ix = hnsw(16, True)
    ix.add(np.arange(len(x)), x)
    assert ix._projection is None  # the graph holds the full vectors
    np.testing.assert_array_equal(ix.search(q, 3)[0], brute(x, np.arange(len(x)), q, 3)[0])
