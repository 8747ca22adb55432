"""Gallery behaviour with synthetic vectors (no models, no images), on every store kind."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faceprint.errors import (
    DuplicateImageError,
    InvalidArgumentError,
    ModelMismatchError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateNotFoundError,
)
from faceprint.gallery import Gallery, MemoryStore
from faceprint.gallery.storage import NewFace
from tests.unit.gallery.stores import DIM, add, probe, unit


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def people(g: Gallery, rng: np.random.Generator, n: int = 20, per: int = 3) -> dict[str, np.ndarray]:
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
    with pytest.raises(InvalidArgumentError):
        gallery.identify_faces([q], where={"group') OR 1=1 --": "x"})


def test_metadata_filter_matches_numbers_and_booleans_as_the_database_does(gallery, rng):
    add(gallery, "a", unit(rng.normal(size=DIM)), "a1", metadata={"level": 3, "active": True, "tag": "3"})
    add(gallery, "b", unit(rng.normal(size=DIM)), "b1", metadata={"level": 3.0, "active": False, "tag": None})
    ids = {name: {t.id for t in gallery.templates(name)} for name in ("a", "b")}
    assert set(gallery.store.face_ids_where({"level": 3}).tolist()) == ids["a"] | ids["b"]
    assert set(gallery.store.face_ids_where({"active": True}).tolist()) == ids["a"]
    assert set(gallery.store.face_ids_where({"tag": "3"}).tolist()) == ids["a"]
    assert gallery.store.face_ids_where({"tag": None}).tolist() == []  # JSON null matches nothing


def test_forget_means_never_returned_again(gallery, rng):
    centres = people(gallery, rng, n=4)
    ids = [t.id for t in gallery.templates("p1")]
    gallery.identify_faces([probe(centres["p1"])])  # the index holds p1 now
    assert gallery.forget("p1") == 3
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("p1")
    for fid in ids:
        with pytest.raises(TemplateNotFoundError):
            gallery.thumbnail(fid)
        with pytest.raises(TemplateNotFoundError):
            gallery.template(fid)
    (hit,) = gallery.identify_faces([probe(centres["p1"])], top_k=10)
    assert all(c.subject != "p1" for c in hit.candidates) and hit.identity is None
    assert not set(ids) & set(gallery.store.all_templates().face_ids.tolist())
    assert gallery.store.read_templates(ids).face_ids.tolist() == []
    assert "p1" not in {f.subject for f in gallery.store.export_faces()}
    assert gallery.check_consistency()
    with pytest.raises(SubjectNotFoundError):
        gallery.forget("p1")


def test_rename_merge_delete_face(gallery, rng):
    centres = people(gallery, rng, n=3)
    assert gallery.rename("p0", "Ada").name == "Ada"
    with pytest.raises(SubjectExistsError):
        gallery.rename("Ada", "p1")
    p1_faces = {t.id for t in gallery.templates("p1")}
    merged = gallery.merge("p1", "Ada")
    assert merged.face_count == 6 and merged.metadata == {"group": "visitor"}  # the target's own value
    assert p1_faces <= {t.id for t in gallery.templates("Ada")}  # merge moves the faces
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("p1")
    (hit,) = gallery.identify_faces([probe(centres["p1"])])
    assert hit.identity == "Ada"  # the index follows the move
    with pytest.raises(InvalidArgumentError):
        gallery.merge("Ada", "Ada")
    with pytest.raises(SubjectNotFoundError):
        gallery.merge("nobody", "Ada")
    fid = gallery.templates("Ada")[0].id
    gallery.delete_face(fid)
    assert gallery.subject("Ada").face_count == 5
    with pytest.raises(TemplateNotFoundError):
        gallery.delete_face(fid)
    assert gallery.check_consistency()


def test_subjects_pages_counts_and_lookups(gallery, rng):
    people(gallery, rng, n=5, per=2)
    created = gallery.create_subject("  Zed ", {"k": 1})
    assert created.name == "Zed" and created.face_count == 0 and created.metadata == {"k": 1}
    with pytest.raises(SubjectExistsError):
        gallery.create_subject("Zed")
    assert [s.name for s in gallery.subjects()] == ["Zed", "p0", "p1", "p2", "p3", "p4"]
    assert [s.name for s in gallery.subjects(limit=2, offset=1)] == ["p0", "p1"]
    assert gallery.subject_count() == 6
    assert gallery.store.count() == (6, 10, 10)
    sid = gallery.subject("p2").id
    assert gallery.subject_by_id(sid).name == "p2"
    templates = gallery.templates_by_id(sid)
    assert [t.id for t in templates] == [t.id for t in gallery.templates("p2")] and len(templates) == 2
    assert gallery.template(templates[0].id) == templates[0] and templates[0].has_thumbnail
    with pytest.raises(SubjectNotFoundError):
        gallery.subject_by_id(10_000)
    assert gallery.update_metadata("p2", {"new": True}).metadata == {"new": True}
    stats = gallery.stats()
    assert (stats.subjects, stats.faces, stats.thumbnails) == (6, 10, 10)


def test_enrolment_metadata_merges_into_the_subject(gallery, rng):
    add(gallery, "a", unit(rng.normal(size=DIM)), "a1", metadata={"team": "x", "nested": {"a": 1}})
    add(gallery, "a", unit(rng.normal(size=DIM)), "a2", metadata={"nested": {"b": 2}, "drop": None})
    assert gallery.subject("a").metadata == {"team": "x", "nested": {"a": 1, "b": 2}}


def test_model_pin_refuses_other_models(gallery, rng):
    with pytest.raises(ModelMismatchError):
        gallery.store.pin_model("other-model@1", 64)
    with pytest.raises(ModelMismatchError):
        gallery.identify_faces([probe(unit(rng.normal(size=DIM)), model="other-model@1")])
    other = MemoryStore()
    other.pin_model("other-model@1", 64)
    with pytest.raises(ModelMismatchError) as info:
        Gallery(other)
    assert info.value.code == "model_mismatch"


def test_export_import_round_trip(tmp_path, gallery, rng):
    centres = people(gallery, rng, n=3)
    gallery.create_subject("nobody yet")
    # plaintext: to another gallery (an encrypted gallery's default export opens only in its own)
    assert gallery.export(tmp_path / "out.json.gz", include_images=True, plaintext=True) == 9
    for other in (Gallery.open(tmp_path / "copy.db"), Gallery.in_memory()):
        assert other.import_(tmp_path / "out.json.gz") == {"added": 9, "skipped_duplicates": 0}
        assert other.import_(tmp_path / "out.json.gz") == {"added": 0, "skipped_duplicates": 9}
        assert {s.name: s.face_count for s in other.subjects()} == {"p0": 3, "p1": 3, "p2": 3}
        assert other.subject("p1").metadata == {"group": "staff"}
        assert other.identify_faces([probe(centres["p2"])])[0].identity == "p2"
        assert other.thumbnail(other.templates("p0")[0].id) == b"jpeg"
        other.close()



def test_a_malformed_export_imports_nothing_and_says_why(tmp_path, gallery, rng):
    """A damaged export is an invalid_argument naming the entry, never a KeyError/500, and no
    template of it is written (the import is one transaction, checked before it writes)."""
    import gzip
    import json

    people(gallery, rng, n=3)
    gallery.export(tmp_path / "out.json.gz", plaintext=True)
    doc = json.loads(gzip.decompress((tmp_path / "out.json.gz").read_bytes()))
    broken = json.loads(json.dumps(doc))
    del broken["subjects"][2]["faces"][1]["embedding"]  # the 9th template of 9
    bad_vector = json.loads(json.dumps(doc))
    bad_vector["subjects"][1]["faces"][0]["embedding"] = "AAAA"
    for n, variant in enumerate(({"format": doc["format"]}, {**doc, "subjects": None}, broken, bad_vector)):
        path = tmp_path / f"bad{n}.json"
        path.write_text(json.dumps(variant))
        target = Gallery.open(tmp_path / f"copy{n}.db")
        with pytest.raises(InvalidArgumentError):
            target.import_(path)
        assert target.stats().faces == 0 and target.subjects() == []
        target.close()


def test_a_filter_is_checked_even_when_the_gallery_is_empty(store):
    with pytest.raises(InvalidArgumentError):
        Gallery(store).search(np.zeros((1, DIM), np.float32), where={f"k{i}": i for i in range(999)})

def test_bad_names_and_duplicate_images(gallery, rng):
    with pytest.raises(InvalidArgumentError):
        gallery.store.add_face("   ", None, NewFace(np.zeros(DIM, np.float32), "x"))
    with pytest.raises(InvalidArgumentError):
        gallery.create_subject("x" * 257)
    add(gallery, "a", unit(rng.normal(size=DIM)), "same-sha")
    with pytest.raises(DuplicateImageError) as err:  # checked inside the write transaction
        add(gallery, "new-person", unit(rng.normal(size=DIM)), "same-sha")
    assert err.value.code == "duplicate_image"
    with pytest.raises(SubjectNotFoundError):
        gallery.subject("new-person")


def test_a_failed_transaction_leaves_nothing_behind(gallery, rng):
    add(gallery, "a", unit(rng.normal(size=DIM)), "a1")
    with pytest.raises(RuntimeError):
        with gallery.store.transaction():
            add(gallery, "b", unit(rng.normal(size=DIM)), "b1")
            gallery.store.create_subject("c")
            raise RuntimeError("boom")
    assert [s.name for s in gallery.subjects()] == ["a"]
    assert gallery.check_consistency()
    with gallery.store.transaction():  # an error caught inside undoes only its own call
        add(gallery, "b", unit(rng.normal(size=DIM)), "b1")
        with pytest.raises(DuplicateImageError):
            add(gallery, "d", unit(rng.normal(size=DIM)), "b1")
    assert [s.name for s in gallery.subjects()] == ["a", "b"]


def test_change_log_trim_forces_a_rebuild_not_a_wrong_index(store, rng):
    reader, writer = Gallery(store), Gallery(store)
    add(writer, "a", unit(rng.normal(size=DIM)), "s1")
    reader.identify_faces([probe(unit(rng.normal(size=DIM)))])
    for i in range(5):
        add(writer, f"b{i}", unit(rng.normal(size=DIM)), f"t{i}")
    store.trim_changes(keep=2)
    assert store.changes_since(0) is None
    assert reader.check_consistency()
    v = unit(rng.normal(size=DIM))
    add(writer, "late", v, "t-late")
    assert reader.identify_faces([probe(v)])[0].identity == "late"


def test_concurrent_identify_and_forget_never_fail(gallery, rng):
    """Bug 3: a search that read the index while a forget in another thread took subjects out
    of it raised KeyError (a 500 in the service)."""
    centres = people(gallery, rng, n=30, per=2)
    queries = [probe(unit(c + 0.015 * rng.normal(size=DIM))) for c in centres.values()]
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                for found in gallery.identify_faces(queries[:8], top_k=20):
                    assert found.identity is None or found.identity in centres
                gallery.search(np.stack([q.embedding for q in queries]), top_k=50)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    def churn() -> None:
        try:
            for round_ in range(4):  # forget everyone, enrol them again
                for name in centres:
                    gallery.forget(name)
                for name, centre in centres.items():
                    add(gallery, name, centre, f"{name}-again-{round_}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    searchers = [threading.Thread(target=search) for _ in range(3)]
    for t in searchers:
        t.start()
    churn()
    stop.set()
    for t in searchers:
        t.join()
    assert not errors, errors[0]
    assert gallery.check_consistency()
    assert gallery.subject_count() == 30
