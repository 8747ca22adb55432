"""The gallery: enrol people, identify faces 1:N, manage and forget subjects.

The store (:mod:`faceprint.gallery.storage`: SQLite by default, PostgreSQL + pgvector, or any
:class:`~faceprint.gallery.storage.GalleryStore`) is the source of truth. A store that searches
its own templates (:class:`~faceprint.gallery.storage.SearchingStore`: PostgreSQL's pgvector
index) is asked directly, so every process sees every commit at once. Otherwise the vector index
is derived from the store in this process: built on open, and brought up to date from the
store's change log before every search, so it reflects every committed change -- this process's
and other processes' -- and nothing uncommitted.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import logging
import os
import threading
import zlib
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import models, settings
from faceprint.batch import Prepared, image_sha256, prepare, prepare_many
from faceprint.errors import (
    DecryptionError,
    DuplicateImageError,
    FaceprintError,
    InvalidArgumentError,
    MasterKeyInvalidError,
    ModelMismatchError,
    NoFaceError,
    SubjectNotFoundError,
    UnknownModelError,
)
from faceprint.gallery.crypto import SCHEME, MasterKey
from faceprint.gallery.index import VectorIndex, make_index
from faceprint.gallery.storage.base import (
    FaceMatches,
    GalleryStore,
    NewFace,
    SealedFace,
    SearchingStore,
    StoredFace,
    check_filter_keys,
)
from faceprint.gallery.storage.locate import GalleryLocation, open_store
from faceprint.gallery.storage.memory import MemoryStore
from faceprint.gallery.thumbnails import thumbnail_jpeg
from faceprint.gallery.types import (
    Candidate,
    Enrolled,
    EnrollmentReport,
    FaceIdentity,
    GalleryStats,
    Rejected,
    Subject,
    SubjectVerification,
    Template,
)
from faceprint.imageio import DEFAULT_LIMITS, IMAGE_SUFFIXES, ImageLimits, ImageSource
from faceprint.pipeline import Analyzer, resolve_threshold
from faceprint.quality import QualityPolicy, assess
from faceprint.types import Box, EmbeddedFace, Face, ImageAnalysis, Verification

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "faceprint-gallery"
#: 1: plain templates; 2: an encrypted gallery's templates still sealed under their subjects'
#: data keys (``"encryption"`` names the keyring; importable where that keyring is).
EXPORT_VERSION = 1
SEALED_EXPORT_VERSION = 2


def default_gallery_path() -> Path | str:
    """The gallery used when none is named: :func:`faceprint.settings.gallery_path`."""
    return settings.gallery_path()


#: A face in an enrolment photo is the subject when every other face is smaller than the
#: quality policy's minimum or at most this fraction of its side. Measured on lfw_dev's
#: enrolment photos (eval identify, first image of each identity): fr-detect finds part of a
#: bystander's face in 38 of them (dlib's HOG: 35, fewer small faces); this rule accepts 20,
#: whose other faces are 10-45 px against a subject of 50-75 px, and still refuses two people
#: side by side (two_people.jpg: 104 and 94 px).
DOMINANT_FACE_RATIO = 0.5


def is_dominant(faces: Sequence[Face | EmbeddedFace], min_face_size: float) -> bool:
    """Whether the first (largest) of ``faces`` is clearly the photo's subject (see
    :data:`DOMINANT_FACE_RATIO`)."""
    sizes = [f.face.size if isinstance(f, EmbeddedFace) else f.size for f in faces]
    return bool(sizes) and all(s < min_face_size or s <= DOMINANT_FACE_RATIO * sizes[0] for s in sizes[1:])


def analyzer_for(
    store: GalleryStore, *, detector: str | None = None, landmarks: str | None = None, limits: ImageLimits | None = None
) -> Analyzer:
    """The Analyzer a gallery runs when none is given: the embedder its templates were made with
    (so a dlib gallery keeps dlib after a better default is installed) with the detector and
    landmarks of that embedder's calibration unless named; an empty gallery gets the default
    models, which its first enrolment pins. :class:`ModelMismatchError` when the pinned model is
    not registered here (another version, or a user ONNX file not registered)."""
    pinned = store.model()
    embedder = None
    if pinned:
        try:
            embedder = models.card_by_id(pinned[0], "embedder").name
        except UnknownModelError as exc:
            raise ModelMismatchError(
                f"this gallery holds templates of {pinned[0]}, which is not available here: {exc.message}",
                details={"gallery_model": pinned[0]},
            ) from exc
    return Analyzer(detector, embedder, landmarks=landmarks, limits=limits or DEFAULT_LIMITS)


class Gallery:
    """A gallery of known people kept in a store, searched through a vector index.

    >>> gallery = Gallery.open("people.db")            # SQLite; or Gallery(store, analyzer)
    >>> gallery.enroll("Ada", ["ada1.jpg", "ada2.jpg"]).to_dict()
    >>> [f.identity for f in gallery.identify("group.jpg")]
    """

    def __init__(
        self,
        store: GalleryStore,
        analyzer: Analyzer | None = None,
        *,
        quality: QualityPolicy = QualityPolicy(),
        thumbnails: bool = False,
    ) -> None:
        self.store = store
        pinned = store.model()
        self.analyzer = analyzer or analyzer_for(store)
        #: Whether the models are the gallery's own choice (no analyzer given): an empty
        #: gallery may then take the model of the templates imported into it.
        self.own_models = analyzer is None
        self.quality = quality
        #: Whether enrolment keeps a JPEG of each face (and clustering one of each photo face).
        #: Off unless asked: a face picture is raw biometric data (``--keep-thumbnails``).
        self.thumbnails = thumbnails
        self._lock = threading.RLock()
        if pinned is not None and pinned[0] != self.analyzer.model_id:
            raise ModelMismatchError(
                f"this gallery holds templates of {pinned[0]}; it cannot be used with {self.analyzer.model_id} "
                f"(open it without naming a model, or re-enrol it: faceprint gallery migrate --to "
                f"{self.analyzer.embedder_card.name} --images DIR)",
                details={"gallery_model": pinned[0], "model": self.analyzer.model_id},
            )
        # The index and the id -> subject map change together, under self._lock.
        self._index: VectorIndex | None = None
        self._subject_of: dict[int, int] = {}
        self._seq = 0
        self._data_version: int | None = None

    @classmethod
    def open(
        cls,
        path: GalleryLocation | None = None,
        *,
        analyzer: Analyzer | None = None,
        create: bool = True,
        quality: QualityPolicy = QualityPolicy(),
        thumbnails: bool = False,
        detector: str | None = None,
        landmarks: str | None = None,
        limits: ImageLimits | None = None,
        master_key: MasterKey | None = None,
        keyring: str | os.PathLike[str] | None = None,
        encrypt: bool = False,
    ) -> Gallery:
        """Open (or create) the gallery at ``path`` (default: :func:`default_gallery_path`): a
        SQLite file, or a PostgreSQL database given by its URL (``postgresql://user@host/db``;
        the ``postgres`` extra). ``create=False``: :class:`GalleryNotFoundError` when there is
        none there, and nothing is created.

        Without an ``analyzer`` it runs the gallery's own model (:func:`analyzer_for`), with
        ``detector``, ``landmarks`` and image ``limits`` when given. ``thumbnails=True`` keeps a
        JPEG of each face enrolled (or clustered) through it; off by default, since a face
        picture is raw biometric data.

        An encrypted gallery (:mod:`faceprint.gallery.crypto`) needs its ``master_key`` (default:
        the key file of :func:`faceprint.settings.master_key_file`) and its ``keyring`` (default
        ``<path>.keys``; for PostgreSQL, in :func:`faceprint.settings.keyring_dir`): without them :class:`MasterKeyRequiredError` or
        :class:`MasterKeyInvalidError` is raised here, never later. ``encrypt=True`` creates an
        encrypted gallery, or encrypts an existing plain one in place."""
        store = open_store(path or default_gallery_path(), create=create, master_key=master_key, keyring=keyring,
                           encrypt=encrypt)
        try:
            store.unlock()
            chosen = analyzer or analyzer_for(store, detector=detector, landmarks=landmarks, limits=limits)
            gallery = cls(store, chosen, quality=quality, thumbnails=thumbnails)
            gallery.own_models = analyzer is None
            return gallery
        except BaseException:
            store.close()
            raise

    @classmethod
    def in_memory(
        cls, analyzer: Analyzer | None = None, *, quality: QualityPolicy = QualityPolicy(), thumbnails: bool = False
    ) -> Gallery:
        """A gallery kept in this process's memory only (:class:`MemoryStore`)."""
        return cls(MemoryStore(), analyzer, quality=quality, thumbnails=thumbnails)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model_id(self) -> str:
        pinned = self.store.model()
        return pinned[0] if pinned else self.analyzer.model_id

    # --- enrolment --------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Iterable[ImageSource],
        *,
        metadata: dict[str, Any] | None = None,
        jobs: int | None = 1,
    ) -> EnrollmentReport:
        """Enrol each image's single face under ``name`` (created if new).

        Partial success: an image with no face, several faces, a face too small or of low
        quality, an image already in the gallery, or an unreadable file is rejected with
        its reason, and the rest go on. Each accepted face is committed on its own, so what
        is reported enrolled is in the database even if the process dies right after.
        ``jobs``: worker processes for decoding and detection, as in :meth:`Analyzer.embed_many`.
        """
        return _report(self.enroll_many(((name, image) for image in images), metadata=metadata, jobs=jobs))

    def enroll_folders(
        self, root: str | os.PathLike[str], *, suffixes: Sequence[str] | None = None, jobs: int | None = 1
    ) -> EnrollmentReport:
        """Each sub-folder of ``root`` is a person named after it; its images are enrolled."""
        wanted = {s.lower() for s in (suffixes or IMAGE_SUFFIXES)}
        root = Path(root)
        if not root.is_dir():
            raise InvalidArgumentError(f"{root} is not a folder")
        items = [
            (person.name, str(f))
            for person in sorted(p for p in root.iterdir() if p.is_dir())
            for f in sorted(f for f in person.rglob("*") if f.is_file() and f.suffix.lower() in wanted)
        ]
        return _report(self.enroll_many(items, jobs=jobs))

    def enroll_many(
        self,
        items: Iterable[tuple[str, ImageSource]],
        *,
        metadata: dict[str, Any] | None = None,
        jobs: int | None = 1,
    ) -> Iterator[Enrolled | Rejected]:
        """Enrol ``(name, image)`` pairs, yielding each outcome in input order as it is
        committed (or rejected). Images are decoded, detected and aligned by the batch pipeline
        (``jobs`` worker processes; ``None``: one per core) and embedded in batches; each face
        is still committed in its own transaction. With ``jobs > 1`` call this from under
        ``if __name__ == "__main__":`` (the workers are spawned)."""
        names: deque[str] = deque()

        def sources() -> Iterator[ImageSource]:
            for name, image in items:
                names.append(name)
                yield image

        results = prepare_many(self.analyzer, sources(), embed=True, jobs=jobs, digest=True)
        try:
            for prepared, analysis in results:
                yield self.commit_enrollment(names.popleft(), prepared, analysis, metadata=metadata)
        finally:
            if isinstance(results, Generator):
                results.close()  # stops the workers when the caller stops early

    def analyze_for_enrollment(
        self, label: str, rgb: np.ndarray, *, sha256: str | None = None
    ) -> tuple[Prepared, ImageAnalysis]:
        """The models' part of :meth:`enroll` for one decoded image: its faces detected,
        aligned and embedded; nothing stored (give the result to :meth:`commit_enrollment`).
        ``label`` names the image in the outcome. ``sha256`` identifies the image for the
        duplicate check: pass that of its encoded bytes (:func:`faceprint.batch.image_sha256`),
        as :meth:`enroll` uses for bytes and files; default: that of the pixels. A problem with
        the image is the analysis's ``error``. The HTTP service decodes, and commits, outside
        its model lock and calls only this under it."""
        prepared = prepare(self.analyzer, label, rgb, self.analyzer.embedder.chip)
        prepared = replace(prepared, sha256=sha256 or image_sha256(rgb))
        if not prepared.faces or prepared.chips is None:
            return prepared, prepared.analysis()
        embedded = self.analyzer.embed_chips(prepared.faces, list(prepared.chips))
        return prepared, prepared.analysis(tuple(embedded))

    def commit_enrollment(
        self, name: str, prepared: Prepared, analysis: ImageAnalysis, *, metadata: dict[str, Any] | None = None
    ) -> Enrolled | Rejected:
        """The database's part of :meth:`enroll` for one analysed image (from
        :meth:`analyze_for_enrollment` or the batch pipeline): judged, and when it passes its
        face stored under ``name`` (created if new) in its own transaction; else rejected with
        its reason."""
        try:
            face_id = self._commit(name, prepared, analysis, metadata)
        except FaceprintError as exc:
            return Rejected(prepared.source, exc.code, exc.message)
        return Enrolled(prepared.source, name.strip(), face_id)

    def _commit(self, name: str, prepared: Prepared, analysis: ImageAnalysis, metadata: dict[str, Any] | None) -> int:
        """Judge one analysed enrolment image and, when it passes, store its face."""
        if analysis.error is not None:
            raise analysis.error
        if prepared.sha256 is None or prepared.chips is None:
            raise RuntimeError("enrolment asked the batch pipeline for digests and chips")
        if self.store.has_image(prepared.sha256):  # (the store checks again when it writes)
            raise DuplicateImageError("this exact image is already enrolled")
        faces = analysis.faces
        if not faces:
            raise NoFaceError("no face found in the image")
        if not is_dominant(faces, self.quality.min_face_size):
            raise _Reject("multiple_faces", f"{len(faces)} faces of similar size found; an enrolment image must show "
                          "one face (others may be in the background: under half its size)")
        embedded, chip = faces[0], prepared.chips[0]  # the largest
        if not isinstance(embedded, EmbeddedFace):
            raise RuntimeError("enrolment asked the batch pipeline for embeddings")
        quality = assess(embedded, chip, self.quality)
        if "small" in quality.reasons:
            raise _Reject("face_too_small", f"the face is {quality.size:.0f} px; at least {self.quality.min_face_size:.0f} px needed")
        if quality.score < self.quality.min_score or quality.reasons:
            raise _Reject("low_quality", f"face quality {quality.score:.2f} ({', '.join(quality.reasons) or 'low'}); "
                          f"at least {self.quality.min_score} needed")
        vector = embedded.embedding
        with self._lock:
            self.store.pin_model(self.analyzer.model_id, int(vector.shape[0]))
            _, face_id = self.store.add_face(
                name,
                metadata,
                NewFace(
                    embedding=vector,
                    image_sha256=prepared.sha256,
                    box=embedded.face.box,
                    detection_score=float(embedded.face.score),
                    quality=quality.score,
                    source=prepared.source,
                    thumbnail=thumbnail_jpeg(chip) if self.thumbnails else None,
                ),
            )
        return face_id

    def verify_subject(
        self,
        image: ImageSource,
        subject_id: int,
        *,
        far: float | None = None,
        threshold: float | None = None,
        face: int | None = None,
        label: str | None = None,
    ) -> SubjectVerification:
        """Is the face in ``image`` (the largest, or index ``face``) enrolled subject
        ``subject_id``? Compared with that subject's best-matching template, decided at the
        threshold for ``far`` (default 1e-3) or at ``threshold``."""
        subject = self.store.subject_by_id(subject_id)
        templates = self.store.templates(subject.id)
        if not templates:
            raise InvalidArgumentError(f"subject {subject.name!r} has no enrolled faces to compare with",
                                       details={"subject_id": subject.id})
        limit, far_value, source = resolve_threshold(self.analyzer.embedder_card, far=far, threshold=threshold)
        embedded, chosen = self.analyzer.pick_face(image, face, label)
        ids, _, vectors = self.store.read_templates([t.id for t in templates])
        if not len(ids):  # forgotten meanwhile
            raise SubjectNotFoundError(f"subject {subject.id} has no faces any more", details={"subject_id": subject.id})
        sims = vectors.astype(np.float64) @ embedded.embedding.astype(np.float64)
        best = int(sims.argmax())
        similarity = float(np.clip(sims[best], -1.0, 1.0))
        verification = Verification(similarity, limit, far_value, similarity >= limit, self.analyzer.model_id,
                                    (chosen, chosen), source)
        return SubjectVerification(verification, subject, int(ids[best]))

    # --- identification ---------------------------------------------------------------------
    def identify(
        self,
        image: ImageSource,
        *,
        top_k: int = 5,
        far: float | None = None,
        threshold: float | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[FaceIdentity]:
        """Who is each face in ``image``? Largest face first.

        ``identity`` is the best subject at or above the threshold for ``far`` (default
        1e-3; or an explicit ``threshold``), else ``None``. Two faces of one photo are never
        given the same subject: the higher similarity wins and the other face takes its next
        candidate above the threshold, or ``None``, with a ``note`` saying so. ``where``
        restricts the search to subjects whose metadata has those key = value pairs.
        """
        faces = self.analyzer.embed(image)
        return self.identify_faces(faces, top_k=top_k, far=far, threshold=threshold, where=where)

    def identify_faces(
        self,
        faces: Sequence[EmbeddedFace],
        *,
        top_k: int = 5,
        far: float | None = None,
        threshold: float | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[FaceIdentity]:
        if not 1 <= top_k <= 1000:
            raise InvalidArgumentError(f"top_k must be between 1 and 1000; got {top_k}")
        for f in faces:
            if f.model != self.model_id:
                raise ModelMismatchError(f"faces embedded with {f.model} cannot be searched in a gallery of {self.model_id}")
        limit, far_value, _ = resolve_threshold(self.analyzer.embedder_card, far=far, threshold=threshold)
        if not faces:
            return []
        queries = np.stack([f.embedding for f in faces]).astype(np.float32)
        candidates = self.search(queries, top_k=top_k, where=where)
        # Greedy one-to-one assignment over all (face, subject) pairs above the threshold.
        pairs = sorted(
            ((c.similarity, i, c) for i, cands in enumerate(candidates) for c in cands if c.similarity >= limit),
            key=lambda t: -t[0],
        )
        assigned: dict[int, Candidate] = {}
        taken: dict[int, int] = {}  # subject id -> face index
        for _sim, i, cand in pairs:
            if i in assigned or cand.subject_id in taken:
                continue
            assigned[i] = cand
            taken[cand.subject_id] = i
        results = []
        for i, (face, cands) in enumerate(zip(faces, candidates)):
            best = assigned.get(i)
            note = None
            if cands and cands[0].similarity >= limit and (best is None or best.subject_id != cands[0].subject_id):
                other = taken[cands[0].subject_id]  # (else this face would have it)
                note = (f"{cands[0].subject} matched face {other} of this photo better "
                        f"({assigned[other].similarity:.4f}); one person cannot be two faces")
            results.append(
                FaceIdentity(
                    box=face.face.box,
                    identity=best.subject if best else None,
                    similarity=best.similarity if best else (cands[0].similarity if cands else None),
                    threshold=limit,
                    far=far_value,
                    candidates=tuple(cands),
                    note=note,
                )
            )
        return results

    def search(self, queries: np.ndarray, *, top_k: int = 5, where: dict[str, Any] | None = None) -> list[list[Candidate]]:
        """Top-``top_k`` subjects for each query vector, ranked by their best template."""
        if where:
            check_filter_keys(where)  # refused alike whether or not the gallery holds anything yet
        if self._database_searches():
            return self._candidates(self._search_in_database(queries, top_k, where), top_k)
        with self._lock:
            index = self._synced_index()
            if len(index) == 0:
                return [[] for _ in range(len(queries))]
            allowed = self.store.face_ids_where(where) if where else None
            if allowed is not None and len(allowed) == 0:
                return [[] for _ in range(len(queries))]
            pool = len(index) if allowed is None else len(allowed)
            k = min(pool, _templates_for(top_k))
            ids, sims = index.search(queries, k, allowed)
            # Read the subjects now: once the lock is released, a forget in another thread
            # takes its templates out of the map.
            subject_of = {int(i): self._subject_of[int(i)] for i in ids.ravel() if i >= 0}
        subjects = np.array([[subject_of.get(int(i), -1) for i in row] for row in ids], dtype=np.int64).reshape(ids.shape)
        return self._candidates(FaceMatches(ids, sims, subjects), top_k)

    def _database_searches(self) -> bool:
        """Whether the store searches its own templates (then no index is kept here)."""
        return isinstance(self.store, SearchingStore) and self.store.searches_in_database

    def _search_in_database(self, queries: np.ndarray, top_k: int, where: dict[str, Any] | None) -> FaceMatches:
        assert isinstance(self.store, SearchingStore)
        # Several templates per subject: fetch enough templates to fill top_k subjects.
        return self.store.search_faces(np.ascontiguousarray(queries, dtype=np.float32), _templates_for(top_k), where)

    def _candidates(self, matches: FaceMatches, top_k: int) -> list[list[Candidate]]:
        """Each query's best ``top_k`` subjects (by their best template) from its nearest templates."""
        ids, sims, subjects = matches
        names = self.store.subject_names(sorted({int(s) for s in subjects.ravel() if s >= 0}))
        out: list[list[Candidate]] = []
        for row_ids, row_sims, row_subjects in zip(ids, sims, subjects):
            seen: dict[int, Candidate] = {}
            for fid, sim, sid in zip(row_ids, row_sims, row_subjects):
                if fid < 0:
                    break
                sid = int(sid)
                if sid not in seen and sid in names:  # (a subject forgotten meanwhile is left out)
                    seen[sid] = Candidate(names[sid], sid, float(sim), int(fid))
                    if len(seen) == top_k:
                        break
            out.append(list(seen.values()))
        return out

    # --- the index, kept equal to the database ----------------------------------------------
    def _sync_if_indexed(self) -> None:
        """After a change: bring this process's index up to date (none is kept when the
        database searches its own templates), so the removed entries leave memory now."""
        if not self._database_searches():
            self._synced_index()

    def _synced_index(self) -> VectorIndex:
        """The index, caught up with the store (call with self._lock held)."""
        store = self.store
        version = store.data_version()
        if self._index is not None and version == self._data_version:
            return self._index
        self._data_version = version
        if self._index is None:
            return self._rebuild()
        delta = store.changes_since(self._seq)
        if delta is None:
            logger.info("gallery %s: the change log no longer reaches back to %d; rebuilding the index",
                        store.location, self._seq)
            return self._rebuild()
        changes, seq = delta
        if changes:
            last_op: dict[int, str] = {}
            for ch in changes:
                last_op[ch.face_id] = ch.op
            gone = [fid for fid, op in last_op.items() if op == "del"]
            fresh = [fid for fid, op in last_op.items() if op == "add"]
            ids, subjects, vectors = store.read_templates(fresh)
            missing = set(fresh) - set(ids.tolist())  # added, then deleted after the log read
            drop = np.array(sorted(set(gone) | missing), dtype=np.int64)
            if len(drop):
                self._index.remove(drop)
                for fid in drop.tolist():
                    self._subject_of.pop(fid, None)
            if len(ids):
                self._index.add(ids, vectors)
                self._subject_of.update(zip(ids.tolist(), subjects.tolist()))
        self._seq = seq
        return self._index

    def _rebuild(self) -> VectorIndex:
        ids, subjects, vectors, seq = self.store.all_templates()
        dim = vectors.shape[1] if len(vectors) else (self.store.model() or ("", 0))[1] or (self.analyzer.embedder_card.embedding_dim or 128)
        index = make_index(dim, expected_size=len(ids))
        if len(ids):
            index.add(ids, vectors)
        logger.info("gallery %s: index built, %d templates (%s)", self.store.location, len(ids), type(index).__name__)
        self._index = index
        self._subject_of = dict(zip(ids.tolist(), subjects.tolist()))
        self._seq = seq
        return index

    def check_consistency(self) -> bool:
        """True when the index holds exactly the database's templates (always, when the
        database searches its own)."""
        if self._database_searches():
            return True
        with self._lock:
            index = self._synced_index()
            db_ids, _, _, _ = self.store.all_templates()
            return set(index.ids().tolist()) == set(db_ids.tolist())

    # --- management -------------------------------------------------------------------------
    def subjects(self, limit: int | None = None, offset: int = 0) -> list[Subject]:
        return self.store.subjects(limit, offset)

    def subject(self, name: str) -> Subject:
        return self.store.subject(name)

    def subject_by_id(self, subject_id: int) -> Subject:
        return self.store.subject_by_id(subject_id)

    def subject_count(self) -> int:
        return self.store.count()[0]

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None) -> Subject:
        """A new subject with no faces yet (``SubjectExistsError`` if the name is taken)."""
        return self.store.create_subject(name, metadata)

    def templates(self, name: str) -> list[Template]:
        return self.store.templates(self.store.subject(name).id)

    def templates_by_id(self, subject_id: int) -> list[Template]:
        return self.store.templates(subject_id)

    def template(self, face_id: int) -> Template:
        return self.store.template(face_id)

    def rename(self, old: str, new: str) -> Subject:
        return self.store.rename(old, new)

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject:
        return self.store.update_metadata(name, metadata)

    def merge(self, source: str, target: str) -> Subject:
        """Move ``source``'s faces to ``target`` and remove ``source``. A subject that is also
        a person clustered from photos (:mod:`faceprint.clustering.people`) takes its photo
        faces along: the store merges the two people, or links the person to ``target``."""
        with self._lock:
            return self.store.merge(source, target)

    def delete_face(self, face_id: int) -> None:
        with self._lock:
            self.store.delete_face(face_id)
            self._sync_if_indexed()

    def forget(self, name: str) -> int:
        """Forget a subject: its templates, thumbnails and index entries (and the person
        clustered under it, with their photo faces), in one transaction. Returns how many
        templates were removed. In an encrypted gallery the subject's data keys are destroyed
        first (crypto-shredding): copies of its templates anywhere else become unreadable."""
        with self._lock:
            removed = self.store.forget(name)
            self._sync_if_indexed()
        return len(removed)

    def thumbnail(self, face_id: int) -> bytes | None:
        return self.store.thumbnail(face_id)

    def stats(self) -> GalleryStats:
        subjects, faces, thumbs = self.store.count()
        if self._database_searches():
            index_name = "database"
        else:
            with self._lock:
                index_name = type(self._synced_index()).__name__
        return GalleryStats(self.store.location, self.model_id, subjects, faces, thumbs, index_name,
                            self.store.size_bytes())

    # --- portability ------------------------------------------------------------------------
    def export(self, path: str | os.PathLike[str], *, include_images: bool = False, plaintext: bool = False) -> int:
        """Write every subject and template to a portable JSON file (gzip if it ends in .gz),
        readable by its owner only. Thumbnails only with ``include_images``. Returns the
        number of templates written.

        An encrypted gallery's export stays encrypted unless ``plaintext``: each template is
        written as stored, sealed under its subject's data key (version 2), so the file can be
        imported only where the gallery's keyring and master key are, and forgetting a subject
        makes its templates in every earlier export unreadable too."""
        encryption = self.store.encryption()
        sealed = encryption is not None and not plaintext
        faces: Iterable[StoredFace | SealedFace] = self.store.export_sealed_faces() if sealed else self.store.export_faces()
        subjects: dict[str, dict[str, Any]] = {}
        count = 0
        for stored in faces:
            entry = subjects.setdefault(stored.subject, {"name": stored.subject, "metadata": stored.metadata, "faces": []})
            face: dict[str, Any] = {
                "quality": stored.quality,
                "box": stored.box.to_list() if stored.box else None,
                "detection_score": stored.detection_score,
                "image_sha256": stored.image_sha256,
                "source": stored.source,
                "created_at": stored.created_at,
            }
            if isinstance(stored, SealedFace):
                entry["key_id"] = stored.key_id
                face["embedding_sealed"] = _b64(stored.sealed_embedding)
                if include_images and stored.sealed_thumbnail is not None:
                    face["thumbnail_sealed"] = _b64(stored.sealed_thumbnail)
            else:
                face["embedding"] = _b64(np.ascontiguousarray(stored.embedding, dtype="<f4").tobytes())
                if include_images and stored.thumbnail is not None:
                    face["thumbnail_jpeg"] = _b64(stored.thumbnail)
            entry["faces"].append(face)
            count += 1
        for s in self.store.subjects():  # subjects without faces travel too
            subjects.setdefault(s.name, {"name": s.name, "metadata": s.metadata, "faces": []})
        pinned = self.store.model()
        doc: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": SEALED_EXPORT_VERSION if sealed else EXPORT_VERSION,
            "model": pinned[0] if pinned else self.analyzer.model_id,
            "embedding_dim": pinned[1] if pinned else self.analyzer.embedder_card.embedding_dim,
            "embedding_dtype": "float32-le-base64",
            "subjects": list(subjects.values()),
        }
        if sealed and encryption is not None:
            doc["encryption"] = {"scheme": encryption.scheme, "keyring_id": encryption.keyring_id}
        elif encryption is not None:
            logger.warning("gallery %s: exported %d template(s) in plain text to %s, as asked", self.store.location,
                           count, path)
        data = json.dumps(doc).encode()
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # biometric data: the owner's only
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.compress(data) if target.suffix == ".gz" else data)
        os.replace(tmp, target)
        return count

    def import_(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Add an exported gallery's templates. Subjects merge by name; images already
        enrolled (same SHA-256) are skipped. Refuses a file made with another model.

        An encrypted export (:meth:`export`) is decrypted with this gallery's keyring: it must
        be the gallery it came from (:class:`MasterKeyInvalidError` otherwise). Templates of a
        subject forgotten (or merged away) since are unreadable and counted as
        ``skipped_forgotten``."""
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt: the file's problem
                raise InvalidArgumentError(f"{path} is not a readable gzip file: {exc}") from None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise InvalidArgumentError(f"{path} is not a faceprint gallery export: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
            raise InvalidArgumentError(f"{path} is not a faceprint gallery export")
        if not isinstance(doc.get("model"), str) or not isinstance(doc.get("subjects"), list):
            raise InvalidArgumentError(f"{path} is not a complete faceprint gallery export (no model or subjects)")
        sealed = doc.get("encryption")
        if sealed is not None:
            self._check_sealed_export(path, sealed)
        if doc.get("model") != self.model_id and self.own_models and self.store.model() is None:
            # An empty gallery has no model yet: it takes the file's, if this faceprint has it.
            with contextlib.suppress(UnknownModelError):
                card = models.card_by_id(str(doc.get("model")), "embedder")
                self.analyzer = Analyzer(embedder=card.name, limits=self.analyzer.limits)
        if doc.get("model") != self.model_id:
            raise ModelMismatchError(
                f"{path} holds templates of {doc.get('model')}; this gallery uses {self.model_id}",
                details={"file_model": doc.get("model"), "gallery_model": self.model_id},
            )
        try:
            dim = int(doc["embedding_dim"])
            entries = [(subject, face) for subject in doc["subjects"] for face in subject["faces"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"{path} is not a complete faceprint gallery export (missing or bad {exc})") from None
        # Every entry is read and checked before anything is written; then all are written in
        # one transaction, so a bad entry or a crash never leaves a half-imported gallery.
        to_add: list[tuple[str, dict[str, Any] | None, NewFace]] = []
        skipped = forgotten = 0
        seen: set[str] = set()
        for n, (subject, face) in enumerate(entries):
            try:
                sha = str(face["image_sha256"])
                if sha in seen or self.store.has_image(sha):
                    skipped += 1
                    continue
                if sealed is not None:
                    try:
                        vector, thumbnail = self._unseal_exported(subject, face)
                    except DecryptionError as exc:
                        if exc.details.get("reason") != "data_key_destroyed":
                            raise
                        forgotten += 1
                        continue
                else:
                    vector = np.frombuffer(base64.b64decode(face["embedding"], validate=True), dtype="<f4")
                    thumb = face.get("thumbnail_jpeg")
                    thumbnail = base64.b64decode(thumb, validate=True) if thumb else None
                if vector.shape != (dim,) or not np.isfinite(vector).all():
                    raise InvalidArgumentError(f"a template of {subject['name']!r} has {vector.shape[0]} values, not {dim} "
                                               "finite ones")
                new_face = NewFace(
                    embedding=vector,
                    image_sha256=sha,
                    box=Box(*face["box"]) if face.get("box") else None,
                    detection_score=face.get("detection_score"),
                    quality=face.get("quality"),
                    source=face.get("source"),
                    thumbnail=thumbnail,
                )
                to_add.append((str(subject["name"]), subject.get("metadata") or None, new_face))
                seen.add(sha)
            except FaceprintError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidArgumentError(f"{path}: template {n} is malformed ({type(exc).__name__}: {exc})",
                                           details={"entry": n}) from None
        with self._lock, self.store.transaction():
            self.store.pin_model(doc["model"], dim)
            for name, metadata, new_face in to_add:
                self.store.add_face(name, metadata, new_face)
        added = len(to_add)
        counts = {"added": added, "skipped_duplicates": skipped}
        if sealed is not None:
            counts["skipped_forgotten"] = forgotten
        return counts

    def _check_sealed_export(self, path: str | os.PathLike[str], sealed: Any) -> None:
        """An encrypted export can be opened only with the keyring of the gallery it came from."""
        mine = self.store.encryption()
        theirs = sealed.get("keyring_id") if isinstance(sealed, dict) else None
        if not isinstance(sealed, dict) or sealed.get("scheme") != SCHEME:
            raise InvalidArgumentError(f"{path} is encrypted with a scheme this faceprint does not know: "
                                       f"{sealed.get('scheme') if isinstance(sealed, dict) else sealed!r}")
        if mine is None or mine.keyring_id != theirs:
            raise MasterKeyInvalidError(
                f"{path} is an encrypted export of another gallery (keyring {theirs}): import it into the gallery it "
                "came from, or export it there with --plaintext", details={"keyring_id": theirs},
            )

    def _unseal_exported(self, subject: dict[str, Any], face: dict[str, Any]) -> tuple[np.ndarray, bytes | None]:
        """A sealed export entry's embedding and thumbnail, decrypted with this gallery's keys."""
        try:
            thumb = face.get("thumbnail_sealed")
            entry = SealedFace(
                subject["name"], subject.get("metadata") or {}, str(subject["key_id"]),
                base64.b64decode(face["embedding_sealed"], validate=True),
                base64.b64decode(thumb, validate=True) if thumb else None,
                face.get("quality"), None, face.get("detection_score"), face["image_sha256"], face.get("source"),
                str(face.get("created_at") or ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"an encrypted template of {subject.get('name')!r} is malformed: {exc}") from None
        stored = self.store.unseal_face(entry)
        return stored.embedding, stored.thumbnail


def _templates_for(top_k: int) -> int:
    """How many nearest templates to fetch to fill ``top_k`` subjects (several templates per subject)."""
    return max(top_k * 8, 64)


class _Reject(FaceprintError):
    """An enrolment rejection with its own reason code (multiple_faces, low_quality, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _report(outcomes: Iterable[Enrolled | Rejected]) -> EnrollmentReport:
    enrolled: list[Enrolled] = []
    rejected: list[Rejected] = []
    for outcome in outcomes:
        if isinstance(outcome, Enrolled):
            enrolled.append(outcome)
        else:
            rejected.append(outcome)
    return EnrollmentReport(tuple(enrolled), tuple(rejected))
