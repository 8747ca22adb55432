"""What every ONNX model family shares: reading a graph's inputs and outputs, opening a
checked onnxruntime session, sidecar files, option parsing and pixel normalisation."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol

import numpy as np

from faceprint.errors import (
    InvalidArgumentError,
    ModelFormatError,
    ModelIntegrityError,
    ModelUnavailableError,
)
from faceprint.models.card import ModelCard
from faceprint.models.files import sha256_file

logger = logging.getLogger(__name__)

NAME_PREFIX = "onnx:"
UNKNOWN_LICENCE = "unknown: a user-supplied file; check the licence of its weights before use"
#: Sidecar keys every family takes.
COMMON_KEYS = frozenset({"kind", "family", "name", "version", "description", "licence", "source", "colour", "mean", "std"})
#: Element types a float output may have.
FLOAT_TYPES = frozenset({"FLOAT", "FLOAT16", "DOUBLE"})


# --- onnxruntime -----------------------------------------------------------------------------
class OrtSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` faceprint uses."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[Any]: ...


def import_onnxruntime() -> ModuleType:
    """onnxruntime, imported on first use; :class:`ModelUnavailableError` when it cannot be."""
    try:
        import onnxruntime
    except Exception as exc:  # ImportError, or a broken install's OSError
        raise ModelUnavailableError(
            f"onnxruntime cannot be imported ({type(exc).__name__}: {exc}); pip install onnxruntime"
        ) from exc
    module: ModuleType = onnxruntime
    return module


#: onnxruntime's graph optimisation levels by name (its default is "all").
GraphOptimization = Literal["disable", "basic", "extended", "all"]
_ORT_LEVELS = {
    "disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL",
}


def open_session(
    path: Path,
    sha256: str,
    *,
    optimization: GraphOptimization = "all",
    threads: int | None = None,
    spinning: bool = True,
    rewrite: Callable[[bytes], bytes] | None = None,
) -> OrtSession:
    """An onnxruntime session for ``path`` after checking it is still the registered file.

    ``optimization`` is the graph optimisation level (some graphs run several times faster at
    a lower one than the default "all"); ``threads`` the intra-op threads (None: onnxruntime's
    default, one per core); ``spinning=False`` keeps idle onnxruntime threads from spin-waiting
    (for a model called between other work, whose CPU they would take); ``rewrite``, when
    given, turns the checked file's bytes into the graph that is run (e.g. a fixed batch size
    made dynamic, :func:`free_batch_dimension`).
    """
    if not path.is_file():
        raise ModelUnavailableError(f"model file {path} is gone", details={"path": str(path)})
    data = path.read_bytes() if rewrite is not None else None
    actual = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
    if actual != sha256:
        raise ModelIntegrityError(
            f"{path} changed since it was registered (sha256 {actual[:12]}..., registered "
            f"{sha256[:12]}...); register it again",
            details={"path": str(path), "sha256": actual, "expected": sha256},
        )
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVELS[optimization])
    if threads is not None:
        opts.intra_op_num_threads = threads
    if not spinning:
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        graph: str | bytes = str(path) if data is None or rewrite is None else rewrite(data)
        session: OrtSession = ort.InferenceSession(graph, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types, or the rewrite's
        raise ModelFormatError(f"onnxruntime cannot load {path}: {exc}", details={"path": str(path)}) from exc
    logger.debug("onnxruntime session opened for %s (graph optimisation %s)", path, optimization)
    return session


def free_batch_dimension(model: Any) -> None:
    """Give an ``onnx.ModelProto``'s inputs and outputs a symbolic first dimension ``N`` (for a
    file exported with a fixed batch of 1 whose graph does not depend on it)."""
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"


def flush_denormal_weights(model: Any) -> int:
    """Set the float32 weights of an ``onnx.ModelProto`` that are denormal (nonzero and smaller
    in magnitude than 2**-126) to 0, in place; the number of values changed.

    Some exported files carry thousands of them (left over from training, far too small to move
    an output), and a CPU multiplying by a denormal takes a slow path: fr_feature.onnx ran
    1.1-1.4x (graph optimisation "extended") to 3.3-3.6x ("all") slower per face with its 8,938
    denormals than without them, to the same outputs (bench/README.md, section 'End to end against
    face_recognition'). Only initializers are looked at (weights in ``Constant`` nodes are not).
    """
    from onnx import TensorProto, numpy_helper

    tiny = np.finfo(np.float32).tiny
    changed = 0
    for weight in model.graph.initializer:
        if weight.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(weight)
        denormal = (values != 0) & (np.abs(values) < tiny)
        count = int(np.count_nonzero(denormal))
        if count:
            flushed = np.where(denormal, np.float32(0), values).astype(np.float32)
            weight.CopyFrom(numpy_helper.from_array(flushed, weight.name))
            changed += count
    return changed


def run_session(
    session: OrtSession, outputs: list[str] | None, feed: dict[str, np.ndarray], card: ModelCard
) -> list[np.ndarray]:
    """``session.run``; a failure is a :class:`ModelFormatError` naming the model."""
    try:
        return [np.asarray(out) for out in session.run(outputs, feed)]
    except Exception as exc:
        raise ModelFormatError(f"running {card.id} failed: {exc}", details={"model": card.id}) from exc


# --- reading the graph -----------------------------------------------------------------------
Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A graph input or output as declared: name, element type and shape."""

    name: str
    dtype: str  # ONNX element type name: FLOAT, DOUBLE, INT8, ...
    shape: tuple[Dim, ...] | None  # None: the rank is not declared

    def describe(self) -> str:
        dims = "?" if self.shape is None else "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"{self.name!r} {self.dtype} {dims}"


@dataclass(frozen=True, slots=True)
class GraphInfo:
    """A model file's real inputs (weights left out), its outputs and its SHA-256."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    sha256: str


def inspect_graph(path: Path) -> GraphInfo:
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
    inputs = tuple(_tensor(v) for v in g.input if v.name not in weights)
    outputs = tuple(_tensor(v) for v in g.output)
    return GraphInfo(inputs, outputs, sha256_file(path))


def _tensor(value_info: Any) -> TensorInfo:  # an onnx.ValueInfoProto
    import onnx

    t = value_info.type
    if not t.HasField("tensor_type"):
        return TensorInfo(value_info.name, t.WhichOneof("value") or "?", None)
    tt = t.tensor_type
    dtype = onnx.TensorProto.DataType.Name(tt.elem_type) if tt.elem_type else "UNDEFINED"
    if not tt.HasField("shape"):
        return TensorInfo(value_info.name, dtype, None)
    dims: list[Dim] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return TensorInfo(value_info.name, dtype, tuple(dims))


def image_input(graph: GraphInfo, path: Path, what: str) -> tuple[TensorInfo, Dim, Dim, Dim]:
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


# --- sidecars and options --------------------------------------------------------------------
def model_file_and_sidecar(path: str | os.PathLike[str],
                           sidecar: bool | str | os.PathLike[str] = True) -> tuple[Path, dict[str, Any]]:
    """The ONNX file at ``path`` (:class:`ModelUnavailableError` when missing or not a file) and
    its sidecar's settings: ``NAME.json`` beside it when ``sidecar`` is True and it exists, the
    file ``sidecar`` names, or none (``{}``) when ``sidecar`` is False."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ModelUnavailableError(f"model file {file} does not exist", details={"path": str(file)})
    if not file.is_file():
        raise ModelUnavailableError(f"model file {file} is not a file", details={"path": str(file)})
    if sidecar is False:
        return file, {}
    side = file.with_suffix(".json") if sidecar is True else Path(sidecar)
    if sidecar is True and not side.is_file():
        return file, {}
    return file, read_sidecar(side)


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


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """How pixels are fed: the network's channel order and ``(x - mean) / std`` per channel
    (3 values each, in the network's channel order)."""

    colour: str  # "rgb" | "bgr"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_options(cls, config: dict[str, Any]) -> Preprocessing:
        """From the ``colour``, ``mean`` and ``std`` options (one number or three each)."""
        colour = str(config["colour"]).lower()
        if colour not in {"rgb", "bgr"}:
            raise InvalidArgumentError(f"colour must be 'rgb' or 'bgr'; got {config['colour']!r}")
        mean, std = _floats3(config["mean"], "mean"), _floats3(config["std"], "std")
        if any(s == 0 for s in std):
            raise InvalidArgumentError(f"std must not be 0; got {config['std']!r}")
        return cls(colour, mean, std)

    @classmethod
    def from_card(cls, extra: dict[str, Any]) -> Preprocessing:
        """From what a registered card recorded (``card.extra``)."""
        return cls(str(extra["colour"]), _floats3(extra["mean"], "mean"), _floats3(extra["std"], "std"))

    def describe(self) -> str:
        """``"RGB, (x - 127.5) / 127.5"``: what a card's ``input`` says."""
        return f"{self.colour.upper()}, (x - {_fmt(self.mean)}) / {_fmt(self.std)}"

    def to_extra(self) -> dict[str, Any]:
        """The card's ``extra`` entries (lists, as JSON has them)."""
        return {"colour": self.colour, "mean": list(self.mean), "std": list(self.std)}

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """``(..., H, W, 3)`` RGB uint8 -> float32 ``(..., 3, H, W)`` in the network's convention."""
        x = rgb[..., ::-1] if self.colour == "bgr" else rgb
        x = (x.astype(np.float32) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(np.moveaxis(x, -1, -3), dtype=np.float32)


def _floats3(value: Any, key: str) -> tuple[float, float, float]:
    vals = [value] * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        out = [float(v) for v in vals]
    except (TypeError, ValueError):
        out = []
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise InvalidArgumentError(f"{key} must be a number or 3 numbers; got {value!r}", details={key: value})
    return out[0], out[1], out[2]


def _fmt(values: tuple[float, ...]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else "[" + ", ".join(f"{v:g}" for v in values) + "]"


def check_name(name: Any) -> str:
    """``name`` if it can name a model (no spaces, no ``@``), else :class:`InvalidArgumentError`."""
    if not isinstance(name, str) or not name.strip() or "@" in name or re.search(r"\s", name):
        raise InvalidArgumentError(
            f"a model name must be a non-empty string without spaces or '@'; got {name!r}", details={"name": name}
        )
    return name


def require_family(config: dict[str, Any], allowed: str) -> None:
    """Refuse a ``family`` option other than ``allowed``."""
    if config["family"] != allowed:
        raise InvalidArgumentError(f"family must be {allowed!r}; {config['family']!r} is not supported")


def text_option(config: dict[str, Any], key: str, default: str) -> str:
    """The option ``key`` as text, or ``default`` when it is not given."""
    value = config.get(key)
    return default if value is None else str(value)
