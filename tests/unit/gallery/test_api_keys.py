"""API keys kept by the gallery's store, through the service's KeyStore, on every store kind."""

from __future__ import annotations

import pytest

from faceprint.errors import InvalidArgumentError, KeyNotFoundError, UnauthorizedError
from faceprint.gallery.storage import GalleryStore
from faceprint.service.auth import KeyStore


def test_create_authenticate_list_revoke(store: GalleryStore):
    keys = KeyStore(store)
    secret, record = keys.create(["manage,recognize"], "ci")
    assert record.scopes == ("recognize", "manage") and secret.startswith(f"fp_{record.key_id}_")
    stored = store.api_key(record.key_id)
    assert stored is not None and secret not in repr(stored) and len(stored.key_sha256) == 64
    found = keys.authenticate(secret)
    assert found.key_id == record.key_id and found.allows("recognize") and not found.allows("admin")
    assert keys.list()[0].last_used_at is not None  # the use was recorded
    _, admin = keys.create(["admin"])
    assert keys.count_active() == 2 and admin.allows("manage")
    revoked = keys.revoke(record.key_id)
    first = revoked.revoked_at
    assert first is not None and keys.revoke(record.key_id).revoked_at == first  # keeps its first time
    assert keys.count_active() == 1
    assert [k.key_id for k in keys.list(include_revoked=False)] == [admin.key_id]
    assert {k.key_id for k in keys.list()} == {record.key_id, admin.key_id}
    for bad in (secret, None, "", "fp_00000000_" + "x" * 40, "not a key"):
        with pytest.raises(UnauthorizedError):
            keys.authenticate(bad)
    with pytest.raises(KeyNotFoundError):
        keys.revoke("00000000")
    with pytest.raises(InvalidArgumentError):
        keys.create(["root"])
    with pytest.raises(InvalidArgumentError):
        keys.create([])


def test_a_key_id_is_never_stored_twice(store: GalleryStore):
    keys = KeyStore(store)
    _, record = keys.create(["recognize"])
    assert not store.add_api_key(record, "0" * 64)
    assert len(keys.list()) == 1
