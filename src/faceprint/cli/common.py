"""The bottom of the ``faceprint`` command line: what every command group shares.

Consoles, the shared options (``--json``, ``--detector``, ``--jobs`` ...), the one ``--jobs``
rule, the mapping of errors to a one-line message and an exit status, the progress bar, the
user's ONNX files, and the gallery the global ``--gallery`` names. The command modules import
this module and nothing else of the CLI; the root (:mod:`faceprint.cli.root`) assembles them.

Exit status: 0 success; 1 a faceprint error (for detect/embed: at least one file failed,
every file still has its entry); 2 a usage error: a bad option or value (``invalid_argument``,
``unknown_model``) or a gallery or video that does not exist (``gallery_not_found``,
``video_not_found``: a mistyped path either way); 3 an unexpected
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
import os
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich import box
from rich.cells import cell_len
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
from rich.table import Table
from rich.text import Text

from faceprint import settings
from faceprint.errors import (
    FaceprintError,
    GalleryNotFoundError,
    InvalidArgumentError,
    UnknownModelError,
    VideoNotFoundError,
)

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
DaskOpt: Any = typer.Option(
    None, "--dask", metavar="tcp://HOST:PORT",
    help="Decode, detect and embed on this Dask scheduler's workers (default: $FACEPRINT_DASK, else local "
    "processes); they read the images at the same paths (a shared file system). Needs faceprint[dask].",
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


@contextmanager
def on_dask(address: str | None) -> Iterator[None]:
    """Within the block the batch pipeline runs on the Dask scheduler at ``address`` (``--dask``),
    else ``$FACEPRINT_DASK``; with neither, on the local worker pool (``--jobs``)."""
    address = address or settings.dask_address()
    if not address:
        yield
        return
    from faceprint.batch import using_engine
    from faceprint.dask_engine import DaskEngine

    with DaskEngine.connect(address) as engine, using_engine(engine):
        yield


# --- errors -> message and exit status -----------------------------------------------------------
#: Errors that say the command line cannot work as given (exit 2, like the parser's own).
USAGE_ERRORS: tuple[type[FaceprintError], ...] = (InvalidArgumentError, UnknownModelError, GalleryNotFoundError,
                                                  VideoNotFoundError)


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

    #: As given: a file's path or a database URL (see :func:`gallery_path`).
    gallery: str | None = None


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The root's options; defaults when a command group runs on its own (as in unit tests)."""
    options = ctx.find_object(GlobalOptions)
    return options if options is not None else GlobalOptions()


def gallery_path(ctx: typer.Context, override: str | Path | None = None) -> Path | str:
    """The gallery: ``override`` (a command's own --gallery), the global --gallery (or
    ``$FACEPRINT_GALLERY``), else the default in the user's data folder. A file's path, or a
    database URL as text (``postgresql://...``)."""
    from faceprint.gallery.storage.locate import parse_location

    given = override or global_options(ctx).gallery
    return parse_location(given) if given else settings.gallery_path()


def shown_gallery(location: str | Path) -> str:
    """A gallery's location fit to print: a URL's password is never shown."""
    from faceprint.gallery.storage.locate import describe_location

    return describe_location(location)


def gallery_exists(location: str | Path) -> bool:
    """Whether a gallery file is there (see :func:`faceprint.gallery.location_exists`; a database
    URL counts as there: opening it says whether it holds a gallery)."""
    from faceprint.gallery.storage.locate import location_exists

    return location_exists(location)


def gallery_holds_one(location: str | Path) -> bool:
    """Whether a gallery is already there: a file exists, or a database holds faceprint's tables
    (it is connected to, and nothing is created)."""
    from faceprint.gallery.storage.locate import is_database_url, open_store

    if not is_database_url(location):
        return gallery_exists(location)
    try:
        open_store(location, create=False).close()
    except GalleryNotFoundError:
        return False
    return True


def existing_gallery_path(ctx: typer.Context, override: str | Path | None = None, *,
                          create_with: str = "enroll NAME IMAGE...") -> Path | str:
    """The gallery (see :func:`gallery_path`), which must exist: else
    :class:`~faceprint.errors.GalleryNotFoundError` naming the path and the command that makes a
    gallery there (``faceprint --gallery PATH`` + ``create_with``). Nothing is created."""
    path = gallery_path(ctx, override)
    if gallery_exists(path):
        return path
    shown = shown_gallery(path)
    how = f"faceprint --gallery {shown} {create_with}"
    if override is not None or global_options(ctx).gallery is not None:
        message = f"no gallery at {shown} (nothing was created): check the path, or create one with `{how}`"
    else:
        message = (f"no gallery yet at {shown} (the default; name another with --gallery or ${settings.GALLERY}): "
                   f"create one with `{how}`")
    raise GalleryNotFoundError(message, details={"path": shown})


def some_file_exists(paths: list[str]) -> None:
    """Before a writing command creates a gallery: refuse a list in which no file exists (a
    mistyped name), with ``invalid_argument`` naming them. One missing file among others is
    that file's own problem, reported with the rest."""
    if paths and not any(Path(p).is_file() for p in paths):
        shown = ", ".join(paths[:3]) + (f" (and {len(paths) - 3} more)" if len(paths) > 3 else "")
        raise InvalidArgumentError(f"no such file: {shown}", details={"paths": paths[:100]})


def note_created(path: str | Path) -> None:
    """Say on stderr (never in the --json document on stdout) that a command made a new gallery."""
    err.print(f"created a new gallery at {escape(shown_gallery(path))}", markup=True, highlight=False, soft_wrap=True)


def open_gallery(ctx: typer.Context, create: bool = False) -> Gallery:
    """The gallery the command line names (see :func:`gallery_path`). It must exist unless
    ``create`` (only for the commands that add to it); a new one is announced on stderr."""
    from faceprint.gallery import Gallery

    if not create:
        return Gallery.open(existing_gallery_path(ctx), create=False)
    path = gallery_path(ctx)
    new = not gallery_holds_one(path)
    gallery = Gallery.open(path, create=True)
    if new:
        note_created(path)
    return gallery


# --- words and paths -----------------------------------------------------------------------------
def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 face"``, ``"2 faces"``: the count and the word it needs (``many``: an irregular
    plural, e.g. ``plural(n, "person", "people")``)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def when(timestamp: str | None) -> str:
    """A stored ISO 8601 time as ``2026-11-30 01:52`` in UTC (say "(UTC)" in the column's header);
    ``-`` for none; a value that is not a time, as it is."""
    if not timestamp:
        return "-"
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


class ShortPaths:
    """File paths shown relative to the folder the user named (the common folder of the command's
    arguments), so that a table at 80 columns shows ``RD/d1.jpeg``, not a path folded over five
    lines. ``base`` is that folder, ``None`` when it is the current one or the root (or the
    arguments share none: an absolute and a relative path): then paths are shown as given."""

    def __init__(self, arguments: Iterable[str | os.PathLike[str]]) -> None:
        folders = [str(p if p.is_dir() else p.parent) for p in map(Path, arguments)]
        try:
            base = os.path.commonpath(folders) if folders else ""
        except ValueError:  # absolute and relative paths together
            base = ""
        # Not the current folder (paths are shown as given), nor the root (as long as they are).
        self.base: str | None = base if base not in ("", os.curdir) and base != PurePath(base).anchor else None

    def __call__(self, path: str | os.PathLike[str]) -> str:
        if self.base is None:
            return str(path)
        shown = PurePath(path)
        return str(shown.relative_to(self.base)) if shown.is_relative_to(self.base) else str(path)

    @property
    def heading(self) -> str | None:
        """``"in FOLDER/"``, said above a table whose paths are shortened; None when they are not."""
        return None if self.base is None else f"in {self.base.rstrip(os.sep)}{os.sep}"


def find_image_files(arguments: list[Path]) -> list[str]:
    """The image files the arguments name (folders searched recursively, see
    :func:`faceprint.imageio.find_images`); an :class:`~faceprint.errors.InvalidArgumentError`
    (exit 2) when there are none, e.g. an empty folder: every command that reads images refuses
    alike, rather than printing an empty table."""
    from faceprint.imageio import find_images

    paths = find_images(arguments)
    if not paths:
        shown = ", ".join(map(str, arguments[:3])) + (f" (and {len(arguments) - 3} more)" if len(arguments) > 3 else "")
        raise InvalidArgumentError(f"no image files found in {shown}", details={"paths": [str(a) for a in arguments[:100]]})
    return paths


# --- tables --------------------------------------------------------------------------------------
#: The least room a column gets when the table is too wide for the terminal: a short value
#: (a similarity, a head pose) stays whole; wider ones wrap at spaces and fold longer words.
_WRAPPED_COLUMN_ROOM = 12
#: The narrowest a column gets to leave room for the names and paths of the ``keep`` columns.
_NARROWEST_COLUMN = 6


class ResultTable:
    """A table of results on stdout that reads at any width, 80 columns included.

    - Cells are plain text (names and paths are user input: never read as markup) or rich
      :class:`~rich.text.Text` for colour; ``None`` is an empty cell.
    - Nothing is ever cut with "…": a word too long for its column folds onto the next line.
    - The ``keep`` columns (names, paths), in that order, stay on one line whenever the table
      can fit them with some room for the others; the other columns wrap first.
    - Long messages (an error's text, why a face is unknown) go below the table as numbered
      notes (:meth:`note`), each wrapped under its number; the cell says ``(1)``.
    - No outer border: a path copied from a row is just the path.
    """

    def __init__(self, *columns: str, keep: Iterable[str] = (), title: str | None = None,
                 right: Iterable[str] = ()) -> None:
        self.columns = columns
        self.keep = tuple(keep)
        self.right = frozenset(right)
        self.title = title
        self.rows: list[list[Text]] = []
        self.notes: list[Text] = []
        unknown = (set(self.keep) | self.right) - set(columns)
        if unknown:
            raise ValueError(f"no such column(s): {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.rows)

    def add_row(self, *cells: str | Text | None) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([c if isinstance(c, Text) else Text(c or "") for c in cells])

    def note(self, text: str | Text) -> str:
        """Put ``text`` below the table; the marker to write in the row's cell, e.g. ``"(1)"``."""
        self.notes.append(text if isinstance(text, Text) else Text(text))
        return f"({len(self.notes)})"

    def _measure(self, index: int) -> tuple[int, int]:
        """Column ``index``'s longest line and longest word (its header's included)."""
        texts = [self.columns[index]] + [row[index].plain for row in self.rows]
        lines = [line for text in texts for line in text.split("\n")]
        words = [word for line in lines for word in line.split()]
        return max(map(cell_len, lines)), max(map(cell_len, words), default=0)

    def widths(self, width: int) -> list[int] | None:
        """Each column's width for a console ``width`` columns wide; None when every column
        fits whole. The ``keep`` columns get their longest line, the others their longest word
        (at most :data:`_WRAPPED_COLUMN_ROOM`: longer words fold); when that is still too wide,
        the others give room down to :data:`_NARROWEST_COLUMN` (or their header's longest word),
        then the kept ones, the last named first (one that must fold anyway falls back to the
        least a column gets); what is left goes first to the others whose longest word was cut,
        then to the columns not whole, in proportion to what they lack."""
        longest, word = zip(*(self._measure(i) for i in range(len(self.columns))))
        room = width - 2 * (len(self.columns) - 1)  # between two columns: a blank rule and a padding
        if sum(longest) <= room:
            return None
        kept = [self.columns.index(column) for column in self.keep]
        others = [i for i in range(len(self.columns)) if i not in kept]
        sizes = [longest[i] if i in kept else min(word[i], _WRAPPED_COLUMN_ROOM, longest[i]) for i in range(len(longest))]
        # The least a column may get: its header's longest word (never folded) or the floor.
        headed = [max(map(cell_len, c.split()), default=0) for c in self.columns]
        for giving, floor in ((others, _NARROWEST_COLUMN), (kept[::-1], _WRAPPED_COLUMN_ROOM)):
            least = [min(max(floor, header), longest[i]) for i, header in enumerate(headed)]
            for i in giving:  # the widest other first; the kept ones in reverse order of importance
                while sum(sizes) > room:
                    widest = max(giving, key=lambda j: sizes[j] - least[j]) if giving is others else i
                    if sizes[widest] <= least[widest]:
                        break
                    sizes[widest] -= 1
        for i in kept:  # one that folds anyway shares what is left with the others
            if sizes[i] < longest[i]:
                sizes[i] = min(sizes[i], _WRAPPED_COLUMN_ROOM)
        spare = room - sum(sizes)
        for i in others:  # first the others' words back whole, as far as there is room
            more = max(0, min(min(word[i], _WRAPPED_COLUMN_ROOM, longest[i]) - sizes[i], spare))
            sizes[i] += more
            spare -= more
        lacking = [longest[i] - sizes[i] if i not in kept or sizes[i] < longest[i] else 0 for i in range(len(sizes))]
        if spare > 0 and sum(lacking):
            shares = [spare * lack // sum(lacking) for lack in lacking]
            shares[lacking.index(max(lacking))] += spare - sum(shares)  # the rounding, to the neediest
            sizes = [size + min(share, lack) for size, share, lack in zip(sizes, shares, lacking)]
        return sizes

    def render(self, width: int) -> Table:
        """The rich table for a console ``width`` columns wide."""
        sizes = self.widths(width)
        table = Table(box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
        for i, column in enumerate(self.columns):
            table.add_column(column, overflow="fold", justify="right" if column in self.right else "left",
                             width=None if sizes is None else sizes[i])
        for row in self.rows:
            table.add_row(*row)
        return table

    def print(self, console: Console | None = None) -> None:
        """Print the table, then its notes (nothing for a table without rows or notes)."""
        console = console or out
        if self.rows:
            if self.title:  # a line of its own, never folded: it names a folder to copy whole
                console.print(Text(self.title, style="bold"), soft_wrap=True)
            console.print(self.render(console.width), soft_wrap=False)
        if self.notes:
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True, justify="right")
            grid.add_column(overflow="fold")
            for number, text in enumerate(self.notes, 1):
                grid.add_row(f"({number})", text)
            console.print(grid, soft_wrap=False)
