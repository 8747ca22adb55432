"""Gallery migration without images: box matching, the store methods it reads, what it refuses,
and the file mechanics (atomic replace, keys kept, nothing left behind). Re-enrolment from real
photos is in tests/integration/gallery/test_gallery_migrate.py."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from faceprint.errors import GalleryError, InvalidArgumentError, UnknownModelError
from faceprint.gallery import MemoryStore, SQLiteStore
from faceprint.gallery.migrate import (
    MATCH_IOU,
    MigrationIncompleteError,
    match_boxes,
    migrate_gallery,
    migrate_store,
)
from faceprint.gallery.storage import GalleryStore, NewFace, NewPhotoFace
from faceprint.gallery.storage.base import photo_face_template_key
from faceprint.gallery.types import ApiKey
from faceprint.types import Box
from tests.unit.gallery.stores import DIM, unit

OLD_MODEL = "retired-model@v0"  # a model this faceprint does not have: migration never runs it


def test_match_boxes_pairs_best_overlap_first_each_new_box_once():
    a, b = Box(0, 0, 100, 100), Box(200, 0, 300, 100)
    a_new, b_new = Box(10, 10, 110, 115), Box(190, 5, 290, 110)  # the same faces, framed differently
    far = Box(500, 500, 600, 600)
    assert match_boxes([a, b], [far, b_new, a_new]) == [2, 1]
    # Both old boxes want the same detection: the better overlap takes it, the other gets none.
    assert match_boxes([a, Box(5, 5, 105, 105)], [a_new]) == [None, 0]
    assert match_boxes([a], [far]) == [None]
    assert match_boxes([a], []) == [None]


def test_match_boxes_threshold_and_unrecorded_boxes():
    old = Box(0, 0, 100, 100)
    just_over = Box(0, 0, 100, 100 * MATCH_IOU + 1)  # IoU a little above the threshold
    just_under = Box(0, 0, 100, 100 * MATCH_IOU - 1)
    assert match_boxes([old], [just_over]) == [0]
    assert match_boxes([old], [just_under]) == [None]
    # No box recorded: the only face, but never a guess among several.
    assert match_boxes([None], [just_under]) == [0]
    assert match_boxes([None], [just_under, old]) == [None]


def test_photo_face_indices_and_template_key(store: GalleryStore):
    emb = unit(np.ones(DIM, np.float32))
    faces = [NewPhotoFace(i, Box(10 * i, 0, 10 * i + 50, 50), 0.9, True, emb, None) for i in (0, 2, 5)]
    assert store.add_photo("/photos/group.jpg", "s" * 64, faces)
    assert store.add_photo("/photos/solo.jpg", "t" * 64, [NewPhotoFace(0, Box(0, 0, 50, 50), 0.9, True, emb, None)])
    by_id = {f.id: f for f in store.photo_faces()}
    indices = store.photo_face_indices()
    assert set(indices) == set(by_id)
    assert sorted(i for fid, i in indices.items() if by_id[fid].image_sha256 == "s" * 64) == [0, 2, 5]
    # The key clustering enrols a photo face under: the photo's hash and the face's index.
    assert photo_face_template_key("s" * 64, 2) == hashlib.sha256(("s" * 64 + "#2").encode()).hexdigest()
    assert photo_face_template_key("s" * 64, 2) != photo_face_template_key("s" * 64, 5)


def _old_gallery(store: GalleryStore, tmp_path) -> str:
    """Two subjects whose photos are gone, one subject with no face, and an API key."""
    store.pin_model(OLD_MODEL, DIM)
    rng = np.random.default_rng(1)
    for i, name in enumerate(("Ada", "Ada", "Grace")):
        store.add_face(name, {"team": "a"} if name == "Ada" else None, NewFace(
            embedding=unit(rng.normal(size=DIM)), image_sha256=f"{i:064x}", box=Box(0, 0, 50, 50),
            source=str(tmp_path / f"gone_{i}.jpg"), thumbnail=b"jpeg"))
    store.create_subject("Nobody", {"note": "no face yet"})
    record = ApiKey("key1", "app", ("recognize",), "2024-01-01T00:00:00+00:00", None, None)
    store.add_api_key(record, "h" * 64)
    return record.key_id


def test_lost_faces_refuse_and_leave_the_target_untouched(tmp_path):
    source, target = MemoryStore(), MemoryStore()
    _old_gallery(source, tmp_path)
    with pytest.raises(MigrationIncompleteError) as caught:
        migrate_store(source, target, to="dlib-resnet34")
    report = caught.value.report
    assert caught.value.code == "migration_incomplete" and not report.migrated
    assert [(f.subject, f.reason) for f in report.lost] == [("Ada", "photo_not_found")] * 2 + [("Grace", "photo_not_found")]
    assert report.emptied_subjects == ("Ada", "Grace")
    assert caught.value.details["lost"][0]["path"] == str(tmp_path / "gone_0.jpg")
    assert target.model() is None and target.count() == (0, 0, 0) and target.api_keys() == []


def test_drop_missing_keeps_subjects_metadata_and_keys(tmp_path):
    source, target = MemoryStore(), MemoryStore()
    key_id = _old_gallery(source, tmp_path)
    report = migrate_store(source, target, to="dlib-resnet34", drop_missing=True)
    assert report.migrated and report.templates == 0 and len(report.lost) == 3 and report.api_keys == 1
    assert report.from_model == OLD_MODEL and report.to_model == "dlib-resnet34@v1"
    assert target.model() == ("dlib-resnet34@v1", 128)
    assert {s.name: (s.metadata, s.face_count) for s in target.subjects()} == {
        "Ada": ({"team": "a"}, 0), "Grace": ({}, 0), "Nobody": ({"note": "no face yet"}, 0)}
    kept = target.api_key(key_id)
    assert kept is not None and kept.key_sha256 == "h" * 64 and kept.record == source.api_keys()[0]


def test_nothing_to_do_and_bad_arguments(tmp_path):
    source = MemoryStore()
    source.pin_model("dlib-resnet34@v1", 128)
    same = migrate_store(source, MemoryStore(), to="dlib-resnet34")
    assert not same.migrated and "already holds templates of dlib-resnet34@v1" in same.message
    empty = migrate_store(MemoryStore(), MemoryStore(), to="dlib-resnet34")
    assert not empty.migrated and "no templates" in empty.message
    with pytest.raises(UnknownModelError):
        migrate_store(source, MemoryStore(), to="no-such-model")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        migrate_store(source, MemoryStore(), to="fr-feature", images=[tmp_path / "typo"])


# --- the file ---------------------------------------------------------------------------------
@pytest.fixture()
def old_file(tmp_path):
    path = tmp_path / "people.db"
    store = SQLiteStore(path)
    _old_gallery(store, tmp_path)
    store.close()
    return path


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_refused_or_interrupted_migration_leaves_the_file_as_it_was(old_file):
    before = old_file.read_bytes()
    with pytest.raises(MigrationIncompleteError):
        migrate_gallery(old_file, to="dlib-resnet34")
    assert old_file.read_bytes() == before and _files(old_file.parent) == ["people.db"]

    def interrupt(stage: str, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate_gallery(old_file, to="dlib-resnet34", drop_missing=True, progress=interrupt)
    assert old_file.read_bytes() == before and _files(old_file.parent) == ["people.db"]


def test_refuses_while_another_process_has_the_gallery_open(old_file):
    before = old_file.read_bytes()
    other = SQLiteStore(old_file)  # another connection: what a running service holds
    try:
        with pytest.raises(GalleryError, match="open in another process"):
            migrate_gallery(old_file, to="dlib-resnet34", drop_missing=True)
    finally:
        other.close()
    assert old_file.read_bytes() == before and _files(old_file.parent) == ["people.db"]


def test_replaced_file_keeps_keys_and_leaves_no_copy_of_the_old(old_file):
    store = SQLiteStore(old_file, create=False)
    secret = next(store.export_faces()).embedding.astype("<f4").tobytes()
    store.close()
    assert secret in old_file.read_bytes()
    os.chmod(old_file, 0o600)
    old_inode = os.open(old_file, os.O_RDONLY)  # the old file's bytes, after it is replaced
    try:
        report = migrate_gallery(old_file, to="dlib-resnet34", drop_missing=True)
        old_bytes = os.pread(old_inode, 1 << 20, 0)
    finally:
        os.close(old_inode)
    assert report.migrated and report.path == str(old_file) and report.kept_old is None
    assert old_bytes and old_bytes == bytes(len(old_bytes))  # zeroed
    assert _files(old_file.parent) == ["people.db"] and secret not in old_file.read_bytes()
    assert os.stat(old_file).st_mode & 0o777 == 0o600
    store = SQLiteStore(old_file, create=False)
    try:
        assert store.model() == ("dlib-resnet34@v1", 128)
        assert [k.key_id for k in store.api_keys()] == ["key1"] and store.api_key("key1").key_sha256 == "h" * 64
        assert sorted(s.name for s in store.subjects()) == ["Ada", "Grace", "Nobody"]
    finally:
        store.close()


def test_keep_old_keeps_the_old_file_under_the_name_given(old_file):
    before = old_file.read_bytes()
    keep = old_file.with_name("people-dlib.db")
    report = migrate_gallery(old_file, to="dlib-resnet34", drop_missing=True, keep_old=keep)
    assert report.kept_old == str(keep) and keep.read_bytes() == before
    store = SQLiteStore(old_file, create=False)
    assert store.model() == ("dlib-resnet34@v1", 128)
    store.close()
    with pytest.raises(InvalidArgumentError, match="already exists"):
        migrate_gallery(old_file, to="dlib-resnet34", keep_old=keep)


def test_a_change_committed_meanwhile_stops_the_migration(old_file):
    def enrol_meanwhile(stage: str, done: int, total: int) -> None:
        if stage == "finding photos" and done == 1:  # another process commits while the migration reads
            other = SQLiteStore(old_file)
            other.create_subject("Late")
            other.close()

    with pytest.raises(GalleryError, match="changed while the migration ran"):
        migrate_gallery(old_file, to="dlib-resnet34", drop_missing=True, progress=enrol_meanwhile)
    store = SQLiteStore(old_file, create=False)
    try:
        assert store.model() == (OLD_MODEL, DIM) and "Late" in {s.name for s in store.subjects()}
    finally:
        store.close()
    assert _files(old_file.parent) == ["people.db"]
