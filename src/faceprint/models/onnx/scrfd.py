"""SCRFD-format face detectors from ONNX files (InsightFace's ``scrfd_*`` / ``det_*`` exports).

One float32 input ``[1, 3, H, W]``; the image is letterboxed (aspect kept, padded right and
bottom) to ``H x W`` (``input_size``; the graph's own when fixed, else 640x640), RGB,
``(x - 127.5) / 128``. The outputs, **in this order** (names are ignored; InsightFace's
exports number them):

====================  =====================================================================
9 outputs (default)   scores s8, s16, s32; box distances s8, s16, s32; 5-point distances
                      s8, s16, s32 -- strides 8, 16, 32, 2 anchors per location
6 outputs             the same without landmarks (the pipeline's landmark model adds them)
15 / 10 outputs       strides 8, 16, 32, 64, 128, 1 anchor per location, with / without
                      landmarks
====================  =====================================================================

Each output is ``[K, c]`` or ``[1, K, c]`` with ``K = (H/stride) * (W/stride) * anchors``
rows (row-major over the feature map, anchors innermost) and ``c`` = 1 (score, already a
probability), 4 (distances left, top, right, bottom from the anchor centre, in units of the
stride) or 10 (x, y offsets of the 5 landmarks in ``arcface5`` order, in units of the
stride). Boxes are ``distance2bbox``, landmarks ``distance2kps`` as in InsightFace; anchors
scoring below ``score_threshold`` (0.5) are dropped, then greedy NMS at ``nms_threshold``
(0.4 IoU). Boxes and landmarks come back in the coordinates of the image given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InvalidArgumentError, ModelFormatError
from faceprint.models.base import RawDetection
from faceprint.models.card import ModelCard
from faceprint.models.onnx.common import (
    COMMON_KEYS,
    FLOAT_TYPES,
    UNKNOWN_LICENCE,
    GraphInfo,
    Preprocessing,
    image_input,
    open_session,
    require_family,
    run_session,
    text_option,
)
from faceprint.types import Box, Landmarks

#: Number of outputs -> (strides, anchors per location, has 5-point landmarks).
SCRFD_LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    9: ((8, 16, 32), 2, True),
    6: ((8, 16, 32), 2, False),
    15: ((8, 16, 32, 64, 128), 1, True),
    10: ((8, 16, 32, 64, 128), 1, False),
}

#: The sidecar keys a detector takes, and their defaults.
DETECTOR_KEYS = COMMON_KEYS | {"score_threshold", "nms_threshold", "input_size", "min_face"}
DETECTOR_DEFAULTS: dict[str, Any] = {
    "family": "scrfd", "colour": "rgb", "mean": 127.5, "std": 128.0,
    "score_threshold": 0.5, "nms_threshold": 0.4, "min_face": 16,
}

_SCRFD_ORDER = "scores for each stride, then box distances for each stride, then 5-point distances for each stride"


def detector_card(path: Path, graph: GraphInfo, name: str, config: dict[str, Any]) -> ModelCard:
    """The card of the SCRFD detector in ``path`` (already inspected as ``graph``), with the
    checked options in ``config`` (defaults filled in); :class:`ModelFormatError` if it
    cannot be one."""
    require_family(config, "scrfd")
    x, _n, h, w = image_input(graph, path, "an SCRFD detector")
    n_out = len(graph.outputs)
    if n_out not in SCRFD_LAYOUTS:
        raise ModelFormatError(
            f"{path.name}: an SCRFD detector has 9 outputs ({_SCRFD_ORDER}; strides 8, 16, 32), "
            f"or 6 without landmarks, or 15 / 10 with strides up to 128; this graph has {n_out}: "
            + ", ".join(t.describe() for t in graph.outputs),
            details={"path": str(path), "outputs": n_out},
        )
    strides, anchors, kps = SCRFD_LAYOUTS[n_out]
    groups = ("score", "box", "landmark")[: 3 if kps else 2]
    widths = {"score": 1, "box": 4, "landmark": 10}
    for g, group in enumerate(groups):
        for s, stride in enumerate(strides):
            out = graph.outputs[g * len(strides) + s]
            last = out.shape[-1] if out.shape else None
            if out.dtype not in FLOAT_TYPES or (isinstance(last, int) and last != widths[group]):
                raise ModelFormatError(
                    f"{path.name}: output {g * len(strides) + s} {out.describe()} should be the {group} "
                    f"output of stride {stride}, a float tensor [..., {widths[group]}]; SCRFD's outputs "
                    f"come in this order: {_SCRFD_ORDER}",
                    details={"path": str(path), "output": out.name},
                )

    fixed = (w, h) if isinstance(w, int) and isinstance(h, int) else None
    size = _input_size(config.get("input_size"), fixed)
    if fixed and size != fixed:
        raise InvalidArgumentError(
            f"{path.name} takes {fixed[0]}x{fixed[1]} images; input_size {list(size)} does not fit it",
            details={"input_size": list(size), "graph": list(fixed)},
        )
    if min(size) < strides[-1] or size[0] % strides[-1] or size[1] % strides[-1]:
        raise ModelFormatError(
            f"{path.name}: an input size of {size[0]}x{size[1]} is not a multiple of the largest stride "
            f"({strides[-1]})",
            details={"path": str(path), "input_size": list(size)},
        )
    score_t, nms_t = float(config["score_threshold"]), float(config["nms_threshold"])
    if not (0.0 <= score_t <= 1.0 and 0.0 < nms_t <= 1.0):
        raise InvalidArgumentError(
            f"score_threshold must be in [0, 1] and nms_threshold in (0, 1]; got {score_t}, {nms_t}"
        )
    min_face = int(config["min_face"])
    pre = Preprocessing.from_options(config)
    marks = "box, score and 5 landmarks (arcface5)" if kps else "box and score (no landmarks)"
    return ModelCard(
        name=name,
        version=text_option(config, "version", graph.sha256[:12]),
        kind="detector",
        description=text_option(config, "description", f"SCRFD-format ONNX face detector from {path.name}: {marks}"),
        input=(f"RGB uint8, any size; letterboxed to {size[0]}x{size[1]}, fed as float32 NCHW "
               f"{pre.describe()}"),
        source=text_option(config, "source", str(path.resolve())),
        licence=text_option(config, "licence", UNKNOWN_LICENCE),
        extra={
            "format": "onnx",
            "family": "scrfd",
            "path": str(path.resolve()),
            "sha256": graph.sha256,
            "input": x.name,
            "input_size": list(size),
            "strides": list(strides),
            "anchors": anchors,
            "landmarks": kps,
            "score_threshold": score_t,
            "nms_threshold": nms_t,
            "min_face": min_face,
            **pre.to_extra(),
        },
    )


def _input_size(value: Any, fixed: tuple[int, int] | None) -> tuple[int, int]:
    """The ``input_size`` option as (width, height): the graph's own when fixed, else 640x640."""
    if value is None:
        value = fixed or (640, 640)
    try:
        return int(value[0]), int(value[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidArgumentError(f"input_size must be [width, height]; got {value!r}") from exc


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first. ``boxes`` is
    ``(n, 4)`` x1, y1, x2, y2; a box overlapping a kept one by IoU > ``iou_threshold`` goes."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[iou <= iou_threshold]
    return keep


def anchor_centers(height: int, width: int, stride: int, anchors: int) -> np.ndarray:
    """``(height * width * anchors, 2)`` anchor centres (x, y), row-major, anchors innermost."""
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float64) * stride
    return np.repeat(centers, anchors, axis=0) if anchors > 1 else centers


@dataclass(frozen=True, slots=True)
class ScrfdSettings:
    """What a detector's card records about its file and how it decodes, typed."""

    path: Path
    sha256: str
    input: str
    #: (width, height) the image is letterboxed to.
    input_size: tuple[int, int]
    strides: tuple[int, ...]
    anchors: int
    has_landmarks: bool
    score_threshold: float
    nms_threshold: float
    min_face: int
    preprocessing: Preprocessing

    @classmethod
    def from_card(cls, card: ModelCard) -> ScrfdSettings:
        ex = card.extra
        width, height = ex["input_size"]
        return cls(
            path=Path(ex["path"]),
            sha256=str(ex["sha256"]),
            input=str(ex["input"]),
            input_size=(int(width), int(height)),
            strides=tuple(int(s) for s in ex["strides"]),
            anchors=int(ex["anchors"]),
            has_landmarks=bool(ex["landmarks"]),
            score_threshold=float(ex["score_threshold"]),
            nms_threshold=float(ex["nms_threshold"]),
            min_face=int(ex["min_face"]),
            preprocessing=Preprocessing.from_card(ex),
        )


class ScrfdDetector:
    """An SCRFD-format face detector from an ONNX file (see the module docstring).

    ``upsample`` is ignored: every image is scaled to the network's input size anyway.
    """

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.settings = s = ScrfdSettings.from_card(card)
        self.path = s.path
        self._session = open_session(self.path, s.sha256)
        self.input_size = s.input_size
        self.strides = s.strides
        self.anchors = s.anchors
        self.has_landmarks = s.has_landmarks
        self.score_threshold = s.score_threshold
        self.nms_threshold = s.nms_threshold
        self.min_face = s.min_face
        self.colour = s.preprocessing.colour
        in_w, in_h = self.input_size
        self._centers = [anchor_centers(in_h // st, in_w // st, st, self.anchors) for st in self.strides]

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``image`` scaled (aspect kept) into a black canvas of the input size, top-left;
        with the x and y factors that take network coordinates back to the image's."""
        import cv2

        h, w = image.shape[:2]
        in_w, in_h = self.input_size
        scale = min(in_w / w, in_h / h)
        new_w, new_h = min(in_w, max(1, round(w * scale))), min(in_h, max(1, round(h * scale)))
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = image if (new_w, new_h) == (w, h) else cv2.resize(image, (new_w, new_h))
        return canvas, w / new_w, h / new_h

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        canvas, fx, fy = self.letterbox(np.ascontiguousarray(image))
        blob = self.settings.preprocessing.apply(canvas)[None]
        outs = run_session(self._session, None, {self.settings.input: blob}, self.card)
        boxes, scores, points = self.decode(outs)
        keep = nms(boxes, scores, self.nms_threshold)
        found = []
        for i in keep:
            x1, y1, x2, y2 = boxes[i]
            marks = None
            if points is not None:
                marks = Landmarks(points[i] * np.array([fx, fy]), "arcface5")
            found.append(RawDetection(Box(x1 * fx, y1 * fy, x2 * fx, y2 * fy), float(scores[i]), marks))
        return found

    def decode(self, outs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Raw outputs -> (boxes ``(n, 4)``, scores ``(n,)``, landmarks ``(n, 5, 2)`` or None)
        of the anchors at or above the score threshold, in network-input pixels."""
        k = len(self.strides)
        all_boxes, all_scores, all_points = [], [], []
        for s, (stride, centers) in enumerate(zip(self.strides, self._centers)):
            scores = self._rows(outs[s], 1, s, len(centers))[:, 0]
            hit = np.flatnonzero(scores >= self.score_threshold)
            c = centers[hit]
            d = self._rows(outs[k + s], 4, k + s, len(centers))[hit] * stride
            all_boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))  # distance2bbox
            all_scores.append(scores[hit])
            if self.has_landmarks:
                p = self._rows(outs[2 * k + s], 10, 2 * k + s, len(centers))[hit] * stride
                all_points.append(c[:, None, :] + p.reshape(-1, 5, 2))  # distance2kps
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        points = np.concatenate(all_points) if self.has_landmarks else None
        return boxes, scores, points

    def _rows(self, out: np.ndarray, width: int, index: int, expected: int) -> np.ndarray:
        arr = np.asarray(out, dtype=np.float64)
        if arr.ndim == 3 and arr.shape[0] == 1:  # batched export: [1, K, c]
            arr = arr[0]
        if arr.size != expected * width:
            w, h = self.input_size
            raise ModelFormatError(
                f"{self.card.id}: output {index} has shape {list(np.shape(out))}; at {w}x{h} input it "
                f"should have {expected} rows of {width} (SCRFD order: {_SCRFD_ORDER})",
                details={"model": self.card.id, "output": index},
            )
        return arr.reshape(expected, width)
