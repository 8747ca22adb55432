"""A user's ONNX embedder through `faceprint calibrate` and `faceprint eval pairs`: the card
written by calibrate is a sidecar the model then uses (and worker processes re-register the
file). The network is a tiny random projection built here: the numbers mean nothing, the
plumbing is what is tested."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import shared

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

onnx = pytest.importorskip("onnx")
CLI = "import faceprint.cli; faceprint.cli.main()"


def faceprint(*args) -> dict:
    proc = subprocess.run([sys.executable, "-c", CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


def random_projection_embedder(path):
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(3 * 112 * 112, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["data"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "W"], ["fc1"])],
        "random_projection",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", 32])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_calibrate_a_user_onnx_model_then_evaluate_with_its_new_card(tmp_path):
    orl = shared("orl_faces")
    model = random_projection_embedder(tmp_path / "tiny.onnx")
    before = faceprint("eval", "pairs", orl / "pairs.csv", "--model-file", model, "--max-pairs", 200, "--json")
    assert before["model"].startswith("onnx:tiny@") and before["calibration"] == []  # no card yet
    assert 0.0 <= before["accuracy"] <= 1.0
    # 400 images: embedded by two worker processes, which register the file model themselves.
    card = faceprint("calibrate", orl / "identities.csv", "--model-file", model, "--out", tmp_path / "tiny.json",
                     "--jobs", 2, "--json")
    assert card["n_images"] == 400
    assert card["model"] == before["model"] and set(card["card"]["thresholds"]) <= {"1e-2", "1e-3", "1e-4"}
    assert card["card"]["thresholds"]
    after = faceprint("eval", "pairs", orl / "pairs.csv", "--model-file", model, "--max-pairs", 200, "--json")
    assert [r["far_nominal"] for r in after["calibration"]] == sorted(
        (float(k) for k in card["card"]["thresholds"]), reverse=True)
    assert after["accuracy"] == before["accuracy"]  # same model, same images
