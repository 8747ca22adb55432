"""faceprint: face detection, alignment, embedding and verification.

The short API::

    import faceprint
    faces = faceprint.detect("group.jpg")           # list[Face], largest first
    embedded = faceprint.embed("me.jpg")             # list[EmbeddedFace] (unit norm; 512-D with the pack)
    result = faceprint.verify("a.jpg", "b.jpg")      # Verification at FAR 1e-3
    print(result.match, result.similarity, result.threshold, result.far)

For configured or batched work use :class:`Analyzer`.
"""

from __future__ import annotations

from functools import lru_cache

# batch: importing it plugs the worker engine into Analyzer.detect_many / embed_many.
from faceprint import batch, errors  # noqa: F401
from faceprint.imageio import ImageLimits, ImageSource, load_image
from faceprint.models import defaults as model_defaults
from faceprint.pipeline import DEFAULT_FAR, Analyzer, DetectionPolicy
from faceprint.types import Box, EmbeddedFace, Face, ImageAnalysis, Landmarks, Pose, Verification

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_FAR",
    "Analyzer",
    "Box",
    "DetectionPolicy",
    "EmbeddedFace",
    "Face",
    "ImageAnalysis",
    "ImageLimits",
    "Landmarks",
    "Pose",
    "Verification",
    "detect",
    "embed",
    "errors",
    "load_image",
    "verify",
]


def _analyzer(detector: str | None) -> Analyzer:
    # Keyed by the default models too, so that installing a pack takes effect in this process.
    return _cached_analyzer(detector, model_defaults.default_models())


@lru_cache(maxsize=8)
def _cached_analyzer(detector: str | None, defaults: model_defaults.PipelineModels) -> Analyzer:
    return Analyzer(detector=detector)


def detect(image: ImageSource, *, detector: str | None = None) -> list[Face]:
    """The faces in ``image`` (path, bytes, file object or RGB array), largest first, found by
    ``detector`` (default: the default pipeline's, :mod:`faceprint.models.defaults`)."""
    return _analyzer(detector).detect(image)


def embed(image: ImageSource, *, detector: str | None = None) -> list[EmbeddedFace]:
    """Every face in ``image`` with its L2-normalised embedding (the default models), largest first."""
    return _analyzer(detector).embed(image)


def verify(
    image_a: ImageSource,
    image_b: ImageSource,
    *,
    far: float | None = None,
    threshold: float | None = None,
    detector: str | None = None,
) -> Verification:
    """Same person? Decided at the default model's calibrated threshold for ``far``
    (default 1e-3) or at ``threshold``; see :meth:`Analyzer.verify`."""
    return _analyzer(detector).verify(image_a, image_b, far=far, threshold=threshold)
