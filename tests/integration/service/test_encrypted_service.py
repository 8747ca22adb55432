"""The service over an encrypted gallery: it starts only with the master key, enrols and
identifies as usual, and forgetting a subject through the API destroys its data key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from faceprint import settings
from faceprint.errors import MasterKeyRequiredError
from faceprint.gallery import Gallery, MasterKey, write_key_file
from faceprint.gallery.storage.keyring import default_keyring_path
from tests.conftest import face_image
from tests.integration.service.conftest import InProcess, store_key

COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER = face_image("hopper.jpg")


def data_keys(gallery: Path) -> int:
    db = sqlite3.connect(default_keyring_path(gallery))
    try:
        return int(db.execute("SELECT COUNT(*) FROM data_keys").fetchone()[0])
    finally:
        db.close()


def test_the_service_needs_the_master_key_and_forget_destroys_a_data_key(tmp_path, monkeypatch):
    from faceprint.service import Settings

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(settings.MASTER_KEY_FILE, raising=False)
    gallery = tmp_path / "enc.db"
    key_file = write_key_file(tmp_path / "master.key", MasterKey.generate())
    Gallery.open(gallery, master_key=MasterKey.from_file(key_file), encrypt=True).close()
    manage = store_key(gallery, "recognize", "manage")  # API keys need no master key

    with pytest.raises(MasterKeyRequiredError):
        InProcess(Settings(gallery=gallery))
    monkeypatch.setenv(settings.MASTER_KEY_FILE, str(key_file))  # what `serve --master-key-file` sets
    app = InProcess(Settings(gallery=gallery))
    try:
        sid = app.call("POST", "/v1/subjects", key=manage, json_body={"name": "Eileen Collins"}).json()["id"]
        enrolled = app.call("POST", f"/v1/subjects/{sid}/faces", key=manage, form={"images": [COLLINS]}).json()
        assert len(enrolled["enrolled"]) == 1, enrolled
        found = app.call("POST", "/v1/identify", key=manage, form={"image": COLLINS_2}).json()
        assert found["faces"][0]["identity"] == "Eileen Collins"
        before = data_keys(gallery)
        assert app.call("DELETE", f"/v1/subjects/{sid}", key=manage).status in (200, 204)
        assert data_keys(gallery) == before - 1
        again = app.call("POST", "/v1/identify", key=manage, form={"image": COLLINS_2}).json()
        assert again["faces"][0]["identity"] is None
    finally:
        app.close()
