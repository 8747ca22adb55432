"""ONNX models from user files: tiny graphs built here with onnx.helper (nothing downloaded)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import faceprint  # noqa: E402
from faceprint import models  # noqa: E402
from faceprint.errors import (  # noqa: E402
    ALL_ERRORS,
    InvalidArgumentError,
    ModelFormatError,
    ModelIntegrityError,
    ModelUnavailableError,
)
from faceprint.models.onnx import (  # noqa: E402
    OnnxEmbedder,
    ScrfdDetector,
    anchor_centers,
    is_file_model,
    load_models_dir,
    nms,
    register_onnx_model,
)


@pytest.fixture(autouse=True)
def _forget_file_models():
    before = {c.name for c in models.list_cards()}
    yield
    for card in models.list_cards():
        if card.name not in before:
            models.unregister(card.name)


# --- graph builders ------------------------------------------------------------------------
def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="faceprint-tests")
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def embedder_onnx(
    path: Path, *, dim: int = 16, batch: int | str = "N", weight=None, bias=None, in_type=TensorProto.FLOAT,
    in_shape=None, declare_output: bool = True, seed: int = 0,
) -> Path:
    """data [N,3,112,112] -> GlobalAveragePool -> Flatten -> Gemm -> fc1 [N, dim]."""
    rng = np.random.default_rng(seed)
    w = np.asarray(weight if weight is not None else rng.normal(size=(3, dim)), np.float32)
    b = np.asarray(bias if bias is not None else rng.normal(size=dim), np.float32)
    dim = w.shape[1]
    nodes = [
        helper.make_node("GlobalAveragePool", ["data"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["fc1"]),
    ]
    x = helper.make_tensor_value_info("data", in_type, in_shape or [batch, 3, 112, 112])
    y = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [batch, dim] if declare_output else None)
    graph = helper.make_graph(
        nodes, "arcface_like", [x], [y], initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    )
    return _save(graph, path)


def revealing_embedder(path: Path, **kw) -> Path:
    """Output [mean c0, mean c1, mean c2, 1]: divided by its last entry, the embedding is the
    per-channel mean of the tensor the network was fed."""
    return embedder_onnx(path, weight=np.eye(3, 4), bias=[0, 0, 0, 1], **kw)


# The SCRFD-like detector: fixed outputs for a 64x64 input (strides 8/16/32, 2 anchors).
IN = 64
FACE_A = dict(stride=16, y=1, x=2, anchor=0, score=0.9, dist=[1, 0.5, 1, 1.5],
              kps=[-0.5, 0.25, 0.5, 0.25, 0, 0.75, -0.375, 1.25, 0.375, 1.25])
FACE_A_DUP = dict(stride=16, y=1, x=2, anchor=1, score=0.8, dist=[1, 0.5, 1.125, 1.5], kps=FACE_A["kps"])
FACE_B = dict(stride=8, y=4, x=1, anchor=1, score=0.7, dist=[0.75] * 4,
              kps=[-0.25, -0.25, 0.25, -0.25, 0, 0, -0.25, 0.4, 0.25, 0.4])
WEAK = dict(stride=32, y=0, x=0, anchor=0, score=0.4, dist=[0.5] * 4, kps=[0] * 10)
# In network pixels: A's centre is (32, 16), B's (8, 32).
BOX_A = [16, 8, 48, 40]
KPS_A = [[24, 20], [40, 20], [32, 28], [26, 36], [38, 36]]
BOX_B = [2, 26, 14, 38]


def scrfd_outputs(size: int = IN) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    outs = {}
    for stride in (8, 16, 32):
        k = (size // stride) ** 2 * 2
        outs[stride] = (np.full((k, 1), 0.01, np.float32), np.ones((k, 4), np.float32), np.zeros((k, 10), np.float32))
    for a in (FACE_A, FACE_A_DUP, FACE_B, WEAK):
        row = (a["y"] * (size // a["stride"]) + a["x"]) * 2 + a["anchor"]
        s, d, p = outs[a["stride"]]
        s[row, 0], d[row], p[row] = a["score"], a["dist"], a["kps"]
    return outs


def scrfd_onnx(
    path: Path, *, batched: bool = False, in_shape=None, order=("score", "box", "kps"), n_outputs: int | None = None,
    in_type=TensorProto.FLOAT,
) -> Path:
    outs = scrfd_outputs()
    tensors = []
    for group in order:
        for stride in (8, 16, 32):
            arr = outs[stride][("score", "box", "kps").index(group)]
            tensors.append(arr[None] if batched else arr)
    if n_outputs is not None:
        tensors = (tensors * 2)[:n_outputs]
    nodes, infos = [], []
    for i, arr in enumerate(tensors):
        name = f"out{i}"
        # Each output = constant + 0 * mean(input), so the graph really uses its input.
        nodes += [
            helper.make_node("Constant", [], [f"c{i}"], value=numpy_helper.from_array(arr, f"c{i}")),
            helper.make_node("Add", [f"c{i}", "zero"], [name]),
        ]
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(arr.shape)))
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "z"], ["zero"]),
        *nodes,
    ]
    x = helper.make_tensor_value_info("input.1", in_type, in_shape or [1, 3, IN, IN])
    zero = numpy_helper.from_array(np.float32(0), "z")
    graph = helper.make_graph(nodes, "scrfd_like", [x], infos, initializer=[zero])
    return _save(graph, path)


def _chips(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(n)]


def random_image(w: int = 128, h: int = 96) -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --- embedders -----------------------------------------------------------------------------
def test_embedder_card_pins_the_file_and_reads_the_dimension(tmp_path):
    path = embedder_onnx(tmp_path / "arc.onnx", dim=7)
    card = register_onnx_model(path, kind="embedder")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert card.name == "onnx:arc" and card.version == sha[:12] and card.id == f"onnx:arc@{sha[:12]}"
    assert card.kind == "embedder" and card.embedding_dim == 7 and card.calibration is None
    assert card.extra["sha256"] == sha and card.extra["batch"] == "dynamic"
    assert models.get_card("onnx:arc") is card
    assert is_file_model(card) and not is_file_model(models.get_card("dlib-resnet34"))
    emb = models.load("onnx:arc", "embedder")
    assert isinstance(emb, OnnxEmbedder) and emb.chip is faceprint.align.ARCFACE_112_CHIP
    vecs = emb.embed_chips(_chips(3))
    assert vecs.shape == (3, 7) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert emb.embed_chips([]).shape == (0, 7)
    # Registering the same file again is a no-op; kind is told from the graph when not given.
    assert register_onnx_model(path) is card


def test_undeclared_output_dimension_is_found_by_running_the_graph(tmp_path):
    card = register_onnx_model(embedder_onnx(tmp_path / "e.onnx", dim=5, declare_output=False), kind="embedder")
    assert card.embedding_dim == 5
    assert models.load(card.name).embed_chips(_chips(2)).shape == (2, 5)


def test_default_preprocessing_is_insightface_rgb(tmp_path):
    card = register_onnx_model(revealing_embedder(tmp_path / "r.onnx"))
    emb = models.load(card.name)
    chip = np.empty((112, 112, 3), np.uint8)
    chip[:] = (200, 100, 50)
    x = emb.preprocess([chip])
    assert x.shape == (1, 3, 112, 112) and x.dtype == np.float32
    expected = (np.array([200, 100, 50]) - 127.5) / 127.5
    np.testing.assert_allclose(x[0, :, 5, 7], expected, rtol=1e-6)
    v = emb.embed_chips([chip])[0]
    np.testing.assert_allclose(v[:3] / v[3], expected, atol=1e-4)  # what the network saw (float32 means)


def test_bgr_and_per_channel_mean_std_from_options(tmp_path):
    card = register_onnx_model(revealing_embedder(tmp_path / "r.onnx"), colour="bgr", mean=[10, 20, 30], std=[2, 4, 5])
    assert card.extra["colour"] == "bgr" and "BGR" in card.input
    chip = np.empty((112, 112, 3), np.uint8)
    chip[:] = (200, 100, 50)  # RGB
    v = models.load(card.name).embed_chips([chip])[0]
    np.testing.assert_allclose(v[:3] / v[3], [(50 - 10) / 2, (100 - 20) / 4, (200 - 30) / 5], rtol=1e-4)


@pytest.mark.parametrize("batch", ["N", 1, 2])
def test_a_batch_equals_single_chips_for_dynamic_and_fixed_batch_graphs(tmp_path, batch):
    card = register_onnx_model(embedder_onnx(tmp_path / f"b{batch}.onnx", batch=batch))
    assert card.extra["batch"] == ("dynamic" if batch == "N" else batch)
    emb = models.load(card.name)
    chips = _chips(5)
    together = emb.embed_chips(chips)
    singles = np.stack([emb.embed_chips([c])[0] for c in chips])
    assert together.shape == (5, 16)
    np.testing.assert_allclose(together, singles, atol=1e-6)
    assert not np.allclose(together[0], together[1])  # the chips really differ


# --- detectors -----------------------------------------------------------------------------
def test_anchor_centres_are_row_major_with_anchors_innermost():
    c = anchor_centers(2, 3, 8, 2)
    assert c.shape == (12, 2)
    np.testing.assert_array_equal(c[:6], [[0, 0], [0, 0], [8, 0], [8, 0], [16, 0], [16, 0]])
    np.testing.assert_array_equal(c[6], [0, 8])


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    assert nms(boxes, np.array([0.8, 0.9, 0.5, 0.7]), 0.4) == [1, 2]
    assert nms(boxes, np.array([0.8, 0.9, 0.5, 0.7]), 0.95) == [1, 0, 3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4) == []


@pytest.mark.parametrize("batched", [False, True])
def test_scrfd_decoding_and_nms_give_the_designed_faces(tmp_path, batched):
    card = register_onnx_model(scrfd_onnx(tmp_path / "scrfd.onnx", batched=batched))
    assert card.kind == "detector" and card.name == "onnx:scrfd"  # 9 outputs: told from the graph
    assert card.extra["input_size"] == [IN, IN] and card.extra["landmarks"] is True
    det = models.load(card.name, "detector")
    assert isinstance(det, ScrfdDetector)
    # 128x96 is letterboxed into 64x64 as 64x48: network pixels are 2 image pixels.
    found = det.detect(random_image(128, 96))
    assert [round(d.score, 4) for d in found] == [0.9, 0.7]  # the duplicate and the weak one are gone
    a, b = found
    np.testing.assert_allclose(a.box.to_list(), np.array(BOX_A) * 2, atol=1e-4)
    np.testing.assert_allclose(b.box.to_list(), np.array(BOX_B) * 2, atol=1e-4)
    assert a.landmarks.scheme == "arcface5"
    np.testing.assert_allclose(a.landmarks.points, np.array(KPS_A) * 2, atol=1e-4)
    assert a.landmarks["nose_tip"] == (64.0, 56.0)


def test_scrfd_thresholds_from_options(tmp_path):
    path = scrfd_onnx(tmp_path / "scrfd.onnx")
    det = models.load(register_onnx_model(path, score_threshold=0.3, nms_threshold=0.99).name)
    scores = sorted(round(d.score, 4) for d in det.detect(random_image(64, 64)))
    assert scores == [0.4, 0.7, 0.8, 0.9]
    found = {round(d.score, 1): d for d in det.detect(random_image(64, 64))}
    np.testing.assert_allclose(found[0.4].box.to_list(), [-16, -16, 16, 16])  # centre (0, 0), 0.5 * 32


def test_scrfd_with_dynamic_input_uses_input_size(tmp_path):
    path = scrfd_onnx(tmp_path / "dyn.onnx", in_shape=[1, 3, "H", "W"])
    card = register_onnx_model(path, kind="detector", input_size=[IN, IN])
    assert models.load(card.name).detect(random_image(64, 64))[0].box.to_list() == BOX_A
    # At the default 640x640 the fixed outputs have the wrong number of rows: a typed error.
    other = register_onnx_model(path, kind="detector", name="onnx:dyn640", sidecar=False)
    assert other.extra["input_size"] == [640, 640]
    with pytest.raises(ModelFormatError) as info:
        models.load(other.name).detect(random_image(64, 64))
    assert info.value.code == "invalid_model" and "rows" in info.value.message


def test_analyzer_end_to_end_with_file_detector_and_embedder(tmp_path):
    det = register_onnx_model(scrfd_onnx(tmp_path / "det.onnx"), kind="detector")
    emb = register_onnx_model(embedder_onnx(tmp_path / "emb.onnx", dim=16), kind="embedder")
    analyzer = faceprint.Analyzer(detector=det.name, embedder=emb.name)
    image = random_image(128, 96)
    faces = analyzer.embed(image)
    assert len(faces) == 2
    largest = faces[0]
    assert largest.face.detector == det.name and largest.model == emb.id
    assert largest.face.landmarks.scheme == "arcface5" and largest.face.pose is not None
    assert largest.face.box.to_list() == [32.0, 16.0, 96.0, 80.0]
    assert largest.embedding.shape == (16,) and largest.embedding.dtype == np.float32
    assert np.linalg.norm(largest.embedding) == pytest.approx(1.0, abs=1e-5)
    batched = list(analyzer.embed_many([image, image]))
    np.testing.assert_allclose(batched[1].faces[0].embedding, largest.embedding, atol=1e-6)
    # No calibration: a FAR cannot be turned into a threshold, an explicit one works.
    with pytest.raises(InvalidArgumentError) as info:
        analyzer.verify(image, image)
    assert info.value.code == "invalid_argument" and "no calibrated thresholds" in info.value.message
    result = analyzer.verify(image, image, threshold=0.5)
    assert result.match and result.similarity == pytest.approx(1.0) and result.far is None


# --- sidecars and folders ------------------------------------------------------------------
def test_models_dir_with_sidecars(tmp_path, monkeypatch):
    embedder_onnx(tmp_path / "arc.onnx", dim=8)
    (tmp_path / "arc.json").write_text(json.dumps({
        "kind": "embedder", "name": "my-arcface", "version": "w600k", "colour": "bgr", "licence": "MIT (test)",
        "calibration": {"dataset": "toy", "thresholds": {"1e-2": 0.2, "1e-3": 0.3}, "frr": {"1e-3": 0.05}},
    }))
    scrfd_onnx(tmp_path / "det.onnx")
    (tmp_path / "det.json").write_text(json.dumps({"score_threshold": 0.75}))
    (tmp_path / "notes.txt").write_text("ignored")
    cards = load_models_dir(tmp_path)
    assert [c.name for c in cards] == ["my-arcface", "onnx:det"]
    arc, det = cards
    assert arc.id == "my-arcface@w600k" and arc.extra["colour"] == "bgr" and arc.licence == "MIT (test)"
    assert arc.calibration.dataset == "toy" and arc.threshold_for(1e-3) == 0.3
    assert arc.to_dict()["calibration"]["thresholds"] == {"1e-2": 0.2, "1e-3": 0.3}
    assert det.extra["score_threshold"] == 0.75
    assert [round(d.score, 1) for d in models.load("onnx:det").detect(random_image(64, 64))] == [0.9]
    # Again (e.g. the env var and --model-file name the same file): the same cards.
    monkeypatch.setenv("FACEPRINT_MODELS_DIR", str(tmp_path))
    assert load_models_dir() == cards
    monkeypatch.delenv("FACEPRINT_MODELS_DIR")
    assert load_models_dir() == []
    with pytest.raises(ModelUnavailableError):
        load_models_dir(tmp_path / "nowhere")


def test_sidecar_and_option_errors(tmp_path):
    path = embedder_onnx(tmp_path / "arc.onnx")
    (tmp_path / "arc.json").write_text("{not json")
    with pytest.raises(ModelFormatError) as info:
        register_onnx_model(path)
    assert "arc.json" in info.value.message
    assert register_onnx_model(path, sidecar=False).embedding_dim == 16
    (tmp_path / "arc.json").write_text(json.dumps({"kind": "detector"}))
    with pytest.raises(InvalidArgumentError, match="contradicts"):
        register_onnx_model(path, kind="embedder")
    for bad in ({"colour": "rgba"}, {"std": 0}, {"mean": [1, 2]}, {"score_threshold": 0.5},
                {"calibration": {"thresholds": {"2": 0.5}}}, {"calibration": {"thresholds": {}}}):
        with pytest.raises(InvalidArgumentError):
            register_onnx_model(path, kind="embedder", name="onnx:x", sidecar=False, **bad)
    with pytest.raises(InvalidArgumentError, match="name"):
        register_onnx_model(path, name="a@b", sidecar=False)


def test_name_clashes_are_refused_unless_replacing_a_file_model(tmp_path):
    first = register_onnx_model(embedder_onnx(tmp_path / "a.onnx", seed=1), name="onnx:emb")
    second = embedder_onnx(tmp_path / "b.onnx", seed=2)
    with pytest.raises(InvalidArgumentError, match="already taken"):
        register_onnx_model(second, name="onnx:emb")
    replaced = register_onnx_model(second, name="onnx:emb", replace=True)
    assert replaced.version != first.version and models.get_card("onnx:emb") is replaced
    for builtin in ("hog", "dlib"):  # a built-in name or alias is never replaced
        with pytest.raises(InvalidArgumentError):
            register_onnx_model(second, name=builtin, replace=True)
    assert models.get_card("hog").name == "hog"


def test_a_file_changed_after_registration_is_refused_at_load(tmp_path):
    path = embedder_onnx(tmp_path / "e.onnx", seed=1)
    card = register_onnx_model(path)
    embedder_onnx(path, seed=2)
    with pytest.raises(ModelIntegrityError):
        models.load(card.name)


# --- error paths ---------------------------------------------------------------------------
def test_invalid_model_is_a_registered_error_code():
    assert ModelFormatError in ALL_ERRORS and ModelFormatError("x").code == "invalid_model"


def test_missing_file(tmp_path):
    with pytest.raises(ModelUnavailableError) as info:
        register_onnx_model(tmp_path / "absent.onnx", kind="embedder")
    assert info.value.code == "model_unavailable" and "absent.onnx" in info.value.message


@pytest.mark.parametrize("content", [b"this is a text file, not a model\n", b"", b"\x08\x07"])
def test_a_file_that_is_not_onnx(tmp_path, content):
    path = tmp_path / "fake.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError) as info:
        register_onnx_model(path, kind="embedder")
    assert info.value.code == "invalid_model" and "not an ONNX model" in info.value.message


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        (["N", 3, 64, 64], "112x112"),
        (["N", 112, 112, 3], "NHWC"),
        (["N", 1, 112, 112], "3 colour channels"),
        ([3, 112, 112], "4-D"),
    ],
)
def test_embedder_with_the_wrong_input_shape(tmp_path, shape, words):
    path = embedder_onnx(tmp_path / "bad.onnx", in_shape=shape)
    with pytest.raises(ModelFormatError) as info:
        register_onnx_model(path, kind="embedder")
    assert info.value.code == "invalid_model" and words in info.value.message


@pytest.mark.parametrize(("dtype", "name"), [(TensorProto.INT8, "INT8"), (TensorProto.DOUBLE, "DOUBLE")])
def test_embedder_with_the_wrong_input_dtype(tmp_path, dtype, name):
    path = embedder_onnx(tmp_path / "bad.onnx", in_type=dtype)
    with pytest.raises(ModelFormatError) as info:
        register_onnx_model(path, kind="embedder")
    assert info.value.code == "invalid_model" and "float32" in info.value.message and name in info.value.message


def test_scrfd_with_the_wrong_outputs(tmp_path):
    for n in (7, 1):
        with pytest.raises(ModelFormatError) as info:
            register_onnx_model(scrfd_onnx(tmp_path / f"n{n}.onnx", n_outputs=n), kind="detector")
        assert info.value.code == "invalid_model" and f"has {n}" in info.value.message
    with pytest.raises(ModelFormatError) as info:  # boxes first: output 0 is [K, 4], not a score
        register_onnx_model(scrfd_onnx(tmp_path / "order.onnx", order=("box", "score", "kps")))
    assert "score output of stride 8" in info.value.message
    with pytest.raises(ModelFormatError) as info:  # neither 1 output nor an SCRFD count
        register_onnx_model(scrfd_onnx(tmp_path / "n7.onnx", n_outputs=7))
    assert "kind=" in info.value.message
    with pytest.raises(ModelFormatError, match="float32"):
        register_onnx_model(scrfd_onnx(tmp_path / "f64.onnx", in_type=TensorProto.DOUBLE))
    with pytest.raises(ModelFormatError, match="multiple of the largest stride"):
        register_onnx_model(scrfd_onnx(tmp_path / "dyn.onnx", in_shape=[1, 3, "H", "W"]), input_size=[100, 100])


# --- CLI -------------------------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("faceprint")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]
    full_env = {k: v for k, v in os.environ.items() if k != "FACEPRINT_MODELS_DIR"}
    full_env.update(env or {})
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, env=full_env)


def test_cli_with_model_files(tmp_path):
    import cv2

    det = scrfd_onnx(tmp_path / "det.onnx")
    emb = embedder_onnx(tmp_path / "emb.onnx", dim=16)
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), random_image(128, 96))
    proc = _cli("embed", str(image), "--detector-file", str(det), "--model-file", str(emb), "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    sha = hashlib.sha256(emb.read_bytes()).hexdigest()[:12]
    assert doc["model"] == f"onnx:emb@{sha}"
    faces = doc["results"][0]["faces"]
    assert len(faces) == 2 and len(faces[0]["embedding"]) == 16 and faces[0]["landmark_scheme"] == "arcface5"

    proc = _cli("verify", str(image), str(image), "--detector", "onnx:det", "--model", "onnx:emb", "--json",
                env={"FACEPRINT_MODELS_DIR": str(tmp_path)})
    assert proc.returncode == 2  # a usage error
    assert json.loads(proc.stdout)["error"]["code"] == "invalid_argument" and "--threshold" in proc.stdout
    proc = _cli("verify", str(image), str(image), "--models-dir", str(tmp_path), "--detector", "onnx:det",
                "--model", "onnx:emb", "--threshold", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["match"] is True

    bad = tmp_path / "notes.onnx"
    bad.write_text("not a model")
    proc = _cli("models", "--json", "--models-dir", str(tmp_path))
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["code"] == "invalid_model"
    bad.unlink()
    proc = _cli("models", env={"FACEPRINT_MODELS_DIR": str(tmp_path), "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "onnx:det" in proc.stdout and "onnx:emb" in proc.stdout and "verify needs --threshold" in proc.stdout
