"""What the SQL gallery stores share: :class:`SqlStore`, the queries and transactions that read
the same in SQLite and PostgreSQL, written once with ``?`` placeholders.

Both stores keep the same tables (:mod:`~faceprint.gallery.storage.migrations`,
:mod:`~faceprint.gallery.storage.pg_schema`). A store says how its dialect differs through a few
hooks: its placeholder and the class attributes beside it (metadata as text, the column of a
sealed template, the collation that sorts text by code point), how a query runs
(:meth:`SqlStore._query`), a write transaction (:meth:`SqlStore._write`) or a read snapshot
(:meth:`SqlStore._snapshot`) opens, ``executemany``, JSON and vectors as stored, how merged
metadata is written, and what is erased once deleted rows commit. What genuinely differs
(opening and migrating, encrypting a plain gallery, enrolment, metadata filters, search, photo
and key inserts) stays in :mod:`~faceprint.gallery.storage.sqlite` and
:mod:`~faceprint.gallery.storage.postgres`.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, cast

import numpy as np

from faceprint.errors import InvalidArgumentError, KeyNotFoundError, SubjectExistsError, SubjectNotFoundError, TemplateNotFoundError
from faceprint.gallery.crypto import MasterKey, template_aad, unseal
from faceprint.gallery.storage.base import (
    CHANGE_LOG_KEEP,
    Change,
    FloatArray,
    GalleryCounts,
    PeopleStore,
    PhotoFaceTable,
    PhotoFaceTemplate,
    SealedFace,
    StoredApiKey,
    StoredFace,
    StoredPerson,
    TemplateSnapshot,
    TemplateVectors,
    api_key_from_row,
    box_from_json,
    check_subject_name,
    merge_people_by_parts,
    person_from_row,
    photo_face_from_row,
    photo_face_table_from_rows,
    photo_face_template_from_row,
    template_from_row,
    utc_now,
    vectors_from_bytes,
)
from faceprint.gallery.storage.keyring import Keyring, open_photo_faces, open_templates, reseal_templates, unseal_stored_face
from faceprint.gallery.types import ApiKey, PhotoFace, Subject, Template

_TEMPLATE_SQL = (
    "SELECT id, subject_id, box, detection_score, quality, image_sha256, source, thumbnail IS NOT NULL, created_at"
    " FROM faces"
)
_PHOTO_FACE_SQL = "SELECT id, path, box, quality, usable, person_id, assigned_by, score, image_sha256 FROM photo_faces"
_PERSON_SQL = "SELECT p.id, p.subject_id, s.name FROM people p LEFT JOIN subjects s ON s.id = p.subject_id"
_KEY_SQL = "SELECT key_id, name, scopes, created_at, last_used_at, revoked_at, key_sha256 FROM api_keys"


class SqlStore(ABC):
    """The part of a :class:`~faceprint.gallery.storage.base.GalleryStore` that is the same SQL
    in every dialect. Subclasses set the class attributes below and implement the abstract hooks."""

    #: The driver's placeholder for ``?`` in the shared SQL (``?`` for sqlite3, ``%s`` for psycopg).
    PLACEHOLDER: ClassVar[str]
    #: ``s.metadata`` (the subject's JSON metadata) as text.
    METADATA_TEXT: ClassVar[str]
    #: The column of ``faces`` that holds a sealed (encrypted) template.
    SEALED_EMBEDDING: ClassVar[str]
    #: What follows a text column in ``ORDER BY`` to sort by code point ("" where that is the default).
    CODE_POINT_ORDER: ClassVar[str]

    _lock: threading.RLock  # guards the keyring and the master key
    _master: MasterKey | None  # the master key given or read (None until needed)

    # --- dialect hooks ----------------------------------------------------------------------
    @property
    @abstractmethod
    def location(self) -> str:
        """Where the gallery is (a path, or a URL without its password)."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of ``sql`` (the driver's placeholders), inside this thread's transaction if any."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """One write transaction (nested: a savepoint of the outer one); yields the connection,
        whose ``execute(sql, params)`` returns a cursor (``fetchone``, ``fetchall``, ``rowcount``)."""

    @abstractmethod
    def _erase_after_commit(self, *tables: str) -> None:
        """Rows of ``tables`` were deleted or rewritten: once the transaction commits, erase what
        the database keeps of their old versions (as far as the dialect can)."""

    @abstractmethod
    def _ring(self) -> Keyring | None:
        """The keyring when the gallery is encrypted (opened on first use), else ``None``."""

    @abstractmethod
    def _json_from_db(self, text: str) -> Any:
        """JSON text as stored (:attr:`METADATA_TEXT`) as a value."""

    @abstractmethod
    def _vector_from_db(self, value: Any) -> FloatArray:
        """A plain template's stored ``embedding`` as a float32 vector."""

    def _vectors_from_db(self, rows: Sequence[Any], dim: int) -> TemplateVectors:
        """Rows ``(id, subject id, embedding)`` of plain templates as arrays (``dim``: the width
        when there are none)."""
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        subjects = np.array([r[1] for r in rows], dtype=np.int64)
        if rows:
            vectors = np.stack([self._vector_from_db(r[2]) for r in rows])
        else:
            vectors = np.zeros((0, dim), dtype=np.float32)
        return TemplateVectors(ids, subjects, vectors)

    @abstractmethod
    def _merge_metadata(self, db: Any, source: Subject, target: Subject) -> None:
        """Give ``target`` the keys of ``source``'s metadata it lacks (its own win) and a new
        ``updated_at`` (inside a write transaction)."""

    @abstractmethod
    def _snapshot(self) -> AbstractContextManager[Any]:
        """A read transaction whose statements all see one snapshot (inside a write transaction:
        that transaction); yields the connection, as :meth:`_write`."""

    @abstractmethod
    def _execute_many(self, db: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` (the driver's placeholders) on ``db`` once per row of parameters."""

    @abstractmethod
    def _after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once the outermost write transaction has committed (never if it rolls back)."""

    # --- plumbing ---------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        """Shared SQL (``?`` placeholders, no other ``?`` or ``%``) in the driver's placeholders."""
        return sql if self.PLACEHOLDER == "?" else sql.replace("?", self.PLACEHOLDER)

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """:meth:`_query` for shared SQL."""
        return self._query(self._sql(sql), params)

    def _meta_in(self, db: Any, key: str) -> str | None:
        """A ``meta`` value, read on connection ``db``."""
        row = db.execute(self._sql("SELECT value FROM meta WHERE key = ?"), (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta_in(self, db: Any, key: str, value: str) -> None:
        db.execute(self._sql("INSERT INTO meta(key, value) VALUES (?, ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value"), (key, value))

    def _sealed_templates_sql(self) -> str:
        """Rows ``(id, subject id, sealed embedding, image_sha256, key id)`` for
        :func:`~faceprint.gallery.storage.keyring.open_templates`; a ``WHERE``/``ORDER BY`` on ``f`` follows."""
        return (f"SELECT f.id, f.subject_id, f.{self.SEALED_EMBEDDING}, f.image_sha256, s.key_id FROM faces f"
                " JOIN subjects s ON s.id = f.subject_id")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._write():
            yield

    def _subjects_where(self, clause: str, params: Sequence[Any] = ()) -> list[Subject]:
        rows = self._select(f"SELECT s.id, s.name, {self.METADATA_TEXT}, s.created_at, s.updated_at, COUNT(f.id)"
                            " FROM subjects s LEFT JOIN faces f ON f.subject_id = s.id" + clause, params)
        return [Subject(id=int(r[0]), name=r[1], metadata=self._json_from_db(r[2]), created_at=r[3], updated_at=r[4],
                        face_count=int(r[5])) for r in rows]

    # --- encryption at rest -----------------------------------------------------------------
    def unlock(self) -> None:
        self._ring()

    def rotate_master_key(self, new_key: MasterKey) -> int:
        ring = self._ring()
        if ring is None:
            raise InvalidArgumentError(f"the gallery {self.location} is not encrypted: there is no master key to rotate")
        with self._lock:
            count = ring.rotate(new_key)
            self._master = new_key
        return count

    def export_sealed_faces(self) -> Iterator[SealedFace]:
        if self._ring() is None:
            raise InvalidArgumentError(f"the gallery {self.location} is not encrypted: it has no sealed templates")
        rows = self._select(
            f"SELECT s.name, {self.METADATA_TEXT}, s.key_id, f.{self.SEALED_EMBEDDING}, f.thumbnail, f.quality, f.box,"
            " f.detection_score, f.image_sha256, f.source, f.created_at FROM faces f JOIN subjects s"
            " ON s.id = f.subject_id ORDER BY f.id")
        for name, meta, key_id, emb, thumb, quality, box, score, sha, source, created in rows:
            yield SealedFace(name, self._json_from_db(meta), str(key_id), bytes(emb),
                             None if thumb is None else bytes(thumb), quality, box_from_json(box), score, sha, source,
                             created)

    def unseal_face(self, face: SealedFace) -> StoredFace:
        ring = self._ring()
        if ring is None:
            raise InvalidArgumentError(f"the gallery {self.location} is not encrypted: it has no keys to decrypt with")
        return unseal_stored_face(ring, face)

    def _subject_key(self, db: Any, ring: Keyring, subject_id: int) -> str:
        """A subject's data key id (made now for a subject that has none; inside a write transaction)."""
        row = db.execute(self._sql("SELECT key_id FROM subjects WHERE id = ?"), (subject_id,)).fetchone()
        if row is not None and row[0]:
            return str(row[0])
        key_id, _ = ring.new_key()
        db.execute(self._sql("UPDATE subjects SET key_id = ? WHERE id = ?"), (key_id, subject_id))
        return key_id

    def _reseal_faces(self, db: Any, ring: Keyring, source_id: int, target_id: int) -> None:
        """Re-encrypt subject ``source_id``'s templates under ``target_id``'s data key; the
        source's key is destroyed once this commits (inside a write transaction)."""
        old_key, new_key = self._subject_key(db, ring, source_id), self._subject_key(db, ring, target_id)
        rows = db.execute(self._sql(f"SELECT id, image_sha256, {self.SEALED_EMBEDDING}, thumbnail FROM faces"
                                    " WHERE subject_id = ?"), (source_id,)).fetchall()
        self._execute_many(db, self._sql(f"UPDATE faces SET {self.SEALED_EMBEDDING} = ?, thumbnail = ? WHERE id = ?"),
                           reseal_templates(ring, old_key, new_key, rows))
        self._after_commit(lambda: ring.destroy([old_key]))

    # --- model pin --------------------------------------------------------------------------
    def model(self) -> tuple[str, int] | None:
        rows = dict(self._select("SELECT key, value FROM meta WHERE key IN ('model_id', 'embedding_dim')"))
        model_id = rows.get("model_id")
        return None if model_id is None else (str(model_id), int(rows.get("embedding_dim") or 0))

    def _dim(self) -> int:
        pinned = self.model()
        return pinned[1] if pinned else 0

    # --- subjects and templates -------------------------------------------------------------
    def has_image(self, image_sha256: str) -> bool:
        return bool(self._select("SELECT 1 FROM faces WHERE image_sha256 = ?", (image_sha256,)))

    def subject(self, name: str) -> Subject:
        found = self._subjects_where(" WHERE s.name = ? GROUP BY s.id", (name,))
        if not found:
            raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
        return found[0]

    def subject_by_id(self, subject_id: int) -> Subject:
        found = self._subjects_where(" WHERE s.id = ? GROUP BY s.id", (subject_id,))
        if not found:
            raise SubjectNotFoundError(f"no subject with id {subject_id}", details={"subject_id": subject_id})
        return found[0]

    def subjects(self, limit: int | None = None, offset: int = 0) -> list[Subject]:
        clause = " GROUP BY s.id ORDER BY s.name" + self.CODE_POINT_ORDER
        params: tuple[int, ...] = ()
        if limit is not None:
            clause += " LIMIT ? OFFSET ?"
            params = (int(limit), int(offset))
        return self._subjects_where(clause, params)

    def count(self) -> GalleryCounts:
        # one statement: one snapshot
        subjects, faces, thumbs = self._select(
            "SELECT (SELECT COUNT(*) FROM subjects), COUNT(*), COUNT(thumbnail) FROM faces")[0]
        return GalleryCounts(int(subjects), int(faces), int(thumbs))

    def templates(self, subject_id: int) -> list[Template]:
        return [template_from_row(r) for r in self._select(_TEMPLATE_SQL + " WHERE subject_id = ? ORDER BY id",
                                                            (subject_id,))]

    def template(self, face_id: int) -> Template:
        rows = self._select(_TEMPLATE_SQL + " WHERE id = ?", (face_id,))
        if not rows:
            raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
        return template_from_row(rows[0])

    def rename(self, old: str, new: str) -> Subject:
        new = check_subject_name(new)
        with self._write() as db:
            row = db.execute(self._sql("SELECT id FROM subjects WHERE name = ?"), (old,)).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"no subject named {old!r} in the gallery", details={"subject": old})
            if old != new and db.execute(self._sql("SELECT 1 FROM subjects WHERE name = ?"), (new,)).fetchone():
                raise SubjectExistsError(f"a subject named {new!r} already exists; merge instead", details={"subject": new})
            db.execute(self._sql("UPDATE subjects SET name = ?, updated_at = ? WHERE id = ?"), (new, utc_now(), row[0]))
            return self.subject(new)

    def merge(self, source: str, target: str) -> Subject:
        if source == target:
            raise InvalidArgumentError("cannot merge a subject into itself")
        with self._write() as db:
            src, tgt = self.subject(source), self.subject(target)
            src_person, tgt_person = self.person_of_subject(src.id), self.person_of_subject(tgt.id)
            if src_person is not None and tgt_person is not None:
                self.merge_people(src_person.id, tgt_person.id)
            elif src_person is not None:  # the person follows its templates (else it would go with source)
                self.link_person(src_person.id, tgt.id)
            moved = [int(r[0]) for r in db.execute(self._sql("SELECT id FROM faces WHERE subject_id = ?"),
                                                   (src.id,)).fetchall()]
            ring = self._ring()
            if ring is not None:  # the faces move under the target's data key; the source's goes
                self._reseal_faces(db, ring, src.id, tgt.id)
            db.execute(self._sql("UPDATE faces SET subject_id = ? WHERE subject_id = ?"), (tgt.id, src.id))
            # The target keeps its own metadata where both define a key.
            self._merge_metadata(db, src, tgt)
            db.execute(self._sql("DELETE FROM subjects WHERE id = ?"), (src.id,))
            self._execute_many(db, self._sql("INSERT INTO changes(op, face_id) VALUES ('add', ?)"), [(i,) for i in moved])
            return self.subject(target)

    def delete_face(self, face_id: int) -> None:
        with self._write() as db:
            cur = db.execute(self._sql("DELETE FROM faces WHERE id = ?"), (face_id,))
            if cur.rowcount == 0:
                raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
            db.execute(self._sql("INSERT INTO changes(op, face_id) VALUES ('del', ?)"), (face_id,))
            self._erase_after_commit("faces")

    def forget(self, name: str) -> list[int]:
        with self._write() as db:
            row = db.execute(self._sql("SELECT id FROM subjects WHERE name = ?"), (name,)).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
            subject_id = int(row[0])
            face_ids = [int(r[0]) for r in db.execute(self._sql("SELECT id FROM faces WHERE subject_id = ? ORDER BY id"),
                                                      (subject_id,)).fetchall()]
            ring = self._ring()
            if ring is not None:
                # Crypto-shredding: the data keys go first, so that every copy of these rows (the
                # WAL, a backup, a replica, an export) is unreadable even if what follows never commits.
                ring.destroy([str(r[0]) for r in db.execute(self._sql(
                    "SELECT key_id FROM subjects WHERE id = ? UNION ALL SELECT f.key_id FROM photo_faces f JOIN people p"
                    " ON p.id = f.person_id WHERE p.subject_id = ?"), (subject_id, subject_id)).fetchall() if r[0]])
            db.execute(self._sql("DELETE FROM faces WHERE subject_id = ?"), (subject_id,))
            person = db.execute(self._sql("SELECT 1 FROM people WHERE subject_id = ?"), (subject_id,)).fetchone()
            # Cascades to the person clustered under it, its photo faces and their marks.
            db.execute(self._sql("DELETE FROM subjects WHERE id = ?"), (subject_id,))
            self._execute_many(db, self._sql("INSERT INTO changes(op, face_id) VALUES ('del', ?)"), [(i,) for i in face_ids])
            self._erase_after_commit("faces", "subjects", *(("people", "photo_faces", "not_person") if person else ()))
        return face_ids

    def thumbnail(self, face_id: int) -> bytes | None:
        rows = self._select("SELECT f.thumbnail, f.image_sha256, s.key_id FROM faces f JOIN subjects s"
                            " ON s.id = f.subject_id WHERE f.id = ?", (face_id,))
        if not rows:
            raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
        thumb, sha, key_id = rows[0]
        if thumb is None:
            return None
        ring = self._ring()
        if ring is None:
            return bytes(thumb)
        return unseal(ring.data_key(str(key_id)), bytes(thumb), template_aad(str(key_id), sha, "thumbnail"))

    def export_faces(self) -> Iterator[StoredFace]:
        if self._ring() is not None:
            for sealed in self.export_sealed_faces():
                yield self.unseal_face(sealed)
            return
        rows = self._select(
            f"SELECT s.name, {self.METADATA_TEXT}, f.embedding, f.quality, f.box, f.detection_score, f.image_sha256,"
            " f.source, f.thumbnail, f.created_at FROM faces f JOIN subjects s ON s.id = f.subject_id ORDER BY f.id")
        for name, meta, emb, quality, box, score, sha, source, thumb, created in rows:
            yield StoredFace(name, self._json_from_db(meta), self._vector_from_db(emb), quality, box_from_json(box),
                             score, sha, source, None if thumb is None else bytes(thumb), created)

    # --- what an in-process index is built from --------------------------------------------
    def all_templates(self) -> TemplateSnapshot:
        ring = self._ring()
        with self._snapshot() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])
            if ring is None:
                rows = db.execute("SELECT id, subject_id, embedding FROM faces ORDER BY id").fetchall()
                vectors = self._vectors_from_db(rows, self._dim())
            else:
                sealed = db.execute(self._sealed_templates_sql() + " ORDER BY f.id").fetchall()
                vectors = vectors_from_bytes(open_templates(ring, sealed, self.location), self._dim())
        return TemplateSnapshot(vectors.face_ids, vectors.subject_ids, vectors.vectors, seq)

    def changes_since(self, seq: int) -> tuple[list[Change], int] | None:
        with self._snapshot() as db:
            floor = int(self._meta_in(db, "changes_floor") or 0)
            if seq < floor:
                return None
            rows = db.execute(self._sql("SELECT seq, op, face_id FROM changes WHERE seq > ? ORDER BY seq"),
                              (seq,)).fetchall()
        changes = [Change(int(s), str(op), int(f)) for s, op, f in rows]
        return changes, (changes[-1].seq if changes else seq)

    def trim_changes(self, keep: int = CHANGE_LOG_KEEP) -> None:
        with self._write() as db:
            top = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])
            floor = max(0, top - keep)
            if floor > int(self._meta_in(db, "changes_floor") or 0):
                db.execute(self._sql("DELETE FROM changes WHERE seq <= ?"), (floor,))
                self._set_meta_in(db, "changes_floor", str(floor))

    # --- people from photos -----------------------------------------------------------------
    def photo_paths(self) -> set[str]:
        return {str(r[0]) for r in self._select("SELECT path FROM cluster_photos")}

    def has_photo(self, image_sha256: str) -> bool:
        return bool(self._select("SELECT 1 FROM cluster_photos WHERE image_sha256 = ?", (image_sha256,)))

    def usable_photo_face_count(self) -> int:
        # (usable: 0/1 in SQLite, a boolean in PostgreSQL; both test it as a condition)
        return int(self._select("SELECT COUNT(*) FROM photo_faces WHERE usable")[0][0])

    def photo_faces(self) -> list[PhotoFace]:
        return [photo_face_from_row(r) for r in self._select(_PHOTO_FACE_SQL + " ORDER BY id")]

    def photo_faces_of(self, person_id: int) -> list[PhotoFace]:
        return [photo_face_from_row(r) for r in self._select(_PHOTO_FACE_SQL + " WHERE person_id = ? ORDER BY id",
                                                              (person_id,))]

    def photo_face(self, face_id: int) -> PhotoFace:
        rows = self._select(_PHOTO_FACE_SQL + " WHERE id = ?", (face_id,))
        if not rows:
            raise TemplateNotFoundError(f"no photo face with id {face_id}", details={"face_id": face_id})
        return photo_face_from_row(rows[0])

    def photo_face_thumbnail(self, face_id: int) -> bytes | None:
        rows = self._select("SELECT key_id, image_sha256, face_index, thumbnail FROM photo_faces WHERE id = ?", (face_id,))
        if not rows:
            raise TemplateNotFoundError(f"no photo face with id {face_id}", details={"face_id": face_id})
        ring = self._ring()
        if ring is not None:
            return open_photo_faces(ring, rows, "thumbnail")[0]
        return None if rows[0][3] is None else bytes(rows[0][3])

    def photo_face_table(self) -> PhotoFaceTable:
        rows = self._select("SELECT id, image_sha256, person_id, usable, assigned_by, embedding, key_id, face_index"
                            " FROM photo_faces ORDER BY id")
        ring = self._ring()
        if ring is not None:
            plain = open_photo_faces(ring, [(r[6], r[1], r[7], r[5]) for r in rows], "embedding")
            rows = [(*r[:5], p) for r, p in zip(rows, plain)]
        return photo_face_table_from_rows(rows, self._dim())

    def photo_face_templates(self, person_id: int) -> list[PhotoFaceTemplate]:
        rows = self._select(
            "SELECT id, path, box, quality, usable, person_id, assigned_by, score, image_sha256, face_index, embedding,"
            " thumbnail, key_id FROM photo_faces WHERE person_id = ? ORDER BY id", (person_id,))
        ring = self._ring()
        if ring is not None:
            embeddings = open_photo_faces(ring, [(r[12], r[8], r[9], r[10]) for r in rows], "embedding")
            thumbnails = open_photo_faces(ring, [(r[12], r[8], r[9], r[11]) for r in rows], "thumbnail")
            rows = [(*r[:10], e, t) for r, e, t in zip(rows, embeddings, thumbnails)]
        return [photo_face_template_from_row(r) for r in rows]

    def photo_face_indices(self) -> dict[int, int]:
        return {int(i): int(n) for i, n in self._select("SELECT id, face_index FROM photo_faces")}

    def people(self) -> list[StoredPerson]:
        return [person_from_row(r) for r in self._select(_PERSON_SQL + " ORDER BY p.id")]

    def person(self, person_id: int) -> StoredPerson | None:
        rows = self._select(_PERSON_SQL + " WHERE p.id = ?", (person_id,))
        return person_from_row(rows[0]) if rows else None

    def person_named(self, name: str) -> StoredPerson | None:
        rows = self._select(_PERSON_SQL + " WHERE s.name = ?", (name,))
        return person_from_row(rows[0]) if rows else None

    def person_of_subject(self, subject_id: int) -> StoredPerson | None:
        rows = self._select(_PERSON_SQL + " WHERE p.subject_id = ?", (subject_id,))
        return person_from_row(rows[0]) if rows else None

    def link_person(self, person_id: int, subject_id: int | None) -> None:
        with self._write() as db:
            db.execute(self._sql("UPDATE people SET subject_id = ?, updated_at = ? WHERE id = ?"),
                       (subject_id, utc_now(), person_id))

    def not_person_marks(self) -> list[tuple[int, int]]:
        return [(int(f), int(p)) for f, p in
                self._select("SELECT face_id, person_id FROM not_person ORDER BY face_id, person_id")]

    def unmark_not_person(self, face_id: int, person_id: int) -> None:
        with self._write() as db:
            db.execute(self._sql("DELETE FROM not_person WHERE face_id = ? AND person_id = ?"), (face_id, person_id))

    def merge_people(self, source: int, target: int) -> None:
        # (every subclass is a whole PeopleStore: the writes this needs are its own)
        merge_people_by_parts(cast(PeopleStore, self), source, target)

    def delete_person(self, person_id: int) -> int:
        with self._write() as db:
            ring = self._ring()
            if ring is not None:  # crypto-shredding first, as forget does
                ring.destroy([str(r[0]) for r in db.execute(self._sql("SELECT key_id FROM photo_faces WHERE person_id = ?"),
                                                            (person_id,)).fetchall() if r[0]])
            n = int(db.execute(self._sql("DELETE FROM photo_faces WHERE person_id = ?"), (person_id,)).rowcount)
            db.execute(self._sql("DELETE FROM people WHERE id = ?"), (person_id,))
            self._erase_after_commit("people", "photo_faces", "not_person")
        return n

    # --- API keys ---------------------------------------------------------------------------
    def api_key(self, key_id: str) -> StoredApiKey | None:
        rows = self._select(_KEY_SQL + " WHERE key_id = ?", (key_id,))
        return StoredApiKey(api_key_from_row(rows[0]), str(rows[0][6])) if rows else None

    def api_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        order = f" ORDER BY created_at{self.CODE_POINT_ORDER}, key_id{self.CODE_POINT_ORDER}"
        return [api_key_from_row(r) for r in self._select(_KEY_SQL + where + order)]

    def revoke_api_key(self, key_id: str, when: str) -> ApiKey:
        with self._write() as db:
            cur = db.execute(self._sql("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?"),
                             (when, key_id))
            if cur.rowcount == 0:
                raise KeyNotFoundError(f"no API key with id {key_id!r}", details={"key_id": key_id})
            return api_key_from_row(db.execute(self._sql(_KEY_SQL + " WHERE key_id = ?"), (key_id,)).fetchone())

    def count_active_api_keys(self) -> int:
        return int(self._select("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")[0][0])

    def touch_api_key(self, key_id: str, when: str) -> None:
        with self._write() as db:
            db.execute(self._sql("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?"), (when, key_id))


__all__ = ["SqlStore"]
