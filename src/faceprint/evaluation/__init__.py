"""Honest numbers on labelled data: verification, identification, calibration, reports.

* :mod:`~faceprint.evaluation.datasets` -- benchmark files: pairs and identities CSVs.
* :mod:`~faceprint.evaluation.embedding` -- running the pipeline over the images, in batches on
  the batch engine's workers, with the centre-crop fallback for images without a detected face.
* :mod:`~faceprint.evaluation.verification` -- the LFW protocol, ROC, TAR@FAR, calibration
  check, per-group errors, robustness (:func:`evaluate_pairs`).
* :mod:`~faceprint.evaluation.identification` -- 1:N, closed (CMC) and open set (FNIR@FPIR)
  (:func:`evaluate_identification`).
* :mod:`~faceprint.evaluation.time_budget` -- the best configuration within a time budget.
* :mod:`~faceprint.evaluation.metrics` -- ROC, AUC, EER, TAR@FAR, k-fold accuracy, CMC,
  FNIR@FPIR (pure numpy).
* :mod:`~faceprint.evaluation.perturb` -- degradations for robustness sweeps.
* :mod:`~faceprint.evaluation.calibrate` -- thresholds at named FARs from all pairs the data
  allows, written as a model card's calibration.
* :mod:`~faceprint.evaluation.report` -- one self-contained HTML page with the plots.

The ``faceprint eval`` and ``faceprint calibrate`` commands are thin wrappers over these. The
protocols' public names are gathered here.
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
