"""The one parametrised store fixture: every test that takes ``store`` (or ``gallery``) runs
against the in-memory store, the SQLite store and an encrypted SQLite store, with the same checks."""

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
STORE_KINDS = ("memory", "sqlite", "sqlite-encrypted")


def make_store(kind: str, path: Path) -> GalleryStore:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite-encrypted":  # templates and thumbnails sealed at rest (faceprint.gallery.crypto)
        return SQLiteStore(path, master_key=MasterKey.generate(), encrypt=True)
    return SQLiteStore(path)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GalleryStore]:
    s = make_store(request.param, tmp_path / "g.db")
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
