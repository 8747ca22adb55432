"""The small interfaces every model family implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from faceprint.align import ChipSpec
from faceprint.models.card import ModelCard
from faceprint.types import Box, Landmarks


@dataclass(frozen=True, slots=True)
class RawDetection:
    """A detector's raw output: a box, a confidence score and, for detectors that predict
    them (SCRFD, YuNet, RetinaFace), 5 landmarks in ``arcface5`` order."""

    box: Box
    score: float
    landmarks: Landmarks | None = None


@runtime_checkable
class Detector(Protocol):
    card: ModelCard
    #: Smallest face side (pixels) the detector finds without upsampling.
    min_face: int

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        """Faces in an RGB uint8 image; ``upsample`` doubles the image that many times."""
        ...


@runtime_checkable
class LandmarkModel(Protocol):
    card: ModelCard
    scheme: str

    def predict(self, image: np.ndarray, box: Box) -> Landmarks: ...


@runtime_checkable
class Landmarks68Model(Protocol):
    """A landmark model that computes the 68 iBUG points (and reduces them for :meth:`predict`):
    the pipeline takes its 68 points instead of running dlib68 for ``landmarks68``."""

    def predict68(self, image: np.ndarray, box: Box) -> Landmarks: ...


@runtime_checkable
class Embedder(Protocol):
    card: ModelCard
    #: The aligned chip this embedder wants; the pipeline makes chips to this spec.
    chip: ChipSpec

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """``(n, dim)`` float32 L2-normalised embeddings for ``n`` aligned chips."""
        ...


@runtime_checkable
class NormReportingEmbedder(Embedder, Protocol):
    """An embedder that also gives the norms of its network's raw outputs (before the L2
    normalisation), which for some models track how recognisable the face is
    (:mod:`faceprint.quality`). Optional: the pipeline asks for it when it is there."""

    def embed_chips_with_norms(self, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(the embeddings :meth:`embed_chips` gives, their ``(n,)`` raw norms or None when
        this call cannot tell them)."""
        ...


#: Any loaded model: what a registry factory returns.
Model = Detector | LandmarkModel | Embedder

#: What loads a model from its card. A class or a module-level function, so that the batch
#: engine can send it to worker processes by reference.
ModelFactory = Callable[[ModelCard], Model]

#: One registration of a built-in family: its card, its loader and the card's aliases.
BuiltinModel = tuple[ModelCard, ModelFactory, tuple[str, ...]]
