"""An old gallery file opens with this faceprint, is migrated to the current schema, and works.

tests/data/galleries/v1_people_keys.db was made by commit 9ea8f45 (see the README beside it):
schema version 1, with the people and API key tables their modules created unversioned."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from faceprint.clustering.people import People
from faceprint.errors import GalleryError, SubjectNotFoundError, UnauthorizedError
from faceprint.gallery import Gallery, SQLiteStore
from faceprint.gallery.storage import SCHEMA_VERSION
from faceprint.gallery.storage.migrations import MIGRATIONS
from faceprint.service.auth import KeyStore
from tests.conftest import REPO
from tests.unit.gallery.stores import probe

V1 = REPO / "tests" / "data" / "galleries" / "v1_people_keys.db"
V1_KEY = "fp_982659ee_z3pWpzaqduVs9k3pruBt4AxdO7IL9ZOoQs6oHr3jTmo"


@pytest.fixture()
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copyfile(V1, path)
    return path


def test_migrations_are_numbered_in_order():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == MIGRATIONS[-1].version


def test_a_v1_file_is_migrated_and_keeps_everything(old_file, caplog):
    with caplog.at_level(logging.INFO, logger="faceprint.gallery.storage.sqlite"):
        g = Gallery.open(old_file)
    steps = [r.getMessage() for r in caplog.records if "schema" in r.getMessage()]
    assert len(steps) == SCHEMA_VERSION - 1 and "schema 1 -> 2" in steps[0], steps
    assert isinstance(g.store, SQLiteStore) and g.store.schema_version() == SCHEMA_VERSION
    assert g.store.integrity_check() == ["ok"]

    subjects = {s.name: s for s in g.subjects()}
    assert {n: s.face_count for n, s in subjects.items()} == {"Ada": 2, "Bob": 1, "Grace": 5}
    assert subjects["Ada"].metadata == {"team": "blue"} and subjects["Bob"].metadata == {"team": "red"}
    assert g.store.model() == ("dlib-resnet34@v1", 128)
    assert all(t.has_thumbnail for t in g.templates("Ada"))

    # identify: each subject's own template finds it.
    for name in ("Ada", "Bob", "Grace"):
        vector = g.store.read_templates([t.id for t in g.templates(name)]).vectors[0]
        (hit,) = g.identify_faces([probe(vector)])
        assert hit.identity == name

    # people, photo faces and "not this person" marks
    people = People(g)
    found = {p.label: p for p in people.people()}
    assert set(found) == {"Grace", "#2"}
    assert len(found["Grace"].faces) == 5 and len(found["#2"].faces) == 2
    assert len(people.unsorted()) == 3 and sum(not f.usable for f in people.unsorted()) == 1
    assert g.store.not_person_marks() == [(7, 2)]
    assert people.thumbnail(found["#2"].faces[0].id)[:3] == b"\xff\xd8\xff"
    assert len(g.store.photo_paths()) == 9
    g.close()

    # API keys
    keys = KeyStore(old_file)
    assert keys.authenticate(V1_KEY).scopes == ("recognize", "manage")
    assert keys.count_active() == 1
    listed = {k.key_id: k for k in keys.list()}
    assert set(listed) == {"982659ee", "61166da7"} and listed["61166da7"].revoked_at is not None
    with pytest.raises(UnauthorizedError):
        keys.authenticate(V1_KEY[:-1] + ("A" if V1_KEY[-1] != "A" else "B"))
    _, fresh = keys.create(["admin"], "after the migration")
    assert keys.count_active() == 2 and keys.revoke(fresh.key_id).revoked_at is not None
    keys.close()


def test_a_migrated_file_forgets_for_good_and_is_not_migrated_again(old_file, caplog):
    g = Gallery.open(old_file)
    ada = g.store.read_templates([t.id for t in g.templates("Ada")]).vectors
    grace_faces = [f.id for f in People(g).person("Grace").faces]
    assert g.forget("Ada") == 2
    (hit,) = g.identify_faces([probe(ada[0])])
    assert hit.identity != "Ada" and all(c.subject != "Ada" for c in hit.candidates)
    people = People(g)
    assert people.forget("Grace") == len(grace_faces)
    with pytest.raises(SubjectNotFoundError):
        g.subject("Grace")
    assert people.find("Grace") is None and not set(grace_faces) & {f.id for f in g.store.photo_faces()}
    g.close()
    raw = b"".join(p.read_bytes() for p in old_file.parent.glob("old.db*"))
    assert not any(v.astype("<f4").tobytes() in raw for v in ada)
    with caplog.at_level(logging.INFO, logger="faceprint.gallery.storage.sqlite"):
        again = Gallery.open(old_file)
    assert not [r for r in caplog.records if "schema" in r.getMessage()]
    assert {s.name for s in again.subjects()} == {"Bob"}
    again.close()


def test_a_file_that_only_held_api_keys_is_migrated_from_scratch(tmp_path):
    """What `faceprint keys create` made on a new path before version 3: an api_keys table only."""
    path = tmp_path / "keys-only.db"
    keys = KeyStore(path)
    secret, _ = keys.create(["recognize"])
    keys.close()
    db = sqlite3.connect(path)
    for table in ("meta", "changes", "not_person", "photo_faces", "cluster_photos", "people", "faces", "subjects"):
        db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()
    g = Gallery.open(path)
    assert isinstance(g.store, SQLiteStore) and g.store.schema_version() == SCHEMA_VERSION
    assert g.subjects() == []
    g.close()
    assert KeyStore(path).authenticate(secret).scopes == ("recognize",)


def test_a_file_from_a_newer_faceprint_is_refused(tmp_path):
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(GalleryError, match="schema version"):
        Gallery.open(path)
