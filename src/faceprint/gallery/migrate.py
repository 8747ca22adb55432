"""Re-enrol a gallery with another embedding model, from the original photos.

A gallery's templates are vectors of one model (:meth:`GalleryStore.model`). Another model's
vectors cannot be compared with them, and no formula converts one into the other, so moving a
gallery to a better model means enrolling its faces again, from the photos they came from.
:func:`migrate_gallery` does that for a gallery file (``faceprint gallery migrate``):

1. **Find each photo** by its SHA-256, which every template and clustered photo face records:
   first at the path it was added from, if that file still has the same hash; else among the
   images under the ``images`` folders given (searched recursively, each file hashed once).
2. **Find the face again**: the photo goes through the new model's own pipeline (the detector
   and landmarks its embedder was calibrated with, :func:`faceprint.models.defaults.resolve`),
   and the detection that overlaps the stored box best is embedded -- if its IoU is at least
   :data:`MATCH_IOU` (:func:`match_boxes`).
3. **Write a new gallery** with the same subjects (names, metadata), each face under its
   subject with its image hash, the new box, detection score, quality score and a thumbnail
   cut from the new chip (when the old face had one), and the API keys as they were.

**Clustered photos** (:mod:`faceprint.clustering.people`) are re-embedded the same way: each
photo face keeps its person, how it was assigned and its "not this person" marks; a person
keeps its name (its subject); faces the new detector finds that the old one did not are added
unsorted. Kept as decided before: which faces are usable for clustering. Cleared: assignment
scores (similarities on the old model's scale). Not carried: a photo or person left with no
face (a later ``people add`` reads such a photo again).

**Nothing is lost silently.** A face whose photo is not found, cannot be read, or no longer
shows it (no detection at :data:`MATCH_IOU`) is a :class:`LostFace`. With any, the migration
refuses (:class:`MigrationIncompleteError`, nothing changed) unless ``drop_missing=True``,
which accepts the loss; a subject left with no face is kept and reported.

**The file** is replaced atomically: the new gallery is built in a temporary file next to the
original and moved over it (``os.replace``) only once complete; on any error, or Ctrl-C, the
original is untouched and the temporary file removed. Then the old file's bytes are
overwritten with zeros, as SQLite's ``secure_delete`` does for deleted rows: no copy of the
old templates is left behind unless ``keep_old`` names a file to keep it in. Stop other
processes that have the gallery open (``faceprint serve``) first: the migration refuses while
one has it open, and a change committed while it ran makes it stop with nothing changed.

Subject and face ids are renumbered in the new file (names are the stable handle), and its
records carry the time of the migration as their creation time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

from faceprint import models
from faceprint.batch import Prepared, prepare_many
from faceprint.errors import GalleryError, InvalidArgumentError
from faceprint.gallery.storage.base import (
    GalleryStore,
    NewFace,
    NewPhotoFace,
    PhotoAssignment,
    StoredApiKey,
    photo_face_template_key,
)
from faceprint.gallery.storage.locate import describe_location, is_database_url
from faceprint.gallery.storage.sqlite import SQLiteStore
from faceprint.gallery.thumbnails import thumbnail_jpeg
from faceprint.gallery.types import PhotoFace, Subject, Template
from faceprint.imageio import find_images
from faceprint.pipeline import Analyzer
from faceprint.quality import QualityPolicy, assess
from faceprint.types import Box, EmbeddedFace, ImageAnalysis

logger = logging.getLogger(__name__)

#: The least IoU between a stored box and a new detection for them to be the same face.
#: Measured between dlib's HOG and fr-detect on 353 photos (lfw_dev, compreface, dlib and
#: face_recognition examples, the shipped faces; bench/README.md, "Gallery migration"): the
#: same face overlaps at 0.44 or more (1st percentile 0.47, median 0.68: the detectors frame a
#: face differently), a neighbouring face at 0.15 at most. 0.3 sits between the two.
MATCH_IOU = 0.3

#: ``progress(stage, done, total)``, called as the work goes: stages "finding photos" (at
#: their stored paths), "searching folders" (hashing the ``images`` files), "re-enrolling"
#: (photos through the new pipeline) and "writing" (faces into the new gallery). An exception
#: it raises stops the migration, with nothing changed.
ProgressCallback = Callable[[str, int, int], None]

LossReason = Literal["photo_not_found", "unreadable", "face_not_found"]


@dataclass(frozen=True, slots=True)
class LostFace:
    """A face the new model could not be given, as the old gallery records it, and why."""

    kind: Literal["template", "photo_face"]
    face_id: int  # its id in the old gallery
    subject: str | None  # the template's subject, or the name of the photo face's person
    person_id: int | None  # the photo face's person (an id of the old gallery)
    image_sha256: str  # the photo's hash
    path: str | None  # where the photo was added from
    box: Box | None
    reason: LossReason
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "face_id": self.face_id, "subject": self.subject, "person_id": self.person_id,
            "image_sha256": self.image_sha256, "path": self.path, "box": self.box.to_list() if self.box else None,
            "reason": self.reason, "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What a migration did (or, in a :class:`MigrationIncompleteError`, would have done)."""

    path: str
    from_model: str | None
    to_model: str
    migrated: bool  # False: nothing to do, or refused
    message: str
    subjects: int = 0
    templates: int = 0
    photo_faces: int = 0  # clustered photo faces carried over
    new_photo_faces: int = 0  # faces only the new detector found, added unsorted
    people: int = 0
    api_keys: int = 0
    photos_read: int = 0
    lost: tuple[LostFace, ...] = ()
    emptied_subjects: tuple[str, ...] = ()  # subjects left with no face
    kept_old: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "from_model": self.from_model, "to_model": self.to_model, "migrated": self.migrated,
            "message": self.message, "subjects": self.subjects, "templates": self.templates,
            "photo_faces": self.photo_faces, "new_photo_faces": self.new_photo_faces, "people": self.people,
            "api_keys": self.api_keys, "photos_read": self.photos_read, "lost": [f.to_dict() for f in self.lost],
            "emptied_subjects": list(self.emptied_subjects), "kept_old": self.kept_old,
        }


class MigrationIncompleteError(GalleryError):
    """Faces would be lost and the loss was not accepted: nothing was changed. ``report``
    lists them (``details`` holds it as a dict)."""

    code = "migration_incomplete"

    def __init__(self, report: MigrationReport) -> None:
        super().__init__(report.message, details=report.to_dict())
        self.report = report


def match_boxes(old: Sequence[Box | None], new: Sequence[Box], min_iou: float = MATCH_IOU) -> list[int | None]:
    """For each old box, the index of the new box showing the same face, or ``None``: pairs are
    taken best IoU first, each new box at most once, none below ``min_iou``. An old face with
    no box recorded takes the new box when there is exactly one."""
    pairs = sorted(
        ((box.iou(candidate), i, j) for i, box in enumerate(old) if box is not None for j, candidate in enumerate(new)),
        key=lambda t: -t[0],
    )
    chosen: list[int | None] = [None] * len(old)
    taken: set[int] = set()
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if chosen[i] is None and j not in taken:
            chosen[i] = j
            taken.add(j)
    if len(new) == 1 and 0 not in taken:
        for i, box in enumerate(old):
            if box is None:
                chosen[i] = 0
                break
    return chosen


def target_analyzer(to: str) -> Analyzer:
    """The pipeline a gallery migrated to embedder ``to`` (a name like ``fr-feature``, or a
    model id like ``fr-feature@0.0.1``) runs: that embedder with the detector and landmarks of
    its calibration."""
    name = models.card_by_id(to, "embedder").name if "@" in to else to
    return Analyzer(embedder=name)


# --- the migration, store to store ------------------------------------------------------------
@dataclass
class _Photo:
    """One original photo and the faces to find again in it."""

    sha: str
    paths: list[str] = field(default_factory=list)  # where it was added from (tried first)
    templates: list[tuple[str, Template]] = field(default_factory=list)  # enrolled from it directly
    derived: list[tuple[str, Template, int]] = field(default_factory=list)  # enrolled from a photo face (its index)
    photo_faces: list[tuple[PhotoFace, int]] = field(default_factory=list)  # clustered faces, face_index
    found: str | None = None


class _Migration:
    """Read a store, find its photos, re-embed their faces, then write another store."""

    def __init__(self, source: GalleryStore, analyzer: Analyzer, quality: QualityPolicy) -> None:
        self.analyzer = analyzer
        self.quality = quality
        pinned = source.model()
        self.from_model = pinned[0] if pinned else None
        self.subjects: list[Subject] = sorted(source.subjects(), key=lambda s: s.id)
        self.people = {p.id: p for p in source.people()}
        self.marks = source.not_person_marks()
        self.keys: list[StoredApiKey] = [k for k in (source.api_key(r.key_id) for r in source.api_keys()) if k]
        self.photos: dict[str, _Photo] = {}
        indices = source.photo_face_indices()
        self.photo_face_order: dict[str, int] = {}  # photo -> its first photo face id (writing order)
        derived_keys: dict[str, tuple[str, int]] = {}
        # Thumbnails are kept only where they were (a gallery keeps none unless asked).
        self.photo_face_thumbnails: set[int] = set()
        for face in source.photo_faces():
            if source.photo_face_thumbnail(face.id) is not None:
                self.photo_face_thumbnails.add(face.id)
            photo = self._photo(face.image_sha256, face.path)
            photo.photo_faces.append((face, indices[face.id]))
            self.photo_face_order.setdefault(face.image_sha256, face.id)
            derived_keys[photo_face_template_key(face.image_sha256, indices[face.id])] = (face.image_sha256,
                                                                                         indices[face.id])
        self.template_count = 0
        for subject in self.subjects:
            for template in source.templates(subject.id):
                self.template_count += 1
                origin = derived_keys.get(template.image_sha256)
                if origin is not None:
                    self._photo(origin[0], template.source).derived.append((subject.name, template, origin[1]))
                else:
                    self._photo(template.image_sha256, template.source).templates.append((subject.name, template))
        # The results.
        self.new_templates: dict[int, tuple[str, NewFace]] = {}  # old template id -> (subject, face)
        self.new_photo_faces: dict[str, list[tuple[PhotoFace | None, NewPhotoFace]]] = {}  # None: found anew
        self.lost: list[LostFace] = []
        self.photos_read = 0

    def _photo(self, sha: str, path: str | None) -> _Photo:
        photo = self.photos.setdefault(sha, _Photo(sha))
        if path and path not in photo.paths:
            photo.paths.append(path)
        return photo

    # --- finding the photos ---------------------------------------------------------------
    def locate(self, folders: Sequence[str | os.PathLike[str]], progress: ProgressCallback | None) -> None:
        photos = list(self.photos.values())
        for done, photo in enumerate(photos, 1):
            photo.found = next((p for p in photo.paths if _file_sha256(p) == photo.sha), None)
            if progress:
                progress("finding photos", done, len(photos))
        missing = {p.sha: p for p in photos if p.found is None}
        if missing and folders:
            files = find_images(folders)
            logger.info("migration: %d photo(s) not at their stored paths; hashing %d file(s) under %s",
                        len(missing), len(files), ", ".join(os.fspath(f) for f in folders))
            for done, file in enumerate(files, 1):
                sha = _file_sha256(file)
                if sha in missing:
                    missing.pop(sha).found = os.path.abspath(file)
                if progress:
                    progress("searching folders", len(files) if not missing else done, len(files))
                if not missing:
                    break
        for photo in missing.values():
            where = ", ".join(photo.paths) or "no path recorded"
            self._lose(photo, "photo_not_found", f"no file with this photo's content ({where}"
                       f"{'' if folders else '; no image folders given'})")

    # --- re-embedding ---------------------------------------------------------------------
    def reembed(self, jobs: int | None, progress: ProgressCallback | None) -> None:
        found = [p for p in self.photos.values() if p.found is not None]
        if progress:
            progress("re-enrolling", 0, len(found))
        if not found:
            return
        results = prepare_many(self.analyzer, [p.found for p in found if p.found], embed=True, jobs=jobs, digest=True)
        try:
            for done, (photo, (prepared, analysis)) in enumerate(zip(found, results), 1):
                self._redo(photo, prepared, analysis)
                if progress:
                    progress("re-enrolling", done, len(found))
        finally:
            if isinstance(results, Generator):
                results.close()  # stops the workers when stopped early
        self.photos_read = len(found)

    def _redo(self, photo: _Photo, prepared: Prepared, analysis: ImageAnalysis) -> None:
        """Find the faces of one photo again among the new pipeline's detections."""
        if analysis.error is not None:
            self._lose(photo, "unreadable", f"{photo.found}: {analysis.error.message}")
            return
        if prepared.sha256 != photo.sha:
            self._lose(photo, "photo_not_found", f"{photo.found} changed while the migration ran")
            return
        faces = [f for f in analysis.faces if isinstance(f, EmbeddedFace)]
        if prepared.chips is None or len(faces) != len(analysis.faces):
            raise RuntimeError("the migration asked the batch pipeline for chips and embeddings")
        chips = prepared.chips
        boxes = [f.face.box for f in faces]

        def new_face(j: int, template: Template) -> NewFace:
            return NewFace(
                embedding=faces[j].embedding, image_sha256=template.image_sha256, box=boxes[j],
                detection_score=float(faces[j].face.score), quality=assess(faces[j], chips[j], self.quality).score,
                source=photo.found,  # where the photo is now
                thumbnail=thumbnail_jpeg(chips[j]) if template.has_thumbnail else None,
            )

        # Clustered faces: each one detection; what is left over is new, and unsorted.
        by_index: dict[int, int] = {}
        if photo.photo_faces:
            matches = match_boxes([face.box for face, _ in photo.photo_faces], boxes)
            carried: list[tuple[PhotoFace | None, NewPhotoFace]] = []
            # a face found anew gets a thumbnail when the photo's others had one
            thumbnails = any(face.id in self.photo_face_thumbnails for face, _ in photo.photo_faces)
            for (face, index), j in zip(photo.photo_faces, matches):
                if j is None:
                    self._lose_photo_face(face, photo, "face_not_found", self._not_found(face.box, boxes))
                    continue
                by_index[index] = j
                quality = assess(faces[j], chips[j], self.quality)
                carried.append((face, NewPhotoFace(
                    index, boxes[j], float(quality.score), face.usable, faces[j].embedding,
                    thumbnail_jpeg(chips[j]) if face.id in self.photo_face_thumbnails else None)))
            next_index = max(index for _, index in photo.photo_faces) + 1
            for j in sorted(set(range(len(faces))) - {m for m in matches if m is not None}):
                quality = assess(faces[j], chips[j], self.quality)
                usable = not quality.reasons and quality.score >= self.quality.min_score  # as a clustering pass judges
                carried.append((None, NewPhotoFace(next_index, boxes[j], float(quality.score), usable,
                                                   faces[j].embedding, thumbnail_jpeg(chips[j]) if thumbnails else None)))
                next_index += 1
            if carried:
                self.new_photo_faces[photo.sha] = carried
        for subject, template, index in photo.derived:
            if index in by_index:
                self.new_templates[template.id] = (subject, new_face(by_index[index], template))
            else:
                self._lose_template(subject, template, photo, "face_not_found", self._not_found(template.box, boxes))
        for subject, template in photo.templates:
            (j,) = match_boxes([template.box], boxes)
            if j is None:
                self._lose_template(subject, template, photo, "face_not_found", self._not_found(template.box, boxes))
            else:
                self.new_templates[template.id] = (subject, new_face(j, template))

    def _not_found(self, box: Box | None, boxes: Sequence[Box]) -> str:
        model = self.analyzer.detector_card.name
        if not boxes:
            return f"{model} finds no face in the photo"
        if box is None:
            return f"{model} finds {len(boxes)} faces and no box was recorded to tell which"
        best = max(box.iou(b) for b in boxes)
        return f"none of the {len(boxes)} face(s) {model} finds is at the recorded box (best IoU {best:.2f} < {MATCH_IOU})"

    # --- losses ---------------------------------------------------------------------------
    def _lose(self, photo: _Photo, reason: LossReason, message: str) -> None:
        for subject, template in photo.templates:
            self._lose_template(subject, template, photo, reason, message)
        for subject, template, _ in photo.derived:
            self._lose_template(subject, template, photo, reason, message)
        for face, _ in photo.photo_faces:
            self._lose_photo_face(face, photo, reason, message)

    def _lose_template(self, subject: str, template: Template, photo: _Photo, reason: LossReason, message: str) -> None:
        self.lost.append(LostFace("template", template.id, subject, None, photo.sha, template.source, template.box,
                                  reason, message))

    def _lose_photo_face(self, face: PhotoFace, photo: _Photo, reason: LossReason, message: str) -> None:
        person = self.people.get(face.person_id) if face.person_id is not None else None
        self.lost.append(LostFace("photo_face", face.id, person.name if person else None, face.person_id, photo.sha,
                                  face.path, face.box, reason, message))

    # --- the outcome ----------------------------------------------------------------------
    def carried_people(self) -> set[int]:
        return {face.person_id for faces in self.new_photo_faces.values() for face, _ in faces
                if face is not None and face.person_id is not None}

    def report(self, path: str, drop_missing: bool) -> MigrationReport:
        """What the migration does; :class:`MigrationIncompleteError` when it would lose faces
        and ``drop_missing`` is false."""
        kept = {name for name, _ in self.new_templates.values()}
        had = {self.subject_names[t.subject_id] for t in self._all_templates()}
        lost = tuple(sorted(self.lost, key=lambda f: (f.kind != "template", f.face_id)))
        report = MigrationReport(
            path=path, from_model=self.from_model, to_model=self.analyzer.model_id, migrated=True,
            message=f"migrated from {self.from_model} to {self.analyzer.model_id}",
            subjects=len(self.subjects), templates=len(self.new_templates),
            photo_faces=sum(1 for faces in self.new_photo_faces.values() for face, _ in faces if face is not None),
            new_photo_faces=sum(1 for faces in self.new_photo_faces.values() for face, _ in faces if face is None),
            people=len(self.carried_people()), api_keys=len(self.keys), photos_read=self.photos_read, lost=lost,
            emptied_subjects=tuple(sorted(had - kept)),
        )
        if lost and not drop_missing:
            raise MigrationIncompleteError(replace(
                report, migrated=False,
                message=f"{len(lost)} face(s) could not be re-enrolled with {self.analyzer.model_id} (photo not found, "
                        "unreadable, or the face not found in it); nothing was changed. Give the folders that hold the "
                        "photos (--images DIR), or accept the loss (--drop-missing)",
            ))
        if lost:
            logger.warning("migration: %d face(s) dropped, as asked", len(lost))
        return report

    @property
    def subject_names(self) -> dict[int, str]:
        return {s.id: s.name for s in self.subjects}

    def _all_templates(self) -> list[Template]:
        return [t for p in self.photos.values() for t in [t for _, t in p.templates] + [t for _, t, _ in p.derived]]

    def write(self, target: GalleryStore, progress: ProgressCallback | None) -> None:
        """Everything into ``target``, in one transaction."""
        templates = sorted(self.new_templates.items())
        photos = sorted(self.new_photo_faces.items(), key=lambda item: self.photo_face_order[item[0]])
        total, done = len(templates) + len(photos), 0
        people = {pid: self.people[pid] for pid in sorted(self.carried_people())}
        dim = next((int(face.embedding.shape[0]) for _, face in self.new_templates.values()),
                   next((int(f.embedding.shape[0]) for faces in self.new_photo_faces.values() for _, f in faces),
                        self.analyzer.embedder_card.embedding_dim or 0))
        with target.transaction():
            if dim:
                target.pin_model(self.analyzer.model_id, dim)
            subject_ids = {s.id: target.create_subject(s.name, s.metadata).id for s in self.subjects}
            for _, (subject, face) in templates:
                target.add_face(subject, None, face)
                done += 1
                if progress:
                    progress("writing", done, total)
            person_ids: dict[int, int] = {}
            for pid, person in people.items():
                person_ids[pid] = target.create_person()
                if person.subject_id is not None:
                    target.link_person(person_ids[pid], subject_ids[person.subject_id])
            for sha, faces in photos:
                photo = self.photos[sha]
                target.add_photo(photo.found or photo.paths[0], sha, [f for _, f in faces])
                done += 1
                if progress:
                    progress("writing", done, total)
            # The new photo faces' ids, by (photo, face index).
            indices = target.photo_face_indices()
            new_ids = {(f.image_sha256, indices[f.id]): f.id for f in target.photo_faces()}
            face_ids = {old.id: new_ids[(sha, new.face_index)] for sha, faces in photos for old, new in faces
                        if old is not None}
            target.assign_photo_faces([
                PhotoAssignment(face_ids[old.id], person_ids[old.person_id], old.assigned_by)
                for _, faces in photos for old, _ in faces if old is not None and old.person_id is not None
            ])
            for face_id, person_id in self.marks:
                if face_id in face_ids and person_id in person_ids:
                    target.mark_not_person(face_ids[face_id], person_ids[person_id])
            for key in self.keys:
                target.add_api_key(key.record, key.key_sha256)


def _nothing_to_do(source: GalleryStore, analyzer: Analyzer) -> MigrationReport | None:
    pinned = source.model()
    if pinned is None:
        message = ("the gallery holds no templates yet; there is nothing to re-enrol (its first enrolment pins the "
                   "model it runs)")
    elif pinned[0] == analyzer.model_id:
        message = f"the gallery already holds templates of {pinned[0]}; nothing to do"
    else:
        return None
    return MigrationReport(source.location, pinned[0] if pinned else None, analyzer.model_id, False, message)


def _check_folders(images: Sequence[str | os.PathLike[str]]) -> None:
    for folder in images:
        if not Path(folder).exists():
            raise InvalidArgumentError(f"{os.fspath(folder)} does not exist", details={"images": os.fspath(folder)})


def _plan(
    source: GalleryStore,
    analyzer: Analyzer,
    images: Sequence[str | os.PathLike[str]],
    drop_missing: bool,
    jobs: int | None,
    quality: QualityPolicy,
    progress: ProgressCallback | None,
) -> tuple[_Migration, MigrationReport]:
    """Read ``source``, find its photos and re-embed their faces: all but the writing."""
    migration = _Migration(source, analyzer, quality)
    logger.info("migrating %s from %s to %s: %d template(s), %d photo(s)", source.location, migration.from_model,
                analyzer.model_id, migration.template_count, len(migration.photos))
    migration.locate(images, progress)
    migration.reembed(jobs, progress)
    return migration, migration.report(source.location, drop_missing)


def migrate_store(
    source: GalleryStore,
    target: GalleryStore,
    *,
    to: str | Analyzer,
    images: Sequence[str | os.PathLike[str]] = (),
    drop_missing: bool = False,
    jobs: int | None = 1,
    quality: QualityPolicy = QualityPolicy(),
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Re-enrol what ``source`` holds into ``target`` (an empty store) with embedder ``to`` (a
    name, a model id, or an :class:`Analyzer` to run): the module docstring says how. Reads
    ``source`` only. :class:`MigrationIncompleteError` (``target`` untouched) when faces would
    be lost and ``drop_missing`` is false; a report with ``migrated=False`` (``target``
    untouched) when ``source`` already holds templates of that model, or none."""
    _check_folders(images)
    analyzer = to if isinstance(to, Analyzer) else target_analyzer(to)
    noop = _nothing_to_do(source, analyzer)
    if noop is not None:
        return noop
    migration, report = _plan(source, analyzer, images, drop_missing, jobs, quality, progress)
    migration.write(target, progress)
    return report


# --- the migration of a gallery file ----------------------------------------------------------
def migrate_gallery(
    path: str | os.PathLike[str],
    *,
    to: str | Analyzer,
    images: Sequence[str | os.PathLike[str]] = (),
    drop_missing: bool = False,
    keep_old: str | os.PathLike[str] | None = None,
    jobs: int | None = 1,
    quality: QualityPolicy = QualityPolicy(),
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Re-enrol the SQLite gallery at ``path`` with embedder ``to`` (``"fr-feature"``,
    ``"dlib-resnet34"``, a model id, or an :class:`Analyzer`), in place and atomically; see the
    module docstring. ``images``: folders (or files) where photos no longer at their stored
    paths may be found. ``drop_missing``: accept losing the faces that cannot be re-enrolled
    (else :class:`MigrationIncompleteError`, nothing changed). ``keep_old``: a new file to keep
    the old gallery in (by default no copy is left). ``jobs``: worker processes, as in
    :meth:`Analyzer.embed_many`. ``progress``: :data:`ProgressCallback`."""
    if is_database_url(path):
        raise GalleryError(f"migrating a PostgreSQL gallery is not supported ({describe_location(path)}): export it with "
                           "`faceprint gallery export`, or re-enrol the photos into a new database",
                           details={"path": describe_location(path)})
    path = Path(path)
    keep = Path(keep_old) if keep_old is not None else None
    if keep is not None and (keep.exists() or keep.resolve() == path.resolve()):
        raise InvalidArgumentError(f"{keep} already exists; name a new file to keep the old gallery in",
                                   details={"keep_old": str(keep)})
    _check_folders(images)
    analyzer = to if isinstance(to, Analyzer) else target_analyzer(to)
    source = SQLiteStore(path, create=False)
    if source.encryption() is not None:  # the new file would be written in plain text
        source.close()
        raise GalleryError(f"{path} is encrypted at rest, and migrating an encrypted gallery is not supported yet: "
                           "export it (--plaintext) into a new gallery, migrate that, then encrypt it",
                           details={"path": str(path)})
    noop = _nothing_to_do(source, analyzer)
    if noop is not None:
        source.close()
        logger.info("gallery %s: %s", path, noop.message)
        return replace(noop, path=str(path))
    tmp = path.with_name(f".{path.name}.migrating-{os.getpid()}")
    try:
        version = source.data_version()
        migration, report = _plan(source, analyzer, images, drop_missing, jobs, quality, progress)
        target = SQLiteStore(tmp)
        try:
            migration.write(target, progress)
        finally:
            target.close()
        if source.data_version() != version:
            raise GalleryError(f"{path} changed while the migration ran; nothing was changed: run it again",
                               details={"path": str(path)})
        source.close()
        _replace(path, tmp, keep)
    except BaseException:
        source.close()
        _remove(tmp)
        raise
    logger.info("gallery %s: migrated from %s to %s (%d template(s), %d photo face(s), %d lost)", path,
                report.from_model, report.to_model, report.templates, report.photo_faces, len(report.lost))
    return replace(report, path=str(path), kept_old=str(keep) if keep else None)


def _replace(path: Path, tmp: Path, keep: Path | None) -> None:
    """Put ``tmp`` in ``path``'s place; then zero the old file's bytes, or keep them in ``keep``."""
    # SQLite removes a file's -wal and -shm when its last connection closes: if they are
    # there, another process has the gallery open, and would go on using (and writing) the
    # old file, or mistake its write-ahead log for the new file's.
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if side.exists():
            raise GalleryError(f"{path} is open in another process (a running `faceprint serve`?): stop it and run "
                               "the migration again; nothing was changed", details={"path": str(path)})
    os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # as private as the original
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    if keep is not None:
        try:
            os.link(path, keep)
        except FileExistsError:
            raise
        except OSError:  # another file system, or no hard links there
            with open(path, "rb") as src, open(keep, "xb") as dst:
                shutil.copyfileobj(src, dst)
                os.fsync(dst.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return
    with open(path, "r+b") as old:
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        _zero(old)


def _zero(f: BinaryIO) -> None:
    """Overwrite an open file's bytes with zeros (it has been replaced: nobody reads it)."""
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    chunk = bytes(1 << 20)
    for start in range(0, size, len(chunk)):
        f.write(chunk[: min(len(chunk), size - start)])
    f.flush()
    os.fsync(f.fileno())


def _remove(tmp: Path) -> None:
    """Remove a temporary gallery and its SQLite side files, their bytes zeroed first."""
    for file in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        try:
            with open(file, "r+b") as f:
                _zero(f)
            file.unlink()
        except FileNotFoundError:
            continue


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_sha256(path: str) -> str | None:
    """The SHA-256 of a file's bytes (what enrolment records), or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


__all__ = [
    "MATCH_IOU",
    "LostFace",
    "MigrationIncompleteError",
    "MigrationReport",
    "ProgressCallback",
    "match_boxes",
    "migrate_gallery",
    "migrate_store",
    "target_analyzer",
]
