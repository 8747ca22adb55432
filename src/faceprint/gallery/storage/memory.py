"""A gallery store in this process's memory: complete, nothing on disk.

For tests, short-lived tools and as the reference a new backend is checked against: it passes
the same Gallery and People tests as :class:`~faceprint.gallery.storage.sqlite.SQLiteStore`.
One process only (there is nobody else to sync with); safe to share between threads.

Records are immutable and replaced on change, so a transaction's rollback restores the
shallow copies of the tables taken when it began. Each method checks everything before it
changes anything, so a failing call leaves nothing behind even inside a transaction.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from faceprint.errors import (
    DuplicateImageError,
    InvalidArgumentError,
    KeyNotFoundError,
    ModelMismatchError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateNotFoundError,
)
from faceprint.gallery.crypto import MasterKey
from faceprint.gallery.storage.base import (
    CHANGE_LOG_KEEP,
    Change,
    EncryptionInfo,
    FloatArray,
    GalleryCounts,
    IdArray,
    NewFace,
    NewPhotoFace,
    PhotoAssignment,
    PhotoFaceTable,
    PhotoFaceTemplate,
    SealedFace,
    StoredApiKey,
    StoredFace,
    StoredPerson,
    TemplateSnapshot,
    TemplateVectors,
    check_filter_keys,
    check_subject_name,
    filter_value_json,
    json_merge_patch,
    merge_people_by_parts,
    metadata_json,
    utc_now,
)
from faceprint.gallery.types import ApiKey, PhotoFace, Subject, Template
from faceprint.types import Box

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _SubjectRow:
    name: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class _FaceRow:
    subject_id: int
    embedding: FloatArray
    quality: float | None
    box: Box | None
    detection_score: float | None
    image_sha256: str
    source: str | None
    thumbnail: bytes | None
    created_at: str


@dataclass(frozen=True, slots=True)
class _PersonRow:
    subject_id: int | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class _PhotoFaceRow:
    path: str
    image_sha256: str
    face_index: int
    box: Box
    quality: float
    usable: bool
    embedding: FloatArray
    thumbnail: bytes | None
    person_id: int | None
    assigned_by: str | None
    score: float | None
    created_at: str


@dataclass
class _Tables:
    meta: dict[str, str] = field(default_factory=dict)
    subjects: dict[int, _SubjectRow] = field(default_factory=dict)
    faces: dict[int, _FaceRow] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    people: dict[int, _PersonRow] = field(default_factory=dict)
    photo_faces: dict[int, _PhotoFaceRow] = field(default_factory=dict)
    photos: dict[str, str] = field(default_factory=dict)  # image sha256 -> path
    not_person: set[tuple[int, int]] = field(default_factory=set)
    api_keys: dict[str, StoredApiKey] = field(default_factory=dict)
    # The last id handed out per table: ids are never reused.
    last_id: dict[str, int] = field(default_factory=dict)

    def copy(self) -> _Tables:
        return _Tables(dict(self.meta), dict(self.subjects), dict(self.faces), list(self.changes), dict(self.people),
                       dict(self.photo_faces), dict(self.photos), set(self.not_person), dict(self.api_keys),
                       dict(self.last_id))

    def next_id(self, table: str) -> int:
        self.last_id[table] = self.last_id.get(table, 0) + 1
        return self.last_id[table]


class MemoryStore:
    """A :class:`~faceprint.gallery.storage.base.GalleryStore` held in memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._t = _Tables()
        self._depth = 0
        self._version = 0
        self._closed = False

    # --- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[_Tables]:
        """Hold the store for one change; the outermost block counts a commit."""
        with self._lock:
            self._check_open()
            self._depth += 1
            try:
                yield self._t
            finally:
                self._depth -= 1
                if not self._depth:
                    self._version += 1

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            saved = self._t.copy()
            try:
                with self._write():
                    yield
            except BaseException:
                self._t = saved
                raise

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgumentError("this gallery store is closed")

    @property
    def location(self) -> str:
        return ":memory:"

    def size_bytes(self) -> int:
        return 0

    def data_version(self) -> int:
        return self._version

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # --- encryption at rest: nothing is at rest here ----------------------------------------
    def encryption(self) -> EncryptionInfo | None:
        return None

    def unlock(self) -> None:
        return None

    def rotate_master_key(self, new_key: MasterKey) -> int:
        raise InvalidArgumentError("an in-memory gallery is not encrypted: it keeps nothing at rest")

    def export_sealed_faces(self) -> Iterator[SealedFace]:
        raise InvalidArgumentError("an in-memory gallery is not encrypted: it has no sealed templates")

    def unseal_face(self, face: SealedFace) -> StoredFace:
        raise InvalidArgumentError("an in-memory gallery is not encrypted: it has no keys to decrypt with")

    # --- model pin --------------------------------------------------------------------------
    def model(self) -> tuple[str, int] | None:
        with self._lock:
            meta = self._t.meta
            return (meta["model_id"], int(meta["embedding_dim"])) if "model_id" in meta else None

    def pin_model(self, model_id: str, dim: int) -> None:
        with self._write() as t:
            current = t.meta.get("model_id")
            if current is None:
                t.meta.update(model_id=model_id, embedding_dim=str(dim))
            elif current != model_id:
                raise ModelMismatchError(
                    f"gallery {self.location} holds templates of {current}, not {model_id}",
                    details={"gallery_model": current, "model": model_id},
                )

    def _dim(self) -> int:
        pinned = self.model()
        return pinned[1] if pinned else 0

    # --- subjects and templates -------------------------------------------------------------
    def _subject_id(self, name: str) -> int | None:
        return next((sid for sid, row in self._t.subjects.items() if row.name == name), None)

    def _subject_id_or_raise(self, name: str) -> int:
        sid = self._subject_id(name)
        if sid is None:
            raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
        return sid

    def _subject(self, sid: int) -> Subject:
        row = self._t.subjects[sid]
        count = sum(1 for f in self._t.faces.values() if f.subject_id == sid)
        return Subject(sid, row.name, dict(row.metadata), count, row.created_at, row.updated_at)

    def _log(self, op: str, face_ids: Sequence[int]) -> None:
        for fid in face_ids:
            self._t.changes.append(Change(self._t.next_id("changes"), op, int(fid)))

    def add_face(self, subject: str, metadata: dict[str, Any] | None, face: NewFace) -> tuple[int, int]:
        name = check_subject_name(subject)
        if not isinstance(face.image_sha256, str):
            raise InvalidArgumentError("a template needs its image's SHA-256")
        now = utc_now()
        vector = np.array(face.embedding, dtype=np.float32).reshape(-1)
        with self._write() as t:
            if any(f.image_sha256 == face.image_sha256 for f in t.faces.values()):
                raise DuplicateImageError("this exact image is already enrolled",
                                          details={"image_sha256": face.image_sha256})
            sid = self._subject_id(name)
            if sid is None:
                sid = t.next_id("subjects")
                t.subjects[sid] = _SubjectRow(name, _copy_json(metadata or {}), now, now)
            else:
                row = t.subjects[sid]
                patched = json_merge_patch(row.metadata, _copy_json(metadata)) if metadata else row.metadata
                t.subjects[sid] = replace(row, metadata=patched, updated_at=now)
            fid = t.next_id("faces")
            t.faces[fid] = _FaceRow(sid, vector, face.quality, face.box, face.detection_score, face.image_sha256,
                                    face.source, face.thumbnail, now)
            self._log("add", [fid])
        return sid, fid

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None) -> Subject:
        name = check_subject_name(name)
        now = utc_now()
        with self._write() as t:
            if self._subject_id(name) is not None:
                raise SubjectExistsError(f"a subject named {name!r} already exists", details={"subject": name})
            sid = t.next_id("subjects")
            t.subjects[sid] = _SubjectRow(name, _copy_json(metadata or {}), now, now)
            return self._subject(sid)

    def has_image(self, image_sha256: str) -> bool:
        with self._lock:
            return any(f.image_sha256 == image_sha256 for f in self._t.faces.values())

    def subject(self, name: str) -> Subject:
        with self._lock:
            return self._subject(self._subject_id_or_raise(name))

    def subject_by_id(self, subject_id: int) -> Subject:
        with self._lock:
            if subject_id not in self._t.subjects:
                raise SubjectNotFoundError(f"no subject with id {subject_id}", details={"subject_id": subject_id})
            return self._subject(subject_id)

    def subjects(self, limit: int | None = None, offset: int = 0) -> list[Subject]:
        with self._lock:
            ordered = sorted(self._t.subjects, key=lambda sid: self._t.subjects[sid].name)
            if limit is not None:
                ordered = ordered[int(offset) : int(offset) + int(limit)]
            return [self._subject(sid) for sid in ordered]

    def count(self) -> GalleryCounts:
        with self._lock:
            faces = self._t.faces.values()
            return GalleryCounts(len(self._t.subjects), len(faces), sum(1 for f in faces if f.thumbnail is not None))

    def templates(self, subject_id: int) -> list[Template]:
        with self._lock:
            return [_template(fid, f) for fid, f in sorted(self._t.faces.items()) if f.subject_id == subject_id]

    def template(self, face_id: int) -> Template:
        with self._lock:
            return _template(face_id, self._face(face_id))

    def _face(self, face_id: int) -> _FaceRow:
        row = self._t.faces.get(face_id)
        if row is None:
            raise TemplateNotFoundError(f"no enrolled face with id {face_id}", details={"face_id": face_id})
        return row

    def rename(self, old: str, new: str) -> Subject:
        new = check_subject_name(new)
        with self._write() as t:
            sid = self._subject_id_or_raise(old)
            if old != new and self._subject_id(new) is not None:
                raise SubjectExistsError(f"a subject named {new!r} already exists; merge instead", details={"subject": new})
            t.subjects[sid] = replace(t.subjects[sid], name=new, updated_at=utc_now())
            return self._subject(sid)

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject:
        with self._write() as t:
            sid = self._subject_id_or_raise(name)
            t.subjects[sid] = replace(t.subjects[sid], metadata=_copy_json(metadata), updated_at=utc_now())
            return self._subject(sid)

    def merge(self, source: str, target: str) -> Subject:
        if source == target:
            raise InvalidArgumentError("cannot merge a subject into itself")
        with self.transaction():
            t = self._t
            src, tgt = self._subject_id_or_raise(source), self._subject_id_or_raise(target)
            src_person, tgt_person = self.person_of_subject(src), self.person_of_subject(tgt)
            if src_person is not None and tgt_person is not None:
                self.merge_people(src_person.id, tgt_person.id)
            elif src_person is not None:  # the person follows its templates (else it would go with source)
                self.link_person(src_person.id, tgt)
            moved = [fid for fid, f in sorted(t.faces.items()) if f.subject_id == src]
            for fid in moved:
                t.faces[fid] = replace(t.faces[fid], subject_id=tgt)
            # The target keeps its own metadata where both define a key.
            t.subjects[tgt] = replace(t.subjects[tgt], metadata=json_merge_patch(t.subjects[src].metadata, t.subjects[tgt].metadata),
                                      updated_at=utc_now())
            del t.subjects[src]
            self._log("add", moved)
            return self._subject(tgt)

    def delete_face(self, face_id: int) -> None:
        with self._write() as t:
            self._face(face_id)
            del t.faces[face_id]
            self._log("del", [face_id])

    def forget(self, name: str) -> list[int]:
        with self._write() as t:
            sid = self._subject_id_or_raise(name)
            face_ids = [fid for fid, f in sorted(t.faces.items()) if f.subject_id == sid]
            for fid in face_ids:
                del t.faces[fid]
            person = self.person_of_subject(sid)
            if person is not None:  # as SQLite's ON DELETE CASCADE does
                self.delete_person(person.id)
            del t.subjects[sid]
            self._log("del", face_ids)
        return face_ids

    def thumbnail(self, face_id: int) -> bytes | None:
        with self._lock:
            return self._face(face_id).thumbnail

    # --- what the index is built from -------------------------------------------------------
    def all_templates(self) -> TemplateSnapshot:
        with self._lock:
            ids, subjects, vectors = self._vectors(sorted(self._t.faces))
            return TemplateSnapshot(ids, subjects, vectors, self._t.last_id.get("changes", 0))

    def _vectors(self, face_ids: Sequence[int]) -> TemplateVectors:
        faces = self._t.faces
        rows = [(fid, faces[fid]) for fid in face_ids]
        vectors = np.stack([f.embedding for _, f in rows]) if rows else np.zeros((0, self._dim()), np.float32)
        return TemplateVectors(np.array([fid for fid, _ in rows], np.int64),
                               np.array([f.subject_id for _, f in rows], np.int64), vectors.astype(np.float32))

    def changes_since(self, seq: int) -> tuple[list[Change], int] | None:
        with self._lock:
            if seq < int(self._t.meta.get("changes_floor", 0)):
                return None
            changes = [c for c in self._t.changes if c.seq > seq]
        return changes, (changes[-1].seq if changes else seq)

    def read_templates(self, face_ids: Sequence[int]) -> TemplateVectors:
        with self._lock:
            return self._vectors(sorted({int(i) for i in face_ids if int(i) in self._t.faces}))

    def trim_changes(self, keep: int = CHANGE_LOG_KEEP) -> None:
        with self._write() as t:
            floor = max(0, t.last_id.get("changes", 0) - keep)
            if floor > int(t.meta.get("changes_floor", 0)):
                t.changes = [c for c in t.changes if c.seq > floor]
                t.meta["changes_floor"] = str(floor)

    def face_ids_where(self, metadata: dict[str, Any]) -> IdArray:
        check_filter_keys(metadata)
        with self._lock:
            wanted = {sid for sid, s in self._t.subjects.items()
                      if all(_sql_equal(s.metadata.get(k), v) for k, v in metadata.items())}
            return np.array(sorted(fid for fid, f in self._t.faces.items() if f.subject_id in wanted), np.int64)

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        with self._lock:
            return {int(i): self._t.subjects[int(i)].name for i in set(subject_ids) if int(i) in self._t.subjects}

    def export_faces(self) -> Iterator[StoredFace]:
        with self._lock:
            rows = sorted(self._t.faces.items())
            subjects = dict(self._t.subjects)
        for _, f in rows:
            s = subjects[f.subject_id]
            yield StoredFace(s.name, _copy_json(s.metadata), f.embedding.copy(), f.quality, f.box, f.detection_score,
                             f.image_sha256, f.source, f.thumbnail, f.created_at)

    # --- people from photos -----------------------------------------------------------------
    def photo_paths(self) -> set[str]:
        with self._lock:
            return set(self._t.photos.values())

    def has_photo(self, image_sha256: str) -> bool:
        with self._lock:
            return image_sha256 in self._t.photos

    def add_photo(self, path: str, image_sha256: str, faces: Sequence[NewPhotoFace]) -> bool:
        now = utc_now()
        if len({f.face_index for f in faces}) != len(faces):
            raise InvalidArgumentError("two faces of one photo share a face index")
        with self._write() as t:
            if image_sha256 in t.photos:
                return False
            t.photos[image_sha256] = path
            for f in faces:
                t.photo_faces[t.next_id("photo_faces")] = _PhotoFaceRow(
                    path, image_sha256, int(f.face_index), f.box, float(f.quality), bool(f.usable),
                    np.array(f.embedding, np.float32).reshape(-1), f.thumbnail, None, None, None, now)
        return True

    def usable_photo_face_count(self) -> int:
        with self._lock:
            return sum(1 for f in self._t.photo_faces.values() if f.usable)

    def photo_faces(self) -> list[PhotoFace]:
        with self._lock:
            return [_photo_face(fid, f) for fid, f in sorted(self._t.photo_faces.items())]

    def photo_faces_of(self, person_id: int) -> list[PhotoFace]:
        with self._lock:
            return [_photo_face(fid, f) for fid, f in sorted(self._t.photo_faces.items()) if f.person_id == person_id]

    def _photo_face_row(self, face_id: int) -> _PhotoFaceRow:
        row = self._t.photo_faces.get(face_id)
        if row is None:
            raise TemplateNotFoundError(f"no photo face with id {face_id}", details={"face_id": face_id})
        return row

    def photo_face(self, face_id: int) -> PhotoFace:
        with self._lock:
            return _photo_face(face_id, self._photo_face_row(face_id))

    def photo_face_thumbnail(self, face_id: int) -> bytes | None:
        with self._lock:
            return self._photo_face_row(face_id).thumbnail

    def photo_face_table(self) -> PhotoFaceTable:
        with self._lock:
            rows = sorted(self._t.photo_faces.items())
        return PhotoFaceTable(
            ids=np.array([fid for fid, _ in rows], np.int64),
            image_sha256=[f.image_sha256 for _, f in rows],
            person=np.array([f.person_id if f.person_id is not None else -1 for _, f in rows], np.int64),
            usable=np.array([f.usable for _, f in rows], np.bool_),
            assigned_by=[f.assigned_by for _, f in rows],
            embeddings=(np.stack([f.embedding for _, f in rows]).astype(np.float32) if rows
                        else np.zeros((0, self._dim()), np.float32)),
        )

    def photo_face_templates(self, person_id: int) -> list[PhotoFaceTemplate]:
        with self._lock:
            return [PhotoFaceTemplate(_photo_face(fid, f), f.face_index, f.embedding.copy(), f.thumbnail)
                    for fid, f in sorted(self._t.photo_faces.items()) if f.person_id == person_id]

    def photo_face_indices(self) -> dict[int, int]:
        with self._lock:
            return {fid: f.face_index for fid, f in self._t.photo_faces.items()}

    def _person(self, pid: int) -> StoredPerson:
        row = self._t.people[pid]
        subject = self._t.subjects.get(row.subject_id) if row.subject_id is not None else None
        return StoredPerson(pid, row.subject_id, subject.name if subject else None)

    def people(self) -> list[StoredPerson]:
        with self._lock:
            return [self._person(pid) for pid in sorted(self._t.people)]

    def person(self, person_id: int) -> StoredPerson | None:
        with self._lock:
            return self._person(person_id) if person_id in self._t.people else None

    def person_named(self, name: str) -> StoredPerson | None:
        with self._lock:
            sid = self._subject_id(name)
            return None if sid is None else self.person_of_subject(sid)

    def person_of_subject(self, subject_id: int) -> StoredPerson | None:
        with self._lock:
            pid = next((pid for pid, p in self._t.people.items() if p.subject_id == subject_id), None)
            return None if pid is None else self._person(pid)

    def create_person(self) -> int:
        now = utc_now()
        with self._write() as t:
            pid = t.next_id("people")
            t.people[pid] = _PersonRow(None, now, now)
            return pid

    def link_person(self, person_id: int, subject_id: int | None) -> None:
        with self._write() as t:
            if person_id not in t.people:
                return
            if subject_id is not None:
                if subject_id not in t.subjects:
                    raise SubjectNotFoundError(f"no subject with id {subject_id}", details={"subject_id": subject_id})
                other = self.person_of_subject(subject_id)
                if other is not None and other.id != person_id:  # people.subject_id is UNIQUE
                    raise InvalidArgumentError(f"subject {subject_id} is already person #{other.id}")
            t.people[person_id] = replace(t.people[person_id], subject_id=subject_id, updated_at=utc_now())

    def assign_photo_faces(self, assignments: Sequence[PhotoAssignment]) -> None:
        if not assignments:
            return
        with self._write() as t:
            for a in assignments:
                if a.person_id is not None and a.person_id not in t.people:
                    raise InvalidArgumentError(f"no person #{a.person_id}")
            now = utc_now()
            for a in assignments:
                row = t.photo_faces.get(a.face_id)
                if row is None:
                    continue
                placed = a.person_id is not None
                t.photo_faces[a.face_id] = replace(row, person_id=a.person_id, assigned_by=a.assigned_by if placed else None,
                                                   score=a.score if placed else None)
                if a.person_id is not None:
                    t.people[a.person_id] = replace(t.people[a.person_id], updated_at=now)

    def not_person_marks(self) -> list[tuple[int, int]]:
        with self._lock:
            return sorted(self._t.not_person)

    def mark_not_person(self, face_id: int, person_id: int) -> None:
        with self._write() as t:
            if face_id in t.photo_faces and person_id in t.people:
                t.not_person.add((face_id, person_id))

    def unmark_not_person(self, face_id: int, person_id: int) -> None:
        with self._write() as t:
            t.not_person.discard((face_id, person_id))

    def merge_people(self, source: int, target: int) -> None:
        merge_people_by_parts(self, source, target)

    def delete_person(self, person_id: int) -> int:
        with self._write() as t:
            gone = [fid for fid, f in t.photo_faces.items() if f.person_id == person_id]
            for fid in gone:
                del t.photo_faces[fid]
            t.not_person = {(f, p) for f, p in t.not_person if p != person_id and f not in gone}
            t.people.pop(person_id, None)
        return len(gone)

    # --- API keys ---------------------------------------------------------------------------
    def add_api_key(self, record: ApiKey, key_sha256: str) -> bool:
        with self._write() as t:
            if record.key_id in t.api_keys:
                return False
            t.api_keys[record.key_id] = StoredApiKey(record, key_sha256)
            return True

    def api_key(self, key_id: str) -> StoredApiKey | None:
        with self._lock:
            return self._t.api_keys.get(key_id)

    def api_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        with self._lock:
            keys = [k.record for k in self._t.api_keys.values() if include_revoked or k.record.revoked_at is None]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke_api_key(self, key_id: str, when: str) -> ApiKey:
        with self._write() as t:
            stored = t.api_keys.get(key_id)
            if stored is None:
                raise KeyNotFoundError(f"no API key with id {key_id!r}", details={"key_id": key_id})
            if stored.record.revoked_at is None:
                stored = replace(stored, record=replace(stored.record, revoked_at=when))
                t.api_keys[key_id] = stored
            return stored.record

    def count_active_api_keys(self) -> int:
        with self._lock:
            return sum(1 for k in self._t.api_keys.values() if k.record.revoked_at is None)

    def touch_api_key(self, key_id: str, when: str) -> None:
        with self._write() as t:
            stored = t.api_keys.get(key_id)
            if stored is not None:
                t.api_keys[key_id] = replace(stored, record=replace(stored.record, last_used_at=when))


def _copy_json(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON, as a database round trip would make it."""
    copied: dict[str, Any] = json.loads(metadata_json(value))  # checked as the SQLite store checks it
    return copied


def _sql_equal(stored: Any, wanted: Any) -> bool:
    """``json_extract(metadata, key) = value`` as SQLite answers it: JSON null matches
    nothing, booleans are 0/1, numbers compare by value."""
    if stored is None or wanted is None:
        return False
    if isinstance(stored, (dict, list)) or isinstance(wanted, (dict, list)):
        return filter_value_json(stored) == (filter_value_json(wanted) if isinstance(wanted, (dict, list)) else wanted)
    if isinstance(stored, str) or isinstance(wanted, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    return bool(float(stored) == float(wanted))


def _template(face_id: int, f: _FaceRow) -> Template:
    return Template(face_id, f.subject_id, f.box, f.detection_score, f.quality, f.image_sha256, f.source,
                    f.thumbnail is not None, f.created_at)


def _photo_face(face_id: int, f: _PhotoFaceRow) -> PhotoFace:
    return PhotoFace(face_id, f.path, f.box, f.quality, f.usable, f.person_id, f.assigned_by, f.score, f.image_sha256)


__all__ = ["MemoryStore"]
