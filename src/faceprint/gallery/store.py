"""Gallery storage: the database is the source of truth.

:class:`GalleryStore` is the small interface the :class:`~faceprint.gallery.Gallery` talks
to; :class:`SQLiteStore` is the embedded default (one file per gallery, WAL mode). A
PostgreSQL + pgvector store can implement the same interface without touching callers.

Every change to the set of templates is also written to a ``changes`` log *in the same
transaction*, so an in-memory vector index (in this process or another) can catch up
exactly: it is never ahead of or behind the database, even after a crash.

Deleting is real: ``secure_delete`` overwrites freed pages with zeros, and a forget
checkpoints and truncates the write-ahead log, so no copy of a forgotten vector or
thumbnail is left in the database files.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faceprint.errors import (
    DuplicateImageError,
    GalleryError,
    InvalidArgumentError,
    ModelMismatchError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateNotFoundError,
)
from faceprint.gallery.types import Subject, Template
from faceprint.types import Box

SCHEMA_VERSION = 1
#: Keep at most this many rows of the change log; a reader further behind rebuilds.
CHANGE_LOG_KEEP = 200_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
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
);
CREATE INDEX IF NOT EXISTS faces_by_subject ON faces(subject_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('add', 'del')),
    face_id INTEGER NOT NULL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class NewFace:
    """A template to store."""

    embedding: np.ndarray
    image_sha256: str
    box: Box | None = None
    detection_score: float | None = None
    quality: float | None = None
    source: str | None = None
    thumbnail: bytes | None = None


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    op: str  # "add" (new or moved template: re-read it) | "del"
    face_id: int


class GalleryStore(Protocol):
    """What a gallery needs from a database."""

    def model(self) -> tuple[str, int] | None: ...
    def pin_model(self, model_id: str, dim: int) -> None: ...
    def add_face(self, subject: str, metadata: dict[str, Any] | None, face: NewFace) -> tuple[int, int]: ...
    def has_image(self, image_sha256: str) -> bool: ...
    def subject(self, name: str) -> Subject: ...
    def subjects(self, limit: int | None = None, offset: int = 0) -> list[Subject]: ...
    def templates(self, subject_id: int) -> list[Template]: ...
    def rename(self, old: str, new: str) -> Subject: ...
    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject: ...
    def merge(self, source: str, target: str) -> Subject: ...
    def delete_face(self, face_id: int) -> None: ...
    def forget(self, name: str) -> list[int]: ...
    def thumbnail(self, face_id: int) -> bytes | None: ...
    def all_templates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]: ...
    def changes_since(self, seq: int) -> tuple[list[Change], int] | None: ...
    def read_templates(self, face_ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def face_ids_where(self, metadata: dict[str, Any]) -> np.ndarray: ...
    def subject_names(self, subject_ids: list[int]) -> dict[int, str]: ...
    def close(self) -> None: ...


class SQLiteStore:
    """The embedded default store: one SQLite file, WAL, safe with several processes."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise GalleryError(f"no gallery at {self.path}", details={"path": str(self.path)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a process crash never loses a committed transaction; a power
            # cut may lose the last few, never corrupt.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA secure_delete = ON")
            with self._write():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                version = self._meta("schema_version")
                if version is None:
                    self._set_meta("schema_version", str(SCHEMA_VERSION))
                    self._set_meta("created_at", _now())
                elif int(version) != SCHEMA_VERSION:
                    raise GalleryError(f"{self.path} has schema version {version}; this faceprint reads {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path} is not a faceprint gallery: {exc}", details={"path": str(self.path)}) from None

    # --- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front, so two
        processes never deadlock upgrading a read lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """Changes whenever another connection commits (cheap: no disk read)."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- model pin --------------------------------------------------------------------------
    def model(self) -> tuple[str, int] | None:
        with self._lock:
            model_id, dim = self._meta("model_id"), self._meta("embedding_dim")
        return None if model_id is None else (model_id, int(dim or 0))

    def pin_model(self, model_id: str, dim: int) -> None:
        with self._write():
            current = self._meta("model_id")
            if current is None:
                self._set_meta("model_id", model_id)
                self._set_meta("embedding_dim", str(dim))
            elif current != model_id:
                raise ModelMismatchError(
                    f"gallery {self.path} holds templates of {current}, not {model_id}",
                    details={"gallery_model": current, "model": model_id},
                )

    # --- subjects and faces -----------------------------------------------------------------
    def add_face(self, subject: str, metadata: dict[str, Any] | None, face: NewFace) -> tuple[int, int]:
        """Store one template under ``subject`` (created if new). Returns (subject id, face id)."""
        name = _check_name(subject)
        now = _now()
        blob = np.ascontiguousarray(face.embedding, dtype="<f4").tobytes()
        with self._write() as db:
            # Checked inside the write transaction: two processes enrolling the same image at
            # once get one template and one duplicate_image, never a constraint failure.
            if db.execute("SELECT 1 FROM faces WHERE image_sha256 = ?", (face.image_sha256,)).fetchone():
                raise DuplicateImageError("this exact image is already enrolled",
                                          details={"image_sha256": face.image_sha256})
            row = db.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO subjects(name, metadata, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (name, json.dumps(metadata or {}), now, now),
                )
                subject_id = int(cur.lastrowid)
            else:
                subject_id = int(row[0])
                if metadata:
                    db.execute("UPDATE subjects SET metadata = json_patch(metadata, ?), updated_at = ? WHERE id = ?",
                               (json.dumps(metadata), now, subject_id))
                else:
                    db.execute("UPDATE subjects SET updated_at = ? WHERE id = ?", (now, subject_id))
            cur = db.execute(
                "INSERT INTO faces(subject_id, embedding, quality, box, detection_score, image_sha256, source, thumbnail, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    subject_id,
                    blob,
                    face.quality,
                    json.dumps(face.box.to_list()) if face.box else None,
                    face.detection_score,
                    face.image_sha256,
                    face.source,
                    face.thumbnail,
                    now,
                ),
            )
            face_id = int(cur.lastrowid)
            db.execute("INSERT INTO changes(op, face_id) VALUES ('add', ?)", (face_id,))
        return subject_id, face_id

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None) -> Subject:
        """A new subject with no faces yet; :class:`SubjectExistsError` if the name is taken."""
        name = _check_name(name)
        now = _now()
        with self._write() as db:
            if db.execute("SELECT 1 FROM subjects WHERE name = ?", (name,)).fetchone():
                raise SubjectExistsError(f"a subject named {name!r} already exists", details={"subject": name})
            db.execute(
                "INSERT INTO subjects(name, metadata, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (name, json.dumps(metadata or {}), now, now),
            )
        return self.subject(name)

    def has_image(self, image_sha256: str) -> bool:
        return bool(self._query("SELECT 1 FROM faces WHERE image_sha256 = ?", (image_sha256,)))

    _SUBJECT_SQL = (
        "SELECT s.id, s.name, s.metadata, s.created_at, s.updated_at, COUNT(f.id)"
        " FROM subjects s LEFT JOIN faces f ON f.subject_id = s.id"
    )

    def subject(self, name: str) -> Subject:
        rows = self._query(self._SUBJECT_SQL + " WHERE s.name = ? GROUP BY s.id", (name,))
        if not rows:
            raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
        return _subject(rows[0])

    def subject_by_id(self, subject_id: int) -> Subject:
        rows = self._query(self._SUBJECT_SQL + " WHERE s.id = ? GROUP BY s.id", (subject_id,))
        if not rows:
            raise SubjectNotFoundError(f"no subject with id {subject_id}", details={"subject_id": subject_id})
        return _subject(rows[0])

    def subjects(self, limit: int | None = None, offset: int = 0) -> list[Subject]:
        sql = self._SUBJECT_SQL + " GROUP BY s.id ORDER BY s.name"
        params: tuple = ()
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = (int(limit), int(offset))
        return [_subject(r) for r in self._query(sql, params)]

    def count(self) -> tuple[int, int, int]:
        (subjects,) = self._query("SELECT COUNT(*) FROM subjects")[0]
        faces, thumbs = self._query("SELECT COUNT(*), COUNT(thumbnail) FROM faces")[0]
        return int(subjects), int(faces), int(thumbs)

    def templates(self, subject_id: int) -> list[Template]:
        rows = self._query(
            "SELECT id, subject_id, box, detection_score, quality, image_sha256, source, thumbnail IS NOT NULL, created_at"
            " FROM faces WHERE subject_id = ? ORDER BY id",
            (subject_id,),
        )
        return [
            Template(r[0], r[1], Box(*json.loads(r[2])) if r[2] else None, r[3], r[4], r[5], r[6], bool(r[7]), r[8])
            for r in rows
        ]

    def template(self, face_id: int) -> Template:
        rows = self._query(
            "SELECT id, subject_id, box, detection_score, quality, image_sha256, source, thumbnail IS NOT NULL, created_at"
            " FROM faces WHERE id = ?",
            (face_id,),
        )
        if not rows:
            raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
        r = rows[0]
        return Template(r[0], r[1], Box(*json.loads(r[2])) if r[2] else None, r[3], r[4], r[5], r[6], bool(r[7]), r[8])

    def rename(self, old: str, new: str) -> Subject:
        new = _check_name(new)
        with self._write() as db:
            row = db.execute("SELECT id FROM subjects WHERE name = ?", (old,)).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"no subject named {old!r} in the gallery", details={"subject": old})
            if old != new and db.execute("SELECT 1 FROM subjects WHERE name = ?", (new,)).fetchone():
                raise SubjectExistsError(f"a subject named {new!r} already exists; merge instead", details={"subject": new})
            db.execute("UPDATE subjects SET name = ?, updated_at = ? WHERE id = ?", (new, _now(), row[0]))
        return self.subject(new)

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject:
        with self._write() as db:
            cur = db.execute("UPDATE subjects SET metadata = ?, updated_at = ? WHERE name = ?", (json.dumps(metadata), _now(), name))
            if cur.rowcount == 0:
                raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
        return self.subject(name)

    def merge(self, source: str, target: str) -> Subject:
        """Move every template of ``source`` to ``target`` and remove ``source``."""
        if source == target:
            raise InvalidArgumentError("cannot merge a subject into itself")
        with self._write() as db:
            ids = {}
            for name in (source, target):
                row = db.execute("SELECT id, metadata FROM subjects WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
                ids[name] = row
            src_id, tgt_id = ids[source][0], ids[target][0]
            moved = [r[0] for r in db.execute("SELECT id FROM faces WHERE subject_id = ?", (src_id,))]
            db.execute("UPDATE faces SET subject_id = ? WHERE subject_id = ?", (tgt_id, src_id))
            # The target keeps its own metadata where both define a key.
            db.execute("UPDATE subjects SET metadata = json_patch(?, metadata), updated_at = ? WHERE id = ?",
                       (ids[source][1], _now(), tgt_id))
            db.execute("DELETE FROM subjects WHERE id = ?", (src_id,))
            db.executemany("INSERT INTO changes(op, face_id) VALUES ('add', ?)", [(i,) for i in moved])
        return self.subject(target)

    def delete_face(self, face_id: int) -> None:
        with self._write() as db:
            cur = db.execute("DELETE FROM faces WHERE id = ?", (face_id,))
            if cur.rowcount == 0:
                raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
            db.execute("INSERT INTO changes(op, face_id) VALUES ('del', ?)", (face_id,))
        self._purge()

    def forget(self, name: str) -> list[int]:
        """Delete a subject, its templates and thumbnails in one transaction; returns the
        template ids removed (for the index)."""
        with self._write() as db:
            row = db.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
            face_ids = [r[0] for r in db.execute("SELECT id FROM faces WHERE subject_id = ?", (row[0],))]
            db.execute("DELETE FROM faces WHERE subject_id = ?", (row[0],))
            db.execute("DELETE FROM subjects WHERE id = ?", (row[0],))
            db.executemany("INSERT INTO changes(op, face_id) VALUES ('del', ?)", [(i,) for i in face_ids])
        self._purge()
        return face_ids

    def _purge(self) -> None:
        """Leave no copy of deleted rows in the files: secure_delete zeroed the freed pages
        in the database; the old page images in the WAL go with a truncating checkpoint."""
        with self._lock:
            for _ in range(50):
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return
                time.sleep(0.05)  # another process is reading; its snapshot ends soon

    def thumbnail(self, face_id: int) -> bytes | None:
        rows = self._query("SELECT thumbnail FROM faces WHERE id = ?", (face_id,))
        if not rows:
            raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
        return rows[0][0]

    # --- what the index is built from -------------------------------------------------------
    def all_templates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(face ids, subject ids, embeddings, change-log position) as of one snapshot."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
                rows = self._db.execute("SELECT id, subject_id, embedding FROM faces ORDER BY id").fetchall()
            finally:
                self._db.execute("COMMIT")
        ids, subjects, vectors = _unpack(rows, self._dim())
        return ids, subjects, vectors, int(seq)

    def changes_since(self, seq: int) -> tuple[list[Change], int] | None:
        """The changes after ``seq`` and the new position, or ``None`` when the log no longer
        reaches back that far (the caller rebuilds)."""
        with self._lock:
            floor = int(self._meta("changes_floor") or 0)
            if seq < floor:
                return None
            rows = self._db.execute("SELECT seq, op, face_id FROM changes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        changes = [Change(int(s), op, int(f)) for s, op, f in rows]
        return changes, (changes[-1].seq if changes else seq)

    def read_templates(self, face_ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows: list[tuple] = []
        for start in range(0, len(face_ids), 900):  # SQLite's bound-parameter limit
            chunk = face_ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows += self._query(f"SELECT id, subject_id, embedding FROM faces WHERE id IN ({marks})", tuple(chunk))
        return _unpack(rows, self._dim())

    def trim_changes(self, keep: int = CHANGE_LOG_KEEP) -> None:
        with self._write() as db:
            top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            floor = max(0, int(top) - keep)
            if floor > int(self._meta("changes_floor") or 0):
                db.execute("DELETE FROM changes WHERE seq <= ?", (floor,))
                self._set_meta("changes_floor", str(floor))

    def face_ids_where(self, metadata: dict[str, Any]) -> np.ndarray:
        """Template ids of subjects whose metadata has every given key = value."""
        clauses, params = [], []
        for key, value in metadata.items():
            if not isinstance(key, str) or not key.replace("_", "").replace("-", "").isalnum():
                raise InvalidArgumentError(f"metadata filter keys are plain names; got {key!r}")
            clauses.append(f"json_extract(s.metadata, '$.\"{key}\"') = ?")
            params.append(json.dumps(value) if isinstance(value, (dict, list)) else value)
        sql = "SELECT f.id FROM faces f JOIN subjects s ON s.id = f.subject_id"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return np.array([r[0] for r in self._query(sql, tuple(params))], dtype=np.int64)

    def subject_names(self, subject_ids: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        ids = sorted(set(subject_ids))
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            out.update(dict(self._query(f"SELECT id, name FROM subjects WHERE id IN ({marks})", tuple(chunk))))
        return out

    def export_rows(self) -> Iterator[tuple]:
        """(subject name, metadata json, face row...) for every template, in id order."""
        yield from self._query(
            "SELECT s.name, s.metadata, f.embedding, f.quality, f.box, f.detection_score, f.image_sha256, f.source,"
            " f.thumbnail, f.created_at FROM faces f JOIN subjects s ON s.id = f.subject_id ORDER BY f.id"
        )

    def _dim(self) -> int:
        pinned = self.model()
        return pinned[1] if pinned else 0


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError("a subject name must be a non-empty string")
    name = name.strip()
    if len(name) > 256:
        raise InvalidArgumentError("a subject name is at most 256 characters")
    return name


def _subject(r: tuple) -> Subject:
    return Subject(id=int(r[0]), name=r[1], metadata=json.loads(r[2]), created_at=r[3], updated_at=r[4], face_count=int(r[5]))


def _unpack(rows: list[tuple], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    subjects = np.array([r[1] for r in rows], dtype=np.int64)
    if rows:
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1).astype(np.float32)
    else:
        vectors = np.zeros((0, dim), dtype=np.float32)
    return ids, subjects, vectors
