"""ArcFace-family embedders from ONNX files.

One float32 input ``[N, 3, 112, 112]`` (NCHW; ``N`` dynamic, or fixed -- then chips are fed
``N`` at a time, the last group padded); the first output is ``[N, D]`` (any ``D``, read from
the graph). Chips are aligned to :data:`faceprint.align.ARCFACE_112_CHIP`, put in the
declared colour order (``rgb``, as InsightFace's models expect, or ``bgr``) and normalised
``(x - mean) / std`` per channel (default InsightFace's ``mean=127.5, std=127.5``). Outputs
are L2-normalised float32; :meth:`OnnxEmbedder.embed_chips_with_norms` also gives the raw
outputs' norms (:mod:`faceprint.quality` rates them for the models where they were measured
to help). A file embedder has no calibrated thresholds unless its sidecar gives them, so
``verify()`` needs ``threshold=``.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.align import ARCFACE_112_CHIP
from faceprint.errors import InvalidArgumentError, ModelFormatError
from faceprint.models.card import Calibration, ModelCard
from faceprint.models.onnx.common import (
    COMMON_KEYS,
    FLOAT_TYPES,
    UNKNOWN_LICENCE,
    GraphInfo,
    GraphOptimization,
    OrtSession,
    Preprocessing,
    image_input,
    open_session,
    require_family,
    run_session,
    text_option,
)

logger = logging.getLogger(__name__)

#: Per thread, the forward passes made while embed_chips_with_norms watches a subclass's
#: embed_chips (a list), else no attribute.
_passes = threading.local()

#: The sidecar keys an embedder takes, and their defaults.
EMBEDDER_KEYS = COMMON_KEYS | {"calibration"}
EMBEDDER_DEFAULTS: dict[str, Any] = {"family": "arcface", "colour": "rgb", "mean": 127.5, "std": 127.5}

_CALIBRATION_KEYS = {
    "dataset", "thresholds", "frr", "n_images", "n_identities", "n_genuine_pairs", "n_impostor_pairs", "notes",
    "model",  # the embedder a calibration card was measured with (faceprint calibrate)
}


def calibration_from_dict(value: Any) -> Calibration | None:
    """A :class:`Calibration` from a sidecar's ``calibration`` object (FAR keys as strings)."""
    if value is None or isinstance(value, Calibration):
        return value
    if not isinstance(value, dict):
        raise InvalidArgumentError("calibration must be an object with a 'thresholds' map")
    unknown = sorted(set(value) - _CALIBRATION_KEYS)
    if unknown:
        raise InvalidArgumentError(f"unknown calibration key(s): {', '.join(unknown)}", details={"unknown": unknown})

    def table(key: str, lo: float, hi: float) -> dict[float, float]:
        raw = value.get(key) or {}
        if not isinstance(raw, dict):
            raise InvalidArgumentError(f"calibration.{key} must map a FAR to a number")
        out: dict[float, float] = {}
        for far, v in raw.items():
            try:
                f, x = float(far), float(v)
            except (TypeError, ValueError):
                f, x = math.nan, math.nan
            if not (0.0 < f < 1.0) or not (lo <= x <= hi):
                raise InvalidArgumentError(
                    f"calibration.{key}: {far!r}: {v!r} must map a FAR in (0, 1) to a value in [{lo:g}, {hi:g}]"
                )
            out[f] = x
        return out

    thresholds = table("thresholds", -1.0, 1.0)
    if not thresholds:
        raise InvalidArgumentError("calibration.thresholds must give at least one FAR: similarity pair")
    try:
        counts = {k: int(value.get(k, 0)) for k in ("n_images", "n_identities", "n_genuine_pairs", "n_impostor_pairs")}
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"calibration counts must be integers ({exc})") from exc
    return Calibration(
        dataset=str(value.get("dataset", "user-supplied")),
        thresholds=thresholds,
        frr=table("frr", 0.0, 1.0),
        notes=str(value.get("notes", "")),
        model=str(value.get("model", "")),
        n_images=counts["n_images"], n_identities=counts["n_identities"],
        n_genuine_pairs=counts["n_genuine_pairs"], n_impostor_pairs=counts["n_impostor_pairs"],
    )


def embedder_card(path: Path, graph: GraphInfo, name: str, config: dict[str, Any]) -> ModelCard:
    """The card of the embedder in ``path`` (already inspected as ``graph``), with the checked
    options in ``config`` (defaults filled in); :class:`ModelFormatError` if it cannot be one."""
    require_family(config, "arcface")
    x, n, h, w = image_input(graph, path, "an ArcFace-style embedder")
    size = ARCFACE_112_CHIP.size
    if (isinstance(h, int) and h != size) or (isinstance(w, int) and w != size):
        raise ModelFormatError(
            f"{path.name}: input {x.describe()} must take {size}x{size} chips [N, 3, {size}, {size}] "
            "(ArcFace alignment)",
            details={"path": str(path), "input": x.name},
        )
    out = graph.outputs[0]
    if out.dtype not in FLOAT_TYPES:
        raise ModelFormatError(
            f"{path.name}: output {out.describe()} must be a float tensor", details={"path": str(path)}
        )
    batch = n if isinstance(n, int) else None
    dim = None
    if out.shape is not None and len(out.shape) >= 2:
        dims = [d for d in out.shape[1:] if isinstance(d, int)]
        if len(dims) == len(out.shape) - 1:
            dim = math.prod(dims)
    if dim is None:  # not declared: run it once on a blank chip
        logger.debug("%s declares no output size; running it once to find it", path.name)
        session = open_session(path, graph.sha256)
        probe = session.run([out.name], {x.name: np.zeros((batch or 1, 3, size, size), np.float32)})[0]
        dim = int(np.asarray(probe).reshape(batch or 1, -1).shape[1])
    if dim < 1:
        raise ModelFormatError(f"{path.name}: output {out.describe()} is empty", details={"path": str(path)})
    pre = Preprocessing.from_options(config)
    calibration = calibration_from_dict(config.get("calibration"))
    return ModelCard(
        name=name,
        version=text_option(config, "version", graph.sha256[:12]),
        kind="embedder",
        description=text_option(config, "description", f"ArcFace-family ONNX embedder from {path.name} ({dim}-D)"),
        input=f"{ARCFACE_112_CHIP.describe()}; fed as float32 NCHW {pre.describe()}",
        source=text_option(config, "source", str(path.resolve())),
        licence=text_option(config, "licence", UNKNOWN_LICENCE),
        embedding_dim=dim,
        metric=f"cosine similarity of L2-normalised {dim}-D vectors (higher = more alike)",
        calibration=calibration,
        extra={
            "format": "onnx",
            "family": "arcface",
            "path": str(path.resolve()),
            "sha256": graph.sha256,
            "input": x.name,
            "output": out.name,
            "batch": batch if batch is not None else "dynamic",
            **pre.to_extra(),
        },
    )


@dataclass(frozen=True, slots=True)
class ArcfaceSettings:
    """What an embedder's card records about its file, typed."""

    path: Path
    sha256: str
    input: str
    output: str
    #: The graph's fixed batch size, or None when it is dynamic.
    batch: int | None
    preprocessing: Preprocessing
    #: onnxruntime's graph optimisation level (card key ``graph_optimization``; default "all").
    optimization: GraphOptimization = "all"

    @classmethod
    def from_card(cls, card: ModelCard) -> ArcfaceSettings:
        ex = card.extra
        return cls(
            path=Path(ex["path"]),
            sha256=str(ex["sha256"]),
            input=str(ex["input"]),
            output=str(ex["output"]),
            batch=ex["batch"] if isinstance(ex["batch"], int) else None,
            preprocessing=Preprocessing.from_card(ex),
            optimization=ex.get("graph_optimization", "all"),
        )


class OnnxEmbedder:
    """An ArcFace-family embedder from an ONNX file (see the module docstring)."""

    chip = ARCFACE_112_CHIP

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.settings = ArcfaceSettings.from_card(card)
        self.path = self.settings.path
        self._session = self.open_session()
        self.batch = self.settings.batch
        self.colour = self.settings.preprocessing.colour
        self.dim = int(card.embedding_dim or 0)

    def open_session(self) -> OrtSession:
        """The onnxruntime session for the card's file (a subclass may rewrite the graph)."""
        return open_session(self.path, self.settings.sha256, optimization=self.settings.optimization)

    def preprocess(self, chips: list[np.ndarray]) -> np.ndarray:
        """The ``(n, 3, 112, 112)`` float32 tensor the network is fed for ``chips``."""
        size = self.chip.size
        for chip in chips:
            if chip.shape != (size, size, 3):
                raise InvalidArgumentError(
                    f"{self.card.name} needs {size}x{size} RGB chips; got an array of shape {chip.shape}"
                )
        return self.settings.preprocessing.apply(np.stack(chips))

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        return self.forward_normalised(chips)[0]

    def embed_chips_with_norms(self, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(the ``(n, dim)`` L2-normalised embeddings, the ``(n,)`` norms of the network's raw
        outputs): :class:`faceprint.models.base.NormReportingEmbedder`.

        A subclass that overrides :meth:`embed_chips` reports norms only when what it returns
        is the very array of one forward pass (checked, not assumed); embeddings it makes its
        own way (fr-feature-flip's sum of two views) have no raw norm, and give None.
        """
        if type(self).embed_chips is OnnxEmbedder.embed_chips:
            return self.forward_normalised(chips)
        outer = getattr(_passes, "seen", None)
        seen: list[tuple[np.ndarray, np.ndarray]] = []
        _passes.seen = seen
        try:
            vectors = self.embed_chips(chips)
        finally:
            _passes.seen = outer
        if len(seen) == 1 and seen[0][0] is vectors:
            return vectors, seen[0][1]
        return vectors, None

    def forward_normalised(self, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass: the L2-normalised outputs and the raw outputs' norms."""
        out, norms = self._forward_normalised(chips)
        seen: list[tuple[np.ndarray, np.ndarray]] | None = getattr(_passes, "seen", None)
        if seen is not None:  # embed_chips_with_norms is watching a subclass's embed_chips
            seen.append((out, norms))
        return out, norms

    def _forward_normalised(self, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if not len(chips):
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros(0, dtype=np.float32)
        x = self.preprocess(list(chips))
        n = len(x)
        if self.batch is None:
            raw = self._forward(x)
        else:  # a fixed batch size: feed it that many at a time, padding the last group
            parts = []
            for start in range(0, n, self.batch):
                group = x[start : start + self.batch]
                if len(group) < self.batch:
                    pad = np.zeros((self.batch - len(group), *group.shape[1:]), np.float32)
                    group = np.concatenate([group, pad])
                parts.append(self._forward(group)[: min(self.batch, n - start)])
            raw = np.concatenate(parts)
        if raw.shape != (n, self.dim):
            raise ModelFormatError(
                f"{self.card.id} gave output of shape {raw.shape} for {n} chips; expected ({n}, {self.dim})",
                details={"model": self.card.id},
            )
        vecs = raw.astype(np.float64)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out: np.ndarray = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        return out, norms[:, 0].astype(np.float32)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        (out,) = run_session(self._session, [self.settings.output], {self.settings.input: x}, self.card)
        return out.reshape(len(x), -1) if out.size % max(len(x), 1) == 0 else out
