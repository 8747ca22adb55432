"""A user-supplied passive anti-spoofing ONNX model with its sidecar JSON: loading, checks,
the face crop, the score, and the checker reporting it. The model here is a tiny graph built in
the test (mean colour -> 2 logits), not an anti-spoofing network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from faceprint.errors import InvalidArgumentError, ModelFormatError, ModelUnavailableError
from faceprint.liveness.challenge import Challenge
from faceprint.liveness.check import LivenessChecker
from faceprint.liveness.passive import PassiveModel
from faceprint.liveness.signals import FrameSignals
from faceprint.models.onnx.antispoof import FaceCrop, read_antispoof
from faceprint.types import Box, Face, Landmarks

SIZE = 32


def pad_onnx(path: Path, *, size: int | str = SIZE, outputs: int = 2) -> Path:
    """input [1,3,S,S] -> GlobalAveragePool -> Flatten -> Gemm -> logits [1, outputs]: logit 0 is
    (mean red - mean blue) / 255 * 8, so a red face reads live (class 0), a blue one spoof."""
    w = np.zeros((3, outputs), np.float32)
    w[0, 0], w[2, 0] = 8 / 255, -8 / 255
    if outputs > 1:
        w[:, 1] = -w[:, 0]
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "W", "B"], ["output"])]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, outputs])
    graph = helper.make_graph(nodes, "pad_like", [x], [y], initializer=[
        numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.zeros(outputs, np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return path


def sidecar(path: Path, **doc) -> None:
    base = {"kind": "antispoof", "family": "classifier", "name": "test-pad", "version": "1", "licence": "test",
            "crop": {"scale": 1.5}, "output": {"activation": "softmax", "live_index": 0, "classes": ["live", "spoof"]},
            "threshold": 0.5}
    base.update(doc)
    path.with_suffix(".json").write_text(json.dumps(base))


def face(box: Box) -> Face:
    return Face(box=box, score=1.0, landmarks=Landmarks(np.zeros((5, 2)), "dlib5"))


def image(colour) -> np.ndarray:
    rgb = np.zeros((200, 300, 3), np.uint8)
    rgb[50:150, 100:200] = colour
    return rgb


def test_a_model_with_its_sidecar_scores_faces(tmp_path):
    path = pad_onnx(tmp_path / "pad.onnx")
    sidecar(path)
    model = PassiveModel.load(path)
    assert model.model_id == "test-pad@1" and model.threshold == 0.5
    box = Box(120, 70, 180, 130)
    live, spoof = model.score(image((255, 0, 0)), face(box)), model.score(image((0, 0, 255)), face(box))
    assert live > 0.9 and spoof < 0.1
    assert model.info.to_dict()["output"]["classes"] == ["live", "spoof"]


def test_without_a_sidecar_the_graph_gives_the_size_and_names(tmp_path):
    info = read_antispoof(pad_onnx(tmp_path / "bare.onnx"))
    assert info.name == "onnx:bare" and info.input_size == (SIZE, SIZE) and info.threshold is None
    assert info.version == info.sha256[:12] and info.activation == "softmax"


def test_sigmoid_and_the_live_index(tmp_path):
    path = pad_onnx(tmp_path / "pad.onnx", outputs=1)
    sidecar(path, output={"activation": "sigmoid", "live_index": 0})
    model = PassiveModel.load(path)
    assert model.score(image((255, 0, 0)), face(Box(120, 70, 180, 130))) > 0.9
    sidecar(path, output={"activation": "none", "live_index": 1})
    with pytest.raises(ModelFormatError):
        PassiveModel.load(path).score(image((255, 0, 0)), face(Box(120, 70, 180, 130)))


@pytest.mark.parametrize("doc", [{"kind": "embedder"}, {"family": "arcface"}, {"crop": {"scale": 50}},
                                 {"output": {"activation": "relu"}}, {"output": {"live_index": -1}},
                                 {"input_size": [64, 64]}, {"threshold": "high"}, {"colour": "yuv"},
                                 {"surprise": 1}, {"input_name": "data"}, {"layout": "nhwc"}])
def test_bad_sidecars_are_refused(tmp_path, doc):
    path = pad_onnx(tmp_path / "pad.onnx")
    sidecar(path, **doc)
    with pytest.raises((InvalidArgumentError, ModelFormatError)):
        PassiveModel.load(path)


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(ModelUnavailableError):
        PassiveModel.load(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(ModelFormatError):
        PassiveModel.load(junk)
    dynamic = pad_onnx(tmp_path / "dyn.onnx", size="S")
    with pytest.raises(ModelFormatError):
        read_antispoof(dynamic)  # no input_size in the graph nor the sidecar
    assert read_antispoof(dynamic, input_size=[48, 48]).input_size == (48, 48)


@pytest.mark.parametrize("size", [[100_000, 100_000], [4, 4], ["48", "48"], [48.5, 48], [True, 48], "48", [48]])
def test_a_sidecar_cannot_ask_for_a_huge_or_odd_input_size(tmp_path, size):
    """A graph of any input size takes the sidecar's: it must be two whole numbers of 8 to
    1024 (a 100000x100000 input would allocate 120 GB for every frame scored)."""
    dynamic = pad_onnx(tmp_path / "dyn.onnx", size="S")
    sidecar(dynamic, input_size=size)
    with pytest.raises(InvalidArgumentError):
        PassiveModel.load(dynamic)


def test_a_graph_whose_own_input_is_huge_is_refused(tmp_path):
    with pytest.raises(ModelFormatError):
        read_antispoof(pad_onnx(tmp_path / "big.onnx", size=4096))


def map_onnx(path: Path, *, output_shape: list, nan: bool = False) -> Path:
    """input [1,3,32,32] -> an output of ``output_shape`` (its values all 0, or NaN)."""
    value = np.full(output_shape, np.nan if nan else 0.0, np.float32)
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "Z"], ["zero"]),
             helper.make_node("Add", ["C", "zero"], ["output"])]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)
    graph = helper.make_graph(nodes, "map_like", [x], [y], initializer=[
        numpy_helper.from_array(value, "C"), numpy_helper.from_array(np.zeros((), np.float32), "Z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_an_output_that_is_not_one_score_vector_is_refused(tmp_path):
    """A map ([1, 2, 8, 8]) flattened would give a meaningless 'score': refused when loaded."""
    with pytest.raises(ModelFormatError, match="per face"):
        read_antispoof(map_onnx(tmp_path / "map.onnx", output_shape=[1, 2, 8, 8]))


def test_a_score_that_is_not_a_number_is_an_error(tmp_path):
    model = PassiveModel.load(map_onnx(tmp_path / "nan.onnx", output_shape=[1, 2], nan=True))
    with pytest.raises(ModelFormatError, match="not a number"):
        model.score(image((255, 0, 0)), face(Box(120, 70, 180, 130)))


def test_the_crop_is_enlarged_about_the_box_and_kept_inside():
    crop = FaceCrop(scale=2.0)
    assert crop.region(Box(100, 100, 150, 150), 400, 400) == (75, 75, 175, 175)
    assert crop.region(Box(0, 0, 50, 50), 400, 400) == (0, 0, 100, 100)  # shifted inside
    x1, y1, x2, y2 = FaceCrop(scale=10.0).region(Box(100, 100, 150, 150), 300, 200)
    assert 0 <= x1 < x2 <= 300 and 0 <= y1 < y2 <= 200  # shrunk to fit
    assert FaceCrop(scale=1.0, square=True).region(Box(0, 0, 20, 40), 100, 100)[2] == 40


def test_the_checker_reports_the_passive_score_next_to_the_result(tmp_path, analyzer):
    path = pad_onnx(tmp_path / "pad.onnx")
    sidecar(path)
    checker = LivenessChecker(analyzer, Challenge.parse("blink"), passive=PassiveModel.load(path))
    emb = np.zeros(analyzer.embedder_card.embedding_dim or 512, np.float32)
    emb[0] = 1
    box = Box(100, 100, 300, 350)
    for i, score in enumerate([0.8, 0.6, None, 0.7]):
        checker.observe_signals(FrameSignals(faces=1, box=box, size=223, ear=0.3, yaw=0, pitch=0, embedding=emb,
                                             passive=score), i / 30)
    result = checker.finish(0.2)
    assert not result.passed and result.passive is not None
    assert result.passive.frames == 3 and result.passive.mean == pytest.approx(0.7) and result.passive.live is True
    doc = result.to_dict()["passive"]
    assert doc == {"model": "test-pad@1", "frames": 3, "score": 0.7, "lowest": 0.6, "threshold": 0.5, "live": True}


def test_a_folder_is_not_a_model_file(tmp_path):
    folder = tmp_path / "pad.onnx"
    folder.mkdir()
    with pytest.raises(ModelUnavailableError, match="is not a file"):
        PassiveModel.load(folder)
