"""Which models run when none is named: the best measured pipeline that is installed.

With the Faceplugin pack installed (``faceprint models install faceplugin``) the default is
``fr-detect`` + ``fr-landmark`` + ``fr-feature`` (lfw_dev: 99.67% against dlib's 97.61%,
TAR@FAR 1e-4 0.968 against 0.734; bench/README.md, section "Faceplugin models"); without it,
dlib's ``hog`` + ``dlib5`` + ``dlib-resnet34``, which ship with the Python dependencies, and
:func:`upgrade_hint` says how to get the better one.

An embedder is only as good as the detector and landmarks its chips come from, and its card's
thresholds were calibrated on one such pipeline. So a name that is not given follows the
embedder: :func:`resolve` fills a missing detector or landmark model from the embedder card's
``extra["pipeline"]`` (the pipeline of its calibration), then from the default. A gallery made
with dlib's embedder therefore keeps running hog + dlib5 + dlib-resnet34 after the pack is
installed (:class:`faceprint.gallery.Gallery` resolves its pinned model this way).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faceprint.models import get_card, packs

__all__ = ["PipelineModels", "BUILTIN_MODELS", "PACK_MODELS", "default_models", "resolve", "upgrade_hint"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineModels:
    """The three model names of a face pipeline."""

    detector: str
    landmarks: str
    embedder: str

    def to_dict(self) -> dict[str, str]:
        return {"detector": self.detector, "landmarks": self.landmarks, "embedder": self.embedder}


#: The pipeline that needs nothing beyond the Python dependencies.
BUILTIN_MODELS = PipelineModels("hog", "dlib5", "dlib-resnet34")

#: The pipelines model packs make the default when installed, best first (by the measurements
#: in bench/README.md), with the pack each needs.
PACK_MODELS: tuple[tuple[str, PipelineModels], ...] = (
    ("faceplugin", PipelineModels("fr-detect", "fr-landmark", "fr-feature")),
)


def default_models() -> PipelineModels:
    """The best installed pipeline: the first of :data:`PACK_MODELS` whose pack is installed,
    else :data:`BUILTIN_MODELS`. Looked up on each call (a few file checks; the files' hashes
    are checked when a model is loaded), so installing a pack takes effect in new analyzers."""
    for pack, chosen in PACK_MODELS:
        if _installed(pack):
            return chosen
    return BUILTIN_MODELS


def _installed(pack: str) -> bool:
    # A pack this faceprint no longer lists (or a test's stand-in list) is simply not installed.
    return pack in packs.PACKS and packs.installed(pack, verify=False)


def upgrade_hint() -> str | None:
    """What to run for a better default pipeline, or None when a pack's pipeline is already
    the default (or this faceprint lists no pack)."""
    listed = [(pack, chosen) for pack, chosen in PACK_MODELS if pack in packs.PACKS]
    if not listed or default_models() != BUILTIN_MODELS:
        return None
    pack, best = listed[0]
    return (
        f"the default models are dlib's; `faceprint models install {pack}` installs "
        f"{best.detector} + {best.landmarks} + {best.embedder}, more accurate (see `faceprint models`)"
    )


def resolve(detector: str | None = None, landmarks: str | None = None, embedder: str | None = None) -> PipelineModels:
    """The pipeline for the names given, the others filled in: the embedder from
    :func:`default_models`; the detector and landmarks from the embedder card's calibration
    pipeline (``extra["pipeline"]``), else from the default. Names are not checked here beyond
    the embedder's (the caller looks each up)."""
    default = default_models()
    chosen = embedder or default.embedder
    calibrated = get_card(chosen, "embedder").extra.get("pipeline") or {}
    models = PipelineModels(
        detector=detector or calibrated.get("detector") or default.detector,
        landmarks=landmarks or calibrated.get("landmarks") or default.landmarks,
        embedder=chosen,
    )
    logger.debug("pipeline %s (given: detector=%s landmarks=%s embedder=%s)", models, detector, landmarks, embedder)
    return models
