"""People from photos: incremental clustering of unknown faces, and a person's corrections.

Kept in the gallery's own store (:class:`~faceprint.gallery.storage.PeopleStore`), so the
CLI, the service and the web page see the same people. A person is a group of faces;
naming it links it to a gallery subject (created if new) and enrols its faces as that
subject's templates, so ``identify`` knows them from then on.

One pass (:meth:`People.add_photos`, or :meth:`People.tidy` on its own):

1. Every face of every new photo is detected, judged and embedded by the batch pipeline and
   stored. A face below the quality floor (too small, blurred, turned away: see
   :mod:`faceprint.quality`) is kept but never clustered: it stays *unsorted*.
2. **Assign**: each usable unsorted face joins the existing person it matches confidently:
   its score for a person is the mean of its top-3 similarities to that person's faces (the
   best alone chains people through one odd photo), and it must reach the clustering
   threshold and beat the runner-up by :data:`ASSIGN_MARGIN`. A person who already has a
   face of the same photo, or whom the face was marked "not this person" for, is never a
   candidate; two faces of one photo wanting the same person are resolved by score.
3. **Form**: the faces still unsorted (new or from earlier passes) are clustered with the
   default algorithm (:data:`~faceprint.clustering.algorithms.DEFAULT_ALGORITHM`, chosen by
   ``bench/cluster.py``); a cluster gives a new person only if it holds at least
   ``min_new_person`` faces that are all mutually above the threshold (its core, grown
   greedily); the rest of it stays unsorted, and step 2 runs once more so that they can join
   the new person on their own merit. Existing people are never re-clustered, so names and
   corrections survive every pass.

Corrections: :meth:`People.name`, :meth:`People.merge`, :meth:`People.move` (a face into a
person, or out: "not this person", remembered), :meth:`People.reject`, :meth:`People.forget`.
:meth:`People.suggest` lists the questions worth a person's time first.

Naming someone: :meth:`People.lookup` is the one resolver behind every ``people`` command: ``#ID``
is a clustered person, anything else an exact subject name; a name not found is a
:class:`~faceprint.errors.SubjectNotFoundError` offering the close names ("did you mean ...").
"""

from __future__ import annotations

import difflib
import io
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from faceprint.batch import prepare_many
from faceprint.clustering.algorithms import DEFAULT_ALGORITHM, cluster, threshold_for_far
from faceprint.errors import DuplicateImageError, InvalidArgumentError, InvalidImageError, SubjectNotFoundError
from faceprint.gallery import Gallery, thumbnail_jpeg
from faceprint.gallery.storage import GalleryStore, NewFace, NewPhotoFace, PeopleStore, PhotoAssignment
from faceprint.gallery.storage.base import photo_face_template_key
from faceprint.gallery.thumbnails import crop_face, placeholder, read_photo
from faceprint.gallery.types import PhotoFace, Subject
from faceprint.imageio import ImageSource
from faceprint.quality import assess
from faceprint.types import EmbeddedFace

if TYPE_CHECKING:
    from PIL import ImageFont

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
RGB = npt.NDArray[np.uint8]

#: Side in pixels of a face picture :meth:`People.thumbnail` cuts from a photo (as a kept chip).
THUMBNAIL_SIZE = 150
#: A contact sheet's title band, and the caption band under each face (pixels), and their text.
SHEET_HEADER = 24
TILE_CAPTION = 16
LABEL_FONT_SIZE = 12
LABEL_COLOUR = (235, 235, 235)

#: A new person needs at least this many *mutually* close faces: every pair above the
#: clustering threshold (bench/cluster.py, lfw_dev at FAR 3e-5: such cliques are one person
#: 94.7% of the time with 2 faces, 98.6% with 3, 98.8% with 4, 100% from 5; Chinese Whispers
#: clusters as such do not get purer with size: 95% at 2, 93% at 3, 89% at 6-10).
MIN_NEW_PERSON = 3
#: An automatic assignment must beat the second-best person by this much (cosine).
ASSIGN_MARGIN = 0.005
#: The clustering FAR scales with the collection: a graph over N faces gives each face about
#: FAR x N false neighbours, through which Chinese Whispers chains people together. The best
#: FAR measured on lfw_dev (4,027 faces, bench/cluster.py) was 3e-5, i.e. FAR x N = 0.12; on
#: synthetic lfw-like data 3e-5 held at 12k faces while 3e-4 (FAR x N = 3.6) fell apart.
#: So FAR = FALSE_NEIGHBOURS / N, kept between the calibrated 1e-5 and verification's 1e-3
#: (a small collection of 50 faces would otherwise get a FAR looser than any 1:1 decision).
FALSE_NEIGHBOURS = 0.12
FAR_RANGE = (1e-5, 1e-3)
#: Automatic assignments scoring at least the threshold at FAR / ACCEPT_FACTOR are accepted
#: without a question; questions are asked about scores down to the threshold at FAR x ASK_FACTOR.
ACCEPT_FACTOR = 10.0
ASK_FACTOR = 30.0
#: Close names offered when a name is not found (difflib's ratio, case ignored).
DID_YOU_MEAN_CUTOFF = 0.6
DID_YOU_MEAN_COUNT = 3

#: ``progress(stage, done, total)``, called as a pass goes: "finding faces" (photos through the
#: batch pipeline, ``total`` the new photos), then "clustering" (0 of 1, then 1 of 1). An
#: exception it raises stops the pass; the photos added by then stay added.
PassProgress = Callable[[str, int, int], None]

@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str | None
    faces: tuple[PhotoFace, ...]

    @property
    def label(self) -> str:
        return self.name or f"#{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {"person_id": self.id, "name": self.name, "label": self.label,
                "faces": [f.to_dict() for f in self.faces]}


@dataclass(frozen=True, slots=True)
class Who:
    """Whom a ``#ID`` or a name refers to (:meth:`People.lookup`): an enrolled subject, a
    clustered person, or both (a named person is linked to the subject of its name)."""

    ref: str
    subject: Subject | None
    person: Person | None

    @property
    def label(self) -> str:
        """The name, else ``#ID``."""
        if self.subject is not None:
            return self.subject.name
        return self.person.label if self.person is not None else self.ref


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did; ``people`` and ``unsorted`` are the state after it.

    ``assigned``: faces that joined people who existed before the pass (``people_before`` of
    them); ``new_people`` people were formed, holding ``new_people_faces`` faces."""

    people: tuple[Person, ...]
    unsorted: tuple[PhotoFace, ...]
    photos_added: int
    faces_added: int
    assigned: int
    new_people: int
    errors: tuple[dict[str, Any], ...] = ()
    people_before: int = 0
    new_people_faces: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "people": [p.to_dict() for p in self.people],
            "unsorted": [f.to_dict() for f in self.unsorted],
            "photos_added": self.photos_added, "faces_added": self.faces_added,
            "assigned": self.assigned, "new_people": self.new_people, "new_people_faces": self.new_people_faces,
            "people_before": self.people_before, "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class Question:
    """Something only a person can settle. ``kind``: ``is_this`` (is face ``face_id`` person
    ``person_id``?) or ``same_person`` (are ``person_id`` and ``other_id`` one person?)."""

    kind: str
    person_id: int
    score: float
    impact: int  # faces the answer settles
    priority: float  # impact x closeness of the score to the threshold: higher is asked first
    face_id: int | None = None
    other_id: int | None = None
    current_id: int | None = None  # ``is_this``: the person the face is in now (never ``person_id``)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "face_id": self.face_id, "person_id": self.person_id,
                "other_id": self.other_id, "current_id": self.current_id, "score": round(self.score, 5),
                "impact": self.impact, "priority": round(self.priority, 4)}


@dataclass(frozen=True, slots=True)
class _TidyOutcome:
    assigned: int  # faces that joined people who existed before
    new_people: int
    people_before: int
    new_people_faces: int


@dataclass(frozen=True, slots=True)
class _Collection:
    """Every photo face as arrays, a row each (what a pass and the questions work on)."""

    ids: IntArray  # photo face ids
    photo: IntArray  # a small int per photo (faces of one photo share it)
    person: IntArray  # person id, -1 while unsorted (updated as a pass assigns)
    usable: npt.NDArray[np.bool_]
    assigned_by: list[str | None]
    emb: FloatArray
    banned: dict[int, set[int]]  # row -> the people it was marked "not"

    @classmethod
    def read(cls, store: PeopleStore) -> _Collection | None:
        table = store.photo_face_table()
        if not len(table.ids):
            return None
        row_of = {int(f): i for i, f in enumerate(table.ids)}
        banned: dict[int, set[int]] = defaultdict(set)
        for fid, pid in store.not_person_marks():
            if fid in row_of:
                banned[row_of[fid]].add(pid)
        _, photo = np.unique(np.array(table.image_sha256), return_inverse=True)
        return cls(
            ids=table.ids,
            photo=photo.reshape(-1).astype(np.int64),
            person=table.person.copy(),
            usable=table.usable,
            assigned_by=table.assigned_by,
            emb=table.embeddings,
            banned=dict(banned),
        )


class People:
    """The people found in a gallery's photos. ``People(Gallery.open(path))``."""

    def __init__(
        self,
        gallery: Gallery,
        *,
        algorithm: str = DEFAULT_ALGORITHM,
        far: float | None = None,
        min_new_person: int = MIN_NEW_PERSON,
    ) -> None:
        self.gallery = gallery
        self.store: GalleryStore = gallery.store  # the same store and transactions as the gallery
        self.algorithm = algorithm
        self.fixed_far = far  # None: scaled with the collection (FALSE_NEIGHBOURS)
        self.min_new_person = int(min_new_person)
        if self.min_new_person < 2:
            raise InvalidArgumentError("min_new_person must be at least 2")
        self._calibrate()

    def _calibrate(self) -> None:
        """Thresholds for the collection as it is now (see FALSE_NEIGHBOURS)."""
        n = self.store.usable_photo_face_count()
        lo, hi = FAR_RANGE
        far = self.fixed_far if self.fixed_far is not None else float(np.clip(FALSE_NEIGHBOURS / max(n, 1), lo, hi))
        model = self.gallery.analyzer.embedder_card.name
        self.far = far
        self.threshold = threshold_for_far(far, model)
        self.accept_threshold = threshold_for_far(max(lo, far / ACCEPT_FACTOR), model)
        self.ask_threshold = threshold_for_far(min(1e-1, far * ASK_FACTOR), model)
        logger.debug("people: %d usable faces, FAR %.2g, threshold %.4f", n, far, self.threshold)

    # --- reading ----------------------------------------------------------------------------
    def people(self) -> list[Person]:
        faces: dict[int, list[PhotoFace]] = defaultdict(list)
        for f in self.store.photo_faces():
            if f.person_id is not None:
                faces[f.person_id].append(f)
        people = [Person(p.id, p.name, tuple(faces.get(p.id, ()))) for p in self.store.people()]
        return sorted(people, key=lambda p: (-len(p.faces), p.id))

    def person(self, ref: int | str) -> Person:
        pid = self._resolve(ref)
        return Person(pid, self._name_of(pid), tuple(self.store.photo_faces_of(pid)))

    def unsorted(self) -> list[PhotoFace]:
        return [f for f in self.store.photo_faces() if f.person_id is None]

    def thumbnail(self, face_id: int) -> bytes | None:
        """A JPEG of photo face ``face_id``: the one kept when it was added (only with the
        gallery's ``thumbnails``), else the face cut from its photo now; ``None`` when neither
        is there (the photo is gone or changed). :class:`TemplateNotFoundError` for no such face."""
        kept = self.store.photo_face_thumbnail(face_id)
        if kept is not None:
            return kept
        face = self.face(face_id)
        rgb = self._photo(face)
        return thumbnail_jpeg(crop_face(rgb, face.box, THUMBNAIL_SIZE)) if rgb is not None else None

    def face_picture(self, face_id: int) -> bytes:
        """:meth:`thumbnail`, or :class:`InvalidImageError` saying why there is none (no
        picture was kept and the photo is gone or changed since)."""
        picture = self.thumbnail(face_id)
        if picture is None:
            face = self.face(face_id)
            raise InvalidImageError(
                f"no picture of face {face_id}: none was kept (--keep-thumbnails) and its photo {face.path} "
                "is gone, unreadable or changed since", details={"face_id": face_id, "path": face.path})
        return picture

    def _photo(self, face: PhotoFace) -> RGB | None:
        """The photo of ``face`` read again (``None``: gone, unreadable or changed)."""
        return read_photo(face.path, face.image_sha256 or None, self.gallery.analyzer.limits)

    def _kept_picture(self, face_id: int, size: int) -> RGB | None:
        """The thumbnail kept with a photo face, as a ``size`` px square (``None``: none kept)."""
        from PIL import Image

        kept = self.store.photo_face_thumbnail(face_id)
        if kept is None:
            return None
        with Image.open(io.BytesIO(kept)) as img:
            resized: RGB = np.asarray(img.convert("RGB").resize((size, size)), dtype=np.uint8)
        return resized

    def face(self, face_id: int) -> PhotoFace:
        """One photo face (:class:`TemplateNotFoundError` when there is none of that id)."""
        return self.store.photo_face(int(face_id))

    def _name_of(self, pid: int) -> str | None:
        person = self.store.person(pid)
        return person.name if person is not None else None

    def _resolve(self, ref: int | str) -> int:
        """A person id from ``12``, ``"#12"`` or a name."""
        if isinstance(ref, str) and is_person_id(ref):
            ref = int(ref[1:])
        if isinstance(ref, int):
            if self.store.person(ref) is not None:
                return ref
            raise SubjectNotFoundError(f"no person #{ref}", details={"person": ref})
        person = self.store.person_named(ref)
        if person is None:
            named = [p.name for p in self.store.people() if p.name is not None]
            raise not_found(ref, named, "among the clustered people")
        return person.id

    def lookup(self, ref: str) -> Who:
        """Whom ``ref`` names, as every ``people`` command reads it: ``#12`` is clustered person
        12 (and its subject, if named); anything else is the enrolled subject of exactly that
        name (and the person clustered under it, if any). :class:`SubjectNotFoundError` when
        there is none, its message and ``details["did_you_mean"]`` offering the close names."""
        if is_person_id(ref):
            pid = int(ref[1:])
            stored = self.store.person(pid)
            if stored is None:
                raise SubjectNotFoundError(f"no person #{pid}", details={"person": ref, "did_you_mean": []})
            subject = self.gallery.subject(stored.name) if stored.name is not None else None
            return Who(ref, subject, self.person(pid))
        try:
            subject = self.gallery.subject(ref)
        except SubjectNotFoundError:
            raise not_found(ref, [s.name for s in self.gallery.subjects()]) from None
        linked = self.store.person_named(subject.name)
        return Who(ref, subject, self.person(linked.id) if linked is not None else None)

    def _subject_exists(self, name: str) -> bool:
        try:
            self.gallery.subject(name)
        except SubjectNotFoundError:
            return False
        return True

    # --- a pass -----------------------------------------------------------------------------
    def add_photos(self, images: Iterable[ImageSource], *, jobs: int | None = 1,
                   progress: PassProgress | None = None) -> PassReport:
        """Add the faces of new photos, then assign and form people (module docstring). A path
        added before is not read again, and a photo already added under another path (same
        content) is skipped. Bad files are reported, the rest go on. ``progress`` is told how
        far the pass is (:data:`PassProgress`)."""
        analyzer, policy = self.gallery.analyzer, self.gallery.quality
        known = self.store.photo_paths()
        new = [i for i in images if not (isinstance(i, (str, os.PathLike)) and os.fspath(i) in known)]
        errors: list[dict[str, Any]] = []
        photos = faces_added = 0
        if progress:
            progress("finding faces", 0, len(new))
        for done, (prepared, analysis) in enumerate(
                prepare_many(analyzer, new, embed=True, jobs=jobs, digest=True), start=1):
            if progress:
                progress("finding faces", done, len(new))
            if analysis.error is not None:
                errors.append({"path": prepared.source, **analysis.error.to_dict()})
                continue
            sha, chips = prepared.sha256, prepared.chips
            if sha is None:
                raise RuntimeError("a pass asked the batch pipeline for digests")
            if self.store.has_photo(sha):
                continue  # seen before (by content), faces or not
            faces: list[NewPhotoFace] = []
            for i, embedded in enumerate(analysis.faces):
                if chips is None or not isinstance(embedded, EmbeddedFace):
                    raise RuntimeError("a pass asked the batch pipeline for chips and embeddings")
                q = assess(embedded, chips[i], policy)
                usable = not q.reasons and q.score >= policy.min_score
                faces.append(NewPhotoFace(i, embedded.face.box, float(q.score), usable,
                                          np.asarray(embedded.embedding, np.float32),
                                          thumbnail_jpeg(chips[i]) if self.gallery.thumbnails else None))
            if faces:
                self.store.pin_model(analyzer.model_id, int(faces[0].embedding.shape[0]))
            if not self.store.add_photo(prepared.source, sha, faces):  # one photo, one transaction
                continue  # added meanwhile by another process
            photos += 1
            faces_added += len(faces)
        if progress:
            progress("clustering", 0, 1)
        outcome = self._tidy()
        if progress:
            progress("clustering", 1, 1)
        return PassReport(tuple(self.people()), tuple(self.unsorted()), photos, faces_added, outcome.assigned,
                          outcome.new_people, tuple(errors), outcome.people_before, outcome.new_people_faces)

    def tidy(self) -> tuple[int, int]:
        """Assign unsorted faces to existing people, then form new people from the rest.
        Returns (faces that joined people who existed before, new people formed)."""
        outcome = self._tidy()
        return outcome.assigned, outcome.new_people

    def _tidy(self) -> _TidyOutcome:
        self._calibrate()
        with self.store.transaction():  # read and decided as one: no other pass in between
            c = _Collection.read(self.store)
            if c is None:
                return _TidyOutcome(0, 0, 0, 0)
            before = {int(p) for p in np.unique(c.person[c.person >= 0])}
            # _assign and _form update c.person as they go.
            joined = self._assign(c)
            new_people = self._form(c)
            if new_people:
                joined += self._assign(c)
        assigned = sum(1 for pid in joined if pid in before)
        # The faces of the new people: their cores, and the faces that joined them just after.
        new_faces = int(np.count_nonzero((c.person >= 0) & ~np.isin(c.person, list(before))))
        return _TidyOutcome(assigned, new_people, len(before), new_faces)

    def _scores(self, rows: IntArray, person: IntArray, emb: FloatArray) -> tuple[IntArray, FloatArray]:
        """(person ids, scores[len(rows), n_people]): mean of each face's top-3 similarities
        to each person's faces."""
        pids = np.unique(person[person >= 0])
        scores = np.full((len(rows), len(pids)), -np.inf, np.float32)
        for j, pid in enumerate(pids):
            members = emb[person == pid]
            sims = emb[rows] @ members.T
            top = min(3, sims.shape[1])
            scores[:, j] = np.sort(sims, axis=1)[:, -top:].mean(axis=1) if top else -np.inf
        return pids, scores

    def _assign(self, c: _Collection) -> list[int]:
        """Usable unsorted faces join the person they match confidently (module docstring).
        Returns the person each assigned face joined."""
        ids, photo, person, emb, banned = c.ids, c.photo, c.person, c.emb, c.banned
        todo = np.flatnonzero((person < 0) & c.usable)
        if not len(todo) or not (person >= 0).any():
            return []
        pids, scores = self._scores(todo, person, emb)
        taken: dict[int, set[int]] = defaultdict(set)  # person id -> photos it already has a face in
        for placed in np.flatnonzero(person >= 0):
            taken[int(person[placed])].add(int(photo[placed]))
        offers = []
        for a, row in enumerate(todo):
            s = scores[a].copy()
            for j, pid in enumerate(pids):
                if int(pid) in banned.get(int(row), ()) or int(photo[row]) in taken[int(pid)]:
                    s[j] = -np.inf
            order = np.argsort(-s)
            best = s[order[0]]
            second = s[order[1]] if len(order) > 1 else -np.inf
            if best >= self.threshold and best - second >= ASSIGN_MARGIN:
                offers.append((float(best), int(row), int(pids[order[0]])))
        moves: list[PhotoAssignment] = []
        for score, i, pid in sorted(offers, reverse=True):  # best first: one face per photo and person
            if int(photo[i]) in taken[pid]:
                continue
            taken[pid].add(int(photo[i]))
            person[i] = pid
            moves.append(PhotoAssignment(int(ids[i]), pid, "match", score))
        self.store.assign_photo_faces(moves)
        return [m.person_id for m in moves if m.person_id is not None]

    def _form(self, c: _Collection) -> int:
        """New people from the usable unsorted faces (module docstring)."""
        ids, photo, person, emb = c.ids, c.photo, c.person, c.emb
        pool = np.flatnonzero((person < 0) & c.usable)
        if len(pool) < self.min_new_person:
            return 0
        result = cluster(emb[pool], self.algorithm, threshold=self.threshold, photo_ids=photo[pool])
        made = 0
        for label in range(result.n_clusters):
            members = self._core(pool[result.labels == label], emb)
            if len(members) < self.min_new_person:
                continue
            pid = self.store.create_person()
            self.store.assign_photo_faces([PhotoAssignment(int(ids[i]), pid, "cluster") for i in members])
            person[members] = pid
            made += 1
        return made

    def _core(self, members: IntArray, emb: FloatArray) -> IntArray:
        """The faces of a cluster that are all pairwise above the threshold: grown greedily
        from the face closest to the others (clusters are small; exact cliques are not needed)."""
        if len(members) < self.min_new_person:
            return members[:0]
        sims = emb[members] @ emb[members].T
        order = np.argsort(-(sims.sum(axis=1)), kind="stable")
        core = [order[0]]
        for j in order[1:]:
            if all(sims[j, c] >= self.threshold for c in core):
                core.append(j)
        chosen: IntArray = members[np.sort(core)]
        return chosen

    # --- corrections ------------------------------------------------------------------------
    def name(self, ref: int | str, name: str) -> Person:
        """Name a person. It becomes (or joins) the gallery subject ``name``: a person already
        linked to that subject is merged with this one; an enrolled subject of that name that
        is no person takes this person's templates; its faces are enrolled as templates."""
        pid = self._resolve(ref)
        wanted = name.strip()
        other = self.find(wanted)
        if other is not None and other != pid:
            return self.merge(pid, other)
        current = self._name_of(pid)
        if current is not None:
            if current != wanted:
                if self._subject_exists(wanted):  # the store links the person to that subject
                    self.gallery.merge(current, wanted)
                else:
                    self.gallery.rename(current, name)
        else:
            try:
                subject = self.gallery.subject(name)
            except SubjectNotFoundError:
                subject = self.gallery.create_subject(name)
            self.store.link_person(pid, subject.id)
        self._enrol(pid)
        return self.person(pid)

    def _enrol(self, pid: int) -> None:
        """Every usable face of a named person becomes a template of its subject (once)."""
        person = self.store.person(pid)
        if person is None or person.name is None:
            return
        for item in self.store.photo_face_templates(pid):
            if not item.face.usable:
                continue
            # A group photo gives several faces: the template's key is the photo's hash and the face.
            key = photo_face_template_key(item.face.image_sha256, item.face_index)
            if self.store.has_image(key):
                continue
            try:
                self.store.add_face(person.name, None, NewFace(
                    embedding=item.embedding, image_sha256=key, box=item.face.box, quality=item.face.quality,
                    source=item.face.path, thumbnail=item.thumbnail))
            except DuplicateImageError:  # enrolled meanwhile by another process
                continue

    def find(self, ref: int | str) -> int | None:
        """The person id of ``ref`` (``12``, ``"#12"`` or a name), or None."""
        try:
            return self._resolve(ref)
        except SubjectNotFoundError:
            return None

    def merge(self, source: int | str, target: int | str) -> Person:
        """One person: ``source``'s faces move to ``target`` (a face whose photo ``target``
        already has a face in goes back to unsorted, marked not-``target``); names and
        subjects follow (two named people: the subjects are merged too). ``target`` may also
        be an enrolled subject that is no clustered person: ``source`` then takes its name (its
        own subject, if named, is merged into that one). Likewise ``source`` may be such a
        subject: its templates move to ``target``'s subject (an unnamed ``target`` takes its
        name)."""
        if isinstance(source, str) and not source.startswith("#") and self.find(source) is None:
            self.gallery.subject(source)  # it must exist (SubjectNotFoundError otherwise)
            dst = self._resolve(target)
            dst_name = self._name_of(dst)
            if dst_name is None:
                return self.name(dst, source)
            self.gallery.merge(source, dst_name)
            return self.person(dst)
        src, dst_found = self._resolve(source), self.find(target)
        if dst_found is None and isinstance(target, str) and not target.startswith("#"):
            self.gallery.subject(target)  # it must exist (SubjectNotFoundError otherwise)
            return self.name(src, target)
        dst = self._resolve(target) if dst_found is None else dst_found
        if src == dst:
            return self.person(dst)
        names = {pid: name for pid in (src, dst) if (name := self._name_of(pid)) is not None}
        if src in names and dst in names:
            self.gallery.merge(names[src], names[dst])  # the store merges the two people too
        else:
            self.store.merge_people(src, dst)
        if src in names or dst in names:
            self._enrol(dst)
        return self.person(dst)

    def merge_subjects(self, source: str, target: str) -> Subject:
        """:meth:`Gallery.merge <faceprint.gallery.Gallery.merge>` of two subjects by name,
        and when the result is a clustered person, its usable photo faces not yet enrolled
        (matched after it was named) become templates too, as :meth:`merge` does."""
        subject = self.gallery.merge(source, target)
        person = self.store.person_named(subject.name)
        if person is None:
            return subject
        self._enrol(person.id)
        return self.gallery.subject(subject.name)

    def move(self, face_id: int, target: int | str | None) -> PhotoFace:
        """Put a face in ``target`` (a user's decision: kept by every pass), or take it out
        (``None``): it goes back to unsorted and will never be assigned to its old person again."""
        face = self.face(face_id)
        pid: int | None = None
        with self.store.transaction():
            if target is None:
                if face.person_id is not None:
                    self.store.mark_not_person(face.id, face.person_id)
                self.store.assign_photo_faces([PhotoAssignment(face.id, None)])
            else:
                pid = self._resolve(target)
                clash = next((f.id for f in self.store.photo_faces_of(pid)
                              if f.id != face.id and f.image_sha256 == face.image_sha256), None)
                if clash is not None:
                    raise InvalidArgumentError(
                        f"person #{pid} already has face {clash} of the same photo; one person appears once a photo",
                        details={"face_id": face.id, "person_id": pid, "clash": clash})
                self.store.unmark_not_person(face.id, pid)
                self.store.assign_photo_faces([PhotoAssignment(face.id, pid, "user")])
        if pid is not None:
            self._enrol(pid)
        return self.face(face_id)

    def reject(self, face_id: int, ref: int | str) -> PhotoFace:
        """"Not this person": the face leaves ``ref`` (if it is there) and never joins it again."""
        pid = self._resolve(ref)
        self.face(face_id)
        with self.store.transaction():
            self.store.mark_not_person(int(face_id), pid)
            if self.face(face_id).person_id == pid:
                self.store.assign_photo_faces([PhotoAssignment(int(face_id), None)])
        return self.face(face_id)

    def forget(self, ref: int | str) -> int:
        """Delete a person, their faces, thumbnails and (if named) the gallery subject and
        templates, for good. Returns the number of photo faces removed."""
        pid = self._resolve(ref)
        named = self._name_of(pid)
        n = len(self.store.photo_faces_of(pid))
        if named is not None:
            self.gallery.forget(named)  # the store deletes the person and its faces with the subject
        if self.store.person(pid) is not None:
            self.store.delete_person(pid)
        return n

    # --- questions --------------------------------------------------------------------------
    def suggest(self, limit: int = 20) -> list[Question]:
        """The questions worth asking first: automatic assignments below the accept threshold,
        unsorted faces near a person, and pairs of people who may be one -- each weighted by
        how many faces its answer settles and by how close its score is to the threshold.
        Assignments at or above the accept threshold (FAR / :data:`ACCEPT_FACTOR`), and faces
        a person placed, are never asked about."""
        self._calibrate()
        c = _Collection.read(self.store)
        if c is None:
            return []
        ids, person, usable, emb = c.ids, c.person, c.usable, c.emb
        questions: list[Question] = []
        band = max(self.threshold - self.ask_threshold, 1e-6)
        # Faces: unsorted usable ones near a person, and uncertain automatic assignments.
        ask = np.flatnonzero(usable & ((person < 0) | np.array([b == "match" for b in c.assigned_by])))
        if len(ask) and (person >= 0).any():
            pids, scores = self._scores(ask, np.where(np.isin(np.arange(len(ids)), ask), -1, person), emb)
            sizes = {int(p): int(np.count_nonzero(person == p)) for p in pids}
            for a, i in enumerate(ask):
                s = scores[a].copy()
                current = int(person[i])
                for j, pid in enumerate(pids):
                    if int(pid) in c.banned.get(int(i), ()):
                        s[j] = -np.inf
                if current >= 0:
                    own = np.flatnonzero(pids == current)
                    if len(own) and float(s[own[0]]) >= self.accept_threshold:
                        continue  # confident: auto-accepted
                    # Never "is it #3?" of a face already in #3: only whether another person fits it.
                    s[own] = -np.inf
                j = int(np.argmax(s))
                best = float(s[j])
                if best < self.ask_threshold:
                    continue
                # A yes/no on a face settles it, and sharpens its person a little.
                impact = 1 + sizes[int(pids[j])] // 10
                questions.append(Question("is_this", int(pids[j]), best, impact,
                                          _priority(impact, best, self.threshold, band), face_id=int(ids[i]),
                                          current_id=current if current >= 0 else None))
        # People: pairs whose faces are close (one person split in two).
        pids = np.unique(person[person >= 0])
        if len(pids) > 1:
            cent = np.stack([emb[person == p].mean(axis=0) for p in pids])
            cent /= np.linalg.norm(cent, axis=1, keepdims=True)
            sims = cent @ cent.T
            sizes = {int(p): int(np.count_nonzero(person == p)) for p in pids}
            for a, b in zip(*np.nonzero(np.triu(sims >= self.ask_threshold, 1))):
                small, large = sorted((int(pids[a]), int(pids[b])), key=lambda p: (sizes[p], p))
                impact = sizes[small]  # a yes moves all of them
                score = float(sims[a, b])
                questions.append(Question("same_person", large, score, impact,
                                          _priority(impact, score, self.threshold, band), other_id=small))
        questions.sort(key=lambda q: (-q.priority, q.kind, q.face_id or 0, q.person_id))
        return questions[: max(0, int(limit))]

    # --- contact sheets ---------------------------------------------------------------------
    def contact_sheet(self, faces: Sequence[PhotoFace], *, columns: int = 8, size: int = 96,
                      title: str | None = None) -> bytes:
        """A JPEG grid of the faces (at most 8 rows), so a person can look: each face's kept
        thumbnail, else cut from its photo (read again, once per photo), else a placeholder
        (the photo is gone or changed since). A band on top says ``title`` and how many faces
        are shown; each face is captioned with its id (what `people move`/`not`/`face` take).
        Where face ``k`` lies: :func:`contact_sheet_tile_box`."""
        from PIL import Image, ImageDraw

        shown = list(faces)[: columns * 8]
        rows = max(1, -(-len(shown) // columns))
        sheet = Image.new("RGB", (columns * size, SHEET_HEADER + rows * (size + TILE_CAPTION)), (32, 32, 32))
        tiles: dict[int, RGB] = {}
        to_cut: dict[str, list[tuple[int, PhotoFace]]] = defaultdict(list)  # photo path -> its faces shown
        for k, f in enumerate(shown):
            kept = self._kept_picture(f.id, size)
            if kept is not None:
                tiles[k] = kept
            else:
                to_cut[f.path].append((k, f))
        for items in to_cut.values():  # one photo in memory at a time
            rgb = self._photo(items[0][1])
            for k, f in items:
                tiles[k] = crop_face(rgb, f.box, size) if rgb is not None else placeholder(size)
        draw = ImageDraw.Draw(sheet)
        font = _label_font()
        count = f"{len(shown)} of {len(faces)} faces" if len(shown) < len(faces) else _plural(len(faces), "face")
        draw.text((4, SHEET_HEADER // 2), f"{title}: {count}" if title else count, fill=LABEL_COLOUR, font=font,
                  anchor="lm")
        for k, tile in tiles.items():
            left, top, right, bottom = contact_sheet_tile_box(k, columns, size)
            sheet.paste(Image.fromarray(tile), (left, top))
            draw.text(((left + right) // 2, bottom + TILE_CAPTION // 2), f"face {shown[k].id}", fill=LABEL_COLOUR,
                      font=font, anchor="mm")
        buf = io.BytesIO()
        sheet.save(buf, format="JPEG", quality=85)
        return buf.getvalue()

    def write_contact_sheets(self, out: str | Path) -> list[Path]:
        """One JPEG per person (``person_<id>[_<name>].jpg``) and one of the unsorted faces."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for p in self.people():
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in (p.name or ""))
            path = out / (f"person_{p.id}_{safe}.jpg" if safe else f"person_{p.id}.jpg")
            title = f"#{p.id} {p.name}" if p.name else f"#{p.id}"
            path.write_bytes(self.contact_sheet(p.faces, title=title))
            written.append(path)
        unsorted = self.unsorted()
        if unsorted:
            path = out / "unsorted.jpg"
            path.write_bytes(self.contact_sheet(unsorted, title="unsorted"))
            written.append(path)
        return written


def contact_sheet_tile_box(k: int, columns: int = 8, size: int = 96) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the ``k``-th face picture on a :meth:`People.contact_sheet`
    of ``columns`` columns of ``size`` px pictures (its caption lies just below ``bottom``)."""
    left = (k % columns) * size
    top = SHEET_HEADER + (k // columns) * (size + TILE_CAPTION)
    return left, top, left + size, top + size


def _label_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own default font (shipped with Pillow: nothing to download)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=LABEL_FONT_SIZE)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def is_person_id(ref: str) -> bool:
    """``#12`` names clustered person 12; anything else is a name."""
    return ref.startswith("#") and ref[1:].isdigit()


def close_names(ref: str, names: Iterable[str]) -> list[str]:
    """The names most like ``ref`` (case ignored), best first: the "did you mean" of a name
    that is not found."""
    by_folded: dict[str, str] = {}
    for name in names:
        by_folded.setdefault(name.casefold(), name)
    close = difflib.get_close_matches(ref.casefold(), list(by_folded), n=DID_YOU_MEAN_COUNT, cutoff=DID_YOU_MEAN_CUTOFF)
    return [by_folded[c] for c in close]


def not_found(ref: str, names: Iterable[str], where: str = "") -> SubjectNotFoundError:
    """The error for a name that is not there, offering the close ones (:func:`close_names`)."""
    suggestions = close_names(ref, names)
    message = f"no person named {ref!r}" + (f" {where}" if where else "")
    if suggestions:
        message += "; did you mean " + " or ".join(repr(n) for n in suggestions) + "?"
    return SubjectNotFoundError(message, details={"person": ref, "did_you_mean": suggestions})


def _priority(impact: int, score: float, threshold: float, band: float) -> float:
    """Impact, weighted up to 5x as the score nears the threshold (the most uncertain)."""
    closeness = 1.0 - min(abs(score - threshold) / band, 1.0)
    return impact * (0.25 + closeness)


__all__ = ["MIN_NEW_PERSON", "PassProgress", "PassReport", "People", "Person", "PhotoFace", "Question", "Who",
           "close_names", "contact_sheet_tile_box", "is_person_id", "not_found"]
