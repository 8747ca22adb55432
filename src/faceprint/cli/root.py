"""The root of the ``faceprint`` command line: the global options, and every command group
assembled into one Typer app (as Typer's docs show for an app in several files).

The command groups (:mod:`.images`, :mod:`.gallery`, :mod:`.evaluation`, :mod:`.service`,
:mod:`.people`, :mod:`.encryption`) import only :mod:`.common`; only this module knows them all. The order in
which they are added is the order ``faceprint --help`` lists the commands in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from faceprint import settings
from faceprint.cli import encryption, evaluation, gallery, images, people, service
from faceprint.cli.common import GlobalOptions

HELP = "Detect, align, embed, verify and identify faces. Thresholds are tied to a stated false-accept rate."

app = typer.Typer(
    name="faceprint",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def global_options(
    ctx: typer.Context,
    gallery_file: Optional[Path] = typer.Option(
        None, "--gallery", envvar=settings.GALLERY,
        help="Gallery database file (default: gallery.db in your user data folder).",
    ),
) -> None:
    """Detect, align, embed, verify and identify faces. Thresholds are tied to a stated false-accept rate."""
    ctx.obj = GlobalOptions(gallery=gallery_file)


# Top-level commands (unnamed groups merge their commands into the root) ...
app.add_typer(images.app)  # detect, embed, verify, models
app.add_typer(gallery.app)  # enroll, identify
app.add_typer(evaluation.app)  # calibrate
app.add_typer(service.app)  # serve
app.add_typer(people.app)  # cluster
# ... then the command groups.
app.add_typer(people.people_app, name="people")
encryption.register(gallery.gallery_app)  # gallery init, encrypt, rotate-key, encryption
app.add_typer(gallery.gallery_app, name="gallery")
app.add_typer(evaluation.eval_app, name="eval")
app.add_typer(service.keys_app, name="keys")


def main() -> None:
    """The ``faceprint`` console script."""
    app()
