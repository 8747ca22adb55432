"""The former home of the ONNX model families, kept so that old imports work.

New code imports :mod:`faceprint.models.onnx` (``register_onnx_model``, ``load_models_dir``,
``is_file_model``, ...); the families live in :mod:`faceprint.models.onnx.arcface` and
:mod:`faceprint.models.onnx.scrfd`.
"""

from __future__ import annotations

from faceprint.models.onnx import (
    NAME_PREFIX,
    SCRFD_LAYOUTS,
    OnnxEmbedder,
    ScrfdDetector,
    anchor_centers,
    calibration_from_dict,
    is_file_model,
    load_models_dir,
    nms,
    read_sidecar,
    register_onnx_model,
)
from faceprint.settings import MODELS_DIR as MODELS_DIR_ENV

__all__ = [
    "MODELS_DIR_ENV",
    "NAME_PREFIX",
    "SCRFD_LAYOUTS",
    "OnnxEmbedder",
    "ScrfdDetector",
    "anchor_centers",
    "calibration_from_dict",
    "is_file_model",
    "load_models_dir",
    "nms",
    "read_sidecar",
    "register_onnx_model",
]
