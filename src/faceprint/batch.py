"""Many images at once: decode, detect and align in worker processes; embed in the parent.

:meth:`Analyzer.detect_many` and :meth:`Analyzer.embed_many` call :func:`analyze_many`;
``faceprint detect DIR`` / ``faceprint embed DIR`` call those with ``jobs`` = the CPU cores;
enrolment, clustering and the evaluation protocols use the same engine.

How the work is split (measured: bench/README.md, section 'Batch workers and embedding batches'):

* ``jobs`` worker *processes* each take one image at a time: read and decode it, run the
  detector and the landmark model, and cut the aligned chips the embedder wants. dlib's
  detector and shape predictor hold the GIL for the whole call, so threads would not run
  them in parallel; processes do.
* A worker sends back only the faces (boxes, landmarks, pose) and their chips (a 150x150x3
  ``uint8`` array a face for ``dlib-resnet34``), never the decoded image.
* The parent process embeds the chips of several images in one onnxruntime call, as soon as
  ``batch_size`` faces (or images) are waiting, or when the oldest of them has waited
  :data:`MAX_BATCH_WAIT` seconds while the workers are busy. With every core running a
  worker the machine is CPU-bound, and full batches cost the parent less CPU a face than
  embedding whatever is there whenever it waits; onnxruntime's threads take the time the
  workers leave. One worker per core is the best split measured: the parent needs only a
  fraction of a core, so ``cores - 1`` workers leave a core mostly idle, and ``cores + 1``
  only adds switching.
* Results come back **in input order**, one :class:`~faceprint.types.ImageAnalysis` per input,
  as they complete. A bad input gives an entry with ``error`` set and the run goes on.
* **Bounded memory:** at most ``in_flight`` images are read from the input and not yet given
  back to the caller -- at a worker, done and waiting their turn, or in the embedding batch
  (inputs are read from the iterable only as room frees up). The parent never holds a decoded
  image, only chips. A folder of 100,000 photos costs what a
  few dozen images cost, whatever the speed of the consumer.
* Workers are started with ``spawn`` (onnxruntime's and OpenCV's threads do not survive a
  ``fork``), so a script that calls this with ``jobs > 1`` needs the usual
  ``if __name__ == "__main__":`` guard. Each worker builds its own :class:`Analyzer` from the
  parent's configuration: model names, detection policy, image limits; models registered at
  run time (e.g. ONNX files) are registered in the worker too. Workers ignore SIGINT from
  their first instruction (see :func:`_starting_workers`): on Ctrl-C (``KeyboardInterrupt``
  in the parent), on any exception, and when the caller stops iterating early (``close()``
  on the generator), the parent drops the queued images, lets each worker finish its
  current one (see :func:`_stop`) and stops them.
* ``jobs=1`` runs everything in the calling process, with no pool; so does a program that
  cannot be re-imported by a spawned worker (read from stdin: :func:`can_spawn`).
* A ``transform`` (a picklable ``(label, rgb) -> rgb``) is applied to each decoded image
  before detection, in the worker: the evaluation's perturbations use it.
* **Another engine:** inside ``with using_engine(engine):`` (or with ``engine=``), the same
  calls run on a :class:`BatchEngine` instead -- :class:`faceprint.dask_engine.DaskEngine`
  runs decoding, detection, alignment *and* embedding on a Dask cluster -- and give the same
  results in the same order. What crosses to the engine's workers is this module's: the
  :class:`WorkerSetup` that rebuilds the Analyzer, :func:`batch_item` and
  :func:`prepare_items`.

This module sits above :mod:`faceprint.pipeline`, and plugs :func:`analyze_many` into it as
the engine of :meth:`Analyzer.detect_many` / :meth:`Analyzer.embed_many` when imported.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import multiprocessing.resource_tracker
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from faceprint import models
from faceprint.align import ChipSpec
from faceprint.errors import FaceprintError, InvalidArgumentError, UnknownModelError
from faceprint.imageio import ImageSource, describe_source, read_bytes
from faceprint.pipeline import Analyzer, use_engine
from faceprint.settings import usable_cores
from faceprint.types import EmbeddedFace, Face, ImageAnalysis

logger = logging.getLogger(__name__)

#: How worker processes are started. Not "fork": onnxruntime's thread pools and OpenCV's do
#: not survive it, and a forked child inherits whatever locks the parent's threads held.
START_METHOD = "spawn"

#: The longest a partial embedding batch waits for more faces while the workers are busy.
#: (Not flushing partial batches at once saves ~20% of the parent's CPU on small images.)
MAX_BATCH_WAIT = 0.25

#: On an interrupt, how long the workers may take to finish the image each is on.
DRAIN_TIMEOUT = 10.0

#: ``transform(label, rgb) -> rgb``: applied to each decoded image before detection (in the
#: worker; it must pickle, and give the same result wherever it runs).
Transform = Callable[[str, np.ndarray], np.ndarray]


def default_in_flight(jobs: int, batch_size: int) -> int:
    """Images read and not yet yielded (at the workers, done, or waiting in the embedding
    batch): enough to keep every worker busy while the parent embeds a full batch."""
    return 4 * jobs + 2 * batch_size


def can_spawn() -> bool:
    """Whether worker processes can be spawned: they re-import ``__main__``, which a program
    read from stdin (``python - < script.py``) cannot be."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One image after decoding, detection and alignment; what a worker sends back."""

    source: str
    image_size: tuple[int, int] | None
    faces: tuple[Face, ...] = ()
    #: ``(len(faces), size, size, 3)`` uint8 chips when embedding, else ``None``.
    chips: np.ndarray | None = None
    error: FaceprintError | None = None
    #: SHA-256 of the encoded image (of the pixels for an array), when asked for.
    sha256: str | None = None

    def analysis(self, faces: tuple[Face, ...] | tuple[EmbeddedFace, ...] = ()) -> ImageAnalysis:
        """The result for the caller: ``faces`` (embedded) instead of the detected ones."""
        return ImageAnalysis(self.source, faces or self.faces, self.image_size, self.error)


def image_sha256(source: bytes | np.ndarray) -> str:
    """The identity of an image: SHA-256 of its encoded bytes, or of an array's pixels and shape."""
    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes() + str(source.shape).encode()).hexdigest()
    return hashlib.sha256(source).hexdigest()


def prepare(analyzer: Analyzer, label: str, source: ImageSource, chip: ChipSpec | None,
            digest: bool = False, transform: Transform | None = None) -> Prepared:
    """Decode, (with ``transform``) alter, detect and (with ``chip``) align one image (with
    ``digest``, also hash it); a faceprint error becomes the entry's ``error``. Anything else
    is a bug and propagates."""
    sha = None
    try:
        if digest and not isinstance(source, np.ndarray):
            source = read_bytes(source, analyzer.limits)
            sha = image_sha256(source)
        rgb = analyzer.load(source)
        if digest and sha is None:
            sha = image_sha256(rgb)
        if transform is not None:
            rgb = analyzer.load(transform(label, rgb))  # checked like any array given
        faces = tuple(analyzer.detect_array(rgb))
        chips = None
        if chip is not None:
            if faces:
                chips = np.stack([analyzer.aligned_chip(rgb, f, chip) for f in faces])
            else:
                chips = np.zeros((0, chip.size, chip.size, 3), dtype=np.uint8)
        return Prepared(label, (rgb.shape[1], rgb.shape[0]), faces, chips, sha256=sha)
    except FaceprintError as exc:
        return Prepared(label, None, error=exc, sha256=sha)


def analyze_many(
    analyzer: Analyzer,
    images: Iterable[ImageSource],
    *,
    embed: bool,
    jobs: int | None = 1,
    in_flight: int | None = None,
    transform: Transform | None = None,
    engine: BatchEngine | None = None,
) -> Iterator[ImageAnalysis]:
    """One :class:`ImageAnalysis` per input, in input order (see the module docstring).

    ``jobs``: worker processes (``None``: one per usable CPU core; ``1``: none, all in this
    process). ``in_flight``: at most this many images between being read from ``images`` and
    being yielded (default :func:`default_in_flight`). ``transform``: see :data:`Transform`.
    ``engine``: see :func:`prepare_many`. Arguments are checked, and (locally) the embedder
    is loaded, before this returns.
    """
    return _analyses(prepare_many(analyzer, images, embed=embed, jobs=jobs, in_flight=in_flight,
                                  transform=transform, engine=engine))


def _analyses(pairs: Iterator[tuple[Prepared, ImageAnalysis]]) -> Iterator[ImageAnalysis]:
    try:
        for _, analysis in pairs:
            yield analysis
    finally:
        close = getattr(pairs, "close", None)
        if close is not None:
            close()  # stops the workers when the caller stops early


def prepare_many(
    analyzer: Analyzer,
    images: Iterable[ImageSource],
    *,
    embed: bool,
    jobs: int | None = 1,
    in_flight: int | None = None,
    digest: bool = False,
    transform: Transform | None = None,
    engine: BatchEngine | None = None,
) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    """:func:`analyze_many`, with each result's :class:`Prepared` beside it (the chips, and with
    ``digest`` the image's SHA-256): what enrolment needs to judge and store a face.

    ``engine`` (default: the one of :func:`using_engine`, if any) runs the work instead of
    the local worker pool; ``jobs`` and ``in_flight`` are then the engine's business."""
    engine = engine if engine is not None else current_engine()
    if engine is not None:
        return engine.prepare_many(analyzer, images, embed=embed, digest=digest, transform=transform)
    jobs = usable_cores() if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidArgumentError(f"jobs must be a positive integer (or None for all cores); got {jobs!r}")
    if isinstance(images, (list, tuple)):
        jobs = max(1, min(jobs, len(images)))
    in_flight = default_in_flight(jobs, analyzer.batch_size) if in_flight is None else in_flight
    if in_flight < 1:
        raise InvalidArgumentError(f"in_flight must be at least 1; got {in_flight!r}")
    chip = analyzer.embedder.chip if embed else None  # loads the embedder (and fails) now
    if jobs > 1 and not can_spawn():
        logger.info("running in this process: workers cannot re-import __main__ (a program read from stdin)")
        jobs = 1
    if jobs == 1:
        return _in_process(analyzer, images, chip, embed, digest, transform)
    setup = worker_setup(analyzer, transform)
    return _pooled(analyzer, images, chip, embed, jobs, in_flight, setup, digest)


# --- assembling results ----------------------------------------------------------------------
class _Batcher:
    """Turns :class:`Prepared` images into results, embedding their chips in batches."""

    def __init__(self, analyzer: Analyzer, embed: bool) -> None:
        self.analyzer = analyzer
        self.embed = embed
        self.pending: list[Prepared] = []
        self.n_faces = 0
        self.since = 0.0  # when the first of the pending images arrived

    def add(self, prepared: Prepared) -> Iterator[tuple[Prepared, ImageAnalysis]]:
        if not self.embed:
            yield prepared, prepared.analysis()
            return
        if not self.pending and not prepared.faces:  # nothing to embed, nothing queued before it
            yield prepared, prepared.analysis()
            return
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(prepared)
        self.n_faces += len(prepared.faces)
        if self.n_faces >= self.analyzer.batch_size or len(self.pending) >= self.analyzer.batch_size:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[Prepared, ImageAnalysis]]:
        if not self.pending:
            return
        pending, self.pending, self.n_faces = self.pending, [], 0
        chips = [c for p in pending if p.chips is not None and p.faces for c in p.chips]
        logger.debug("embedding %d faces of %d images", len(chips), len(pending))
        faces = [f for p in pending if p.chips is not None and p.faces for f in p.faces]
        embedded = self.analyzer.embed_chips(faces, chips) if chips else []
        i = 0
        for p in pending:
            yield p, p.analysis(tuple(embedded[i : i + len(p.faces)]))
            i += len(p.faces)


def _in_process(analyzer: Analyzer, images: Iterable[ImageSource], chip: ChipSpec | None, embed: bool,
                digest: bool, transform: Transform | None) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    return prepare_items(analyzer, ((describe_source(s), s) for s in images), chip, embed, digest, transform)


#: One input as sent to a worker: ``(label, payload)`` -- a path (the worker reads the file), an
#: array or bytes -- or a :class:`Prepared` that already failed (an unreadable file object).
BatchItem = tuple[str, ImageSource] | Prepared


def batch_item(analyzer: Analyzer, source: ImageSource) -> BatchItem:
    """``source`` made ready to send to a worker: a path stays a path (the worker reads it), an
    array is sent as is, bytes or a file object are read here (within the Analyzer's limits)."""
    label = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        return label, os.fspath(source)
    if isinstance(source, np.ndarray):
        return label, source
    try:
        return label, read_bytes(source, analyzer.limits)
    except FaceprintError as exc:
        return Prepared(label, None, error=exc)


def prepare_items(analyzer: Analyzer, items: Iterable[BatchItem], chip: ChipSpec | None, embed: bool,
                  digest: bool = False, transform: Transform | None = None) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    """Every item prepared (:func:`prepare`) and, with ``embed``, embedded in batches, in this
    process and in order: the ``jobs=1`` path, and what a remote worker runs on its chunk."""
    batcher = _Batcher(analyzer, embed)
    for item in items:
        prepared = item if isinstance(item, Prepared) else prepare(analyzer, item[0], item[1], chip, digest, transform)
        yield from batcher.add(prepared)
    yield from batcher.flush()


# --- another engine ----------------------------------------------------------------------------
@runtime_checkable
class BatchEngine(Protocol):
    """Runs :func:`prepare_many`'s work somewhere else (e.g. a Dask cluster) with the same
    contract: one ``(Prepared, ImageAnalysis)`` per input, in input order, a bad input an entry
    with ``error`` set; closing the iterator stops the outstanding work."""

    def prepare_many(self, analyzer: Analyzer, images: Iterable[ImageSource], *, embed: bool, digest: bool,
                     transform: Transform | None) -> Iterator[tuple[Prepared, ImageAnalysis]]: ...


_engine: ContextVar[BatchEngine | None] = ContextVar("faceprint_batch_engine", default=None)


def current_engine() -> BatchEngine | None:
    """The engine of the innermost :func:`using_engine` block, or None (the local pool)."""
    return _engine.get()


@contextmanager
def using_engine(engine: BatchEngine | None) -> Iterator[None]:
    """Within the block, every :func:`prepare_many` / :func:`analyze_many` (so enrolment,
    clustering, the evaluation protocols, ``Analyzer.embed_many``) in this thread runs on
    ``engine``; ``None`` changes nothing."""
    if engine is None:
        yield
        return
    token = _engine.set(engine)
    try:
        yield
    finally:
        _engine.reset(token)


# --- worker processes ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What a worker needs to rebuild the parent's Analyzer: its constructor arguments, the
    models registered at run time that it uses, and the transform. It pickles; the local pool's
    workers and a Dask worker plugin both :meth:`start` from it."""

    config: dict[str, Any]
    models: tuple[models.Registration, ...]
    transform: Transform | None

    def start(self) -> Analyzer:
        """In the worker: register the run-time models, build the Analyzer and load its
        detector and landmark models (a failure to load is left to each image to report)."""
        try:  # one core per worker: the parallelism is the workers
            import cv2

            cv2.setNumThreads(1)
        except Exception:  # pragma: no cover - cv2 is a dependency; be lenient all the same
            pass
        for entry in self.models:
            try:
                existing: models.ModelCard | None = models.get_card(entry.card.name)
            except UnknownModelError:
                existing = None
            if existing != entry.card:
                if existing is not None:
                    models.unregister(entry.card.name)
                models.register(entry.card, entry.factory)
        analyzer = Analyzer(**self.config)
        try:  # load the weights now rather than inside the first image
            _ = (analyzer.detector, analyzer.landmarker)
        except FaceprintError:
            pass  # reported per image, as the in-process path does
        return analyzer


def worker_setup(analyzer: Analyzer, transform: Transform | None = None) -> WorkerSetup:
    """The :class:`WorkerSetup` that rebuilds ``analyzer`` in a worker (and applies ``transform``);
    :class:`InvalidArgumentError` when one of its models cannot be sent to another process."""
    return WorkerSetup(analyzer.config(), _run_time_models(analyzer), transform)


_worker_analyzer: Analyzer | None = None
_worker_transform: Transform | None = None


def _run_time_models(analyzer: Analyzer) -> tuple[models.Registration, ...]:
    """The registrations of the Analyzer's models, to register in each worker: every process
    registers the built-in ones itself (the same card is skipped there), but models
    registered at run time (e.g. ONNX files) exist only where they were registered."""
    out = []
    for card in (analyzer.detector_card, analyzer.landmarks_card, analyzer.embedder_card):
        entry = models.registration(card.name)
        if entry is None:  # pragma: no cover - the Analyzer resolved the name
            continue
        try:
            pickle.dumps(entry)
        except Exception as exc:
            raise InvalidArgumentError(
                f"model {card.name!r} was registered with a loader that cannot be sent to worker "
                f"processes ({type(exc).__name__}: {exc}); use jobs=1",
                details={"model": card.name},
            ) from None
        out.append(entry)
    return tuple(out)


def _init_worker(setup: WorkerSetup) -> None:
    global _worker_analyzer, _worker_transform
    # The parent owns Ctrl-C. The worker was started with SIGINT blocked (see
    # _starting_workers); ignoring it discards one that arrived meanwhile.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_transform = setup.transform
    _worker_analyzer = setup.start()
    logger.debug("worker %d ready", os.getpid())


def _work(label: str, payload: ImageSource, chip: ChipSpec | None, digest: bool) -> Prepared:
    assert _worker_analyzer is not None, "worker not initialised"
    return prepare(_worker_analyzer, label, payload, chip, digest, _worker_transform)


Work = tuple[str, "Future[Prepared] | Prepared"]


def _submit(executor: ProcessPoolExecutor, analyzer: Analyzer, source: ImageSource,
            chip: ChipSpec | None, digest: bool) -> Work:
    item = batch_item(analyzer, source)
    if isinstance(item, Prepared):
        return item.source, item
    label, payload = item
    with _starting_workers():  # a submit may start a worker process
        return label, executor.submit(_work, label, payload, chip, digest)


def _pooled(
    analyzer: Analyzer,
    images: Iterable[ImageSource],
    chip: ChipSpec | None,
    embed: bool,
    jobs: int,
    in_flight: int,
    setup: WorkerSetup,
    digest: bool,
) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    executor = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context(START_METHOD),
        initializer=_init_worker,
        initargs=(setup,),
    )
    logger.info("worker pool: %d processes (%s), up to %d images in flight, embedding batches of %d",
                jobs, START_METHOD, in_flight, analyzer.batch_size)
    batcher = _Batcher(analyzer, embed)
    window: deque[Work] = deque()  # (label, work), in input order
    sources = iter(images)
    exhausted = finished = False
    n_done = 0
    try:
        while True:
            # Read ahead while fewer than in_flight images are read and not yet yielded.
            while not exhausted and len(window) + len(batcher.pending) < in_flight:
                try:
                    source = next(sources)
                except StopIteration:
                    exhausted = True
                    break
                window.append(_submit(executor, analyzer, source, chip, digest))
            if not window:
                if exhausted:
                    break
                yield from batcher.flush()  # the waiting batch holds all the room: embed it
                continue
            label, head = window[0]
            if isinstance(head, Future) and not head.done() and batcher.pending:
                left = batcher.since + MAX_BATCH_WAIT - time.monotonic()
                if left <= 0:
                    yield from batcher.flush()  # a partial batch: results should not wait longer
                    continue
                wait([head], timeout=left)
                continue
            window.popleft()
            if isinstance(head, Future):
                try:
                    head = head.result()
                except BrokenProcessPool:
                    raise RuntimeError(
                        "a faceprint worker process died (killed, out of memory, or crashed) while "
                        f"analysing {label} or one of the {len(window)} images after it"
                    ) from None
            n_done += 1
            yield from batcher.add(head)
        yield from batcher.flush()
        finished = True
    finally:
        _stop(executor, graceful=finished)
        logger.info("worker pool stopped after %d images (%s)", n_done, "done" if finished else "interrupted")


@contextmanager
def _starting_workers() -> Iterator[None]:
    """Around anything that may start a worker process (a submit may): a Ctrl-C (SIGINT; a
    terminal sends it to the whole process group) must not reach a worker before its
    initializer ignores it, nor interrupt this process in the middle of starting one. Either
    prints a traceback from multiprocessing's start-up code in the worker: a KeyboardInterrupt,
    or ``EOFError: Ran out of input`` when the parent stopped writing the worker's start-up
    data half-way.

    * SIGINT is blocked in this thread: a spawned process inherits the mask, and keeps SIGINT
      blocked until its initializer ignores it (which discards one already pending). The
      resource tracker is started first, since starting it unblocks SIGINT in the caller.
    * In the main thread, a SIGINT taken meanwhile by another thread is only recorded, and
      raised again here once the process is started (the Python handler runs in the main
      thread whichever thread the signal reached).
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    multiprocessing.resource_tracker.ensure_running()
    caught: list[int] = []
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    if previous is not None:
        signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one pending for this thread arrives now
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)  # to the handler that was there before


def _stop(executor: ProcessPoolExecutor, *, graceful: bool) -> None:
    """Shut the pool down: after a normal end, wait for the idle workers to exit; on an
    interrupt or an early stop, drop the queued images and let each worker finish the one it
    is on (at most :data:`DRAIN_TIMEOUT` seconds) before terminating what is left.

    Not terminating at once is deliberate: a worker killed while it writes its result into
    the pool's pipe leaves half a message there, and the pool's manager thread then waits for
    the rest forever -- which hangs the interpreter at exit (seen under load on 2 cores)."""
    if graceful:
        executor.shutdown(wait=True)
        return
    # A second Ctrl-C waits with the first (only where Python owns the handler).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None
    if previous is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # (The executor has no public list of its processes; they are needed to wait for them.)
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for p in processes:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in processes:
            if p.is_alive():  # stuck on one image: terminate (the risk above is the lesser evil)
                logger.info("terminating worker %d (still busy after %.0f s)", p.pid, DRAIN_TIMEOUT)
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():  # pragma: no cover - SIGTERM ignored
                p.kill()
                p.join(timeout=5)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# Analyzer.detect_many / embed_many run here (pipeline cannot import this module: it is above).
use_engine(analyze_many)

__all__ = [
    "DRAIN_TIMEOUT", "MAX_BATCH_WAIT", "START_METHOD", "BatchEngine", "BatchItem", "Prepared", "Transform", "WorkerSetup",
    "analyze_many", "batch_item", "can_spawn", "current_engine", "default_in_flight", "image_sha256", "prepare",
    "prepare_items", "prepare_many", "using_engine", "worker_setup",
]
