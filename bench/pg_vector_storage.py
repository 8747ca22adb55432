"""Exact search in PostgreSQL with the vectors stored in TOAST (pgvector's default, EXTERNAL) or
inline in the row (STORAGE PLAIN): what ``faceprint.gallery.storage.pg_schema.INLINE_VECTOR_MAX_DIM``
and ``faceprint.gallery.storage.postgres.EXACT_SEARCH_BELOW`` were chosen from.

A throwaway PostgreSQL 16 + pgvector 0.6 (pgserver) in a temporary folder; random unit vectors;
the statement PostgresStore's exact search runs (``ORDER BY (embedding <#> q) + 0 LIMIT 10``,
which the HNSW index cannot serve), over the first N rows of a table of ``--rows``.

    python bench/pg_vector_storage.py [--dims 128,512] [--rows 20000] [--sizes 1000,5000,20000] > bench/results_pg_vector_storage.json
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from machine import machine, save_run


def vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def median_ms(conn: Any, sql: str, params: tuple[Any, ...], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", default="128,512")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="bench/results_pg_vector_storage.json")
    args = parser.parse_args()

    import pgserver
    import psycopg

    # (vectors go as text: no adapter needed)

    data = Path(tempfile.mkdtemp(prefix="fp-bench-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    rng = np.random.default_rng(14)
    results: list[dict[str, Any]] = []
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            for dim in [int(d) for d in args.dims.split(",")]:
                vectors = rng.normal(size=(args.rows, dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for storage in ("EXTERNAL", "PLAIN"):
                    conn.execute("DROP TABLE IF EXISTS t")
                    conn.execute(f"CREATE TABLE t (id bigint, embedding vector({dim}), thumbnail bytea)")
                    conn.execute(f"ALTER TABLE t ALTER COLUMN embedding SET STORAGE {storage}")
                    with conn.cursor().copy("COPY t (id, embedding) FROM STDIN") as copy:
                        for i in range(args.rows):
                            copy.write_row((i, vector_text(vectors[i])))
                    conn.execute("VACUUM ANALYZE t")
                    size = int(conn.execute("SELECT pg_total_relation_size('t')").fetchone()[0])
                    for n in [int(s) for s in args.sizes.split(",")]:
                        ms = median_ms(conn, "SELECT id FROM t WHERE id < %s ORDER BY (embedding <#> %s::vector) + 0"
                                       " LIMIT 10", (n, vector_text(vectors[7])), args.repeats)
                        results.append({"dim": dim, "storage": storage, "rows_scanned": args.rows, "rows_matching": n,
                                        "exact_p50_ms": ms, "table_bytes": size})
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)
    save_run(args.out, "default", {"machine": machine(pgvector=version[0] if version else None,
                                                      psycopg=psycopg.__version__),
                                   "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
