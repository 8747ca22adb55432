"""``faceprint cluster`` and the corrections of ``faceprint people``: people found in photos.

A person is named by its name or ``#ID`` (see ``faceprint people clusters``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from faceprint import cli as base
from faceprint.cli_gallery import _open, people_app
from faceprint.errors import InvalidArgumentError
from faceprint.imageio import find_images


def _people(gallery):
    from faceprint.clustering.people import People

    return People(gallery)


@base.app.command()
def cluster(
    ctx: typer.Context,
    folders: list[Path] = typer.Argument(..., help="Photos or folders of photos (searched recursively)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write a contact sheet (JPEG) per person into DIR."),
    jobs: Optional[int] = base.JobsOpt,
    as_json: bool = base.JsonOpt,
) -> None:
    """Group the faces in photos into people; new photos join the people found before.

    Names and corrections are kept. Faces too small or blurred stay unsorted. Exit 1 if a
    file could not be read (the others are still clustered)."""
    with base._errors_to_exit(as_json):
        paths = find_images(folders)
        if not paths:
            raise InvalidArgumentError("no image files found")
        jobs = base._jobs_for(jobs, len(paths))
        with _open(ctx) as gallery:
            people = _people(gallery)
            report = people.add_photos(paths, jobs=jobs)
            sheets = [str(p) for p in people.write_contact_sheets(out)] if out else []
        if as_json:
            print(json.dumps({**report.to_dict(), "contact_sheets": sheets}))
            if report.errors:  # as `embed` does: the run went on, but a file failed
                raise typer.Exit(base.EXIT_FAILED)
            return
        table = Table()
        for col in ("person", "faces", "photos (first 3)"):
            table.add_column(col, overflow="fold")
        for p in report.people:
            table.add_row(p.label, str(len(p.faces)), ", ".join(Path(f.path).name for f in p.faces[:3]))
        base.out.print(table)
        base.out.print(f"{report.photos_added} new photo(s), {report.faces_added} face(s): {report.assigned} joined "
                       f"known people, {report.new_people} new people; {len(report.unsorted)} face(s) unsorted")
        for e in report.errors:
            base.out.print(f"[yellow]skipped[/]  {e['path']}: {e['code']}: {e['message']}")
        if sheets:
            base.out.print(f"contact sheets in {out}")
        if report.errors:
            raise typer.Exit(base.EXIT_FAILED)


@people_app.command("clusters")
def people_clusters(ctx: typer.Context, as_json: bool = base.JsonOpt) -> None:
    """The people found by `faceprint cluster` (named or #ID) and the unsorted faces."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        people = _people(gallery)
        found, unsorted = people.people(), people.unsorted()
        if as_json:
            print(json.dumps({"people": [p.to_dict() for p in found], "unsorted": [f.to_dict() for f in unsorted]}))
            return
        for p in found:
            base.out.print(f"{p.label:>16}  {len(p.faces)} faces  face ids {', '.join(str(f.id) for f in p.faces[:12])}")
        base.out.print(f"{len(found)} people, {len(unsorted)} unsorted faces")


@people_app.command("suggest")
def people_suggest(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, help="Questions to list."),
    as_json: bool = base.JsonOpt,
) -> None:
    """The most useful questions first: uncertain faces and people who may be one."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        questions = _people(gallery).suggest(limit)
        if as_json:
            print(json.dumps({"questions": [q.to_dict() for q in questions]}))
            return
        for q in questions:
            if q.kind == "is_this":
                base.out.print(f"is face {q.face_id} #{q.person_id}?  (score {q.score:.4f}; "
                               f"`people move {q.face_id} #{q.person_id}` or `people not {q.face_id} #{q.person_id}`)")
            else:
                base.out.print(f"are #{q.other_id} and #{q.person_id} one person?  (score {q.score:.4f}, "
                               f"{q.impact} faces; `people merge #{q.other_id} #{q.person_id}`)")
        if not questions:
            base.out.print("nothing to ask")


@people_app.command("name")
def people_name(ctx: typer.Context, person: str, name: str, as_json: bool = base.JsonOpt) -> None:
    """Name a clustered person (#ID): it becomes an enrolled subject that `identify` knows."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        named = _people(gallery).name(person, name)
        print(json.dumps(named.to_dict())) if as_json else base.out.print(
            f"#{named.id} is now {named.name} ({len(named.faces)} faces)")


@people_app.command("move")
def people_move(ctx: typer.Context, face_id: int, person: str = typer.Argument(..., help="#ID, a name, or `none`."),
                as_json: bool = base.JsonOpt) -> None:
    """Put a face in a person, or take it out (`none`: it will not go back there)."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        face = _people(gallery).move(face_id, None if person.lower() == "none" else person)
        print(json.dumps(face.to_dict() | {"person_id": face.person_id})) if as_json else base.out.print(
            f"face {face_id} -> {'#' + str(face.person_id) if face.person_id else 'unsorted'}")


@people_app.command("not")
def people_not(ctx: typer.Context, face_id: int, person: str, as_json: bool = base.JsonOpt) -> None:
    """Not this person: the face leaves PERSON and never joins it again."""
    with base._errors_to_exit(as_json), _open(ctx) as gallery:
        face = _people(gallery).reject(face_id, person)
        print(json.dumps(face.to_dict() | {"person_id": face.person_id})) if as_json else base.out.print(
            f"face {face_id} is not {person}")
