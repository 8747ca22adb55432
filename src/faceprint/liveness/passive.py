"""A passive presentation-attack model the user supplies (an ONNX file with a sidecar JSON:
:mod:`faceprint.models.onnx.antispoof`). Its score is reported next to the active result and
does not decide it: no model measured for issue 15 separated live faces from print or screen
attacks (AUC 0.3-0.8), so faceprint ships none and trusts none by default.
"""

from __future__ import annotations

import os

import numpy as np

from faceprint.models.onnx.antispoof import AntispoofInfo, OnnxAntispoof, read_antispoof
from faceprint.types import Face


class PassiveModel:
    """``PassiveModel.load("pad.onnx")`` (``pad.json`` beside it gives its settings);
    :meth:`score` is the probability that a face is live (higher = more live)."""

    def __init__(self, model: OnnxAntispoof) -> None:
        self.model = model

    @classmethod
    def load(cls, path: str | os.PathLike[str], sidecar: bool | str | os.PathLike[str] = True) -> PassiveModel:
        """Check and load the ONNX file at ``path`` with its sidecar (see
        :func:`faceprint.models.onnx.antispoof.read_antispoof`)."""
        return cls(OnnxAntispoof(read_antispoof(path, sidecar)))

    @property
    def info(self) -> AntispoofInfo:
        return self.model.info

    @property
    def model_id(self) -> str:
        return self.model.info.id

    @property
    def threshold(self) -> float | None:
        """The sidecar's live threshold, if it gives one."""
        return self.model.info.threshold

    def score(self, rgb: np.ndarray, face: Face) -> float:
        """The probability that ``face`` of the RGB frame ``rgb`` is live."""
        return self.model.score(rgb, face.box)
