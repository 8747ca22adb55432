"""The bottom of the ``faceprint`` command line: what every command group shares.

Consoles, the shared options (``--json``, ``--detector``, ``--jobs`` ...), the one ``--jobs``
rule, the mapping of errors to a one-line message and an exit status, the progress bar, the
user's ONNX files, and the gallery the global ``--gallery`` names. The command modules import
this module and nothing else of the CLI; the root (:mod:`faceprint.cli.root`) assembles them.

Exit status: 0 success; 1 a faceprint error (for detect/embed: at least one file failed,
every file still has its entry); 2 a usage error: a bad option or value (``invalid_argument``,
``unknown_model``) or a gallery that does not exist (``gallery_not_found``); 3 an unexpected
internal error; 130 interrupted (Ctrl-C).

Galleries: only the commands that add to a gallery (``enroll``, ``cluster``, ``gallery import``,
``keys create``; and ``gallery init``, made for it) create one, and say so on stderr; every
other command needs the gallery to exist (:func:`existing_gallery_path`, :func:`open_gallery`),
so a mistyped ``--gallery`` is an error, never a new empty gallery.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from faceprint import settings
from faceprint.errors import FaceprintError, GalleryNotFoundError, InvalidArgumentError, UnknownModelError

if TYPE_CHECKING:
    from faceprint.gallery import Gallery
    from faceprint.models import ModelCard
    from faceprint.pipeline import Analyzer

logger = logging.getLogger(__name__)

#: Results and tables (stdout) and messages, warnings and progress (stderr).
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

# --- shared options -----------------------------------------------------------------------------
JsonOpt: Any = typer.Option(False, "--json", help="Print exactly one JSON document on stdout.")
DetectorOpt: Any = typer.Option(
    None, "--detector", "-d",
    help="Detector name (default: the one the embedder was calibrated with; see `faceprint models`).",
)
ModelOpt: Any = typer.Option(
    None, "--model", "-m", help="Embedding model name (default: the best installed; see `faceprint models`)."
)
ModelFileOpt: Any = typer.Option(
    None, "--model-file", help="An ArcFace-style ONNX embedder file (NAME.json beside it, if any, gives its settings).",
)
DetectorFileOpt: Any = typer.Option(
    None, "--detector-file", help="An SCRFD-format ONNX detector file (NAME.json beside it, if any, gives settings).",
)
ModelsDirOpt: Any = typer.Option(
    None, "--models-dir", envvar=settings.MODELS_DIR,
    help="Register every .onnx model in this folder (and its NAME.json sidecars) as onnx:NAME.",
)
UpsampleOpt: Any = typer.Option(
    None, "--upsample", min=0, max=3, help="Upsample the image N times before detecting (default: only small images, once)."
)
LandmarksOpt: Any = typer.Option(
    None, "--landmarks",
    help="Landmark model run on the detector's boxes (default: the one the embedder was calibrated with).",
)

MinScoreOpt: Any = typer.Option(
    None, "--min-score",
    help="Drop faces the detector scores below this (default: the detector's own, measured to drop its false "
    "positives: `faceprint models --json`; 0 keeps what the detector gives).",
)
CalibrationOpt: Any = typer.Option(
    None, "--calibration", metavar="CARD.json",
    help="Decide --far thresholds with this calibration card (`faceprint calibrate --out`) instead of the "
    "model's own; every result names it (threshold_source card:FILE).",
)
#: Below this many files the default is to run in-process: starting workers costs ~1 s.
SMALL_BATCH = 8
JobsOpt: Any = typer.Option(
    None, "--jobs", "-j", min=0,
    help=f"Worker processes that decode and detect in parallel (default, or 0: the CPU cores, or none for "
    f"fewer than {SMALL_BATCH} files; 1: no workers).",
)
#: Off by default: a face picture is raw biometric data (the web page shows a placeholder).
KeepThumbnailsOpt: Any = typer.Option(
    False, "--keep-thumbnails",
    help="Also store a small JPEG of each face in the gallery (off by default: face pictures are biometric data).",
)


def jobs_for(jobs: int | None, n_files: int | None = None) -> int:
    """The one ``--jobs`` rule: the number given, else the usable cores -- but no workers for a
    batch known to hold fewer than :data:`SMALL_BATCH` files (starting workers costs ~1 s).
    ``n_files=None``: the size is not known here (the evaluation commands read their CSV in the
    library), so the cores. ``0`` is the default, as ``--jobs 0`` always meant for ``eval``."""
    chosen = jobs or (1 if n_files is not None and n_files < SMALL_BATCH else settings.usable_cores())
    logger.debug("--jobs %s for %s file(s): %d process(es)", jobs, "?" if n_files is None else n_files, chosen)
    return chosen


# --- errors -> message and exit status -----------------------------------------------------------
#: Errors that say the command line cannot work as given (exit 2, like the parser's own).
USAGE_ERRORS: tuple[type[FaceprintError], ...] = (InvalidArgumentError, UnknownModelError, GalleryNotFoundError)


def exit_status(exc: FaceprintError) -> int:
    """2 for a usage error (:data:`USAGE_ERRORS`), else 1."""
    return EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILED


def fail(error: dict[str, Any], as_json: bool, code: int) -> NoReturn:
    """Report ``error`` (``{"code", "message"}``) -- as JSON on stdout with --json, else one line
    on stderr -- and exit with ``code``."""
    if as_json:
        print(json.dumps({"error": error}))
    else:
        # Messages quote user input (paths, names) and install lines: never read them as markup.
        # One line, however long (soft_wrap): a script's log keeps it whole and greppable.
        err.print(f"[bold red]error[/] ({escape(str(error['code']))}): {escape(str(error['message']))}", markup=True,
                  highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def internal_error(exc: BaseException, hint: bool = True) -> dict[str, Any]:
    """The ``{"code", "message"}`` of an unexpected exception."""
    message = f"{type(exc).__name__}: {exc}" + (" (set FACEPRINT_DEBUG=1 for details)" if hint else "")
    return {"code": "internal_error", "message": message}


@contextmanager
def errors_to_exit(as_json: bool) -> Iterator[None]:
    """One-line messages instead of tracebacks (JSON errors on stdout with --json): a faceprint
    error exits 1 (2 for a usage error, see :func:`exit_status`), anything unexpected 3 (or
    raises, with ``FACEPRINT_DEBUG=1``)."""
    try:
        yield
    except FaceprintError as exc:
        fail(exc.to_dict(), as_json, exit_status(exc))
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a CLI
        if settings.debug():
            raise
        logger.debug("unexpected error", exc_info=True)
        fail(internal_error(exc), as_json, EXIT_INTERNAL)


def close_iterator(iterator: Iterator[Any]) -> None:
    """Stop a batch the library is streaming (its worker processes end with it); the batch
    functions are generators, though typed as iterators."""
    if isinstance(iterator, Generator):
        iterator.close()


# --- progress ------------------------------------------------------------------------------------
class RateColumn(ProgressColumn):
    """Images a second, once known."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f} img/s" if task.speed else "")


def progress(enabled: bool) -> Progress:
    """A progress bar with rate and ETA on stderr, only for people at a terminal."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
        console=err, disable=not enabled, transient=True, redirect_stdout=False, redirect_stderr=False,
    )


def show_progress(as_json: bool, n_items: int | None = None) -> bool:
    """Whether to draw a bar: never with --json, only at a terminal, and not for one item."""
    return not as_json and (n_items is None or n_items > 1) and err.is_terminal


# --- --far and --threshold ------------------------------------------------------------------------
def check_decision(card: ModelCard, far: float | None, threshold: float | None) -> None:
    """Check ``--far`` / ``--threshold`` against the embedder ``card`` before any image is read,
    with messages that name the flags (the library's name its parameters, ``far=``)."""
    from faceprint.pipeline import DEFAULT_FAR

    if far is not None and threshold is not None:
        raise InvalidArgumentError("give --far or --threshold, not both", details={"far": far, "threshold": threshold})
    if threshold is not None:
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise InvalidArgumentError(f"--threshold is a cosine similarity in [-1, 1]; got {threshold:g}",
                                       details={"threshold": threshold})
        return
    if far is not None and not (math.isfinite(far) and 0.0 < far < 1.0):
        raise InvalidArgumentError(f"--far must be in (0, 1); got {far:g}", details={"far": far})
    if card.calibration is None or not card.calibration.thresholds:
        raise InvalidArgumentError(
            f"{card.name} has no calibrated thresholds, so no FAR can be turned into one; give --threshold "
            "(a cosine similarity)", details={"model": card.id},
        )
    wanted = DEFAULT_FAR if far is None else far
    try:
        card.threshold_for(wanted)
    except InvalidArgumentError as exc:  # outside the calibrated range
        fars = sorted(card.calibration.thresholds)
        raise InvalidArgumentError(
            f"--far {wanted:g} is outside the range {card.name} was calibrated for ({fars[0]:g} to {fars[-1]:g}); "
            "give --threshold instead", details=exc.details,
        ) from None


# --- models from files ---------------------------------------------------------------------------
def file_models(
    models_dir: Path | None,
    detector: str | None,
    detector_file: Path | None,
    model: str | None = None,
    model_file: Path | None = None,
) -> tuple[str | None, str | None]:
    """Register the ONNX files given (``--models-dir``, ``--detector-file``, ``--model-file``);
    the (detector, embedder) names to use (None: the default, see :mod:`faceprint.models.defaults`)."""
    from faceprint.models.onnx import load_models_dir, register_onnx_model

    if models_dir is not None:
        load_models_dir(models_dir)
    if detector_file is not None:
        if detector is not None:
            raise InvalidArgumentError("give --detector or --detector-file, not both")
        detector = register_onnx_model(detector_file, kind="detector").name
    if model_file is not None:
        if model is not None:
            raise InvalidArgumentError("give --model or --model-file, not both")
        model = register_onnx_model(model_file, kind="embedder").name
    return detector, model


def tune_analyzer(analyzer: Analyzer, min_score: float | None = None, calibration: Path | None = None) -> None:
    """Apply ``--min-score`` and ``--calibration`` to ``analyzer`` (a command's, or its gallery's)."""
    from faceprint.evaluation.calibrate import read_card
    from faceprint.pipeline import check_min_score

    if min_score is not None:
        analyzer.min_score = check_min_score(min_score)
    if calibration is not None:
        analyzer.use_calibration(read_card(calibration))


def note_default_models(as_json: bool, *names: str | None) -> None:
    """When a person at a terminal runs the default models and a better pack is not installed,
    say how to install it: one line on stderr; never with --json or in a pipe or a script, whose
    readers want the command's own output alone."""
    from faceprint.models.defaults import upgrade_hint

    if as_json or not err.is_terminal or any(name is not None for name in names):
        return
    hint = upgrade_hint()
    if hint:
        err.print(f"note: {escape(hint)}", style="dim", markup=True, highlight=False, soft_wrap=True)


# --- the global options and the gallery ----------------------------------------------------------
@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command (``faceprint --gallery G COMMAND``), in ``ctx.obj``."""

    gallery: Path | None = None


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The root's options; defaults when a command group runs on its own (as in unit tests)."""
    options = ctx.find_object(GlobalOptions)
    return options if options is not None else GlobalOptions()


def gallery_path(ctx: typer.Context, override: Path | None = None) -> Path:
    """The gallery file: ``override`` (a command's own --gallery), the global --gallery (or
    ``$FACEPRINT_GALLERY``), else the default in the user's data folder."""
    return override or global_options(ctx).gallery or settings.gallery_path()


def gallery_exists(path: Path) -> bool:
    """Whether something is at ``path`` (a path that cannot even be looked at counts as there:
    opening it then says why)."""
    try:
        return path.exists()
    except OSError:
        return True


def existing_gallery_path(ctx: typer.Context, override: Path | None = None, *,
                          create_with: str = "enroll NAME IMAGE...") -> Path:
    """The gallery file (see :func:`gallery_path`), which must exist: else
    :class:`~faceprint.errors.GalleryNotFoundError` naming the path and the command that makes a
    gallery there (``faceprint --gallery PATH`` + ``create_with``). Nothing is created."""
    path = gallery_path(ctx, override)
    if gallery_exists(path):
        return path
    how = f"faceprint --gallery {path} {create_with}"
    if override is not None or global_options(ctx).gallery is not None:
        message = f"no gallery at {path} (nothing was created): check the path, or create one with `{how}`"
    else:
        message = (f"no gallery yet at {path} (the default; name another with --gallery or ${settings.GALLERY}): "
                   f"create one with `{how}`")
    raise GalleryNotFoundError(message, details={"path": str(path)})


def some_file_exists(paths: list[str]) -> None:
    """Before a writing command creates a gallery: refuse a list in which no file exists (a
    mistyped name), with ``invalid_argument`` naming them. One missing file among others is
    that file's own problem, reported with the rest."""
    if paths and not any(Path(p).is_file() for p in paths):
        shown = ", ".join(paths[:3]) + (f" (and {len(paths) - 3} more)" if len(paths) > 3 else "")
        raise InvalidArgumentError(f"no such file: {shown}", details={"paths": paths[:100]})


def note_created(path: Path) -> None:
    """Say on stderr (never in the --json document on stdout) that a command made a new gallery."""
    err.print(f"created a new gallery at {escape(str(path))}", markup=True, highlight=False, soft_wrap=True)


def open_gallery(ctx: typer.Context, create: bool = False) -> Gallery:
    """The gallery the command line names (see :func:`gallery_path`). It must exist unless
    ``create`` (only for the commands that add to it); a new one is announced on stderr."""
    from faceprint.gallery import Gallery

    if not create:
        return Gallery.open(existing_gallery_path(ctx), create=False)
    path = gallery_path(ctx)
    new = not gallery_exists(path)
    gallery = Gallery.open(path, create=True)
    if new:
        note_created(path)
    return gallery
