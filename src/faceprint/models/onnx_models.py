"""ONNX models from files the user supplies: ArcFace-family embedders and SCRFD detectors.

Nothing is downloaded, ever: the user points faceprint at a ``.onnx`` file and it is
checked, given a model card and registered under a name that :class:`~faceprint.Analyzer`,
the CLI and galleries use like any built-in model::

    from faceprint.models.onnx_models import register_onnx_model, load_models_dir
    emb = register_onnx_model("w600k_r50.onnx", kind="embedder")      # card "onnx:w600k_r50"
    det = register_onnx_model("det_10g.onnx", kind="detector")        # card "onnx:det_10g"
    analyzer = faceprint.Analyzer(detector=det.name, embedder=emb.name)
    load_models_dir("~/models")          # every *.onnx there (default: $FACEPRINT_MODELS_DIR)

A model's version defaults to the first 12 hex digits of the file's SHA-256, so its id
(``name@version``, what embeddings and galleries record) pins the exact weights; the full
hash is in ``card.extra["sha256"]`` and is checked again when the model is loaded.

**Embedders** (``family="arcface"``): one float32 input ``[N, 3, 112, 112]`` (NCHW; ``N``
dynamic, or fixed -- then chips are fed ``N`` at a time, the last group padded); the first
output is ``[N, D]`` (any ``D``, read from the graph). Chips are aligned to
:data:`faceprint.align.ARCFACE_112_CHIP`, put in the declared colour order (``rgb``, as
InsightFace's models expect, or ``bgr``) and normalised ``(x - mean) / std`` per channel
(default InsightFace's ``mean=127.5, std=127.5``). Outputs are L2-normalised float32.
A file embedder has no calibrated thresholds unless its sidecar gives them, so
``verify()`` needs ``threshold=``.

**Detectors** (``family="scrfd"``, InsightFace's ``scrfd_*`` / ``det_*`` exports): one
float32 input ``[1, 3, H, W]``; the image is letterboxed (aspect kept, padded right and
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

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import models
from faceprint.align import ARCFACE_112_CHIP
from faceprint.errors import (
    InvalidArgumentError,
    ModelFormatError,
    ModelIntegrityError,
    ModelUnavailableError,
    UnknownModelError,
)
from faceprint.models.base import RawDetection
from faceprint.models.card import Calibration, ModelCard, ModelKind
from faceprint.models.files import sha256_file
from faceprint.types import Box, Landmarks

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

NAME_PREFIX = "onnx:"
MODELS_DIR_ENV = "FACEPRINT_MODELS_DIR"
_UNKNOWN_LICENCE = "unknown: a user-supplied file; check the licence of its weights before use"

#: Number of outputs -> (strides, anchors per location, has 5-point landmarks).
SCRFD_LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    9: ((8, 16, 32), 2, True),
    6: ((8, 16, 32), 2, False),
    15: ((8, 16, 32, 64, 128), 1, True),
    10: ((8, 16, 32, 64, 128), 1, False),
}

_COMMON_KEYS = {"kind", "family", "name", "version", "description", "licence", "source", "colour", "mean", "std"}
_KEYS: dict[str, set[str]] = {
    "embedder": _COMMON_KEYS | {"calibration"},
    "detector": _COMMON_KEYS | {"score_threshold", "nms_threshold", "input_size", "min_face"},
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "embedder": {"family": "arcface", "colour": "rgb", "mean": 127.5, "std": 127.5},
    "detector": {
        "family": "scrfd", "colour": "rgb", "mean": 127.5, "std": 128.0,
        "score_threshold": 0.5, "nms_threshold": 0.4, "min_face": 16,
    },
}
#: name -> card of every model this module registered (and has not replaced).
_file_cards: dict[str, ModelCard] = {}

_CALIBRATION_KEYS = {
    "dataset", "thresholds", "frr", "n_images", "n_identities", "n_genuine_pairs", "n_impostor_pairs", "notes",
}


# --- registration --------------------------------------------------------------------------
def register_onnx_model(
    path: str | os.PathLike[str],
    kind: ModelKind | None = None,
    name: str | None = None,
    *,
    sidecar: bool | str | os.PathLike[str] = True,
    replace: bool = False,
    **options: Any,
) -> ModelCard:
    """Check the ONNX file at ``path`` and register it; its :class:`ModelCard`.

    ``kind`` is ``"embedder"`` or ``"detector"`` (default: the sidecar's, else told from the
    graph: one output is an embedder, 6/9/10/15 an SCRFD detector). ``name`` defaults to
    ``"onnx:" + the file's stem``. ``options`` are the sidecar's keys (``colour``, ``mean``,
    ``std``, ``calibration``, ``score_threshold``, ...) and override it. ``sidecar``:
    ``True`` reads ``NAME.json`` next to the file when there is one, ``False`` ignores it,
    a path names the file to read.

    Registering the same file with the same settings again returns the registered card; a
    different model under a registered name is refused unless ``replace=True`` (which only
    replaces another file model, never a built-in one).

    Raises :class:`ModelUnavailableError` (no such file), :class:`ModelFormatError` (not
    ONNX, or inputs/outputs this family cannot use; code ``invalid_model``) and
    :class:`InvalidArgumentError` (bad options, a name already taken).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelUnavailableError(f"model file {path} does not exist", details={"path": str(path)})
    if not path.is_file():
        raise ModelUnavailableError(f"model file {path} is not a file", details={"path": str(path)})

    config: dict[str, Any] = {}
    if sidecar is not False:
        side = path.with_suffix(".json") if sidecar is True else Path(sidecar)
        if sidecar is not True or side.is_file():
            config = read_sidecar(side)
    for key, value in (("kind", kind), ("name", name)):
        if value is not None:
            if config.get(key) not in (None, value):
                raise InvalidArgumentError(
                    f"{path.name}: {key}={value!r} contradicts its sidecar's {key}={config[key]!r}",
                    details={"path": str(path), key: value, "sidecar": config[key]},
                )
            config[key] = value
    config.update(options)

    graph = _inspect(path)
    kind = config.pop("kind", None) or _infer_kind(graph, path)
    if kind not in _KEYS:
        raise InvalidArgumentError(f"kind must be 'embedder' or 'detector', not {kind!r}", details={"kind": kind})
    unknown = sorted(set(config) - _KEYS[kind])
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) for an ONNX {kind}: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KEYS[kind] - {'kind'}))}",
            details={"unknown": unknown},
        )
    config = {**_DEFAULTS[kind], **config}
    name = _check_name(config.pop("name", None) or NAME_PREFIX + path.stem)
    if kind == "embedder":
        card, factory = _embedder_card(path, graph, name, config), OnnxEmbedder
    else:
        card, factory = _detector_card(path, graph, name, config), ScrfdDetector

    with models._lock:
        models._ensure_builtin()
        try:
            existing: ModelCard | None = models.get_card(name)
        except UnknownModelError:
            existing = None
        if existing is not None:
            if existing == card:
                return existing
            ours = is_file_model(existing)
            if not replace or not ours:
                where = existing.extra.get("path") or existing.source
                raise InvalidArgumentError(
                    f"the model name {name!r} is already taken (by {existing.id}, {where}); "
                    "give another name" + (" or replace=True" if ours else ""),
                    details={"name": name, "registered": existing.id},
                )
            models.unregister(name)
        models.register(card, factory)
        _file_cards[name] = card
    return card


def is_file_model(card: ModelCard) -> bool:
    """Whether ``card`` was registered from a user's file by this module."""
    return _file_cards.get(card.name) is card


def load_models_dir(directory: str | os.PathLike[str] | None = None) -> list[ModelCard]:
    """Register every ``*.onnx`` file in ``directory`` (not its subfolders), each with its
    ``NAME.json`` sidecar when there is one; their cards, in file-name order.

    ``directory`` defaults to ``$FACEPRINT_MODELS_DIR``; with neither, nothing happens. The
    first file that cannot be registered raises (naming it); the ones before stay registered.
    """
    if directory is None:
        directory = os.environ.get(MODELS_DIR_ENV) or None
        if directory is None:
            return []
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise ModelUnavailableError(f"models directory {folder} does not exist", details={"path": str(folder)})
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
    return [register_onnx_model(p) for p in files]


def read_sidecar(path: Path) -> dict[str, Any]:
    """The settings in a model's JSON sidecar (keys checked later, against the kind)."""
    if not path.is_file():
        raise ModelUnavailableError(f"sidecar {path} does not exist", details={"path": str(path)})
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"sidecar {path} is not valid JSON: {exc}", details={"path": str(path)}) from exc
    if not isinstance(doc, dict):
        raise ModelFormatError(f"sidecar {path} must hold a JSON object", details={"path": str(path)})
    return doc


# --- reading the graph ---------------------------------------------------------------------
Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    dtype: str  # ONNX element type name: FLOAT, DOUBLE, INT8, ...
    shape: tuple[Dim, ...] | None  # None: the rank is not declared

    def describe(self) -> str:
        dims = "?" if self.shape is None else "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"{self.name!r} {self.dtype} {dims}"


@dataclass(frozen=True, slots=True)
class _Graph:
    inputs: tuple[_Tensor, ...]
    outputs: tuple[_Tensor, ...]
    sha256: str


def _inspect(path: Path) -> _Graph:
    """The graph's real inputs and its outputs, without running it."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelFormatError(
            f"{path} is not an ONNX model ({type(exc).__name__}: {exc})", details={"path": str(path)}
        ) from exc
    g = model.graph
    if model.ir_version <= 0 or not g.node or not g.input or not g.output:
        raise ModelFormatError(
            f"{path} is not an ONNX model (no graph: ir_version {model.ir_version}, "
            f"{len(g.node)} nodes, {len(g.input)} inputs, {len(g.output)} outputs)",
            details={"path": str(path)},
        )
    weights = {t.name for t in g.initializer} | {t.name for t in g.sparse_initializer}
    inputs = tuple(_tensor(v, onnx) for v in g.input if v.name not in weights)
    outputs = tuple(_tensor(v, onnx) for v in g.output)
    return _Graph(inputs, outputs, sha256_file(path))


def _tensor(value_info, onnx) -> _Tensor:
    t = value_info.type
    if not t.HasField("tensor_type"):
        return _Tensor(value_info.name, t.WhichOneof("value") or "?", None)
    tt = t.tensor_type
    dtype = onnx.TensorProto.DataType.Name(tt.elem_type) if tt.elem_type else "UNDEFINED"
    if not tt.HasField("shape"):
        return _Tensor(value_info.name, dtype, None)
    dims: list[Dim] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return _Tensor(value_info.name, dtype, tuple(dims))


def _infer_kind(graph: _Graph, path: Path) -> str:
    n = len(graph.outputs)
    if n == 1:
        return "embedder"
    if n in SCRFD_LAYOUTS:
        return "detector"
    raise ModelFormatError(
        f"cannot tell what {path.name} is: an ArcFace-style embedder has 1 output and an SCRFD "
        f"detector 6, 9, 10 or 15; it has {n}. Give kind='embedder' or kind='detector'",
        details={"path": str(path), "outputs": n},
    )


def _image_input(graph: _Graph, path: Path, what: str) -> tuple[_Tensor, Dim, Dim, Dim]:
    """The single float32 NCHW 3-channel input: (tensor, batch, height, width)."""
    if len(graph.inputs) != 1:
        names = ", ".join(t.describe() for t in graph.inputs)
        raise ModelFormatError(
            f"{path.name}: {what} has exactly one input; this graph has {len(graph.inputs)}: {names}",
            details={"path": str(path)},
        )
    x = graph.inputs[0]
    if x.dtype != "FLOAT":
        raise ModelFormatError(
            f"{path.name}: input {x.describe()} must be float32 (FLOAT), not {x.dtype}",
            details={"path": str(path), "input": x.name, "dtype": x.dtype},
        )
    if x.shape is None or len(x.shape) != 4:
        raise ModelFormatError(
            f"{path.name}: input {x.describe()} must be 4-D NCHW [N, 3, H, W]",
            details={"path": str(path), "input": x.name},
        )
    n, c, h, w = x.shape
    if isinstance(c, int) and c != 3:
        hint = " (it looks channels-last, NHWC; export it NCHW)" if w == 3 else ""
        raise ModelFormatError(
            f"{path.name}: input {x.describe()} must have 3 colour channels in dimension 1{hint}",
            details={"path": str(path), "input": x.name},
        )
    return x, n, h, w


def _floats3(value: Any, key: str) -> list[float]:
    vals = [value] * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        out = [float(v) for v in vals]
    except (TypeError, ValueError):
        out = []
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise InvalidArgumentError(f"{key} must be a number or 3 numbers; got {value!r}", details={key: value})
    return out


def _preprocessing(config: dict[str, Any]) -> tuple[str, list[float], list[float]]:
    colour = str(config["colour"]).lower()
    if colour not in {"rgb", "bgr"}:
        raise InvalidArgumentError(f"colour must be 'rgb' or 'bgr'; got {config['colour']!r}")
    mean, std = _floats3(config["mean"], "mean"), _floats3(config["std"], "std")
    if any(s == 0 for s in std):
        raise InvalidArgumentError(f"std must not be 0; got {config['std']!r}")
    return colour, mean, std


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or "@" in name or re.search(r"\s", name):
        raise InvalidArgumentError(
            f"a model name must be a non-empty string without spaces or '@'; got {name!r}", details={"name": name}
        )
    return name


def _family(config: dict[str, Any], allowed: str) -> None:
    if config["family"] != allowed:
        raise InvalidArgumentError(f"family must be {allowed!r}; {config['family']!r} is not supported")


def _text(config: dict[str, Any], key: str, default: str) -> str:
    value = config.get(key)
    return default if value is None else str(value)


def calibration_from_dict(value: Any) -> Calibration | None:
    """A :class:`Calibration` from a sidecar's ``calibration`` object (FAR keys as strings)."""
    if value is None or isinstance(value, Calibration):
        return value
    if not isinstance(value, dict):
        raise InvalidArgumentError("calibration must be an object with a 'thresholds' map")
    unknown = sorted(set(value) - _CALIBRATION_KEYS)
    if unknown:
        raise InvalidArgumentError(f"unknown calibration key(s): {', '.join(unknown)}", details={"unknown": unknown})

    def table(key: str, lo: float, hi: float) -> dict[float, float]:
        raw = value.get(key) or {}
        if not isinstance(raw, dict):
            raise InvalidArgumentError(f"calibration.{key} must map a FAR to a number")
        out: dict[float, float] = {}
        for far, v in raw.items():
            try:
                f, x = float(far), float(v)
            except (TypeError, ValueError):
                f, x = math.nan, math.nan
            if not (0.0 < f < 1.0) or not (lo <= x <= hi):
                raise InvalidArgumentError(
                    f"calibration.{key}: {far!r}: {v!r} must map a FAR in (0, 1) to a value in [{lo:g}, {hi:g}]"
                )
            out[f] = x
        return out

    thresholds = table("thresholds", -1.0, 1.0)
    if not thresholds:
        raise InvalidArgumentError("calibration.thresholds must give at least one FAR: similarity pair")
    try:
        counts = {k: int(value.get(k, 0)) for k in ("n_images", "n_identities", "n_genuine_pairs", "n_impostor_pairs")}
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"calibration counts must be integers ({exc})") from exc
    return Calibration(
        dataset=str(value.get("dataset", "user-supplied")),
        thresholds=thresholds,
        frr=table("frr", 0.0, 1.0),
        notes=str(value.get("notes", "")),
        **counts,
    )


# --- embedders -----------------------------------------------------------------------------
def _embedder_card(path: Path, graph: _Graph, name: str, config: dict[str, Any]) -> ModelCard:
    _family(config, "arcface")
    x, n, h, w = _image_input(graph, path, "an ArcFace-style embedder")
    size = ARCFACE_112_CHIP.size
    if (isinstance(h, int) and h != size) or (isinstance(w, int) and w != size):
        raise ModelFormatError(
            f"{path.name}: input {x.describe()} must take {size}x{size} chips [N, 3, {size}, {size}] "
            "(ArcFace alignment)",
            details={"path": str(path), "input": x.name},
        )
    out = graph.outputs[0]
    if out.dtype not in {"FLOAT", "DOUBLE", "FLOAT16"}:
        raise ModelFormatError(
            f"{path.name}: output {out.describe()} must be a float tensor", details={"path": str(path)}
        )
    batch = n if isinstance(n, int) else None
    dim = None
    if out.shape is not None and len(out.shape) >= 2 and all(isinstance(d, int) for d in out.shape[1:]):
        dim = math.prod(out.shape[1:])  # type: ignore[arg-type]
    if dim is None:  # not declared: run it once on a blank chip
        session = _session(path, graph.sha256)
        probe = session.run([out.name], {x.name: np.zeros((batch or 1, 3, size, size), np.float32)})[0]
        dim = int(np.asarray(probe).reshape(batch or 1, -1).shape[1])
    if dim < 1:
        raise ModelFormatError(f"{path.name}: output {out.describe()} is empty", details={"path": str(path)})
    colour, mean, std = _preprocessing(config)
    calibration = calibration_from_dict(config.get("calibration"))
    norm = f"(x - {_fmt(mean)}) / {_fmt(std)}"
    return ModelCard(
        name=name,
        version=_text(config, "version", graph.sha256[:12]),
        kind="embedder",
        description=_text(config, "description", f"ArcFace-family ONNX embedder from {path.name} ({dim}-D)"),
        input=f"{ARCFACE_112_CHIP.describe()}; fed as float32 NCHW {colour.upper()}, {norm}",
        source=_text(config, "source", str(path.resolve())),
        licence=_text(config, "licence", _UNKNOWN_LICENCE),
        embedding_dim=dim,
        metric=f"cosine similarity of L2-normalised {dim}-D vectors (higher = more alike)",
        calibration=calibration,
        extra={
            "format": "onnx",
            "family": "arcface",
            "path": str(path.resolve()),
            "sha256": graph.sha256,
            "input": x.name,
            "output": out.name,
            "batch": batch if batch is not None else "dynamic",
            "colour": colour,
            "mean": mean,
            "std": std,
        },
    )


def _fmt(values: list[float]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _session(path: Path, sha256: str):
    """An onnxruntime session for ``path`` after checking it is still the registered file."""
    if not path.is_file():
        raise ModelUnavailableError(f"model file {path} is gone", details={"path": str(path)})
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelIntegrityError(
            f"{path} changed since it was registered (sha256 {actual[:12]}..., registered "
            f"{sha256[:12]}...); register it again",
            details={"path": str(path), "sha256": actual, "expected": sha256},
        )
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ModelUnavailableError("onnxruntime is not installed: pip install onnxruntime") from exc
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise ModelFormatError(
            f"onnxruntime cannot load {path}: {exc}", details={"path": str(path)}
        ) from exc


def _run(session, outputs: list[str] | None, feed: dict[str, np.ndarray], card: ModelCard) -> list[np.ndarray]:
    try:
        return session.run(outputs, feed)
    except Exception as exc:
        raise ModelFormatError(
            f"running {card.id} failed: {exc}", details={"model": card.id}
        ) from exc


def _normalise(rgb: np.ndarray, colour: str, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(..., H, W, 3)`` RGB uint8 -> float32 ``(..., 3, H, W)`` in the network's convention."""
    x = rgb[..., ::-1] if colour == "bgr" else rgb
    x = (x.astype(np.float32) - mean) / std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3), dtype=np.float32)


class OnnxEmbedder:
    """An ArcFace-family embedder from an ONNX file (see the module docstring)."""

    chip = ARCFACE_112_CHIP

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        ex = card.extra
        self.path = Path(ex["path"])
        self._session = _session(self.path, ex["sha256"])
        self._input, self._output = ex["input"], ex["output"]
        self.batch: int | None = ex["batch"] if isinstance(ex["batch"], int) else None
        self.colour = ex["colour"]
        self._mean = np.asarray(ex["mean"], np.float32)
        self._std = np.asarray(ex["std"], np.float32)
        self.dim = int(card.embedding_dim or 0)

    def preprocess(self, chips: list[np.ndarray]) -> np.ndarray:
        """The ``(n, 3, 112, 112)`` float32 tensor the network is fed for ``chips``."""
        size = self.chip.size
        for chip in chips:
            if chip.shape != (size, size, 3):
                raise InvalidArgumentError(
                    f"{self.card.name} needs {size}x{size} RGB chips; got an array of shape {chip.shape}"
                )
        return _normalise(np.stack(chips), self.colour, self._mean, self._std)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        if not len(chips):
            return np.zeros((0, self.dim), dtype=np.float32)
        x = self.preprocess(list(chips))
        n = len(x)
        if self.batch is None:
            raw = self._forward(x)
        else:  # a fixed batch size: feed it that many at a time, padding the last group
            parts = []
            for start in range(0, n, self.batch):
                group = x[start : start + self.batch]
                if len(group) < self.batch:
                    pad = np.zeros((self.batch - len(group), *group.shape[1:]), np.float32)
                    group = np.concatenate([group, pad])
                parts.append(self._forward(group)[: min(self.batch, n - start)])
            raw = np.concatenate(parts)
        if raw.shape != (n, self.dim):
            raise ModelFormatError(
                f"{self.card.id} gave output of shape {raw.shape} for {n} chips; expected ({n}, {self.dim})",
                details={"model": self.card.id},
            )
        vecs = raw.astype(np.float64)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        (out,) = _run(self._session, [self._output], {self._input: x}, self.card)
        out = np.asarray(out)
        return out.reshape(len(x), -1) if out.size % max(len(x), 1) == 0 else out


# --- detectors -----------------------------------------------------------------------------
_SCRFD_ORDER = "scores for each stride, then box distances for each stride, then 5-point distances for each stride"


def _detector_card(path: Path, graph: _Graph, name: str, config: dict[str, Any]) -> ModelCard:
    _family(config, "scrfd")
    x, _n, h, w = _image_input(graph, path, "an SCRFD detector")
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
            if out.dtype not in {"FLOAT", "FLOAT16", "DOUBLE"} or (isinstance(last, int) and last != widths[group]):
                raise ModelFormatError(
                    f"{path.name}: output {g * len(strides) + s} {out.describe()} should be the {group} "
                    f"output of stride {stride}, a float tensor [..., {widths[group]}]; SCRFD's outputs "
                    f"come in this order: {_SCRFD_ORDER}",
                    details={"path": str(path), "output": out.name},
                )

    fixed = (w, h) if isinstance(w, int) and isinstance(h, int) else None
    size = config.get("input_size")
    if size is None:
        size = fixed or (640, 640)
    try:
        size = (int(size[0]), int(size[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidArgumentError(f"input_size must be [width, height]; got {size!r}") from exc
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
    colour, mean, std = _preprocessing(config)
    marks = "box, score and 5 landmarks (arcface5)" if kps else "box and score (no landmarks)"
    return ModelCard(
        name=name,
        version=_text(config, "version", graph.sha256[:12]),
        kind="detector",
        description=_text(config, "description", f"SCRFD-format ONNX face detector from {path.name}: {marks}"),
        input=(f"RGB uint8, any size; letterboxed to {size[0]}x{size[1]}, fed as float32 NCHW "
               f"{colour.upper()}, (x - {_fmt(mean)}) / {_fmt(std)}"),
        source=_text(config, "source", str(path.resolve())),
        licence=_text(config, "licence", _UNKNOWN_LICENCE),
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
            "colour": colour,
            "mean": mean,
            "std": std,
        },
    )


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


class ScrfdDetector:
    """An SCRFD-format face detector from an ONNX file (see the module docstring).

    ``upsample`` is ignored: every image is scaled to the network's input size anyway.
    """

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        ex = card.extra
        self.path = Path(ex["path"])
        self._session = _session(self.path, ex["sha256"])
        self._input = ex["input"]
        self.input_size: tuple[int, int] = tuple(ex["input_size"])  # type: ignore[assignment]
        self.strides: tuple[int, ...] = tuple(ex["strides"])
        self.anchors = int(ex["anchors"])
        self.has_landmarks = bool(ex["landmarks"])
        self.score_threshold = float(ex["score_threshold"])
        self.nms_threshold = float(ex["nms_threshold"])
        self.min_face = int(ex["min_face"])
        self.colour = ex["colour"]
        self._mean = np.asarray(ex["mean"], np.float32)
        self._std = np.asarray(ex["std"], np.float32)
        in_w, in_h = self.input_size
        self._centers = [anchor_centers(in_h // s, in_w // s, s, self.anchors) for s in self.strides]

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
        blob = _normalise(canvas, self.colour, self._mean, self._std)[None]
        outs = _run(self._session, None, {self._input: blob}, self.card)
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
