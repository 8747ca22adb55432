"""The typed registry: accessors per kind, the Protocol check at load, registrations, and
the log lines of a load."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faceprint import models
from faceprint.errors import UnknownModelError
from faceprint.models.base import Detector, Embedder, LandmarkModel, RawDetection
from faceprint.models.card import ModelCard


def _card(name: str, kind: models.ModelKind = "detector") -> ModelCard:
    return ModelCard(name, "1", kind, "a test model", "RGB uint8", "tests", "none")


class _TinyDetector:
    min_face = 10

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[RawDetection]:
        return []


class _NotADetector:
    def __init__(self, card: ModelCard) -> None:
        self.card = card


@pytest.fixture
def registered():
    names: list[str] = []

    def add(card: ModelCard, factory, aliases: tuple[str, ...] = ()) -> ModelCard:
        models.register(card, factory, aliases)
        names.append(card.name)
        return card

    yield add
    for name in names:
        models.unregister(name)


def test_typed_accessors_return_their_kinds_protocol():
    assert isinstance(models.load_detector("hog"), Detector)
    assert isinstance(models.load_landmarks("dlib5"), LandmarkModel)
    assert isinstance(models.load_embedder("dlib-resnet34"), Embedder)
    # One shared instance per process, whatever the spelling.
    assert models.load_detector("dlib-hog") is models.load("hog", "detector") is models.load("hog")


def test_an_accessor_of_the_wrong_kind_is_an_unknown_model():
    with pytest.raises(UnknownModelError) as info:
        models.load_embedder("hog")
    assert info.value.details["kind"] == "embedder" and "dlib-resnet34" in info.value.details["choices"]


def test_registration_is_the_public_lookup(registered):
    card = registered(_card("test-tiny"), _TinyDetector, aliases=("test-tiny-alias",))
    entry = models.registration("test-tiny-alias")
    assert entry is not None and entry.card is card and entry.factory is _TinyDetector
    assert models.registration("no-such-model") is None
    assert models.registration("hog").card is models.get_card("hog")


def test_registering_a_taken_name_is_refused(registered):
    registered(_card("test-taken"), _TinyDetector)
    with pytest.raises(ValueError, match="already registered"):
        models.register(_card("test-taken"), _TinyDetector)


def test_a_loader_that_breaks_its_kinds_protocol_is_a_type_error(registered):
    registered(_card("test-broken"), _NotADetector)
    with pytest.raises(TypeError, match="not a Detector"):
        models.load_detector("test-broken")
    registered(_card("test-fine"), _TinyDetector)
    assert models.load_detector("test-fine").detect(np.zeros((4, 4, 3), np.uint8)) == []


def test_unregister_forgets_the_loaded_instance(registered):
    card = _card("test-reload")
    models.register(card, _TinyDetector)
    first = models.load_detector(card.name)
    assert models.unregister(card.name) is card
    registered(card, _TinyDetector)
    assert models.load_detector(card.name) is not first


def test_a_load_is_logged(registered, caplog):
    registered(_card("test-logged"), _TinyDetector)
    with caplog.at_level(logging.INFO, logger="faceprint.models"):
        models.load_detector("test-logged")
    assert any("loaded detector test-logged@1" in r.getMessage() for r in caplog.records)


def test_builtin_loaders_can_be_sent_to_worker_processes():
    import pickle

    for card in models.list_cards():
        entry = models.registration(card.name)
        assert entry is not None
        assert pickle.loads(pickle.dumps(entry.factory)) is entry.factory
