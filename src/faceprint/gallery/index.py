"""The gallery's vector index: top-k cosine search over unit-norm templates.

The database is the source of truth; an index is rebuilt from it (or caught up with it) and
only answers "which template ids are most similar to this query". Two implementations:

* :class:`ExactIndex` -- one contiguous float32 matrix scored with a BLAS matrix product.
  Exact, no build cost, O(1) removal (swap-with-last). Used below :func:`exact_max_size`
  (:data:`EXACT_MAX_SIZE` templates up to 128-D, fewer for wider embeddings).
* :class:`HnswIndex` -- an HNSW graph (``hnswlib``), approximate. Used from
  :func:`exact_max_size` up, where a single exact query costs more than the latency budget.

:func:`make_index` picks one. The sizes and parameters below were chosen with
``bench/search.py`` (synthetic galleries shaped like dlib-resnet34's 128-D and fr-feature's
512-D embeddings); the measurements are in bench/README.md, sections 'Vector index: ...'.

Ids are template ids (SQLite rowids): non-negative int64. Vectors are float32, L2-normalised;
similarity is the dot product. Results are best first, padded with id -1 / similarity -inf.
Neither index is safe for concurrent mutation: the caller serialises writes (the gallery holds
a lock); concurrent searches without writes are fine.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

__all__ = [
    "EXACT_MAX_SIZE",
    "EXACT_REFERENCE_DIM",
    "ExactIndex",
    "HnswIndex",
    "VectorIndex",
    "auto_ef_search",
    "exact_max_size",
    "hnsw_params",
    "make_index",
]

#: Galleries of up to EXACT_REFERENCE_DIM-D templates smaller than this get an
#: :class:`ExactIndex`: up to here an exact query stays inside the 2 ms p99 budget with recall 1
#: and no build cost (exact cost grows with the size, memory bandwidth; measured:
#: bench/README.md, section 'Vector index: exact below 100k'). Wider templates switch earlier:
#: :func:`exact_max_size`.
EXACT_MAX_SIZE = 100_000
EXACT_REFERENCE_DIM = 128


def exact_max_size(dim: int) -> int:
    """The gallery size from which :func:`make_index` builds an HNSW graph for ``dim``-D
    templates: :data:`EXACT_MAX_SIZE` up to :data:`EXACT_REFERENCE_DIM`-D, and in proportion
    fewer above (25,000 at 512-D). An exact query scans every byte of the matrix, so its cost
    follows size x dim, while the graph's query barely grows with dim (512-D against 128-D at
    100k: an exact query 5x, one through the graph 1.2x; measured: bench/README.md, section
    'Vector index: 512-D')."""
    if dim <= EXACT_REFERENCE_DIM:
        return EXACT_MAX_SIZE
    return EXACT_MAX_SIZE * EXACT_REFERENCE_DIM // dim

#: HNSW graph parameters. M=32 beat M=16 on identity-structured data; the larger graph (M=48, ef_construction=200) costs about twice the
#: build time and gains little below LARGE_GRAPH_SIZE, but is what reaches recall@1 0.99
#: inside 2 ms at 1M templates; so galleries from LARGE_GRAPH_SIZE templates up get it
#: (measured: bench/README.md, section 'Vector index: graph parameters').
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 100
LARGE_GRAPH_SIZE = 500_000
LARGE_GRAPH_M = 48
LARGE_GRAPH_EF_CONSTRUCTION = 200

#: The graph is built over the templates' top principal components, not the full vectors, and
#: its candidates are re-ranked by the exact similarity of the full vectors (kept in the
#: index's exact mirror anyway). The leading components hold most of what separates
#: identities while per-image noise spreads over all directions, so the graph walks better and
#: each distance costs half; fewer components lost recall (measured: bench/README.md, section
#: 'Vector index: projection'). The basis is fitted once, on the first batch
#: added (the whole gallery at a rebuild), from at most PROJECTION_SAMPLE templates; with fewer
#: than PROJECTION_MIN_FIT templates in that batch the graph uses the full vectors.
HNSW_PROJECT_DIM = 64

HNSW_RERANK = 64
PROJECTION_MIN_FIT = 5_000
PROJECTION_SAMPLE = 100_000

#: Removed elements stay in an HNSW graph (marked deleted, still walked through). When they
#: exceed this share of it, the next add rebuilds the graph from the live templates.
TOMBSTONE_REBUILD_FRACTION = 0.25


def auto_ef_search(size: int) -> int:
    """Search breadth by index size: 256 up to 200k templates, 384 below LARGE_GRAPH_SIZE, 512
    from there up (on the large graph): enough for recall@1 0.99 inside the 2 ms p99 budget, with a
    margin on recall at 1M (measured: bench/README.md, section 'Vector index: ef_search')."""
    if size <= 200_000:
        return 256
    return 384 if size < LARGE_GRAPH_SIZE else 512


def hnsw_params(expected_size: int) -> dict[str, int]:
    """Graph parameters for a gallery of this many templates (see LARGE_GRAPH_SIZE)."""
    if expected_size >= LARGE_GRAPH_SIZE:
        return {"M": LARGE_GRAPH_M, "ef_construction": LARGE_GRAPH_EF_CONSTRUCTION}
    return {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}


#: A filtered search whose allowed set holds at most this many live templates (or at most
#: FILTER_EXACT_FRACTION of the index) is scored exactly over that subset; larger allowed sets
#: go through the HNSW search with the filter applied inside the graph walk. A selective filter
#: makes the walk call back many times more, while scoring a gathered subset is cheap per
#: template (measured: bench/README.md, section 'Vector index: filtered search').
FILTER_EXACT_MAX = 20_000
FILTER_EXACT_FRACTION = 0.10

_QUERY_CHUNK_FLOATS = 1 << 24  # bound the (queries x templates) score block to 64 MB


@runtime_checkable
class VectorIndex(Protocol):
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def __len__(self) -> int: ...

    def ids(self) -> np.ndarray: ...


# --- input checks ---------------------------------------------------------------------------
def _as_ids(ids: npt.ArrayLike, name: str = "ids") -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative template ids")
    return arr


def _as_vectors(vectors: npt.ArrayLike, dim: int, n: int | None = None) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {np.shape(vectors)}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{n} ids but {arr.shape[0]} vectors")
    return np.ascontiguousarray(arr)


def _last_of_duplicates(ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within one add() call a repeated id keeps its last vector (as if added in order)."""
    if len(ids) < 2:
        return ids, vectors
    rev_unique, rev_first = np.unique(ids[::-1], return_index=True)
    if len(rev_unique) == len(ids):
        return ids, vectors
    keep = np.sort(len(ids) - 1 - rev_first)
    return ids[keep], vectors[keep]


def _unique(ids: np.ndarray) -> np.ndarray:
    """Sorted unique ids; free when they already are (np.unique costs ~10 ms per 100k)."""
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return ids
    return np.unique(ids)


def _search_start(queries: npt.ArrayLike, k: int, dim: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Checked queries and k, and the padded result to fill: (q, k, ids, similarities)."""
    q = _as_vectors(queries, dim)
    k = int(k)
    if k < 0:
        raise ValueError("k must be >= 0")
    return q, k, np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)


def _topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k largest entries of each row, best first."""
    n = scores.shape[1]
    kk = min(k, n)
    if kk < n:
        part = np.argpartition(scores, n - kk, axis=1)[:, n - kk :]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


# --- id -> slot map ---------------------------------------------------------------------------
class _IdMap:
    """int64 id -> int64 slot (or -1), looked up a whole array at a time.

    Template ids are SQLite rowids: small and dense, so a lookup table indexed by id (8 bytes
    per id up to the largest) answers an array of ids in one numpy gather -- a filtered search
    over 500k allowed ids maps them in ~2 ms instead of ~50 ms through a dict. Should ids get
    sparse (largest id beyond 4x the live count and past 1M), it falls back to a dict.
    """

    _DENSE_FLOOR = 1 << 20

    def __init__(self) -> None:
        # Dense mode while _lut is set; then _dict stays empty.
        self._lut: np.ndarray | None = np.full(1024, -1, np.int64)
        self._dict: dict[int, int] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, ids: np.ndarray) -> np.ndarray:
        if self._lut is not None:
            out = np.full(len(ids), -1, np.int64)
            inside = ids < len(self._lut)
            out[inside] = self._lut[ids[inside]]
            return out
        d = self._dict
        return np.fromiter((d.get(i, -1) for i in ids.tolist()), np.int64, len(ids))

    def set(self, ids: np.ndarray, slots: np.ndarray) -> None:
        """Map ids (unique, each new or re-mapped) to slots."""
        if not len(ids):
            return
        if self._lut is not None:
            top = int(ids.max())
            if top >= len(self._lut):
                need = top + 1
                if need > max(self._DENSE_FLOOR, 4 * (self._count + len(ids))):
                    self._to_dict()
                else:
                    grown = np.full(max(need, 2 * len(self._lut)), -1, np.int64)
                    grown[: len(self._lut)] = self._lut
                    self._lut = grown
        lut = self._lut
        if lut is not None:
            self._count += int(np.count_nonzero(lut[ids] < 0))
            lut[ids] = slots
        else:
            d = self._dict
            for i, s in zip(ids.tolist(), np.asarray(slots).tolist()):
                if i not in d:
                    self._count += 1
                d[i] = s

    def drop(self, ids: np.ndarray) -> None:
        """Forget ids (unique, all present)."""
        if not len(ids):
            return
        if self._lut is not None:
            self._lut[ids] = -1
        else:
            for i in ids.tolist():
                del self._dict[i]
        self._count -= len(ids)

    def keys(self) -> np.ndarray:
        if self._lut is not None:
            return np.flatnonzero(self._lut >= 0).astype(np.int64)
        return np.fromiter(self._dict.keys(), np.int64, len(self._dict))

    def mask(self, ids: np.ndarray) -> np.ndarray | None:
        """A byte per possible id, 1 for the given ids (dense mode only)."""
        if self._lut is None:
            return None
        m = np.zeros(len(self._lut), np.uint8)
        m[ids] = 1
        return m

    def _to_dict(self) -> None:
        lut = self._lut
        if lut is None:
            return
        keys = np.flatnonzero(lut >= 0)
        self._dict = dict(zip(keys.tolist(), lut[keys].tolist()))
        self._lut = None


# --- exact ----------------------------------------------------------------------------------
class ExactIndex:
    """Exact top-k by one float32 matrix product over contiguous storage.

    Rows ``[0, n)`` of ``_vecs`` are the live templates, ``_ids[row]`` their ids; growth doubles
    the buffer (amortised O(1) per add) and removal moves the last rows into the holes.
    """

    def __init__(self, dim: int, capacity: int = 0) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = int(dim)
        cap = max(int(capacity), 64)
        self._vecs = np.empty((cap, self.dim), np.float32)
        self._ids = np.empty(cap, np.int64)
        self._n = 0
        self._map = _IdMap()

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ExactIndex(dim={self.dim}, size={self._n})"

    def ids(self) -> np.ndarray:
        return self._ids[: self._n].copy()

    @property
    def nbytes(self) -> int:
        return self._vecs.nbytes + self._ids.nbytes

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ids (KeyError if one is absent)."""
        rows = self._map.get(_as_ids(ids))
        if np.any(rows < 0):
            raise KeyError("id not in the index")
        vectors: np.ndarray = self._vecs[rows].copy()
        return vectors

    def _reserve(self, n: int) -> None:
        cap = len(self._ids)
        if n <= cap:
            return
        cap = max(n, 2 * cap)
        vecs = np.empty((cap, self.dim), np.float32)
        vecs[: self._n] = self._vecs[: self._n]
        ids = np.empty(cap, np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._vecs, self._ids = vecs, ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dim, len(ids))
        ids, vectors = _last_of_duplicates(ids, vectors)
        if not len(ids):
            return
        rows = self._map.get(ids)
        old = rows >= 0
        if old.any():  # re-adding an id replaces its vector in place
            self._vecs[rows[old]] = vectors[old]
        new = ~old
        m = int(np.count_nonzero(new))
        if m:
            self._reserve(self._n + m)
            slots = np.arange(self._n, self._n + m, dtype=np.int64)
            self._vecs[slots] = vectors[new]
            self._ids[slots] = ids[new]
            self._map.set(ids[new], slots)
            self._n += m

    def remove(self, ids: np.ndarray) -> None:
        ids = np.unique(_as_ids(ids))
        rows = self._map.get(ids)
        present = rows >= 0
        ids, rows = ids[present], rows[present]
        m = len(rows)
        if not m:
            return
        n_after = self._n - m
        # Holes below the new end are filled by the surviving rows above it (swap-with-last).
        holes = rows[rows < n_after]
        doomed_tail = np.zeros(m, bool)
        doomed_tail[rows[rows >= n_after] - n_after] = True
        movers = n_after + np.flatnonzero(~doomed_tail)
        self._map.drop(ids)
        if len(holes):
            self._vecs[holes] = self._vecs[movers]
            self._ids[holes] = self._ids[movers]
            self._map.set(self._ids[holes], holes)
        self._n = n_after

    def _live_rows(self, allowed: npt.ArrayLike) -> np.ndarray:
        rows = self._map.get(_unique(_as_ids(allowed, "allowed")))
        return rows[rows >= 0]

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q, k, out_ids, out_sims = _search_start(queries, k, self.dim)
        if k == 0 or self._n == 0 or len(q) == 0:
            return out_ids, out_sims
        rows = None if allowed is None else self._live_rows(allowed)
        if rows is not None and len(rows) == 0:
            return out_ids, out_sims
        base = self._vecs[: self._n]
        gather = rows is not None and len(rows) * 3 < self._n  # small subset: copy it once
        if gather:
            base, row_ids = self._vecs[rows], self._ids[rows]
        else:
            row_ids = self._ids[: self._n]
        ncols = len(rows) if rows is not None else self._n
        kk = min(k, ncols)
        step = max(1, _QUERY_CHUNK_FLOATS // max(base.shape[0], 1))
        for a in range(0, len(q), step):
            scores = q[a : a + step] @ base.T
            if rows is not None and not gather:
                scores = scores[:, rows]  # large subset: score all, keep the allowed columns
                cols, vals = _topk_rows(scores, kk)
                out_ids[a : a + step, :kk] = row_ids[rows[cols]]
            else:
                cols, vals = _topk_rows(scores, kk)
                out_ids[a : a + step, :kk] = row_ids[cols]
            out_sims[a : a + step, :kk] = vals
        return out_ids, out_sims


# --- approximate (HNSW) ---------------------------------------------------------------------
class HnswIndex:
    """Approximate top-k over an ``hnswlib`` HNSW graph, re-ranked exactly.

    The graph holds each template's projection on the gallery's top :data:`HNSW_PROJECT_DIM`
    principal components (L2 distance); a query walks it for the best
    ``max(k, HNSW_RERANK)`` candidates, which are then scored exactly on the full vectors.
    Without a projection (a first batch too small to fit one, or ``project_dim=None``) the
    graph holds the full unit vectors (inner product) and answers directly.

    It keeps an :class:`ExactIndex` of the same templates beside the graph (4*dim bytes per
    template more: 512 MB at 1M x 128-D). That mirror owns the id bookkeeping (``len``, ``ids``)
    and scores small filtered searches; hnswlib's own ``get_items`` costs ~11 us per vector,
    too slow to gather a 10k-template subset per query.

    * add: new ids are inserted; an id already present has its vector updated in place;
      an id removed earlier is un-deleted and updated. Freed slots are *not* reused: hnswlib's
      ``replace_deleted`` left ~0.3% of the re-inserted vectors unreachable (an exact
      duplicate of the query not found at ef=64; 13-18 of 6,000 in tests/unit/test_index.py's
      churn scenario, 0 without it). Instead, when removed elements make up more than
      :data:`TOMBSTONE_REBUILD_FRACTION` of the graph, the next add rebuilds the graph from
      the exact mirror (and refits the projection).
    * remove: hnswlib marks the element deleted; it is never returned again.
    * search with ``allowed``: a small allowed set (<= FILTER_EXACT_MAX live templates or
      <= FILTER_EXACT_FRACTION of the index) is scored exactly over its own vectors; a larger
      one is passed to hnswlib as a filter, applied while walking the graph -- only allowed
      elements enter the result heap, so the k best allowed templates are searched for, not
      a top-k that is filtered afterwards.
    * save/load: hnswlib's own binary format plus the ids and vectors (.npy): ~3 s each way
      at 1M (vs 174 s to build); the gallery may use it as a cache keyed by its database version.
    """

    def __init__(
        self,
        dim: int,
        capacity: int = 1024,
        *,
        M: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int | None = None,
        threads: int | None = None,
        seed: int = 100,
        project_dim: int | None = HNSW_PROJECT_DIM,
        rerank: int = HNSW_RERANK,
        _index: Any = None,
        _projection: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = int(dim)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self._ef_search = int(ef_search) if ef_search else None
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        self.project_dim = int(project_dim) if project_dim and project_dim < self.dim else None
        self.rerank = int(rerank)
        self._capacity = max(int(capacity), 16)
        self._seed = seed
        # The graph is made on the first add, when the projection can be fitted.
        self._index = _index
        self._projection = _projection  # (mean, basis): graph vector = (v - mean) @ basis
        self._store = ExactIndex(self.dim, capacity if _index is None else 0)
        self._tomb: set[int] = set()  # ids marked deleted that hnswlib may still hold

    def _make_graph(self, first: np.ndarray) -> None:
        import hnswlib

        if self.project_dim and len(first) >= PROJECTION_MIN_FIT:
            rng = np.random.default_rng(self._seed)
            sample = first if len(first) <= PROJECTION_SAMPLE else first[rng.choice(len(first), PROJECTION_SAMPLE, replace=False)]
            mean = sample.mean(axis=0, dtype=np.float64)
            _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
            self._projection = (mean.astype(np.float32), np.ascontiguousarray(vt[: self.project_dim].T, dtype=np.float32))
            graph = hnswlib.Index(space="l2", dim=self.project_dim)
        else:
            graph = hnswlib.Index(space="ip", dim=self.dim)
        graph.init_index(
            max_elements=max(self._capacity, len(first)),
            M=self.M,
            ef_construction=self.ef_construction,
            random_seed=self._seed,
        )
        self._index = graph

    @property
    def graph_dim(self) -> int | None:
        """The dimension the graph is built in: the principal components kept, or the full
        vectors when none are; None before the first add (the projection is fitted then)."""
        if self._index is None:
            return None
        return self.dim if self._projection is None else int(self._projection[1].shape[1])

    def _graph_vectors(self, vectors: np.ndarray) -> np.ndarray:
        if self._projection is None:
            return vectors
        mean, basis = self._projection
        return np.ascontiguousarray((vectors - mean) @ basis, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def ef_search(self) -> int:
        """Search breadth: as set, else :func:`auto_ef_search` for the current size."""
        return self._ef_search or auto_ef_search(len(self))

    @ef_search.setter
    def ef_search(self, value: int | None) -> None:
        self._ef_search = int(value) if value else None

    def __repr__(self) -> str:
        projected = f", projected={self._projection[1].shape[1]}" if self._projection is not None else ""
        return f"HnswIndex(dim={self.dim}, size={len(self)}, M={self.M}, ef_search={self.ef_search}{projected})"

    def ids(self) -> np.ndarray:
        return self._store.ids()

    @property
    def nbytes(self) -> int:
        """The graph (hnswlib's serialized size, vectors included) plus the exact mirror."""
        graph = int(self._index.index_file_size()) if self._index is not None else 0
        return graph + self._store.nbytes

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._store.vectors(ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dim, len(ids))
        ids, vectors = _last_of_duplicates(ids, vectors)
        if not len(ids):
            return
        if self._index is None:
            self._make_graph(vectors)
        index = self._index
        full, vectors = vectors, self._graph_vectors(vectors)
        held = self._store._map.get(ids) >= 0  # already in the graph: update in place
        if self._tomb:  # ids removed earlier and now back: un-delete them, then update them
            for j, i in enumerate(ids.tolist()):
                if i in self._tomb:
                    self._tomb.discard(i)
                    index.unmark_deleted(i)
                    held[j] = True
        if held.any():
            index.add_items(vectors[held], ids[held], num_threads=self.threads)
        fresh = ~held
        if fresh.any():
            need = index.get_current_count() + int(np.count_nonzero(fresh))
            if need > index.get_max_elements():
                index.resize_index(max(need, 2 * index.get_max_elements()))
            index.add_items(vectors[fresh], ids[fresh], num_threads=self.threads)
        self._store.add(ids, full)
        if len(self._tomb) > TOMBSTONE_REBUILD_FRACTION * index.get_current_count():
            self._rebuild_graph()

    def _rebuild_graph(self) -> None:
        """A fresh graph of the live templates: drops the removed elements for good."""
        n = len(self._store)
        live_ids, live = self._store._ids[:n], self._store._vecs[:n]
        self._capacity = max(self._capacity, int(n * 1.1) + 16)
        self._projection = None
        self._make_graph(live)
        self._tomb = set()
        self._index.add_items(self._graph_vectors(live), live_ids, num_threads=self.threads)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.unique(_as_ids(ids))
        ids = ids[self._store._map.get(ids) >= 0]
        if not len(ids):
            return
        for i in ids.tolist():
            self._index.mark_deleted(i)  # (a non-empty index has a graph)
        self._store.remove(ids)
        self._tomb.update(ids.tolist())

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q, k, out_ids, out_sims = _search_start(queries, k, self.dim)
        n = len(self)
        if k == 0 or n == 0 or len(q) == 0:
            return out_ids, out_sims
        if allowed is None:
            kk = min(k, n)
            labels, sims = self._knn(q, kk, None, self.threads)
        else:
            live = _unique(_as_ids(allowed, "allowed"))
            live = live[self._store._map.get(live) >= 0]
            if not len(live):
                return out_ids, out_sims
            kk = min(k, len(live))
            if len(live) <= max(FILTER_EXACT_MAX, FILTER_EXACT_FRACTION * n) or len(live) <= kk:
                return self._store.search(q, k, live)
            labels, sims = self._knn(q, kk, live, 1)
        out_ids[:, :kk] = labels
        out_sims[:, :kk] = sims
        return out_ids, out_sims

    def _knn(self, q: np.ndarray, kk: int, live: np.ndarray | None, threads: int) -> tuple[np.ndarray, np.ndarray]:
        index = self._index
        if self._projection is not None:  # candidates from the graph, order from the full vectors
            n_live = len(self) if live is None else len(live)
            kg = min(max(kk, self.rerank), n_live)
            index.set_ef(max(self.ef_search, kg))
            try:
                labels, _ = index.knn_query(self._graph_vectors(q), k=kg, num_threads=threads,
                                            filter=self._filter(live))
            except RuntimeError:
                return self._store.search(q, kk, live)
            labels = labels.astype(np.int64)
            cand = self._store.vectors(labels.ravel()).reshape(len(q), kg, self.dim)
            sims = np.einsum("qkd,qd->qk", cand, q)
            order = np.argsort(-sims, axis=1, kind="stable")[:, :kk]
            return np.take_along_axis(labels, order, 1), np.take_along_axis(sims, order, 1).astype(np.float32)
        index.set_ef(max(self.ef_search, kk))
        try:
            labels, dists = index.knn_query(q, k=kk, num_threads=threads, filter=self._filter(live))
        except RuntimeError:
            # hnswlib could not fill kk results (graph cut off by deletions): answer exactly.
            return self._store.search(q, kk, live)
        return labels.astype(np.int64), (1.0 - dists).astype(np.float32)

    def _filter(self, live: np.ndarray | None) -> Callable[[int], Any] | None:
        """hnswlib's per-candidate filter for an allowed set (None: everything)."""
        if live is None:
            return None
        mask = self._store._map.mask(live)
        if mask is not None:
            return memoryview(mask.data).__getitem__  # 1 for allowed ids; called per candidate
        return frozenset(live.tolist()).__contains__

    # --- persistence (a cache: the database stays the truth) --------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to directory ``path`` (created): the graph, ids and vectors."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        if self._index is None:  # nothing added yet: an empty graph of the full vectors
            self._make_graph(np.zeros((0, self.dim), np.float32))
        self._index.save_index(str(d / "hnsw.bin"))
        n = len(self._store)
        np.save(d / "ids.npy", self._store._ids[:n])
        np.save(d / "vectors.npy", self._store._vecs[:n])
        if self._projection is not None:
            np.save(d / "projection_mean.npy", self._projection[0])
            np.save(d / "projection_basis.npy", self._projection[1])
        meta = {"dim": self.dim, "M": self.M, "ef_construction": self.ef_construction, "ef_search": self._ef_search,
                "project_dim": self._projection[1].shape[1] if self._projection is not None else None,
                "rerank": self.rerank}
        (d / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int | None = None) -> HnswIndex:
        import hnswlib

        d = Path(path)
        meta = json.loads((d / "meta.json").read_text())
        projection = None
        if meta.get("project_dim"):
            projection = (np.load(d / "projection_mean.npy"), np.load(d / "projection_basis.npy"))
            raw = hnswlib.Index(space="l2", dim=int(meta["project_dim"]))
        else:
            raw = hnswlib.Index(space="ip", dim=int(meta["dim"]))
        raw.load_index(str(d / "hnsw.bin"))
        self = cls(
            int(meta["dim"]),
            M=int(meta["M"]),
            ef_construction=int(meta["ef_construction"]),
            ef_search=meta["ef_search"],
            threads=threads,
            project_dim=meta.get("project_dim"),
            rerank=int(meta.get("rerank", HNSW_RERANK)),
            _index=raw,
            _projection=projection,
        )
        live = np.load(d / "ids.npy")
        self._store = ExactIndex(self.dim, len(live))
        self._store.add(live, np.load(d / "vectors.npy"))
        held = np.asarray(raw.get_ids_list(), np.int64)
        self._tomb = set(held[self._store._map.get(held) < 0].tolist())
        return self


def make_index(dim: int, expected_size: int) -> VectorIndex:
    """An :class:`ExactIndex` for galleries expected below :func:`exact_max_size` templates
    (100,000 up to 128-D, 25,000 at 512-D), else an :class:`HnswIndex` sized for ``expected_size``.

    The choice is made once, when the gallery builds its index from the database; a gallery
    that grows past the threshold switches at its next rebuild (e.g. when it is reopened).
    """
    if expected_size < exact_max_size(dim):
        return ExactIndex(dim, capacity=expected_size)
    params = hnsw_params(expected_size)
    logger.debug("index for %d templates: HNSW %s", expected_size, params)
    return HnswIndex(dim, capacity=int(expected_size * 1.1) + 1024, M=params["M"], ef_construction=params["ef_construction"])
