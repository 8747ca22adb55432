"""Scripted faces for the video unit tests: boxes and random unit embeddings, no models.

An embedding at a chosen cosine to a centre (:func:`near`) lets a test set exactly how alike two
faces are; the gallery is an in-memory one of dlib-resnet34's shape, so thresholds come from
that model's card as they would in a real run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceprint.gallery import Gallery, MemoryStore
from faceprint.types import Box, EmbeddedFace, Face, Landmarks, Pose, Quality
from tests.unit.gallery.stores import DIM, MODEL, add, unit

__all__ = ["DIM", "MODEL", "ScriptedAnalyzer", "face", "gallery_of", "near", "random_unit", "unit"]


def random_unit(rng: np.random.Generator) -> np.ndarray:
    return unit(rng.normal(size=DIM))


def near(centre: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine to the unit vector ``centre`` is exactly ``cosine``."""
    other = rng.normal(size=centre.shape)
    other -= float(other @ centre) * centre
    other /= np.linalg.norm(other)
    return unit(cosine * centre.astype(np.float64) + np.sqrt(max(0.0, 1.0 - cosine**2)) * other)


def face(box: tuple[float, float, float, float], embedding: np.ndarray, quality: float = 0.9,
         reasons: Sequence[str] = (), yaw: float = 0.0, pitch: float = 0.0) -> EmbeddedFace:
    """A detected, embedded face with that box, embedding, quality and pose."""
    rated = Quality(quality, {}, {"size": 100.0}, tuple(reasons))
    detected = Face(Box(*box), 1.0, Landmarks(np.zeros((5, 2)), "dlib5"), pose=Pose(yaw, pitch, 0.0), quality=rated)
    return EmbeddedFace(detected, embedding.astype(np.float32), MODEL, quality=rated)


def gallery_of(people: dict[str, np.ndarray]) -> Gallery:
    """An in-memory gallery (dlib-resnet34's model) holding one template for each person."""
    store = MemoryStore()
    store.pin_model(MODEL, DIM)
    gallery = Gallery(store)
    for i, (name, vector) in enumerate(people.items()):
        add(gallery, name, unit(vector), f"sha-{i}")
    return gallery


class ScriptedAnalyzer:
    """Stands in for :class:`faceprint.pipeline.Analyzer` in a Watcher: frame ``i`` (its index
    written in pixel [0, 0, 0] of the frame; see :func:`frame_for`) shows ``script[i]``."""

    def __init__(self, script: dict[int, list[EmbeddedFace]], model_id: str = MODEL) -> None:
        from faceprint import models

        self.script = script
        self.model_id = model_id
        self.embedder_card = models.get_card("dlib-resnet34", "embedder")
        self.detected: list[int] = []

    def load(self, image: np.ndarray) -> np.ndarray:
        from faceprint.imageio import load_image

        return load_image(image)

    def detect_array(self, rgb: np.ndarray) -> list[EmbeddedFace]:
        index = int(rgb[0, 0, 0]) + 256 * int(rgb[0, 0, 1])
        self.detected.append(index)
        return list(self.script.get(index, []))

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[EmbeddedFace]) -> list[EmbeddedFace]:
        return list(faces)


def frame_for(index: int, fps: float = 30.0, colour: tuple[int, int, int] = (0, 0, 0)):
    """A small frame of one ``colour`` whose pixel [0, 0] names its index (read by
    :class:`ScriptedAnalyzer`)."""
    from faceprint.video.types import Frame

    rgb = np.empty((36, 64, 3), np.uint8)
    rgb[:] = colour
    rgb[0, 0, 0], rgb[0, 0, 1] = index % 256, index // 256
    return Frame(index, index / fps, rgb)
