"""The 1:N identification protocol: closed-set rank-k (CMC) and open-set FNIR at FPIR, through
a temporary gallery enrolled by its own rules."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import models
from faceprint.errors import FaceprintError, InvalidArgumentError
from faceprint.evaluation import metrics as M
from faceprint.evaluation.datasets import IdentityList, ProgressFactory, no_progress
from faceprint.evaluation.embedding import EmbeddingRun, PipelineSpec, embed_images
from faceprint.gallery import Gallery
from faceprint.models.card import Calibration

__all__ = ["DEFAULT_FPIRS", "IdentificationResult", "evaluate_identification", "held_out_names"]

DEFAULT_FPIRS = (1e-1, 1e-2)


@dataclass
class IdentificationResult:
    ids: IdentityList
    spec: PipelineSpec
    model_id: str
    enrol_per_subject: int
    n_subjects_enrolled: int
    n_templates: int
    rejections: list[dict[str, Any]]
    fte_subjects: list[str]
    stranger_sources: dict[str, int]
    mated_ranks: np.ndarray
    mated_scores: np.ndarray
    nonmated_scores: np.ndarray
    cmc: np.ndarray
    open_set: list[M.IdentificationPoint]
    at_card: dict[str, Any] | None
    run: EmbeddingRun
    mated_paths: list[str]
    nonmated_paths: list[str]
    worst: dict[str, list[dict[str, Any]]]
    seconds: float = 0.0
    enrol_seconds: float = 0.0

    def rank(self, k: int) -> float:
        return float(self.cmc[k - 1]) if len(self.cmc) >= k else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "identities_file": self.ids.source,
            "n_images": len(self.ids.paths),
            "n_identities": len(set(self.ids.identities)),
            "enrol_per_subject": self.enrol_per_subject,
            "n_subjects_enrolled": self.n_subjects_enrolled,
            "n_templates": self.n_templates,
            "enrolment_rejected": len(self.rejections),
            "enrolment_rejections": self.rejections[:50],
            "failed_to_enrol_subjects": len(self.fte_subjects),
            "n_mated_probes": int(self.mated_ranks.size),
            "n_nonmated_probes": int(self.nonmated_scores.size),
            "nonmated_probe_sources": self.stranger_sources,
            "failures": self.run.failures,
            "failures_detail": self.run.failure_dict(),
            "rank1": M.json_number(self.rank(1)),
            "rank5": M.json_number(self.rank(5)),
            "cmc": [M.json_number(v) for v in self.cmc],
            "fnir_at_fpir": {M.far_key(p.fpir_target): M.json_number(p.fnir) for p in self.open_set},
            "dir_at_fpir": {M.far_key(p.fpir_target): M.json_number(p.dir) for p in self.open_set},
            "open_set": [p.to_dict() for p in self.open_set],
            "at_calibrated_threshold": self.at_card,
            "pipeline": self.spec.to_dict(),
            "fallback": self.run.fallback.to_dict(),
            "images_per_s": M.json_number(self.run.images_per_s),
            "enrol_seconds": round(self.enrol_seconds, 2),
            "seconds": round(self.seconds, 2),
            "notes": (
                "Closed-set rank-k over mated probes (subject enrolled); ties count against the "
                "probe. Open set: the threshold gives the FPIR on non-mated probes (subjects not "
                "enrolled: too few images, held out, or failed to enrol); FNIR = share of mated "
                "probes whose subject is not at rank 1 with a score at or above it; DIR = 1 - FNIR."
            ),
        }


def held_out_names(names: Sequence[str], fraction: float) -> set[str]:
    """``fraction`` of ``names``, evenly spread in sorted order (none for ``fraction <= 0``)."""
    names = sorted(names)
    if fraction <= 0 or not names:
        return set()
    return {n for i, n in enumerate(names) if math.floor((i + 1) * fraction) > math.floor(i * fraction)}


def evaluate_identification(
    ids: IdentityList,
    spec: PipelineSpec,
    *,
    enrol_per_subject: int = 1,
    holdout: float | None = None,
    max_rank: int = 20,
    fpirs: Sequence[float] = DEFAULT_FPIRS,
    card_far: float = 1e-3,
    jobs: int = 1,
    progress: ProgressFactory | None = None,
    n_worst: int = 8,
    calibration: Calibration | None = None,
) -> IdentificationResult:
    """Closed- and open-set 1:N identification through a temporary :class:`Gallery`.

    The first ``enrol_per_subject`` images (file order) of every identity with more images
    than that are enrolled by the gallery's own rules (one face, quality); when one is
    rejected the identity's next image is tried instead, as long as one image is left to
    probe with. Rejected images are reported and used no further; the images after the
    enrolled ones are mated probes. Identities with too few images are non-mated probes
    (strangers). When there are none, ``holdout`` (default 0.2 then, else 0) of the other
    identities, evenly spread in name order, are held out as strangers. A subject none of
    whose enrolment images is accepted has failed to enrol: its other images become
    non-mated probes, and it is counted. ``calibration``: the threshold of ``card_far`` from a
    calibration card (:func:`faceprint.evaluation.calibrate.read_card`), not the model card.
    """
    if enrol_per_subject < 1:
        raise InvalidArgumentError("enrol_per_subject must be at least 1")
    t0 = time.perf_counter()
    card = models.get_card(spec.model, "embedder")
    if calibration is not None:
        card = card.with_calibration(calibration)
    groups = ids.by_identity()
    enough = [n for n, ps in groups.items() if len(ps) > enrol_per_subject]
    too_few = [n for n, ps in groups.items() if len(ps) <= enrol_per_subject]
    holdout_fraction = holdout if holdout is not None else (0.2 if not too_few else 0.0)
    held = held_out_names(enough, holdout_fraction)
    enrol_names = [n for n in enough if n not in held]
    if not enrol_names:
        raise InvalidArgumentError(
            f"no identity in {ids.source} has more than {enrol_per_subject} image(s) to enrol and probe with",
            details={"enrol_per_subject": enrol_per_subject},
        )
    analyzer = spec.analyzer()
    rejections: list[dict[str, Any]] = []
    fte: list[str] = []
    thumbs: dict[int, bytes | None] = {}
    with tempfile.TemporaryDirectory(prefix="faceprint-eval-") as tmp:
        # thumbnails: the report shows the wrongly matched candidates' faces; this gallery is a
        # temporary file, deleted with its folder
        with Gallery.open(Path(tmp) / "eval.db", analyzer=analyzer, thumbnails=True) as gallery:
            t_enrol = time.perf_counter()
            advance = (progress or no_progress)("enrolling", len(enrol_names))
            enrolled_names = []
            n_templates = 0
            tried: dict[str, int] = {}
            for name in enrol_names:
                files = groups[name]
                accepted = n = 0
                # The next image is tried when one is rejected, as long as one is left to probe with.
                while accepted < enrol_per_subject and n < len(files) - 1:
                    report = gallery.enroll(name, [ids.resolve(files[n])])
                    for r in report.rejected:
                        rejections.append({"path": files[n], "identity": name, "code": r.code, "message": r.message})
                    accepted += len(report.enrolled)
                    n += 1
                tried[name] = n
                if accepted:
                    enrolled_names.append(name)
                    n_templates += accepted
                else:
                    fte.append(name)
                advance(1)
            enrol_seconds = time.perf_counter() - t_enrol
            enrolled = set(enrolled_names)
            mated_paths = [p for n in enrolled_names for p in groups[n][tried[n]:]]
            nonmated_paths = ([p for n in too_few for p in groups[n]] + [p for n in sorted(held) for p in groups[n]]
                              + [p for n in fte for p in groups[n][tried[n]:]])
            probe_identity = {p: n for n, ps in groups.items() for p in ps}
            run = embed_images(mated_paths + nonmated_paths, ids.resolve, spec, jobs=jobs, progress=progress,
                               label="embedding probes")
            top_k = max(1, min(max_rank, len(enrolled)))
            cands_m = _search(gallery, run, mated_paths, top_k)
            cands_n = _search(gallery, run, nonmated_paths, top_k)
            mated_ranks = np.full(len(mated_paths), np.inf)
            mated_scores = np.full(len(mated_paths), -np.inf)
            for i, (p, cands) in enumerate(zip(mated_paths, cands_m)):
                for rank, c in enumerate(cands, start=1):
                    if c.subject == probe_identity[p]:
                        mated_ranks[i], mated_scores[i] = rank, c.similarity
                        break
            nonmated_scores = np.array([c[0].similarity if c else -np.inf for c in cands_n], dtype=np.float64)
            worst = _worst_identification(mated_paths, cands_m, mated_ranks, nonmated_paths, cands_n, nonmated_scores,
                                          probe_identity, n_worst)
            for item in worst["nonmated"] + worst["mated_misses"]:
                fid = item.get("candidate_face_id")
                if fid is not None and fid not in thumbs:
                    try:
                        thumbs[fid] = gallery.thumbnail(fid)
                    except FaceprintError:
                        thumbs[fid] = None
                item["candidate_thumbnail"] = thumbs.get(fid) if fid is not None else None
    curve = M.cmc(mated_ranks, max(1, min(max_rank, len(enrolled))))
    open_set = [M.fnir_at_fpir(mated_scores, mated_ranks, nonmated_scores, f) for f in fpirs]
    at_card = None
    if card.calibration is not None:
        t = card.threshold_for(card_far)
        hits = (mated_ranks <= 1) & (mated_scores >= t)
        at_card = {
            "far": card_far, "threshold": t,
            "fpir": M.json_number(float((nonmated_scores >= t).mean())) if nonmated_scores.size else None,
            "fnir": M.json_number(1.0 - float(hits.mean())) if hits.size else None,
            "note": "the 1:1 threshold of the model card used for 1:N: FPIR grows with the gallery size",
            "threshold_source": f"card:{card.calibration.origin}" if card.calibration.origin else "calibrated",
        }
    sources = {
        "too_few_images": sum(len(groups[n]) for n in too_few),
        "held_out": sum(len(groups[n]) for n in held),
        "failed_to_enrol": sum(len(groups[n][tried[n]:]) for n in fte),
        "subjects_too_few_images": len(too_few),
        "subjects_held_out": len(held),
    }
    result = IdentificationResult(
        ids=ids, spec=spec, model_id=card.id, enrol_per_subject=enrol_per_subject,
        n_subjects_enrolled=len(enrolled), n_templates=n_templates, rejections=rejections, fte_subjects=fte,
        stranger_sources=sources, mated_ranks=mated_ranks, mated_scores=mated_scores,
        nonmated_scores=nonmated_scores, cmc=curve, open_set=open_set, at_card=at_card, run=run,
        mated_paths=mated_paths, nonmated_paths=nonmated_paths, worst=worst, enrol_seconds=enrol_seconds,
    )
    result.seconds = time.perf_counter() - t0
    return result


def _search(gallery, run: EmbeddingRun, paths: list[str], top_k: int) -> list[list]:
    if not paths:
        return []
    vectors, present = run.matrix(paths)
    out: list[list] = [[] for _ in paths]
    rows = np.flatnonzero(present)
    for start in range(0, rows.size, 256):
        part = rows[start : start + 256]
        for i, cands in zip(part, gallery.search(vectors[part], top_k=top_k)):
            out[int(i)] = list(cands)
    return out


def _worst_identification(mated_paths, cands_m, mated_ranks, nonmated_paths, cands_n, nonmated_scores,
                          identity, n) -> dict[str, list[dict[str, Any]]]:
    nonmated = []
    for i in np.argsort(-nonmated_scores, kind="stable")[:n]:
        cands = cands_n[i]
        if not cands:
            continue
        c = cands[0]
        nonmated.append({"probe": nonmated_paths[i], "probe_identity": identity[nonmated_paths[i]],
                         "candidate": c.subject, "score": c.similarity, "candidate_face_id": c.face_id})
    misses = []
    miss_idx = [i for i in range(len(mated_paths)) if mated_ranks[i] != 1 and cands_m[i]]
    miss_idx.sort(key=lambda i: -cands_m[i][0].similarity)
    for i in miss_idx[:n]:
        c = cands_m[i][0]
        misses.append({"probe": mated_paths[i], "probe_identity": identity[mated_paths[i]], "candidate": c.subject,
                       "score": c.similarity, "mated_rank": M.json_number(mated_ranks[i]), "candidate_face_id": c.face_id})
    return {"nonmated": nonmated, "mated_misses": misses}
