"""The embedded default gallery store: one SQLite file, WAL, safe with several processes.

The schema is made and upgraded by :mod:`faceprint.gallery.storage.migrations` when a file
is opened. Every change to the set of templates is also written to a ``changes`` log *in the
same transaction*, so an in-memory vector index (in this process or another) can catch up
exactly: it is never ahead of or behind the database, even after a crash.

Deleting is real: ``secure_delete`` overwrites freed pages with zeros, and every delete
checkpoints and truncates the write-ahead log once committed, so no copy of a forgotten
vector or thumbnail is left in the database files.

**Encrypted at rest** (optional; ``encrypt=True`` or ``faceprint gallery init --encrypt``):
embeddings and thumbnails of templates and clustered photo faces are sealed with AES-256-GCM
under per-subject (per-photo-face) data keys kept in a keyring file beside the gallery
(:mod:`faceprint.gallery.storage.keyring`, :mod:`faceprint.gallery.crypto`). Everything else
-- names, metadata, boxes, scores, image hashes, API key hashes -- stays in plain text.
Forgetting a subject destroys its data key *before* its rows are deleted, so copies of the
gallery file taken before (backups, its write-ahead log, exports) cannot be decrypted.

Only this module, the queries it shares with the PostgreSQL store (:mod:`faceprint.gallery.storage.sql`)
and the keyring's speak SQL to SQLite.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import (
    DuplicateImageError,
    GalleryError,
    GalleryNotFoundError,
    ModelMismatchError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from faceprint.gallery.crypto import (
    SCHEME,
    MasterKey,
    master_key_from_settings,
    photo_face_aad,
    seal,
    template_aad,
)
from faceprint.gallery.storage.base import (
    EncryptionInfo,
    FloatArray,
    IdArray,
    NewFace,
    NewPhotoFace,
    PhotoAssignment,
    TemplateVectors,
    box_to_json,
    check_filter_keys,
    check_subject_name,
    filter_value_json,
    metadata_json,
    utc_now,
    vectors_from_bytes,
)
from faceprint.gallery.storage.keyring import (
    Keyring,
    default_keyring_path,
    open_templates,
    require_master_key,
    seal_photo_face,
)
from faceprint.gallery.storage.migrations import MIGRATIONS, SCHEMA_VERSION
from faceprint.gallery.storage.sql import SqlStore
from faceprint.gallery.types import ApiKey, Subject

logger = logging.getLogger(__name__)

_CHUNK = 900  # SQLite's bound-parameter limit is 999


class SQLiteStore(SqlStore):
    """A :class:`~faceprint.gallery.storage.base.GalleryStore` in one SQLite file.

    ``master_key``: the key of an encrypted gallery (default: :func:`faceprint.settings.master_key_file`,
    read when first needed, so a store used only for API keys opens without one). ``keyring``:
    the keyring file (default ``<path>.keys``). ``encrypt=True`` makes a new gallery encrypted,
    or encrypts an existing plain one in place (needs a master key)."""

    PLACEHOLDER = "?"
    METADATA_TEXT = "s.metadata"
    SEALED_EMBEDDING = "embedding"  # (sealed in place)
    CODE_POINT_ORDER = ""  # (SQLite's BINARY collation)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        master_key: MasterKey | None = None,
        keyring: str | os.PathLike[str] | None = None,
        encrypt: bool = False,
    ) -> None:
        self.path = Path(path)
        where = {"path": str(self.path)}
        try:
            existed = self.path.exists()
        except OSError as exc:  # e.g. a folder on the way that may not be searched
            raise GalleryError(f"cannot reach a gallery at {self.path}: {exc.strerror or exc}", details=where) from None
        if not create and not existed:
            # nothing is created, not even the parent folders: a mistyped path stays a mistake
            raise GalleryNotFoundError(
                f"no gallery at {self.path} (nothing was created; open it with create=True to make a new one)",
                details=where,
            )
        if self.path.is_dir():
            raise GalleryError(f"{self.path} is a folder, not a gallery file", details=where)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"cannot create a gallery at {self.path}: {exc.strerror or exc}", details=where) from None
        self._lock = threading.RLock()
        self._depth = 0  # nesting of the open write transaction (0: none)
        self._purge_pending = False
        self._commits = 0
        self._master = master_key
        self.keyring_path = Path(keyring) if keyring is not None else default_keyring_path(self.path)
        self._keyring: Keyring | None = None
        # Run once the outermost transaction commits (dropped if it rolls back).
        self._on_commit: list[Callable[[], object]] = []
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
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if not existed:  # e.g. a folder that may not be written to
                raise GalleryError(f"cannot create a gallery at {self.path}: {exc}", details=where) from None
            raise GalleryError(f"{self.path} is not a faceprint gallery: {exc}", details=where) from None
        if encrypt:
            try:
                self._enable_encryption()
            except BaseException:
                self.close()
                raise

    # --- plumbing ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the file to :data:`SCHEMA_VERSION`, one logged migration at a time."""
        while True:
            with self._write():
                version = self._schema_version()
                if version > SCHEMA_VERSION:
                    raise GalleryError(
                        f"{self.path} has schema version {version}; this faceprint reads up to {SCHEMA_VERSION}",
                        details={"path": str(self.path), "schema_version": version},
                    )
                pending = [m for m in MIGRATIONS if m.version > version]
                if not pending:
                    return
                step = pending[0]
                for statement in step.statements:
                    self._db.execute(statement)
                if version == 0 and self._meta("created_at") is None:
                    self._set_meta("created_at", utc_now())
                self._set_meta("schema_version", str(step.version))
            logger.info("gallery %s: schema %d -> %d (%s)", self.path, version, step.version, step.description)

    def _schema_version(self) -> int:
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
            return 0
        value = self._meta("schema_version")
        return int(value) if value is not None else 0

    def schema_version(self) -> int:
        """The file's schema version (:data:`~faceprint.gallery.storage.migrations.SCHEMA_VERSION`
        once opened)."""
        with self._lock:
            return self._schema_version()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front, so two
        processes never deadlock upgrading a read lock. Nested calls are savepoints of the
        outer transaction. Purges run once the outermost transaction has committed."""
        with self._lock:
            if self._depth:
                name = f"sp{self._depth}"
                self._db.execute(f"SAVEPOINT {name}")
                self._depth += 1
                kept = len(self._on_commit)
                try:
                    yield self._db
                except BaseException:
                    del self._on_commit[kept:]  # (its actions were for rows rolled back)
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                    raise
                else:
                    self._db.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._depth = 0
                self._purge_pending = False
                self._on_commit.clear()
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")
            self._commits += 1
            pending, self._on_commit = self._on_commit, []
            for action in pending:
                action()
            if self._purge_pending:
                self._purge_pending = False
                self._purge()

    def _meta(self, key: str) -> str | None:
        return self._meta_in(self._db, key)

    def _set_meta(self, key: str, value: str) -> None:
        self._set_meta_in(self._db, key, value)

    def _after_commit(self, action: Callable[[], object]) -> None:
        self._on_commit.append(action)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            own = not self._depth  # inside a write transaction the snapshot is that transaction
            if own:
                self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                if own:
                    self._db.execute("COMMIT")

    def _execute_many(self, db: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        db.executemany(sql, rows)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _erase_after_commit(self, *tables: str) -> None:
        # secure_delete zeroes the freed pages as they are freed; the WAL goes after the commit
        self._purge_pending = True

    def _json_from_db(self, text: str) -> Any:
        return json.loads(text)

    def _vector_from_db(self, value: Any) -> FloatArray:
        return np.frombuffer(value, dtype="<f4").astype(np.float32)

    def _vectors_from_db(self, rows: Sequence[Any], dim: int) -> TemplateVectors:
        return vectors_from_bytes(rows, dim)  # (one buffer for all rows)

    def _purge(self) -> None:
        """Leave no copy of deleted rows in the files: secure_delete zeroed the freed pages
        in the database; the old page images in the WAL go with a truncating checkpoint."""
        with self._lock:
            for _ in range(50):
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return
                time.sleep(0.05)  # another process is reading; its snapshot ends soon
            logger.warning("gallery %s: the write-ahead log could not be truncated (readers busy)", self.path)

    @property
    def location(self) -> str:
        return str(self.path)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def data_version(self) -> int:
        """Changes whenever a commit happened: another connection's (SQLite's data_version)
        or this one's (counted here; data_version does not see them)."""
        with self._lock:
            theirs = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            return (theirs << 32) | (self._commits & 0xFFFFFFFF)

    def integrity_check(self) -> list[str]:
        """SQLite's integrity check: ``["ok"]`` for a sound file."""
        return [str(r[0]) for r in self._query("PRAGMA integrity_check")]

    def close(self) -> None:
        with self._lock:
            if self._keyring is not None:
                self._keyring.close()
                self._keyring = None
            self._db.close()

    # --- encryption at rest -----------------------------------------------------------------
    def _ring(self) -> Keyring | None:
        """The keyring when the gallery is encrypted (opened on first use), else ``None``;
        :class:`MasterKeyRequiredError` / :class:`MasterKeyInvalidError` when it cannot be opened."""
        with self._lock:
            keyring_id = self._meta("keyring_id")
            if keyring_id is None:
                return None
            if self._keyring is None:
                master = require_master_key(self._master or master_key_from_settings(), str(self.path))
                self._keyring = Keyring(self.keyring_path, keyring_id, master)
                self._master = master
            return self._keyring

    def encryption(self) -> EncryptionInfo | None:
        with self._lock:
            keyring_id = self._meta("keyring_id")
            if keyring_id is None:
                return None
            return EncryptionInfo(self._meta("encryption") or SCHEME, str(self.keyring_path), keyring_id,
                                  self._keyring.master_fingerprint if self._keyring is not None else None)

    def _enable_encryption(self) -> None:
        """Make the gallery encrypted: a new keyring, a data key per subject and per photo face,
        every embedding and thumbnail sealed in one transaction; then the file is rewritten
        (VACUUM, secure_delete) so that no page keeps a plaintext copy."""
        with self._lock:
            if self._meta("keyring_id") is not None:
                self._ring()  # already encrypted: check the key given
                return
            master = require_master_key(self._master or master_key_from_settings(), str(self.path))
            keyring_id = str(uuid.uuid4())
            ring = Keyring.create(self.keyring_path, keyring_id, master)
            try:
                with self._write() as db:
                    subjects = [int(r[0]) for r in db.execute("SELECT id FROM subjects ORDER BY id")]
                    faces = 0
                    for subject_id, (key_id, dek) in zip(subjects, ring.new_keys(len(subjects))):
                        db.execute("UPDATE subjects SET key_id = ? WHERE id = ?", (key_id, subject_id))
                        rows = db.execute("SELECT id, image_sha256, embedding, thumbnail FROM faces WHERE subject_id = ?",
                                          (subject_id,)).fetchall()
                        db.executemany("UPDATE faces SET embedding = ?, thumbnail = ? WHERE id = ?", [
                            (seal(dek, bytes(emb), template_aad(key_id, sha, "embedding")),
                             None if thumb is None else seal(dek, bytes(thumb), template_aad(key_id, sha, "thumbnail")), fid)
                            for fid, sha, emb, thumb in rows])
                        faces += len(rows)
                    photo = db.execute("SELECT id, image_sha256, face_index, embedding, thumbnail FROM photo_faces").fetchall()
                    db.executemany("UPDATE photo_faces SET key_id = ?, embedding = ?, thumbnail = ? WHERE id = ?", [
                        (key_id, seal(dek, bytes(emb), photo_face_aad(key_id, sha, index, "embedding")),
                         None if thumb is None else seal(dek, bytes(thumb), photo_face_aad(key_id, sha, index, "thumbnail")),
                         pid)
                        for (pid, sha, index, emb, thumb), (key_id, dek) in zip(photo, ring.new_keys(len(photo)))])
                    self._set_meta("encryption", SCHEME)
                    self._set_meta("keyring_id", keyring_id)
            except BaseException:
                ring.close()
                self.keyring_path.unlink(missing_ok=True)  # its keys never protected committed data
                raise
            self._keyring, self._master = ring, master
            if faces or photo:
                self._db.execute("VACUUM")  # no free page keeps a plaintext vector
                self._purge()
            logger.info("gallery %s: encrypted at rest (%d template(s), %d photo face(s); keyring %s, master key %s)",
                        self.path, faces, len(photo), self.keyring_path, master.fingerprint)

    def _seal_template(self, ring: Keyring | None, key_id: str | None, sha: str, field: str, data: bytes | None) -> bytes | None:
        """``data`` sealed under ``key_id`` (as is when the gallery is not encrypted)."""
        if ring is None or data is None:
            return data
        return seal(ring.data_key(str(key_id)), data, template_aad(str(key_id), sha, field))

    # --- model pin --------------------------------------------------------------------------

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

    # --- subjects and templates -------------------------------------------------------------
    def add_face(self, subject: str, metadata: dict[str, Any] | None, face: NewFace) -> tuple[int, int]:
        name = check_subject_name(subject)
        now = utc_now()
        blob = np.ascontiguousarray(face.embedding, dtype="<f4").tobytes()
        with self._write() as db:
            # Checked inside the write transaction: two processes enrolling the same image at
            # once get one template and one duplicate_image, never a constraint failure.
            if db.execute("SELECT 1 FROM faces WHERE image_sha256 = ?", (face.image_sha256,)).fetchone():
                raise DuplicateImageError("this exact image is already enrolled",
                                          details={"image_sha256": face.image_sha256})
            ring = self._ring()
            row = db.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO subjects(name, metadata, created_at, updated_at, key_id) VALUES (?, ?, ?, ?, ?)",
                    (name, metadata_json(metadata), now, now, ring.new_key()[0] if ring else None),
                )
                subject_id = int(cur.lastrowid or 0)
            else:
                subject_id = int(row[0])
                if metadata:
                    db.execute("UPDATE subjects SET metadata = json_patch(metadata, ?), updated_at = ? WHERE id = ?",
                               (metadata_json(metadata), now, subject_id))
                else:
                    db.execute("UPDATE subjects SET updated_at = ? WHERE id = ?", (now, subject_id))
            key_id = self._subject_key(db, ring, subject_id) if ring is not None else None
            cur = db.execute(
                "INSERT INTO faces(subject_id, embedding, quality, box, detection_score, image_sha256, source, thumbnail,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (subject_id, self._seal_template(ring, key_id, face.image_sha256, "embedding", blob), face.quality,
                 box_to_json(face.box), face.detection_score, face.image_sha256, face.source,
                 self._seal_template(ring, key_id, face.image_sha256, "thumbnail", face.thumbnail), now),
            )
            face_id = int(cur.lastrowid or 0)
            db.execute("INSERT INTO changes(op, face_id) VALUES ('add', ?)", (face_id,))
        return subject_id, face_id

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None) -> Subject:
        name = check_subject_name(name)
        now = utc_now()
        with self._write() as db:
            if db.execute("SELECT 1 FROM subjects WHERE name = ?", (name,)).fetchone():
                raise SubjectExistsError(f"a subject named {name!r} already exists", details={"subject": name})
            ring = self._ring()
            db.execute(
                "INSERT INTO subjects(name, metadata, created_at, updated_at, key_id) VALUES (?, ?, ?, ?, ?)",
                (name, metadata_json(metadata), now, now, ring.new_key()[0] if ring else None),
            )
            return self.subject(name)

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject:
        with self._write() as db:
            cur = db.execute("UPDATE subjects SET metadata = ?, updated_at = ? WHERE name = ?",
                             (metadata_json(metadata), utc_now(), name))
            if cur.rowcount == 0:
                raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
            return self.subject(name)

    def _merge_metadata(self, db: sqlite3.Connection, source: Subject, target: Subject) -> None:
        db.execute("UPDATE subjects SET metadata = json_patch(?, metadata), updated_at = ? WHERE id = ?",
                   (metadata_json(source.metadata), utc_now(), target.id))

    # --- what the index is built from -------------------------------------------------------
    def read_templates(self, face_ids: Sequence[int]) -> TemplateVectors:
        ids = [int(i) for i in face_ids]
        ring = self._ring()
        if ring is not None:
            return self._read_sealed_templates(ring, ids)
        rows: list[Any] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self._query(f"SELECT id, subject_id, embedding FROM faces WHERE id IN ({marks}) ORDER BY id", chunk)
        return vectors_from_bytes(rows, self._dim())

    def _read_sealed_templates(self, ring: Keyring, ids: list[int]) -> TemplateVectors:
        rows: list[Any] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self._query(self._sealed_templates_sql() + f" WHERE f.id IN ({marks}) ORDER BY f.id", chunk)
        return vectors_from_bytes(open_templates(ring, rows, self.location), self._dim())

    def face_ids_where(self, metadata: dict[str, Any]) -> IdArray:
        check_filter_keys(metadata)
        clauses, params = [], []
        structured: dict[str, str] = {}
        for key, value in metadata.items():
            # metadata that is not valid JSON (NaN written by an older version) matches nothing
            # instead of failing the whole query
            path = f"CASE WHEN json_valid(s.metadata) THEN s.metadata END, '$.\"{key}\"'"
            if isinstance(value, (dict, list)):
                # objects and arrays compare by their canonical text, below: SQLite keeps the
                # key order they were written in, which says nothing about equality
                clauses.append(f"json_type({path}) = ?")
                params.append("object" if isinstance(value, dict) else "array")
                structured[key] = filter_value_json(value)
            else:
                clauses.append(f"json_extract({path}) = ?")
                params.append(value)
        sql = "SELECT f.id, s.metadata FROM faces f JOIN subjects s ON s.id = f.subject_id"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self._query(sql, params)
        if structured:
            rows = [r for r in rows if _matches_structured(r[1], structured)]
        return np.array([r[0] for r in rows], dtype=np.int64)

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        ids = sorted({int(i) for i in subject_ids})
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            out.update({int(i): str(n) for i, n in self._query(f"SELECT id, name FROM subjects WHERE id IN ({marks})", chunk)})
        return out

    # --- people from photos -----------------------------------------------------------------

    def add_photo(self, path: str, image_sha256: str, faces: Sequence[NewPhotoFace]) -> bool:
        now = utc_now()
        with self._write() as db:
            if db.execute("SELECT 1 FROM cluster_photos WHERE image_sha256 = ?", (image_sha256,)).fetchone():
                return False
            db.execute("INSERT INTO cluster_photos(image_sha256, path, faces, added_at) VALUES (?, ?, ?, ?)",
                       (image_sha256, path, len(faces), now))
            ring = self._ring()
            # One data key per photo face: clustering moves faces between people, and forgetting
            # a person must be able to destroy exactly their faces' keys.
            keys: list[tuple[str | None, bytes | None]] = list(ring.new_keys(len(faces))) if ring else [(None, None)] * len(faces)

            db.executemany(
                "INSERT INTO photo_faces(path, image_sha256, face_index, box, quality, usable, embedding, thumbnail,"
                " created_at, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(path, image_sha256, f.face_index, box_to_json(f.box), float(f.quality), int(f.usable),
                  seal_photo_face(key, image_sha256, f.face_index, "embedding",
                                  np.ascontiguousarray(f.embedding, dtype="<f4").tobytes()),
                  seal_photo_face(key, image_sha256, f.face_index, "thumbnail", f.thumbnail), now, key[0])
                 for f, key in zip(faces, keys)],
            )
        return True

    def create_person(self) -> int:
        now = utc_now()
        with self._write() as db:
            return int(db.execute("INSERT INTO people(created_at, updated_at) VALUES (?, ?)", (now, now)).lastrowid or 0)

    def assign_photo_faces(self, assignments: Sequence[PhotoAssignment]) -> None:
        if not assignments:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE photo_faces SET person_id = ?, assigned_by = ?, score = ? WHERE id = ?",
                [(a.person_id, a.assigned_by if a.person_id is not None else None,
                  a.score if a.person_id is not None else None, a.face_id) for a in assignments],
            )
            now = utc_now()
            grown = sorted({a.person_id for a in assignments if a.person_id is not None})
            db.executemany("UPDATE people SET updated_at = ? WHERE id = ?", [(now, pid) for pid in grown])

    def mark_not_person(self, face_id: int, person_id: int) -> None:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO not_person(face_id, person_id) VALUES (?, ?)", (face_id, person_id))

    # --- API keys ---------------------------------------------------------------------------
    def add_api_key(self, record: ApiKey, key_sha256: str) -> bool:
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO api_keys(key_id, name, key_sha256, scopes, created_at, last_used_at, revoked_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.key_id, record.name, key_sha256, json.dumps(list(record.scopes)), record.created_at,
                 record.last_used_at, record.revoked_at),
            )
            return cur.rowcount == 1







# --- metadata filters -----------------------------------------------------------------------
def _matches_structured(metadata: str, wanted: dict[str, str]) -> bool:
    """Whether a subject's stored metadata holds each key's object/array (canonical text)."""
    stored = json.loads(metadata)
    return all(filter_value_json(stored.get(key)) == text for key, text in wanted.items())



__all__ = ["SCHEMA_VERSION", "SQLiteStore"]
