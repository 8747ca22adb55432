"""Passive anti-spoofing (presentation-attack) classifiers from ONNX files the user supplies.

faceprint ships none: the ones measured for issue 15 did not separate live faces from print
or screen attacks (AUC 0.3-0.8). A file is described by its ``NAME.json`` sidecar (the common
keys of :mod:`faceprint.models.onnx`, plus)::

    {
      "kind": "antispoof", "family": "classifier",
      "name": "my-pad", "version": "...", "licence": "...", "source": "...",
      "input_size": [128, 128],            // [W, H]; default: the graph's fixed input size
      "crop": {"scale": 2.7, "square": false, "shift_inside": true},
      "colour": "rgb", "mean": 0, "std": 1,
      "input_name": "input", "output_name": "output",   // default: the graph's first
      "output": {"activation": "softmax", "live_index": 0, "classes": ["live", "spoof"]},
      "threshold": 0.5,                    // optional: a live verdict at score >= threshold
      "calibration": {"dataset": "...", "apcer": 0.0, "bpcer": 0.0}   // where the threshold came from
    }

The face crop is the detected box enlarged ``scale`` times about its centre (a square of the
longer side first when ``square``), shrunk to fit the image and, with ``shift_inside``, moved
inside it (as Silent-Face-Anti-Spoofing and Faceplugin's fr_liveness crop), then resized to the
input size. The score is the probability of ``live_index`` after the activation ("softmax",
"sigmoid", or "none": the raw output).

These models are loaded directly, not registered with :mod:`faceprint.models`: they are not
part of a face pipeline (:mod:`faceprint.liveness.passive` uses them).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InvalidArgumentError, ModelFormatError
from faceprint.models.onnx.common import (
    COMMON_KEYS,
    FLOAT_TYPES,
    NAME_PREFIX,
    UNKNOWN_LICENCE,
    OrtSession,
    Preprocessing,
    check_name,
    image_input,
    inspect_graph,
    model_file_and_sidecar,
    open_session,
    require_family,
    text_option,
)
from faceprint.types import Box

logger = logging.getLogger(__name__)

#: The sidecar keys an anti-spoofing model takes, and their defaults.
ANTISPOOF_KEYS = COMMON_KEYS | {"input_size", "crop", "layout", "input_name", "output_name", "output", "threshold",
                                "calibration"}
ANTISPOOF_DEFAULTS: dict[str, Any] = {"family": "classifier", "colour": "rgb", "mean": 0.0, "std": 1.0}
ACTIVATIONS = ("softmax", "sigmoid", "none")
#: Silent-Face-Anti-Spoofing's and Faceplugin fr_liveness's enlargement of the detected box.
DEFAULT_CROP_SCALE = 2.7
#: The largest input side accepted (anti-spoofing networks take 80-256 px): a sidecar's
#: ``input_size`` for a graph of any size must not make every frame allocate gigabytes.
MAX_INPUT_SIDE = 1024


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """How the face is cut out around the detected box (see the module docstring)."""

    scale: float = DEFAULT_CROP_SCALE
    square: bool = False
    shift_inside: bool = True

    def region(self, box: Box, width: int, height: int) -> tuple[int, int, int, int]:
        """``(x1, y1, x2, y2)`` of the crop in an image of ``width`` x ``height``."""
        bw, bh = max(box.width, 1.0), max(box.height, 1.0)
        if self.square:
            bw = bh = max(bw, bh)
        scale = min(self.scale, (width - 1) / bw, (height - 1) / bh)  # fit the image
        w, h = bw * scale, bh * scale
        cx, cy = box.center
        x1, y1 = cx - w / 2.0, cy - h / 2.0
        if self.shift_inside:
            x1 = min(max(x1, 0.0), width - w)
            y1 = min(max(y1, 0.0), height - h)
        x1i, y1i = max(0, int(round(x1))), max(0, int(round(y1)))
        return x1i, y1i, min(width, int(round(x1 + w))), min(height, int(round(y1 + h)))


@dataclass(frozen=True, slots=True)
class AntispoofInfo:
    """What a sidecar and the graph say about an anti-spoofing model."""

    name: str
    version: str
    path: Path
    sha256: str
    description: str
    licence: str
    source: str
    input_name: str
    output_name: str
    input_size: tuple[int, int]  # (W, H)
    crop: FaceCrop
    preprocessing: Preprocessing
    activation: str
    live_index: int
    classes: tuple[str, ...]
    threshold: float | None
    calibration: dict[str, Any] | None

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "path": str(self.path), "sha256": self.sha256,
            "description": self.description, "licence": self.licence, "source": self.source,
            "input": f"{self.input_size[0]}x{self.input_size[1]} crop of the box x{self.crop.scale:g}, "
                     f"{self.preprocessing.describe()}",
            "output": {"activation": self.activation, "live_index": self.live_index, "classes": list(self.classes)},
            "threshold": self.threshold, "calibration": self.calibration,
        }


def read_antispoof(path: str | os.PathLike[str], sidecar: bool | str | os.PathLike[str] = True,
                   **options: Any) -> AntispoofInfo:
    """Check the ONNX file at ``path`` and its sidecar (``NAME.json`` beside it when ``sidecar``
    is True and it exists; a path names another; ``options`` override its keys)."""
    file, config = model_file_and_sidecar(path, sidecar)
    config.update(options)
    kind = config.pop("kind", "antispoof")
    if kind != "antispoof":
        raise InvalidArgumentError(f"{file.name}: kind must be 'antispoof' for a passive liveness model, not {kind!r}",
                                   details={"kind": kind})
    unknown = sorted(set(config) - ANTISPOOF_KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) for an ONNX anti-spoofing model: {', '.join(unknown)}; known: "
            f"{', '.join(sorted(ANTISPOOF_KEYS - {'kind'}))}", details={"unknown": unknown})
    config = {**ANTISPOOF_DEFAULTS, **config}
    require_family(config, "classifier")
    if config.get("layout", "nchw") != "nchw":
        raise InvalidArgumentError(f"layout must be 'nchw'; got {config['layout']!r}")
    graph = inspect_graph(file)
    x, _n, h, w = image_input(graph, file, "an anti-spoofing classifier")
    input_name = text_option(config, "input_name", x.name)
    if input_name != x.name:
        raise ModelFormatError(f"{file.name}: the sidecar's input_name {input_name!r} is not the graph's input "
                               f"{x.name!r}", details={"path": str(file)})
    outputs = {o.name: o for o in graph.outputs}
    output_name = text_option(config, "output_name", graph.outputs[0].name)
    if output_name not in outputs:
        raise ModelFormatError(f"{file.name}: no output {output_name!r}; the graph has {', '.join(outputs)}",
                               details={"path": str(file)})
    if outputs[output_name].dtype not in FLOAT_TYPES:
        raise ModelFormatError(f"{file.name}: output {outputs[output_name].describe()} must be a float tensor",
                               details={"path": str(file)})
    declared = outputs[output_name].shape
    if declared is not None and sum(1 for d in declared[1:] if not (isinstance(d, int) and d == 1)) > 1:
        raise ModelFormatError(f"{file.name}: output {outputs[output_name].describe()} must be one vector of class "
                               "scores per face ([N, C])", details={"path": str(file)})
    size = _input_size(config.get("input_size"), w, h, file)
    crop = _crop(config.get("crop"))
    activation, live_index, classes = _output(config.get("output"))
    threshold = config.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise InvalidArgumentError(f"threshold must be a number or null; got {threshold!r}")
    calibration = config.get("calibration")
    if calibration is not None and not isinstance(calibration, dict):
        raise InvalidArgumentError("calibration must be an object (dataset, apcer, bpcer)")
    return AntispoofInfo(
        name=check_name(config.get("name") or NAME_PREFIX + file.stem),
        version=text_option(config, "version", graph.sha256[:12]),
        path=file.resolve(), sha256=graph.sha256,
        description=text_option(config, "description", f"passive anti-spoofing classifier from {file.name}"),
        licence=text_option(config, "licence", UNKNOWN_LICENCE),
        source=text_option(config, "source", str(file.resolve())),
        input_name=x.name, output_name=output_name, input_size=size, crop=crop,
        preprocessing=Preprocessing.from_options(config), activation=activation, live_index=live_index,
        classes=classes, threshold=None if threshold is None else float(threshold), calibration=calibration,
    )


class OnnxAntispoof:
    """A loaded anti-spoofing classifier: :meth:`score` is the probability that a face is live."""

    def __init__(self, info: AntispoofInfo) -> None:
        self.info = info
        self._session: OrtSession = open_session(info.path, info.sha256)
        logger.info("loaded the anti-spoofing model %s from %s", info.id, info.path)

    def crop(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """The network's input-size RGB crop of the face in ``box``."""
        import cv2

        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = self.info.crop.region(box, w, h)
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise InvalidArgumentError(f"the face box {box.to_list()} is outside the {w}x{h} image")
        patch: np.ndarray = cv2.resize(rgb[y1:y2, x1:x2], self.info.input_size, interpolation=cv2.INTER_LINEAR)
        return patch

    def score(self, rgb: np.ndarray, box: Box) -> float:
        """The probability (per the sidecar's ``output``) that the face in ``box`` is live."""
        x = self.info.preprocessing.apply(self.crop(rgb, box)[None])
        try:
            (out,) = self._session.run([self.info.output_name], {self.info.input_name: x})
        except Exception as exc:  # onnxruntime's own exception types
            raise ModelFormatError(f"running {self.info.id} failed: {exc}", details={"model": self.info.id}) from exc
        scores = np.asarray(out, dtype=np.float64)
        if np.squeeze(scores).ndim > 1:  # a map, not one vector of class scores
            raise ModelFormatError(f"{self.info.id} gave an output of shape {list(scores.shape)}; a vector of class "
                                   "scores per face was expected", details={"model": self.info.id})
        values = scores.reshape(-1)
        if not np.isfinite(values).all():
            raise ModelFormatError(f"{self.info.id} gave a score that is not a number", details={"model": self.info.id})
        if not 0 <= self.info.live_index < len(values):
            raise ModelFormatError(f"{self.info.id} gave {len(values)} output value(s); live_index is "
                                   f"{self.info.live_index}", details={"model": self.info.id})
        if self.info.activation == "softmax":
            e = np.exp(values - values.max())
            values = e / e.sum()
        elif self.info.activation == "sigmoid":
            values = 1.0 / (1.0 + np.exp(-values))
        return float(values[self.info.live_index])


def _input_size(value: Any, w: Any, h: Any, file: Path) -> tuple[int, int]:
    if value is None:
        if not (isinstance(w, int) and isinstance(h, int)):
            raise ModelFormatError(f"{file.name}: the graph's input size is not fixed; give input_size [W, H] in the "
                                   "sidecar", details={"path": str(file)})
        if not (8 <= w <= MAX_INPUT_SIDE and 8 <= h <= MAX_INPUT_SIDE):
            raise ModelFormatError(f"{file.name}: the graph's input is {w}x{h}; each side must be 8 to {MAX_INPUT_SIDE} "
                                   "pixels", details={"path": str(file), "max_side": MAX_INPUT_SIDE})
        return w, h
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise InvalidArgumentError(f"input_size must be [W, H], two whole numbers; got {value!r}")
    width, height = value
    if not (8 <= width <= MAX_INPUT_SIDE and 8 <= height <= MAX_INPUT_SIDE):
        raise InvalidArgumentError(f"input_size {list(value)}: each side must be 8 to {MAX_INPUT_SIDE} pixels",
                                   details={"input_size": list(value), "max_side": MAX_INPUT_SIDE})
    if (isinstance(w, int) and w != width) or (isinstance(h, int) and h != height):
        raise InvalidArgumentError(f"input_size {list(value)} does not fit the graph's input ({w}x{h})")
    return width, height


def _crop(value: Any) -> FaceCrop:
    if value is None:
        return FaceCrop()
    if not isinstance(value, dict) or set(value) - {"scale", "square", "shift_inside"}:
        raise InvalidArgumentError(f"crop must be an object with scale, square, shift_inside; got {value!r}")
    scale = value.get("scale", DEFAULT_CROP_SCALE)
    if not isinstance(scale, (int, float)) or not (0.5 <= scale <= 10):
        raise InvalidArgumentError(f"crop.scale must be a number in [0.5, 10]; got {scale!r}")
    return FaceCrop(float(scale), bool(value.get("square", False)), bool(value.get("shift_inside", True)))


def _output(value: Any) -> tuple[str, int, tuple[str, ...]]:
    value = value or {}
    if not isinstance(value, dict) or set(value) - {"activation", "live_index", "classes"}:
        raise InvalidArgumentError(f"output must be an object with activation, live_index, classes; got {value!r}")
    activation = str(value.get("activation", "softmax"))
    if activation not in ACTIVATIONS:
        raise InvalidArgumentError(f"output.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    live_index = value.get("live_index", 0)
    if not isinstance(live_index, int) or isinstance(live_index, bool) or live_index < 0:
        raise InvalidArgumentError(f"output.live_index must be a whole number >= 0; got {live_index!r}")
    classes = value.get("classes") or []
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise InvalidArgumentError("output.classes must be a list of names")
    return activation, live_index, tuple(classes)
