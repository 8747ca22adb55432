"""An encrypted gallery with faces from real photos (lfw_dev): the library and the CLI.

Crypto-shredding as the issue asks: a copy of the gallery file (and its WAL) taken before a
subject is forgotten, opened afterwards with the current keyring and master key, still holds
that subject's rows but cannot decrypt them; the other subjects' templates decrypt."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from faceprint import settings
from faceprint.errors import DecryptionError
from faceprint.gallery import Gallery, MasterKey
from faceprint.gallery.storage.keyring import default_keyring_path
from tests.conftest import shared
from tests.integration.test_cli import faceprint, one_json

PEOPLE = ("Tony_Blair", "Hugo_Chavez", "Laura_Bush")


@pytest.fixture(autouse=True)
def own_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The master key file of these tests (inherited by the CLI subprocesses); never the user's."""
    path = tmp_path / "secrets" / "master.key"
    monkeypatch.setenv(settings.MASTER_KEY_FILE, str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return path


def photo(person: str, i: int) -> Path:
    return shared("lfw_dev", "images", person, f"{person}_{i:04d}.jpg")


def test_forgotten_faces_in_an_earlier_copy_cannot_be_decrypted(tmp_path, analyzer):
    key = MasterKey.generate()
    path = tmp_path / "live.db"
    g = Gallery.open(path, analyzer=analyzer, master_key=key, encrypt=True, thumbnails=True)
    for person in PEOPLE:
        report = g.enroll(person, [photo(person, i) for i in range(1, 5)])
        assert len(report.enrolled) >= 2, report.to_dict()
    for person in PEOPLE:
        assert g.identify(photo(person, 5))[0].identity == person
    _, subjects, vectors, _ = g.store.all_templates()
    # no plaintext template or thumbnail anywhere in the files
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("live.db"))
    assert all(v.astype("<f4").tobytes() not in on_disk for v in vectors)
    assert b"JFIF" not in on_disk and g.thumbnail(g.templates("Laura_Bush")[0].id)[:3] == b"\xff\xd8\xff"
    tony = [v for v, s in zip(vectors, subjects) if g.subject_by_id(int(s)).name == "Tony_Blair"]

    backup = tmp_path / "backup"
    backup.mkdir()
    for p in (path, Path(f"{path}-wal")):
        if p.exists():
            shutil.copy(p, backup / p.name)
    assert g.forget("Tony_Blair") == len(tony)
    assert g.identify(photo("Tony_Blair", 5))[0].identity is None
    g.close()

    copy = Gallery.open(backup / path.name, analyzer=analyzer, master_key=key, keyring=default_keyring_path(path))
    assert copy.subject("Tony_Blair").face_count == len(tony)  # the rows are there (names are not encrypted) ...
    _, kept_subjects, kept, _ = copy.store.all_templates()  # ... but only the others' decrypt
    assert sorted({copy.subject_by_id(int(s)).name for s in kept_subjects}) == ["Hugo_Chavez", "Laura_Bush"]
    assert not any(np.allclose(t, v) for t in tony for v in kept)
    with pytest.raises(DecryptionError, match="destroyed"):
        copy.thumbnail(copy.templates("Tony_Blair")[0].id)
    assert copy.identify(photo("Tony_Blair", 5))[0].identity is None
    assert copy.identify(photo("Hugo_Chavez", 5))[0].identity == "Hugo_Chavez"
    copy.close()


def test_the_encryption_commands(tmp_path, own_key_file):
    db, folder = tmp_path / "enc.db", tmp_path / "people"
    for person in PEOPLE[:2]:
        (folder / person).mkdir(parents=True)
        for i in range(1, 5):
            (folder / person / photo(person, i).name).symlink_to(photo(person, i))

    init = faceprint("--gallery", str(db), "gallery", "init", "--encrypt", "--json")
    assert init.returncode == 0, init.stderr
    doc = one_json(init)
    assert doc["key_file_created"] and doc["encryption"]["master_fingerprint"]
    assert stat.S_IMODE(own_key_file.stat().st_mode) == 0o600
    secret = base64.b64encode(MasterKey.from_file(own_key_file).secret).decode()
    assert secret not in init.stdout + init.stderr  # the key is never printed
    enrolled = one_json(faceprint("--gallery", str(db), "enroll", "--folders", str(folder), "--json"))["enrolled"]
    assert len(enrolled) >= 4
    probe = str(photo("Hugo_Chavez", 5))
    found = one_json(faceprint("--gallery", str(db), "identify", probe, "--json"))
    assert found["results"][0]["faces"][0]["identity"] == "Hugo_Chavez"

    # without the key: a clear error, never garbage
    hidden = own_key_file.rename(own_key_file.with_name("elsewhere.key"))
    refused = faceprint("--gallery", str(db), "identify", probe, "--json")
    assert refused.returncode == 1 and one_json(refused)["error"]["code"] == "master_key_invalid"
    hidden.rename(own_key_file)

    # exports: sealed by default (back into this gallery only), plain on request
    sealed, plain, other = tmp_path / "sealed.json", tmp_path / "plain.json", tmp_path / "other.db"
    assert faceprint("--gallery", str(db), "gallery", "export", str(sealed)).returncode == 0
    assert faceprint("--gallery", str(db), "gallery", "export", str(plain), "--plaintext").returncode == 0
    assert json.loads(sealed.read_text())["version"] == 2 and json.loads(plain.read_text())["version"] == 1
    back = one_json(faceprint("--gallery", str(db), "gallery", "import", str(sealed), "--json"))
    assert back == {"added": 0, "skipped_duplicates": len(enrolled), "skipped_forgotten": 0}
    foreign = faceprint("--gallery", str(other), "gallery", "import", str(sealed), "--json")
    assert foreign.returncode == 1 and one_json(foreign)["error"]["code"] == "master_key_invalid"
    assert one_json(faceprint("--gallery", str(other), "gallery", "import", str(plain), "--json"))["added"] == len(enrolled)

    # rotation: the key file is replaced; the old key opens nothing any more
    old_copy = tmp_path / "old.key"
    shutil.copy(own_key_file, old_copy)
    rotated = faceprint("--gallery", str(db), "gallery", "rotate-key", "--json")
    assert rotated.returncode == 0, rotated.stderr
    doc = one_json(rotated)
    assert doc["data_keys"] == 2 and doc["old_fingerprint"] != doc["new_fingerprint"]
    found = one_json(faceprint("--gallery", str(db), "identify", probe, "--json"))
    assert found["results"][0]["faces"][0]["identity"] == "Hugo_Chavez"
    stale = faceprint("--gallery", str(db), "gallery", "encryption", "--key-file", str(old_copy), "--json")
    assert stale.returncode == 1 and one_json(stale)["error"]["code"] == "master_key_invalid"
    status = one_json(faceprint("--gallery", str(db), "gallery", "encryption", "--json"))
    assert status["encrypted"] and status["master_fingerprint"] == doc["new_fingerprint"]
