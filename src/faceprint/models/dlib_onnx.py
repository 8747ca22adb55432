"""dlib's face-recognition ResNet, converted once to ONNX and run with onnxruntime.

dlib-bin has no BLAS, so its ResNet is slow on a CPU (measured: bench/README.md, section
'dlib runtimes'). This module reads the very same weights
(``dlib_face_recognition_resnet_model_v1.dat``) straight from dlib's binary serialization,
rebuilds the network as an ONNX graph and runs that with onnxruntime. Nothing
is downloaded: the ONNX file is derived from the installed ``.dat`` file and cached in the
user cache directory (:func:`faceprint.settings.cache_dir`), keyed by the ``.dat`` file's SHA-256
and :data:`CONVERTER_VERSION`.

dlib's serialization format (dlib/serialize.h, dlib/float_details.h, dlib/dnn/*.h):

* integers: a control byte (bit 7 = negative, low 4 bits = byte count n) then the absolute
  value in n little-endian bytes; ``bool`` is the ASCII byte ``'1'`` or ``'0'``; a string is
  its length (an integer) then its bytes.
* ``float``/``double``: a ``float_details``: the integer mantissa then the integer exponent,
  value = mantissa * 2**exponent (exponents 32000/32001/32002 mean +inf/-inf/nan).
* tensors: an integer version, then num_samples, k, nr, nc; version 1 stores each value as a
  float above, version 2 as raw little-endian IEEE float32.
* a network: ``add_loss_layer`` writes its version, the loss details, then its subnetwork;
  ``add_layer`` writes its version, then *its subnetwork*, then its layer details and some
  training state; ``add_tag_layer``/``add_skip_layer`` write only a version and their
  subnetwork. So all the version headers come first (from the output end inwards), then the
  input layer, then each layer's details from the input end outwards. Tags and skips carry
  no id in the file: the topology comes from the network's C++ type, ``anet_type`` in
  dlib's examples/dnn_face_recognition_ex.cpp, which :func:`_anet_layout` mirrors.

The layer details carry their own hyper-parameters (kernel sizes, strides, paddings), which
the converter uses rather than assuming them.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint import settings
from faceprint.errors import (
    InvalidArgumentError,
    ModelConversionError,
    ModelIntegrityError,
    ModelRuntimeError,
    ModelUnavailableError,
)
from faceprint.models.card import WeightFile
from faceprint.models.files import resolve
from faceprint.models.onnx.common import OrtSession, import_onnxruntime
from faceprint.settings import cache_dir

if TYPE_CHECKING:  # pragma: no cover
    import onnx

logger = logging.getLogger(__name__)

#: Bump when the generated graph changes; cached files of other versions are ignored.
CONVERTER_VERSION = 1
CHIP_SIZE = 150
EMBEDDING_DIM = 128
INPUT_NAME = "chips"  # (n, 150, 150, 3) uint8 RGB
OUTPUT_NAME = "descriptor"  # (n, 128) float32, dlib's raw (unnormalised) descriptor
#: Chips per onnxruntime call; bounds the activations' memory (~25 MB a chip at peak).
MAX_BATCH = 64
_OPSET = 17
_IR_VERSION = 8


# The error types live in the one taxonomy; these names are what this module's callers use.
DlibOnnxError = ModelRuntimeError
ConversionError = ModelConversionError


# --- dlib's serialization --------------------------------------------------------------------
_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002


class DlibReader:
    """A cursor over dlib-serialized bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _fail(self, what: str) -> ConversionError:
        return ConversionError(f"malformed dlib file: {what} at byte {self.pos}")

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise self._fail(f"unexpected end of data reading {n} bytes")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def read_int(self, *, signed: bool = True) -> int:
        if self.pos >= len(self.data):
            raise self._fail("unexpected end of data reading an integer")
        control = self.data[self.pos]
        size = control & 0x0F
        if size == 0 or size > 8 or (control & 0x70):
            raise self._fail(f"bad integer control byte 0x{control:02x}")
        if control & 0x80 and not signed:
            raise self._fail("negative value for an unsigned integer")
        self.pos += 1
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_uint(self) -> int:
        return self.read_int(signed=False)

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        return decode_float(mantissa, exponent)

    def read_bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise self._fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def read_string(self) -> str:
        n = self.read_uint()
        return self._take(n).decode("latin-1")

    def read_tensor(self) -> np.ndarray:
        version = self.read_int()
        dims = [self.read_int() for _ in range(4)]
        if any(d < 0 for d in dims):
            raise self._fail(f"negative tensor dimension {dims}")
        size = math.prod(dims)
        if version == 2:
            raw = self._take(4 * size)
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif version == 1:
            values = np.fromiter((self.read_float() for _ in range(size)), dtype=np.float64, count=size)
            values = values.astype(np.float32)
        else:
            raise self._fail(f"unknown tensor version {version}")
        return values.reshape(dims)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise self._fail(f"unknown alias_tensor version {version}")
        return tuple(self.read_int() for _ in range(4))  # type: ignore[return-value]

    def expect_version(self, allowed: tuple[int, ...], what: str) -> int:
        version = self.read_int()
        if version not in allowed:
            raise self._fail(f"{what} has version {version}, expected one of {allowed}")
        return version


def decode_float(mantissa: int, exponent: int) -> float:
    """The value of a dlib ``float_details`` (mantissa * 2**exponent, or a special value)."""
    if exponent < _FLOAT_INF:
        return math.ldexp(float(mantissa), exponent)
    if exponent == _FLOAT_INF:
        return math.inf
    if exponent == _FLOAT_NINF:
        return -math.inf
    return math.nan


# --- the network's topology (anet_type) --------------------------------------------------------
@dataclass
class _Entry:
    """One node of the network, in order from the input to the output."""

    kind: str  # "layer", "tag", "skip"
    family: str = ""  # layers: the expected details name prefix ("con_", "affine_", ...)
    tag: int = 0  # tags/skips: the tag id; add_prev layers: the tag they add
    details: dict[str, Any] = field(default_factory=dict)


def _anet_layout() -> list[_Entry]:
    """``anet_type`` from dlib's dnn_face_recognition_ex.cpp, input first (input excluded)::

        residual<block,N,BN,SUB>      = add_prev1<block<N,BN,1,tag1<SUB>>>
        residual_down<block,N,BN,SUB> = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUB>>>>>>
        block<N,BN,stride,SUB>        = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUB>>>>>
        ares = relu<residual<block,N,affine,SUB>>, ares_down = relu<residual_down<...>>
        level0 = ares_down<256>; level1 = ares<256,ares<256,ares_down<256>>>
        level2 = ares<128,ares<128,ares_down<128>>>; level3 = ares<64> x3 on ares_down<64>
        level4 = ares<32> x3
        anet = loss_metric<fc_no_bias<128,avg_pool_everything<level0<level1<level2<level3<
               level4<max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>>
    """

    def layer(family: str, tag: int = 0) -> _Entry:
        return _Entry("layer", family, tag)

    def block() -> list[_Entry]:
        return [layer("con_"), layer("affine_"), layer("relu_"), layer("con_"), layer("affine_")]

    def ares() -> list[_Entry]:
        return [_Entry("tag", tag=1), *block(), layer("add_prev_", 1), layer("relu_")]

    def ares_down() -> list[_Entry]:
        return [
            _Entry("tag", tag=1),
            *block(),
            _Entry("tag", tag=2),
            _Entry("skip", tag=1),
            layer("avg_pool_"),
            layer("add_prev_", 2),
            layer("relu_"),
        ]

    out = [layer("con_"), layer("affine_"), layer("relu_"), layer("max_pool_")]
    out += [e for _ in range(3) for e in ares()]  # level4
    for n_ares in (3, 2, 2, 0):  # level3, level2, level1, level0
        out += ares_down() + [e for _ in range(n_ares) for e in ares()]
    out += [layer("avg_pool_"), layer("fc_")]
    return out


def _read_layer_details(r: DlibReader, entry: _Entry) -> dict[str, Any]:
    name = r.read_string()
    if not name.startswith(entry.family):
        raise ConversionError(
            f"the dlib file does not have the expected network layout: found layer {name!r} "
            f"where {entry.family!r} was expected (byte {r.pos})"
        )
    d: dict[str, Any] = {"name": name}
    if name == "con_4":
        params = r.read_tensor()
        d["num_filters"], d["nr"], d["nc"] = r.read_int(), r.read_int(), r.read_int()
        d["stride"] = (r.read_int(), r.read_int())
        d["padding"] = (r.read_int(), r.read_int())
        filters = r.read_alias_tensor()
        biases = r.read_alias_tensor()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.read_float()
        flat = params.reshape(-1)
        n_w = math.prod(filters)
        if flat.size != n_w + math.prod(biases) or filters[0] != d["num_filters"]:
            raise ConversionError(f"inconsistent con_ parameters (byte {r.pos})")
        d["weight"] = flat[:n_w].reshape(filters)
        d["bias"] = flat[n_w:].reshape(-1)
    elif name == "affine_":
        params = r.read_tensor().reshape(-1)
        gamma = r.read_alias_tensor()
        beta = r.read_alias_tensor()
        d["mode"] = r.read_int()  # dlib's layer_mode: 0 = CONV_MODE (per channel), 1 = FC_MODE
        n_g = math.prod(gamma)
        if params.size != n_g + math.prod(beta):
            raise ConversionError(f"inconsistent affine_ parameters (byte {r.pos})")
        d["gamma"], d["beta"] = params[:n_g], params[n_g:]
    elif name in ("relu_", "add_prev_"):
        pass
    elif name in ("max_pool_2", "avg_pool_2"):
        d["nr"], d["nc"] = r.read_int(), r.read_int()
        d["stride"] = (r.read_int(), r.read_int())
        d["padding"] = (r.read_int(), r.read_int())
    elif name == "fc_2":
        d["num_outputs"], d["num_inputs"] = r.read_int(), r.read_int()
        params = r.read_tensor().reshape(-1)
        weights = r.read_alias_tensor()
        biases = r.read_alias_tensor()
        d["bias_mode"] = r.read_int()  # dlib's fc_bias_mode: 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
        for _ in range(4):
            r.read_float()
        n_w = math.prod(weights)
        d["weight"] = params[:n_w].reshape(d["num_inputs"], d["num_outputs"])
        if params.size != n_w + (math.prod(biases) if d["bias_mode"] == 0 else 0):
            raise ConversionError(f"inconsistent fc_ parameters (byte {r.pos})")
        d["bias"] = params[n_w:] if d["bias_mode"] == 0 else None
    else:
        raise ConversionError(f"unsupported dlib layer version {name!r} (byte {r.pos})")
    return d


@dataclass
class ParsedNet:
    mean_rgb: tuple[float, float, float]
    size: tuple[int, int]
    layers: list[_Entry]


def parse_dlib_resnet(data: bytes) -> ParsedNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat``."""
    r = DlibReader(data)
    r.expect_version((1,), "add_loss_layer")
    loss = r.read_string()
    if loss == "loss_metric_2":
        r.read_float(), r.read_float()  # margin, distance threshold: training only
    elif loss != "loss_metric_":
        raise ConversionError(f"expected dlib's metric-learning network, found loss {loss!r}")

    layout = _anet_layout()
    if layout[0].kind != "layer":
        raise ConversionError("internal: the first layer must sit on the input layer")
    # Version headers, from the output end inwards.
    for i in range(len(layout) - 1, -1, -1):
        e = layout[i]
        if e.kind == "layer":
            allowed = (2, 3) if i == 0 else (1, 2)
            e.details["_version"] = r.expect_version(allowed, f"add_layer #{i}")
        else:
            r.expect_version((1,), f"add_{e.kind}_layer #{i}")

    name = r.read_string()
    if name != "input_rgb_image_sized":
        raise ConversionError(f"expected an input_rgb_image_sized input layer, found {name!r}")
    mean = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_uint(), r.read_uint())

    for i, e in enumerate(layout):
        if e.kind != "layer":
            continue
        version = e.details["_version"]
        e.details.update(_read_layer_details(r, e))
        r.read_bool(), r.read_bool(), r.read_bool()  # setup called, gradient stale, output getters disabled
        r.read_tensor(), r.read_tensor()  # x_grad, cached_output
        if i == 0:
            r.read_tensor()  # grad_final
            if version >= 3:
                r.read_uint()  # sample expansion factor
        elif version >= 2:
            r.read_tensor()  # params_grad
    if r.pos != len(data):
        raise ConversionError(f"{len(data) - r.pos} unexpected trailing bytes in the dlib file")
    return ParsedNet(mean, size, layout)


# --- ONNX graph ---------------------------------------------------------------------------------
def _out_size(n: int, window: int, stride: int, pad: int) -> int:
    return 1 + (n + 2 * pad - window) // stride


def build_onnx(net: ParsedNet) -> onnx.ModelProto:
    """An ONNX graph computing exactly what dlib's ``anet_type`` computes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr: np.ndarray, prefix: str) -> str:
        name = fresh(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = fresh(prefix)
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def pad_to(t: str, s: tuple[int, int, int], target: tuple[int, int, int]) -> str:
        """``t`` (of shape ``s``) zero-padded at the end of each dimension to ``target``."""
        if s == target:
            return t
        pads = [0, 0, 0, 0, 0] + [o - c for o, c in zip(target, s)]
        return node("Pad", [t, const(np.array(pads, dtype=np.int64), "pads")], "pad", mode="constant")

    nr, nc = net.size
    x = node("Cast", [INPUT_NAME], "cast", to=TensorProto.FLOAT)
    x = node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    mean = np.asarray(net.mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", [x, const(mean, "mean_rgb")], "centre")
    # dlib: (pixel - mean) / 256.0; 1/256 is exact in float32.
    x = node("Mul", [x, const(np.array(1.0 / 256.0, dtype=np.float32), "inv256")], "scale")
    shape = (3, nr, nc)  # (channels, rows, cols) of x
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}

    layers = net.layers
    i = 0
    while i < len(layers):
        e = layers[i]
        d = e.details
        if e.kind == "tag":
            tags[e.tag] = (x, shape)
        elif e.kind == "skip":
            if e.tag not in tags:
                raise ConversionError(f"skip{e.tag} has no tag{e.tag} below it")
            x, shape = tags[e.tag]
        elif d["name"] == "con_4":
            w = d["weight"].astype(np.float64)
            b = d["bias"].astype(np.float64)
            if w.shape[1] != shape[0]:
                raise ConversionError(f"con_ expects {w.shape[1]} channels, gets {shape[0]}")
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if (
                nxt is not None
                and nxt.kind == "layer"
                and nxt.details.get("name") == "affine_"
                and nxt.details["mode"] == 0
            ):
                # Fold the following affine layer (a frozen batch norm) into the convolution.
                g = nxt.details["gamma"].astype(np.float64)
                beta = nxt.details["beta"].astype(np.float64)
                if g.size != w.shape[0]:
                    raise ConversionError("affine_ size does not match the convolution")
                w = w * g[:, None, None, None]
                b = b * g + beta
                i += 1
            (sy, sx), (py, px) = d["stride"], d["padding"]
            x = node(
                "Conv",
                [x, const(w.astype(np.float32), "conv_w"), const(b.astype(np.float32), "conv_b")],
                "conv",
                kernel_shape=[d["nr"], d["nc"]],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = (
                w.shape[0],
                _out_size(shape[1], d["nr"], sy, py),
                _out_size(shape[2], d["nc"], sx, px),
            )
        elif d["name"] == "affine_":
            k = shape[0]
            g, beta = d["gamma"], d["beta"]
            if d["mode"] != 0 or g.size != k:
                raise ConversionError("unsupported affine_ layer (not per-channel)")
            x = node("Mul", [x, const(g.reshape(1, k, 1, 1).astype(np.float32), "gamma")], "affine")
            x = node("Add", [x, const(beta.reshape(1, k, 1, 1).astype(np.float32), "beta")], "affine")
        elif d["name"] == "relu_":
            x = node("Relu", [x], "relu")
        elif d["name"] in ("max_pool_2", "avg_pool_2"):
            (sy, sx), (py, px) = d["stride"], d["padding"]
            wy = d["nr"] or shape[1]  # a 0 window means the whole input (avg_pool_everything)
            wx = d["nc"] or shape[2]
            if d["name"] == "avg_pool_2" and (wy, wx) == shape[1:] and py == px == 0:
                x = node("GlobalAveragePool", [x], "gap")
                shape = (shape[0], 1, 1)
            else:
                op = "MaxPool" if d["name"] == "max_pool_2" else "AveragePool"
                attrs: dict[str, Any] = dict(kernel_shape=[wy, wx], strides=[sy, sx], pads=[py, px, py, px])
                if op == "AveragePool":
                    attrs["count_include_pad"] = 0  # dlib averages over the in-image pixels
                x = node(op, [x], "pool", **attrs)
                shape = (shape[0], _out_size(shape[1], wy, sy, py), _out_size(shape[2], wx, sx, px))
        elif d["name"] == "add_prev_":
            if e.tag not in tags:
                raise ConversionError(f"add_prev{e.tag} has no tag{e.tag} below it")
            y, yshape = tags[e.tag]
            # dlib's add_prev: output has the larger size in every dimension; each input is
            # zero-extended at the end (extra channels, bottom rows, right columns).
            out_shape = (max(shape[0], yshape[0]), max(shape[1], yshape[1]), max(shape[2], yshape[2]))
            x = node("Add", [pad_to(x, shape, out_shape), pad_to(y, yshape, out_shape)], "add")
            shape = out_shape
        elif d["name"] == "fc_2":
            if d["num_inputs"] != math.prod(shape):
                raise ConversionError(f"fc_ expects {d['num_inputs']} inputs, gets {math.prod(shape)}")
            x = node("Flatten", [x], "flatten", axis=1)
            x = node("MatMul", [x, const(d["weight"].astype(np.float32), "fc_w")], "fc")
            if d["bias"] is not None:
                x = node("Add", [x, const(d["bias"].astype(np.float32), "fc_b")], "fc_bias")
            shape = (d["num_outputs"], 1, 1)
        else:  # pragma: no cover - _read_layer_details rejects unknown names
            raise ConversionError(f"unsupported layer {d['name']!r}")
        i += 1

    if shape != (EMBEDDING_DIM, 1, 1):
        raise ConversionError(f"the network ends in shape {shape}, not a {EMBEDDING_DIM}-D vector")
    nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["n", nr, nc, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n", EMBEDDING_DIM])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        producer_name="faceprint",
        producer_version=str(CONVERTER_VERSION),
        opset_imports=[helper.make_opsetid("", _OPSET)],
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    return model


def convert_dlib_resnet(dat_path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Convert dlib's ``dlib_face_recognition_resnet_model_v1.dat`` to an ONNX model.

    Input ``chips``: ``(n, 150, 150, 3)`` uint8 RGB; output ``descriptor``: ``(n, 128)``
    float32, dlib's raw descriptor. Raises :class:`ConversionError` on any failure.
    """
    try:
        data = Path(dat_path).read_bytes()
        return build_onnx(parse_dlib_resnet(data))
    except ConversionError:
        raise
    except Exception as exc:  # anything else is a bug or an unexpected file: say which
        raise ConversionError(
            f"could not convert {dat_path} to ONNX: {type(exc).__name__}: {exc}",
            details={"path": str(dat_path)},
        ) from exc


# --- cache ------------------------------------------------------------------------------------------
_META_SHA = "faceprint.source_sha256"
_META_VERSION = "faceprint.converter_version"
_META_COUNT = "faceprint.initializers"


def cache_file_name(weight: WeightFile) -> str:
    stem = Path(weight.path).stem
    return f"{stem}-{weight.sha256[:16]}-conv{CONVERTER_VERSION}.onnx"


def stamp_conversion(model: onnx.ModelProto, sha256: str) -> bytes:
    """``model`` serialized with the metadata that marks it as converted from ``sha256`` by
    this converter version (what :func:`is_valid_conversion` checks)."""
    from onnx import helper

    del model.metadata_props[:]
    helper.set_model_props(
        model,
        {
            _META_SHA: sha256,
            _META_VERSION: str(CONVERTER_VERSION),
            _META_COUNT: str(len(model.graph.initializer)),
        },
    )
    data: bytes = model.SerializeToString()
    return data


def is_valid_conversion(data: bytes, sha256: str) -> bool:
    """Whether ``data`` is a complete model converted from ``sha256`` by this converter.

    The metadata is serialized after the graph, so a truncated file loses it; the
    initializer count catches a graph that lost tensors.
    """
    import onnx

    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception:
        return False
    meta = {p.key: p.value for p in model.metadata_props}
    return (
        meta.get(_META_SHA) == sha256
        and meta.get(_META_VERSION) == str(CONVERTER_VERSION)
        and meta.get(_META_COUNT) == str(len(model.graph.initializer))
        and [o.name for o in model.graph.output] == [OUTPUT_NAME]
    )


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Conversion:
    """The ONNX form of a dlib ``.dat`` file: where it is cached and its bytes."""

    path: Path
    data: bytes
    #: Whether the cache file holds ``data`` (False when writing it failed).
    stored: bool


def load_or_convert(weight: WeightFile, *, rebuild: bool = False) -> Conversion:
    """The cached conversion of ``weight`` when it is valid, else a fresh one (cached if the
    cache can be written). ``rebuild`` converts again whatever the cache holds."""
    src = resolve(weight)  # checks the .dat file's SHA-256 against the card
    path = cache_dir() / cache_file_name(weight)
    with _cache_lock:
        if not rebuild:
            try:
                data = path.read_bytes()
            except OSError:
                data = b""
            if data and is_valid_conversion(data, weight.sha256):
                logger.debug("conversion cache hit: %s", path)
                return Conversion(path, data, True)
            logger.info("conversion cache miss (%s): converting %s", "stale or damaged" if data else "no file", src.name)
        else:
            logger.info("converting %s again (rebuild)", src.name)
        started = time.perf_counter()
        data = stamp_conversion(convert_dlib_resnet(src), weight.sha256)
        logger.info("converted %s to ONNX in %.1f s", src.name, time.perf_counter() - started)
        try:
            _write_atomic(path, data)
        except OSError as exc:
            logger.warning("could not cache the converted model at %s: %s", path, exc)
            return Conversion(path, data, False)
        logger.debug("cached the conversion at %s", path)
        return Conversion(path, data, True)


def cached_onnx_path(weight: WeightFile) -> Path:
    """The cached ONNX conversion of ``weight``, converting (and caching) it if needed.

    A missing, stale, partial or corrupt cache file is rebuilt. Raises
    :class:`ConversionError` when converting or writing the cache fails.
    """
    conv = load_or_convert(weight)
    if not conv.stored:
        raise ConversionError(f"could not write the converted model to {conv.path}", details={"path": str(conv.path)})
    return conv.path


# --- runtime ------------------------------------------------------------------------------------------
class OnnxDlibResnet:
    """dlib's ResNet face embedder, run by onnxruntime from the cached conversion of ``weight``
    (:data:`faceprint.models.dlib_models.RESNET_FILE`) on ``threads`` threads (default: the
    usable cores)."""

    runtime = "onnxruntime"

    def __init__(self, weight: WeightFile, *, threads: int | None = None) -> None:
        self.weight = weight
        self.threads = threads or settings.usable_cores()
        try:
            ort = import_onnxruntime()
        except ModelUnavailableError as exc:
            raise DlibOnnxError(str(exc)) from exc
        conv = self._convert(weight)
        try:
            self._session = self._make_session(ort, conv.data)
        except Exception as first:
            if not conv.stored:
                raise DlibOnnxError(f"onnxruntime could not load the converted model: {first}") from first
            # A cache file that parses but does not load: convert again, once.
            logger.info("onnxruntime could not load the cached %s (%s); converting again", conv.path, first)
            conv = self._convert(weight, rebuild=True)
            try:
                self._session = self._make_session(ort, conv.data)
            except Exception as exc:
                raise DlibOnnxError(f"onnxruntime could not load the converted model: {exc}") from exc
        self.path, self.cached = conv.path, conv.stored

    @staticmethod
    def _convert(weight: WeightFile, rebuild: bool = False) -> Conversion:
        try:
            return load_or_convert(weight, rebuild=rebuild)
        except (DlibOnnxError, ModelUnavailableError, ModelIntegrityError):
            raise  # a missing or altered .dat file fails dlib's runtime just the same
        except Exception as exc:
            raise ConversionError(f"converting dlib's ResNet failed: {type(exc).__name__}: {exc}") from exc

    def _make_session(self, ort: Any, data: bytes) -> OrtSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Idle workers sleep instead of spin-waiting: between embeddings the pipeline runs
        # dlib's detector and landmarks, which spinning threads would starve of CPU.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session: OrtSession = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        logger.debug("onnxruntime session for dlib's ResNet: %d intra-op threads", self.threads)
        return session

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """dlib's raw (unnormalised) 128-D descriptors, ``(n, 128)`` float32."""
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        for chip in chips:
            if getattr(chip, "shape", None) != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
                raise InvalidArgumentError(
                    f"dlib's ResNet needs {CHIP_SIZE}x{CHIP_SIZE}x3 uint8 RGB chips, got "
                    f"{getattr(chip, 'shape', type(chip).__name__)} {getattr(chip, 'dtype', '')}"
                )
        outs = []
        for start in range(0, len(chips), MAX_BATCH):
            batch = np.stack(chips[start : start + MAX_BATCH])
            try:
                (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
            except Exception as exc:
                raise DlibOnnxError(f"onnxruntime failed running dlib's ResNet: {exc}") from exc
            outs.append(np.asarray(out, dtype=np.float32))
        return np.concatenate(outs)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """``(n, 128)`` float32 L2-normalised embeddings of 150x150 uint8 RGB dlib chips."""
        vecs = self.descriptors(chips).astype(np.float64)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out: np.ndarray = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        return out


__all__ = [
    "CONVERTER_VERSION",
    "Conversion",
    "ConversionError",
    "DlibOnnxError",
    "DlibReader",
    "OnnxDlibResnet",
    "cache_dir",
    "cache_file_name",
    "cached_onnx_path",
    "convert_dlib_resnet",
    "decode_float",
    "is_valid_conversion",
    "load_or_convert",
    "parse_dlib_resnet",
    "stamp_conversion",
]
