"""The storage interface of a gallery: everything the library asks of a database.

A gallery's storage holds four things, each behind its own :class:`~typing.Protocol`:

* :class:`TemplateStore` -- subjects (enrolled people) and their templates (face embeddings),
  plus the change log a vector index follows to stay equal to the database;
* :class:`PeopleStore` -- the bookkeeping of :mod:`faceprint.clustering.people`: photos added
  for clustering, their faces, the people formed from them and "not this person" marks;
* :class:`ApiKeyStore` -- the HTTP service's API keys (hashes only);
* :class:`GalleryStore` -- all three at once, which is what a
  :class:`~faceprint.gallery.Gallery` is built on.

Two implementations pass the same tests: :class:`~faceprint.gallery.storage.sqlite.SQLiteStore`
(the default: one file, several processes) and
:class:`~faceprint.gallery.storage.memory.MemoryStore` (one process, nothing on disk). A new
backend implements :class:`GalleryStore`; no caller changes.

Rules every implementation keeps:

* Each method is atomic. Calls made inside ``with store.transaction():`` by one thread
  commit together or not at all, and no other thread sees their effects before.
* Every change to the set of templates is written to the change log in the same transaction
  (:meth:`TemplateStore.changes_since`).
* Deleting is real: a forgotten subject, template, photo face or person leaves no copy of its
  vectors or thumbnails behind in the storage.
* Ids are never reused (AUTOINCREMENT).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceprint.errors import InvalidArgumentError
from faceprint.gallery.crypto import MasterKey
from faceprint.gallery.types import ApiKey, PhotoFace, Subject, Template
from faceprint.types import Box

#: Keep at most this many rows of the change log; a reader further behind rebuilds.
CHANGE_LOG_KEEP = 200_000

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]


def utc_now() -> str:
    """The timestamp format of every stored ``created_at`` / ``updated_at``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- records --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewFace:
    """A template to store."""

    embedding: FloatArray
    image_sha256: str
    box: Box | None = None
    detection_score: float | None = None
    quality: float | None = None
    source: str | None = None
    thumbnail: bytes | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log: template ``face_id`` was added (or moved to another
    subject: re-read it) or deleted."""

    seq: int
    op: str  # "add" | "del"
    face_id: int


class GalleryCounts(NamedTuple):
    subjects: int
    faces: int
    thumbnails: int


class TemplateVectors(NamedTuple):
    """Templates as arrays, a row each: ids, their subjects' ids, their unit vectors."""

    face_ids: IdArray
    subject_ids: IdArray
    vectors: FloatArray


class TemplateSnapshot(NamedTuple):
    """Every template as of one moment, and the change-log position of that moment."""

    face_ids: IdArray
    subject_ids: IdArray
    vectors: FloatArray
    seq: int


@dataclass(frozen=True, slots=True)
class StoredFace:
    """A template with everything kept about it, and its subject (what an export writes)."""

    subject: str
    metadata: dict[str, Any]
    embedding: FloatArray
    quality: float | None
    box: Box | None
    detection_score: float | None
    image_sha256: str
    source: str | None
    thumbnail: bytes | None
    created_at: str


@dataclass(frozen=True, slots=True)
class SealedFace:
    """A template of an encrypted gallery as stored: its embedding and thumbnail still sealed
    under its subject's data key ``key_id`` (what an encrypted export writes: forgetting the
    subject leaves such a copy unreadable too)."""

    subject: str
    metadata: dict[str, Any]
    key_id: str
    sealed_embedding: bytes
    sealed_thumbnail: bytes | None
    quality: float | None
    box: Box | None
    detection_score: float | None
    image_sha256: str
    source: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class EncryptionInfo:
    """How a gallery is encrypted at rest (see :mod:`faceprint.gallery.crypto`)."""

    scheme: str
    keyring: str  # where the wrapped data keys are
    keyring_id: str  # pairs the gallery with its keyring
    master_fingerprint: str | None  # the master key's public name (None: not unlocked)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "keyring": self.keyring, "keyring_id": self.keyring_id,
                "master_fingerprint": self.master_fingerprint}


@dataclass(frozen=True, slots=True)
class NewPhotoFace:
    """One face of a photo added for clustering."""

    face_index: int
    box: Box
    quality: float
    usable: bool  # good enough to be clustered
    embedding: FloatArray
    thumbnail: bytes | None


@dataclass(frozen=True, slots=True)
class PhotoFaceTable:
    """Every photo face as arrays, a row each, in id order (what clustering works on)."""

    ids: IdArray
    image_sha256: list[str]
    person: IdArray  # person id, -1 while unsorted
    usable: npt.NDArray[np.bool_]
    assigned_by: list[str | None]
    embeddings: FloatArray


@dataclass(frozen=True, slots=True)
class PhotoFaceTemplate:
    """A photo face with what enrolling it as a template needs."""

    face: PhotoFace
    face_index: int
    embedding: FloatArray
    thumbnail: bytes | None


@dataclass(frozen=True, slots=True)
class StoredPerson:
    """A person formed from photo faces; named when linked to a subject."""

    id: int
    subject_id: int | None
    name: str | None  # the linked subject's name


@dataclass(frozen=True, slots=True)
class PhotoAssignment:
    """Put photo face ``face_id`` in person ``person_id`` (``None``: back to unsorted).
    ``assigned_by``: "match", "cluster" or "user" (``None`` when unsorted)."""

    face_id: int
    person_id: int | None
    assigned_by: str | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    record: ApiKey
    key_sha256: str


# --- the interface --------------------------------------------------------------------------
class Transactional(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """Calls made inside it by this thread commit together, or roll back together when
        it exits with an exception. Nests (an inner block joins the outer one)."""
        ...

    def close(self) -> None: ...


class TemplateStore(Transactional, Protocol):
    """Subjects, their templates, the model they were made with, and the change log."""

    @property
    def location(self) -> str:
        """Where the data is (a path, a URL without credentials, ``:memory:``)."""
        ...

    def size_bytes(self) -> int:
        """Bytes the stored data takes (0 when unknown)."""
        ...

    def data_version(self) -> int:
        """A number that changes whenever a change may have been committed, by this store or
        by anyone else (cheap: called before every search)."""
        ...

    def model(self) -> tuple[str, int] | None:
        """The (model id, embedding dimension) the gallery is pinned to, if any."""
        ...

    def pin_model(self, model_id: str, dim: int) -> None:
        """Pin the gallery to a model; :class:`ModelMismatchError` when pinned to another."""
        ...

    def add_face(self, subject: str, metadata: dict[str, Any] | None, face: NewFace) -> tuple[int, int]:
        """Store one template under ``subject`` (created if new; ``metadata`` is merged into
        an existing subject's as a JSON merge patch). :class:`DuplicateImageError` when the
        image is already stored. Returns (subject id, face id)."""
        ...

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None) -> Subject:
        """A subject with no faces; :class:`SubjectExistsError` when the name is taken."""
        ...

    def has_image(self, image_sha256: str) -> bool: ...

    def subject(self, name: str) -> Subject:
        """:class:`SubjectNotFoundError` when there is none of that name."""
        ...

    def subject_by_id(self, subject_id: int) -> Subject: ...

    def subjects(self, limit: int | None = None, offset: int = 0) -> list[Subject]:
        """Subjects ordered by name (code point order)."""
        ...

    def count(self) -> GalleryCounts: ...

    def templates(self, subject_id: int) -> list[Template]:
        """A subject's templates in id order (none for an unknown id)."""
        ...

    def template(self, face_id: int) -> Template:
        """:class:`TemplateNotFoundError` when there is none of that id."""
        ...

    def rename(self, old: str, new: str) -> Subject:
        """:class:`SubjectExistsError` when ``new`` is another subject's name."""
        ...

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject:
        """Replace a subject's metadata."""
        ...

    def merge(self, source: str, target: str) -> Subject:
        """Move every template of ``source`` to ``target`` and remove ``source``; the target
        keeps its own metadata where both define a key. A person clustered under ``source``
        comes along: merged into ``target``'s person (:meth:`PeopleStore.merge_people`), or,
        when ``target`` has none, linked to ``target``."""
        ...

    def delete_face(self, face_id: int) -> None: ...

    def forget(self, name: str) -> list[int]:
        """Delete a subject, its templates and thumbnails, and the person clustered under it
        with that person's photo faces, in one transaction. Returns the template ids removed."""
        ...

    def thumbnail(self, face_id: int) -> bytes | None:
        """A template's thumbnail JPEG (``None`` if it has none); :class:`TemplateNotFoundError`."""
        ...

    def all_templates(self) -> TemplateSnapshot:
        """Every template, and the change-log position they are as of (one snapshot)."""
        ...

    def changes_since(self, seq: int) -> tuple[list[Change], int] | None:
        """The changes after ``seq`` and the new position, or ``None`` when the log no longer
        reaches back that far (the caller rebuilds)."""
        ...

    def read_templates(self, face_ids: Sequence[int]) -> TemplateVectors:
        """The given templates that exist (others are left out)."""
        ...

    def trim_changes(self, keep: int = CHANGE_LOG_KEEP) -> None:
        """Drop all but the last ``keep`` entries of the change log."""
        ...

    def face_ids_where(self, metadata: dict[str, Any]) -> IdArray:
        """Template ids of subjects whose metadata has every given key = value."""
        ...

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        """Names of the given subjects that exist."""
        ...

    def export_faces(self) -> Iterator[StoredFace]:
        """Every template with its subject, in id order."""
        ...

    # --- encryption at rest (a backend that has none answers None / refuses) -----------------
    def encryption(self) -> EncryptionInfo | None:
        """How templates and thumbnails are encrypted at rest; ``None`` when they are not."""
        ...

    def unlock(self) -> None:
        """Check now that an encrypted store can be read (its keyring and master key):
        :class:`MasterKeyRequiredError` / :class:`MasterKeyInvalidError`. No-op when not encrypted."""
        ...

    def rotate_master_key(self, new_key: MasterKey) -> int:
        """Re-wrap every data key under ``new_key`` (templates are not re-encrypted); returns how
        many. :class:`InvalidArgumentError` when the store is not encrypted."""
        ...

    def export_sealed_faces(self) -> Iterator[SealedFace]:
        """Every template as stored, still sealed, in id order (encrypted stores only)."""
        ...

    def unseal_face(self, face: SealedFace) -> StoredFace:
        """Decrypt a sealed template with this store's keys: :class:`DecryptionError` when its
        data key was destroyed (reason ``data_key_destroyed``) or it was tampered with."""
        ...


class PeopleStore(Transactional, Protocol):
    """Photos added for clustering, their faces, people, and "not this person" marks.

    A person linked to a subject is deleted with it, with the person's photo faces."""

    def photo_paths(self) -> set[str]:
        """The paths of every photo added."""
        ...

    def has_photo(self, image_sha256: str) -> bool: ...

    def add_photo(self, path: str, image_sha256: str, faces: Sequence[NewPhotoFace]) -> bool:
        """Record a photo and its faces (unsorted) in one transaction; ``False`` (and nothing
        stored) when a photo of that content is already there."""
        ...

    def usable_photo_face_count(self) -> int: ...

    def photo_faces(self) -> list[PhotoFace]:
        """Every photo face in id order."""
        ...

    def photo_faces_of(self, person_id: int) -> list[PhotoFace]:
        """A person's photo faces in id order."""
        ...

    def photo_face(self, face_id: int) -> PhotoFace:
        """:class:`TemplateNotFoundError` when there is none of that id."""
        ...

    def photo_face_thumbnail(self, face_id: int) -> bytes | None:
        """:class:`TemplateNotFoundError` when there is no such photo face."""
        ...

    def photo_face_table(self) -> PhotoFaceTable:
        """Every photo face with its embedding, as arrays."""
        ...

    def photo_face_templates(self, person_id: int) -> list[PhotoFaceTemplate]:
        """A person's photo faces with their embeddings and thumbnails, in id order."""
        ...

    def photo_face_indices(self) -> dict[int, int]:
        """Every photo face's ``face_index`` (its place among its photo's faces), by photo face
        id: with the photo's hash, what names the face across galleries
        (:func:`photo_face_template_key`)."""
        ...

    def people(self) -> list[StoredPerson]:
        """Every person in id order."""
        ...

    def person(self, person_id: int) -> StoredPerson | None: ...

    def person_named(self, name: str) -> StoredPerson | None:
        """The person linked to subject ``name``, if any."""
        ...

    def person_of_subject(self, subject_id: int) -> StoredPerson | None: ...

    def create_person(self) -> int:
        """A new, unnamed person with no faces; returns its id."""
        ...

    def link_person(self, person_id: int, subject_id: int | None) -> None:
        """Link a person to a subject (it takes the subject's name) or unlink it (``None``)."""
        ...

    def assign_photo_faces(self, assignments: Sequence[PhotoAssignment]) -> None:
        """Apply the assignments; the people faces join are marked updated."""
        ...

    def not_person_marks(self) -> list[tuple[int, int]]:
        """Every (photo face id, person id) "not this person" mark."""
        ...

    def mark_not_person(self, face_id: int, person_id: int) -> None: ...

    def unmark_not_person(self, face_id: int, person_id: int) -> None: ...

    def merge_people(self, source: int, target: int) -> None:
        """One person: ``source``'s photo faces move to ``target`` (assigned by "user"); a face
        of a photo ``target`` already has a face of goes back to unsorted, marked
        not-``target``; ``source``'s marks carry over; ``source`` is deleted, and its subject
        link passes to ``target`` when ``target`` has none."""
        ...

    def delete_person(self, person_id: int) -> int:
        """Delete a person and its photo faces for good (not its subject). Returns the
        number of photo faces removed."""
        ...


class ApiKeyStore(Transactional, Protocol):
    """API keys of the HTTP service; only each key's SHA-256 is stored."""

    def add_api_key(self, record: ApiKey, key_sha256: str) -> bool:
        """Store a new key; ``False`` (nothing stored) when its key id is taken."""
        ...

    def api_key(self, key_id: str) -> StoredApiKey | None: ...

    def api_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        """Keys ordered by creation time, then key id."""
        ...

    def revoke_api_key(self, key_id: str, when: str) -> ApiKey:
        """Mark a key revoked at ``when`` (a key revoked before keeps its first time);
        :class:`KeyNotFoundError` when there is none of that id."""
        ...

    def count_active_api_keys(self) -> int: ...

    def touch_api_key(self, key_id: str, when: str) -> None:
        """Record that a key was used at ``when``."""
        ...


class GalleryStore(TemplateStore, PeopleStore, ApiKeyStore, Protocol):
    """Everything a gallery keeps: what :class:`~faceprint.gallery.Gallery`, :class:`People
    <faceprint.clustering.people.People>` and the service's key store are built on."""


class FaceMatches(NamedTuple):
    """The nearest templates of each query, best first: ``(queries, k)`` arrays, rows padded
    with id ``-1`` (similarity ``-inf``) when fewer than ``k`` templates qualify."""

    face_ids: IdArray
    similarities: FloatArray
    subject_ids: IdArray


@runtime_checkable
class SearchingStore(Protocol):
    """A store that searches its own templates (a database with a vector index, e.g.
    PostgreSQL + pgvector): :class:`~faceprint.gallery.Gallery` then asks it instead of
    keeping an index in the process, so every process sees every committed change at once."""

    @property
    def searches_in_database(self) -> bool:
        """Whether :meth:`search_faces` can answer (``False``, e.g., when the templates are
        encrypted at rest: the database holds only ciphertext, and the gallery keeps an
        in-process index of the decrypted templates, as with SQLite)."""
        ...

    def search_faces(self, queries: FloatArray, k: int, where: dict[str, Any] | None = None) -> FaceMatches:
        """The ``k`` templates most similar (cosine: the inner product of unit vectors) to each
        row of ``queries``, among those whose subject's metadata matches ``where`` (as
        :meth:`TemplateStore.face_ids_where`)."""
        ...


# --- helpers shared by the implementations --------------------------------------------------
def check_subject_name(name: str) -> str:
    """A subject name, stripped; :class:`InvalidArgumentError` when empty, too long or not valid
    Unicode (a command line's undecodable bytes arrive as lone surrogates)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError("a subject name must be a non-empty string")
    name = name.strip()
    if len(name) > 256:
        raise InvalidArgumentError("a subject name is at most 256 characters")
    if not is_unicode(name):
        raise InvalidArgumentError("a subject name must be valid Unicode text", details={"reason": "invalid_unicode"})
    return name


#: A metadata filter (``where``) names at most this many keys (SQLite's expression depth
#: grows with each: a thousand keys overflow it).
MAX_FILTER_KEYS = 32
#: A filter key is a plain name of at most this many characters.
MAX_FILTER_KEY_LENGTH = 128
#: Objects and arrays nest at most this deep in a metadata value (or a filter's value).
MAX_METADATA_DEPTH = 16
#: A subject's metadata is at most this long as JSON text.
MAX_METADATA_BYTES = 64 * 1024
#: JSON integers in metadata and filters are 64-bit signed: what SQLite stores exactly.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def is_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (JSON's ``\\ud800`` escape gives a lone
    surrogate, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_json_value(value: Any, what: str) -> None:
    """:class:`InvalidArgumentError` unless ``value`` is JSON every backend stores and compares
    alike: finite numbers only (no NaN or Infinity, which SQLite's JSON functions reject),
    integers within 64 bits, objects and arrays at most :data:`MAX_METADATA_DEPTH` deep, text
    (keys too) that is valid Unicode (no lone surrogate, which no UTF-8 database can hold)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:  # iterative: a hostile value's depth cannot exhaust the call stack
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_METADATA_DEPTH:
                raise InvalidArgumentError(f"{what} nests objects and arrays over {MAX_METADATA_DEPTH} levels deep",
                                           details={"max_depth": MAX_METADATA_DEPTH})
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item if isinstance(key, str))
        elif isinstance(item, str):
            if not is_unicode(item):
                raise InvalidArgumentError(f"{what} holds text that is not valid Unicode (a lone surrogate)",
                                           details={"reason": "invalid_unicode"})
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise InvalidArgumentError(f"{what} holds an integer outside the 64-bit range",
                                           details={"min": INT64_MIN, "max": INT64_MAX})
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidArgumentError(f"{what} holds a number that is not finite ({item}); JSON has no NaN "
                                           "or Infinity", details={"reason": "non_finite_number"})
        else:
            raise InvalidArgumentError(f"{what} holds a value that is not JSON ({type(item).__name__})",
                                       details={"type": type(item).__name__})


def check_filter_keys(metadata: dict[str, Any]) -> None:
    """A metadata filter (``where``): at most :data:`MAX_FILTER_KEYS` keys, each a plain name
    (letters, digits, ``_`` and ``-``), each value JSON as :func:`check_json_value` allows."""
    if not isinstance(metadata, dict):
        raise InvalidArgumentError("a metadata filter is an object of key = value pairs")
    if len(metadata) > MAX_FILTER_KEYS:
        raise InvalidArgumentError(f"a metadata filter names at most {MAX_FILTER_KEYS} keys; got {len(metadata)}",
                                   details={"keys": len(metadata), "max_keys": MAX_FILTER_KEYS})
    for key, value in metadata.items():
        if (not isinstance(key, str) or len(key) > MAX_FILTER_KEY_LENGTH
                or not key.replace("_", "").replace("-", "").isalnum()):
            raise InvalidArgumentError(f"metadata filter keys are plain names of at most {MAX_FILTER_KEY_LENGTH} "
                                       f"characters; got {str(key)[:MAX_FILTER_KEY_LENGTH + 1]!r}")
        check_json_value(value, f"the filter value of {key!r}")


def merge_people_by_parts(store: PeopleStore, source: int, target: int) -> None:
    """:meth:`PeopleStore.merge_people` written with the store's other methods (one
    transaction); an implementation may use it as is."""
    with store.transaction():
        src, dst = store.person(source), store.person(target)
        if src is None or dst is None or source == target:
            return
        dst_photos = {f.image_sha256 for f in store.photo_faces_of(target)}
        moves: list[PhotoAssignment] = []
        for face in store.photo_faces_of(source):
            if face.image_sha256 in dst_photos:  # one person appears once a photo
                moves.append(PhotoAssignment(face.id, None))
                store.mark_not_person(face.id, target)
            else:
                moves.append(PhotoAssignment(face.id, target, "user"))
        store.assign_photo_faces(moves)
        for face_id, person_id in store.not_person_marks():
            if person_id == source:
                store.mark_not_person(face_id, target)
        store.delete_person(source)  # it has no faces left; its marks go with it
        if src.subject_id is not None and dst.subject_id is None:  # the name goes with the faces
            store.link_person(target, src.subject_id)


def photo_face_template_key(image_sha256: str, face_index: int) -> str:
    """The ``image_sha256`` a template enrolled from a clustered photo face is stored under: a
    group photo gives several templates, so the key is the photo's hash and the face's index."""
    return hashlib.sha256(f"{image_sha256}#{face_index}".encode()).hexdigest()


def filter_value_json(value: dict[str, Any] | list[Any]) -> str:
    """An object or array in one canonical text (minified, keys sorted, non-ASCII as is): a
    filter's value and a stored value are equal when their canonical texts are, whatever
    order their keys were written in (JSON objects are unordered)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True)


def json_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 merge patch (SQLite's ``json_patch``): ``patch``'s keys win, ``None`` removes
    a key, objects merge recursively."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            current = out.get(key)
            out[key] = json_merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            out[key] = value
    return out


def metadata_json(metadata: dict[str, Any] | None) -> str:
    """A subject's metadata as the JSON text every backend stores; :class:`InvalidArgumentError`
    for what :func:`check_json_value` refuses or text over :data:`MAX_METADATA_BYTES`.

    Non-ASCII text is kept as is, not ``\\u``-escaped: SQLite's JSON paths match a key by its
    text as stored, so an escaped key could never be filtered on."""
    metadata = metadata or {}
    if not isinstance(metadata, dict):
        raise InvalidArgumentError("metadata is a JSON object")
    check_json_value(metadata, "metadata")
    try:
        text = json.dumps(metadata, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:  # a key that is not a string, say
        raise InvalidArgumentError(f"metadata is not JSON: {exc}") from None
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise InvalidArgumentError(f"metadata is at most {MAX_METADATA_BYTES:,} bytes as JSON",
                                   details={"bytes": len(text.encode()), "max_bytes": MAX_METADATA_BYTES})
    return text


# --- rows -> records (the SQL stores keep the same columns) ------------------------------------
def box_to_json(box: Box | None) -> str | None:
    """A box as the JSON text the SQL stores keep (``[left, top, right, bottom]``)."""
    return json.dumps(box.to_list()) if box is not None else None


def box_from_json(text: str | None) -> Box | None:
    return Box(*json.loads(text)) if text else None


def template_from_row(r: Any) -> Template:
    """A row ``(id, subject_id, box, detection_score, quality, image_sha256, source,
    has_thumbnail, created_at)``."""
    return Template(int(r[0]), int(r[1]), box_from_json(r[2]), r[3], r[4], r[5], r[6], bool(r[7]), r[8])


def photo_face_from_row(r: Any) -> PhotoFace:
    """A row ``(id, path, box, quality, usable, person_id, assigned_by, score, image_sha256)``."""
    return PhotoFace(int(r[0]), r[1], Box(*json.loads(r[2])), float(r[3]), bool(r[4]), r[5], r[6], r[7], r[8])


def person_from_row(r: Any) -> StoredPerson:
    """A row ``(id, subject_id, subject name)``."""
    return StoredPerson(int(r[0]), None if r[1] is None else int(r[1]), r[2])


def api_key_from_row(r: Any) -> ApiKey:
    """A row ``(key_id, name, scopes as JSON, created_at, last_used_at, revoked_at)``."""
    return ApiKey(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5])


def vectors_from_bytes(rows: Sequence[Sequence[Any]], dim: int) -> TemplateVectors:
    """Rows ``(id, subject id, embedding as little-endian float32 bytes)`` as arrays."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    subjects = np.array([r[1] for r in rows], dtype=np.int64)
    if rows:
        vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype="<f4").reshape(len(rows), -1).astype(np.float32)
    else:
        vectors = np.zeros((0, dim), dtype=np.float32)
    return TemplateVectors(ids, subjects, vectors)


def photo_face_table_from_rows(rows: Sequence[Sequence[Any]], dim: int) -> PhotoFaceTable:
    """Rows ``(id, image_sha256, person_id, usable, assigned_by, embedding bytes)`` in id order
    as a :class:`PhotoFaceTable` (``dim``: the width when there are none)."""
    dim = len(rows[0][5]) // 4 if rows else dim
    return PhotoFaceTable(
        ids=np.array([r[0] for r in rows], np.int64),
        image_sha256=[str(r[1]) for r in rows],
        person=np.array([r[2] if r[2] is not None else -1 for r in rows], np.int64),
        usable=np.array([bool(r[3]) for r in rows], np.bool_),
        assigned_by=[r[4] for r in rows],
        embeddings=(np.frombuffer(b"".join(bytes(r[5]) for r in rows), dtype="<f4").reshape(len(rows), dim)
                    .astype(np.float32) if rows else np.zeros((0, dim), np.float32)),
    )


def photo_face_template_from_row(r: Sequence[Any]) -> PhotoFaceTemplate:
    """A row ``(id, path, box, quality, usable, person_id, assigned_by, score, image_sha256,
    face_index, embedding bytes, thumbnail)``."""
    return PhotoFaceTemplate(photo_face_from_row(r), int(r[9]), np.frombuffer(bytes(r[10]), dtype="<f4").astype(np.float32),
                             None if r[11] is None else bytes(r[11]))


__all__ = [
    "CHANGE_LOG_KEEP",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_FILTER_KEYS",
    "MAX_FILTER_KEY_LENGTH",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "ApiKeyStore",
    "Change",
    "EncryptionInfo",
    "GalleryCounts",
    "GalleryStore",
    "NewFace",
    "NewPhotoFace",
    "PeopleStore",
    "PhotoAssignment",
    "PhotoFaceTable",
    "PhotoFaceTemplate",
    "SealedFace",
    "StoredApiKey",
    "StoredFace",
    "StoredPerson",
    "TemplateSnapshot",
    "TemplateStore",
    "TemplateVectors",
    "Transactional",
    "api_key_from_row",
    "box_from_json",
    "box_to_json",
    "check_filter_keys",
    "check_json_value",
    "check_subject_name",
    "filter_value_json",
    "is_unicode",
    "json_merge_patch",
    "metadata_json",
    "merge_people_by_parts",
    "person_from_row",
    "photo_face_from_row",
    "photo_face_table_from_rows",
    "photo_face_template_from_row",
    "photo_face_template_key",
    "template_from_row",
    "utc_now",
    "vectors_from_bytes",
]
