"""The SQLite schema of a gallery file, as versioned migrations (the one place tables are made).

The version is the ``schema_version`` row of the ``meta`` table. Opening a file applies every
migration above its version, each in its own transaction, logged. A file written by a newer
faceprint (a version above :data:`SCHEMA_VERSION`) is refused rather than misread.

Files made before this module existed are version 1 (or 0 for a file that only held API
keys): the tables that :mod:`faceprint.clustering.people` and :mod:`faceprint.service.auth`
created on their own then are created here with ``IF NOT EXISTS``, so such a file keeps its
rows and is simply stamped with the new version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # the schema version once applied
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "subjects, templates and the change log",
        (
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE IF NOT EXISTS subjects (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                metadata TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS faces (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
                embedding BLOB NOT NULL,
                quality REAL,
                box TEXT,
                detection_score REAL,
                image_sha256 TEXT NOT NULL UNIQUE,
                source TEXT,
                thumbnail BLOB,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS faces_by_subject ON faces(subject_id)",
            """CREATE TABLE IF NOT EXISTS changes (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                op TEXT NOT NULL CHECK (op IN ('add', 'del')),
                face_id INTEGER NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "people clustered from photos (made by faceprint.clustering.people before version 2)",
        (
            """CREATE TABLE IF NOT EXISTS people (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                subject_id INTEGER UNIQUE REFERENCES subjects(id) ON DELETE CASCADE,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS photo_faces (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                path TEXT NOT NULL,
                image_sha256 TEXT NOT NULL,
                face_index INTEGER NOT NULL,
                box TEXT NOT NULL,
                quality REAL NOT NULL,
                usable INTEGER NOT NULL,
                embedding BLOB NOT NULL,
                thumbnail BLOB,
                person_id INTEGER REFERENCES people(id) ON DELETE CASCADE,
                assigned_by TEXT,
                score REAL,
                created_at TEXT NOT NULL,
                UNIQUE (image_sha256, face_index)
            )""",
            "CREATE INDEX IF NOT EXISTS photo_faces_by_person ON photo_faces(person_id)",
            """CREATE TABLE IF NOT EXISTS cluster_photos (
                image_sha256 TEXT PRIMARY KEY,
                path TEXT NOT NULL,
                faces INTEGER NOT NULL,
                added_at TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS not_person (
                face_id INTEGER NOT NULL REFERENCES photo_faces(id) ON DELETE CASCADE,
                person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                PRIMARY KEY (face_id, person_id)
            )""",
        ),
    ),
    Migration(
        3,
        "API keys of the HTTP service (made by faceprint.service.auth before version 3)",
        (
            """CREATE TABLE IF NOT EXISTS api_keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL DEFAULT '',
                key_sha256 TEXT NOT NULL,
                scopes TEXT NOT NULL,
                created_at TEXT NOT NULL,
                last_used_at TEXT,
                revoked_at TEXT
            )""",
        ),
    ),
    Migration(
        4,
        "encryption at rest: the data key id of each subject and clustered photo face",
        (
            # NULL in a gallery that is not encrypted (meta 'encryption' unset): rows are plain.
            "ALTER TABLE subjects ADD COLUMN key_id TEXT",
            "ALTER TABLE photo_faces ADD COLUMN key_id TEXT",
        ),
    ),
)

#: The schema version this faceprint writes.
SCHEMA_VERSION = MIGRATIONS[-1].version

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration"]
