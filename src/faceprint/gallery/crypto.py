"""Envelope encryption of templates and thumbnails (AES-256-GCM, :mod:`cryptography`).

Three levels of keys:

* the **master key** (:class:`MasterKey`): 32 random bytes in a key file
  (``faceprint gallery init --encrypt``; ``$FACEPRINT_MASTER_KEY_FILE``). It never touches the
  gallery: it only wraps data keys.
* **data keys** (DEKs): 32 random bytes, one per subject and one per clustered photo face, kept
  *wrapped* by the master key in the gallery's keyring
  (:class:`~faceprint.gallery.storage.keyring.Keyring`). Forgetting a subject destroys its data
  key, which leaves every copy of its ciphertext (the write-ahead log, backups, exports,
  replicas) unreadable: crypto-shredding.
* **ciphertexts**: each embedding and thumbnail sealed with its owner's data key.

Every ciphertext is bound by its associated data (AAD) to where it belongs: the key id, the
kind of record, the image's SHA-256 (unique per template) and the field. A ciphertext moved to
another row, subject or field fails authentication (:class:`DecryptionError`), as does any
tampering; nothing is ever returned half-decrypted.

A sealed value is ``version byte | 12-byte random nonce | ciphertext + 16-byte tag``.

This module holds the primitives only: no SQL, no files other than the key file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceprint import settings
from faceprint.errors import DecryptionError, InvalidArgumentError, MasterKeyInvalidError

logger = logging.getLogger(__name__)

#: The scheme a gallery's ``encryption`` meta row names (bumped if the format ever changes).
SCHEME = "faceprint-aes-256-gcm-v1"
KEY_BYTES = 32
NONCE_BYTES = 12
_VERSION = b"\x01"
#: The first line of a key file, so that a key file is recognisable and a random file is not.
KEY_FILE_HEADER = "faceprint-master-key-v1"


@dataclass(frozen=True, slots=True, repr=False)
class MasterKey:
    """A master key, and the file it was read from (``None``: given in memory). ``repr`` and
    ``str`` show the fingerprint only, never the key."""

    secret: bytes
    path: Path | None = None

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise MasterKeyInvalidError(f"a master key is {KEY_BYTES} bytes; got {len(self.secret)}")

    @property
    def fingerprint(self) -> str:
        """A public name of the key (an HMAC of a constant): tells two keys apart in messages
        and keyrings without revealing anything about the key."""
        return hmac.new(self.secret, b"faceprint master key fingerprint", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint!r}, path={str(self.path) if self.path else None!r})"

    __str__ = __repr__

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MasterKey:
        """Read a key file (:func:`write_key_file`); :class:`MasterKeyInvalidError` when it is
        missing, unreadable or not a faceprint master key."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise MasterKeyInvalidError(f"no master key file at {path}", details={"key_file": str(path)}) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyInvalidError(f"cannot read the master key file {path}: {exc}",
                                        details={"key_file": str(path)}) from None
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if len(lines) != 2 or lines[0] != KEY_FILE_HEADER:
            raise MasterKeyInvalidError(f"{path} is not a faceprint master key file", details={"key_file": str(path)})
        try:
            secret = base64.b64decode(lines[1], validate=True)
        except ValueError:
            raise MasterKeyInvalidError(f"{path} is not a faceprint master key file", details={"key_file": str(path)}) from None
        if len(secret) != KEY_BYTES:
            raise MasterKeyInvalidError(f"{path} is not a faceprint master key file", details={"key_file": str(path)})
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("master key file %s is readable by others (mode %o): chmod 600 it", path, mode)
        return cls(secret, path)


def write_key_file(path: str | os.PathLike[str], key: MasterKey, *, replace: bool = False) -> Path:
    """Write ``key`` to a new file readable by its owner only (mode 0600). Refuses to overwrite
    an existing file unless ``replace`` (then the new file is moved over the old atomically)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (f"# faceprint master key (fingerprint {key.fingerprint}): keep it secret, keep a copy offline;\n"
            f"# without it the encrypted gallery cannot be read.\n{KEY_FILE_HEADER}\n"
            f"{base64.b64encode(key.secret).decode('ascii')}\n").encode("ascii")
    target = path.with_name(f".{path.name}.new-{os.getpid()}") if replace else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidArgumentError(f"{target} already exists; not overwriting a key file",
                                   details={"key_file": str(target)}) from None
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)
    logger.info("master key %s written to %s", key.fingerprint, path)
    return path


def master_key_from_settings() -> MasterKey | None:
    """The master key of :func:`faceprint.settings.master_key_file`: ``None`` when that variable
    is unset and the default file does not exist; :class:`MasterKeyInvalidError` when the file
    named is missing or not a key file."""
    path = settings.master_key_file()
    if not settings.master_key_file_set() and not path.exists():
        return None
    return MasterKey.from_file(path)


# --- sealing ---------------------------------------------------------------------------------
def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_key_id() -> str:
    """A random, never reused name for a data key (it is stored in plain text beside the rows)."""
    return secrets.token_hex(16)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``, bound to ``aad``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext of :func:`seal`; :class:`DecryptionError` when the key or ``aad`` is not
    the one it was sealed with, or a byte was changed."""
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != _VERSION:
        raise DecryptionError("a stored ciphertext is malformed (not written by this scheme, or damaged)")
    try:
        return AESGCM(key).decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionError("a stored ciphertext failed authentication: it was altered, moved to another "
                              "record, or sealed with another key") from None


# --- what each ciphertext is bound to ------------------------------------------------------------
def template_aad(key_id: str, image_sha256: str, field: str) -> bytes:
    """A template's field (``embedding`` or ``thumbnail``) under data key ``key_id``."""
    return f"{SCHEME}|template|{key_id}|{image_sha256}|{field}".encode()


def photo_face_aad(key_id: str, image_sha256: str, face_index: int, field: str) -> bytes:
    """A clustered photo face's field (a photo face is named by its photo and index)."""
    return f"{SCHEME}|photo_face|{key_id}|{image_sha256}#{face_index}|{field}".encode()


def data_key_aad(keyring_id: str, key_id: str) -> bytes:
    """A wrapped data key: bound to its id and to its keyring."""
    return f"{SCHEME}|data_key|{keyring_id}|{key_id}".encode()


def check_aad(keyring_id: str) -> bytes:
    """The keyring's key check value (proves a master key is the keyring's)."""
    return f"{SCHEME}|master_key_check|{keyring_id}".encode()


__all__ = [
    "KEY_BYTES",
    "KEY_FILE_HEADER",
    "SCHEME",
    "MasterKey",
    "check_aad",
    "data_key_aad",
    "master_key_from_settings",
    "new_data_key",
    "new_key_id",
    "photo_face_aad",
    "seal",
    "template_aad",
    "unseal",
    "write_key_file",
]
