"""``fr-feature``: the Faceplugin pack's 512-D face embedding network (``model/fr_feature.onnx``).

An ArcFace-family embedder (:class:`faceprint.models.onnx.OnnxEmbedder`) configured for this
file: the 112x112 chip of the ArcFace 5-point similarity alignment
(:data:`faceprint.align.ARCFACE_112_CHIP`), fed **BGR**, ``(x - 127.5) / 128``, cosine
similarity of the L2-normalised output. The graph's node names say it is a MobileFaceNet
exported from PyTorch; the package does not say what it was trained on.

Where this differs from the package's JavaScript (lib/fr_feature.js): the JS warps the face
with an affine transform through 3 of the 5 points (eyes and nose) and feeds the canvas's
RGB with ``(x - 127) / 128``; the 5-point similarity alignment and BGR input are far more
accurate on lfw_dev (measured: issue 12; faceprint's own numbers: bench/README.md, section
'Faceplugin models').

What makes it fast on a CPU (measured on a shared 2-core Xeon: bench/README.md, section 'End
to end against face_recognition'; ms of CPU per face, one thread):

* **Its denormal weights are flushed to 0** when the graph is loaded (:func:`session_graph`).
  The file holds 8,938 weights so small (nonzero, below 2**-126) that they cannot move an
  output, and multiplying by them takes the CPU's slow path: at graph optimisation "all"
  the network cost 73-80 ms a face with them and 21-23 without; the embeddings agree to a
  cosine of 0.9999998 or more on lfw_dev chips.
* **Graph optimisation "all"**, onnxruntime's default. "extended" was chosen before because
  "all" ran ~3x slower; that was the denormals: flushed, "all" costs 21-23 ms a face and
  "extended" 22-28 in the same runs.
* **A dynamic batch**: the file fixes it at 1, so the input, the output and the final
  Reshape's ``[1, -1]`` are rewritten; the engine embeds the chips of several images in one
  call. (Flushed, a face costs about the same alone or in a batch of 32.)
* **One intra-op thread** (:data:`THREADS`): the batch engine embeds in its parent while one
  worker process per core detects. On the shared machine 2 threads gave fewer images per
  second end to end (479 lfw_dev images, 2 jobs: 1 thread 13.3-18.2, 2 threads 9.7-14.6)
  and cost the embedding process more CPU (2 threads spinning +35%, not spinning +6-10%);
  only a quiet machine runs one batch about twice as fast on 2 threads (12 against 22 ms a
  face).

OpenCV's DNN module runs the same graph for 13-15 ms of CPU a face with the same outputs; it
is not used (one runtime is simpler, and its ``Net`` must not run from two threads at once).

``fr-feature-flip`` is the same network with horizontal-flip test-time augmentation: the
embedding of a chip is the renormalised sum of the (normalised) embeddings of the chip and
its mirror image, at about 1.8x the cost. Its embeddings differ from ``fr-feature``'s, so it is
a model of its own (galleries record which one made their templates).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from faceprint.align import ARCFACE_112_CHIP
from faceprint.errors import ModelFormatError
from faceprint.models.base import BuiltinModel
from faceprint.models.card import ModelCard
from faceprint.models.faceplugin.calibration import FR_FEATURE_CALIBRATION, FR_FEATURE_FLIP_CALIBRATION
from faceprint.models.onnx.arcface import OnnxEmbedder
from faceprint.models.onnx.common import (
    GraphOptimization,
    OrtSession,
    Preprocessing,
    flush_denormal_weights,
    free_batch_dimension,
    open_session,
)
from faceprint.models.packs import FACEPLUGIN, pack_file

logger = logging.getLogger(__name__)

#: The pack file holding the network.
MODEL_PATH = "model/fr_feature.onnx"
EMBEDDING_DIM = 512
#: BGR, ``(x - 127.5) / 128``: measured better than RGB on every lfw_dev all-pairs metric.
PREPROCESSING = Preprocessing(colour="bgr", mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0))
#: Graph optimisation level: "all" (onnxruntime's default), once the denormal weights are gone.
OPTIMIZATION: GraphOptimization = "all"
#: onnxruntime intra-op threads: one (the batch engine runs a worker process per core beside it).
THREADS = 1


def session_graph(model: bytes, *, flush: bool = True) -> bytes:
    """The graph onnxruntime runs for fr_feature.onnx: a dynamic batch size instead of its fixed
    1, and (unless ``flush=False``, for comparison) its denormal weights flushed to 0.

    The batch: its input and output get a symbolic first dimension and its one Reshape
    (``[1, -1]``, the flattening of the last layer) becomes ``[-1, 512]``;
    :class:`ModelFormatError` when the graph is not shaped that way (another file than the
    pinned one). The denormals: :func:`faceprint.models.onnx.common.flush_denormal_weights`
    (8,938 of the file's 1.19 M weights: the same embeddings, ~3.5x faster at "all").
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.ModelProto()
    graph.ParseFromString(model)
    reshapes = [n for n in graph.graph.node if n.op_type == "Reshape"]
    weights = {w.name: w for w in graph.graph.initializer}
    target = weights.get(reshapes[0].input[1]) if len(reshapes) == 1 else None
    if target is None or numpy_helper.to_array(target).tolist() != [1, -1]:
        raise ModelFormatError("fr_feature.onnx: expected one Reshape to [1, -1] at the end of the graph")
    target.CopyFrom(numpy_helper.from_array(np.array([-1, EMBEDDING_DIM], dtype=np.int64), target.name))
    free_batch_dimension(graph)
    flushed = flush_denormal_weights(graph) if flush else 0
    logger.debug("fr_feature.onnx: batch made dynamic, %d denormal weights flushed to 0", flushed)
    out: bytes = graph.SerializeToString()
    return out


def mirrored(chips: list[np.ndarray]) -> list[np.ndarray]:
    """The chips flipped left to right."""
    return [np.ascontiguousarray(chip[:, ::-1]) for chip in chips]


def flip_sum(vectors: np.ndarray, mirror_vectors: np.ndarray) -> np.ndarray:
    """Flip test-time augmentation: each row's sum with its mirror's, L2-normalised again."""
    total = np.asarray(vectors, dtype=np.float64) + np.asarray(mirror_vectors, dtype=np.float64)
    norms = np.linalg.norm(total, axis=1, keepdims=True)
    out: np.ndarray = (total / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class FrFeatureEmbedder(OnnxEmbedder):
    """fr_feature as an ArcFace-family ONNX embedder, with flip TTA when the card says so."""

    def __init__(self, card: ModelCard) -> None:
        path = pack_file(FACEPLUGIN.name, MODEL_PATH)  # raises ModelUnavailableError with the install line
        # The registered card names the file inside the pack; the family reads the installed path.
        super().__init__(replace(card, extra={**card.extra, "path": str(path)}))
        self.card = card
        self.flip = bool(card.extra.get("flip", False))
        logger.info("%s loaded from %s (flip TTA: %s)", card.name, path, self.flip)

    def open_session(self) -> OrtSession:
        return open_session(self.path, self.settings.sha256, optimization=self.settings.optimization,
                            threads=THREADS, rewrite=session_graph)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        if not self.flip or not len(chips):
            return super().embed_chips(chips)
        n = len(chips)
        both = super().embed_chips([*chips, *mirrored(list(chips))])  # one batch for both views
        return flip_sum(both[:n], both[n:])


def _card(name: str, flip: bool) -> ModelCard:
    tta = " with horizontal-flip test-time augmentation (twice the cost)" if flip else ""
    return ModelCard(
        name=name,
        version=FACEPLUGIN.version,
        kind="embedder",
        description=(
            f"Faceplugin's 512-D face embedding network (a MobileFaceNet exported from PyTorch){tta}. "
            "Training data unknown: the package does not say."
        ),
        input=f"{ARCFACE_112_CHIP.describe()}; fed as float32 NCHW {PREPROCESSING.describe()}",
        source=f"{FACEPLUGIN.registry} {FACEPLUGIN.spec}: {MODEL_PATH} (faceprint models install {FACEPLUGIN.name})",
        licence=FACEPLUGIN.licence,
        embedding_dim=EMBEDDING_DIM,
        metric=f"cosine similarity of L2-normalised {EMBEDDING_DIM}-D vectors (higher = more alike)",
        # lfw_dev, all pairs, fr-detect boxes and fr-landmark points (bench/faceplugin.py).
        calibration=FR_FEATURE_FLIP_CALIBRATION if flip else FR_FEATURE_CALIBRATION,
        extra={
            "format": "onnx",
            "family": "arcface",
            "pack": FACEPLUGIN.name,
            "path": MODEL_PATH,
            "sha256": FACEPLUGIN.files[MODEL_PATH],
            "provenance": FACEPLUGIN.provenance,
            "input": "input",
            "output": "output",
            "batch": "dynamic",
            "graph_optimization": OPTIMIZATION,
            "flip": flip,
            # The detector and landmarks of its calibration: what runs with it when they are not named.
            "pipeline": {"detector": "fr-detect", "landmarks": "fr-landmark"},
            **PREPROCESSING.to_extra(),
        },
    )


FR_FEATURE_CARD = _card("fr-feature", flip=False)
FR_FEATURE_FLIP_CARD = _card("fr-feature-flip", flip=True)

#: What the registry registers from this module (card, loader, aliases).
BUILTIN: list[BuiltinModel] = [
    (FR_FEATURE_CARD, FrFeatureEmbedder, ("faceplugin-feature",)),
    (FR_FEATURE_FLIP_CARD, FrFeatureEmbedder, ()),
]
