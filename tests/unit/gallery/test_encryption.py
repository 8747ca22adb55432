"""Encryption at rest (faceprint.gallery.crypto, the keyring, the SQLite store's sealed rows):
round trip, missing and wrong keys, tampering, crypto-shredding, rotation, merge, exports.

The templates here are random unit vectors (no models run); tests/integration/gallery/
test_encrypted_gallery.py does the same with faces from real photos."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from faceprint import settings
from faceprint.errors import DecryptionError, InvalidArgumentError, MasterKeyInvalidError, MasterKeyRequiredError
from faceprint.gallery import Gallery, MasterKey, SQLiteStore, write_key_file
from faceprint.gallery.crypto import seal, template_aad, unseal
from faceprint.gallery.storage import NewPhotoFace, PhotoAssignment
from faceprint.gallery.storage.keyring import Keyring, default_keyring_path
from faceprint.types import Box
from tests.unit.gallery.stores import DIM, MODEL, add, probe, unit

THUMB = b"\xff\xd8JPEG-OF-A-FACE" * 8


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(13)


@pytest.fixture(autouse=True)
def no_default_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a master key of the machine's user: only those given or set here."""
    monkeypatch.delenv(settings.MASTER_KEY_FILE, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture()
def key() -> MasterKey:
    return MasterKey.generate()


def encrypted(path: Path, key: MasterKey, **kwargs: object) -> Gallery:
    g = Gallery.open(path, master_key=key, encrypt=True, **kwargs)  # type: ignore[arg-type]
    g.store.pin_model(MODEL, DIM)
    return g


def raw(v: np.ndarray) -> bytes:
    return v.astype("<f4").tobytes()


def files_of(path: Path) -> list[Path]:
    """The gallery file, its WAL and its keyring."""
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def stored_rows(path: Path) -> dict[str, tuple[bytes, str, str]]:
    """image sha256 -> (sealed embedding, key id, subject name), read from a file with plain SQL."""
    db = sqlite3.connect(path)
    try:
        return {sha: (bytes(emb), kid, name) for sha, emb, kid, name in db.execute(
            "SELECT f.image_sha256, f.embedding, s.key_id, s.name FROM faces f JOIN subjects s ON s.id = f.subject_id")}
    finally:
        db.close()


# --- the key file -------------------------------------------------------------------------------
def test_a_key_file_is_private_never_overwritten_and_never_shown(tmp_path, key):
    path = write_key_file(tmp_path / "keys" / "master.key", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MasterKey.from_file(path).secret == key.secret
    with pytest.raises(InvalidArgumentError):
        write_key_file(path, MasterKey.generate())
    assert MasterKey.from_file(path).secret == key.secret
    assert key.secret.hex() not in repr(key) and key.fingerprint in repr(key)
    (tmp_path / "junk.key").write_text("not a key\n")
    for bad in (tmp_path / "junk.key", tmp_path / "missing.key"):
        with pytest.raises(MasterKeyInvalidError):
            MasterKey.from_file(bad)


def test_seal_binds_the_ciphertext_to_its_key_and_context():
    k1, k2 = os.urandom(32), os.urandom(32)
    box = seal(k1, b"vector", b"aad")
    assert unseal(k1, box, b"aad") == b"vector"
    for key, aad in ((k2, b"aad"), (k1, b"other")):
        with pytest.raises(DecryptionError):
            unseal(key, box, aad)
    flipped = bytearray(box)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionError):
        unseal(k1, bytes(flipped), b"aad")


# --- round trip -----------------------------------------------------------------------------------
def test_templates_and_thumbnails_round_trip_and_are_not_in_the_files(tmp_path, key, rng):
    path = tmp_path / "enc.db"
    g = encrypted(path, key)
    vectors = {name: unit(rng.normal(size=DIM)) for name in ("ada", "bob")}
    ids = {name: add(g, name, v, f"sha-{name}", thumb=THUMB + name.encode()) for name, v in vectors.items()}
    assert g.identify_faces([probe(vectors["bob"])])[0].identity == "bob"
    assert g.thumbnail(ids["ada"]) == THUMB + b"ada"
    _, _, got = g.store.read_templates([ids["ada"]])
    np.testing.assert_allclose(got[0], vectors["ada"])
    g.close()
    assert default_keyring_path(path).exists()
    for p in files_of(path):
        content = p.read_bytes()
        assert all(raw(v) not in content for v in vectors.values()) and THUMB not in content, p.name
    with Gallery.open(path, master_key=key) as again:  # a new process: the index from the sealed rows
        assert again.identify_faces([probe(vectors["ada"])])[0].identity == "ada"
        assert again.store.encryption() is not None and again.check_consistency()


def test_an_encrypted_gallery_without_its_key_is_a_clear_error(tmp_path, key, monkeypatch):
    path = tmp_path / "enc.db"
    encrypted(path, key).close()
    with pytest.raises(MasterKeyRequiredError) as no_key:
        Gallery.open(path)
    assert no_key.value.code == "master_key_required"
    with pytest.raises(MasterKeyInvalidError) as wrong:
        Gallery.open(path, master_key=MasterKey.generate())
    assert wrong.value.code == "master_key_invalid" and key.fingerprint in wrong.value.message
    monkeypatch.setenv(settings.MASTER_KEY_FILE, str(tmp_path / "nowhere.key"))
    with pytest.raises(MasterKeyInvalidError):
        Gallery.open(path)
    monkeypatch.setenv(settings.MASTER_KEY_FILE, str(write_key_file(tmp_path / "m.key", key)))
    Gallery.open(path).close()  # the key file of the environment


def test_the_api_key_store_opens_an_encrypted_gallery_without_the_master_key(tmp_path, key):
    path = tmp_path / "enc.db"
    encrypted(path, key).close()
    store = SQLiteStore(path)  # what the service's key store does: no template is read
    assert store.count_active_api_keys() == 0 and store.encryption() is not None
    with pytest.raises(MasterKeyRequiredError):
        store.all_templates()
    store.close()


def test_a_missing_or_foreign_keyring_is_refused(tmp_path, key):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    encrypted(one, key).close()
    encrypted(two, key).close()
    with pytest.raises(MasterKeyInvalidError, match="another gallery"):
        Gallery.open(one, master_key=key, keyring=default_keyring_path(two))
    default_keyring_path(one).unlink()
    with pytest.raises(MasterKeyInvalidError, match="keyring"):
        Gallery.open(one, master_key=key)


def test_an_unencrypted_gallery_stays_readable_and_can_be_encrypted_in_place(tmp_path, key, rng):
    path = tmp_path / "plain.db"
    g = Gallery.open(path)
    g.store.pin_model(MODEL, DIM)
    v = unit(rng.normal(size=DIM))
    add(g, "ada", v, "a1", thumb=THUMB)
    assert g.store.encryption() is None
    g.close()
    with Gallery.open(path, master_key=key) as plain:  # a key given to a plain gallery changes nothing
        assert plain.store.encryption() is None
    with Gallery.open(path, master_key=key, encrypt=True) as g:
        assert g.identify_faces([probe(v)])[0].identity == "ada"
        assert g.thumbnail(g.templates("ada")[0].id) == THUMB
    for p in files_of(path):
        assert raw(v) not in p.read_bytes() and THUMB not in p.read_bytes(), p.name


# --- tampering ------------------------------------------------------------------------------------
def test_a_tampered_or_swapped_ciphertext_is_detected(tmp_path, key, rng):
    path = tmp_path / "enc.db"
    g = encrypted(path, key)
    add(g, "ada", unit(rng.normal(size=DIM)), "a1")
    add(g, "bob", unit(rng.normal(size=DIM)), "b1")
    g.close()
    rows = stored_rows(path)
    db = sqlite3.connect(path)
    # bob's ciphertext put in ada's row: sealed under another subject's key and image
    db.execute("UPDATE faces SET embedding = ? WHERE image_sha256 = 'a1'", (rows["b1"][0],))
    db.commit()
    db.close()
    with pytest.raises(DecryptionError) as swapped:
        Gallery.open(path, master_key=key).store.all_templates()
    assert swapped.value.code == "decryption_failed"
    flipped = bytearray(rows["a1"][0])
    flipped[20] ^= 0x40
    db = sqlite3.connect(path)
    db.execute("UPDATE faces SET embedding = ? WHERE image_sha256 = 'a1'", (bytes(flipped),))
    db.commit()
    db.close()
    with pytest.raises(DecryptionError):
        Gallery.open(path, master_key=key).store.read_templates([1])


# --- crypto-shredding -------------------------------------------------------------------------------
def test_a_copy_taken_before_forget_cannot_be_decrypted_for_the_forgotten_subject(tmp_path, key, rng):
    """The issue's test: copy the gallery file (and its WAL) before forgetting, forget, then
    open the copy with the current keyring and master key."""
    path = tmp_path / "live.db"
    g = encrypted(path, key)
    gone, kept = unit(rng.normal(size=DIM)), unit(rng.normal(size=DIM))
    add(g, "gone", gone, "g1", thumb=THUMB)
    add(g, "gone", unit(rng.normal(size=DIM)), "g2")
    add(g, "kept", kept, "k1")
    backup = tmp_path / "backup"
    backup.mkdir()
    for p in (path, Path(f"{path}-wal")):  # the file as a backup tool would copy it, WAL included
        if p.exists():
            shutil.copy(p, backup / p.name)
    sealed_before = stored_rows(backup / path.name)
    gone_key = sealed_before["g1"][1]
    keyring = default_keyring_path(path)
    wrapped = sqlite3.connect(keyring).execute("SELECT wrapped FROM data_keys WHERE key_id = ?", (gone_key,)).fetchone()[0]
    assert g.forget("gone") == 2
    g.close()
    # The copy still holds the forgotten subject's rows (ciphertext) ...
    copy = Gallery.open(backup / path.name, master_key=key, keyring=keyring)
    assert copy.subject("gone").face_count == 2
    # ... which the current keys cannot open; the other subject's can be.
    _, subjects, vectors, _ = copy.store.all_templates()
    assert [copy.store.subject_by_id(int(s)).name for s in subjects] == ["kept"]
    np.testing.assert_allclose(vectors[0], kept)
    assert copy.identify_faces([probe(gone)])[0].identity is None
    with pytest.raises(DecryptionError) as destroyed:
        copy.thumbnail(copy.templates("gone")[0].id)
    assert destroyed.value.details["reason"] == "data_key_destroyed"
    copy.close()
    # Not by any data key left in the keyring either, nor is the destroyed key's wrapping in its file.
    ring = Keyring(keyring, _keyring_id(path), key)
    left = ring.data_keys([r[0] for r in sqlite3.connect(keyring).execute("SELECT key_id FROM data_keys")])
    assert left and gone_key not in left
    for sha in ("g1", "g2"):
        blob = sealed_before[sha][0]
        for dek in left.values():
            with pytest.raises(DecryptionError):
                unseal(dek, blob, template_aad(gone_key, sha, "embedding"))
    ring.close()
    assert bytes(wrapped) not in keyring.read_bytes()
    assert not Path(f"{keyring}-journal").exists() and not Path(f"{keyring}-wal").exists()


def _keyring_id(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'keyring_id'").fetchone()[0])
    finally:
        db.close()


def test_deleting_a_person_destroys_their_photo_faces_keys(tmp_path, key, rng):
    path = tmp_path / "people.db"
    g = encrypted(path, key)
    store = g.store
    faces = [NewPhotoFace(i, Box(0, 0, 10, 10), 0.9, True, unit(rng.normal(size=DIM)), THUMB) for i in range(2)]
    assert store.add_photo("group.jpg", "photo1", faces)
    table = store.photo_face_table()
    np.testing.assert_allclose(table.embeddings, np.stack([f.embedding for f in faces]))
    assert store.photo_face_thumbnail(int(table.ids[0])) == THUMB
    person = store.create_person()
    store.assign_photo_faces([PhotoAssignment(int(table.ids[0]), person, "user")])
    templates = store.photo_face_templates(person)
    np.testing.assert_allclose(templates[0].embedding, faces[0].embedding)
    keyring = default_keyring_path(path)
    before = sqlite3.connect(keyring).execute("SELECT COUNT(*) FROM data_keys").fetchone()[0]
    assert store.delete_person(person) == 1
    assert sqlite3.connect(keyring).execute("SELECT COUNT(*) FROM data_keys").fetchone()[0] == before - 1
    for p in files_of(path):
        assert raw(faces[0].embedding) not in p.read_bytes() and THUMB not in p.read_bytes()
    g.close()


# --- rotation -------------------------------------------------------------------------------------
def test_rotating_the_master_key_rewraps_data_keys_only(tmp_path, key, rng):
    path = tmp_path / "enc.db"
    key_file = write_key_file(tmp_path / "master.key", key)
    g = encrypted(path, MasterKey.from_file(key_file))
    v = unit(rng.normal(size=DIM))
    add(g, "ada", v, "a1")
    other = Gallery.open(path, master_key=MasterKey.from_file(key_file))  # another process, e.g. the service
    sealed = stored_rows(path)["a1"][0]
    new = MasterKey.generate()
    assert g.store.rotate_master_key(new) == 1
    assert stored_rows(path)["a1"][0] == sealed  # templates untouched
    write_key_file(key_file, new, replace=True)  # the old key is gone
    g.close()
    with pytest.raises(MasterKeyInvalidError):
        Gallery.open(path, master_key=key)
    with Gallery.open(path, master_key=new) as again:
        assert again.identify_faces([probe(v)])[0].identity == "ada"
    # The other process keeps going: its cached keys read, and a new subject's key is wrapped
    # with the new master key it re-reads from its key file.
    assert other.identify_faces([probe(v)])[0].identity == "ada"
    w = unit(rng.normal(size=DIM))
    add(other, "bob", w, "b1")
    other.close()
    with Gallery.open(path, master_key=new) as again:
        assert again.identify_faces([probe(w)])[0].identity == "bob"


# --- merge ----------------------------------------------------------------------------------------
def test_merge_reseals_the_faces_under_the_target_key_and_destroys_the_source_key(tmp_path, key, rng):
    path = tmp_path / "enc.db"
    g = encrypted(path, key)
    v = unit(rng.normal(size=DIM))
    face_id = add(g, "ada lovelace", v, "a1", thumb=THUMB)
    add(g, "Ada", unit(rng.normal(size=DIM)), "a2")
    before = stored_rows(path)
    g.merge("ada lovelace", "Ada")
    after = stored_rows(path)
    assert after["a1"][1] == after["a2"][1] == before["a2"][1] and after["a1"][0] != before["a1"][0]
    assert g.identify_faces([probe(v)])[0].identity == "Ada" and g.thumbnail(face_id) == THUMB
    ring_keys = {r[0] for r in sqlite3.connect(default_keyring_path(path)).execute("SELECT key_id FROM data_keys")}
    assert before["a1"][1] not in ring_keys and before["a2"][1] in ring_keys
    g.close()


# --- exports --------------------------------------------------------------------------------------
def test_exports_stay_encrypted_unless_asked_and_import_back(tmp_path, key, rng):
    path = tmp_path / "enc.db"
    g = encrypted(path, key)
    vectors = {name: unit(rng.normal(size=DIM)) for name in ("ada", "bob")}
    for name, v in vectors.items():
        add(g, name, v, f"sha-{name}", thumb=THUMB)
    sealed, plain = tmp_path / "sealed.json.gz", tmp_path / "plain.json"
    assert g.export(sealed, include_images=True) == 2
    assert g.export(plain, include_images=True, plaintext=True) == 2
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    doc = json.loads(gzip.decompress(sealed.read_bytes()))
    assert doc["version"] == 2 and doc["encryption"]["keyring_id"] == _keyring_id(path)
    assert all("embedding" not in f for s in doc["subjects"] for f in s["faces"])
    text = gzip.decompress(sealed.read_bytes())
    assert all(base64.b64encode(raw(v)) not in text for v in vectors.values())
    # another gallery cannot read it; the plain export goes anywhere
    with Gallery.open(tmp_path / "other.db") as other:
        other.store.pin_model(MODEL, DIM)
        with pytest.raises(MasterKeyInvalidError):
            other.import_(sealed)
        assert other.import_(plain) == {"added": 2, "skipped_duplicates": 0}
        assert other.thumbnail(other.templates("ada")[0].id) == THUMB
    # back into its own gallery, after forgetting one subject: that one stays unreadable
    g.forget("ada")
    assert g.import_(sealed) == {"added": 0, "skipped_duplicates": 1, "skipped_forgotten": 1}
    g.forget("bob")
    assert g.import_(sealed) == {"added": 0, "skipped_duplicates": 0, "skipped_forgotten": 2}
    assert g.import_(plain)["added"] == 2  # the plain copy is not protected: why it is opt-in
    assert g.identify_faces([probe(vectors["ada"])])[0].identity == "ada"
    g.close()


def test_a_sealed_export_restores_a_lost_subject_with_its_thumbnail(tmp_path, key, rng):
    path = tmp_path / "enc.db"
    g = encrypted(path, key)
    v = unit(rng.normal(size=DIM))
    add(g, "ada", v, "a1", thumb=THUMB)
    export = tmp_path / "x.json"
    g.export(export, include_images=True)
    g.store.delete_face(g.templates("ada")[0].id)  # the template is lost; the subject (its key) remains
    assert g.import_(export) == {"added": 1, "skipped_duplicates": 0, "skipped_forgotten": 0}
    assert g.identify_faces([probe(v)])[0].identity == "ada"
    assert g.thumbnail(g.templates("ada")[0].id) == THUMB
    g.close()


def test_migrate_refuses_an_encrypted_gallery(tmp_path, key):
    from faceprint.errors import GalleryError
    from faceprint.gallery.migrate import migrate_gallery

    path = tmp_path / "enc.db"
    encrypted(path, key).close()
    with pytest.raises(GalleryError, match="encrypted"):
        migrate_gallery(path, to="dlib-resnet34")
