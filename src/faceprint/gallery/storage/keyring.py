"""The keyring of an encrypted gallery: its data keys, wrapped by the master key, in a small
SQLite file of its own beside the gallery (``<gallery>.keys`` by default).

Why a file of its own: forgetting a subject destroys its data key (crypto-shredding). Were the
wrapped key kept in the gallery file, a copy of that file taken before the forget (a backup, a
replica, its write-ahead log) would still hold it, and the master key -- still in use -- would
unwrap it. Kept apart, copies of the gallery hold ciphertext only; the keyring is small,
written rarely, with ``secure_delete`` on and a rollback journal (no write-ahead log keeping
old pages), so a destroyed key's bytes are overwritten in the file when its deletion commits.

What still decrypts a forgotten subject: a copy of the *keyring* taken before the forget,
together with the master key. Rotating the master key (:meth:`Keyring.rotate`) makes every
older keyring copy useless once the old master key is gone.

Data keys are created and destroyed in the keyring's own transactions, ordered around the
gallery's: a key is committed before any row sealed with it, and destroyed before its rows are
deleted. A key whose rows were rolled back is left unused (harmless: it never protected
committed data).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import DecryptionError, GalleryError, MasterKeyInvalidError, MasterKeyRequiredError
from faceprint.gallery.crypto import (
    SCHEME,
    MasterKey,
    check_aad,
    data_key_aad,
    new_data_key,
    new_key_id,
    photo_face_aad,
    seal,
    template_aad,
    unseal,
)
from faceprint.gallery.storage.base import SealedFace, StoredFace, utc_now

logger = logging.getLogger(__name__)

_CHUNK = 900  # SQLite's bound-parameter limit is 999
_CHECK_PLAINTEXT = b"faceprint master key check"


def default_keyring_path(gallery: str | os.PathLike[str]) -> Path:
    """Where a gallery's keyring is unless named: ``<gallery>.keys`` beside it."""
    return Path(f"{gallery}.keys")


class Keyring:
    """The wrapped data keys of one encrypted gallery (see the module docstring).

    Unwrapped data keys are cached in this process (that is where the plaintext is anyway).
    When another process rotates the master key, a wrap or an uncached unwrap here notices the
    keyring's new fingerprint and re-reads this process's key file (``MasterKey.path``): a
    service keeps running across a rotation once its key file holds the new key."""

    def __init__(self, path: str | os.PathLike[str], keyring_id: str, master: MasterKey) -> None:
        self.path = Path(path)
        self.keyring_id = keyring_id
        self._master = master
        self._lock = threading.RLock()
        self._cache: dict[str, bytes] = {}
        if not self.path.exists():
            raise MasterKeyInvalidError(
                f"the keyring of this encrypted gallery is missing: no file at {self.path} (without it the gallery's "
                "templates cannot be decrypted; restore it from your keyring backup)",
                details={"keyring": str(self.path)},
            )
        self._db = _connect(self.path)
        try:
            found = self._meta("keyring_id")
            if found != keyring_id:
                raise MasterKeyInvalidError(
                    f"{self.path} is the keyring of another gallery (keyring {found}, this gallery's is {keyring_id})",
                    details={"keyring": str(self.path)},
                )
            self._check(master)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def create(cls, path: str | os.PathLike[str], keyring_id: str, master: MasterKey) -> Keyring:
        """A new, empty keyring file (mode 0600); :class:`GalleryError` when one exists."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise GalleryError(f"{path} already exists: a gallery's keyring is never overwritten (move it away if it is "
                               "an unused leftover)", details={"keyring": str(path)}) from None
        os.close(fd)
        db = _connect(path)
        try:
            with db:
                db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                db.execute("CREATE TABLE data_keys (key_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL, created_at TEXT NOT NULL)")
                db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
                    ("scheme", SCHEME), ("keyring_id", keyring_id), ("created_at", utc_now()),
                    ("master_fingerprint", master.fingerprint),
                    ("master_check", seal(master.secret, _CHECK_PLAINTEXT, check_aad(keyring_id)).hex()),
                ])
        finally:
            db.close()
        logger.info("keyring %s created (master key %s)", path, master.fingerprint)
        return cls(path, keyring_id, master)

    # --- plumbing ---------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise MasterKeyInvalidError(f"{self.path} is not a faceprint keyring: {exc}",
                                        details={"keyring": str(self.path)}) from None
        return None if row is None else str(row[0])

    def _check(self, master: MasterKey) -> None:
        """:class:`MasterKeyInvalidError` unless ``master`` is the keyring's master key."""
        check = self._meta("master_check")
        try:
            unseal(master.secret, bytes.fromhex(check or ""), check_aad(self.keyring_id))
        except (DecryptionError, ValueError):
            raise MasterKeyInvalidError(
                f"the master key given (fingerprint {master.fingerprint}) is not this gallery's "
                f"(its keyring wants {self._meta('master_fingerprint')})",
                details={"keyring": str(self.path), "given": master.fingerprint,
                         "expected": self._meta("master_fingerprint")},
            ) from None

    def _current_master(self) -> MasterKey:
        """This process's master key, re-read from its key file when another process has
        rotated the keyring's (call under ``self._lock``, inside a keyring transaction)."""
        if self._meta("master_fingerprint") == self._master.fingerprint:
            return self._master
        if self._master.path is not None:
            fresh = MasterKey.from_file(self._master.path)
            self._check(fresh)
            logger.info("keyring %s: the master key was rotated; now using %s from %s", self.path,
                        fresh.fingerprint, fresh.path)
            self._master = fresh
            return fresh
        self._check(self._master)  # raises: rotated, and no file to read the new key from
        return self._master

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @property
    def master_fingerprint(self) -> str:
        with self._lock:
            return self._meta("master_fingerprint") or ""

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._db.close()

    # --- data keys --------------------------------------------------------------------------
    def new_keys(self, count: int) -> list[tuple[str, bytes]]:
        """``count`` new data keys, committed to the keyring before this returns."""
        if count <= 0:
            return []
        keys = [(new_key_id(), new_data_key()) for _ in range(count)]
        now = utc_now()
        with self._write() as db:
            master = self._current_master()
            db.executemany("INSERT INTO data_keys(key_id, wrapped, created_at) VALUES (?, ?, ?)",
                           [(kid, seal(master.secret, dek, data_key_aad(self.keyring_id, kid)), now) for kid, dek in keys])
            self._cache.update(keys)
        return keys

    def new_key(self) -> tuple[str, bytes]:
        return self.new_keys(1)[0]

    def data_keys(self, key_ids: Sequence[str]) -> dict[str, bytes]:
        """The unwrapped data keys of ``key_ids`` that exist (a destroyed one is left out)."""
        wanted = sorted(set(key_ids))
        with self._lock:
            out = {kid: self._cache[kid] for kid in wanted if kid in self._cache}
            missing = [kid for kid in wanted if kid not in out]
            if not missing:
                return out
            rows: list[tuple[str, bytes]] = []
            # One read transaction: the wrapped keys and the fingerprint they are wrapped under
            # come from the same state, even while another process rotates the master key.
            self._db.execute("BEGIN")
            try:
                for start in range(0, len(missing), _CHUNK):
                    chunk = missing[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows += self._db.execute(f"SELECT key_id, wrapped FROM data_keys WHERE key_id IN ({marks})",
                                             chunk).fetchall()
                if rows and self._meta("master_fingerprint") != self._master.fingerprint:
                    self._current_master()
            finally:
                self._db.execute("COMMIT")
            for kid, wrapped in rows:
                dek = unseal(self._master.secret, bytes(wrapped), data_key_aad(self.keyring_id, kid))
                self._cache[kid] = dek
                out[kid] = dek
            return out

    def data_key(self, key_id: str) -> bytes:
        """One unwrapped data key; :class:`DecryptionError` (reason ``data_key_destroyed``)
        when it was destroyed: what a forgotten subject's ciphertext meets."""
        found = self.data_keys([key_id])
        if key_id not in found:
            raise DecryptionError("the data key of this record was destroyed (its subject was forgotten): it cannot be "
                                  "decrypted", details={"key_id": key_id, "reason": "data_key_destroyed"})
        return found[key_id]

    def destroy(self, key_ids: Sequence[str]) -> int:
        """Destroy data keys for good (their bytes are overwritten in the file when this
        commits). Returns how many there were."""
        ids = sorted(set(key_ids))
        gone = 0
        with self._write() as db:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                gone += int(db.execute(f"DELETE FROM data_keys WHERE key_id IN ({marks})", chunk).rowcount)
            for kid in ids:
                self._cache.pop(kid, None)
        if gone:
            logger.info("keyring %s: %d data key(s) destroyed", self.path, gone)
        return gone

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM data_keys").fetchone()[0])

    def rotate(self, new: MasterKey) -> int:
        """Re-wrap every data key under ``new`` in one transaction: no ciphertext changes, and
        once this commits the old master key opens nothing in this keyring. Returns how many
        data keys were re-wrapped."""
        with self._write() as db:
            old = self._current_master()
            rows = db.execute("SELECT key_id, wrapped FROM data_keys").fetchall()
            db.executemany("UPDATE data_keys SET wrapped = ? WHERE key_id = ?", [
                (seal(new.secret, unseal(old.secret, bytes(w), data_key_aad(self.keyring_id, kid)),
                      data_key_aad(self.keyring_id, kid)), kid) for kid, w in rows])
            db.executemany("UPDATE meta SET value = ? WHERE key = ?", [
                (new.fingerprint, "master_fingerprint"),
                (seal(new.secret, _CHECK_PLAINTEXT, check_aad(self.keyring_id)).hex(), "master_check"),
                (utc_now(), "rotated_at"),
            ])
            self._master = new
        logger.info("keyring %s: master key rotated %s -> %s (%d data keys re-wrapped)", self.path, old.fingerprint,
                    new.fingerprint, len(rows))
        return len(rows)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 60000")
    # A rollback journal, not a write-ahead log: a WAL would keep the pages of destroyed keys
    # until a checkpoint. secure_delete zeroes a deleted key's bytes in the file at commit.
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA secure_delete = ON")
    return db


def require_master_key(master: MasterKey | None, location: str) -> MasterKey:
    """``master``, or :class:`MasterKeyRequiredError` naming how to give one."""
    if master is None:
        raise MasterKeyRequiredError(
            f"the gallery {location} is encrypted at rest: give its master key (set FACEPRINT_MASTER_KEY_FILE to its "
            "key file; faceprint serve --master-key-file; Gallery.open(master_key=...))", details={"path": location},
        )
    return master


# --- sealing and opening the rows of an encrypted gallery (every SQL store stores them alike) ----
def open_templates(ring: Keyring, rows: Sequence[Sequence[Any]], location: str) -> list[tuple[int, int, bytes]]:
    """``(id, subject id, embedding)`` of rows ``(id, subject id, sealed embedding, image
    sha256, key id)``; a row whose data key was destroyed is left out (its subject was forgotten
    and the deletion of its rows did not complete, or this is an old copy)."""
    keys = ring.data_keys([str(r[4]) for r in rows if r[4]])
    out: list[tuple[int, int, bytes]] = []
    for face_id, subject_id, blob, sha, key_id in rows:
        dek = keys.get(str(key_id)) if key_id else None
        if dek is not None:
            out.append((int(face_id), int(subject_id), unseal(dek, bytes(blob), template_aad(str(key_id), sha, "embedding"))))
    if len(out) < len(rows):
        logger.warning("gallery %s: %d template(s) left out: their data key was destroyed", location, len(rows) - len(out))
    return out


def open_photo_faces(ring: Keyring, rows: Sequence[Sequence[Any]], field: str) -> list[bytes | None]:
    """The plaintext of ``field`` of rows ``(key id, image sha256, face index, sealed)``;
    :class:`DecryptionError` when a data key was destroyed."""
    keys = ring.data_keys([str(r[0]) for r in rows if r[0]])
    out: list[bytes | None] = []
    for key_id, sha, index, blob in rows:
        if blob is None:
            out.append(None)
            continue
        dek = keys.get(str(key_id)) if key_id else None
        if dek is None:
            raise DecryptionError("the data key of a photo face was destroyed: it cannot be decrypted",
                                  details={"key_id": key_id, "reason": "data_key_destroyed"})
        out.append(unseal(dek, bytes(blob), photo_face_aad(str(key_id), sha, int(index), field)))
    return out


def seal_photo_face(key: tuple[str | None, bytes | None], image_sha256: str, index: int, field: str,
                    data: bytes | None) -> bytes | None:
    """``field`` of a photo face sealed under its data key ``(key id, key)`` (as is without one)."""
    key_id, dek = key
    if data is None or key_id is None or dek is None:
        return data
    return seal(dek, data, photo_face_aad(key_id, image_sha256, index, field))


def reseal_templates(ring: Keyring, old_key: str, new_key: str,
                     rows: Sequence[Sequence[Any]]) -> list[tuple[bytes | None, bytes | None, int]]:
    """Rows ``(id, image sha256, sealed embedding, sealed thumbnail)`` re-encrypted from data key
    ``old_key`` to ``new_key``: ``(embedding, thumbnail, id)`` each."""
    old_dek, new_dek = ring.data_key(old_key), ring.data_key(new_key)
    out: list[tuple[bytes | None, bytes | None, int]] = []
    for fid, sha, emb, thumb in rows:
        fields = [unseal(old_dek, bytes(blob), template_aad(old_key, sha, field)) if blob is not None else None
                  for field, blob in (("embedding", emb), ("thumbnail", thumb))]
        embedding, thumbnail = (seal(new_dek, data, template_aad(new_key, sha, field)) if data is not None else None
                                for field, data in zip(("embedding", "thumbnail"), fields))
        out.append((embedding, thumbnail, int(fid)))
    return out


def unseal_stored_face(ring: Keyring, face: SealedFace) -> StoredFace:
    """A sealed template decrypted: :class:`DecryptionError` when its data key was destroyed
    (reason ``data_key_destroyed``) or it was tampered with."""
    dek = ring.data_key(face.key_id)
    embedding = unseal(dek, face.sealed_embedding, template_aad(face.key_id, face.image_sha256, "embedding"))
    thumbnail = (None if face.sealed_thumbnail is None else
                 unseal(dek, face.sealed_thumbnail, template_aad(face.key_id, face.image_sha256, "thumbnail")))
    return StoredFace(face.subject, face.metadata, np.frombuffer(embedding, dtype="<f4").astype(np.float32),
                      face.quality, face.box, face.detection_score, face.image_sha256, face.source, thumbnail,
                      face.created_at)


__all__ = ["Keyring", "default_keyring_path", "open_photo_faces", "open_templates", "require_master_key",
           "reseal_templates", "seal_photo_face", "unseal_stored_face"]
