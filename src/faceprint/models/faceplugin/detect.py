"""``fr-detect``: the Faceplugin pack's light face detector (``model/fr_detect.onnx``).

The network is an Ultra-Light-style SSD with RFB blocks: one float32 input ``[1, 3, 240, 320]``
(fixed), RGB, ``(x - 127) / 128``; two outputs ``scores [1, 4420, 2]`` (softmax; column 1 is
"face") and ``boxes [1, 4420, 4]`` -- already decoded against its 4,420 priors (min sizes
10-256 px on strides 8-64) into corner form ``x1, y1, x2, y2`` as fractions of the input.
So decoding is: keep the rows scoring at or above a threshold, scale, NMS.

Because the input is fixed, one pass squeezes any photo to 320x240: a face narrower than
about 1/30 of the photo falls under the smallest prior and vanishes. :class:`FrDetectPolicy`
adds an image pyramid made of tiles: after the whole-image pass, level ``k`` covers the image
with overlapping windows seen at ``2**k`` times the whole-image scale (never above
``max_scale`` network pixels per image pixel), and the detections of all passes are merged
by NMS. Its defaults were chosen by measurement (bench/detection.py; bench/README.md,
section 'fr-detect detection policy').

Where this differs from the package's JavaScript (lib/fr_detect.js): the JS reads an RGBA
canvas and converts it with ``COLOR_BGR2RGB``, so it really feeds **BGR**; faceprint feeds
RGB, the order that measured better (``FrDetectPolicy.colour``: 143 faces against 122 for BGR
in one pass). The JS squeezes the photo to 320x240; faceprint letterboxes it (measured better
with the pyramid). The JS's NMS (sorted by the
box's bottom edge, overlap over one box's area) and its squaring of boxes are replaced by
score-ordered IoU NMS and the network's own box.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from faceprint.errors import InvalidArgumentError, ModelFormatError
from faceprint.models.base import BuiltinModel, RawDetection
from faceprint.models.card import ModelCard
from faceprint.models.onnx.common import OrtSession, free_batch_dimension, open_session, run_session
from faceprint.models.onnx.scrfd import nms
from faceprint.models.packs import FACEPLUGIN, pack_file
from faceprint.types import Box

logger = logging.getLogger(__name__)

#: The network's fixed input, (width, height).
INPUT_W, INPUT_H = 320, 240
#: Rows the network outputs: its priors (3600 + 600 + 160 + 60 over strides 8, 16, 32, 64).
N_PRIORS = 4420
#: The pack file holding the network.
MODEL_PATH = "model/fr_detect.onnx"
#: Pixel normalisation of the package's JavaScript: ``(x - 127) / 128``.
PIXEL_MEAN, PIXEL_STD = 127.0, 128.0
#: The grey that letterbox and tile padding are filled with: zero after normalisation.
PAD_VALUE = 127

Fit = Literal["letterbox", "squeeze"]
Colour = Literal["rgb", "bgr"]


@dataclass(frozen=True, slots=True)
class FrDetectPolicy:
    """How ``fr-detect`` looks at a photo: the passes it runs and how it merges them.

    The whole image is always one pass, letterboxed (aspect kept; squeezing it into 320x240
    as the package's JS does found one face fewer and 3 more false ones with the pyramid).
    Then, for ``k = 1 .. levels``, the image is covered with
    overlapping tiles that the network sees at ``2**k`` times the whole-image scale, as long
    as that scale stays at most ``max_scale`` network pixels per image pixel. Neighbouring
    tiles share ``overlap`` of their size; a box touching a tile edge inside the image is a
    cut face and is dropped there (a neighbour sees it whole).

    Tiles see blurred backgrounds of large photos up close and score bits of them as faces,
    and parts of faces too big for a tile: so a tile's box counts only when it scores at least
    ``tile_score_threshold`` and its side in network pixels is within ``tile_face`` (below the
    smallest prior it is noise; above, the coarser pass sees that face whole). Merging: IoU NMS
    at ``nms_threshold`` over all passes, then a box is dropped when ``containment`` of the
    smaller box's area lies inside a box kept from a coarser pass (or a better one of its own).

    The defaults are measured (bench/detection.py; bench/README.md, 'fr-detect detection
    policy').
    """

    score_threshold: float = 0.7
    tile_score_threshold: float = 0.95
    nms_threshold: float = 0.4
    containment: float = 0.3
    tile_face: tuple[float, float] = (10.0, 120.0)
    fit: Fit = "letterbox"
    colour: Colour = "rgb"
    levels: int = 2
    max_scale: float = 1.0
    overlap: float = 0.25

    def __post_init__(self) -> None:
        unit = (self.score_threshold, self.tile_score_threshold, self.nms_threshold, self.containment)
        if not all(0.0 < v <= 1.0 for v in unit):
            raise InvalidArgumentError(
                "score_threshold, tile_score_threshold, nms_threshold and containment must be in (0, 1]; "
                f"got {unit}"
            )
        if self.fit not in ("letterbox", "squeeze") or self.colour not in ("rgb", "bgr"):
            raise InvalidArgumentError(f"fit must be letterbox|squeeze and colour rgb|bgr; got {self.fit}, {self.colour}")
        if self.levels < 0 or self.max_scale <= 0 or not (0.0 <= self.overlap < 1.0):
            raise InvalidArgumentError(
                f"levels must be >= 0, max_scale > 0 and overlap in [0, 1); got {self.levels}, "
                f"{self.max_scale}, {self.overlap}"
            )
        if not (0 <= self.tile_face[0] < self.tile_face[1]):
            raise InvalidArgumentError(f"tile_face must be (smallest, largest) with 0 <= smallest < largest; got {self.tile_face}")


#: One pass alone, as the package's JavaScript runs it (for comparison).
SINGLE_PASS = FrDetectPolicy(levels=0)


@dataclass(frozen=True, slots=True)
class Window:
    """A region of the image fed to the network as one pass.

    ``x0, y0, width, height`` in image pixels; the region is resized by ``sx, sy`` (network
    pixels per image pixel) into the top-left of the 320x240 input. ``inner`` says which
    edges (left, top, right, bottom) lie inside the image rather than on its border.
    """

    x0: int
    y0: int
    width: int
    height: int
    sx: float
    sy: float
    inner: tuple[bool, bool, bool, bool] = (False, False, False, False)
    #: 0 for the whole image, k for the tiles seen at 2**k times its scale.
    level: int = 0


def whole_image(width: int, height: int, fit: Fit) -> Window:
    """The window of the whole-image pass: letterboxed (aspect kept) or squeezed."""
    sx, sy = INPUT_W / width, INPUT_H / height
    if fit == "letterbox":
        sx = sy = min(sx, sy)
    return Window(0, 0, width, height, sx, sy)


def axis_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``window`` px covering ``length`` px, neighbours sharing at
    least ``overlap`` px, spread evenly with the last one ending at ``length``."""
    if window >= length:
        return [0]
    step = max(1, window - overlap)
    n = math.ceil((length - window) / step) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def plan_windows(width: int, height: int, policy: FrDetectPolicy) -> list[Window]:
    """Every pass ``policy`` runs on a ``width x height`` image: the whole image first, then
    the tiles of each pyramid level, coarse to fine."""
    if width < 1 or height < 1:
        raise InvalidArgumentError(f"an image must have pixels; got {width}x{height}")
    first = whole_image(width, height, policy.fit)
    windows = [first]
    base = min(first.sx, first.sy)
    for level in range(1, policy.levels + 1):
        scale = base * 2**level
        if scale > policy.max_scale * (1 + 1e-9):
            break
        tw, th = math.ceil(INPUT_W / scale), math.ceil(INPUT_H / scale)
        xs = axis_starts(width, tw, round(tw * policy.overlap))
        ys = axis_starts(height, th, round(th * policy.overlap))
        for y0 in ys:
            for x0 in xs:
                w, h = min(tw, width - x0), min(th, height - y0)
                inner = (x0 > 0, y0 > 0, x0 + w < width, y0 + h < height)
                windows.append(Window(x0, y0, w, h, scale, scale, inner, level))
    return windows


def network_input(image: np.ndarray, window: Window, colour: Colour) -> np.ndarray:
    """The ``[1, 3, 240, 320]`` float32 blob of ``window``: the region resized into the
    top-left of a grey canvas, in ``colour`` order, ``(x - 127) / 128``."""
    import cv2

    crop = image[window.y0 : window.y0 + window.height, window.x0 : window.x0 + window.width]
    new_w = min(INPUT_W, max(1, round(window.width * window.sx)))
    new_h = min(INPUT_H, max(1, round(window.height * window.sy)))
    canvas = np.full((INPUT_H, INPUT_W, 3), PAD_VALUE, np.uint8)
    if (new_w, new_h) == (crop.shape[1], crop.shape[0]):
        canvas[:new_h, :new_w] = crop
    else:
        shrinking = new_w < crop.shape[1]
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR  # area: no aliasing when shrinking a lot
        canvas[:new_h, :new_w] = cv2.resize(np.ascontiguousarray(crop), (new_w, new_h), interpolation=interp)
    x = canvas[..., ::-1] if colour == "bgr" else canvas
    blob = (x.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(blob.transpose(2, 0, 1)[None])


def decode(scores: np.ndarray, boxes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The network's outputs -> (boxes ``(n, 4)`` in network-input pixels, face scores ``(n,)``)
    of the priors scoring at or above ``threshold``."""
    s = np.asarray(scores, np.float64).reshape(-1, 2)[:, 1]
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(s) != len(b):
        raise ModelFormatError(f"fr_detect gave {len(s)} scores but {len(b)} boxes", details={"model": "fr-detect"})
    hit = np.flatnonzero(s >= threshold)
    return b[hit] * np.array([INPUT_W, INPUT_H, INPUT_W, INPUT_H], np.float64), s[hit]


def to_image(boxes: np.ndarray, window: Window) -> np.ndarray:
    """Boxes in network-input pixels -> image pixels."""
    out = np.empty_like(boxes)
    out[:, 0::2] = boxes[:, 0::2] / window.sx + window.x0
    out[:, 1::2] = boxes[:, 1::2] / window.sy + window.y0
    return out


def cut_by_inner_edge(boxes: np.ndarray, window: Window, margin: float = 2.0) -> np.ndarray:
    """Mask of the boxes (image pixels) touching an edge of ``window`` that lies inside the
    image: the face is cut there, and the overlapping neighbour window sees it whole."""
    left, top, right, bottom = window.inner
    x1, y1 = window.x0, window.y0
    x2, y2 = window.x0 + window.width, window.y0 + window.height
    cut = np.zeros(len(boxes), bool)
    if left:
        cut |= boxes[:, 0] <= x1 + margin
    if top:
        cut |= boxes[:, 1] <= y1 + margin
    if right:
        cut |= boxes[:, 2] >= x2 - margin
    if bottom:
        cut |= boxes[:, 3] >= y2 - margin
    return cut


def merge(
    boxes: np.ndarray, scores: np.ndarray, levels: np.ndarray, width: int, height: int, policy: FrDetectPolicy
) -> list[RawDetection]:
    """The detections of all passes as one list: IoU NMS, then containment against coarser
    (or better) boxes; boxes clipped to the image, best score first."""
    keep = nms(boxes, scores, policy.nms_threshold)
    kept: list[int] = []
    for i in sorted(keep, key=lambda i: (int(levels[i]), -float(scores[i]))):
        if not any(inside_fraction(boxes[i], boxes[j]) >= policy.containment for j in kept):
            kept.append(i)
    found: list[RawDetection] = []
    for i in sorted(kept, key=lambda i: -float(scores[i])):
        x1, y1, x2, y2 = boxes[i]
        box = Box(max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
        if box.width > 1 and box.height > 1:
            found.append(RawDetection(box, float(scores[i])))
    return found


def inside_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """The intersection of boxes ``a`` and ``b`` over the smaller one's area (0 for empty boxes)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / smaller) if smaller > 0 else 0.0


def batchable_model(data: bytes) -> bytes:
    """The detector's graph with a free batch dimension (the file fixes it at 1; the graph
    itself reshapes by the input's own shape), so that the tiles of a photo run as one batch."""
    import onnx

    model = onnx.ModelProto()
    model.ParseFromString(data)
    free_batch_dimension(model)
    out: bytes = model.SerializeToString()
    return out


def open_fr_session(path: Path, threads: int) -> OrtSession:
    """An onnxruntime session for the detector: batchable, graph optimisation ALL (about 3x
    faster than EXTENDED or BASIC for this network), ``threads`` intra-op threads, no
    spin-waiting: between batches the pipeline does other work (bench/README.md, 'fr-detect
    detection policy')."""
    session = open_session(path, FACEPLUGIN.files[MODEL_PATH], optimization="all", threads=threads,
                           spinning=False, rewrite=batchable_model)
    logger.info("fr-detect loaded from %s (%d intra-op threads)", path, threads)
    return session


#: Tiles run per batch (16 tiles are 15 MB of input): one call per batch instead of per tile;
#: on 2 threads of an idle machine that saved about a third of the time per tile.
BATCH = 16


#: Intra-op threads. One: the batch engine already runs one worker process per core, and on a
#: busy 2-core machine 2 threads were slower per pass (4.2 ms against 2.9 ms); only on an idle
#: one did 2 threads gain (about 1.5x on batches of tiles).
DEFAULT_THREADS = 1


class FrDetector:
    """The Faceplugin detector with an image-pyramid policy (see the module docstring).

    ``upsample`` is ignored: the policy decides the scales (the network sees every pass at
    320x240 anyway).
    """

    #: Smallest face side (network pixels) found reliably: the smallest prior is 10 px.
    min_face = 20

    def __init__(self, card: ModelCard, policy: FrDetectPolicy | None = None, threads: int = DEFAULT_THREADS) -> None:
        self.card = card
        self.policy = policy or FrDetectPolicy()
        self.path = pack_file(FACEPLUGIN.name, MODEL_PATH)  # raises ModelUnavailableError with the install line
        self.threads = threads
        self._session = open_fr_session(self.path, self.threads)

    def run_windows(self, image: np.ndarray, windows: list[Window]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The network's (scores ``(4420, 2)``, boxes ``(4420, 4)``) for each window."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(windows), BATCH):
            chunk = windows[start : start + BATCH]
            blob = np.concatenate([network_input(image, w, self.policy.colour) for w in chunk])
            scores, boxes = run_session(self._session, ["scores", "boxes"], {"input": blob}, self.card)
            if scores.shape != (len(chunk), N_PRIORS, 2) or boxes.shape != (len(chunk), N_PRIORS, 4):
                raise ModelFormatError(
                    f"{self.card.id}: expected scores [{len(chunk)}, {N_PRIORS}, 2] and boxes "
                    f"[{len(chunk)}, {N_PRIORS}, 4]; got {list(scores.shape)} and {list(boxes.shape)}",
                    details={"model": self.card.id},
                )
            out += [(scores[i], boxes[i]) for i in range(len(chunk))]
        return out

    def select(self, window: Window, scores: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pass's detections: (boxes in image pixels, scores) passing the policy's
        threshold and size rule for the window's level, NMS-ed, cut faces dropped."""
        p = self.policy
        net_boxes, s = decode(scores, boxes, p.score_threshold if window.level == 0 else p.tile_score_threshold)
        if window.level > 0:
            side = net_boxes[:, 3] - net_boxes[:, 1]
            sized = (side >= p.tile_face[0]) & (side <= p.tile_face[1])
            net_boxes, s = net_boxes[sized], s[sized]
        keep = nms(net_boxes, s, p.nms_threshold)
        img_boxes, s = to_image(net_boxes[keep], window), s[keep]
        if any(window.inner):
            whole = ~cut_by_inner_edge(img_boxes, window)
            img_boxes, s = img_boxes[whole], s[whole]
        return img_boxes, s

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        h, w = image.shape[:2]
        windows = plan_windows(w, h, self.policy)
        all_boxes, all_scores, all_levels = [np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0, int)]
        for window, (scores, boxes) in zip(windows, self.run_windows(image, windows)):
            b, s = self.select(window, scores, boxes)
            all_boxes.append(b)
            all_scores.append(s)
            all_levels.append(np.full(len(s), window.level))
        boxes, scores, levels = (np.concatenate(a) for a in (all_boxes, all_scores, all_levels))
        return merge(boxes, scores, levels, w, h, self.policy)


FR_DETECT_CARD = ModelCard(
    name="fr-detect",
    version=FACEPLUGIN.version,
    kind="detector",
    description=(
        "Faceplugin's light SSD/RFB face detector (boxes and scores, no landmarks), run on the whole "
        "image plus overlapping tiles of an image pyramid so that small faces in large photos are found."
    ),
    input=(
        f"RGB uint8, any size; each pass (the whole image, then pyramid tiles) is resized into "
        f"{INPUT_W}x{INPUT_H}, fed as float32 NCHW, (x - {PIXEL_MEAN:g}) / {PIXEL_STD:g}"
    ),
    source=f"{FACEPLUGIN.registry} {FACEPLUGIN.spec}: {MODEL_PATH} (faceprint models install {FACEPLUGIN.name})",
    licence=FACEPLUGIN.licence,
    extra={
        "format": "onnx",
        "pack": FACEPLUGIN.name,
        "path": MODEL_PATH,
        "sha256": FACEPLUGIN.files[MODEL_PATH],
        "provenance": FACEPLUGIN.provenance,
        "input_size": [INPUT_W, INPUT_H],
    },
    # The network's own 0.7, no higher: true faces score down to 0.80 on ORL (400 images) and
    # 0.93 on lfw_dev (3,825); 0.995 dropped 10 of each. The one false positive measured (an
    # ear in face_recognition's obama1.jpg, 0.993) scores above those true faces, so no floor
    # separates it (bench/README.md, section 'Minimum detection score').
    min_score=0.7,
)

#: What the registry registers from this family (card, loader, aliases).
BUILTIN: list[BuiltinModel] = [(FR_DETECT_CARD, FrDetector, ("faceplugin-detect",))]
