"""The gallery's database and index logic with synthetic vectors (no models, no images)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from faceprint.errors import (
    DuplicateImageError,
    GalleryError,
    InvalidArgumentError,
    ModelMismatchError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateNotFoundError,
)
from faceprint.gallery import Gallery, SQLiteStore
from faceprint.gallery.store import NewFace
from faceprint.types import Box, EmbeddedFace, Face, Landmarks

DIM = 128
MODEL = "dlib-resnet34@v1"


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def rng():
    return np.random.default_rng(7)


@pytest.fixture()
def gallery(tmp_path):
    g = Gallery.open(tmp_path / "g.db")
    g.store.pin_model(MODEL, DIM)
    yield g
    g.close()


def add(g: Gallery, name: str, vec: np.ndarray, sha: str, metadata=None, thumb: bytes | None = b"jpeg") -> int:
    _, face_id = g.store.add_face(name, metadata, NewFace(embedding=vec, image_sha256=sha, box=Box(0, 0, 10, 10), thumbnail=thumb))
    g._dirty = True
    return face_id


def probe(vec: np.ndarray, model: str = MODEL) -> EmbeddedFace:
    return EmbeddedFace(Face(Box(0, 0, 10, 10), 1.0, Landmarks(np.zeros((5, 2)), "dlib5")), vec, model)


def people(g: Gallery, rng, n: int = 20, per: int = 3) -> dict[str, np.ndarray]:
    centres = {}
    for i in range(n):
        c = unit(rng.normal(size=DIM))
        centres[f"p{i}"] = c
        for j in range(per):
            add(g, f"p{i}", unit(c + 0.015 * rng.normal(size=DIM)), f"sha-{i}-{j}", metadata={"group": "staff" if i % 2 else "visitor"})
    return centres


def test_identify_finds_the_right_subject_and_unknowns_are_null(gallery, rng):
    centres = people(gallery, rng)
    (hit,) = gallery.identify_faces([probe(unit(centres["p3"] + 0.015 * rng.normal(size=DIM)))])
    assert hit.identity == "p3" and hit.similarity >= hit.threshold and hit.far == 1e-3
    assert hit.candidates[0].subject == "p3" and len(hit.candidates) == 5
    assert [c.similarity for c in hit.candidates] == sorted((c.similarity for c in hit.candidates), reverse=True)
    (miss,) = gallery.identify_faces([probe(unit(rng.normal(size=DIM)))])
    assert miss.identity is None and miss.similarity < miss.threshold


def test_two_faces_never_get_the_same_subject(gallery, rng):
    centres = people(gallery, rng, n=5)
    a = probe(unit(centres["p1"] + 0.008 * rng.normal(size=DIM)))
    b = probe(unit(centres["p1"] + 0.02 * rng.normal(size=DIM)))
    first, second = gallery.identify_faces([a, b])
    assert first.identity == "p1" and second.identity != "p1"
    assert second.note and "p1" in second.note


def test_metadata_filter_applies_inside_the_search(gallery, rng):
    centres = people(gallery, rng)
    q = probe(unit(centres["p2"] + 0.012 * rng.normal(size=DIM)))  # p2 is a visitor
    (hit,) = gallery.identify_faces([q], where={"group": "staff"}, top_k=3)
    assert len(hit.candidates) == 3 and hit.identity is None
    assert all(int(c.subject[1:]) % 2 == 1 for c in hit.candidates)
    (none,) = gallery.identify_faces([q], where={"group": "nobody"})
    assert none.candidates == () and none.identity is None


def test_forget_removes_subject_templates_thumbnails_and_index_entries(gallery, rng):
    centres = people(gallery, rng, n=4)
    ids = [t.id for t in gallery.templates("p1")]
    assert gallery.forget("p1") == 3
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("p1")
    for fid in ids:
        with pytest.raises(TemplateNotFoundError):
            gallery.thumbnail(fid)
    (hit,) = gallery.identify_faces([probe(centres["p1"])], top_k=10)
    assert all(c.subject != "p1" for c in hit.candidates)
    assert gallery.check_consistency()


def test_forgotten_vectors_are_not_in_the_database_files(tmp_path, rng):
    path = tmp_path / "forget.db"
    g = Gallery.open(path)
    g.store.pin_model(MODEL, DIM)
    secret = unit(rng.normal(size=DIM))
    add(g, "keep", unit(rng.normal(size=DIM)), "k1")
    add(g, "gone", secret, "g1", thumb=b"THUMBNAIL-OF-GONE" * 20)
    g.identify_faces([probe(secret)])  # the index holds it now
    raw = secret.astype("<f4").tobytes()
    assert any(raw in p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("forget.db"))
    g.forget("gone")
    for p in tmp_path.iterdir():
        if p.name.startswith("forget.db"):
            content = p.read_bytes()
            assert raw not in content and b"THUMBNAIL-OF-GONE" not in content, p.name
    g.close()


def test_rename_merge_delete_face(gallery, rng):
    people(gallery, rng, n=3)
    assert gallery.rename("p0", "Ada").name == "Ada"
    with pytest.raises(SubjectExistsError):
        gallery.rename("Ada", "p1")
    merged = gallery.merge("p1", "Ada")
    assert merged.face_count == 6
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("p1")
    with pytest.raises(InvalidArgumentError):
        gallery.merge("Ada", "Ada")
    fid = gallery.templates("Ada")[0].id
    gallery.delete_face(fid)
    assert gallery.subject("Ada").face_count == 5
    with pytest.raises(TemplateNotFoundError):
        gallery.delete_face(fid)
    assert gallery.check_consistency()


def test_index_follows_another_process_connection(tmp_path, rng):
    path = tmp_path / "shared.db"
    reader, writer = Gallery.open(path), Gallery.open(path)
    writer.store.pin_model(MODEL, DIM)
    v = unit(rng.normal(size=DIM))
    assert reader.identify_faces([probe(v)])[0].candidates == ()
    add(writer, "late", v, "s1")
    assert reader.identify_faces([probe(v)])[0].identity == "late"
    writer.forget("late")
    assert reader.identify_faces([probe(v)])[0].candidates == ()
    assert reader.check_consistency()
    reader.close()
    writer.close()


def test_change_log_trim_forces_a_rebuild_not_a_wrong_index(tmp_path, rng):
    path = tmp_path / "trim.db"
    reader, writer = Gallery.open(path), Gallery.open(path)
    writer.store.pin_model(MODEL, DIM)
    add(writer, "a", unit(rng.normal(size=DIM)), "s1")
    reader.identify_faces([probe(unit(rng.normal(size=DIM)))])
    for i in range(5):
        add(writer, f"b{i}", unit(rng.normal(size=DIM)), f"t{i}")
    writer.store.trim_changes(keep=2)
    assert reader.check_consistency()
    reader.close()
    writer.close()


def test_model_pin_and_mismatch(tmp_path, rng):
    path = tmp_path / "pin.db"
    store = SQLiteStore(path)
    store.pin_model("other-model@1", 64)
    store.close()
    with pytest.raises(ModelMismatchError) as info:
        Gallery.open(path)
    assert info.value.code == "model_mismatch"
    g = Gallery.open(tmp_path / "ok.db")
    g.store.pin_model(MODEL, DIM)
    with pytest.raises(ModelMismatchError):
        g.identify_faces([probe(unit(rng.normal(size=DIM)), model="other-model@1")])


def test_export_import_round_trip(tmp_path, gallery, rng):
    centres = people(gallery, rng, n=3)
    assert gallery.export(tmp_path / "out.json.gz") == 9
    other = Gallery.open(tmp_path / "copy.db")
    assert other.import_(tmp_path / "out.json.gz") == {"added": 9, "skipped_duplicates": 0}
    assert other.import_(tmp_path / "out.json.gz") == {"added": 0, "skipped_duplicates": 9}
    assert {s.name: s.face_count for s in other.subjects()} == {"p0": 3, "p1": 3, "p2": 3}
    assert other.subject("p1").metadata == {"group": "staff"}
    assert other.identify_faces([probe(centres["p2"])])[0].identity == "p2"
    other.close()


def test_not_a_gallery_and_bad_names(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError) as info:
        Gallery.open(bogus)
    assert info.value.code == "gallery_unavailable"
    with pytest.raises(GalleryError):
        Gallery.open(tmp_path / "missing.db", create=False)
    g = Gallery.open(tmp_path / "names.db")
    with pytest.raises(InvalidArgumentError):
        g.store.add_face("   ", None, NewFace(np.zeros(DIM, np.float32), "x"))


def test_a_failed_write_leaves_nothing_behind(gallery, rng):
    add(gallery, "a", unit(rng.normal(size=DIM)), "same-sha")
    with pytest.raises(DuplicateImageError) as err:  # checked inside the write transaction
        add(gallery, "new-person", unit(rng.normal(size=DIM)), "same-sha")
    assert err.value.code == "duplicate_image"
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("new-person")
    # A write that fails after the new subject's row was inserted rolls that row back too.
    with pytest.raises(sqlite3.IntegrityError):
        add(gallery, "other-person", unit(rng.normal(size=DIM)), None)  # image_sha256 is NOT NULL
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("other-person")
