"""The ONNX conversion of dlib's ResNet is the same model: on real faces its descriptors
match dlib's own ``compute_face_descriptor`` (cosine >= 0.999 for every face)."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.align import extract_chip
from faceprint.models.dlib_models import RESNET_FILE
from faceprint.models.dlib_onnx import OnnxDlibResnet
from faceprint.models.files import resolve
from tests.conftest import shared

pytestmark = pytest.mark.shared_data

N_LFW = 56  # LFW images (one per identity); plus a few from deepface and CompreFace
N_OTHER = 6


def _face_chips(analyzer) -> list[tuple[str, np.ndarray]]:
    lfw = shared("lfw_dev", "images")
    others = [shared("deepface_tests", "images"), shared("compreface_samples", "images")]
    spec = analyzer.embedder.chip
    out: list[tuple[str, np.ndarray]] = []

    def take(paths, limit):
        n = 0
        for path in paths:
            if n >= limit:
                return
            rgb = analyzer.load(path)
            faces = analyzer.detect_array(rgb)
            if faces:
                out.append((str(path), extract_chip(rgb, faces[0], spec)))
                n += 1

    take((sorted(d.iterdir())[0] for d in sorted(lfw.iterdir()) if d.is_dir()), N_LFW)
    for root in others:
        take(sorted(p for p in root.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}), N_OTHER // 2)
    return out


@pytest.fixture(scope="module")
def chips(dlib_analyzer):
    found = _face_chips(dlib_analyzer)  # dlib's chips, whatever the default pipeline is
    assert len(found) >= 50, f"only {len(found)} faces found"
    return found


@pytest.fixture(scope="module")
def onnx_net(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FACEPRINT_CACHE_DIR", str(tmp_path_factory.mktemp("onnx_cache")))
    try:
        yield OnnxDlibResnet(RESNET_FILE)
    finally:
        mp.undo()


def test_onnx_descriptors_match_dlib_on_real_faces(chips, onnx_net, record_property):
    import dlib

    net = dlib.face_recognition_model_v1(str(resolve(RESNET_FILE)))
    ref = np.array([np.asarray(net.compute_face_descriptor(chip), dtype=np.float64) for _, chip in chips])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    got = onnx_net.embed_chips([chip for _, chip in chips]).astype(np.float64)
    cos = (ref * got).sum(axis=1)
    record_property("dlib_onnx_cosine_min", float(cos.min()))
    record_property("dlib_onnx_cosine_mean", float(cos.mean()))
    print(
        f"\ndlib vs onnxruntime on {len(chips)} real faces: cosine min {cos.min():.8f}, "
        f"mean {cos.mean():.8f}; max |diff| {np.abs(ref - got).max():.2e}"
    )
    worst = int(cos.argmin())
    assert cos.min() >= 0.999, f"{chips[worst][0]}: cosine {cos[worst]:.6f}"


def test_batched_equals_one_at_a_time(chips, onnx_net):
    some = [chip for _, chip in chips[:33]]
    batched = onnx_net.embed_chips(some)
    single = np.concatenate([onnx_net.embed_chips([c]) for c in some])
    assert np.abs(batched - single).max() <= 1e-5
