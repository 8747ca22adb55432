"""What only the SQLite store does: files, several connections (processes), delete-means-gone
on disk."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from faceprint.errors import GalleryError, ModelMismatchError
from faceprint.gallery import Gallery, SQLiteStore
from tests.unit.gallery.stores import DIM, MODEL, add, probe, unit


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


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


def test_a_forget_inside_a_transaction_is_purged_when_it_commits(tmp_path, rng):
    path = tmp_path / "tx.db"
    g = Gallery.open(path)
    g.store.pin_model(MODEL, DIM)
    secret = unit(rng.normal(size=DIM))
    add(g, "gone", secret, "g1")
    with g.store.transaction():
        g.store.forget("gone")
    raw = secret.astype("<f4").tobytes()
    assert not any(raw in p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tx.db"))
    g.close()


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


def test_change_log_trim_forces_a_rebuild_across_connections(tmp_path, rng):
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


def test_model_pin_is_kept_in_the_file(tmp_path, rng):
    path = tmp_path / "pin.db"
    store = SQLiteStore(path)
    store.pin_model("other-model@1", 64)
    store.close()
    with pytest.raises(ModelMismatchError) as info:
        Gallery.open(path)
    assert info.value.code == "model_mismatch"


def test_not_a_gallery(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError) as info:
        Gallery.open(bogus)
    assert info.value.code == "gallery_unavailable"
    with pytest.raises(GalleryError):
        Gallery.open(tmp_path / "missing.db", create=False)


def test_a_failed_write_rolls_back_the_new_subject(tmp_path, rng):
    g = Gallery.open(tmp_path / "fail.db")
    g.store.pin_model(MODEL, DIM)
    # A write that fails after the new subject's row was inserted rolls that row back too.
    with pytest.raises(sqlite3.IntegrityError):
        add(g, "other-person", unit(rng.normal(size=DIM)), None)  # image_sha256 is NOT NULL
    assert [s.name for s in g.subjects()] == []
    g.close()


def test_a_forgotten_person_leaves_no_vector_or_thumbnail_in_the_files(tmp_path, rng):
    from faceprint.clustering.people import People
    from faceprint.gallery.storage import NewPhotoFace
    from faceprint.types import Box

    path = tmp_path / "people.db"
    g = Gallery.open(path)
    g.store.pin_model(MODEL, DIM)
    centre = unit(rng.normal(size=DIM))
    vectors = [unit(centre + 0.015 * rng.normal(size=DIM)) for _ in range(4)]
    for n, v in enumerate(vectors):
        g.store.add_photo(f"p{n}.jpg", f"{n:064x}", [NewPhotoFace(0, Box(0, 0, 40, 40), 0.9, True, v, b"SECRET-THUMB" * 10)])
    people = People(g)
    assert people.tidy() == (0, 1)
    (person,) = people.people()
    assert people.forget(person.id) == 4
    content = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("people.db"))
    assert b"SECRET-THUMB" not in content
    assert not any(v.astype("<f4").tobytes() in content for v in vectors)
    g.close()
