"""Benchmark the gallery's vector index (exact vs HNSW) on synthetic face-like galleries.

    python bench/search.py [--sizes 10000,100000,1000000] [--queries 1000] > bench/results_search.json
    python bench/search.py --sizes 10000 --queries 200          # quick run (~10 s)

Prints one JSON document. Not a test.

Synthetic 128-D galleries with identity structure, shaped like dlib-resnet34 embeddings. On
lfw_dev (3803 real embeddings) the vectors share a large common component -- projection on the
mean direction 0.915 +- 0.015 -- and the rest splits into an identity part (participation ratio
~25 over 127 dims) and a per-image part (ratio ~60, ~20% spread in its size). So:

    centre_i = u + B_SPREAD * unit(z_i * spectrum(PR_B))      (u: the shared mean direction)
    sample   = unit(centre_i + s_j * e * spectrum(PR_W)),  s_j = S_NOISE * lognormal(CV)

with both spreads in the 127 dims orthogonal to u. B_SPREAD and S_NOISE were fitted so that the
genuine / impostor cosine means are 0.949 / 0.837 as on lfw_dev; PR_B=16 (below the measured 25,
which still holds some per-image noise) then also reproduces the impostor tail (FAR 1e-3 and 1e-4
thresholds). The JSON reports the synthetic statistics next to the real ones.

Each identity has 1-10 enrolled samples (uniform); queries are fresh samples of enrolled
identities. Recall@1 is against the exact index (same top-1 template id). Latency is per single
query (k=10 unless said), one thread per query; throughput is one batched call on all cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint.gallery import index as index_mod  # noqa: E402
from faceprint.gallery.index import ExactIndex, HnswIndex  # noqa: E402
from machine import machine  # noqa: E402  (bench/machine.py)

DIM = 128
B_SPREAD, S_NOISE, CV, PR_B, PR_W = 0.3648, 0.2458, 0.15, 16.0, 60.0
REAL = {  # dlib-resnet34 on lfw_dev (bench/results_calibration_dlib_resnet34.json)
    "genuine_mean": 0.9489,
    "impostor_mean": 0.8372,
    "threshold_far_1e-3": 0.9258,
    "threshold_far_1e-4": 0.9406,
    "frr_at_far_1e-3": 0.0754,
}


# --- data -----------------------------------------------------------------------------------
def _spectrum(pr: float, n: int) -> np.ndarray:
    """Per-axis std (sum of squares 1) of a power law with participation ratio ``pr``."""
    j = np.arange(1, n + 1, dtype=np.float64)
    lo, hi = 0.0, 5.0
    for _ in range(100):  # bisection on the exponent: PR falls as it grows
        g = (lo + hi) / 2
        v = j**-g
        lo, hi = (g, hi) if v.sum() ** 2 / (v**2).sum() > pr else (lo, g)
    v = j**-g
    return np.sqrt(v / v.sum()).astype(np.float32)


class Synth:
    """One synthetic population: a mean direction, a basis, identity centres on demand."""

    def __init__(self, seed: int, dim: int = DIM) -> None:
        self.rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(self.rng.standard_normal((dim, dim)))
        self.u = q[:, 0].astype(np.float32)
        self.basis = q[:, 1:].astype(np.float32)
        self.sb, self.sw = _spectrum(PR_B, dim - 1), _spectrum(PR_W, dim - 1)

    def centres(self, n: int) -> np.ndarray:
        z = self.rng.standard_normal((n, len(self.sb)), dtype=np.float32) * self.sb
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        return self.u[None, :] + (B_SPREAD * z) @ self.basis.T

    def samples(self, centres: np.ndarray, which: np.ndarray) -> np.ndarray:
        out = np.empty((len(which), centres.shape[1]), np.float32)
        for a in range(0, len(which), 200_000):
            i = which[a : a + 200_000]
            s = (S_NOISE * np.exp(self.rng.standard_normal(len(i)) * CV - CV**2 / 2)).astype(np.float32)
            e = (self.rng.standard_normal((len(i), len(self.sw)), dtype=np.float32) * self.sw) @ self.basis.T
            x = centres[i] + e * s[:, None]
            out[a : a + len(i)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def make_gallery(n: int, n_queries: int, seed: int):
    syn = Synth(seed)
    per = syn.rng.integers(1, 11, size=n // 5 + 16)
    cum = np.cumsum(per)
    n_id = int(np.searchsorted(cum, n)) + 1
    per = per[:n_id].copy()
    per[-1] -= int(cum[n_id - 1] - n)
    ident = np.repeat(np.arange(n_id), per)
    centres = syn.centres(n_id)
    x = syn.samples(centres, ident)
    qid = syn.rng.integers(0, n_id, n_queries)
    return x, ident, syn.samples(centres, qid), qid


def distribution_check(seed: int, n_id: int = 4000) -> dict:
    """Genuine / impostor cosine statistics of the synthetic model, next to the real ones."""
    syn = Synth(seed)
    c = syn.centres(n_id)
    x = syn.samples(c, np.repeat(np.arange(n_id), 2))
    a, b = x[0::2], x[1::2]
    genuine = np.einsum("ij,ij->i", a, b)
    s = a @ a.T
    impostor = np.sort(s[np.triu_indices(n_id, 1)])[::-1]

    def thr(far):
        return float(impostor[int(far * len(impostor))])

    t3 = thr(1e-3)
    return {
        "synthetic": {
            "genuine_mean": round(float(genuine.mean()), 4),
            "impostor_mean": round(float(impostor.mean()), 4),
            "genuine_std": round(float(genuine.std()), 4),
            "impostor_std": round(float(impostor.std()), 4),
            "threshold_far_1e-3": round(t3, 4),
            "threshold_far_1e-4": round(thr(1e-4), 4),
            "frr_at_far_1e-3": round(float(np.mean(genuine < t3)), 4),
            "n_genuine_pairs": int(n_id),
            "n_impostor_pairs": len(impostor),
        },
        "real_dlib_resnet34_lfw_dev": REAL,
        "model": {"B_SPREAD": B_SPREAD, "S_NOISE": S_NOISE, "CV": CV, "PR_B": PR_B, "PR_W": PR_W},
    }


# --- measuring ------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(ts: list[float]) -> dict:
    a = np.asarray(ts) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3)}


PASSES = 2


def single_queries(index, q: np.ndarray, k: int, allowed=None):
    """One query per call; timed over PASSES passes, the pass with the lower p99 is kept (the
    machine is shared: a pass can catch another process's burst)."""
    best = None
    gc.disable()
    try:
        for _ in range(PASSES):
            ts, first_sim, rows = [], [], []
            for i in range(len(q)):
                t = time.perf_counter()
                ids, sims = index.search(q[i], k, allowed)
                ts.append(time.perf_counter() - t)
                rows.append(ids[0])
                first_sim.append(sims[0, 0])
            if best is None or np.percentile(ts, 99) < np.percentile(best, 99):
                best = ts
    finally:
        gc.enable()
    return best, np.array(rows), np.array(first_sim)


def batched(index, q: np.ndarray, k: int) -> float:
    t = time.perf_counter()
    index.search(q, k)
    return round(len(q) / (time.perf_counter() - t), 1)


def bench_size(n: int, args) -> dict:
    out: dict = {"size": n}
    t = time.perf_counter()
    x, ident, q, qid = make_gallery(n, args.queries, args.seed + n)
    ids = np.arange(1, n + 1, dtype=np.int64)  # template ids as SQLite hands them out
    out["identities"] = int(ident.max() + 1)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    n_single_exact = min(len(q), max(100, int(args.queries * 50_000 / n)))  # ~40 ms each at 1M

    # exact
    gc.collect()
    m0 = rss_mb()
    t = time.perf_counter()
    exact = ExactIndex(DIM, n)
    exact.add(ids, x)
    build = time.perf_counter() - t
    truth_ids, truth_sims = exact.search(q, 10)
    ts, _, _ = single_queries(exact, q[:n_single_exact], 10)
    ts64, _, _ = single_queries(exact, q[:n_single_exact], 64)
    out["exact"] = {
        "build_s": round(build, 2),
        "index_mb": round(exact.nbytes / 2**20, 1),
        "rss_delta_mb": round(rss_mb() - m0, 1),
        **pct(ts),
        "k64": pct(ts64),
        "single_queries_timed": n_single_exact,
        "batched_qps": batched(exact, q, 10),
        "recall_at_1": 1.0,
    }
    top1 = truth_ids[:, 0]
    out["data"] = {
        "exact_top1_is_query_identity": round(float(np.mean(ident[top1 - 1] == qid)), 4),
        "exact_top1_sim_mean": round(float(truth_sims[:, 0].mean()), 4),
        "exact_top1_top2_gap_median": round(float(np.median(truth_sims[:, 0] - truth_sims[:, 1])), 5),
        "exact_top1_top2_gap_below_0.001": round(float(np.mean(truth_sims[:, 0] - truth_sims[:, 1] < 1e-3)), 4),
    }

    # HNSW
    if n >= args.hnsw_min:
        gc.collect()
        m0 = rss_mb()
        t = time.perf_counter()
        hnsw = HnswIndex(DIM, n, **index_mod.hnsw_params(n))
        for a in range(0, n, 250_000):
            hnsw.add(ids[a : a + 250_000], x[a : a + 250_000])
        build = time.perf_counter() - t
        hn = {
            "M": hnsw.M,
            "ef_construction": hnsw.ef_construction,
            "graph_dim": hnsw.graph_dim,
            "rerank": hnsw.rerank if hnsw.graph_dim != hnsw.dim else None,
            "ef_search_default": hnsw.ef_search,
            "build_s": round(build, 1),
            "index_mb": round(hnsw.nbytes / 2**20, 1),
            "rss_delta_mb": round(rss_mb() - m0, 1),
        }
        sweep = []
        default_ef = hnsw.ef_search
        for ef in sorted(set(args.ef) | {default_ef}):
            hnsw.ef_search = ef
            ts, rows, sim1 = single_queries(hnsw, q, 10)
            sweep.append(
                {
                    "ef": ef,
                    **pct(ts),
                    "recall_at_1": round(float(np.mean(rows[:, 0] == top1)), 4),
                    # What identification ranks: the best template's subject, not the template.
                    "subject_recall_at_1": round(float(np.mean(ident[rows[:, 0] - 1] == ident[top1 - 1])), 4),
                    "recall_at_10": round(float(np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows, truth_ids)])), 4),
                    "top1_within_0.001_of_exact": round(float(np.mean(sim1 >= truth_sims[:, 0] - 1e-3)), 4),
                    "top1_is_query_identity": round(float(np.mean(ident[rows[:, 0] - 1] == qid)), 4),
                }
            )
        hnsw.ef_search = default_ef
        hn["ef_sweep"] = sweep
        d = next(s for s in sweep if s["ef"] == default_ef)
        hn.update({k: d[k] for k in ("p50_ms", "p99_ms", "recall_at_1")})
        ts64, _, _ = single_queries(hnsw, q, 64)
        hn["k64"] = pct(ts64)
        hn["batched_qps"] = batched(hnsw, q, 10)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            hnsw.save(Path(tmp) / "ix")
            hn["save_s"] = round(time.perf_counter() - t, 2)
            del hnsw
            gc.collect()
            t = time.perf_counter()
            hnsw = HnswIndex.load(Path(tmp) / "ix")
            hn["load_s"] = round(time.perf_counter() - t, 2)
        out["hnsw"] = hn

    # filtered search: allowed = a random 1% / 5% / 50% of the ids
    rng = np.random.default_rng(args.seed)
    n_f = min(len(q), 200)
    filt = {}
    for frac in (0.01, 0.05, 0.5):
        allowed = np.sort(rng.choice(ids, max(1, int(frac * n)), replace=False))
        want, _ = exact.search(q[:n_f], 10, allowed)
        row: dict = {"allowed": len(allowed)}
        n_fe = min(n_f, max(50, n_single_exact))
        ts, rows, _ = single_queries(exact, q[:n_fe], 10, allowed)
        row["exact"] = {**pct(ts), "only_allowed": bool(np.isin(rows, allowed).all()), "full_k": bool((rows >= 0).all())}
        if "hnsw" in out:
            path = "exact subset" if len(allowed) <= max(index_mod.FILTER_EXACT_MAX, index_mod.FILTER_EXACT_FRACTION * n) else "hnsw filter"
            ts, rows, _ = single_queries(hnsw, q[:n_f], 10, allowed)
            row["hnsw"] = {
                "path": path,
                **pct(ts),
                "only_allowed": bool(np.isin(rows, allowed).all()),
                "full_k": bool((rows >= 0).all()),
                "recall_at_1": round(float(np.mean(rows[:, 0] == want[:, 0])), 4),
            }
        filt[f"{frac:.0%}"] = row
    out["filtered"] = filt
    return out


def threshold_sweep(sizes: list[int], args) -> list[dict]:
    """Exact single-query latency by size (random unit vectors: the cost does not depend on the data)."""
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in sizes:
        x = rng.standard_normal((n, DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        ix = ExactIndex(DIM, n)
        ix.add(np.arange(n), x)
        q = x[:300] + 0.01
        ts, _, _ = single_queries(ix, q, 10)
        ts64, _, _ = single_queries(ix, q, 64)
        rows.append({"size": n, **pct(ts), "k64": pct(ts64)})
        del ix, x
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated gallery sizes")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="64,128,256,384,512", help="HNSW ef_search values to sweep")
    ap.add_argument("--hnsw-min", type=int, default=10_000, help="skip HNSW below this size")
    ap.add_argument("--threshold-sizes", default="25000,50000,100000,150000,200000",
                    help="sizes for the exact-latency sweep behind EXACT_MAX_SIZE ('' to skip)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.ef = [int(e) for e in args.ef.split(",") if e]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    import hnswlib

    t0 = time.perf_counter()
    doc: dict = {
        "benchmark": "gallery vector index: exact (numpy/BLAS) vs HNSW (hnswlib)",
        "machine": machine(hnswlib=getattr(hnswlib, "__version__", "0.8.0"),
                           openblas_coretype=os.environ.get("OPENBLAS_CORETYPE")),
        "settings": {
            "dim": DIM,
            "queries": args.queries,
            "k": 10,
            "latency": f"single-query wall time, best of {PASSES} passes by p99 (shared 2-core machine)",
            "EXACT_MAX_SIZE": index_mod.EXACT_MAX_SIZE,
            "FILTER_EXACT_MAX": index_mod.FILTER_EXACT_MAX,
            "FILTER_EXACT_FRACTION": index_mod.FILTER_EXACT_FRACTION,
        },
        "distribution": distribution_check(args.seed),
    }
    th = [int(s) for s in args.threshold_sizes.split(",") if s]
    if th:
        doc["exact_latency_by_size"] = threshold_sweep(th, args)
    doc["results"] = []
    for n in sizes:
        doc["results"].append(bench_size(n, args))
        gc.collect()
        print(f"size {n} done at {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    doc["goal_1M"] = goal(doc["results"])
    doc["machine"]["loadavg_end"] = os.getloadavg()[0]
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(doc, indent=2))
    return 0


def goal(results: list[dict]) -> dict:
    """The target: 1M templates, p99 <= 2 ms per query at recall@1 >= 0.99, on this machine."""
    r = next((r for r in results if r["size"] == 1_000_000 and "hnsw" in r), None)
    if r is None:
        return {"measured": False}
    ok = [s for s in r["hnsw"]["ef_sweep"] if s["recall_at_1"] >= 0.99]
    fast = [s for s in r["hnsw"]["ef_sweep"] if s["p99_ms"] <= 2.0]
    return {
        "measured": True,
        "met": any(s["p99_ms"] <= 2.0 for s in ok),
        "best_recall_within_2ms_p99": max((s["recall_at_1"] for s in fast), default=None),
        "best_subject_recall_within_2ms_p99": max((s["subject_recall_at_1"] for s in fast), default=None),
        "lowest_p99_at_recall_0.99": min((s["p99_ms"] for s in ok), default=None),
        "exact_p99_ms": r["exact"]["p99_ms"],
    }


if __name__ == "__main__":
    sys.exit(main())
