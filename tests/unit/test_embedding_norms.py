"""Raw embedding norms: ONNX embedders report them, the pipeline carries them to the quality."""

from __future__ import annotations

import numpy as np
import pytest

import faceprint
from faceprint import models
from faceprint.models.base import NormReportingEmbedder
from faceprint.models.onnx import OnnxEmbedder, register_onnx_model
from tests.unit.test_onnx_models import (  # noqa: F401  (_forget_file_models: the same autouse fixture)
    _forget_file_models,
    embedder_onnx,
    random_image,
    revealing_embedder,
    scrfd_onnx,
)


def _chips(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(n)]


def _embedder(tmp_path) -> OnnxEmbedder:
    card = register_onnx_model(embedder_onnx(tmp_path / "emb.onnx", dim=16), kind="embedder")
    embedder = models.load(card.name, "embedder")
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def test_an_onnx_embedder_reports_the_norms_of_its_raw_outputs(tmp_path):
    embedder = _embedder(tmp_path)
    assert isinstance(embedder, NormReportingEmbedder)
    chips = _chips(3)
    vectors, norms = embedder.embed_chips_with_norms(chips)
    np.testing.assert_allclose(vectors, embedder.embed_chips(chips), atol=1e-6)
    assert norms is not None and norms.shape == (3,) and (norms > 0).all()
    empty_vectors, empty_norms = embedder.embed_chips_with_norms([])
    assert empty_vectors.shape == (0, 16) and empty_norms is not None and empty_norms.shape == (0,)


def test_the_norm_is_that_of_the_raw_output(tmp_path):
    card = register_onnx_model(revealing_embedder(tmp_path / "reveal.onnx"), kind="embedder")
    embedder = models.load(card.name, "embedder")
    assert isinstance(embedder, OnnxEmbedder)
    chips = _chips(2)
    raw = np.concatenate([embedder.preprocess(chips).mean(axis=(2, 3)), np.ones((2, 1))], axis=1)  # [means, 1]
    vectors, norms = embedder.embed_chips_with_norms(chips)
    assert norms is not None
    np.testing.assert_allclose(norms, np.linalg.norm(raw, axis=1), rtol=1e-4)
    np.testing.assert_allclose(vectors * norms[:, None], raw, rtol=1e-4, atol=1e-5)


def test_a_subclass_reports_norms_only_for_its_forward_pass_s_own_vectors(tmp_path):
    card = register_onnx_model(embedder_onnx(tmp_path / "emb.onnx", dim=16), kind="embedder")

    class Delegating(OnnxEmbedder):
        def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
            return super().embed_chips(chips)

    class Mirroring(OnnxEmbedder):  # makes its vectors its own way: no raw norm is theirs
        def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
            both = super().embed_chips([*chips, *[c[:, ::-1].copy() for c in chips]])
            total = both[: len(chips)] + both[len(chips) :]
            return (total / np.linalg.norm(total, axis=1, keepdims=True)).astype(np.float32)

    chips = _chips(2)
    base_vectors, base_norms = OnnxEmbedder(card).embed_chips_with_norms(chips)
    vectors, norms = Delegating(card).embed_chips_with_norms(chips)
    assert norms is not None
    np.testing.assert_allclose(norms, base_norms, rtol=1e-6)
    np.testing.assert_allclose(vectors, base_vectors, atol=1e-6)
    mirrored, none = Mirroring(card).embed_chips_with_norms(chips)
    assert none is None and mirrored.shape == (2, 16)


def test_the_pipeline_carries_the_norm_but_an_unmeasured_model_s_norm_is_no_factor(tmp_path):
    det = register_onnx_model(scrfd_onnx(tmp_path / "det.onnx"), kind="detector")
    emb = register_onnx_model(embedder_onnx(tmp_path / "emb.onnx", dim=16), kind="embedder")
    analyzer = faceprint.Analyzer(detector=det.name, embedder=emb.name)
    image = random_image(128, 96)
    faces = analyzer.embed(image)
    assert len(faces) == 2
    for embedded in faces:
        assert embedded.embedding_norm is not None and embedded.embedding_norm > 0
        q = embedded.quality
        assert q is not None and q.measures["embedding_norm"] == pytest.approx(embedded.embedding_norm)
        assert "embedding_norm" not in q.factors and "detector_score" not in q.factors
        assert q.score == pytest.approx(embedded.face.quality.score)
        assert embedded.to_dict()["quality"]["measures"]["embedding_norm"] == pytest.approx(embedded.embedding_norm, rel=1e-3)
    # Through the batch engine (what `faceprint embed` runs): the same norms and quality.
    (batched,) = list(analyzer.embed_many([image]))
    for a, b in zip(batched.faces, faces):
        assert a.embedding_norm == pytest.approx(b.embedding_norm, rel=1e-5)
        assert a.quality is not None and a.quality.to_dict() == b.quality.to_dict()
