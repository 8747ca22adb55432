"""API keys of the HTTP service: scoped, stored only as SHA-256 hashes, checked in constant time.

A key looks like ``fp_<key id>_<secret>``. The key id (8 hex digits) is public: it names the
key in listings, logs and ``faceprint keys revoke``. The whole key is shown once, when it is
created; the database keeps its SHA-256 only, in a table ``api_keys`` of the gallery's own
SQLite file (created here, beside the gallery's tables, through this module's own
connection).

Scopes: ``recognize`` (detect, embed, verify, identify), ``manage`` (subjects and their
faces), ``admin`` (keys; implies the other two).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceprint.errors import GalleryError, InvalidArgumentError, KeyNotFoundError, UnauthorizedError

SCOPES = ("recognize", "manage", "admin")
KEY_PREFIX = "fp_"
_KEY_RE = re.compile(r"^fp_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    key_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
)
"""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
        }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    """The ``api_keys`` table of a gallery file. Safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path} cannot hold API keys: {exc}", details={"path": str(self.path)}) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, scopes: list[str] | tuple[str, ...], name: str = "") -> tuple[str, ApiKey]:
        """A new key: (the key itself, shown only now; its record)."""
        scope_tuple = normalise_scopes(scopes)
        if len(name) > 200:
            raise InvalidArgumentError("a key name is at most 200 characters")
        with self._lock:
            for _ in range(10):
                key_id = secrets.token_hex(4)
                key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
                created = _now()
                try:
                    self._db.execute(
                        "INSERT INTO api_keys(key_id, name, key_sha256, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
                        (key_id, name, hash_key(key), json.dumps(list(scope_tuple)), created),
                    )
                except sqlite3.IntegrityError:  # key id collision: draw again
                    continue
                return key, ApiKey(key_id, name, scope_tuple, created)
        raise GalleryError("could not draw a unique key id")  # pragma: no cover

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        sql = "SELECT key_id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at, key_id").fetchall()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            cur = self._db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?", (_now(), key_id)
            )
            if cur.rowcount == 0:
                raise KeyNotFoundError(f"no API key with id {key_id!r}", details={"key_id": key_id})
            row = self._db.execute(
                "SELECT key_id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        return _key(row)

    def count_active(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0])

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
        with self._lock:
            row = None
            if match:
                row = self._db.execute(
                    "SELECT key_id, name, scopes, created_at, last_used_at, revoked_at, key_sha256 FROM api_keys"
                    " WHERE key_id = ?",
                    (match.group(1),),
                ).fetchone()
            stored = row[6] if row else hash_key("no such key")
            ok = hmac.compare_digest(digest, stored) and row is not None
            if not ok or row[5] is not None:
                raise UnauthorizedError("the API key is not valid (unknown or revoked)", details={"reason": "invalid"})
            now = _now()
            if (row[4] or "")[:16] != now[:16]:  # at most one write a minute per key
                self._db.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (now, row[0]))
        return _key(row[:6])


def _key(r: tuple) -> ApiKey:
    return ApiKey(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5])
