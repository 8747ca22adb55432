"""Gallery commands of the ``faceprint`` CLI: enroll, identify, people, gallery.

Thin like the rest of the CLI: parse, call :class:`faceprint.gallery.Gallery`, format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from faceprint import cli as base
from faceprint.errors import FaceprintError, InvalidArgumentError
from faceprint.imageio import find_images

people_app = typer.Typer(
    help="List, show, rename, merge and forget enrolled people; name and correct the people `faceprint cluster` found.",
    no_args_is_help=True,
)
gallery_app = typer.Typer(help="Export, import and inspect the gallery.", no_args_is_help=True)
base.app.add_typer(people_app, name="people")
base.app.add_typer(gallery_app, name="gallery")


def _open(ctx: typer.Context, create: bool = True):
    from faceprint.gallery import Gallery

    return Gallery.open(ctx.obj.get("gallery") if ctx.obj else None, create=create)


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


@base.app.command()
def enroll(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="The person's name (omit with --folders)."),
    images: Optional[list[Path]] = typer.Argument(None, help="Images (or folders) of that person; one face each."),
    folders: Optional[Path] = typer.Option(None, "--folders", help="Enrol every sub-folder of DIR as a person named after it."),
    metadata: Optional[str] = typer.Option(None, "--metadata", help='JSON object stored with the person, e.g. \'{"group": "staff"}\'.'),
    jobs: Optional[int] = base.JobsOpt,
    as_json: bool = base.JsonOpt,
) -> None:
    """Enrol people. Each image must show one face; rejected images get a reason, the rest go on."""
    with base._errors_to_exit(as_json):
        try:
            meta = json.loads(metadata) if metadata else None
        except ValueError:
            raise InvalidArgumentError(f"--metadata is not valid JSON: {metadata!r}") from None
        if meta is not None and not isinstance(meta, dict):
            raise InvalidArgumentError("--metadata must be a JSON object")
        jobs_list: list[tuple[str, str]] = []
        if folders is not None:
            if name or images:
                raise InvalidArgumentError("give either NAME IMAGE... or --folders DIR, not both")
            if not folders.is_dir():
                raise InvalidArgumentError(f"{folders} is not a folder")
            for person in sorted(p for p in folders.iterdir() if p.is_dir()):
                jobs_list += [(person.name, f) for f in find_images([person])]
        else:
            if not name or not images:
                raise InvalidArgumentError("give a NAME and at least one IMAGE (or --folders DIR)")
            jobs_list = [(name, f) for f in find_images(images)]
        if not jobs_list:
            raise InvalidArgumentError("no image files found")
        from faceprint.gallery import Enrolled, EnrollmentReport

        jobs = base._jobs_for(jobs, len(jobs_list))
        enrolled, rejected = [], []
        with _open(ctx) as gallery, base._progress(not as_json and len(jobs_list) > 1 and base.err.is_terminal) as progress:
            task = progress.add_task("enrolling", total=len(jobs_list))
            outcomes = gallery.enroll_many(jobs_list, metadata=meta, jobs=jobs)
            try:
                for outcome in outcomes:
                    (enrolled if isinstance(outcome, Enrolled) else rejected).append(outcome)
                    progress.advance(task)
            except KeyboardInterrupt:
                outcomes.close()  # stops the workers; every face reported so far is committed
                interrupted = True
            else:
                interrupted = False
        report = EnrollmentReport(tuple(enrolled), tuple(rejected))
        if as_json:
            print(json.dumps({**report.to_dict(), **({"interrupted": True} if interrupted else {})}))
        else:
            for e in report.enrolled:
                base.out.print(f"enrolled  {e.path} -> {e.subject} (face {e.face_id})")
            for r in report.rejected:
                base.out.print(f"[yellow]rejected[/]  {r.path}: {r.code}: {r.message}")
            base.out.print(f"{len(report.enrolled)} enrolled, {len(report.rejected)} rejected")
        if interrupted:
            base.err.print(f"interrupted: {len(enrolled) + len(rejected)} of {len(jobs_list)} image(s) done; "
                           "those enrolled are committed")
            raise typer.Exit(base.EXIT_INTERRUPTED)
        if report.rejected:
            raise typer.Exit(base.EXIT_FAILED)


@base.app.command()
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(..., help="Probe images or folders."),
    top_k: int = typer.Option(5, "--top-k", min=1, max=1000, help="Candidates per face."),
    far: Optional[float] = typer.Option(None, "--far", help=f"False-accept rate to decide at (default {base.DEFAULT_FAR:g})."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Explicit cosine-similarity threshold."),
    where: Optional[list[str]] = typer.Option(None, "--where", help="Only subjects whose metadata KEY=VALUE (repeatable)."),
    as_json: bool = base.JsonOpt,
) -> None:
    """Who is in these photos? Unknown faces get identity null."""
    with base._errors_to_exit(as_json):
        paths = find_images(images)
        filters = _parse_where(where)
        results: list[dict[str, Any]] = []
        with _open(ctx) as gallery, base._progress(not as_json and len(paths) > 1 and base.err.is_terminal) as progress:
            task = progress.add_task("identifying", total=len(paths))
            for path in paths:
                try:
                    faces = gallery.identify(path, top_k=top_k, far=far, threshold=threshold, where=filters)
                    results.append({"path": path, "faces": [f.to_dict() for f in faces], "error": None})
                except FaceprintError as exc:
                    if exc.code not in {"invalid_image", "image_too_large"}:
                        raise  # a bad argument or model is not a per-file problem
                    results.append({"path": path, "faces": [], "error": exc.to_dict()})
                progress.advance(task)
        if as_json:
            print(json.dumps({"results": results}))
        else:
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
            base.out.print(table)
        if any(r["error"] for r in results):
            raise typer.Exit(base.EXIT_FAILED)


# --- people ----------------------------------------------------------------------------------
@people_app.command("list")
def people_list(ctx: typer.Context, as_json: bool = base.JsonOpt) -> None:
    """Every enrolled person with their face count."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        subjects = gallery.subjects()
        if as_json:
            print(json.dumps({"subjects": [s.to_dict() for s in subjects]}))
            return
        table = Table()
        for col in ("name", "faces", "metadata", "updated"):
            table.add_column(col)
        for s in subjects:
            table.add_row(s.name, str(s.face_count), json.dumps(s.metadata) if s.metadata else "", s.updated_at)
        base.out.print(table)
        base.out.print(f"{len(subjects)} people")


@people_app.command("show")
def people_show(ctx: typer.Context, name: str, as_json: bool = base.JsonOpt) -> None:
    """One person and their enrolled faces."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        subject = gallery.subject(name)
        faces = gallery.templates(name)
        if as_json:
            print(json.dumps({**subject.to_dict(), "faces": [t.to_dict() for t in faces]}))
            return
        base.out.print(f"{subject.name}  ({subject.face_count} faces)  {json.dumps(subject.metadata)}")
        for t in faces:
            base.out.print(f"  face {t.id}: {t.source}  quality {t.quality:.2f}" if t.quality is not None else f"  face {t.id}: {t.source}")


@people_app.command("rename")
def people_rename(ctx: typer.Context, old: str, new: str, as_json: bool = base.JsonOpt) -> None:
    """Rename a person."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        subject = gallery.rename(old, new)
        print(json.dumps(subject.to_dict())) if as_json else base.out.print(f"renamed {old} -> {subject.name}")


@people_app.command("merge")
def people_merge(ctx: typer.Context, source: str, target: str, as_json: bool = base.JsonOpt) -> None:
    """Move SOURCE's faces to TARGET and remove SOURCE (names, or #ID for clustered people)."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        if source.startswith("#") or target.startswith("#"):
            from faceprint.clustering.people import People

            person = People(gallery).merge(source, target)
            if as_json:
                print(json.dumps(person.to_dict()))
            else:
                base.out.print(f"merged {source} into {person.label} ({len(person.faces)} faces)")
            return
        subject = gallery.merge(source, target)
        if as_json:
            print(json.dumps(subject.to_dict()))
        else:
            base.out.print(f"merged {source} into {subject.name} ({subject.face_count} faces)")


@people_app.command("forget")
def people_forget(ctx: typer.Context, name: str, as_json: bool = base.JsonOpt) -> None:
    """Forget a person (a name, or #ID of a clustered person): all their faces, for good.

    Templates, photo faces, thumbnails and index entries are deleted in one go."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        if name.startswith("#"):
            from faceprint.clustering.people import People

            removed = People(gallery).forget(name)
        else:
            removed = gallery.forget(name)
        if as_json:
            print(json.dumps({"forgotten": name, "faces_removed": removed}))
        else:
            base.out.print(f"forgot {name} ({removed} faces removed)")


@people_app.command("delete-face")
def people_delete_face(ctx: typer.Context, face_id: int, as_json: bool = base.JsonOpt) -> None:
    """Delete one enrolled face by its id (see `people show`)."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        gallery.delete_face(face_id)
        print(json.dumps({"deleted_face": face_id})) if as_json else base.out.print(f"deleted face {face_id}")


# --- gallery ---------------------------------------------------------------------------------
@gallery_app.command("export")
def gallery_export(
    ctx: typer.Context,
    file: Path,
    include_images: bool = typer.Option(False, "--include-images", help="Also write the face thumbnails."),
    as_json: bool = base.JsonOpt,
) -> None:
    """Write the gallery (embeddings + metadata) to a portable JSON file (.gz to compress)."""
    with base._errors_to_exit(as_json), _open(ctx, create=False) as gallery:
        count = gallery.export(file, include_images=include_images)
        doc = {"exported": str(file), "faces": count, "model": gallery.model_id}
        print(json.dumps(doc)) if as_json else base.out.print(f"wrote {count} faces to {file}")


@gallery_app.command("import")
def gallery_import(ctx: typer.Context, file: Path, as_json: bool = base.JsonOpt) -> None:
    """Add the people of an exported file (same model only; duplicates skipped)."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        counts = gallery.import_(file)
        print(json.dumps(counts)) if as_json else base.out.print(
            f"added {counts['added']} faces, skipped {counts['skipped_duplicates']} already present")


@gallery_app.command("stats")
def gallery_stats(ctx: typer.Context, as_json: bool = base.JsonOpt) -> None:
    """Where the gallery is, its model, and how many people and faces it holds."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        stats = gallery.stats()
        if as_json:
            print(json.dumps(stats.to_dict()))
        else:
            for key, value in stats.to_dict().items():
                base.out.print(f"{key:>11}: {value}")
