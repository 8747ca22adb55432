"""Re-enrolling a dlib gallery with fr-feature from the original photos (the shipped public-domain
faces): the people are still recognised, with the new model; keys, metadata and clustered people
survive; a photo that is gone refuses; an interruption changes nothing; and the command line."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from faceprint import Analyzer
from faceprint.clustering.people import People
from faceprint.gallery import Gallery, MemoryStore, SQLiteStore
from faceprint.gallery.migrate import MigrationIncompleteError, migrate_gallery, migrate_store
from faceprint.gallery.storage import NewFace, PhotoAssignment
from faceprint.gallery.storage.base import photo_face_template_key
from faceprint.service.auth import KeyStore
from faceprint.types import Box
from tests.conftest import face_image, needs_pack
from tests.integration.test_cli import faceprint, one_json

FR = "fr-feature@0.0.1"


@pytest.fixture(scope="module")
def dlib() -> Analyzer:
    return Analyzer(embedder="dlib-resnet34")


@pytest.fixture()
def photos(tmp_path):
    """The shipped faces copied to a folder of their own, so a test can move or delete them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("collins.jpg", "collins_2.jpg", "hopper.jpg", "hopper_2.jpg", "two_people.jpg"):
        shutil.copy(face_image(name), folder / name)
    return folder


@pytest.fixture()
def dlib_gallery(tmp_path, photos, dlib):
    """A dlib gallery: Collins (with metadata) and Hopper, one photo each, and an API key."""
    path = tmp_path / "people.db"
    with Gallery.open(path, analyzer=dlib, thumbnails=True) as g:  # the migration keeps them
        assert len(g.enroll("Collins", [photos / "collins.jpg"], metadata={"role": "astronaut"}).enrolled) == 1
        assert len(g.enroll("Hopper", [photos / "hopper.jpg"]).enrolled) == 1
        assert g.model_id == "dlib-resnet34@v1"
    keys = KeyStore(path)
    key, _ = keys.create(["recognize"], name="front desk")
    keys.close()
    return path, key


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_dlib_gallery_moves_to_fr_feature(dlib_gallery):
    needs_pack()
    path, key = dlib_gallery
    with Gallery.open(path) as g:
        old = {s.name: [t.image_sha256 for t in g.templates_by_id(s.id)] for s in g.subjects()}
    report = migrate_gallery(path, to="fr-feature")
    assert report.migrated and report.from_model == "dlib-resnet34@v1" and report.to_model == FR
    assert (report.subjects, report.templates, report.api_keys, report.lost) == (2, 2, 1, ())
    assert _files(path.parent) == ["people.db", "photos"]  # no temporary or old file left

    with Gallery.open(path) as g:  # runs the model it is pinned to now
        assert g.store.model() == (FR, 512) and g.analyzer.model_id == FR
        assert g.analyzer.detector_card.name == "fr-detect"
        assert {s.name: [t.image_sha256 for t in g.templates_by_id(s.id)] for s in g.subjects()} == old
        assert g.subject("Collins").metadata == {"role": "astronaut"}
        template = g.templates("Collins")[0]
        assert template.has_thumbnail and g.thumbnail(template.id)[:3] == b"\xff\xd8\xff"
        (collins,) = g.identify(face_image("collins_2.jpg"))
        assert collins.identity == "Collins" and collins.similarity >= collins.threshold
        (hopper,) = g.identify(face_image("hopper_2.jpg"))
        assert hopper.identity == "Hopper"
        assert all(c.subject != "Collins" or c.similarity < hopper.threshold for c in hopper.candidates)
    keys = KeyStore(path)
    try:
        assert keys.authenticate(key).name == "front desk"
    finally:
        keys.close()


def test_a_missing_photo_refuses_until_found_or_dropped(dlib_gallery, photos, tmp_path):
    needs_pack()
    path, _ = dlib_gallery
    elsewhere = tmp_path / "moved" / "deep"
    elsewhere.mkdir(parents=True)
    (photos / "hopper.jpg").rename(elsewhere / "renamed.jpg")
    before = path.read_bytes()

    with pytest.raises(MigrationIncompleteError) as caught:
        migrate_gallery(path, to="fr-feature")
    (lost,) = caught.value.report.lost
    assert (lost.subject, lost.reason, lost.path) == ("Hopper", "photo_not_found", str(photos / "hopper.jpg"))
    assert path.read_bytes() == before and _files(path.parent) == ["moved", "people.db", "photos"]

    # Found by its content under the folder given (recursively, under another name).
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    report = migrate_gallery(copy, to="fr-feature", images=[tmp_path / "moved"])
    assert report.templates == 2 and report.lost == ()
    with Gallery.open(copy) as g:
        assert g.templates("Hopper")[0].source == str(elsewhere / "renamed.jpg")

    # Or the loss accepted: Hopper stays, with no face.
    report = migrate_gallery(path, to="fr-feature", drop_missing=True)
    assert report.templates == 1 and [f.subject for f in report.lost] == ["Hopper"]
    assert report.emptied_subjects == ("Hopper",)
    with Gallery.open(path) as g:
        assert g.subject("Hopper").face_count == 0 and g.model_id == FR
        assert g.identify(face_image("hopper_2.jpg"))[0].identity is None


def test_an_interrupted_migration_changes_nothing(dlib_gallery):
    needs_pack()
    path, _ = dlib_gallery
    before = path.read_bytes()
    for stage in ("re-enrolling", "writing"):
        def stop(at: str, done: int, total: int, stage: str = stage) -> None:
            if at == stage and done >= 1:
                raise RuntimeError(f"stopped while {stage}")

        with pytest.raises(RuntimeError, match=stage):
            migrate_gallery(path, to="fr-feature", progress=stop)
        assert path.read_bytes() == before and _files(path.parent) == ["people.db", "photos"]
    with Gallery.open(path) as g:
        assert g.model_id == "dlib-resnet34@v1"


def test_a_face_not_found_at_its_box_is_reported(photos):
    needs_pack()
    source = MemoryStore()
    source.pin_model("dlib-resnet34@v1", 128)
    vector = np.full(128, 128**-0.5, np.float32)  # (never read: the faces are embedded again)
    # Collins' box where her face is; Hopper's recorded in a corner of the photo, where no face is.
    for name, photo, box in (("Collins", "collins.jpg", Box(80, 60, 165, 160)), ("Hopper", "hopper.jpg", Box(0, 0, 30, 30))):
        sha = hashlib.sha256((photos / photo).read_bytes()).hexdigest()
        source.add_face(name, None, NewFace(embedding=vector, image_sha256=sha, box=box, source=str(photos / photo)))
    with pytest.raises(MigrationIncompleteError) as caught:
        migrate_store(source, MemoryStore(), to="fr-feature")
    (lost,) = caught.value.report.lost
    assert lost.subject == "Hopper" and lost.reason == "face_not_found" and "IoU" in lost.message


def test_clustered_people_are_re_embedded_with_their_names_and_marks(tmp_path, photos, dlib):
    needs_pack()
    path = tmp_path / "library.db"
    with Gallery.open(path, analyzer=dlib) as g:
        people = People(g)
        people.add_photos([photos / n for n in ("collins.jpg", "collins_2.jpg", "hopper.jpg", "two_people.jpg")])
        faces = g.store.photo_faces()
        collins = [f for f in faces if "collins" in f.path or (f.path.endswith("two_people.jpg") and f.box.x1 < 240)]
        hopper = [f for f in faces if f not in collins]
        assert len(collins) == 3 and len(hopper) == 2
        # Start from what a user decided, whatever clustering made: Collins' faces, Hopper's unsorted.
        g.store.assign_photo_faces([PhotoAssignment(f.id, None) for f in faces])
        for person in g.store.people():
            g.store.delete_person(person.id)  # (it has no faces now)
        pid = g.store.create_person()
        g.store.assign_photo_faces([PhotoAssignment(f.id, pid, "user") for f in collins])
        g.store.mark_not_person(hopper[0].id, pid)
        people.name(pid, "Collins")
        old_keys = sorted(t.image_sha256 for t in g.templates("Collins"))
        indices = g.store.photo_face_indices()
        assert old_keys == sorted(photo_face_template_key(f.image_sha256, indices[f.id]) for f in collins)

    report = migrate_gallery(path, to="fr-feature")
    assert report.lost == () and report.photo_faces == 5 and report.people == 1 and report.templates == 3

    with Gallery.open(path) as g:
        assert g.model_id == FR
        person = People(g).person("Collins")
        assert sorted(f.image_sha256 for f in person.faces) == sorted(f.image_sha256 for f in collins)
        assert all(f.assigned_by == "user" and f.score is None for f in person.faces)
        assert sorted(t.image_sha256 for t in g.templates("Collins")) == old_keys
        marks = g.store.not_person_marks()
        hopper_new = [f for f in g.store.photo_faces() if f.person_id is None]
        assert len(hopper_new) == 2 and len(marks) == 1
        assert marks[0][1] == person.id and marks[0][0] in {f.id for f in hopper_new}
        (found,) = g.identify(face_image("collins_2.jpg"))
        assert found.identity == "Collins"
        assert g.identify(face_image("hopper_2.jpg"))[0].identity is None
        # none was kept (the default), so none is made: a face picture is biometric data
        assert all(g.store.photo_face_thumbnail(f.id) is None for f in g.store.photo_faces())
        assert not any(t.has_thumbnail for t in g.templates("Collins"))


def test_kept_photo_face_thumbnails_are_kept_by_the_migration(tmp_path, photos, dlib):
    needs_pack()
    path = tmp_path / "library.db"
    with Gallery.open(path, analyzer=dlib, thumbnails=True) as g:
        People(g).add_photos([photos / n for n in ("collins.jpg", "two_people.jpg")])
        assert len(g.store.photo_faces()) == 3
    assert migrate_gallery(path, to="fr-feature").photo_faces == 3
    with Gallery.open(path) as g:
        faces = g.store.photo_faces()
        assert len(faces) == 3 and all((g.store.photo_face_thumbnail(f.id) or b"")[:3] == b"\xff\xd8\xff" for f in faces)


# --- the command line -------------------------------------------------------------------------
def test_migrate_from_the_command_line(dlib_gallery, photos, tmp_path):
    needs_pack()
    path, _ = dlib_gallery
    (photos / "collins.jpg").rename(tmp_path / "collins_moved.jpg")
    before = path.read_bytes()
    proc = faceprint("--gallery", str(path), "gallery", "migrate", "--to", "fr-feature", "--jobs", "1", "--json")
    assert proc.returncode == 1
    error = one_json(proc)["error"]
    assert error["code"] == "migration_incomplete" and "--drop-missing" in error["message"]
    assert [(f["subject"], f["reason"]) for f in error["details"]["lost"]] == [("Collins", "photo_not_found")]
    assert path.read_bytes() == before

    human = faceprint("--gallery", str(path), "gallery", "migrate", "--to", "fr-feature", "--jobs", "1", columns=200)
    assert human.returncode == 1 and "Collins" in human.stdout and "photo_not_found" in human.stdout
    assert "migration_incomplete" in human.stderr

    doc = one_json(faceprint("--gallery", str(path), "gallery", "migrate", "--to", "fr-feature", "--images",
                             str(tmp_path), "--jobs", "1", "--json"))
    assert doc["migrated"] and doc["to_model"] == FR and doc["templates"] == 2 and doc["lost"] == []
    stats = one_json(faceprint("--gallery", str(path), "gallery", "stats", "--json"))
    assert stats["model"] == FR and stats["faces"] == 2

    again = faceprint("--gallery", str(path), "gallery", "migrate", "--to", "fr-feature")
    assert again.returncode == 0 and "nothing to do" in again.stdout

    # And back to dlib, keeping the fr-feature file under the name given.
    kept = tmp_path / "fr.db"
    back = faceprint("--gallery", str(path), "gallery", "migrate", "--to", "dlib-resnet34", "--images", str(tmp_path),
                     "--keep-old", str(kept), "--jobs", "1")
    assert back.returncode == 0, back.stderr
    assert "migrated from fr-feature@0.0.1 to dlib-resnet34@v1" in back.stdout and str(kept) in back.stdout
    assert SQLiteStore(kept, create=False).model() == (FR, 512)
    identified = one_json(faceprint("--gallery", str(path), "identify", str(face_image("collins_2.jpg")), "--json"))
    assert identified["results"][0]["faces"][0]["identity"] == "Collins"
