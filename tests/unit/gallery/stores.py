"""The one parametrised store fixture: every test that takes ``store`` (or ``gallery``) runs
against the in-memory store, the SQLite store, an encrypted SQLite store, and PostgreSQL (plain:
searched in the database; encrypted: searched in this process), with the same checks. The
PostgreSQL kinds take a fresh database from ``postgres_url`` (tests/postgres.py) and skip
without ``pgserver``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import Gallery, GalleryStore, MemoryStore, SQLiteStore
from faceprint.gallery.crypto import MasterKey
from faceprint.gallery.storage import NewFace
from faceprint.types import Box, EmbeddedFace, Face, Landmarks

DIM = 128
MODEL = "dlib-resnet34@v1"
STORE_KINDS = ("memory", "sqlite", "sqlite-encrypted", "postgresql", "postgresql-encrypted")


def make_store(kind: str, path: Path, url: str | None = None) -> GalleryStore:
    """A new store of ``kind``: at ``path`` (SQLite; the keyring beside it), or in the database
    at ``url`` (PostgreSQL)."""
    if kind == "memory":
        return MemoryStore()
    if kind.startswith("postgresql"):
        from faceprint.gallery.storage.postgres import PostgresStore

        assert url is not None, "a PostgreSQL store needs the postgres_url fixture"
        if kind == "postgresql-encrypted":
            return PostgresStore(url, master_key=MasterKey.generate(), encrypt=True, keyring=path.with_suffix(".keys"))
        return PostgresStore(url)
    if kind == "sqlite-encrypted":  # templates and thumbnails sealed at rest (faceprint.gallery.crypto)
        return SQLiteStore(path, master_key=MasterKey.generate(), encrypt=True)
    return SQLiteStore(path)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GalleryStore]:
    url = request.getfixturevalue("postgres_url") if request.param.startswith("postgresql") else None
    s = make_store(request.param, tmp_path / "g.db", url)
    s.pin_model(MODEL, DIM)
    yield s
    s.close()


@pytest.fixture()
def gallery(store: GalleryStore) -> Gallery:
    return Gallery(store)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def add(g: Gallery, name: str, vec: np.ndarray, sha: str, metadata: dict | None = None,
        thumb: bytes | None = b"jpeg") -> int:
    """Store one template as enrolment would (no detector: the vector is given)."""
    _, face_id = g.store.add_face(name, metadata, NewFace(embedding=vec, image_sha256=sha, box=Box(0, 0, 10, 10),
                                                          thumbnail=thumb))
    return face_id


def probe(vec: np.ndarray, model: str = MODEL) -> EmbeddedFace:
    return EmbeddedFace(Face(Box(0, 0, 10, 10), 1.0, Landmarks(np.zeros((5, 2)), "dlib5")), vec, model)
