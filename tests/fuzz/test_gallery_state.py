"""A stateful property test of the gallery: random sequences of enrol / create / rename / merge /
forget / delete_face / update_metadata (some through a second connection to the same SQLite
file or PostgreSQL database, as another process would write), checked after every step against a
plain-Python model. The PostgreSQL run (a fresh database per sequence; searched in the database)
has a smaller budget: each step is a few round trips to a real server.

Invariants: the database holds exactly the model's subjects (ids, names, metadata, face
counts) and templates (ids, owners, vectors); the Gallery's index equals the database (every
template, searched with its own vector, comes back as its subject's best match with similarity
1 -- so the index's ids, vectors and owners are the database's); identify never returns a
forgotten subject; ids are never reused; a ``where`` filter returns exactly the subjects whose
metadata has that value. Templates are synthetic unit vectors stored with the store's
``add_face`` (what enrolment stores once a face passed its checks): no models, no images.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from faceprint.errors import (
    DuplicateImageError,
    InvalidArgumentError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateNotFoundError,
)
from faceprint.gallery import Gallery, MemoryStore, SQLiteStore
from faceprint.gallery.storage import NewFace
from faceprint.types import Box
from tests.fuzz.conftest import record
from tests.postgres import PostgresServer
from tests.unit.gallery.stores import DIM, MODEL, probe, unit

#: Sequences per store kind and steps per sequence (hypothesis shrinks a failure to its shortest).
SEQUENCES = {"sqlite": 200, "memory": 100, "postgresql": 15}
STEPS = 40

NAMES = st.sampled_from(["ada", "Ada", "bob", "cy", "dé", "名前", "x y", "o'neil", "z" * 256])
#: Keys a filter may name (plain names) and keys only metadata may have.
FILTER_KEYS = ["team", "age", "x-y", "名"]
KEYS = st.one_of(st.sampled_from(FILTER_KEYS), st.text(max_size=8))
SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["red", "blue", 1, 2, 1.5, True]),  # values subjects share, so filters select some
)
JSON = st.recursive(st.none() | SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                    max_leaves=8)
METADATA = st.dictionaries(KEYS, JSON, max_size=4)
#: Values every backend refuses (issue 13: NaN broke every filter; 2^63 overflowed SQLite).
BAD_VALUES = st.sampled_from([math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1, 10**30])


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396, written here from the RFC (the model does not borrow the store's own)."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = merge_patch(out[key] if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = value
    return out


def filter_matches(stored: Any, wanted: Any) -> bool:
    """``where``: null matches nothing, strings equal strings, numbers (and booleans, as 0 and 1)
    compare by value, objects and arrays are equal JSON (in any key order; 1, 1.0 and true differ)."""
    if stored is None or wanted is None:
        return False
    if isinstance(stored, (dict, list)) or isinstance(wanted, (dict, list)):
        return json.dumps(stored, sort_keys=True) == json.dumps(wanted, sort_keys=True)
    if isinstance(stored, str) or isinstance(wanted, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    return bool(stored == wanted)


@dataclass
class ModelSubject:
    id: int
    metadata: dict[str, Any]
    faces: dict[int, np.ndarray] = field(default_factory=dict)


#: Sequences run and steps taken, per store kind (the run's summary).
COUNTS: dict[str, int] = {}
STEPS_TAKEN: dict[str, int] = {}


class GalleryMachine(RuleBasedStateMachine):
    """The gallery against a model; ``kind`` is set by the subclass (store kind)."""

    kind = "sqlite"
    #: The PostgreSQL server of the "postgresql" kind (set by the test from its fixture).
    server: PostgresServer | None = None

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="faceprint-fuzz-")
        self.path = Path(self.tmp.name) / "g.db"
        self.database: str | None = None
        store = self.open_store()
        store.pin_model(MODEL, DIM)
        self.gallery = Gallery(store)
        #: Another connection to the same database (another process's writes); the memory store has none.
        self.other = self.open_store() if self.kind != "memory" else None
        self.model: dict[str, ModelSubject] = {}
        self.forgotten: list[tuple[int, np.ndarray]] = []  # (subject id, a vector it had)
        self.max_subject_id = 0
        self.max_face_id = 0
        self.images = 0
        self.shas: dict[int, str] = {}  # face id -> its image's digest
        self.steps = 0
        self.rng = np.random.default_rng(0)
        COUNTS[self.kind] = COUNTS.get(self.kind, 0) + 1

    def open_store(self) -> Any:
        """A store on this sequence's database (a new one the first time, for PostgreSQL)."""
        if self.kind == "memory":
            return MemoryStore()
        if self.kind == "postgresql":
            from faceprint.gallery.storage.postgres import PostgresStore

            assert self.server is not None
            if self.database is None:
                self.database = self.server.create_database()
            return PostgresStore(self.server.url(self.database), pool_size=2)
        return SQLiteStore(self.path)

    def teardown(self) -> None:
        self.gallery.close()
        if self.other is not None:
            self.other.close()
        if self.database is not None and self.server is not None:
            self.server.drop_database(self.database)
        self.tmp.cleanup()
        STEPS_TAKEN[self.kind] = STEPS_TAKEN.get(self.kind, 0) + self.steps

    faces = Bundle("faces")

    def writer(self, via_other: bool) -> Any:
        return self.other if via_other and self.other is not None else self.gallery

    def new_vector(self) -> np.ndarray:
        return unit(self.rng.normal(size=DIM))

    def fresh_subject_id(self, sid: int) -> None:
        assert sid > self.max_subject_id, f"subject id {sid} reused (last {self.max_subject_id})"
        self.max_subject_id = sid

    # --- rules ---------------------------------------------------------------------------------
    @rule(target=faces, name=NAMES, metadata=st.none() | METADATA, via_other=st.booleans())
    def enrol(self, name: str, metadata: dict[str, Any] | None, via_other: bool) -> int:
        self.steps += 1
        vector = self.new_vector()
        self.images += 1
        store = self.other if via_other and self.other is not None else self.gallery.store
        sha = f"{self.images:064x}"
        sid, fid = store.add_face(name, metadata, NewFace(embedding=vector, image_sha256=sha,
                                                          box=Box(0, 0, 10, 10), thumbnail=b"jpeg"))
        assert fid > self.max_face_id, f"face id {fid} reused"
        self.max_face_id = fid
        if name in self.model:
            subject = self.model[name]
            assert sid == subject.id
            if metadata:
                subject.metadata = merge_patch(subject.metadata, metadata)
        else:  # a new subject takes the metadata as given (nulls too)
            self.fresh_subject_id(sid)
            subject = self.model[name] = ModelSubject(sid, dict(metadata or {}))
        subject.faces[fid] = vector
        self.shas[fid] = sha
        return fid

    @precondition(lambda self: any(s.faces for s in self.model.values()))
    @rule(name=NAMES, data=st.data())
    def enrol_duplicate_image(self, name: str, data: st.DataObject) -> None:
        """An image whose face is stored (a deleted face's image may come back)."""
        self.steps += 1
        sha = self.shas[data.draw(st.sampled_from(sorted(fid for s in self.model.values() for fid in s.faces)))]
        with pytest.raises(DuplicateImageError):
            self.gallery.store.add_face(name, None, NewFace(embedding=self.new_vector(), image_sha256=sha))

    @rule(name=NAMES, key=st.sampled_from(FILTER_KEYS), bad=BAD_VALUES, how=st.sampled_from(["enrol", "create", "update"]))
    def refuse_bad_metadata(self, name: str, key: str, bad: float, how: str) -> None:
        self.steps += 1
        with pytest.raises((InvalidArgumentError, SubjectNotFoundError, SubjectExistsError)) as caught:
            if how == "enrol":
                self.gallery.store.add_face(name, {key: [bad]}, NewFace(embedding=self.new_vector(), image_sha256="f" * 64))
            elif how == "create":
                self.gallery.create_subject(name, {key: {"x": bad}})
            else:
                self.gallery.update_metadata(name, {key: bad})
        # (a missing or taken name may be reported first)
        assert caught.type is InvalidArgumentError or (caught.type is SubjectNotFoundError) == (name not in self.model)

    @rule(name=NAMES, metadata=METADATA, via_other=st.booleans())
    def create_subject(self, name: str, metadata: dict[str, Any], via_other: bool) -> None:
        self.steps += 1
        if name in self.model:
            with pytest.raises(SubjectExistsError):
                self.writer(via_other).create_subject(name, metadata)
            return
        subject = self.writer(via_other).create_subject(name, metadata)
        self.fresh_subject_id(subject.id)
        assert subject.name == name and subject.face_count == 0
        self.model[name] = ModelSubject(subject.id, dict(metadata))

    @rule(old=NAMES, new=NAMES, via_other=st.booleans())
    def rename(self, old: str, new: str, via_other: bool) -> None:
        self.steps += 1
        if old not in self.model:
            with pytest.raises(SubjectNotFoundError):
                self.writer(via_other).rename(old, new)
        elif new != old and new in self.model:
            with pytest.raises(SubjectExistsError):
                self.writer(via_other).rename(old, new)
        else:
            renamed = self.writer(via_other).rename(old, new)
            assert renamed.name == new and renamed.id == self.model[old].id
            self.model[new] = self.model.pop(old)

    @rule(source=NAMES, into=NAMES)
    def merge(self, source: str, into: str) -> None:
        self.steps += 1
        if source == into:
            with pytest.raises(InvalidArgumentError):
                self.gallery.merge(source, into)
        elif source not in self.model or into not in self.model:
            with pytest.raises(SubjectNotFoundError):
                self.gallery.merge(source, into)
        else:
            merged = self.gallery.merge(source, into)
            src, dst = self.model.pop(source), self.model[into]
            dst.faces.update(src.faces)
            dst.metadata = merge_patch(src.metadata, dst.metadata)  # the into's own values win
            assert merged.id == dst.id and merged.face_count == len(dst.faces)
            self.forgotten.extend((src.id, v) for v in list(src.faces.values())[:1])

    @rule(name=NAMES, via_other=st.booleans())
    def forget(self, name: str, via_other: bool) -> None:
        self.steps += 1
        if name not in self.model:
            with pytest.raises(SubjectNotFoundError):
                self.writer(via_other).forget(name)
            return
        removed = self.writer(via_other).forget(name)  # the store: the ids; the gallery: how many
        subject = self.model.pop(name)
        assert removed == (sorted(subject.faces) if via_other and self.other is not None else len(subject.faces))
        self.forgotten.extend((subject.id, v) for v in subject.faces.values())

    @rule(face=faces, via_other=st.booleans())
    def delete_face(self, face: int, via_other: bool) -> None:
        self.steps += 1
        owner = next((s for s in self.model.values() if face in s.faces), None)
        if owner is None:  # deleted or forgotten already
            with pytest.raises(TemplateNotFoundError):
                self.writer(via_other).delete_face(face)
            return
        self.writer(via_other).delete_face(face)
        del owner.faces[face]

    @rule(name=NAMES, metadata=METADATA, via_other=st.booleans())
    def update_metadata(self, name: str, metadata: dict[str, Any], via_other: bool) -> None:
        self.steps += 1
        if name not in self.model:
            with pytest.raises(SubjectNotFoundError):
                self.writer(via_other).update_metadata(name, metadata)
            return
        updated = self.writer(via_other).update_metadata(name, metadata)
        self.model[name].metadata = dict(metadata)
        assert updated.metadata == self.model[name].metadata

    @precondition(lambda self: self.kind != "memory")
    @rule()
    def reopen(self) -> None:
        """A new process opens the file: its index is built from the database alone."""
        self.steps += 1
        self.gallery.close()
        self.gallery = Gallery(self.open_store())

    @rule(data=st.data())
    def identify_with_filter(self, data: st.DataObject) -> None:
        """``where`` = one subject's metadata value: exactly the subjects that have it."""
        self.steps += 1
        pairs = [(k, v) for s in self.model.values() if s.faces for k, v in s.metadata.items()
                 if k in FILTER_KEYS and v is not None]
        if not pairs:
            return
        key, value = data.draw(st.sampled_from(pairs))
        queries = [v for s in self.model.values() for v in s.faces.values()]
        results = self.gallery.search(np.stack(queries), top_k=len(self.model), where={key: value})
        expected = {s.id for s in self.model.values() if s.faces and filter_matches(s.metadata.get(key), value)}
        for row in results:
            assert {c.subject_id for c in row} == expected, (key, value)

    # --- invariants ----------------------------------------------------------------------------
    @invariant()
    def database_equals_model(self) -> None:
        subjects = {s.name: s for s in self.gallery.subjects()}
        assert set(subjects) == set(self.model)
        for name, expected in self.model.items():
            got = subjects[name]
            assert got.id == expected.id
            assert got.metadata == expected.metadata, name
            assert got.face_count == len(expected.faces)
        ids, owners, vectors, _ = self.gallery.store.all_templates()
        owner_of = {fid: s.id for s in self.model.values() for fid in s.faces}
        assert dict(zip(ids.tolist(), owners.tolist())) == owner_of
        vector_of = {fid: v for s in self.model.values() for fid, v in s.faces.items()}
        for fid, vector in zip(ids.tolist(), vectors):
            np.testing.assert_allclose(vector, vector_of[fid], atol=1e-6)

    @invariant()
    def index_equals_database(self) -> None:
        assert self.gallery.check_consistency()
        faces = [(s, fid, v) for s in self.model.values() for fid, v in s.faces.items()]
        if not faces:
            return
        best = self.gallery.search(np.stack([v for _, _, v in faces]), top_k=1)
        for (subject, fid, _), row in zip(faces, best):
            assert len(row) == 1
            hit = row[0]
            # its own template is the best match; the vectors are random: any other is far
            assert hit.subject_id == subject.id and hit.face_id == fid and hit.similarity > 0.999, (hit, fid)

    @invariant()
    def forgotten_stay_forgotten(self) -> None:
        if not self.forgotten:
            return
        gone = {sid for sid, _ in self.forgotten}
        alive = {s.id: name for name, s in self.model.items()}
        for identity in self.gallery.identify_faces([probe(v) for _, v in self.forgotten[-8:]], top_k=5, threshold=-1.0):
            for c in identity.candidates:
                assert c.subject_id not in gone and alive.get(c.subject_id) == c.subject
            assert identity.identity is None or identity.identity in self.model


class SQLiteGalleryMachine(GalleryMachine):
    kind = "sqlite"


class MemoryGalleryMachine(GalleryMachine):
    kind = "memory"


class PostgresGalleryMachine(GalleryMachine):
    kind = "postgresql"


@pytest.mark.parametrize("machine", [SQLiteGalleryMachine, MemoryGalleryMachine, PostgresGalleryMachine],
                         ids=["sqlite", "memory", "postgresql"])
def test_gallery_matches_its_model(machine: type[GalleryMachine], request: pytest.FixtureRequest) -> None:
    kind = machine.kind
    if kind == "postgresql":
        machine.server = request.getfixturevalue("postgres_server")
    with record(f"gallery.state[{kind}]") as run:
        sequences, steps = COUNTS.get(kind, 0), STEPS_TAKEN.get(kind, 0)
        try:
            run_state_machine_as_test(machine, settings=settings(
                settings.get_profile("faceprint-fuzz"), max_examples=SEQUENCES[kind], stateful_step_count=STEPS))
        finally:
            run.cases += COUNTS.get(kind, 0) - sequences
            run.extra["steps"] = run.extra.get("steps", 0) + STEPS_TAKEN.get(kind, 0) - steps


# --- bugs the fuzzer found (issue 13), kept as regression tests ---------------------------------
@pytest.fixture(params=["sqlite", "memory"])
def gallery(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    store = SQLiteStore(tmp_path / "g.db") if request.param == "sqlite" else MemoryStore()
    store.pin_model(MODEL, DIM)
    g = Gallery(store)
    yield g
    g.close()


def filtered(gallery: Gallery, metadata: dict[str, Any], where: dict[str, Any]) -> list[int]:
    vector = unit(np.random.default_rng(1).normal(size=DIM))
    gallery.store.add_face("ada", metadata, NewFace(embedding=vector, image_sha256="a" * 64))
    return [c.subject_id for c in gallery.search(vector[None], where=where)[0]]


def test_filter_on_a_non_ascii_key(gallery: Gallery) -> None:
    """SQLite kept metadata ASCII-escaped (\\u540d), which its JSON path never matched."""
    assert filtered(gallery, {"名": "x"}, {"名": "x"}) == [gallery.subject("ada").id]


@pytest.mark.parametrize("value", [["a", "b"], {"x": 1}], ids=["array", "object"])
def test_filter_on_an_object_value(gallery: Gallery, value: Any) -> None:
    """An object or array was compared as json.dumps text (', ', ': ') with SQLite's minified text."""
    assert filtered(gallery, {"tags": value}, {"tags": value}) == [gallery.subject("ada").id]


def test_filter_on_an_object_value_in_another_key_order(gallery: Gallery) -> None:
    """An object filter matched only in the stored key order; JSON objects are unordered."""
    assert filtered(gallery, {"o": {"a": 2, "b": 1}}, {"o": {"b": 1, "a": 2}}) == [gallery.subject("ada").id]
    probe = unit(np.random.default_rng(1).normal(size=DIM))[None]
    assert gallery.search(probe, where={"o": {"b": 1, "a": 3}})[0] == []
    gallery.update_metadata("ada", {"p": [1, 2]})
    assert gallery.search(probe, where={"p": [2, 1]})[0] == []  # arrays are ordered
