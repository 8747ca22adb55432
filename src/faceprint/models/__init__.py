"""The model registry: names -> model cards and loaders.

``faceprint models`` lists it. Loading is lazy and cached: a model's weights are read (and
their hash checked) the first time it is used, once per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from faceprint.errors import UnknownModelError
from faceprint.models.card import Calibration, ModelCard, ModelKind, WeightFile

__all__ = [
    "Calibration",
    "ModelCard",
    "WeightFile",
    "Registration",
    "register",
    "registration",
    "unregister",
    "get_card",
    "load",
    "list_cards",
    "DEFAULT_DETECTOR",
    "DEFAULT_EMBEDDER",
    "DEFAULT_LANDMARKS",
]

DEFAULT_DETECTOR = "hog"
DEFAULT_LANDMARKS = "dlib5"
DEFAULT_EMBEDDER = "dlib-resnet34"


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered model: its card and the factory that loads it."""

    card: ModelCard
    factory: Callable[[ModelCard], Any]


_registry: dict[str, Registration] = {}
_aliases: dict[str, str] = {}
_instances: dict[str, Any] = {}
_lock = threading.RLock()


def register(card: ModelCard, factory: Callable[[ModelCard], Any], aliases: tuple[str, ...] = ()) -> None:
    if card.name in _registry:
        raise ValueError(f"model {card.name!r} is already registered")
    _registry[card.name] = Registration(card, factory)
    for alias in aliases:
        _aliases[alias] = card.name


def unregister(name: str) -> ModelCard:
    """Remove ``name`` (its aliases and its loaded instance) from the registry; the card it had.

    For models registered at run time (e.g. ONNX files); the built-in models can be removed
    too, but nothing puts them back in this process.
    """
    with _lock:
        canonical = _canonical(name, None)
        entry = _registry.pop(canonical)
        for alias in [a for a, target in _aliases.items() if target == canonical]:
            del _aliases[alias]
        _instances.pop(canonical, None)
        return entry.card


def _canonical(name: str, kind: ModelKind | None) -> str:
    _ensure_builtin()
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
    with _lock:
        return _registry.get(_aliases.get(name, name))


def get_card(name: str, kind: ModelKind | None = None) -> ModelCard:
    return _registry[_canonical(name, kind)].card


def load(name: str, kind: ModelKind | None = None) -> Any:
    """The loaded model called ``name`` (one shared instance per process)."""
    canonical = _canonical(name, kind)
    inst = _instances.get(canonical)
    if inst is None:
        with _lock:
            inst = _instances.get(canonical)
            if inst is None:
                entry = _registry[canonical]
                inst = entry.factory(entry.card)
                _instances[canonical] = inst
    return inst


def list_cards(kind: ModelKind | None = None) -> list[ModelCard]:
    _ensure_builtin()
    order = {"detector": 0, "landmarks": 1, "embedder": 2}
    cards = [e.card for e in _registry.values() if kind is None or e.card.kind == kind]
    return sorted(cards, key=lambda c: (order[c.kind], c.name))


_builtin_loaded = False


def _ensure_builtin() -> None:
    global _builtin_loaded
    if not _builtin_loaded:
        with _lock:
            if not _builtin_loaded:
                from faceprint.models import dlib_models, opencv_models  # noqa: F401  (they register)

                _builtin_loaded = True
