"""The Faceplugin pack's models (npm ``faceplugin-face-recognition-js``, MIT), installed by
``faceprint models install faceplugin`` (:mod:`faceprint.models.packs`).

* ``fr-detect`` (:mod:`.detect`): a light SSD/RFB face detector with an image-pyramid policy.
* ``fr-landmark`` (:mod:`.landmarks`): 68 points per box, reduced to ArcFace's 5.
* ``fr-feature`` and ``fr-feature-flip`` (:mod:`.feature`): a 512-D embedder on ArcFace chips.

The cards are registered whether or not the pack is installed (``faceprint models`` lists
them); loading one without the pack raises :class:`~faceprint.errors.ModelUnavailableError`
naming the install command. Nothing is downloaded at run time.
"""

from __future__ import annotations

from faceprint.models.base import BuiltinModel
from faceprint.models.faceplugin import detect, feature, landmarks

#: What the registry registers from this family (card, loader, aliases).
BUILTIN: tuple[BuiltinModel, ...] = (*detect.BUILTIN, *landmarks.BUILTIN, *feature.BUILTIN)

__all__ = ["BUILTIN"]
