"""The PostgreSQL schema of a gallery, as versioned migrations (the one place its tables are made).

Everything lives in its own schema, :data:`SCHEMA` (``faceprint``), so a gallery can share a
database with other applications' tables. The version is the ``schema_version`` row of its
``meta`` table, as in SQLite (:mod:`faceprint.gallery.storage.migrations`). Migrations run in
one transaction each, under a transaction-level advisory lock (:data:`MIGRATION_LOCK`), so
several processes opening a fresh database at once never race: one migrates, the others wait
and then find the work done.

Differences from the SQLite schema, each for a reason:

* ids are ``bigint GENERATED ALWAYS AS IDENTITY``: never reused, like AUTOINCREMENT;
* a subject's ``metadata`` is ``jsonb``, filtered in SQL (``faces_by_metadata`` is a GIN index
  the filters' containment pre-conditions use);
* a template's vector is a pgvector ``vector`` column, NULL in an encrypted gallery (its sealed
  bytes are in ``sealed_embedding``); the column takes its dimension, and the HNSW index, when
  the gallery is pinned to a model (:func:`hnsw_statements`);
* timestamps stay ISO-8601 text, the format every store returns.
"""

from __future__ import annotations

from faceprint.gallery.storage.migrations import Migration

#: The PostgreSQL schema (namespace) a gallery's tables are in.
SCHEMA = "faceprint"
#: Advisory lock keys (``pg_advisory_xact_lock``; scoped to the database): migrations, and the
#: one writer at a time every write transaction takes (SQLite's ``BEGIN IMMEDIATE``).
MIGRATION_LOCK = 0x66616365_01  # "face" 1
WRITE_LOCK = 0x66616365_02

#: HNSW build parameters (pgvector's defaults; bench/ measures the alternatives).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: The HNSW index over the template vectors (inner product: templates are unit vectors).
HNSW_INDEX = "faces_embedding_hnsw"

#: Tables in the order they are listed (sizes, VACUUM after a forget).
TABLES = ("meta", "subjects", "faces", "changes", "people", "photo_faces", "cluster_photos", "not_person", "api_keys")

PG_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "subjects, templates, change log, people from photos, API keys",
        (
            "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)",
            """CREATE TABLE IF NOT EXISTS subjects (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL UNIQUE,
                metadata jsonb NOT NULL DEFAULT '{}',
                created_at text NOT NULL,
                updated_at text NOT NULL,
                key_id text
            )""",
            "CREATE INDEX IF NOT EXISTS subjects_by_metadata ON subjects USING gin (metadata jsonb_path_ops)",
            """CREATE TABLE IF NOT EXISTS faces (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                subject_id bigint NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
                embedding vector,
                sealed_embedding bytea,
                quality double precision,
                box text,
                detection_score double precision,
                image_sha256 text NOT NULL UNIQUE,
                source text,
                thumbnail bytea,
                created_at text NOT NULL,
                CHECK ((embedding IS NULL) <> (sealed_embedding IS NULL))
            )""",
            "CREATE INDEX IF NOT EXISTS faces_by_subject ON faces(subject_id)",
            """CREATE TABLE IF NOT EXISTS changes (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                op text NOT NULL CHECK (op IN ('add', 'del')),
                face_id bigint NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS people (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                subject_id bigint UNIQUE REFERENCES subjects(id) ON DELETE CASCADE,
                created_at text NOT NULL,
                updated_at text NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS photo_faces (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                path text NOT NULL,
                image_sha256 text NOT NULL,
                face_index integer NOT NULL,
                box text NOT NULL,
                quality double precision NOT NULL,
                usable boolean NOT NULL,
                embedding bytea NOT NULL,
                thumbnail bytea,
                person_id bigint REFERENCES people(id) ON DELETE CASCADE,
                assigned_by text,
                score double precision,
                created_at text NOT NULL,
                key_id text,
                UNIQUE (image_sha256, face_index)
            )""",
            "CREATE INDEX IF NOT EXISTS photo_faces_by_person ON photo_faces(person_id)",
            """CREATE TABLE IF NOT EXISTS cluster_photos (
                image_sha256 text PRIMARY KEY,
                path text NOT NULL,
                faces integer NOT NULL,
                added_at text NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS not_person (
                face_id bigint NOT NULL REFERENCES photo_faces(id) ON DELETE CASCADE,
                person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                PRIMARY KEY (face_id, person_id)
            )""",
            "CREATE INDEX IF NOT EXISTS not_person_by_person ON not_person(person_id)",
            """CREATE TABLE IF NOT EXISTS api_keys (
                key_id text PRIMARY KEY,
                name text NOT NULL DEFAULT '',
                key_sha256 text NOT NULL,
                scopes text NOT NULL,
                created_at text NOT NULL,
                last_used_at text,
                revoked_at text
            )""",
        ),
    ),
)

#: The PostgreSQL schema version this faceprint writes.
PG_SCHEMA_VERSION = PG_MIGRATIONS[-1].version


#: Vectors up to this many dimensions are kept inside the row (``STORAGE PLAIN``), not in TOAST:
#: a 512-D vector (2,056 bytes) is just over TOAST's threshold, and an exact scan of 20,000 of
#: them took 213 ms out of line against 48 ms inline (bench/pg_vector_storage.py). Wider ones
#: would not fit an 8 kB page with the rest of the row.
INLINE_VECTOR_MAX_DIM = 1700


def hnsw_statements(dim: int) -> tuple[str, ...]:
    """What pinning a gallery to a ``dim``-dimensional model does: the vector column takes the
    dimension (an HNSW index needs it), is stored inline when it fits, and the index is made
    (a no-op once it exists)."""
    inline = ("ALTER TABLE faces ALTER COLUMN embedding SET STORAGE PLAIN",) if dim <= INLINE_VECTOR_MAX_DIM else ()
    return (
        f"ALTER TABLE faces ALTER COLUMN embedding TYPE vector({int(dim)})",
        *inline,
        f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON faces USING hnsw (embedding vector_ip_ops)"
        f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})",
    )


__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_INDEX",
    "HNSW_M",
    "INLINE_VECTOR_MAX_DIM",
    "MIGRATION_LOCK",
    "PG_MIGRATIONS",
    "PG_SCHEMA_VERSION",
    "SCHEMA",
    "TABLES",
    "WRITE_LOCK",
]
