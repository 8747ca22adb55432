"""``faceprint enroll | identify | gallery export|import|stats|migrate``: the gallery of known people.

Thin like the rest of the CLI: parse, call :class:`faceprint.gallery.Gallery`, format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape
from rich.text import Text

from faceprint import draw
from faceprint.cli import common
from faceprint.cli.common import CalibrationOpt, JobsOpt, JsonOpt, KeepThumbnailsOpt, MinScoreOpt, err, out
from faceprint.errors import FaceprintError, InvalidArgumentError
from faceprint.imageio import find_images
from faceprint.pipeline import DEFAULT_FAR, resolve_threshold

if TYPE_CHECKING:
    from faceprint.gallery import Enrolled, EnrollmentReport, FaceIdentity, Rejected

#: ``enroll`` and ``identify``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()
#: ``faceprint gallery ...``
gallery_app = typer.Typer(help="Export, import and inspect the gallery.", no_args_is_help=True)

#: Per-file problems of ``identify``: the file gets an error entry and the others go on.
_PER_FILE_ERRORS = frozenset({"invalid_image", "image_too_large"})


def _parse_where(pairs: list[str] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    where: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"--where takes KEY=VALUE; got {pair!r}")
        where[key] = value
    return where


def _enrolment_list(name: str | None, images: list[Path] | None, folders: Path | None) -> list[tuple[str, str]]:
    """The (person, image file) pairs to enrol: NAME IMAGE..., or every sub-folder of --folders."""
    if folders is not None:
        if name or images:
            raise InvalidArgumentError("give either NAME IMAGE... or --folders DIR, not both")
        if not folders.is_dir():
            raise InvalidArgumentError(f"{folders} is not a folder")
        items: list[tuple[str, str]] = []
        for person in sorted(p for p in folders.iterdir() if p.is_dir()):
            items += [(person.name, f) for f in find_images([person])]
        return items
    if not name or not images:
        raise InvalidArgumentError("give a NAME and at least one IMAGE (or --folders DIR)")
    return [(name, f) for f in common.find_image_files(images)]


@app.command()
def enroll(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="The person's name (omit with --folders)."),
    images: Optional[list[Path]] = typer.Argument(None, help="Images (or folders) of that person; one face each."),
    folders: Optional[Path] = typer.Option(None, "--folders", help="Enrol every sub-folder of DIR as a person named after it."),
    metadata: Optional[str] = typer.Option(None, "--metadata", help='JSON object stored with the person, e.g. \'{"group": "staff"}\'.'),
    keep_thumbnails: bool = KeepThumbnailsOpt,
    min_score: Optional[float] = MinScoreOpt,
    jobs: Optional[int] = JobsOpt,
    dask: Optional[str] = common.DaskOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Enrol people. Each image must show one face; rejected images get a reason, the rest go on."""
    with common.errors_to_exit(as_json):
        try:
            meta = json.loads(metadata) if metadata else None
        except ValueError:
            raise InvalidArgumentError(f"--metadata is not valid JSON: {metadata!r}") from None
        if meta is not None and not isinstance(meta, dict):
            raise InvalidArgumentError("--metadata must be a JSON object")
        items = _enrolment_list(name, images, folders)
        if not items:
            raise InvalidArgumentError("no image files found")
        common.some_file_exists([path for _, path in items])
        from faceprint.gallery import Enrolled, EnrollmentReport

        workers = common.jobs_for(jobs, len(items))
        enrolled: list[Enrolled] = []
        rejected: list[Rejected] = []
        with common.on_dask(dask), common.open_gallery(ctx, create=True) as gallery, \
                common.progress(common.show_progress(as_json, len(items))) as progress:
            gallery.thumbnails = keep_thumbnails
            common.tune_analyzer(gallery.analyzer, min_score)
            task = progress.add_task("enrolling", total=len(items))
            outcomes = gallery.enroll_many(items, metadata=meta, jobs=workers)
            try:
                for outcome in outcomes:
                    if isinstance(outcome, Enrolled):
                        enrolled.append(outcome)
                    else:
                        rejected.append(outcome)
                    progress.advance(task)
            except KeyboardInterrupt:
                common.close_iterator(outcomes)  # stops the workers; every face reported so far is committed
                interrupted = True
            else:
                interrupted = False
        report = EnrollmentReport(tuple(enrolled), tuple(rejected))
        if as_json:
            print(json.dumps({**report.to_dict(), **({"interrupted": True} if interrupted else {})}))
        else:
            _print_enrolment(items, report, common.ShortPaths([folders] if folders is not None else images or []))
        if interrupted:
            err.print(f"interrupted: {len(enrolled) + len(rejected)} of {common.plural(len(items), 'image')} done; "
                      "those enrolled are committed")
            raise typer.Exit(common.EXIT_INTERRUPTED)
        if report.rejected:
            raise typer.Exit(common.EXIT_FAILED)


def _print_enrolment(items: list[tuple[str, str]], report: EnrollmentReport, paths: common.ShortPaths) -> None:
    """A row per image, in the order given: the person and the new face's id, or why it was
    rejected (the message below the table)."""
    from faceprint.gallery import Rejected

    outcomes: dict[str, Enrolled | Rejected] = {e.path: e for e in report.enrolled}
    outcomes.update((r.path, r) for r in report.rejected)
    table = common.ResultTable("image", "person", "enrolled", keep=["person", "image"], title=paths.heading)
    for person, path in items:
        outcome = outcomes.get(path)
        if outcome is None:  # not reached (interrupted)
            continue
        if isinstance(outcome, Rejected):
            result = Text(f"rejected {table.note(f'{outcome.code}: {outcome.message}')}", style="yellow")
        else:
            result = Text(f"face {outcome.face_id}")
        table.add_row(paths(path), person, result)
    table.print()
    out.print(f"{len(report.enrolled)} enrolled, {len(report.rejected)} rejected")


@app.command()
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(..., help="Probe images or folders."),
    top_k: int = typer.Option(5, "--top-k", min=1, max=1000, help="Candidates per face."),
    far: Optional[float] = typer.Option(None, "--far", help=f"False-accept rate to decide at (default {DEFAULT_FAR:g})."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Explicit cosine-similarity threshold."),
    where: Optional[list[str]] = typer.Option(None, "--where", help="Only subjects whose metadata KEY=VALUE (repeatable)."),
    min_score: Optional[float] = MinScoreOpt,
    calibration: Optional[Path] = CalibrationOpt,
    drawing: Optional[Path] = typer.Option(
        None, "--draw", metavar="OUT.jpg",
        help="Write the photo with each face's box, name and similarity (several images: into folder OUT).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Who is in these photos? Unknown faces get identity null."""
    with common.errors_to_exit(as_json):
        paths = common.find_image_files(images)
        filters = _parse_where(where)
        results: list[dict[str, Any]] = []
        with common.open_gallery(ctx) as gallery, common.progress(common.show_progress(as_json, len(paths))) as progress:
            common.tune_analyzer(gallery.analyzer, min_score, calibration)
            common.check_decision(gallery.analyzer.embedder_card, far, threshold)
            source = resolve_threshold(gallery.analyzer.embedder_card, far=far, threshold=threshold)[2]
            task = progress.add_task("identifying", total=len(paths))
            used: dict[str, int] = {}
            for path in paths:
                try:
                    faces = gallery.identify(path, top_k=top_k, far=far, threshold=threshold, where=filters)
                    results.append({"path": path, "faces": [f.to_dict() for f in faces], "error": None})
                    if drawing is not None:
                        target = draw.output_path(drawing, path, len(paths) > 1, used, "_faces")
                        draw.save_jpeg(draw.draw_faces(gallery.analyzer.load(path), _identity_marks(faces)), target)
                        results[-1]["drawing"] = target
                except FaceprintError as exc:
                    if exc.code not in _PER_FILE_ERRORS:
                        raise  # a bad argument or model is not a per-file problem
                    results.append({"path": path, "faces": [], "error": exc.to_dict()})
                progress.advance(task)
        if as_json:
            print(json.dumps({"threshold_source": source, "results": results}))
        else:
            _print_identities(results, common.ShortPaths(images))
            if source.startswith("card:"):
                out.print(f"thresholds from the calibration card {escape(source[5:])}")
        if any(r["error"] for r in results):
            raise typer.Exit(common.EXIT_FAILED)


def _identity_marks(faces: list[FaceIdentity]) -> list[draw.Mark]:
    """Each face's box with its index, name (or "unknown") and similarity, for ``--draw``."""
    marks = []
    for i, f in enumerate(faces):
        sim = "" if f.similarity is None else f" {f.similarity:.2f}"
        name = f.identity or "unknown"
        marks.append(draw.Mark(f.box, f"{i} {name}{sim}", draw.KNOWN if f.identity else draw.UNKNOWN))
    return marks


def _why_unknown(face: dict[str, Any]) -> str:
    """Why a face is unknown, in words: the best candidate went to another face of the photo
    (the library's note), fell below the threshold, or there was nobody to compare with."""
    if face["identity"] is not None:
        return ""
    if face["note"]:
        return str(face["note"])
    if not face["candidates"]:
        return "nobody enrolled to compare with"
    return f"below the threshold (closest: {face['candidates'][0]['subject']})"


def _print_identities(results: list[dict[str, Any]], paths: common.ShortPaths) -> None:
    # No box column: at 80 columns it would crowd out the reason; --draw and --json show where each face is.
    table = common.ResultTable("image", "face", "identity", "similarity", "why unknown / next candidates",
                               keep=["identity", "image"], title=paths.heading)
    for r in results:
        if r["error"]:  # the message (often a path) below the table, whole
            marker = table.note(f"{r['error']['code']}: {r['error']['message']}")
            table.add_row(paths(r["path"]), "-", Text(f"error {marker}", style="red"), "", "")
        elif not r["faces"]:
            table.add_row(paths(r["path"]), "-", Text("no face", style="dim"), "", "")
        for i, f in enumerate(r["faces"]):
            sim = "-" if f["similarity"] is None else f"{f['similarity']:.4f}"
            why = _why_unknown(f) or ", ".join(f"{c['subject']} {c['similarity']:.3f}" for c in f["candidates"][1:3])
            table.add_row(paths(r["path"]) if i == 0 else "", str(i), f["identity"] or Text("unknown", style="dim"),
                          sim, why)
    table.print()
    decided = next((f for r in results for f in r["faces"]), None)
    if decided is not None:
        far = f" (FAR {decided['far']:g})" if decided["far"] is not None else ""
        out.print(f"a face is identified at similarity {decided['threshold']:.4f} or more{far}; where each face is: "
                  "--draw OUT.jpg, or --json", soft_wrap=False)


# --- gallery ---------------------------------------------------------------------------------
@gallery_app.command("export")
def gallery_export(
    ctx: typer.Context,
    file: Path,
    include_images: bool = typer.Option(
        False, "--include-images", help="Also write the face thumbnails (kept only for faces enrolled with --keep-thumbnails).",
    ),
    plaintext: bool = typer.Option(False, "--plaintext", help="Decrypt an encrypted gallery's templates into the file "
                                   "(by default they stay sealed: importable only into this gallery)."),
    as_json: bool = JsonOpt,
) -> None:
    """Write the gallery (embeddings + metadata) to a portable JSON file (.gz to compress)."""
    with common.errors_to_exit(as_json):
        _check_writable(file)
        with common.open_gallery(ctx) as gallery:
            try:
                count = gallery.export(file, include_images=include_images, plaintext=plaintext)
            except OSError as exc:
                raise InvalidArgumentError(f"cannot write {file}: {exc.strerror or exc}", details={"path": str(file)}) from None
            model = gallery.model_id
        doc = {"exported": str(file), "faces": count, "model": model}
        if as_json:
            print(json.dumps(doc))
        else:
            out.print(f"wrote {common.plural(count, 'face')} to {escape(str(file))}", soft_wrap=False)


def _check_writable(file: Path) -> None:
    """Refuse an export target that cannot be written before the gallery (and its models) load."""
    if file.is_dir():
        raise InvalidArgumentError(f"{file} is a folder; give a file name", details={"path": str(file)})
    if not file.parent.is_dir():
        raise InvalidArgumentError(f"cannot write {file}: there is no folder {file.parent}", details={"path": str(file)})


@gallery_app.command("import")
def gallery_import(ctx: typer.Context, file: Path, as_json: bool = JsonOpt) -> None:
    """Add the people of an exported file (same model only; duplicates skipped). Creates the
    gallery if there is none."""
    with common.errors_to_exit(as_json):
        if not file.is_file():  # before the gallery is opened: nothing is created for a mistyped file
            raise InvalidArgumentError(f"no such file: {file}" if not file.exists() else f"{file} is not a file",
                                       details={"path": str(file)})
        with common.open_gallery(ctx, create=True) as gallery:
            counts = gallery.import_(file)
        if as_json:
            print(json.dumps(counts))
        else:
            out.print(f"added {common.plural(counts['added'], 'face')}, skipped {counts['skipped_duplicates']:,} already present")


#: The gallery's search index (``GalleryStats.index``, a class name) in words.
INDEX_WORDS = {
    "ExactIndex": "exact search (every face compared)",
    "HnswIndex": "HNSW (approximate: a graph of near neighbours, for large galleries)",
    "database": "in the database (pgvector's HNSW index; exact for a selective filter)",
}


def _size(n_bytes: int) -> str:
    """``122880`` -> ``"120 KiB"``."""
    size = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" or size >= 10 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n_bytes} bytes"  # not reached


@gallery_app.command("stats")
def gallery_stats(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Where the gallery is, its model, and how many people and faces it holds."""
    from faceprint.gallery import is_database_url

    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        stats = gallery.stats()
        if as_json:
            print(json.dumps(stats.to_dict()))
        else:
            doc = stats.to_dict()
            where = "database" if is_database_url(doc["path"]) else "file"
            shown = {
                where: f"{doc.pop('path')} ({_size(doc.pop('file_bytes'))})",
                "model": doc.pop("model"),
                "enrolled": common.plural(doc.pop("subjects"), "person", "people") + ", "
                + common.plural(doc.pop("faces"), "face"),
                "face pictures": f"{doc.pop('thumbnails'):,} (kept with --keep-thumbnails)",
                "search": INDEX_WORDS.get(doc["index"], doc.pop("index")),
            }
            doc.pop("index", None)
            shown.update((key.replace("_", " "), value) for key, value in doc.items())
            for key, value in shown.items():
                out.print(Text.assemble((f"{key:>13}: ", "bold"), str(value)), soft_wrap=False)


@gallery_app.command("migrate")
def gallery_migrate(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="The embedding model to re-enrol with, e.g. fr-feature (see `faceprint models`)."),
    images: Optional[list[Path]] = typer.Option(
        None, "--images", help="A folder (searched recursively) holding photos no longer at their enrolled path (repeatable).",
    ),
    drop_missing: bool = typer.Option(
        False, "--drop-missing", help="Accept losing the faces whose photo or face is not found (else: nothing changes, exit 1).",
    ),
    keep_old: Optional[Path] = typer.Option(
        None, "--keep-old", help="Keep the old gallery in this new file (by default no copy of the old templates is left).",
    ),
    jobs: Optional[int] = JobsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Re-enrol the gallery with another model, from the original photos (found by their SHA-256)."""
    with common.errors_to_exit(as_json):
        from faceprint.gallery.migrate import MigrationIncompleteError, migrate_gallery

        path = common.existing_gallery_path(ctx)
        refused: MigrationIncompleteError | None = None
        interrupted = False
        with common.progress(common.show_progress(as_json)) as bar:
            tasks: dict[str, Any] = {}

            def advance(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            try:
                report = migrate_gallery(path, to=to, images=images or (), drop_missing=drop_missing, keep_old=keep_old,
                                         jobs=common.jobs_for(jobs), progress=advance)
            except MigrationIncompleteError as exc:
                refused = exc
            except KeyboardInterrupt:
                interrupted = True
        if refused is not None:
            if not as_json:
                _print_lost(refused.report.to_dict()["lost"])
            raise refused  # one line on stderr (with --json: the error document, the list in its details)
        if interrupted:
            err.print(f"interrupted: {path} is unchanged")
            raise typer.Exit(common.EXIT_INTERRUPTED)
        doc = report.to_dict()
        if as_json:
            print(json.dumps(doc))
            return
        if not report.migrated:
            out.print(escape(report.message))
            return
        if doc["lost"]:
            _print_lost(doc["lost"])
        plural = common.plural
        out.print(f"{escape(common.shown_gallery(path))}: {escape(report.message)}: {plural(report.subjects, 'person', 'people')}, "
                  f"{plural(report.templates, 'face')}"
                  + (f", {plural(report.photo_faces, 'photo face')} of {plural(report.people, 'clustered person', 'clustered people')}"
                     f" (+{report.new_photo_faces} found anew)" if report.photo_faces or report.new_photo_faces else "")
                  + f", {plural(report.api_keys, 'API key')}")
        if report.lost:
            out.print(f"[yellow]dropped[/] {plural(len(report.lost), 'face')}, as --drop-missing asked")
        if report.emptied_subjects:
            out.print(f"[yellow]left with no face[/]: {escape(', '.join(report.emptied_subjects))}")
        if report.kept_old:
            out.print(f"the old gallery is kept in {escape(report.kept_old)}")


def _print_lost(lost: list[dict[str, Any]]) -> None:
    table = common.ResultTable("person", "face", "photo", "reason", keep=["person", "photo"], title="faces not re-enrolled")
    for face in lost:
        kind = "" if face["kind"] == "template" else " (photo face)"
        marker = table.note(face["message"])
        table.add_row(face["subject"] or Text("unsorted", style="dim"), f"{face['face_id']}{kind}",
                      face["path"] or face["image_sha256"], Text(f"{face['reason']} {marker}", style="yellow"))
    table.print()
