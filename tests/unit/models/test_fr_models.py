"""The Faceplugin pack's landmark and embedding models, without the pack: the 68 -> 5 point
reduction, the landmark crop, the embedder's pixel convention, the batch rewrite of its graph and
the flush of denormal weights, flip test-time augmentation, and the cards registered before the pack is installed."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint import models
from faceprint.align import ARCFACE_112_CHIP, arcface5_from_ibug68, arcface5_points
from faceprint.errors import ModelFormatError, ModelUnavailableError
from faceprint.models.defaults import default_models
from faceprint.models.faceplugin import feature, landmarks
from faceprint.models.packs import FACEPLUGIN
from faceprint.types import Box, Face, Landmarks


def _ibug68() -> np.ndarray:
    """68 points with known eyes, nose tip and mouth corners (the rest far away)."""
    p = np.full((68, 2), 1000.0)
    p[36:42] = [[10, 50], [12, 48], [14, 48], [16, 50], [14, 52], [12, 52]]  # image-left eye, centre (13, 50)
    p[42:48] = [[30, 50], [32, 48], [34, 48], [36, 50], [34, 52], [32, 52]]  # image-right eye, centre (33, 50)
    p[30] = [23, 65]
    p[48], p[54] = [15, 80], [31, 80]
    p[60], p[64] = [17, 80], [29, 80]  # inner lip corners: not used
    return p


# --- 68 -> 5 -----------------------------------------------------------------------------------
def test_68_points_reduce_to_arcface5_eye_centres_nose_tip_mouth_corners():
    five = arcface5_from_ibug68(_ibug68())
    assert five.shape == (5, 2)
    np.testing.assert_allclose(five, [[13, 50], [33, 50], [23, 65], [15, 80], [31, 80]])
    # The same reduction aligns a face that carries dlib's 68 points beside other landmarks.
    face = Face(box=Box(0, 0, 50, 100), score=1.0, landmarks=Landmarks(np.zeros((5, 2)), "dlib5"),
                landmarks68=Landmarks(_ibug68(), "ibug68"))
    np.testing.assert_allclose(arcface5_points(face), five)


def test_reduction_refuses_other_point_counts():
    with pytest.raises(ValueError, match="68"):
        arcface5_from_ibug68(np.zeros((5, 2)))


# --- the landmark crop -------------------------------------------------------------------------
def test_a_box_inside_the_image_is_cut_as_it_is():
    w = landmarks.crop_window(Box(20.7, 30.2, 120.9, 140.5), 640, 480)
    assert (w.x, w.y, w.width, w.height) == (20, 30, 100, 110)


def test_a_box_sticking_out_is_shifted_inside_the_image_keeping_its_size():
    w = landmarks.crop_window(Box(-20, 400, 80, 520), 640, 480)
    assert (w.x, w.width, w.height) == (0, 100, 120)
    assert w.y + w.height <= 479 and w.y == 479 - 120


def test_a_box_larger_than_the_image_is_shrunk_to_fit():
    w = landmarks.crop_window(Box(-50, -50, 250, 250), 200, 100)
    assert w.x >= 0 and w.y >= 0 and w.x + w.width <= 199 and w.y + w.height <= 99


def test_network_input_is_grey_64x64_over_256():
    img = np.zeros((100, 100, 3), np.uint8)
    img[..., 0] = 255  # pure red: grey 0.299 * 255 = 76
    x = landmarks.network_input(img, landmarks.CropWindow(10, 10, 50, 50))
    assert x.shape == (1, 1, 64, 64) and x.dtype == np.float32
    assert np.allclose(x, 76 / 256, atol=1 / 256)


def test_outputs_map_back_through_the_crop_actually_cut():
    out = np.tile([0.5, 0.25], 68)
    pts = landmarks.points_in_image(out, landmarks.CropWindow(100, 40, 80, 120))
    assert pts.shape == (68, 2)
    np.testing.assert_allclose(pts[0], [140, 70])


# --- the embedder's input ------------------------------------------------------------------------
def test_chips_are_fed_bgr_minus_127_5_over_128():
    chip = np.zeros((112, 112, 3), np.uint8)
    chip[..., 0], chip[..., 1], chip[..., 2] = 255, 127, 0  # R, G, B
    x = feature.PREPROCESSING.apply(chip[None])
    assert x.shape == (1, 3, 112, 112) and x.dtype == np.float32
    b, g, r = x[0, :, 0, 0]  # channel 0 is blue
    assert b == pytest.approx((0 - 127.5) / 128) and g == pytest.approx((127 - 127.5) / 128)
    assert r == pytest.approx((255 - 127.5) / 128)


def test_mirrored_chips_are_flipped_left_to_right():
    chip = np.arange(112 * 112 * 3, dtype=np.uint8).reshape(112, 112, 3)
    (m,) = feature.mirrored([chip])
    assert m.flags.c_contiguous and np.array_equal(m[:, 0], chip[:, -1]) and np.array_equal(m[:, ::-1], chip)


def test_flip_tta_sums_the_two_views_and_renormalises():
    a = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    b = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    out = feature.flip_sum(a, b)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[2**-0.5, 2**-0.5, 0.0], [0.0, 1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def _fixed_batch_embedder_graph(dim: int = feature.EMBEDDING_DIM, reshape: tuple[int, ...] = (1, -1)) -> bytes:
    """A tiny graph shaped like fr_feature.onnx: [1, 3, 112, 112] -> Conv -> Reshape [1, -1]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(dim, 3, 112, 112)).astype(np.float32) * 1e-3, "w")
    shape = numpy_helper.from_array(np.array(reshape, np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["conv"]), helper.make_node("Reshape", ["conv", "shape"], ["output"])],
        "fr_feature_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, dim])],
        [weight, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 7
    return bytes(model.SerializeToString())


def test_the_fixed_batch_graph_is_rewritten_to_take_any_batch():
    import onnxruntime as ort

    original = _fixed_batch_embedder_graph()
    batched = ort.InferenceSession(feature.session_graph(original), providers=["CPUExecutionProvider"])
    single = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(3, 3, 112, 112)).astype(np.float32)
    (out,) = batched.run(None, {"input": x})
    assert out.shape == (3, feature.EMBEDDING_DIM)
    one_by_one = np.concatenate([single.run(None, {"input": x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(out, one_by_one, rtol=1e-4, atol=1e-5)


def test_a_graph_of_another_shape_is_refused_by_the_batch_rewrite():
    with pytest.raises(ModelFormatError, match="Reshape"):
        feature.session_graph(_fixed_batch_embedder_graph(dim=8, reshape=(1, 8)))


def _with_weights(model: bytes, values: np.ndarray) -> bytes:
    """``model`` (the fr_feature-like graph) with the first values of its conv weight replaced."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.ModelProto()
    graph.ParseFromString(model)
    (weight,) = (w for w in graph.graph.initializer if w.name == "w")
    array = numpy_helper.to_array(weight).copy()
    array.flat[: len(values)] = values
    weight.CopyFrom(numpy_helper.from_array(array, "w"))
    return bytes(graph.SerializeToString())


def test_denormal_weights_are_flushed_to_zero_and_nothing_else_changes():
    import onnx
    from onnx import numpy_helper

    from faceprint.models.onnx.common import flush_denormal_weights

    tiny = np.finfo(np.float32).tiny
    planted = np.array([tiny / 2, -tiny / 4, 1e-45, tiny, -tiny, 0.0, 0.5], np.float32)  # 3 denormals first
    graph = onnx.ModelProto()
    graph.ParseFromString(_with_weights(_fixed_batch_embedder_graph(), planted))
    before = {w.name: numpy_helper.to_array(w).copy() for w in graph.graph.initializer}
    assert flush_denormal_weights(graph) == 3
    after = {w.name: numpy_helper.to_array(w) for w in graph.graph.initializer}
    np.testing.assert_array_equal(after["w"].flat[:7], [0, 0, 0, tiny, -tiny, 0, 0.5])
    np.testing.assert_array_equal(after["w"].flat[7:], before["w"].flat[7:])
    np.testing.assert_array_equal(after["shape"], before["shape"])  # int64: left alone
    assert flush_denormal_weights(graph) == 0  # nothing left to flush


def test_the_session_graph_flushes_denormals_unless_asked_not_to():
    import onnx
    from onnx import numpy_helper

    tiny = np.finfo(np.float32).tiny
    model = _with_weights(_fixed_batch_embedder_graph(), np.array([tiny / 2, tiny / 8], np.float32))

    def first_weights(data: bytes) -> list[float]:
        graph = onnx.ModelProto()
        graph.ParseFromString(data)
        (weight,) = (w for w in graph.graph.initializer if w.name == "w")
        return [float(v) for v in numpy_helper.to_array(weight).flat[:2]]

    assert first_weights(feature.session_graph(model)) == [0.0, 0.0]
    assert all(0 < v < tiny for v in first_weights(feature.session_graph(model, flush=False)))


# --- cards and loading without the pack ------------------------------------------------------------
@pytest.mark.parametrize("name,kind", [("fr-landmark", "landmarks"), ("fr-feature", "embedder"),
                                       ("fr-feature-flip", "embedder")])
def test_cards_are_registered_without_the_pack_and_loading_names_the_install_command(name, kind, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEPRINT_MODELS_DIR", str(tmp_path))  # an empty models home: no pack
    card = models.get_card(name, kind)
    assert card.version == FACEPLUGIN.version and "MIT" in card.licence
    assert card.extra["pack"] == "faceplugin" and card.extra["sha256"] == FACEPLUGIN.files[card.extra["path"]]
    entry = models.registration(name)
    assert entry is not None
    with pytest.raises(ModelUnavailableError, match="faceprint models install faceplugin"):
        entry.factory(card)  # the factory itself: the registry may hold an instance from another test


def test_embedder_cards_say_what_they_take_and_give():
    for name, flip in (("fr-feature", False), ("fr-feature-flip", True)):
        card = models.get_card(name, "embedder")
        assert card.embedding_dim == 512 and card.metric is not None and "cosine" in card.metric
        # Calibrated on lfw_dev (all pairs) with fr-detect + fr-landmark: verify takes --far.
        assert card.calibration is not None and card.threshold_for(1e-3) > 0
        assert "BGR" in card.input and "127.5" in card.input and "128" in card.input
        assert card.extra["graph_optimization"] == "all" and card.extra["flip"] is flip
        assert "unknown" in card.description.lower()  # training data unknown, said on the card
    assert models.get_card("fr-landmark").kind == "landmarks"
    assert ARCFACE_112_CHIP.size == 112


# --- the evaluation harness can compare landmark models on the same detections -----------------------
def test_an_evaluated_pipeline_takes_a_landmark_model():
    from faceprint.errors import UnknownModelError
    from faceprint.evaluation import PipelineSpec

    spec = PipelineSpec.create("hog", "fr-feature", landmarks="fr-landmark")
    assert spec.to_dict()["landmarks"] == "fr-landmark"
    assert spec.analyzer().landmarks_card.name == "fr-landmark"  # names only: nothing is loaded
    assert PipelineSpec.create().landmarks == default_models().landmarks
    with pytest.raises(UnknownModelError):
        PipelineSpec.create("hog", "fr-feature", landmarks="fr-feature")  # an embedder, not landmarks
