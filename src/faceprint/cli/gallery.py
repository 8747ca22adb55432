"""``faceprint enroll | identify | gallery export|import|stats|migrate``: the gallery of known people.

Thin like the rest of the CLI: parse, call :class:`faceprint.gallery.Gallery`, format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli import common
from faceprint.cli.common import JobsOpt, JsonOpt, KeepThumbnailsOpt, err, out
from faceprint.errors import FaceprintError, InvalidArgumentError
from faceprint.imageio import find_images
from faceprint.pipeline import DEFAULT_FAR

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
    return [(name, f) for f in find_images(images)]


@app.command()
def enroll(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="The person's name (omit with --folders)."),
    images: Optional[list[Path]] = typer.Argument(None, help="Images (or folders) of that person; one face each."),
    folders: Optional[Path] = typer.Option(None, "--folders", help="Enrol every sub-folder of DIR as a person named after it."),
    metadata: Optional[str] = typer.Option(None, "--metadata", help='JSON object stored with the person, e.g. \'{"group": "staff"}\'.'),
    keep_thumbnails: bool = KeepThumbnailsOpt,
    jobs: Optional[int] = JobsOpt,
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
        from faceprint.gallery import Enrolled, EnrollmentReport, Rejected

        workers = common.jobs_for(jobs, len(items))
        enrolled: list[Enrolled] = []
        rejected: list[Rejected] = []
        with common.open_gallery(ctx, create=True) as gallery, common.progress(common.show_progress(as_json, len(items))) as progress:
            gallery.thumbnails = keep_thumbnails
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
            for e in report.enrolled:
                out.print(f"enrolled  {e.path} -> {e.subject} (face {e.face_id})")
            for r in report.rejected:
                out.print(f"[yellow]rejected[/]  {r.path}: {r.code}: {r.message}")
            out.print(f"{len(report.enrolled)} enrolled, {len(report.rejected)} rejected")
        if interrupted:
            err.print(f"interrupted: {len(enrolled) + len(rejected)} of {len(items)} image(s) done; "
                      "those enrolled are committed")
            raise typer.Exit(common.EXIT_INTERRUPTED)
        if report.rejected:
            raise typer.Exit(common.EXIT_FAILED)


@app.command()
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(..., help="Probe images or folders."),
    top_k: int = typer.Option(5, "--top-k", min=1, max=1000, help="Candidates per face."),
    far: Optional[float] = typer.Option(None, "--far", help=f"False-accept rate to decide at (default {DEFAULT_FAR:g})."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Explicit cosine-similarity threshold."),
    where: Optional[list[str]] = typer.Option(None, "--where", help="Only subjects whose metadata KEY=VALUE (repeatable)."),
    as_json: bool = JsonOpt,
) -> None:
    """Who is in these photos? Unknown faces get identity null."""
    with common.errors_to_exit(as_json):
        paths = find_images(images)
        filters = _parse_where(where)
        results: list[dict[str, Any]] = []
        with common.open_gallery(ctx) as gallery, common.progress(common.show_progress(as_json, len(paths))) as progress:
            common.check_decision(gallery.analyzer.embedder_card, far, threshold)
            task = progress.add_task("identifying", total=len(paths))
            for path in paths:
                try:
                    faces = gallery.identify(path, top_k=top_k, far=far, threshold=threshold, where=filters)
                    results.append({"path": path, "faces": [f.to_dict() for f in faces], "error": None})
                except FaceprintError as exc:
                    if exc.code not in _PER_FILE_ERRORS:
                        raise  # a bad argument or model is not a per-file problem
                    results.append({"path": path, "faces": [], "error": exc.to_dict()})
                progress.advance(task)
        if as_json:
            print(json.dumps({"results": results}))
        else:
            _print_identities(results)
        if any(r["error"] for r in results):
            raise typer.Exit(common.EXIT_FAILED)


def _print_identities(results: list[dict[str, Any]]) -> None:
    table = Table()
    table.add_column("image", overflow="fold")
    for col in ("face", "box", "identity", "similarity", "threshold", "next candidates"):
        table.add_column(col)
    for r in results:
        if r["error"]:
            table.add_row(r["path"], "-", f"[red]{r['error']['code']}[/]", "", "", "", "")
        if not r["faces"] and not r["error"]:
            table.add_row(r["path"], "0", "no face", "", "", "", "")
        for i, f in enumerate(r["faces"]):
            others = ", ".join(f"{c['subject']} {c['similarity']:.3f}" for c in f["candidates"][1:3])
            sim = "-" if f["similarity"] is None else f"{f['similarity']:.4f}"
            table.add_row(r["path"] if i == 0 else "", str(i), str([round(v) for v in f["box"]]),
                          f["identity"] or "[dim]unknown[/]", sim, f"{f['threshold']:.4f}", others)
    out.print(table)


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
            out.print(f"wrote {count} faces to {file}")


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
            out.print(f"added {counts['added']} faces, skipped {counts['skipped_duplicates']} already present")


@gallery_app.command("stats")
def gallery_stats(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Where the gallery is, its model, and how many people and faces it holds."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        stats = gallery.stats()
        if as_json:
            print(json.dumps(stats.to_dict()))
        else:
            for key, value in stats.to_dict().items():
                out.print(f"{key:>11}: {value}")


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
        out.print(f"{escape(str(path))}: {report.message}: {report.subjects} subject(s), {report.templates} face(s)"
                  + (f", {report.photo_faces} photo face(s) of {report.people} clustered people"
                     f" (+{report.new_photo_faces} found anew)" if report.photo_faces or report.new_photo_faces else "")
                  + f", {report.api_keys} API key(s)")
        if report.lost:
            out.print(f"[yellow]dropped[/] {len(report.lost)} face(s), as --drop-missing asked")
        if report.emptied_subjects:
            out.print(f"[yellow]left with no face[/]: {escape(', '.join(report.emptied_subjects))}")
        if report.kept_old:
            out.print(f"the old gallery is kept in {escape(report.kept_old)}")


def _print_lost(lost: list[dict[str, Any]]) -> None:
    table = Table(title="faces not re-enrolled")
    for col in ("subject", "face", "photo", "reason"):
        table.add_column(col, overflow="fold")
    for face in lost:
        kind = "" if face["kind"] == "template" else " (photo face)"
        table.add_row(escape(face["subject"]) if face["subject"] else "[dim]unsorted[/]", f"{face['face_id']}{kind}",
                      escape(face["path"] or face["image_sha256"]), escape(f"{face['reason']}: {face['message']}"))
    out.print(table)
