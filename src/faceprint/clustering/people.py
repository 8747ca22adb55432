"""People from photos: incremental clustering of unknown faces, and a person's corrections.

Kept in the gallery's own database (tables ``people``, ``photo_faces``, ``not_person``), so
the CLI, the service and the web page see the same people. A person is a group of faces;
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
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.batch import prepare_many
from faceprint.clustering.algorithms import DEFAULT_ALGORITHM, cluster, threshold_for_far
from faceprint.errors import DuplicateImageError, InvalidArgumentError, SubjectNotFoundError, TemplateNotFoundError
from faceprint.gallery.gallery import Gallery, _jpeg
from faceprint.gallery.store import NewFace
from faceprint.imageio import ImageSource
from faceprint.quality import assess
from faceprint.types import Box

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id INTEGER UNIQUE REFERENCES subjects(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS photo_faces (
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
);
CREATE INDEX IF NOT EXISTS photo_faces_by_person ON photo_faces(person_id);
CREATE TABLE IF NOT EXISTS cluster_photos (
    image_sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    faces INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS not_person (
    face_id INTEGER NOT NULL REFERENCES photo_faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class PhotoFace:
    id: int
    path: str
    box: Box
    quality: float
    usable: bool
    person_id: int | None
    assigned_by: str | None  # "match", "cluster", "user"; None while unsorted
    score: float | None  # the assignment's score, for "match"

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.id, "path": self.path, "box": self.box.to_list(), "quality": round(self.quality, 4),
            "usable": self.usable, "assigned_by": self.assigned_by,
            "score": None if self.score is None else round(self.score, 5),
        }


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
class PassReport:
    """What one pass did; ``people`` and ``unsorted`` are the state after it."""

    people: tuple[Person, ...]
    unsorted: tuple[PhotoFace, ...]
    photos_added: int
    faces_added: int
    assigned: int
    new_people: int
    errors: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "people": [p.to_dict() for p in self.people],
            "unsorted": [f.to_dict() for f in self.unsorted],
            "photos_added": self.photos_added, "faces_added": self.faces_added,
            "assigned": self.assigned, "new_people": self.new_people, "errors": list(self.errors),
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

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "face_id": self.face_id, "person_id": self.person_id,
                "other_id": self.other_id, "score": round(self.score, 5), "impact": self.impact,
                "priority": round(self.priority, 4)}


@dataclass(frozen=True, slots=True)
class _Collection:
    """Every photo face as arrays, a row each (what a pass and the questions work on)."""

    ids: np.ndarray  # photo face ids
    photo: np.ndarray  # a small int per photo (faces of one photo share it)
    person: np.ndarray  # person id, -1 while unsorted
    usable: np.ndarray
    assigned_by: list[str | None]
    emb: np.ndarray
    banned: dict[int, set[int]]  # row -> the people it was marked "not"

    @classmethod
    def read(cls, query) -> _Collection | None:
        rows = query("SELECT id, image_sha256, person_id, usable, assigned_by, embedding FROM photo_faces ORDER BY id")
        if not rows:
            return None
        ids = np.array([r[0] for r in rows], np.int64)
        row_of = {int(f): i for i, f in enumerate(ids)}
        banned: dict[int, set[int]] = defaultdict(set)
        for fid, pid in query("SELECT face_id, person_id FROM not_person"):
            if fid in row_of:
                banned[row_of[fid]].add(pid)
        return cls(
            ids=ids,
            photo=np.unique([r[1] for r in rows], return_inverse=True)[1],
            person=np.array([r[2] if r[2] is not None else -1 for r in rows], np.int64),
            usable=np.array([bool(r[3]) for r in rows]),
            assigned_by=[r[4] for r in rows],
            emb=np.stack([np.frombuffer(r[5], np.float32) for r in rows]),
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
        self.store = gallery.store  # the same connection and transactions as the gallery
        self.algorithm = algorithm
        self.fixed_far = far  # None: scaled with the collection (FALSE_NEIGHBOURS)
        self.min_new_person = int(min_new_person)
        if self.min_new_person < 2:
            raise InvalidArgumentError("min_new_person must be at least 2")
        with self.store._write() as db:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    db.execute(stmt)
        self._calibrate()

    def _calibrate(self) -> None:
        """Thresholds for the collection as it is now (see FALSE_NEIGHBOURS)."""
        n = self.store._query("SELECT COUNT(*) FROM photo_faces WHERE usable = 1")[0][0]
        lo, hi = FAR_RANGE
        far = self.fixed_far if self.fixed_far is not None else float(np.clip(FALSE_NEIGHBOURS / max(n, 1), lo, hi))
        model = self.gallery.analyzer.embedder_card.name
        self.far = far
        self.threshold = threshold_for_far(far, model)
        self.accept_threshold = threshold_for_far(max(lo, far / ACCEPT_FACTOR), model)
        self.ask_threshold = threshold_for_far(min(1e-1, far * ASK_FACTOR), model)

    # --- reading ----------------------------------------------------------------------------
    def people(self) -> list[Person]:
        names = dict(self.store._query(
            "SELECT p.id, s.name FROM people p LEFT JOIN subjects s ON s.id = p.subject_id"))
        faces: dict[int, list[PhotoFace]] = defaultdict(list)
        for f in self._faces("WHERE person_id IS NOT NULL ORDER BY id"):
            faces[f.person_id].append(f)  # type: ignore[index]
        people = [Person(pid, names.get(pid), tuple(faces.get(pid, ()))) for pid in names]
        return sorted(people, key=lambda p: (-len(p.faces), p.id))

    def person(self, ref: int | str) -> Person:
        pid = self._resolve(ref)
        return next(p for p in self.people() if p.id == pid)

    def unsorted(self) -> list[PhotoFace]:
        return self._faces("WHERE person_id IS NULL ORDER BY id")

    def thumbnail(self, face_id: int) -> bytes | None:
        rows = self.store._query("SELECT thumbnail FROM photo_faces WHERE id = ?", (face_id,))
        if not rows:
            raise TemplateNotFoundError(f"no photo face with id {face_id}", details={"face_id": face_id})
        return rows[0][0]

    def _faces(self, where: str, params: tuple = ()) -> list[PhotoFace]:
        rows = self.store._query(
            f"SELECT id, path, box, quality, usable, person_id, assigned_by, score FROM photo_faces {where}", params)
        return [PhotoFace(r[0], r[1], Box(*json.loads(r[2])), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]

    def _name_of(self, pid: int) -> str | None:
        rows = self.store._query("SELECT s.name FROM people p JOIN subjects s ON s.id = p.subject_id WHERE p.id = ?", (pid,))
        return rows[0][0] if rows else None

    def _resolve(self, ref: int | str) -> int:
        """A person id from ``12``, ``"#12"`` or a name."""
        if isinstance(ref, str) and ref.startswith("#") and ref[1:].isdigit():
            ref = int(ref[1:])
        if isinstance(ref, int):
            if self.store._query("SELECT 1 FROM people WHERE id = ?", (ref,)):
                return ref
            raise SubjectNotFoundError(f"no person #{ref}", details={"person": ref})
        rows = self.store._query(
            "SELECT p.id FROM people p JOIN subjects s ON s.id = p.subject_id WHERE s.name = ?", (ref,))
        if not rows:
            raise SubjectNotFoundError(f"no person named {ref!r} among the clustered people", details={"person": ref})
        return rows[0][0]

    # --- a pass -----------------------------------------------------------------------------
    def add_photos(self, images: Iterable[ImageSource], *, jobs: int | None = 1) -> PassReport:
        """Add the faces of new photos, then assign and form people (module docstring). A path
        added before is not read again, and a photo already added under another path (same
        content) is skipped. Bad files are reported, the rest go on."""
        analyzer, policy = self.gallery.analyzer, self.gallery.quality
        known = {row[0] for row in self.store._query("SELECT path FROM cluster_photos")}
        new = [i for i in images if not (isinstance(i, (str, os.PathLike)) and os.fspath(i) in known)]
        errors: list[dict[str, Any]] = []
        photos = faces_added = 0
        for prepared, analysis in prepare_many(analyzer, new, embed=True, jobs=jobs, digest=True):
            if analysis.error is not None:
                errors.append({"path": prepared.source, **analysis.error.to_dict()})
                continue
            sha = prepared.sha256
            if self.store._query("SELECT 1 FROM cluster_photos WHERE image_sha256 = ?", (sha,)):
                continue  # seen before (by content), faces or not
            rows = []
            for i, embedded in enumerate(analysis.faces):
                chip = prepared.chips[i]  # type: ignore[index]
                q = assess(embedded.face, chip, policy)
                usable = not q.reasons and q.score >= policy.min_score
                rows.append((prepared.source, sha, i, json.dumps(embedded.face.box.to_list()), q.score, int(usable),
                             np.asarray(embedded.embedding, np.float32).tobytes(), _jpeg(chip), _now()))
            if analysis.faces:
                self.store.pin_model(analyzer.model_id, int(analysis.faces[0].embedding.shape[0]))
            with self.store._write() as db:  # one photo, one transaction
                db.execute("INSERT INTO cluster_photos(image_sha256, path, faces, added_at) VALUES (?, ?, ?, ?)",
                           (sha, prepared.source, len(rows), _now()))
                db.executemany(
                    "INSERT INTO photo_faces(path, image_sha256, face_index, box, quality, usable, embedding, thumbnail,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            photos += 1
            faces_added += len(rows)
        assigned, new_people = self.tidy()
        return PassReport(tuple(self.people()), tuple(self.unsorted()), photos, faces_added, assigned, new_people,
                          tuple(errors))

    def tidy(self) -> tuple[int, int]:
        """Assign unsorted faces to existing people, then form new people from the rest.
        Returns (faces assigned to existing people, new people formed)."""
        self._calibrate()
        with self.store._write() as db:
            c = _Collection.read(lambda sql: db.execute(sql).fetchall())
            if c is None:
                return 0, 0
            # _assign and _form update c.person as they go.
            assigned = self._assign(db, c)
            new_people = self._form(db, c)
            if new_people:
                assigned += self._assign(db, c)
        return assigned, new_people

    def _scores(self, rows: np.ndarray, person: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def _assign(self, db, c: _Collection) -> int:
        """Usable unsorted faces join the person they match confidently (module docstring)."""
        ids, photo, person, emb, banned = c.ids, c.photo, c.person, c.emb, c.banned
        todo = np.flatnonzero((person < 0) & c.usable)
        if not len(todo) or not (person >= 0).any():
            return 0
        pids, scores = self._scores(todo, person, emb)
        taken = defaultdict(set)  # person id -> photos it already has a face in
        for i in np.flatnonzero(person >= 0):
            taken[int(person[i])].add(int(photo[i]))
        offers = []
        for a, i in enumerate(todo):
            s = scores[a].copy()
            for j, pid in enumerate(pids):
                if int(pid) in banned.get(int(i), ()) or int(photo[i]) in taken[int(pid)]:
                    s[j] = -np.inf
            order = np.argsort(-s)
            best = s[order[0]]
            second = s[order[1]] if len(order) > 1 else -np.inf
            if best >= self.threshold and best - second >= ASSIGN_MARGIN:
                offers.append((float(best), int(i), int(pids[order[0]])))
        grown: set[int] = set()
        for score, i, pid in sorted(offers, reverse=True):  # best first: one face per photo and person
            if int(photo[i]) in taken[pid]:
                continue
            taken[pid].add(int(photo[i]))
            person[i] = pid
            db.execute("UPDATE photo_faces SET person_id = ?, assigned_by = 'match', score = ? WHERE id = ?",
                       (pid, score, int(ids[i])))
            grown.add(pid)
        now = _now()
        db.executemany("UPDATE people SET updated_at = ? WHERE id = ?", [(now, pid) for pid in grown])
        return int(np.count_nonzero(person[todo] >= 0))

    def _form(self, db, c: _Collection) -> int:
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
            now = _now()
            pid = db.execute("INSERT INTO people(created_at, updated_at) VALUES (?, ?)", (now, now)).lastrowid
            db.executemany("UPDATE photo_faces SET person_id = ?, assigned_by = 'cluster', score = NULL WHERE id = ?",
                           [(pid, int(ids[i])) for i in members])
            person[members] = pid
            made += 1
        return made

    def _core(self, members: np.ndarray, emb: np.ndarray) -> np.ndarray:
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
        return members[np.sort(core)]

    # --- corrections ------------------------------------------------------------------------
    def name(self, ref: int | str, name: str) -> Person:
        """Name a person. It becomes (or joins) the gallery subject ``name``: a person already
        linked to that subject is merged with this one; its faces are enrolled as templates."""
        pid = self._resolve(ref)
        other = self.find(name.strip())
        if other is not None and other != pid:
            return self.merge(pid, other)
        current = self._name_of(pid)
        if current is not None:
            if current != name.strip():
                self.gallery.rename(current, name)
        else:
            try:
                subject = self.gallery.subject(name)
            except SubjectNotFoundError:
                subject = self.store.create_subject(name)
            with self.store._write() as db:
                db.execute("UPDATE people SET subject_id = ?, updated_at = ? WHERE id = ?", (subject.id, _now(), pid))
        self._enrol(pid)
        return self.person(pid)

    def _enrol(self, pid: int) -> None:
        """Every usable face of a named person becomes a template of its subject (once)."""
        rows = self.store._query(
            "SELECT s.name, f.image_sha256, f.face_index, f.embedding, f.box, f.quality, f.path, f.thumbnail"
            " FROM photo_faces f JOIN people p ON p.id = f.person_id JOIN subjects s ON s.id = p.subject_id"
            " WHERE f.person_id = ? AND f.usable = 1", (pid,))
        for name, sha, index, blob, box, quality, path, thumb in rows:
            # A group photo gives several faces: the template's key is the photo's hash and the face.
            key = hashlib.sha256(f"{sha}#{index}".encode()).hexdigest()
            if self.store.has_image(key):
                continue
            try:
                self.store.add_face(name, None, NewFace(
                    embedding=np.frombuffer(blob, np.float32).copy(), image_sha256=key, box=Box(*json.loads(box)),
                    quality=quality, source=path, thumbnail=thumb))
            except DuplicateImageError:  # enrolled meanwhile by another process
                continue
        self.gallery._dirty = True

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
        be an enrolled subject that is no clustered person: ``source`` then takes its name."""
        src, dst = self._resolve(source), self.find(target)
        if dst is None and isinstance(target, str) and not target.startswith("#"):
            self.gallery.subject(target)  # it must exist (SubjectNotFoundError otherwise)
            return self.name(src, target)
        dst = self._resolve(target) if dst is None else dst
        if src == dst:
            return self.person(dst)
        names = {pid: name for pid in (src, dst) if (name := self._name_of(pid)) is not None}
        with self.store._write() as db:
            dst_photos = {r[0] for r in db.execute("SELECT image_sha256 FROM photo_faces WHERE person_id = ?", (dst,))}
            for fid, sha in db.execute("SELECT id, image_sha256 FROM photo_faces WHERE person_id = ?", (src,)).fetchall():
                if sha in dst_photos:
                    db.execute("UPDATE photo_faces SET person_id = NULL, assigned_by = NULL, score = NULL WHERE id = ?", (fid,))
                    db.execute("INSERT OR IGNORE INTO not_person(face_id, person_id) VALUES (?, ?)", (fid, dst))
                else:
                    db.execute("UPDATE photo_faces SET person_id = ?, assigned_by = 'user', score = NULL WHERE id = ?",
                               (dst, fid))
            db.execute("INSERT OR IGNORE INTO not_person(face_id, person_id) SELECT face_id, ? FROM not_person"
                       " WHERE person_id = ?", (dst, src))
            subject = db.execute("SELECT subject_id FROM people WHERE id = ?", (src,)).fetchone()[0]
            # Unlink before deleting: deleting a subject cascades to its person and faces.
            db.execute("UPDATE people SET subject_id = NULL WHERE id = ?", (src,))
            db.execute("DELETE FROM people WHERE id = ?", (src,))
            if subject is not None and dst not in names:  # the name goes with the faces
                db.execute("UPDATE people SET subject_id = ? WHERE id = ?", (subject, dst))
            db.execute("UPDATE people SET updated_at = ? WHERE id = ?", (_now(), dst))
        if src in names and dst in names:
            self.gallery.merge(names[src], names[dst])  # templates move; src's subject goes
        if src in names or dst in names:
            self._enrol(dst)
        return self.person(dst)

    def move(self, face_id: int, target: int | str | None) -> PhotoFace:
        """Put a face in ``target`` (a user's decision: kept by every pass), or take it out
        (``None``): it goes back to unsorted and will never be assigned to its old person again."""
        face = self._face(face_id)
        with self.store._write() as db:
            if target is None:
                if face.person_id is not None:
                    db.execute("INSERT OR IGNORE INTO not_person(face_id, person_id) VALUES (?, ?)", (face_id, face.person_id))
                db.execute("UPDATE photo_faces SET person_id = NULL, assigned_by = NULL, score = NULL WHERE id = ?", (face_id,))
            else:
                pid = self._resolve(target)
                clash = db.execute(
                    "SELECT id FROM photo_faces WHERE person_id = ? AND id != ? AND image_sha256 ="
                    " (SELECT image_sha256 FROM photo_faces WHERE id = ?)", (pid, face_id, face_id)).fetchone()
                if clash:
                    raise InvalidArgumentError(
                        f"person #{pid} already has face {clash[0]} of the same photo; one person appears once a photo",
                        details={"face_id": face_id, "person_id": pid, "clash": clash[0]})
                db.execute("DELETE FROM not_person WHERE face_id = ? AND person_id = ?", (face_id, pid))
                db.execute("UPDATE photo_faces SET person_id = ?, assigned_by = 'user', score = NULL WHERE id = ?",
                           (pid, face_id))
        if target is not None:
            pid = self._resolve(target)
            if self.store._query("SELECT subject_id FROM people WHERE id = ? AND subject_id IS NOT NULL", (pid,)):
                self._enrol(pid)
        return self._face(face_id)

    def reject(self, face_id: int, ref: int | str) -> PhotoFace:
        """"Not this person": the face leaves ``ref`` (if it is there) and never joins it again."""
        pid = self._resolve(ref)
        self._face(face_id)
        with self.store._write() as db:
            db.execute("INSERT OR IGNORE INTO not_person(face_id, person_id) VALUES (?, ?)", (face_id, pid))
            db.execute("UPDATE photo_faces SET person_id = NULL, assigned_by = NULL, score = NULL"
                       " WHERE id = ? AND person_id = ?", (face_id, pid))
        return self._face(face_id)

    def forget(self, ref: int | str) -> int:
        """Delete a person, their faces, thumbnails and (if named) the gallery subject and
        templates, for good. Returns the number of photo faces removed."""
        pid = self._resolve(ref)
        named = self._name_of(pid)
        n = self.store._query("SELECT COUNT(*) FROM photo_faces WHERE person_id = ?", (pid,))[0][0]
        if named is not None:
            self.gallery.forget(named)  # the subject's deletion cascades to the person and faces
        with self.store._write() as db:
            db.execute("DELETE FROM photo_faces WHERE person_id = ?", (pid,))
            db.execute("DELETE FROM people WHERE id = ?", (pid,))
        self.store._purge()
        return int(n)

    def _face(self, face_id: int) -> PhotoFace:
        found = self._faces("WHERE id = ?", (int(face_id),))
        if not found:
            raise TemplateNotFoundError(f"no photo face with id {face_id}", details={"face_id": face_id})
        return found[0]

    # --- questions --------------------------------------------------------------------------
    def suggest(self, limit: int = 20) -> list[Question]:
        """The questions worth asking first: automatic assignments below the accept threshold,
        unsorted faces near a person, and pairs of people who may be one -- each weighted by
        how many faces its answer settles and by how close its score is to the threshold.
        Assignments at or above the accept threshold (FAR / :data:`ACCEPT_FACTOR`), and faces
        a person placed, are never asked about."""
        self._calibrate()
        c = _Collection.read(self.store._query)
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
                for j, pid in enumerate(pids):
                    if int(pid) in c.banned.get(int(i), ()):
                        s[j] = -np.inf
                j = int(np.argmax(s))
                best = float(s[j])
                if person[i] >= 0 and best >= self.accept_threshold:
                    continue  # confident: auto-accepted
                if best < self.ask_threshold:
                    continue
                # A yes/no on a face settles it, and sharpens its person a little.
                impact = 1 + sizes[int(pids[j])] // 10
                questions.append(Question("is_this", int(pids[j]), best, impact,
                                          _priority(impact, best, self.threshold, band), face_id=int(ids[i])))
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
    def contact_sheet(self, faces: Sequence[PhotoFace], *, columns: int = 8, size: int = 96) -> bytes:
        """A JPEG grid of the faces' thumbnails (at most 8 rows), so a person can look."""
        from PIL import Image

        shown = list(faces)[: columns * 8]
        rows = max(1, -(-len(shown) // columns))
        sheet = Image.new("RGB", (columns * size, rows * size), (32, 32, 32))
        for k, f in enumerate(shown):
            thumb = self.thumbnail(f.id)
            if thumb:
                img = Image.open(io.BytesIO(thumb)).convert("RGB").resize((size, size))
                sheet.paste(img, ((k % columns) * size, (k // columns) * size))
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
            path.write_bytes(self.contact_sheet(p.faces))
            written.append(path)
        unsorted = self.unsorted()
        if unsorted:
            path = out / "unsorted.jpg"
            path.write_bytes(self.contact_sheet(unsorted))
            written.append(path)
        return written


def _priority(impact: int, score: float, threshold: float, band: float) -> float:
    """Impact, weighted up to 5x as the score nears the threshold (the most uncertain)."""
    closeness = 1.0 - min(abs(score - threshold) / band, 1.0)
    return impact * (0.25 + closeness)


__all__ = ["MIN_NEW_PERSON", "PassReport", "People", "Person", "PhotoFace", "Question"]
