"""dlib's ResNet in onnxruntime: the dlib-format decoder, the conversion cache and the
fallback to dlib's own runtime. Fast and without shared data (synthetic chips only; the
real-face parity check is tests/integration/test_dlib_onnx_parity.py)."""

from __future__ import annotations

import dataclasses
import logging
import math
import struct
import warnings

import numpy as np
import pytest

from faceprint import models, settings
from faceprint.errors import InvalidArgumentError
from faceprint.models import dlib_onnx
from faceprint.models.dlib_models import RESNET_CARD, RESNET_FILE, DlibResnetEmbedder
from faceprint.models.dlib_onnx import (
    CONVERTER_VERSION,
    ConversionError,
    DlibOnnxError,
    DlibReader,
    OnnxDlibResnet,
    cached_onnx_path,
    convert_dlib_resnet,
    is_valid_conversion,
    parse_dlib_resnet,
    stamp_conversion,
)
from faceprint.models.files import resolve


# --- an independent encoder following dlib/serialize.h and dlib/float_details.h -----------------
def enc_int(v: int) -> bytes:
    """Control byte (bit 7 = negative, low nibble = byte count), then |v| little-endian."""
    mag = abs(v)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def enc_float(v: float, digits: int) -> bytes:
    """float_details: mantissa*2**exponent with ``digits`` mantissa bits (24 float, 53
    double), low zero bytes shifted off; serialized as mantissa then exponent."""
    if v == math.inf:
        mantissa, exponent = 0, 32000
    elif v == -math.inf:
        mantissa, exponent = 0, 32001
    elif math.isnan(v):
        mantissa, exponent = 0, 32002
    else:
        m, e = math.frexp(v)
        mantissa, exponent = int(m * (1 << digits)), e - digits
        for _ in range(8):
            if mantissa & 0xFF:
                break
            mantissa >>= 8
            exponent += 8
    return enc_int(mantissa) + enc_int(exponent)


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def enc_tensor(a: np.ndarray, version: int) -> bytes:
    a = np.asarray(a, dtype=np.float32).reshape(a.shape + (1,) * (4 - a.ndim))
    head = enc_int(version) + b"".join(enc_int(d) for d in a.shape)
    if version == 2:
        return head + struct.pack(f"<{a.size}f", *a.ravel())
    return head + b"".join(enc_float(float(x), 24) for x in a.ravel())


# --- decoder ----------------------------------------------------------------------------------
INTS = [0, 1, -1, 127, 128, 255, 256, -256, 65535, -70000, 150, 2**31 - 1, -(2**40), 2**63 - 1]


def test_integers_decode_as_dlib_encodes_them():
    r = DlibReader(b"".join(enc_int(v) for v in INTS))
    assert [r.read_int() for _ in INTS] == INTS
    assert r.pos == len(r.data)
    # Known bytes from dlib's own files: 150 and a 3-byte 4736.
    assert DlibReader(b"\x01\x96").read_int() == 150
    assert DlibReader(b"\x02\x80\x12").read_int() == 4736


def test_floats_decode_exactly_for_floats_and_doubles():
    rng = np.random.default_rng(0)
    values = [0.0, 1.0, -1.0, 0.5, 122.782, 1e-30, -3.4e38, *rng.normal(0, 10, 200)]
    f32 = [float(np.float32(v)) for v in values]  # float32 values: 24 mantissa bits
    f64 = [math.pi, -math.e, 1e-300, 0.04, 0.6, 2.0**-1074]
    r = DlibReader(b"".join(enc_float(v, 24) for v in f32) + b"".join(enc_float(v, 53) for v in f64))
    assert [r.read_float() for _ in f32] == f32
    assert [r.read_float() for _ in f64] == f64
    specials = DlibReader(enc_float(math.inf, 24) + enc_float(-math.inf, 24) + enc_float(math.nan, 24))
    assert specials.read_float() == math.inf and specials.read_float() == -math.inf and math.isnan(specials.read_float())


def test_strings_bools_and_tensors_of_both_versions():
    t = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7 - 1
    data = enc_str("con_4") + b"10" + enc_tensor(t, 1) + enc_tensor(t, 2) + enc_tensor(np.zeros((0, 0, 0, 0)), 2)
    r = DlibReader(data)
    assert r.read_string() == "con_4"
    assert r.read_bool() is True and r.read_bool() is False
    np.testing.assert_array_equal(r.read_tensor(), t)
    np.testing.assert_array_equal(r.read_tensor(), t)
    assert r.read_tensor().shape == (0, 0, 0, 0)
    assert r.pos == len(data)


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x0f", b"\x03\x01", b"\x30\x01"])
def test_malformed_integers_are_conversion_errors(bad):
    with pytest.raises(ConversionError):
        DlibReader(bad).read_int()


def test_the_real_file_parses_completely_into_the_expected_network():
    net = parse_dlib_resnet(resolve(RESNET_FILE).read_bytes())
    assert net.size == (150, 150)
    assert [round(m, 3) for m in net.mean_rgb] == [122.782, 117.001, 104.298]
    names = [e.details["name"] for e in net.layers if e.kind == "layer"]
    assert names.count("con_4") == 29 and names.count("affine_") == 29 and names.count("relu_") == 29
    assert names.count("add_prev_") == 14 and names[-1] == "fc_2"
    first = net.layers[0].details
    assert (first["num_filters"], first["nr"], first["stride"], first["padding"]) == (32, 7, (2, 2), (0, 0))
    # dlib's default padding: 0 for strided convolutions, size/2 otherwise.
    for e in net.layers:
        if e.kind == "layer" and e.details["name"] == "con_4":
            d = e.details
            assert d["padding"] == ((0, 0) if d["stride"] != (1, 1) else (d["nr"] // 2, d["nc"] // 2))


def test_truncated_or_foreign_files_are_conversion_errors(tmp_path):
    data = resolve(RESNET_FILE).read_bytes()
    with pytest.raises(ConversionError):
        parse_dlib_resnet(data[: len(data) // 2])
    with pytest.raises(ConversionError):
        parse_dlib_resnet(data + b"\x00")
    other = resolve(models.get_card("mmod").files[0]).read_bytes()  # a different dlib net
    with pytest.raises(ConversionError):
        parse_dlib_resnet(other)
    garbage = tmp_path / "x.dat"
    garbage.write_bytes(b"not a dlib file at all")
    with pytest.raises(ConversionError):
        convert_dlib_resnet(garbage)
    with pytest.raises(ConversionError):
        convert_dlib_resnet(tmp_path / "missing.dat")


# --- cache ------------------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEPRINT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_file_is_keyed_by_source_hash_and_converter_version(cache, monkeypatch):
    path = cached_onnx_path(RESNET_FILE)
    assert path.parent == cache and path.is_file()
    assert RESNET_FILE.sha256[:16] in path.name and f"conv{CONVERTER_VERSION}" in path.name
    other = dataclasses.replace(RESNET_FILE, sha256="0" * 64)
    assert dlib_onnx.cache_file_name(other) != path.name
    # A second call reuses the file without converting again.
    monkeypatch.setattr(dlib_onnx, "convert_dlib_resnet", _boom)
    assert cached_onnx_path(RESNET_FILE) == path
    assert not list(cache.glob("*.tmp"))


def test_conversion_and_cache_hits_are_logged(cache, caplog):
    with caplog.at_level(logging.DEBUG, logger="faceprint.models.dlib_onnx"):
        cached_onnx_path(RESNET_FILE)
        cached_onnx_path(RESNET_FILE)
    messages = [r.getMessage() for r in caplog.records]
    assert any("cache miss" in m for m in messages) and any("converted" in m for m in messages)
    assert any("cache hit" in m for m in messages)


def _boom(*_a, **_k):
    raise ConversionError("conversion disabled by the test")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_source"])
def test_corrupt_or_partial_cache_file_is_rebuilt(cache, damage):
    path = cached_onnx_path(RESNET_FILE)
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) - 1000])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid model stamped for another source file
        model = convert_dlib_resnet(resolve(RESNET_FILE))
        path.write_bytes(stamp_conversion(model, "f" * 64))
    assert not is_valid_conversion(path.read_bytes(), RESNET_FILE.sha256)
    assert cached_onnx_path(RESNET_FILE) == path
    assert is_valid_conversion(path.read_bytes(), RESNET_FILE.sha256)


# --- runtime ----------------------------------------------------------------------------------
def _chips(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth synthetic 150x150 RGB images (not faces, but they exercise every layer)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:150, 0:150] / 150.0
    out = []
    for _ in range(n):
        f = rng.uniform(1, 6, size=(3, 2))
        ph = rng.uniform(0, 6.3, size=3)
        img = np.stack([np.sin(f[c, 0] * yy * 3 + f[c, 1] * xx * 3 + ph[c]) for c in range(3)], axis=-1)
        img = 127.5 + 100 * img + rng.normal(0, 8, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def onnx_net(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FACEPRINT_CACHE_DIR", str(tmp_path_factory.mktemp("onnx_cache")))
    try:
        yield OnnxDlibResnet(RESNET_FILE)
    finally:
        mp.undo()


def test_onnx_matches_dlib_on_synthetic_chips(onnx_net):
    import dlib

    chips = _chips(3)
    net = dlib.face_recognition_model_v1(str(resolve(RESNET_FILE)))
    ref = np.array([np.asarray(net.compute_face_descriptor(c)) for c in chips])
    raw = onnx_net.descriptors(chips)
    np.testing.assert_allclose(raw, ref, atol=1e-4)
    emb = onnx_net.embed_chips(chips)
    assert emb.dtype == np.float32 and emb.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    cos = (emb * (ref / np.linalg.norm(ref, axis=1, keepdims=True))).sum(axis=1)
    assert cos.min() >= 0.9999


def test_batched_equals_single_and_batches_split(onnx_net, monkeypatch):
    chips = _chips(5, seed=1)
    batch = onnx_net.embed_chips(chips)
    single = np.concatenate([onnx_net.embed_chips([c]) for c in chips])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    monkeypatch.setattr(dlib_onnx, "MAX_BATCH", 2)
    np.testing.assert_allclose(onnx_net.embed_chips(chips), batch, atol=1e-5)
    assert onnx_net.embed_chips([]).shape == (0, 128)


def test_wrong_chips_are_argument_errors_not_runtime_failures(onnx_net):
    with pytest.raises(InvalidArgumentError):
        onnx_net.embed_chips([np.zeros((112, 112, 3), np.uint8)])
    with pytest.raises(InvalidArgumentError):
        onnx_net.embed_chips([np.zeros((150, 150, 3), np.float32)])


# --- the embedder: default, forced and fallback runtimes ------------------------------------
@pytest.fixture
def fresh_warning(monkeypatch, cache):
    monkeypatch.delenv("FACEPRINT_DLIB_RUNTIME", raising=False)
    DlibResnetEmbedder.reset_fallback_warning()
    yield
    DlibResnetEmbedder.reset_fallback_warning()


def test_embedder_uses_onnxruntime_by_default(fresh_warning):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = DlibResnetEmbedder(RESNET_CARD)
    assert emb.runtime == "onnxruntime" and emb.fallback_reason is None
    assert emb.card is RESNET_CARD and RESNET_CARD.id == models.get_card("dlib-resnet34").id


def test_failed_conversion_falls_back_to_dlib_with_one_warning(fresh_warning, monkeypatch):
    monkeypatch.setattr(dlib_onnx, "convert_dlib_resnet", _boom)
    with pytest.warns(RuntimeWarning, match="onnxruntime route failed.*conversion disabled") as rec:
        first = DlibResnetEmbedder(RESNET_CARD)
    assert len(rec) == 1
    assert first.runtime == "dlib" and "conversion disabled" in first.fallback_reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second fallback in this process is silent
        second = DlibResnetEmbedder(RESNET_CARD)
    assert second.runtime == "dlib"
    chips = _chips(2)
    out = second.embed_chips(chips)
    assert out.shape == (2, 128) and out.dtype == np.float32


def test_missing_onnxruntime_falls_back(fresh_warning, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ort(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.warns(RuntimeWarning, match="onnxruntime"):
        emb = DlibResnetEmbedder(RESNET_CARD)
    assert emb.runtime == "dlib"


def test_failure_while_running_falls_back_and_still_answers(fresh_warning, monkeypatch):
    emb = DlibResnetEmbedder(RESNET_CARD)
    assert emb.runtime == "onnxruntime"
    chips = _chips(2, seed=3)
    expected = emb.embed_chips(chips)

    def broken(_chips):
        raise DlibOnnxError("session broke")

    assert emb.onnx_net is not None
    monkeypatch.setattr(emb.onnx_net, "embed_chips", broken)
    with pytest.warns(RuntimeWarning, match="session broke"):
        got = emb.embed_chips(chips)
    assert emb.runtime == "dlib"
    assert ((got * expected).sum(axis=1) >= 0.9999).all()


def test_env_var_forces_a_runtime(fresh_warning, monkeypatch):
    monkeypatch.setenv("FACEPRINT_DLIB_RUNTIME", "dlib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DlibResnetEmbedder(RESNET_CARD).runtime == "dlib"
    monkeypatch.setenv("FACEPRINT_DLIB_RUNTIME", "onnx")
    assert DlibResnetEmbedder(RESNET_CARD).runtime == "onnxruntime"
    # Forced onnx does not fall back: the failure is raised.
    monkeypatch.setattr(dlib_onnx, "convert_dlib_resnet", _boom)
    monkeypatch.setenv("FACEPRINT_CACHE_DIR", str(settings.cache_dir() / "empty"))
    with pytest.raises(ConversionError):
        DlibResnetEmbedder(RESNET_CARD)
    monkeypatch.setenv("FACEPRINT_DLIB_RUNTIME", "tensorflow")
    with pytest.raises(InvalidArgumentError):
        DlibResnetEmbedder(RESNET_CARD)
