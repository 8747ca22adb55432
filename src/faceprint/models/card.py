"""Model cards: what a model is, where its weights come from, and how to threshold it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from faceprint.errors import InvalidArgumentError, ModelMismatchError

ModelKind = Literal["detector", "landmarks", "embedder"]


@dataclass(frozen=True, slots=True)
class WeightFile:
    """A weight file shipped by an installed package, pinned by hash."""

    package: str  # import name of the package that ships it
    path: str  # path inside the package
    sha256: str
    size: int
    distribution: str  # the name pip installs it by

    def to_dict(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution,
            "package": self.package,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    """How an embedder's thresholds were measured.

    ``thresholds`` maps a false-accept rate to the cosine similarity at which exactly that
    fraction of impostor pairs (different people) in ``dataset`` score at or above it.
    """

    dataset: str
    n_images: int
    n_identities: int
    n_genuine_pairs: int
    n_impostor_pairs: int
    thresholds: dict[float, float]
    frr: dict[float, float]  # false-reject rate on the genuine pairs at each threshold
    notes: str = ""
    #: The embedder (``name@version``) these thresholds were measured with: a calibration card
    #: (``faceprint calibrate --out``) applies only to that model. Empty on built-in cards.
    model: str = ""
    #: Where the thresholds came from when not built in: the calibration card file applied
    #: (``--calibration CARD.json``). Results name it in ``threshold_source``.
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "n_images": self.n_images,
            "n_identities": self.n_identities,
            "n_genuine_pairs": self.n_genuine_pairs,
            "n_impostor_pairs": self.n_impostor_pairs,
            "thresholds": {_far_key(k): v for k, v in sorted(self.thresholds.items(), reverse=True)},
            "frr": {_far_key(k): v for k, v in sorted(self.frr.items(), reverse=True)},
            "notes": self.notes,
            **({"model": self.model} if self.model else {}),
            **({"origin": self.origin} if self.origin else {}),
        }


def _far_key(far: float) -> str:
    key = f"{far:.0e}".replace("e-0", "e-")
    return key if float(key) == far else f"{far:g}"  # 0.25 is not "2e-1"


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    version: str
    kind: ModelKind
    description: str
    input: str
    source: str
    licence: str
    files: tuple[WeightFile, ...] = ()
    embedding_dim: int | None = None
    metric: str | None = None
    calibration: Calibration | None = None
    published: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Detectors: faces scoring below this are dropped by default (the Analyzer's
    #: ``min_score``); chosen per detector on faces of known count (bench/min_score.py).
    #: None: every face the detector gives is kept.
    min_score: float | None = None

    @property
    def id(self) -> str:
        """``name@version``: what galleries and results record."""
        return f"{self.name}@{self.version}"

    # --- thresholds -----------------------------------------------------------------------
    def with_calibration(self, calibration: Calibration) -> ModelCard:
        """This card deciding with ``calibration`` (a calibration card's thresholds) instead of
        its own. :class:`ModelMismatchError` when ``calibration`` was measured with another
        model (its ``model`` is not this card's ``name@version``)."""
        if calibration.model != self.id:
            where = f" {calibration.origin}" if calibration.origin else ""
            raise ModelMismatchError(
                f"the calibration card{where} was measured with {calibration.model or 'an unnamed model'}; "
                f"this pipeline embeds with {self.id}",
                details={"card_model": calibration.model, "model": self.id, "card": calibration.origin},
            )
        return replace(self, calibration=calibration)

    def threshold_for(self, far: float) -> float:
        """The similarity threshold that stands for ``far`` on the calibration data.

        Between calibrated points the threshold is interpolated linearly in log10(FAR).
        FARs outside the calibrated range are refused rather than extrapolated.
        """
        table = self._table()
        if not (0.0 < far < 1.0) or not math.isfinite(far):
            raise InvalidArgumentError(f"far must be in (0, 1); got {far}", details={"far": far})
        fars = sorted(table)
        if far < fars[0] * (1 - 1e-9) or far > fars[-1] * (1 + 1e-9):
            raise InvalidArgumentError(
                f"far={far:g} is outside the range {self.name} was calibrated for "
                f"({fars[0]:g} to {fars[-1]:g}); pass threshold= instead",
                details={"far": far, "calibrated": fars},
            )
        for f in fars:
            if math.isclose(f, far, rel_tol=1e-9):
                return table[f]
        lo = max(f for f in fars if f < far)
        hi = min(f for f in fars if f > far)
        t = (math.log10(far) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return table[lo] + t * (table[hi] - table[lo])

    def far_for(self, threshold: float) -> float | None:
        """The FAR a given threshold stands for, or ``None`` outside the calibrated range."""
        table = self._table()
        pts = sorted((s, f) for f, s in table.items())  # by similarity, ascending
        if threshold < pts[0][0] or threshold > pts[-1][0]:
            return None
        for (s0, f0), (s1, f1) in zip(pts, pts[1:]):
            if s0 <= threshold <= s1:
                if s1 == s0:
                    return f0
                t = (threshold - s0) / (s1 - s0)
                return float(10 ** (math.log10(f0) + t * (math.log10(f1) - math.log10(f0))))
        return pts[-1][1]

    def _table(self) -> dict[float, float]:
        if self.calibration is None or not self.calibration.thresholds:
            raise InvalidArgumentError(
                f"{self.name} has no calibrated thresholds; pass threshold= explicitly"
            )
        return self.calibration.thresholds

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "input": self.input,
            "embedding_dim": self.embedding_dim,
            "metric": self.metric,
            "source": self.source,
            "licence": self.licence,
            "files": [f.to_dict() for f in self.files],
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "published": self.published,
            **({"min_score": self.min_score} if self.kind == "detector" else {}),
            **({"extra": self.extra} if self.extra else {}),
        }
