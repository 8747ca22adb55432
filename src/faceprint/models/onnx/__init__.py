"""ONNX models from files the user supplies: ArcFace-family embedders and SCRFD detectors.

Nothing is downloaded, ever: the user points faceprint at a ``.onnx`` file and it is
checked, given a model card and registered under a name that :class:`~faceprint.Analyzer`,
the CLI and galleries use like any built-in model::

    from faceprint.models.onnx import register_onnx_model, load_models_dir
    emb = register_onnx_model("w600k_r50.onnx", kind="embedder")      # card "onnx:w600k_r50"
    det = register_onnx_model("det_10g.onnx", kind="detector")        # card "onnx:det_10g"
    analyzer = faceprint.Analyzer(detector=det.name, embedder=emb.name)
    load_models_dir("~/models")          # every *.onnx there (default: $FACEPRINT_MODELS_DIR)

A model's version defaults to the first 12 hex digits of the file's SHA-256, so its id
(``name@version``, what embeddings and galleries record) pins the exact weights; the full
hash is in ``card.extra["sha256"]`` and is checked again when the model is loaded.

One module per family says what its graphs must look like: :mod:`.arcface` (embedders,
``family="arcface"``) and :mod:`.scrfd` (detectors, ``family="scrfd"``); :mod:`.common`
holds what they share and :mod:`.register` registers files.

**Sidecar** ``NAME.json`` next to ``NAME.onnx`` (read by :func:`load_models_dir`, and by
:func:`register_onnx_model` unless ``sidecar=False``); every key is optional::

    {
      "kind": "embedder",                 // or "detector"; default: told from the graph
      "name": "arcface-r50",              // default "onnx:NAME"
      "version": "w600k",                 // default the first 12 hex of the SHA-256
      "description": "...", "licence": "...", "source": "...",
      "colour": "rgb",                    // channel order the network takes: "rgb" | "bgr"
      "mean": 127.5, "std": 127.5,        // one number, or 3 in the network's channel order
      // embedders
      "calibration": {"dataset": "my-val", "thresholds": {"1e-3": 0.31, "1e-4": 0.38},
                      "frr": {"1e-3": 0.02}, "n_images": 0, "n_identities": 0,
                      "n_genuine_pairs": 0, "n_impostor_pairs": 0, "notes": ""},
      // detectors
      "score_threshold": 0.5, "nms_threshold": 0.4, "input_size": [640, 640],  // [W, H]
      "min_face": 16
    }
"""

from __future__ import annotations

from faceprint.models.onnx.arcface import ArcfaceSettings, OnnxEmbedder, calibration_from_dict
from faceprint.models.onnx.common import NAME_PREFIX, read_sidecar
from faceprint.models.onnx.register import is_file_model, load_models_dir, register_onnx_model
from faceprint.models.onnx.scrfd import SCRFD_LAYOUTS, ScrfdDetector, ScrfdSettings, anchor_centers, nms

__all__ = [
    "NAME_PREFIX",
    "SCRFD_LAYOUTS",
    "ArcfaceSettings",
    "OnnxEmbedder",
    "ScrfdDetector",
    "ScrfdSettings",
    "anchor_centers",
    "calibration_from_dict",
    "is_file_model",
    "load_models_dir",
    "nms",
    "read_sidecar",
    "register_onnx_model",
]
