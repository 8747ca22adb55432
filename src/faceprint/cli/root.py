"""The root of the ``faceprint`` command line: the global options, and every command group
assembled into one Typer app (as Typer's docs show for an app in several files).

The command groups (:mod:`.images`, :mod:`.gallery`, :mod:`.evaluation`, :mod:`.service`,
:mod:`.people`, :mod:`.encryption`) import only :mod:`.common`; only this module knows them all. The order in
which they are added is the order ``faceprint --help`` lists the commands in.
"""

from __future__ import annotations

from typing import Any, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

import faceprint
from faceprint import settings
from faceprint.cli import encryption, evaluation, gallery, images, liveness, people, service, video
from faceprint.cli.common import GlobalOptions, out

HELP = "Detect, align, embed, verify and identify faces. Thresholds are tied to a stated false-accept rate."


# --- help pages ----------------------------------------------------------------------------------
# Typer's help shows a type after every parameter, flags included (`--json <bool>`), and an
# argument by its Python name in braces (`{images}...`). These classes show flags bare and an
# argument as click always did (`IMAGES...`, `[PACK]`); the root swaps them in for every command
# it assembles (a Typer app takes a command class per decorator, not one for the whole tree).
# ``ctx: Any``: the contexts are those of the click Typer vendors, which it does not export.
class HelpOption(TyperOption):
    """An option whose help shows no value after a flag: ``--json``, not ``--json <bool>``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.is_flag else super().display_type_rich(ctx)


class HelpArgument(TyperArgument):
    """An argument shown by its metavar (``IMAGES...``): in the usage line, bare when required
    and in brackets when not, as click does; with no type after a list of them."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.nargs != 1 else super().display_type_rich(ctx)

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or self.display_name_raw
        if self.required:
            return [name]
        return [f"[{name.removesuffix('...')}]" + ("..." if name.endswith("...") else "")]


class HelpCommand(TyperCommand):
    """A command whose ``--help`` option is a :class:`HelpOption` too."""

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            tidy_param(option)
        return option


class HelpGroup(TyperGroup):
    """A command group whose ``--help`` is a :class:`HelpOption`; the root one tidies the
    help of every command below it when it is built (see :func:`tidy_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            tidy_param(option)
        return option


def tidy_param(param: object) -> None:
    """Make ``param`` a :class:`HelpOption` or :class:`HelpArgument` (an argument gets its name in
    capitals as its metavar, ``...`` after a list); anything else stays as it is."""
    if type(param) is TyperOption:
        param.__class__ = HelpOption
    elif type(param) is TyperArgument:
        param.__class__ = HelpArgument
        if param.metavar is None:
            param.metavar = (param.name or "").upper() + ("..." if param.nargs != 1 else "")


def tidy_help(command: object) -> None:
    """Give ``command``, its parameters and every command below it the help classes above."""
    if type(command) is TyperCommand:
        command.__class__ = HelpCommand
    elif type(command) is TyperGroup:
        command.__class__ = HelpGroup
    for param in getattr(command, "params", ()):
        tidy_param(param)
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def print_version(value: bool) -> None:
    """``--version``: the package version and the default models, on one line."""
    if not value:
        return
    from faceprint.models.defaults import default_models

    chosen = default_models()
    out.print(f"faceprint {faceprint.__version__} (default models: {chosen.detector} + {chosen.landmarks} + "
              f"{chosen.embedder})")
    raise typer.Exit()


app = typer.Typer(
    name="faceprint",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=HelpGroup,
)


@app.callback()
def global_options(
    ctx: typer.Context,
    gallery_file: Optional[str] = typer.Option(
        None, "--gallery", envvar=settings.GALLERY, metavar="PATH|URL",
        help="Gallery: a SQLite file (default: gallery.db in your user data folder) or a PostgreSQL URL "
        "(postgresql://user@host/db).",
    ),
    _version: bool = typer.Option(
        False, "--version", is_eager=True, callback=print_version, help="Print the version and the default models, and exit.",
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
app.add_typer(video.app)  # watch
app.add_typer(liveness.app)  # liveness
# ... then the command groups.
app.add_typer(people.people_app, name="people")
encryption.register(gallery.gallery_app)  # gallery init, encrypt, rotate-key, encryption
app.add_typer(gallery.gallery_app, name="gallery")
app.add_typer(evaluation.eval_app, name="eval")
app.add_typer(service.keys_app, name="keys")


def main() -> None:
    """The ``faceprint`` console script."""
    app()
