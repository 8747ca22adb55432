"""Benchmark protocols: verification on labelled pairs, 1:N identification, robustness and
time-budget sweeps.

The protocols are library code: the ``faceprint eval`` commands only parse, call these and
format. Each returns a result object with ``to_dict()`` (JSON-ready; ``nan`` becomes
``null``) that also keeps the arrays the HTML report plots.

How images become embeddings (the same for every protocol): see
:mod:`~faceprint.evaluation.embedding`.

This module gathers the protocols' public names; they live by concern in
:mod:`~faceprint.evaluation.datasets` (reading benchmark files),
:mod:`~faceprint.evaluation.embedding` (running the pipeline over the images),
:mod:`~faceprint.evaluation.verification`, :mod:`~faceprint.evaluation.identification` and
:mod:`~faceprint.evaluation.time_budget`.
"""

from faceprint.evaluation.datasets import (
    IdentityList,
    PairList,
    ProgressFactory,
    csv_kind,
    no_progress,
    read_identities,
    read_pairs,
)
from faceprint.evaluation.embedding import (
    NO_DETECTOR,
    UNREADABLE_SCORE,
    EmbeddingRun,
    Fallback,
    ImageRecord,
    PipelineSpec,
    embed_images,
    fallback_chip,
    pair_scores,
)
from faceprint.evaluation.identification import (
    DEFAULT_FPIRS,
    IdentificationResult,
    evaluate_identification,
    held_out_names,
)
from faceprint.evaluation.summary import public_summary, summarize_scores
from faceprint.evaluation.time_budget import (
    TimeBudgetResult,
    candidate_configurations,
    measure_configurations,
)
from faceprint.evaluation.verification import (
    DEFAULT_FARS,
    PerturbationResult,
    VerificationResult,
    calibration_check,
    evaluate_pairs,
)

__all__ = [
    "DEFAULT_FARS",
    "DEFAULT_FPIRS",
    "NO_DETECTOR",
    "UNREADABLE_SCORE",
    "EmbeddingRun",
    "Fallback",
    "IdentificationResult",
    "IdentityList",
    "ImageRecord",
    "PairList",
    "PerturbationResult",
    "PipelineSpec",
    "ProgressFactory",
    "TimeBudgetResult",
    "VerificationResult",
    "calibration_check",
    "candidate_configurations",
    "csv_kind",
    "embed_images",
    "evaluate_identification",
    "evaluate_pairs",
    "fallback_chip",
    "held_out_names",
    "measure_configurations",
    "no_progress",
    "pair_scores",
    "public_summary",
    "read_identities",
    "read_pairs",
    "summarize_scores",
]
