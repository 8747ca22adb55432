"""API keys of the HTTP service: scoped, stored only as SHA-256 hashes, checked in constant time.

A key looks like ``fp_<key id>_<secret>``. The key id (8 hex digits) is public: it names the
key in listings, logs and ``faceprint keys revoke``. The whole key is shown once, when it is
created; the gallery's store keeps its SHA-256 only (:class:`~faceprint.gallery.storage.ApiKeyStore`:
the ``api_keys`` table of the gallery's SQLite file by default).

Scopes: ``recognize`` (detect, embed, verify, identify), ``manage`` (subjects and their
faces), ``admin`` (keys; implies the other two).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from faceprint.errors import GalleryError, InvalidArgumentError, UnauthorizedError
from faceprint.gallery.storage import ApiKeyStore
from faceprint.gallery.storage.base import utc_now
from faceprint.gallery.storage.locate import open_store, parse_location
from faceprint.gallery.types import API_KEY_SCOPES, ApiKey

SCOPES = API_KEY_SCOPES
KEY_PREFIX = "fp_"
_KEY_RE = re.compile(r"^fp_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalise_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Scopes as given (repeated or comma-separated), checked, de-duplicated, in canonical order."""
    wanted = {s.strip().lower() for item in scopes for s in str(item).split(",") if s.strip()}
    if not wanted:
        raise InvalidArgumentError(f"give at least one scope: {', '.join(SCOPES)}")
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidArgumentError(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}",
            details={"unknown": unknown, "choices": list(SCOPES)},
        )
    return tuple(s for s in SCOPES if s in wanted)


class KeyStore:
    """The API keys of a gallery: ``KeyStore(gallery)`` (its SQLite file or PostgreSQL URL, opened
    and migrated like the gallery's own) or ``KeyStore(store)`` for any key store. Safe to share
    between threads."""

    def __init__(self, source: str | Path | ApiKeyStore) -> None:
        if isinstance(source, (str, Path)):
            self.path: Path | str | None = parse_location(source)
            self.store: ApiKeyStore = open_store(self.path)
        else:
            self.path = None
            self.store = source

    def close(self) -> None:
        self.store.close()

    def create(self, scopes: list[str] | tuple[str, ...], name: str = "") -> tuple[str, ApiKey]:
        """A new key: (the key itself, shown only now; its record)."""
        scope_tuple = normalise_scopes(scopes)
        if len(name) > 200:
            raise InvalidArgumentError("a key name is at most 200 characters")
        for _ in range(10):
            key_id = secrets.token_hex(4)
            key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKey(key_id, name, scope_tuple, utc_now())
            if self.store.add_api_key(record, hash_key(key)):
                return key, record
            # a key id collision: draw again
        raise GalleryError("could not draw a unique key id")  # pragma: no cover

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        return self.store.api_keys(include_revoked)

    def revoke(self, key_id: str) -> ApiKey:
        return self.store.revoke_api_key(key_id, utc_now())

    def count_active(self) -> int:
        return self.store.count_active_api_keys()

    def authenticate(self, presented: str | None) -> ApiKey:
        """The key record for a presented key, or :class:`UnauthorizedError`.

        The row is found by the public key id; the secret's hash is then compared with
        :func:`hmac.compare_digest`, so the time taken says nothing about the secret.
        """
        if not presented:
            raise UnauthorizedError(
                "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                details={"reason": "missing"},
            )
        match = _KEY_RE.match(presented.strip())
        digest = hash_key(presented.strip())
        stored = self.store.api_key(match.group(1)) if match else None
        expected = stored.key_sha256 if stored is not None else hash_key("no such key")
        ok = hmac.compare_digest(digest, expected) and stored is not None
        if not ok or stored is None or stored.record.revoked_at is not None:
            raise UnauthorizedError("the API key is not valid (unknown or revoked)", details={"reason": "invalid"})
        record = stored.record
        now = utc_now()
        if (record.last_used_at or "")[:16] != now[:16]:  # at most one write a minute per key
            self.store.touch_api_key(record.key_id, now)
        return record


__all__ = ["KEY_PREFIX", "SCOPES", "ApiKey", "KeyStore", "hash_key", "normalise_scopes"]
