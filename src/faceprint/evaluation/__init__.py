"""Honest numbers on labelled data: verification, identification, calibration, reports.

* :mod:`~faceprint.evaluation.metrics` -- ROC, AUC, EER, TAR@FAR, k-fold accuracy, CMC,
  FNIR@FPIR (pure numpy).
* :mod:`~faceprint.evaluation.protocols` -- the benchmark protocols (:func:`evaluate_pairs`,
  :func:`evaluate_identification`) and the batched embedding of benchmark images.
* :mod:`~faceprint.evaluation.perturb` -- degradations for robustness sweeps.
* :mod:`~faceprint.evaluation.calibrate` -- thresholds at named FARs from all pairs the data
  allows, written as a model card's calibration.
* :mod:`~faceprint.evaluation.report` -- one self-contained HTML page with the plots.

The ``faceprint eval`` and ``faceprint calibrate`` commands are thin wrappers over these.
"""

from faceprint.evaluation.protocols import (
    PipelineSpec,
    evaluate_identification,
    evaluate_pairs,
    read_identities,
    read_pairs,
)

__all__ = ["PipelineSpec", "evaluate_identification", "evaluate_pairs", "read_identities", "read_pairs"]
