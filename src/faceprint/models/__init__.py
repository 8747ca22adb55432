"""The model registry: names -> model cards and loaders.

``faceprint models`` lists it. Loading is lazy and cached: a model's weights are read (and
their hash checked) the first time it is used, once per process.

The typed accessors :func:`load_detector`, :func:`load_landmarks` and :func:`load_embedder`
return the :mod:`~faceprint.models.base` Protocol of their kind; :func:`load` with a literal
``kind`` is typed the same way. The built-in families (:mod:`~faceprint.models.dlib_models`,
:mod:`~faceprint.models.opencv_models`, and the model packs' :mod:`~faceprint.models.faceplugin`,
whose cards are listed even before the pack is installed) are registered on the first look-up;
ONNX files are registered at run time by :mod:`faceprint.models.onnx`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal, overload

from faceprint.errors import UnknownModelError
from faceprint.models.base import Detector, Embedder, LandmarkModel, Model, ModelFactory
from faceprint.models.card import Calibration, ModelCard, ModelKind, WeightFile

__all__ = [
    "Calibration",
    "ModelCard",
    "ModelKind",
    "WeightFile",
    "Model",
    "ModelFactory",
    "Registration",
    "register",
    "registration",
    "registry_lock",
    "unregister",
    "get_card",
    "card_by_id",
    "load",
    "load_detector",
    "load_landmarks",
    "load_embedder",
    "list_cards",
]

logger = logging.getLogger(__name__)

# The models used when none is named: faceprint.models.defaults (the best installed pipeline).

#: The Protocol a loaded model of each kind must satisfy (checked once, when it is loaded).
_PROTOCOL: dict[ModelKind, type] = {"detector": Detector, "landmarks": LandmarkModel, "embedder": Embedder}


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered model: its card and the factory that loads it."""

    card: ModelCard
    factory: ModelFactory


_registry: dict[str, Registration] = {}
_aliases: dict[str, str] = {}
_instances: dict[str, Model] = {}

#: Held by every registry call. Hold it yourself (it is re-entrant) to make a look-up and a
#: (re-)registration one atomic step, as :func:`faceprint.models.onnx.register_onnx_model` does.
registry_lock = threading.RLock()


def register(card: ModelCard, factory: ModelFactory, aliases: tuple[str, ...] = ()) -> None:
    """Add ``card`` (and its ``aliases``) with the ``factory`` that loads it.

    Raises :class:`ValueError` when ``card.name`` is already registered.
    """
    with registry_lock:
        if card.name in _registry:
            raise ValueError(f"model {card.name!r} is already registered")
        _registry[card.name] = Registration(card, factory)
        for alias in aliases:
            _aliases[alias] = card.name
    logger.debug("registered %s model %s", card.kind, card.id)


def unregister(name: str) -> ModelCard:
    """Remove ``name`` (its aliases and its loaded instance) from the registry; the card it had.

    For models registered at run time (e.g. ONNX files); the built-in models can be removed
    too, but nothing puts them back in this process.
    """
    with registry_lock:
        canonical = _canonical(name, None)
        entry = _registry.pop(canonical)
        for alias in [a for a, target in _aliases.items() if target == canonical]:
            del _aliases[alias]
        _instances.pop(canonical, None)
    logger.debug("unregistered model %s", entry.card.id)
    return entry.card


def _canonical(name: str, kind: ModelKind | None) -> str:
    _ensure_builtin()
    with registry_lock:
        canonical = _aliases.get(name, name)
        entry = _registry.get(canonical)
        if entry is None or (kind is not None and entry.card.kind != kind):
            choices = sorted(n for n, e in _registry.items() if kind is None or e.card.kind == kind)
            what = f"{kind} " if kind else ""
            raise UnknownModelError(
                f"unknown {what}model {name!r}; choose from: {', '.join(choices)}",
                details={"name": name, "kind": kind, "choices": choices},
            )
        return canonical


def registration(name: str) -> Registration | None:
    """The registration of ``name`` (a canonical name or an alias), or None if unknown."""
    _ensure_builtin()
    with registry_lock:
        return _registry.get(_aliases.get(name, name))


def get_card(name: str, kind: ModelKind | None = None) -> ModelCard:
    """The card of ``name`` (a canonical name or an alias); :class:`UnknownModelError` when
    there is none (of that ``kind``)."""
    with registry_lock:
        return _registry[_canonical(name, kind)].card


def card_by_id(model_id: str, kind: ModelKind | None = None) -> ModelCard:
    """The registered card whose ``name@version`` is ``model_id`` (what galleries and results
    record); :class:`UnknownModelError` when none is, e.g. another version of the model or a
    user ONNX file not registered in this process."""
    for card in list_cards(kind):
        if card.id == model_id:
            return card
    name = model_id.rsplit("@", 1)[0]
    known = registration(name)
    hint = (f"; this faceprint has {known.card.id}" if known is not None else
            "; register its ONNX file (--model-file / --models-dir) if it is one")
    raise UnknownModelError(f"no model {model_id!r} is registered{hint}", details={"model": model_id, "kind": kind})


@overload
def load(name: str, kind: Literal["detector"]) -> Detector: ...
@overload
def load(name: str, kind: Literal["landmarks"]) -> LandmarkModel: ...
@overload
def load(name: str, kind: Literal["embedder"]) -> Embedder: ...
@overload
def load(name: str, kind: None = None) -> Model: ...


def load(name: str, kind: ModelKind | None = None) -> Model:
    """The loaded model called ``name`` (one shared instance per process).

    With a ``kind``, a model of another kind is an :class:`UnknownModelError`. A factory
    whose model lacks its kind's Protocol is a :class:`TypeError` (a bug in its registration).
    """
    canonical = _canonical(name, kind)
    inst = _instances.get(canonical)
    if inst is None:
        with registry_lock:
            inst = _instances.get(canonical)
            if inst is None:
                entry = _registry[canonical]
                started = time.perf_counter()
                inst = entry.factory(entry.card)
                protocol = _PROTOCOL[entry.card.kind]
                if not isinstance(inst, protocol):
                    raise TypeError(
                        f"the loader of {entry.card.id} made a {type(inst).__name__}, which is not "
                        f"a {protocol.__name__} (see faceprint.models.base)"
                    )
                _instances[canonical] = inst
                logger.info(
                    "loaded %s %s (%s) in %.2f s",
                    entry.card.kind, entry.card.id, type(inst).__name__, time.perf_counter() - started,
                )
    return inst


def load_detector(name: str) -> Detector:
    """The loaded detector called ``name``."""
    return load(name, "detector")


def load_landmarks(name: str) -> LandmarkModel:
    """The loaded landmark model called ``name``."""
    return load(name, "landmarks")


def load_embedder(name: str) -> Embedder:
    """The loaded embedder called ``name``."""
    return load(name, "embedder")


def list_cards(kind: ModelKind | None = None) -> list[ModelCard]:
    """Every registered card (of ``kind``): detectors, then landmarks, then embedders, by name."""
    _ensure_builtin()
    order = {"detector": 0, "landmarks": 1, "embedder": 2}
    with registry_lock:
        cards = [e.card for e in _registry.values() if kind is None or e.card.kind == kind]
    return sorted(cards, key=lambda c: (order[c.kind], c.name))


_builtin_loaded = False


def _ensure_builtin() -> None:
    """Register the built-in families once. Their modules only describe their models (cards
    and loaders); registering them here keeps the imports one-way (registry -> family)."""
    global _builtin_loaded
    if not _builtin_loaded:
        with registry_lock:
            if not _builtin_loaded:
                from faceprint.models import dlib_models, faceplugin, opencv_models

                for family in (dlib_models, opencv_models, faceplugin):
                    for card, factory, aliases in family.BUILTIN:
                        register(card, factory, aliases)
                _builtin_loaded = True
