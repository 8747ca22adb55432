"""``faceprint eval pairs | eval identify | calibrate``: accuracy on labelled data.

Thin like the rest of the CLI: parse, call :mod:`faceprint.evaluation`, format. With
``--json`` exactly one JSON document on stdout (``nan`` written as ``null``); progress on
stderr only at a terminal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape
from rich.text import Text

from faceprint.cli import common
from faceprint.cli.common import (
    DetectorFileOpt,
    DetectorOpt,
    JobsOpt,
    JsonOpt,
    LandmarksOpt,
    ModelFileOpt,
    ModelOpt,
    ModelsDirOpt,
    UpsampleOpt,
    out,
)
from faceprint.errors import InvalidArgumentError
from faceprint.pipeline import DetectionPolicy

if TYPE_CHECKING:
    from faceprint.evaluation import PipelineSpec

#: ``calibrate``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()
#: ``faceprint eval ...``
eval_app = typer.Typer(
    help="Measure accuracy on labelled data: verification pairs, 1:N identification, robustness, time budgets.",
    no_args_is_help=True,
)

RootOpt: Any = typer.Option(None, "--root", help="Folder the CSV's image paths are relative to (default: the CSV's folder).")
SelectOpt: Any = typer.Option("center", "--select", help="With several faces: the one nearest the image centre, or the largest.")
ReportOpt: Any = typer.Option(None, "--report", help="Also write a self-contained HTML report (plots, tables, worst errors).")
EvalDetectorOpt: Any = typer.Option(
    None, "--detector", "-d",
    help="Detector name (default: the one the embedder was calibrated with; see `faceprint models`), "
    "or 'none' for the centre crop only.",
)


def _spec(
    detector: str | None, model: str | None, upsample: int | None, select: str,
    models_dir: Path | None, detector_file: Path | None, model_file: Path | None,
    landmarks: str | None = None,
) -> PipelineSpec:
    from faceprint.evaluation import NO_DETECTOR, PipelineSpec

    if select not in ("center", "largest"):
        raise InvalidArgumentError(f"--select must be 'center' or 'largest', not {select!r}")
    if detector == NO_DETECTOR:
        _, model = common.file_models(models_dir, None, None, model, model_file)
    else:
        detector, model = common.file_models(models_dir, detector, detector_file, model, model_file)
    return PipelineSpec.create(detector or "", model or "", policy=DetectionPolicy(upsample=upsample), select=select,
                               landmarks=landmarks or "")


@contextmanager
def _progress_factory(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """The evaluation's progress callback: ``start(label, total)`` gives ``advance(n)``."""
    with common.progress(enabled) as progress:
        def start(label: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)

        yield start


def _json(doc: dict[str, Any]) -> None:
    print(json.dumps(_clean(doc)))


def _clean(x: Any) -> Any:
    """nan/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, bytes):
        return None
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _p(x: Optional[float], digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _ratio(groups: dict[str, Any], which: str) -> str:
    if groups[f"{which}_ratio_unbounded"]:
        return "unbounded (a group has no errors)"
    return _n(groups[f"{which}_max_min_ratio"], 2)


def _say(line: str) -> None:
    """A line of prose (rich markup), wrapped at the terminal's width."""
    out.print(line, soft_wrap=False)


def _warn(text: str) -> Text:
    return Text(text, style="yellow")


def _n(x: Optional[float], digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


@eval_app.command("pairs")
def eval_pairs(
    pairs_csv: Path = typer.Argument(..., help="CSV with path_a,path_b,same[,fold][,group columns]."),
    root: Optional[Path] = RootOpt,
    model: Optional[str] = ModelOpt,
    detector: Optional[str] = EvalDetectorOpt,
    select: str = SelectOpt,
    upsample: Optional[int] = UpsampleOpt,
    group_by: Optional[str] = typer.Option(None, "--group-by", help="A CSV column: FMR and FNMR per value at one threshold."),
    group_far: float = typer.Option(1e-3, "--group-far", help="FAR of the one global threshold used per group."),
    perturb: Optional[list[str]] = typer.Option(
        None, "--perturb",
        help="Degrade the probe side: blur|jpeg|downscale|noise|occlusion[:STRENGTH|low|medium|high] (repeatable; "
        "a kind alone runs its ladder).",
    ),
    time_budget_ms: Optional[float] = typer.Option(
        None, "--time-budget-ms", help="Also evaluate the most accurate configuration measured to fit T ms per image here."
    ),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", min=2, help="Evaluate an evenly spaced subset of the pairs."),
    calibration: Optional[Path] = common.CalibrationOpt,
    jobs: Optional[int] = JobsOpt,
    dask: Optional[str] = common.DaskOpt,
    report: Optional[Path] = ReportOpt,
    model_file: Optional[Path] = ModelFileOpt,
    detector_file: Optional[Path] = DetectorFileOpt,
    models_dir: Optional[Path] = ModelsDirOpt,
    landmarks: Optional[str] = LandmarksOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Verification accuracy on labelled pairs: k-fold accuracy, AUC, EER, TAR@FAR, calibration check."""
    import faceprint.evaluation as evaluation
    from faceprint.evaluation.calibrate import read_card
    from faceprint.evaluation.perturb import parse_perturbations

    with common.errors_to_exit(as_json):
        spec = _spec(detector, model, upsample, select, models_dir, detector_file, model_file, landmarks)
        perturbations = parse_perturbations(perturb or [])
        if time_budget_ms is not None and not time_budget_ms > 0:
            raise InvalidArgumentError(f"--time-budget-ms must be positive; got {time_budget_ms}")
        if not 0.0 < group_far < 1.0:  # checked now, not after every pair is embedded
            raise InvalidArgumentError(f"--group-far must be in (0, 1); got {group_far:g}")
        card_file = read_card(calibration) if calibration is not None else None
        pairs = evaluation.read_pairs(pairs_csv, root, group_by).subsample(max_pairs)
        with common.on_dask(dask), _progress_factory(common.show_progress(as_json)) as progress:
            result = evaluation.evaluate_pairs(
                pairs, spec, jobs=common.jobs_for(jobs), perturbations=perturbations, time_budget_ms=time_budget_ms,
                group_far=group_far, progress=progress, calibration=card_file,
            )
        doc = result.to_dict()
        if report is not None:
            from faceprint.evaluation.report import verification_report, write_report

            write_report(report, verification_report(result))
            doc["report"] = str(report)
        if as_json:
            _json(doc)
            return
        _print_pairs(_clean(doc))


def _print_pairs(d: dict[str, Any]) -> None:
    acc = _p(d["accuracy"]) + (f" ± {_p(d['accuracy_std'])}" if d["accuracy_std"] is not None else "")
    plural = common.plural
    _say(f"[bold]{escape(d['model'])}[/] on {escape(d['pairs_file'])}: {plural(d['n_pairs'], 'pair')}, "
         f"{plural(d['n_images'], 'image')}, {d['failures']:,} without a detected face or unreadable "
         f"({d['images_per_s'] or 0:.1f} images/s)")
    out.print(f"accuracy {acc}  ({d['accuracy_protocol']})")
    out.print(f"AUC {_n(d['auc'], 5)}   EER {_p(d['eer'])}")
    table = common.ResultTable("FAR", "threshold", "TAR", "false accepts", "impostor pairs", "resolvable", title="TAR at FAR")
    for p in d["tar_at_far_detail"]:
        table.add_row(f"{p['far']:g}", _n(p["threshold"]), _p(p["tar"]), f"{p['n_false_accepts']:,}", f"{p['n_impostor']:,}",
                      "yes" if p["resolvable"] else _warn("no"))
    table.print()
    if d["calibration"]:
        table = common.ResultTable("card FAR", "threshold", "FAR here", "FRR here", "impostor pairs",
                                   title=f"Calibration check (card: {d['calibration_source']})")
        for r in d["calibration"]:
            far_here = Text(_p(r["far_measured"], 3))
            if not r["resolvable"]:
                far_here.append(" (below resolution)", style="yellow")
            table.add_row(f"{r['far_nominal']:g}", _n(r["threshold"]), far_here, _p(r["frr_measured"]), f"{r['n_impostor']:,}")
        table.print()
    if d.get("groups"):
        g = d["groups"]
        table = common.ResultTable("group", "genuine", "impostor", "FMR", "FNMR", keep=["group"],
                                   title=f"Per group ({g['column']}) at threshold {_n(g['threshold'])}")
        for r in g["per_group"]:
            table.add_row(r["group"], f"{r['n_genuine']:,}", f"{r['n_impostor']:,}", _p(r["fmr"], 3), _p(r["fnmr"]))
        table.print()
        out.print(f"max/min ratio: FMR {_ratio(g, 'fmr')}, FNMR {_ratio(g, 'fnmr')}")
    if d.get("perturbations"):
        key = list(d["tar_at_far"])[min(1, len(d["tar_at_far"]) - 1)]
        table = common.ResultTable("probe", "accuracy", "AUC", f"TAR@FAR {key}", "failures", keep=["probe"],
                                   title="Probe side degraded")
        table.add_row("clean", _p(d["accuracy"]), _n(d["auc"], 5), _p(d["tar_at_far"][key]), str(d["failures"]))
        for p in d["perturbations"]:
            table.add_row(p["label"], _p(p["accuracy"]), _n(p["auc"], 5), _p(p["tar_at_far"][key]), str(p["failures"]))
        table.print()
    if d.get("time_budget"):
        tb = d["time_budget"]
        table = common.ResultTable("configuration", "ms/image", "fits", keep=["configuration"],
                                   title=f"Time budget {tb['budget_ms']:g} ms/image (measured here, one process)")
        for r in tb["candidates"]:
            label = Text(r["label"])
            if r["label"] == tb["chosen"]["label"]:
                label.append(" (chosen)", style="green")
            table.add_row(label, _n(r["ms_per_image"], 1), "yes" if r["fits"] else "no")
        table.print()
        out.print(f"accuracy under the budget {_p(tb.get('accuracy'))} vs {_p(d['accuracy'])} unconstrained"
                  + (f" ({tb['note']})" if tb.get("note") else ""))
    if d.get("report"):
        _say(f"report: {escape(d['report'])}")


@eval_app.command("identify")
def eval_identify(
    identities_csv: Path = typer.Argument(..., help="CSV with path,identity."),
    root: Optional[Path] = RootOpt,
    enrol_per_subject: int = typer.Option(1, "--enrol-per-subject", "-k", min=1, help="Images enrolled per identity."),
    holdout: Optional[float] = typer.Option(
        None, "--holdout", min=0.0, max=0.9,
        help="Share of identities held out as strangers (default: 0.2 when no identity has too few images, else 0).",
    ),
    max_rank: int = typer.Option(20, "--max-rank", min=1, max=1000, help="Longest rank of the CMC curve."),
    max_identities: Optional[int] = typer.Option(None, "--max-identities", min=2, help="Use an evenly spread subset of identities."),
    calibration: Optional[Path] = common.CalibrationOpt,
    model: Optional[str] = ModelOpt,
    detector: Optional[str] = EvalDetectorOpt,
    select: str = SelectOpt,
    upsample: Optional[int] = UpsampleOpt,
    jobs: Optional[int] = JobsOpt,
    dask: Optional[str] = common.DaskOpt,
    report: Optional[Path] = ReportOpt,
    model_file: Optional[Path] = ModelFileOpt,
    detector_file: Optional[Path] = DetectorFileOpt,
    models_dir: Optional[Path] = ModelsDirOpt,
    landmarks: Optional[str] = LandmarksOpt,
    as_json: bool = JsonOpt,
) -> None:
    """1:N identification through a temporary gallery: rank-1/rank-5, CMC, FNIR at FPIR, DIR."""
    import faceprint.evaluation as evaluation
    from faceprint.evaluation.calibrate import read_card

    with common.errors_to_exit(as_json):
        spec = _spec(detector, model, upsample, select, models_dir, detector_file, model_file, landmarks)
        card_file = read_card(calibration) if calibration is not None else None
        ids = evaluation.read_identities(identities_csv, root).subsample(max_identities)
        with common.on_dask(dask), _progress_factory(common.show_progress(as_json)) as progress:
            result = evaluation.evaluate_identification(
                ids, spec, enrol_per_subject=enrol_per_subject, holdout=holdout, max_rank=max_rank,
                jobs=common.jobs_for(jobs), progress=progress, calibration=card_file,
            )
        doc = result.to_dict()
        if report is not None:
            from faceprint.evaluation.report import identification_report, write_report

            write_report(report, identification_report(result))
            doc["report"] = str(report)
        if as_json:
            _json(doc)
            return
        d = _clean(doc)
        plural = common.plural
        _say(f"[bold]{escape(d['model'])}[/] on {escape(d['identities_file'])}: "
             f"{plural(d['n_subjects_enrolled'], 'subject')} enrolled ({plural(d['n_templates'], 'template')}, "
             f"{plural(d['enrolment_rejected'], 'enrolment image')} rejected), {d['n_mated_probes']:,} mated and "
             f"{plural(d['n_nonmated_probes'], 'non-mated probe')}, {plural(d['failures'], 'failure')}")
        out.print(f"closed set: rank-1 {_p(d['rank1'])}   rank-5 {_p(d['rank5'])}")
        table = common.ResultTable("FPIR", "threshold", "FNIR", "DIR", "non-mated probes", "resolvable",
                                   title="Open set (NIST FRVT style)")
        for p in d["open_set"]:
            table.add_row(f"{p['fpir']:g}", _n(p["threshold"]), _p(p["fnir"]), _p(p["dir"]), f"{p['n_nonmated']:,}",
                          "yes" if p["resolvable"] else _warn("no"))
        table.print()
        if d.get("report"):
            _say(f"report: {escape(d['report'])}")


@app.command()
def calibrate(
    data_csv: Path = typer.Argument(..., help="A pairs CSV (path_a,path_b,same) or an identities CSV (path,identity)."),
    out_file: Path = typer.Option(..., "--out", "-o", help="JSON file to write {\"calibration\": ...} to (merged into an existing sidecar)."),
    model: Optional[str] = ModelOpt,
    root: Optional[Path] = RootOpt,
    far: Optional[list[float]] = typer.Option(None, "--far", help="FARs to calibrate (repeatable; default 1e-2, 1e-3, 1e-4)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Name of the data, written into the card."),
    detector: Optional[str] = DetectorOpt,
    select: str = SelectOpt,
    upsample: Optional[int] = UpsampleOpt,
    jobs: Optional[int] = JobsOpt,
    dask: Optional[str] = common.DaskOpt,
    model_file: Optional[Path] = ModelFileOpt,
    detector_file: Optional[Path] = DetectorFileOpt,
    models_dir: Optional[Path] = ModelsDirOpt,
    landmarks: Optional[str] = LandmarksOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Thresholds at named FARs from every impostor pair the data allows, written as a model card's calibration."""
    from faceprint.evaluation.calibrate import CARD_FARS, calibrate_csv, write_card

    with common.errors_to_exit(as_json):
        fars = tuple(far) if far else CARD_FARS
        for f in fars:
            if not 0.0 < f < 1.0:
                raise InvalidArgumentError(f"--far must be in (0, 1); got {f:g}")
        spec = _spec(detector, model, upsample, select, models_dir, detector_file, model_file, landmarks)
        with common.on_dask(dask), _progress_factory(common.show_progress(as_json)) as progress:
            result = calibrate_csv(data_csv, spec, root=root, fars=fars, jobs=common.jobs_for(jobs), dataset=dataset,
                                   progress=progress)
        written = write_card(out_file, result)
        doc = {**result.to_dict(), "out": str(out_file), "card": written["calibration"]}
        if as_json:
            _json(doc)
            return
        d = _clean(doc)
        _say(f"[bold]{escape(d['model'])}[/] on {escape(str(d['dataset']))}")
        _say(f"{d['n_embedded']:,} of {common.plural(d['n_images'], 'image')} embedded ({len(d['no_face']):,} without a "
             f"face, {len(d['unreadable']):,} unreadable, left out); {common.plural(d['n_identities'], 'identity', 'identities')}; "
             f"{d['n_genuine_pairs']:,} genuine and {d['n_impostor_pairs']:,} impostor pairs")
        table = common.ResultTable("FAR", "threshold", "FAR measured", "FRR", "false accepts", "in card")
        for r in d["rows"]:
            table.add_row(f"{r['far']:g}", _n(r["threshold"], 6), _p(r["far_measured"], 4), _p(r["frr"]),
                          f"{r['n_false_accepts']:,}", "yes" if r["in_card"] else _warn("no: not resolvable"))
        table.print()
        _say(f"written: {escape(str(out_file))}")
