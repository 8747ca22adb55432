"""``faceprint cluster`` and ``faceprint people ...``: enrolled people and the people found in
photos.

``people list|show|rename|merge|forget|delete-face`` manage enrolled subjects
(:class:`faceprint.gallery.Gallery`); ``people clusters|suggest|name|move|not|face`` and ``cluster``
work on the people :class:`faceprint.clustering.people.People` finds. Every command names a person
the same way (:meth:`People.lookup <faceprint.clustering.people.People.lookup>`): ``#ID`` for a
clustered person (see ``faceprint people clusters``), else the exact name, with "did you mean"
when it is not found.

Deleting (``forget``, ``delete-face``) asks first at a terminal; ``--yes`` skips the question,
and without a terminal (a script, a pipe) nothing is deleted unless ``--yes`` is given (exit 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape

from faceprint.cli import common
from faceprint.cli.common import JobsOpt, JsonOpt, KeepThumbnailsOpt, MinScoreOpt, err, out
from faceprint.errors import InvalidArgumentError
from faceprint.imageio import find_images

if TYPE_CHECKING:
    from faceprint.clustering.people import PassReport, People, Who
    from faceprint.gallery import Gallery

#: ``cluster``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()
#: ``faceprint people ...``
people_app = typer.Typer(
    help="List, show, rename, merge and forget enrolled people; name and correct the people `faceprint cluster` found.",
    no_args_is_help=True,
)

#: Face ids listed per person by ``people clusters`` (the rest are counted; --json has them all).
FACE_IDS_SHOWN = 12

YesOpt: Any = typer.Option(
    False, "--yes", "-y", help="Delete without asking (required when not at a terminal, e.g. in a script).",
)
PersonArg: Any = typer.Argument(..., help="A name (exact), or #ID of a clustered person (see `people clusters`).")


def _people(gallery: Gallery) -> People:
    from faceprint.clustering.people import People

    return People(gallery)


def _is_cluster_id(name: str) -> bool:
    """``#ID`` names a clustered person; anything else an enrolled subject."""
    from faceprint.clustering.people import is_person_id

    return is_person_id(name)


def confirm_deletion(what: str, yes: bool) -> None:
    """Before deleting for good: ``--yes`` goes ahead; at a terminal (stdin a tty) ask, on
    stderr, naming ``what`` will be deleted (no: exit 1, nothing deleted); otherwise -- a script,
    a pipe -- refuse with a usage error naming --yes (exit 2), so that nothing is deleted by
    accident and a script says so explicitly."""
    if yes:
        return
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        if typer.confirm(f"{what}, for good. Delete?", default=False, err=True):
            return
        err.print("nothing was deleted")
        raise typer.Exit(common.EXIT_FAILED)
    raise InvalidArgumentError(f"{what}: not at a terminal to ask, so nothing was deleted; add --yes to delete",
                               details={"needs": "--yes"})


def _describe(who: Who) -> str:
    """What forgetting ``who`` deletes, for the question."""
    parts = []
    if who.subject is not None:
        parts.append(common.plural(who.subject.face_count, "enrolled face"))
    if who.person is not None:
        parts.append(f"{common.plural(len(who.person.faces), 'photo face')} of #{who.person.id}")
    return f"forget {who.label}: " + (" and ".join(parts) if parts else "no faces")


def _summary(report: PassReport) -> str:
    """One line saying what a pass did (what joined whom only where there was someone to join)."""
    if not report.photos_added and not report.faces_added:
        head = "no new photos"
    else:
        head = f"{common.plural(report.photos_added, 'new photo')}, {common.plural(report.faces_added, 'face')} found"
    what = []
    if report.people_before and (report.faces_added or report.assigned):
        what.append(f"{report.assigned} joined the {common.plural(report.people_before, 'person', 'people')} found before")
    if report.new_people:
        what.append(f"{common.plural(report.new_people, 'new person', 'new people')} "
                    f"({common.plural(report.new_people_faces, 'face')})")
    elif report.faces_added:
        what.append("no new people")
    unsorted = f"{common.plural(len(report.unsorted), 'face')} unsorted"
    return f"{head}: " + "; ".join([*what, unsorted]) if what else f"{head}; {unsorted}"


@app.command()
def cluster(
    ctx: typer.Context,
    folders: list[Path] = typer.Argument(..., help="Photos or folders of photos (searched recursively)."),
    sheets_dir: Optional[Path] = typer.Option(None, "--out", help="Write a contact sheet (JPEG) per person into DIR."),
    keep_thumbnails: bool = KeepThumbnailsOpt,
    min_score: Optional[float] = MinScoreOpt,
    jobs: Optional[int] = JobsOpt,
    dask: Optional[str] = common.DaskOpt,
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
        with common.on_dask(dask), common.open_gallery(ctx, create=True) as gallery, \
                common.progress(common.show_progress(as_json, len(paths))) as bar:
            gallery.thumbnails = keep_thumbnails
            common.tune_analyzer(gallery.analyzer, min_score)
            people = _people(gallery)
            tasks: dict[str, Any] = {}

            def advance(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            report = people.add_photos(paths, jobs=workers, progress=advance)
            sheets = [str(p) for p in people.write_contact_sheets(sheets_dir)] if sheets_dir else []
        if as_json:
            print(json.dumps({**report.to_dict(), "contact_sheets": sheets}))
            if report.errors:  # as `embed` does: the run went on, but a file failed
                raise typer.Exit(common.EXIT_FAILED)
            return
        table = common.ResultTable("person", "faces", "photos (first 3)", keep=["person"])
        for p in report.people:
            table.add_row(p.label, str(len(p.faces)), ", ".join(Path(f.path).name for f in p.faces[:3]))
        table.print()
        out.print(escape(_summary(report)))
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
        table = common.ResultTable("name", "faces", "metadata", "updated (UTC)", keep=["name"])
        for s in subjects:
            table.add_row(s.name, str(s.face_count), json.dumps(s.metadata) if s.metadata else "", common.when(s.updated_at))
        table.print()
        out.print(common.plural(len(subjects), "person", "people"))


@people_app.command("show")
def people_show(ctx: typer.Context, name: str = PersonArg, as_json: bool = JsonOpt) -> None:
    """One person: their enrolled faces, and the photo faces of the clustered person (#ID)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        who = _people(gallery).lookup(name)
        subject, person = who.subject, who.person
        faces = gallery.templates_by_id(subject.id) if subject is not None else []
        if as_json:
            doc = subject.to_dict() if subject is not None else {"name": None, "face_count": 0}
            print(json.dumps({**doc, "label": who.label, "faces": [t.to_dict() for t in faces],
                              "person": person.to_dict() if person is not None else None}))
            return
        if subject is not None:
            meta = f"  {json.dumps(subject.metadata)}" if subject.metadata else ""
            out.print(escape(f"{subject.name}  ({common.plural(subject.face_count, 'enrolled face')}){meta}"))
            for t in faces:
                quality = f"  quality {t.quality:.2f}" if t.quality is not None else ""
                out.print(escape(f"  face {t.id}: {t.source or t.image_sha256[:12]}{quality}"))
        if person is not None:
            out.print(escape(f"#{person.id}{' (' + person.name + ')' if person.name else ''}: "
                             f"{common.plural(len(person.faces), 'photo face')} clustered from photos"))
            for f in person.faces:
                out.print(escape(f"  photo face {f.id}: {f.path}  quality {f.quality:.2f}"
                                 + (f"  ({f.assigned_by})" if f.assigned_by else "")))


@people_app.command("rename")
def people_rename(ctx: typer.Context, old: str = PersonArg, new: str = typer.Argument(..., help="The new name."),
                  as_json: bool = JsonOpt) -> None:
    """Rename a person (an unnamed clustered person #ID is named, as `people name` does)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        people = _people(gallery)
        who = people.lookup(old)
        if who.subject is None and who.person is not None:
            subject = gallery.subject(people.name(who.person.id, new).label)
        else:
            subject = gallery.rename(who.label, new)
        if as_json:
            print(json.dumps(subject.to_dict()))
        else:
            out.print(escape(f"renamed {old} -> {subject.name}"))


@people_app.command("merge")
def people_merge(ctx: typer.Context, source: str = PersonArg, target: str = PersonArg, as_json: bool = JsonOpt) -> None:
    """Move SOURCE's faces to TARGET and remove SOURCE (names, or #ID for clustered people)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        people = _people(gallery)
        for ref in (source, target):  # both must exist (else: did you mean ...?) before anything moves
            people.lookup(ref)
        if _is_cluster_id(source) or _is_cluster_id(target):
            person = people.merge(source, target)
            if as_json:
                print(json.dumps(person.to_dict()))
            else:
                out.print(escape(f"merged {source} into {person.label} ({common.plural(len(person.faces), 'face')})"))
            return
        # Through People: a subject that is a clustered person also enrols its matched photo faces.
        subject = people.merge_subjects(source, target)
        if as_json:
            print(json.dumps(subject.to_dict()))
        else:
            out.print(escape(f"merged {source} into {subject.name} ({common.plural(subject.face_count, 'face')})"))


@people_app.command("forget")
def people_forget(ctx: typer.Context, name: str = PersonArg, yes: bool = YesOpt, as_json: bool = JsonOpt) -> None:
    """Forget a person (a name, or #ID of a clustered person): all their faces, for good.

    Templates, photo faces, thumbnails and index entries are deleted in one go.

    Asks first at a terminal; --yes does not ask (and is needed where there is no terminal)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        people = _people(gallery)
        who = people.lookup(name)
        confirm_deletion(_describe(who), yes)
        removed = people.forget(name) if _is_cluster_id(name) else gallery.forget(name)
        if as_json:
            print(json.dumps({"forgotten": name, "faces_removed": removed}))
        else:
            out.print(escape(f"forgot {who.label} ({common.plural(removed, 'face')} removed)"))


@people_app.command("delete-face")
def people_delete_face(ctx: typer.Context, face_id: int, yes: bool = YesOpt, as_json: bool = JsonOpt) -> None:
    """Delete one enrolled face by its id (see `people show`).

    Asks first at a terminal; --yes does not ask (and is needed where there is no terminal)."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        template = gallery.template(face_id)
        owner = gallery.subject_by_id(template.subject_id).name
        confirm_deletion(f"delete enrolled face {face_id} of {owner} ({template.source or template.image_sha256[:12]})",
                         yes)
        gallery.delete_face(face_id)
        if as_json:
            print(json.dumps({"deleted_face": face_id}))
        else:
            out.print(escape(f"deleted face {face_id} of {owner}"))


# --- people found by `faceprint cluster` -------------------------------------------------------
def _face_ids(ids: list[int]) -> str:
    """The first :data:`FACE_IDS_SHOWN` ids, then how many more."""
    shown = ", ".join(str(i) for i in ids[:FACE_IDS_SHOWN])
    more = len(ids) - FACE_IDS_SHOWN
    return f"{shown} … and {more} more" if more > 0 else shown


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
            out.print(escape(f"{p.label:>16}  {common.plural(len(p.faces), 'face')}  face ids {_face_ids([f.id for f in p.faces])}"))
        if unsorted:
            out.print(escape(f"{'unsorted':>16}  {common.plural(len(unsorted), 'face')}  face ids "
                             f"{_face_ids([f.id for f in unsorted])}"))
        out.print(f"{common.plural(len(found), 'person', 'people')}, {common.plural(len(unsorted), 'unsorted face')}")


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
                now = f"now in #{q.current_id}" if q.current_id is not None else "unsorted"
                out.print(f"is face {q.face_id} #{q.person_id}?  ({now}; score {q.score:.4f}; "
                          f"`people move {q.face_id} #{q.person_id}` or `people not {q.face_id} #{q.person_id}`)")
            else:
                out.print(f"are #{q.other_id} and #{q.person_id} one person?  (score {q.score:.4f}, "
                          f"{common.plural(q.impact, 'face')}; `people merge #{q.other_id} #{q.person_id}`)")
        if not questions:
            out.print("nothing to ask")


@people_app.command("face")
def people_face(
    ctx: typer.Context,
    face_id: int = typer.Argument(..., help="A photo face id (see `people clusters`, `people show #ID`)."),
    dest: Path = typer.Option(..., "--out", "-o", help="The JPEG file to write.", dir_okay=False),
    as_json: bool = JsonOpt,
) -> None:
    """Write the picture of one clustered face: the one kept (--keep-thumbnails), else cut from its photo."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        people = _people(gallery)
        face = people.face(face_id)
        picture = people.face_picture(face_id)
        try:
            dest.write_bytes(picture)
        except OSError as exc:
            raise InvalidArgumentError(f"cannot write {dest}: {exc.strerror or exc}", details={"out": str(dest)}) from None
        if as_json:
            print(json.dumps({**face.to_dict(), "person_id": face.person_id, "out": str(dest)}))
        else:
            where = f"#{face.person_id}" if face.person_id is not None else "unsorted"
            out.print(escape(f"face {face_id} ({where}, {face.path}) -> {dest}"))


@people_app.command("name")
def people_name(ctx: typer.Context, person: str, name: str, as_json: bool = JsonOpt) -> None:
    """Name a clustered person (#ID): it becomes an enrolled subject that `identify` knows."""
    with common.errors_to_exit(as_json), common.open_gallery(ctx) as gallery:
        named = _people(gallery).name(person, name)
        if as_json:
            print(json.dumps(named.to_dict()))
        else:
            out.print(escape(f"#{named.id} is now {named.name} ({common.plural(len(named.faces), 'face')})"))


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
