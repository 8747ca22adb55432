#!/usr/bin/env python
"""pgvector in PostgreSQL against faceprint's in-process index, on synthetic 512-D galleries.

For each size N (default 100,000; ``--sizes 100000,1000000``) one seeded synthetic gallery is
loaded into a PostgreSQL 16 + pgvector started here with ``pgserver`` (a temporary directory,
Unix socket only), with the layout of ``faceprint.gallery.storage.postgres``:
``subjects(id, metadata jsonb)`` and ``faces(id bigserial, subject_id, embedding vector(512))``.
Measured, one size after the other:

* load (binary COPY) and index build times, sizes on disk (heap, TOAST, index);
* single-query latency p50/p99 (one query at a time, k=10, after a warm-up, client side over
  the Unix socket: BEGIN, SET LOCAL, SELECT, COMMIT) and recall@1 / recall@10 against exact
  numpy search, for HNSW (``vector_ip_ops``, m=16, ef_construction=64) at several
  ``hnsw.ef_search`` and IVFFlat (``vector_ip_ops``, lists = sqrt(N)) at several
  ``ivfflat.probes``;
* the same queries through ``faceprint.gallery.index.make_index(512, expected_size=N)``;
* filtered search at 50% / 5% / 0.5% of the subjects (a JSONB key on ``subjects``, the filter
  in the same SQL query): recall@10 against exact search within the filter, rows returned (an
  index scan filters its candidates afterwards, so a selective filter returns fewer than k),
  the genuine match found for probes whose identity is inside the filter, and the latency of
  an exact filtered search in SQL (index scans off) -- the numbers behind the store's
  exact-search threshold. The index rows run with ``enable_sort = off`` (the planner, having no
  statistics on a JSONB expression, would otherwise pick either plan whatever the filter); the
  planner's own plan is recorded.

Data (``--data``): N/5 identities, 5 templates each, 512-D unit vectors. ``fr-feature`` (default):
bench/search.py's shape fitted to fr-feature's lfw_dev embeddings (~150 effective directions;
same-identity cosine 0.65 +- 0.11, different identities 0.008 +- 0.11). ``isotropic``: random
unit centres c, templates ``normalize(c + s * g / sqrt(512))`` with g standard normal and s
uniform in [0.5, 0.8] per identity (same-identity cosine ~ 1/(1+s^2): 0.6-0.8; different
identities ~ N(0, 1/512)), a harder case for any graph than real embeddings. Queries: fresh
samples of enrolled identities (the identity is known); exact answers from float32 numpy
matrix products. The script records the measured similarity distribution.

``--store`` runs the same searches through ``PostgresStore.search_faces`` (its schema, its
exact-search rule and ef_search) instead of raw SQL; ``--storage plain`` keeps the vectors
inline (pgvector's default puts a 512-D vector in TOAST).

Progress goes to stderr; the results are written after every phase (so a run stopped early
keeps its partial numbers) under the label ``n<N>`` of ``--out`` and printed at the end.

    python bench/pgvector_search.py --sizes 100000 [--queries 1000] [--ivf-lists sqrt,n/1000] [--out bench/results_pgvector.json]
    python bench/pgvector_search.py --sizes 100000 --store --out bench/results_pgvector_store.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402
from search import SHAPES, Synth  # noqa: E402  (bench/search.py: the fr-feature-shaped generator)

DIM = 512
PER_IDENTITY = 5
K = 10
# Filter keys on subjects.metadata and the share of subjects holding "a" under each.
FILTERS = {"site50": 0.5, "site5": 0.05, "site05": 0.005}
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- data ----------------------------------------------------------------------------------
def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


GENERATORS = {
    "fr-feature": "bench/search.py's fr-feature shape (SHAPES[512]): centre = u + 8.91 * unit(z * spectrum(PR 58.9)) "
                  "in 148 directions orthogonal to a shared direction u, template = unit(centre + s * e * "
                  "spectrum(PR 105.1)), s = 6.56 * lognormal(cv 0.30), fitted to fr-feature's lfw_dev "
                  "embeddings (genuine mean 0.655, impostor 0.008); 5 templates per identity",
    "isotropic": "random unit centres in all 512 directions; template = normalize(centre + s * g / sqrt(512)), "
                 "g ~ N(0, I), s ~ U(0.5, 0.8) per identity; 5 templates per identity",
}


class Data:
    """The synthetic gallery: templates (row i has face id i+1), their subjects (subject id =
    identity + 1), subject metadata flags, and the probes (fresh samples of enrolled identities).

    ``fr-feature`` (default): bench/search.py's shape fitted to fr-feature's embeddings on
    lfw_dev, which span ~150 of their 512 coordinates; ``isotropic``: random centres and noise
    in all 512 directions, a harder case for any graph than real embeddings."""

    def __init__(self, n: int, n_queries: int, seed: int, generator: str = "fr-feature") -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.n_ids = n // PER_IDENTITY
        self.identity = np.repeat(np.arange(self.n_ids), PER_IDENTITY)
        self.synth = Synth(seed, SHAPES[DIM]) if generator == "fr-feature" else None
        if self.synth is not None:
            self.centres = self.synth.centres(self.n_ids)
        else:
            self.centres = normalize(rng.standard_normal((self.n_ids, DIM), dtype=np.float32))
            self.sigma = rng.uniform(0.5, 0.8, self.n_ids).astype(np.float32)
        self.x = np.empty((self.n_ids * PER_IDENTITY, DIM), np.float32)
        for lo in range(0, len(self.x), 100_000):
            hi = min(lo + 100_000, len(self.x))
            self.x[lo:hi] = self.sample(self.identity[lo:hi])
        self.flags = {key: rng.random(self.n_ids) < p for key, p in FILTERS.items()}
        self.q_identity = rng.integers(0, self.n_ids, n_queries)
        self.q = self.sample(self.q_identity)

    def sample(self, identity: np.ndarray) -> np.ndarray:
        if self.synth is not None:
            return self.synth.samples(self.centres, identity)
        noise = self.rng.standard_normal((len(identity), DIM), dtype=np.float32) / np.float32(math.sqrt(DIM))
        return normalize(self.centres[identity] + self.sigma[identity, None] * noise)

    def metadata(self, i: int) -> str:
        return json.dumps({key: "a" if f[i] else "b" for key, f in self.flags.items()})

    def similarity_stats(self) -> dict[str, Any]:
        """Cosine of same-identity template pairs and of probes to other identities."""
        rng = np.random.default_rng(1)
        ids = rng.choice(self.n_ids, min(2000, self.n_ids), replace=False)
        a, b = self.x[ids * PER_IDENTITY], self.x[ids * PER_IDENTITY + 1]
        same = np.einsum("ij,ij->i", a, b)
        other = (self.x[rng.choice(len(self.x), 2000)] @ self.q[:200].T).ravel()
        q_same = np.einsum("ij,ij->i", self.q, self.x[self.q_identity * PER_IDENTITY])

        def pct(v: np.ndarray) -> dict[str, float]:
            return {f"p{p}": round(float(np.percentile(v, p)), 4) for p in (1, 5, 50, 95, 99)} | {
                "mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4)}

        return {"same_identity_templates": pct(same), "probe_to_own_template": pct(q_same),
                "different_identities": pct(other)}


def exact_topk(x: np.ndarray, q: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Row numbers (into x) of each query's k most similar templates, best first, optionally
    among ``rows`` only; float32 products in chunks."""
    sub = x if rows is None else x[rows]
    out = np.empty((len(q), min(k, len(sub))), np.int64)
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.empty((len(q), 0), np.int64)
    step = 200_000
    for lo in range(0, len(sub), step):
        s = q @ sub[lo:lo + step].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
        best_i = np.concatenate([best_i, part + lo], 1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    out[:] = best_i
    return out if rows is None else rows[out]


def recall(found: list[np.ndarray], truth: np.ndarray, k: int) -> float:
    """Mean share of each query's exact top-k (face ids) found in its answer's first k."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) / min(k, len(t)) for f, t in zip(found, truth)]
    return round(float(np.mean(hits)), 4)


def summary(lat_s: list[float]) -> dict[str, float]:
    ms = np.asarray(lat_s) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


# --- PostgreSQL ----------------------------------------------------------------------------
def start_postgres(root: Path, settings: dict[str, str]) -> Any:
    """A fresh server in root/pgdata with ``settings`` applied (restarted once so that
    shared_buffers takes effect)."""
    import pgserver

    pgdata = root / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    server.psql("".join(f"ALTER SYSTEM SET {k} = '{v}';\n" for k, v in settings.items()))
    server.cleanup()
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def copy_faces_binary(x: np.ndarray, subject_ids: np.ndarray, first_id: int, created_at: str | None = None) -> Iterator[bytes]:
    """The faces rows (id, subject_id, embedding[, image_sha256, created_at]) in COPY's binary
    format, built with numpy: per row a field count, then each field's length and big-endian
    value; pgvector's binary vector is int16 dim, int16 unused, float4 x dim. With
    ``created_at`` (PostgresStore's table), each row also gets a unique 64-hex image hash."""
    fields = [("nf", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("sid", ">i8"),
              ("l3", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (DIM,))]
    stamp = created_at.encode() if created_at else b""
    if created_at:
        fields += [("l4", ">i4"), ("sha", "S64"), ("l5", ">i4"), ("created", f"S{len(stamp)}")]
    row = np.dtype(fields)
    yield b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    for lo in range(0, len(x), 20_000):
        hi = min(lo + 20_000, len(x))
        buf = np.zeros(hi - lo, row)
        buf["nf"], buf["l1"], buf["l2"], buf["l3"] = 5 if created_at else 3, 8, 8, 4 + 4 * DIM
        buf["id"] = np.arange(lo, hi) + first_id
        buf["sid"] = subject_ids[lo:hi]
        buf["dim"] = DIM
        buf["v"] = x[lo:hi]
        if created_at:
            buf["l4"], buf["l5"], buf["created"] = 64, len(stamp), stamp
            buf["sha"] = [f"{i:064x}".encode() for i in range(lo + first_id, hi + first_id)]
        yield buf.tobytes()
    yield (-1).to_bytes(2, "big", signed=True)


def plan_summary(cur: Any, sql: str, params: dict[str, Any]) -> str:
    """The plan's node types (and index names), outermost first: which way the query ran."""
    cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = cur.fetchone()[0][0]["Plan"]
    nodes: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        name = node["Node Type"] + (f"({node['Index Name']})" if "Index Name" in node else "")
        nodes.append(">" * depth + name)
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(plan, 0)
    return " ".join(nodes)


class Pg:
    def __init__(self, uri: str) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        self.conn = psycopg.connect(uri, autocommit=True)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self.conn)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def one(self, statement: str, params: Any = None) -> Any:
        return self.sql(statement, params)[0][0]

    def searcher(self, settings: dict[str, str], sql: str) -> Callable[[np.ndarray, int], list[tuple[Any, ...]]]:
        """A function running ``sql`` for one query in its own transaction with ``settings``
        applied by SET LOCAL, as a store would, as a prepared statement.

        A prepared statement keeps the plan made under the planner settings of its first runs
        (psycopg prepares a query text after 5 runs; PostgreSQL then may reuse a generic plan):
        a later ``SET LOCAL enable_indexscan = off`` does not change it. So each set of
        planner settings gets its own query text (a comment naming them)."""
        conn = self.conn
        sets = [f"SET LOCAL {k} = {v}" for k, v in settings.items()]
        planner = sorted(f"{k}={v}" for k, v in settings.items() if k.startswith("enable_"))
        if planner:
            sql = f"{sql} /* {' '.join(planner)} */"

        def run(q: np.ndarray, k: int) -> list[tuple[Any, ...]]:
            with conn.transaction(), conn.cursor() as cur:
                for s in sets:
                    cur.execute(s)
                cur.execute(sql, {"q": q, "k": k}, prepare=True)
                return cur.fetchall()

        return run

    def explain(self, settings: dict[str, str], sql: str, q: np.ndarray) -> str:
        with self.conn.transaction(), self.conn.cursor() as cur:
            for k, v in settings.items():
                cur.execute(f"SET LOCAL {k} = {v}")
            return plan_summary(cur, sql, {"q": q, "k": K})


ANN_SQL = "SELECT id FROM faces ORDER BY embedding <#> %(q)s LIMIT %(k)s"


def filtered_sql(key: str) -> str:
    return ("SELECT f.id FROM faces f JOIN subjects s ON s.id = f.subject_id "
            f"WHERE s.metadata->'{key}' = '\"a\"'::jsonb ORDER BY f.embedding <#> %(q)s LIMIT %(k)s")


def run_queries(search: Callable[[np.ndarray, int], Any], queries: np.ndarray, warmup: int,
                budget_s: float | None = None) -> tuple[list[np.ndarray], list[float]]:
    """Each query once, one at a time (after ``warmup`` untimed ones): face ids found and
    seconds per query; stops early once ``budget_s`` is spent (at least 10 queries)."""
    for q in queries[:warmup]:
        search(q, K)
    found, lat = [], []
    start = time.perf_counter()
    for i, q in enumerate(queries):
        t = time.perf_counter()
        rows = search(q, K)
        lat.append(time.perf_counter() - t)
        found.append(np.asarray([r[0] for r in rows], np.int64) if not isinstance(rows, np.ndarray) else rows)
        if budget_s is not None and i >= 9 and time.perf_counter() - start > budget_s:
            break
    return found, lat


# --- one size ------------------------------------------------------------------------------
class Run:
    def __init__(self, args: argparse.Namespace, n: int) -> None:
        self.args, self.n = args, n
        self.result: dict[str, Any] = {"n_templates": n}

    def save(self) -> None:
        """Keep what is measured so far under this size's label (other labels stay)."""
        out = self.args.out
        if out == "-":
            return
        path = Path(out)
        runs = json.loads(path.read_text()) if path.exists() else {}
        runs[f"n{self.n}"] = self.result
        path.write_text(json.dumps(runs, indent=2) + "\n")

    def measure(self, name: str, search: Callable[[np.ndarray, int], Any], truth: np.ndarray,
                queries: np.ndarray, extra: dict[str, Any] | None = None,
                budget_s: float | None = None) -> dict[str, Any]:
        found, lat = run_queries(search, queries, self.args.warmup, budget_s)
        t = truth[: len(found)]
        rows = np.asarray([len(f) for f in found])
        r = {"queries": len(found), **summary(lat), "recall_at_1": recall(found, t, 1),
             "recall_at_10": recall(found, t, K), "rows_returned_mean": round(float(rows.mean()), 2),
             "short_answers": int(np.count_nonzero(rows < min(K, t.shape[1]))), **(extra or {})}
        if self.genuine is not None:
            g = self.genuine[: len(found)]
            top1 = np.asarray([self.data.identity[f[0] - 1] if len(f) else -1 for f in found])
            mask = g >= 0
            if mask.any():
                r["genuine_rank1"] = round(float(np.mean(top1[mask] == g[mask])), 4)
        log(f"  {name}: {r}")
        return r

    def go(self) -> None:
        args, n = self.args, self.n
        log(f"N={n}: generating data")
        t = time.perf_counter()
        data = self.data = Data(n, args.queries, args.seed + n, args.data)
        self.genuine: np.ndarray | None = data.q_identity
        self.result["data"] = {
            "generator": args.data, "description": GENERATORS[args.data] + "; probes: fresh samples of enrolled identities",
            "identities": data.n_ids, "templates": len(data.x), "queries": len(data.q), "seed": args.seed + n,
            "similarity": data.similarity_stats(),
            "filters": {key: {"subjects_share": FILTERS[key],
                              "templates_matching": int(np.count_nonzero(data.flags[key][data.identity]))}
                        for key in FILTERS},
            "generate_s": round(time.perf_counter() - t, 1),
        }
        t = time.perf_counter()
        truth = exact_topk(data.x, data.q, K) + 1  # face ids are rows + 1
        self.result["data"]["exact_truth_s"] = round(time.perf_counter() - t, 1)
        # What exact search itself gets right: an impostor can outscore a weak genuine template.
        self.result["data"]["exact_genuine_rank1"] = round(float(np.mean(data.identity[truth[:, 0] - 1] == data.q_identity)), 4)
        # Filtered probes: half from identities inside the filter, half from outside it.
        fq: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for key, flag in data.flags.items():
            inside = np.flatnonzero(flag)
            ids_in = data.rng.choice(inside, args.filter_queries // 2)
            ids_out = data.q_identity[~flag[data.q_identity]][: args.filter_queries - len(ids_in)]
            q = np.concatenate([data.sample(ids_in), data.q[~flag[data.q_identity]][: len(ids_out)]])
            genuine = np.concatenate([ids_in, np.full(len(ids_out), -1)])
            rows = np.flatnonzero(flag[data.identity])
            fq[key] = (q, genuine, exact_topk(data.x, q, K, rows) + 1)
        self.save()

        with tempfile.TemporaryDirectory(prefix="pgvector-bench-", dir=args.tmp) as tmp:
            server = start_postgres(Path(tmp), {
                "shared_buffers": args.shared_buffers, "maintenance_work_mem": args.maintenance_work_mem,
                "max_parallel_maintenance_workers": str(args.parallel_workers), "work_mem": "64MB",
                "max_wal_size": "8GB", "checkpoint_timeout": "30min", "fsync": "off" if args.no_fsync else "on",
                "synchronous_commit": "off", "jit": "off"})
            try:
                if args.store:
                    self.through_store(server.get_uri(), truth, fq)
                    return
                self.postgres_hnsw(server.get_uri(), truth, fq)
                if not args.skip_in_process:
                    self.in_process(truth, fq)
                if not args.skip_ivfflat:
                    self.postgres_ivfflat(truth, fq)
            finally:
                server.cleanup()

    # PostgreSQL phases
    def postgres_hnsw(self, uri: str, truth: np.ndarray, fq: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        args, data = self.args, self.data
        pg = self.pg = Pg(uri)
        self.result["postgres"] = {"version": pg.one("SHOW server_version"),
                                   "pgvector": pg.one("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
                                   "settings": {s: pg.one(f"SHOW {s}") for s in (
                                       "shared_buffers", "maintenance_work_mem", "max_parallel_maintenance_workers",
                                       "work_mem", "fsync")}}
        res = self.result["postgres"]
        pg.sql("CREATE TABLE subjects (id bigint PRIMARY KEY, metadata jsonb NOT NULL DEFAULT '{}')")
        pg.sql("CREATE TABLE faces (id bigserial PRIMARY KEY, subject_id bigint NOT NULL REFERENCES subjects(id) "
               f"ON DELETE CASCADE, embedding vector({DIM}) NOT NULL)")
        pg.sql("CREATE INDEX faces_subject_id ON faces (subject_id)")
        if args.storage != "external":  # pgvector's default: a 512-D vector (2 KB) goes to TOAST
            pg.sql(f"ALTER TABLE faces ALTER COLUMN embedding SET STORAGE {args.storage.upper()}")
        res["embedding_storage"] = args.storage
        log("loading")
        t = time.perf_counter()
        with pg.conn.cursor() as cur:
            with cur.copy("COPY subjects (id, metadata) FROM STDIN") as copy:
                for i in range(data.n_ids):
                    copy.write_row((i + 1, data.metadata(i)))
            with cur.copy("COPY faces (id, subject_id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                for block in copy_faces_binary(data.x, data.identity + 1, 1):
                    copy.write(block)
        pg.sql("SELECT setval('faces_id_seq', %s)", (len(data.x),))
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        pg.sql("VACUUM ANALYZE subjects")
        pg.sql("VACUUM ANALYZE faces")
        res["load"] = {"copy_s": round(load_s, 1), "vacuum_analyze_s": round(time.perf_counter() - t, 1),
                       **self.sizes()}
        log(f"loaded: {res['load']}")
        # Sanity: the database holds the same vectors (a face's exact neighbour is itself).
        got = pg.sql(ANN_SQL.replace("%(k)s", "1"), {"q": data.x[12345 % len(data.x)]})
        res["load"]["roundtrip_ok"] = bool(got and got[0][0] == 12345 % len(data.x) + 1)
        self.save()

        # HNSW
        log("building HNSW")
        t = time.perf_counter()
        pg.sql(f"CREATE INDEX faces_embedding_hnsw ON faces USING hnsw (embedding vector_ip_ops) "
               f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
        hnsw: dict[str, Any] = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                                "build_s": round(time.perf_counter() - t, 1),
                                "index_bytes": pg.one("SELECT pg_relation_size('faces_embedding_hnsw')")}
        hnsw["index_bytes_per_template"] = round(hnsw["index_bytes"] / len(data.x), 1)
        res["hnsw"] = hnsw
        log(f"HNSW built: {hnsw}")
        self.save()
        hnsw["plan"] = pg.explain({"hnsw.ef_search": "40"}, ANN_SQL, data.q[0])
        hnsw["search"] = {}
        for ef in args.ef:
            hnsw["search"][f"ef_search={ef}"] = self.measure(
                f"hnsw ef_search={ef}", pg.searcher({"hnsw.ef_search": str(ef)}, ANN_SQL), truth, data.q)
            self.save()
        res["filtered"] = self.filtered_pg({"hnsw": [{"hnsw.ef_search": str(ef)} for ef in args.filter_ef]}, fq, exact=True)
        self.save()
        pg.sql("DROP INDEX faces_embedding_hnsw")

    def postgres_ivfflat(self, truth: np.ndarray, fq: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        pg, data, res = self.pg, self.data, self.result["postgres"]
        for lists in self.ivf_lists():
            log(f"building IVFFlat lists={lists}")
            t = time.perf_counter()
            pg.sql(f"CREATE INDEX faces_embedding_ivf ON faces USING ivfflat (embedding vector_ip_ops) WITH (lists = {lists})")
            ivf: dict[str, Any] = {"lists": lists, "build_s": round(time.perf_counter() - t, 1),
                                   "index_bytes": pg.one("SELECT pg_relation_size('faces_embedding_ivf')")}
            ivf["index_bytes_per_template"] = round(ivf["index_bytes"] / len(data.x), 1)
            res[f"ivfflat_lists={lists}"] = ivf
            log(f"IVFFlat built: {ivf}")
            self.save()
            ivf["plan"] = pg.explain({"ivfflat.probes": "1"}, ANN_SQL, data.q[0])
            ivf["search"] = {}
            probes = sorted({1, 10, round(math.sqrt(lists))})
            for p in probes:
                ivf["search"][f"probes={p}"] = self.measure(
                    f"ivfflat lists={lists} probes={p}", pg.searcher({"ivfflat.probes": str(p)}, ANN_SQL), truth, data.q)
                self.save()
            ivf["filtered"] = self.filtered_pg({"ivfflat": [{"ivfflat.probes": str(p)} for p in probes]}, fq, exact=False)
            self.save()
            pg.sql("DROP INDEX faces_embedding_ivf")

    def ivf_lists(self) -> list[int]:
        n = len(self.data.x)
        out = []
        for rule in self.args.ivf_lists.split(","):
            out.append(max(1, round(math.sqrt(n))) if rule == "sqrt" else max(1, n // 1000) if rule == "n/1000" else int(rule))
        return sorted(set(out))

    def sizes(self) -> dict[str, Any]:
        pg, n = self.pg, len(self.data.x)
        heap = pg.one("SELECT pg_relation_size('faces')")
        toast = pg.one("SELECT pg_total_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'faces'")
        return {"faces_heap_bytes": heap, "faces_toast_bytes": toast,
                "faces_table_bytes_per_template": round((heap + toast) / n, 1),
                "faces_btree_indexes_bytes": pg.one("SELECT pg_indexes_size('faces')"),
                "subjects_total_bytes": pg.one("SELECT pg_total_relation_size('subjects')"),
                "database_bytes": pg.one("SELECT pg_database_size(current_database())")}

    def filtered_pg(self, ann: dict[str, list[dict[str, str]]], fq: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                    exact: bool) -> dict[str, Any]:
        """Each filter through the ANN index at each setting (planner's choice, plan recorded),
        and (``exact``) with index scans off: the exact filtered search."""
        out: dict[str, Any] = {}
        for key, (q, genuine, truth) in fq.items():
            sql = filtered_sql(key)
            entry: dict[str, Any] = {"templates_matching": int(np.count_nonzero(self.data.flags[key][self.data.identity])),
                                     "share": FILTERS[key]}
            self.genuine = genuine
            # Left to itself the planner estimates any `->` equality at 0.5% (no statistics on
            # the expression) and scans exactly; `enable_sort = off` makes it walk the ANN index
            # in order and filter the candidates afterwards (post-filtering).
            first = next(iter(ann.values()))[0]
            entry["planner_plan"] = self.pg.explain(first, sql, q[0])
            for kind, settings_list in ann.items():
                for settings in ({**s, "enable_sort": "off"} for s in settings_list):
                    label = kind + " " + ",".join(f"{k.split('.')[-1]}={v}" for k, v in settings.items() if "." in k)
                    entry[label] = self.measure(f"{key} {label}", self.pg.searcher(settings, sql), truth, q,
                                                {"plan": self.pg.explain(settings, sql, q[0])})
                    self.save()
            if exact:
                off = {"enable_indexscan": "off"}
                entry["exact"] = self.measure(f"{key} exact", self.pg.searcher(off, sql), truth, q,
                                              {"plan": self.pg.explain(off, sql, q[0])}, budget_s=self.args.exact_budget_s)
            out[key] = entry
            self.save()
        self.genuine = self.data.q_identity
        return out

    # the same searches through faceprint's PostgresStore
    def through_store(self, uri: str, truth: np.ndarray, fq: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """The gallery's own search (``PostgresStore.search_faces``, its schema, its rule for
        exact search and its ef_search) on the same data, bulk-loaded into its tables (COPY;
        enrolling 100k faces one transaction each would take long and measure something else),
        its HNSW index built afterwards by its own statements."""
        from faceprint.gallery.storage.pg_schema import HNSW_INDEX, SCHEMA, hnsw_statements
        from faceprint.gallery.storage.postgres import EXACT_SEARCH_BELOW, PostgresStore, ef_search_for

        data = self.data
        store = PostgresStore(uri)
        try:
            store.pin_model("synthetic-512", DIM)
            pg = self.pg = Pg(uri)
            pg.sql(f"SET search_path = {SCHEMA}, public")
            pg.sql(f"DROP INDEX {HNSW_INDEX}")  # built again after the load, as a bulk build
            res: dict[str, Any] = {"exact_search_below": EXACT_SEARCH_BELOW, "ef_search_k10": ef_search_for(K)}
            self.result["store"] = res
            log("store: loading")
            now = "2026-01-01T00:00:00+00:00"
            t = time.perf_counter()
            with pg.conn.cursor() as cur:
                with cur.copy("COPY subjects (id, name, metadata, created_at, updated_at) FROM STDIN") as copy:
                    for i in range(data.n_ids):
                        copy.write_row((i + 1, f"s{i + 1}", data.metadata(i), now, now))
                with cur.copy("COPY faces (id, subject_id, embedding, image_sha256, created_at) FROM STDIN "
                              "WITH (FORMAT BINARY)") as copy:
                    for block in copy_faces_binary(data.x, data.identity + 1, 1, now):
                        copy.write(block)
            for table, last in (("subjects", data.n_ids), ("faces", len(data.x))):
                pg.sql(f"SELECT setval(pg_get_serial_sequence('{SCHEMA}.{table}', 'id'), %s)", (last,))
            res["copy_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            for statement in hnsw_statements(DIM):
                pg.sql(statement)
            res["index_build_s"] = round(time.perf_counter() - t, 1)
            pg.sql("VACUUM ANALYZE subjects")
            pg.sql("VACUUM ANALYZE faces")
            res["storage"] = pg.one("SELECT attstorage FROM pg_attribute WHERE attrelid = 'faces'::regclass "
                                    "AND attname = 'embedding'")
            log(f"store loaded: {res}")
            self.save()

            def search(where: dict[str, Any] | None) -> Callable[[np.ndarray, int], np.ndarray]:
                def run(q: np.ndarray, k: int) -> np.ndarray:
                    found = store.search_faces(q[None], k, where).face_ids[0]
                    return found[found >= 0]
                return run

            self.genuine = data.q_identity
            res["search"] = self.measure("store", search(None), truth, data.q)
            self.save()
            res["filtered"] = {}
            for key, (q, genuine, ftruth) in fq.items():
                self.genuine = genuine
                res["filtered"][key] = self.measure(f"store {key}", search({key: "a"}), ftruth, q)
                self.save()
            self.genuine = data.q_identity
        finally:
            store.close()

    # the in-process index
    def in_process(self, truth: np.ndarray, fq: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        from faceprint.gallery.index import make_index

        data = self.data
        log("in-process index")
        ids = np.arange(1, len(data.x) + 1, dtype=np.int64)
        t = time.perf_counter()
        index = make_index(DIM, expected_size=len(data.x))
        index.add(ids, data.x)
        r: dict[str, Any] = {"index": repr(index), "build_s": round(time.perf_counter() - t, 1),
                             "nbytes": int(getattr(index, "nbytes", 0))}
        r["bytes_per_template"] = round(r["nbytes"] / len(data.x), 1)
        self.result["in_process"] = r
        log(f"in-process built: {r}")
        self.save()

        def search(q: np.ndarray, k: int) -> np.ndarray:
            found, _ = index.search(q[None], k)
            return found[0][found[0] >= 0]

        self.genuine = data.q_identity
        r["search"] = self.measure("in-process", search, truth, data.q)
        self.save()
        r["filtered"] = {}
        for key, (q, genuine, ftruth) in fq.items():
            allowed = ids[data.flags[key][data.identity]]
            self.genuine = genuine

            def fsearch(q1: np.ndarray, k: int, allowed: np.ndarray = allowed) -> np.ndarray:
                found, _ = index.search(q1[None], k, allowed)
                return found[0][found[0] >= 0]

            r["filtered"][key] = self.measure(f"in-process {key}", fsearch, ftruth, q)
            self.save()
        self.genuine = data.q_identity



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--filter-queries", type=int, default=200, help="probes per filter (half from inside it)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--ef", default="40,100,200")
    ap.add_argument("--ivf-lists", default="sqrt", help="comma list: sqrt, n/1000 or numbers")
    ap.add_argument("--filter-ef", default="", help="hnsw.ef_search values for the filtered searches (default: --ef)")
    ap.add_argument("--store", action="store_true",
                    help="search through faceprint.gallery.storage.postgres.PostgresStore.search_faces instead of raw SQL")
    ap.add_argument("--skip-ivfflat", action="store_true")
    ap.add_argument("--skip-in-process", action="store_true")
    ap.add_argument("--storage", choices=("external", "main", "plain"), default="external",
                    help="faces.embedding's storage: pgvector's default (external: TOAST at 512-D) or inline")
    ap.add_argument("--exact-budget-s", type=float, default=60.0, help="seconds per filter for the exact SQL search")
    ap.add_argument("--shared-buffers", default="2GB")
    ap.add_argument("--maintenance-work-mem", default="4GB")
    ap.add_argument("--parallel-workers", type=int, default=1, help="max_parallel_maintenance_workers")
    ap.add_argument("--no-fsync", action="store_true", help="fsync=off (a throw-away benchmark database)")
    ap.add_argument("--tmp", default=None, help="where the temporary database lives")
    ap.add_argument("--data", choices=sorted(GENERATORS), default="fr-feature", help="the synthetic generator")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out", default="bench/results_pgvector.json")
    args = ap.parse_args()
    args.ef = [int(v) for v in args.ef.split(",")]
    args.filter_ef = [int(v) for v in args.filter_ef.split(",")] if args.filter_ef else args.ef
    # A plain `kill` still stops the PostgreSQL server this run started (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from importlib.metadata import version

    info = machine(psycopg=version("psycopg"), pgvector_python=version("pgvector"), pgserver=version("pgserver"),
                   hnswlib=version("hnswlib"))
    for n in (int(v) for v in args.sizes.split(",")):
        run = Run(args, n)
        run.result["machine"] = info
        run.go()
        run.result["machine"]["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
        run.save()
        print(json.dumps(run.result, indent=2))


if __name__ == "__main__":
    main()
