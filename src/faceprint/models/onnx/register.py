"""Registering ONNX files as models: one file (:func:`register_onnx_model`) or a folder
(:func:`load_models_dir`), each with its optional ``NAME.json`` sidecar."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from faceprint import models, settings
from faceprint.errors import InvalidArgumentError, ModelFormatError, ModelUnavailableError, UnknownModelError
from faceprint.models.base import ModelFactory
from faceprint.models.card import ModelCard, ModelKind
from faceprint.models.onnx.arcface import EMBEDDER_DEFAULTS, EMBEDDER_KEYS, OnnxEmbedder, embedder_card
from faceprint.models.onnx.common import NAME_PREFIX, GraphInfo, check_name, inspect_graph, model_file_and_sidecar
from faceprint.models.onnx.scrfd import DETECTOR_DEFAULTS, DETECTOR_KEYS, SCRFD_LAYOUTS, ScrfdDetector, detector_card

logger = logging.getLogger(__name__)

_KEYS: dict[str, frozenset[str]] = {"embedder": EMBEDDER_KEYS, "detector": DETECTOR_KEYS}
_DEFAULTS: dict[str, dict[str, Any]] = {"embedder": EMBEDDER_DEFAULTS, "detector": DETECTOR_DEFAULTS}

#: name -> card of every model this module registered (and has not replaced).
_file_cards: dict[str, ModelCard] = {}


def register_onnx_model(
    path: str | os.PathLike[str],
    kind: ModelKind | None = None,
    name: str | None = None,
    *,
    sidecar: bool | str | os.PathLike[str] = True,
    replace: bool = False,
    **options: Any,
) -> ModelCard:
    """Check the ONNX file at ``path`` and register it; its :class:`ModelCard`.

    ``kind`` is ``"embedder"`` or ``"detector"`` (default: the sidecar's, else told from the
    graph: one output is an embedder, 6/9/10/15 an SCRFD detector). ``name`` defaults to
    ``"onnx:" + the file's stem``. ``options`` are the sidecar's keys (``colour``, ``mean``,
    ``std``, ``calibration``, ``score_threshold``, ...) and override it. ``sidecar``:
    ``True`` reads ``NAME.json`` next to the file when there is one, ``False`` ignores it,
    a path names the file to read.

    Registering the same file with the same settings again returns the registered card; a
    different model under a registered name is refused unless ``replace=True`` (which only
    replaces another file model, never a built-in one).

    Raises :class:`ModelUnavailableError` (no such file), :class:`ModelFormatError` (not
    ONNX, or inputs/outputs this family cannot use; code ``invalid_model``) and
    :class:`InvalidArgumentError` (bad options, a name already taken).
    """
    path, config = model_file_and_sidecar(path, sidecar)
    for key, value in (("kind", kind), ("name", name)):
        if value is not None:
            if config.get(key) not in (None, value):
                raise InvalidArgumentError(
                    f"{path.name}: {key}={value!r} contradicts its sidecar's {key}={config[key]!r}",
                    details={"path": str(path), key: value, "sidecar": config[key]},
                )
            config[key] = value
    config.update(options)

    graph = inspect_graph(path)
    chosen = config.pop("kind", None) or _infer_kind(graph, path)
    if chosen not in _KEYS:
        raise InvalidArgumentError(f"kind must be 'embedder' or 'detector', not {chosen!r}", details={"kind": chosen})
    unknown = sorted(set(config) - _KEYS[chosen])
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) for an ONNX {chosen}: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KEYS[chosen] - {'kind'}))}",
            details={"unknown": unknown},
        )
    config = {**_DEFAULTS[chosen], **config}
    model_name = check_name(config.pop("name", None) or NAME_PREFIX + path.stem)
    card: ModelCard
    factory: ModelFactory
    if chosen == "embedder":
        card, factory = embedder_card(path, graph, model_name, config), OnnxEmbedder
    else:
        card, factory = detector_card(path, graph, model_name, config), ScrfdDetector

    with models.registry_lock:  # the look-up and the (re)registration are one step
        try:
            existing: ModelCard | None = models.get_card(model_name)
        except UnknownModelError:
            existing = None
        if existing is not None:
            if existing == card:
                logger.debug("%s is already registered as %s", path, existing.id)
                return existing
            ours = is_file_model(existing)
            if not replace or not ours:
                where = existing.extra.get("path") or existing.source
                raise InvalidArgumentError(
                    f"the model name {model_name!r} is already taken (by {existing.id}, {where}); "
                    "give another name" + (" or replace=True" if ours else ""),
                    details={"name": model_name, "registered": existing.id},
                )
            models.unregister(model_name)
            logger.info("replacing the file model %s", existing.id)
        models.register(card, factory)
        _file_cards[model_name] = card
    logger.info("registered the ONNX %s %s from %s", card.kind, card.id, path)
    return card


def is_file_model(card: ModelCard) -> bool:
    """Whether ``card`` was registered from a user's file by this module."""
    return _file_cards.get(card.name) is card


def load_models_dir(directory: str | os.PathLike[str] | None = None) -> list[ModelCard]:
    """Register every ``*.onnx`` file in ``directory`` (not its subfolders), each with its
    ``NAME.json`` sidecar when there is one; their cards, in file-name order.

    ``directory`` defaults to ``$FACEPRINT_MODELS_DIR`` (:func:`faceprint.settings.models_dir`);
    with neither, nothing happens. The first file that cannot be registered raises (naming
    it); the ones before stay registered.
    """
    folder = Path(directory).expanduser() if directory is not None else settings.models_dir()
    if folder is None:
        return []
    if not folder.is_dir():
        raise ModelUnavailableError(f"models directory {folder} does not exist", details={"path": str(folder)})
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
    logger.debug("models directory %s: %d ONNX file(s)", folder, len(files))
    return [register_onnx_model(p) for p in files]


def _infer_kind(graph: GraphInfo, path: Path) -> str:
    n = len(graph.outputs)
    if n == 1:
        return "embedder"
    if n in SCRFD_LAYOUTS:
        return "detector"
    raise ModelFormatError(
        f"cannot tell what {path.name} is: an ArcFace-style embedder has 1 output and an SCRFD "
        f"detector 6, 9, 10 or 15; it has {n}. Give kind='embedder' or kind='detector'",
        details={"path": str(path), "outputs": n},
    )
