"""``faceprint cluster`` and ``faceprint people ...``: enrolled people and the people found in
photos.

``people list|show|rename|merge|forget|delete-face`` manage enrolled subjects
(:class:`faceprint.gallery.Gallery`); ``people clusters|suggest|name|move|not`` and ``cluster``
work on the people :class:`faceprint.clustering.people.People` finds. A clustered person is
named by its name or ``#ID`` (see ``faceprint people clusters``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from faceprint.cli import common
from faceprint.cli.common import JobsOpt, JsonOpt, KeepThumbnailsOpt, out
from faceprint.errors import InvalidArgumentError
from faceprint.imageio import find_images

if TYPE_CHECKING:
    from faceprint.clustering.people import People
    from faceprint.gallery import Gallery

#: ``cluster``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()
#: ``faceprint people ...``
people_app = typer.Typer(
    help="List, show, rename, merge and forget enrolled people; name and correct the people `faceprint cluster` found.",
    no_args_is_help=True,
)


def _people(gallery: Gallery) -> People:
    from faceprint.clustering.people import People

    return People(gallery)


def _is_cluster_id(name: str) -> bool:
    """``#ID`` names a clustered person; anything else an enrolled subject."""
    return name.startswith("#")


@app.command()
def cluster(
    ctx: typer.Context,
    folders: list[Path] = typer.Argument(..., help="Photos or folders of photos (searched recursively)."),
    sheets_dir: Optional[Path] = typer.Option(None, "--out", help="Write a contact sheet (JPEG) per person into DIR."),
    keep_thumbnails: bool = KeepThumbnailsOpt,
    jobs: Optional[int] = JobsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Group the faces in photos into people; new photos join the people found before.

    Names and corrections are kept. Faces too small or blurred stay unsorted. Exit 1 if a
    file could not be read (the others are still clustered)."""
    with common.errors_to_exit(as_json):
        paths = find_images(folders)
        if not paths:
            raise InvalidArgumentError("no image files found")
        common.some_file_exists(paths)
        workers = common.jobs_for(jobs, len(paths))
        with common.open_gallery(ctx, create=True) as gallery:
            gallery.thumbnails = keep_thumbnails
            people = _people(gallery)
            report = people.add_photos(paths, jobs=workers)
            sheets = [str(p) for p in people.write_contact_sheets(sheets_dir)] if sheets_dir else []
        if as_json:
            print(json.dumps({**report.to_dict(), "contact_sheets": sheets}))
            if report.errors:  # as `embed` does: the run went on, but a file failed
                raise typer.Exit(common.EXIT_FAILED)
            return
        table = Table()
        for col in ("person", "faces", "photos (first 3)"):
            table.add_column(col, overflow="fold")
        for p in report.people:
            table.add_row(p.label, str(len(p.faces)), ", ".join(Path(f.path).name for f in p.faces[:3]))
        out.print(table)
        out.print(f"{report.photos_added} new photo(s), {report.faces_added} face(s): {report.assigned} joined "
                  f"known people, {report.new_people} new people; {len(report.unsorted)} face(s) unsorted")
        for e in report.errors:
            out.print(f"[yellow]skipped[/]  {e['path']}: {e['code']}: {e['message']}")
        if sheets:
            out.print(f"contact sheets in {sheets_dir}")
        if report.errors:
            raise typer.Exit(common.EXIT_FAILED)


# --- enrolled people -------------------------------------------------------------------------
@people_app.command("list")
def people_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Every enrolled person with their face count."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        subjects = gallery.subjects()
        if as_json:
            print(json.dumps({"subjects": [s.to_dict() for s in subjects]}))
            return
        table = Table()
        for col in ("name", "faces", "metadata", "updated"):
            table.add_column(col)
        for s in subjects:
            table.add_row(s.name, str(s.face_count), json.dumps(s.metadata) if s.metadata else "", s.updated_at)
        out.print(table)
        out.print(f"{len(subjects)} people")


@people_app.command("show")
def people_show(ctx: typer.Context, name: str, as_json: bool = JsonOpt) -> None:
    """One person and their enrolled faces."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        subject = gallery.subject(name)
        faces = gallery.templates(name)
        if as_json:
            print(json.dumps({**subject.to_dict(), "faces": [t.to_dict() for t in faces]}))
            return
        out.print(f"{subject.name}  ({subject.face_count} faces)  {json.dumps(subject.metadata)}")
        for t in faces:
            out.print(f"  face {t.id}: {t.source}  quality {t.quality:.2f}" if t.quality is not None else f"  face {t.id}: {t.source}")


@people_app.command("rename")
def people_rename(ctx: typer.Context, old: str, new: str, as_json: bool = JsonOpt) -> None:
    """Rename a person."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        subject = gallery.rename(old, new)
        if as_json:
            print(json.dumps(subject.to_dict()))
        else:
            out.print(f"renamed {old} -> {subject.name}")


@people_app.command("merge")
def people_merge(ctx: typer.Context, source: str, target: str, as_json: bool = JsonOpt) -> None:
    """Move SOURCE's faces to TARGET and remove SOURCE (names, or #ID for clustered people)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        if _is_cluster_id(source) or _is_cluster_id(target):
            person = _people(gallery).merge(source, target)
            if as_json:
                print(json.dumps(person.to_dict()))
            else:
                out.print(f"merged {source} into {person.label} ({len(person.faces)} faces)")
            return
        # Through People: a subject that is a clustered person also enrols its matched photo faces.
        subject = _people(gallery).merge_subjects(source, target)
        if as_json:
            print(json.dumps(subject.to_dict()))
        else:
            out.print(f"merged {source} into {subject.name} ({subject.face_count} faces)")


@people_app.command("forget")
def people_forget(ctx: typer.Context, name: str, as_json: bool = JsonOpt) -> None:
    """Forget a person (a name, or #ID of a clustered person): all their faces, for good.

    Templates, photo faces, thumbnails and index entries are deleted in one go."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        removed = _people(gallery).forget(name) if _is_cluster_id(name) else gallery.forget(name)
        if as_json:
            print(json.dumps({"forgotten": name, "faces_removed": removed}))
        else:
            out.print(f"forgot {name} ({removed} faces removed)")


@people_app.command("delete-face")
def people_delete_face(ctx: typer.Context, face_id: int, as_json: bool = JsonOpt) -> None:
    """Delete one enrolled face by its id (see `people show`)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        gallery.delete_face(face_id)
        if as_json:
            print(json.dumps({"deleted_face": face_id}))
        else:
            out.print(f"deleted face {face_id}")


# --- people found by `faceprint cluster` -------------------------------------------------------
@people_app.command("clusters")
def people_clusters(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """The people found by `faceprint cluster` (named or #ID) and the unsorted faces."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        people = _people(gallery)
        found, unsorted = people.people(), people.unsorted()
        if as_json:
            print(json.dumps({"people": [p.to_dict() for p in found], "unsorted": [f.to_dict() for f in unsorted]}))
            return
        for p in found:
            out.print(f"{p.label:>16}  {len(p.faces)} faces  face ids {', '.join(str(f.id) for f in p.faces[:12])}")
        out.print(f"{len(found)} people, {len(unsorted)} unsorted faces")


@people_app.command("suggest")
def people_suggest(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, help="Questions to list."),
    as_json: bool = JsonOpt,
) -> None:
    """The most useful questions first: uncertain faces and people who may be one."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        questions = _people(gallery).suggest(limit)
        if as_json:
            print(json.dumps({"questions": [q.to_dict() for q in questions]}))
            return
        for q in questions:
            if q.kind == "is_this":
                out.print(f"is face {q.face_id} #{q.person_id}?  (score {q.score:.4f}; "
                          f"`people move {q.face_id} #{q.person_id}` or `people not {q.face_id} #{q.person_id}`)")
            else:
                out.print(f"are #{q.other_id} and #{q.person_id} one person?  (score {q.score:.4f}, "
                          f"{q.impact} faces; `people merge #{q.other_id} #{q.person_id}`)")
        if not questions:
            out.print("nothing to ask")


@people_app.command("name")
def people_name(ctx: typer.Context, person: str, name: str, as_json: bool = JsonOpt) -> None:
    """Name a clustered person (#ID): it becomes an enrolled subject that `identify` knows."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        named = _people(gallery).name(person, name)
        if as_json:
            print(json.dumps(named.to_dict()))
        else:
            out.print(f"#{named.id} is now {named.name} ({len(named.faces)} faces)")


@people_app.command("move")
def people_move(ctx: typer.Context, face_id: int, person: str = typer.Argument(..., help="#ID, a name, or `none`."),
                as_json: bool = JsonOpt) -> None:
    """Put a face in a person, or take it out (`none`: it will not go back there)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        face = _people(gallery).move(face_id, None if person.lower() == "none" else person)
        if as_json:
            print(json.dumps(face.to_dict() | {"person_id": face.person_id}))
        else:
            out.print(f"face {face_id} -> {'#' + str(face.person_id) if face.person_id else 'unsorted'}")


@people_app.command("not")
def people_not(ctx: typer.Context, face_id: int, person: str, as_json: bool = JsonOpt) -> None:
    """Not this person: the face leaves PERSON and never joins it again."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        face = _people(gallery).reject(face_id, person)
        if as_json:
            print(json.dumps(face.to_dict() | {"person_id": face.person_id}))
        else:
            out.print(f"face {face_id} is not {person}")
