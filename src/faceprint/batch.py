"""Many images at once: decode, detect and align in worker processes; embed in the parent.

:meth:`Analyzer.detect_many` and :meth:`Analyzer.embed_many` call :func:`analyze_many`;
``faceprint detect DIR`` / ``faceprint embed DIR`` call those with ``jobs`` = the CPU cores.

How the work is split (measured on 2 cores; the numbers are in ``bench/results_pipeline.json``):

* ``jobs`` worker *processes* each take one image at a time: read and decode it, run the
  detector and the landmark model, and cut the aligned chips the embedder wants. dlib's
  detector and shape predictor hold the GIL for the whole call, so threads would not run
  them in parallel; processes do.
* A worker sends back only the faces (boxes, landmarks, pose) and their chips (a 150x150x3
  ``uint8`` array a face for ``dlib-resnet34``), never the decoded image.
* The parent process embeds the chips of several images in one onnxruntime call, as soon as
  ``batch_size`` faces (or images) are waiting, or when the oldest of them has waited
  :data:`MAX_BATCH_WAIT` seconds while the workers are busy. With every core running a
  worker the machine is CPU-bound, and full batches cost the parent ~20% less CPU a face
  than embedding whatever is there whenever it waits (measured on 150x150 LFW images:
  164 against 150 images/s on 2 cores); onnxruntime's threads take the time the workers
  leave. One worker per core is the best split measured (2 cores, images/s on LFW crops /
  on 0.1-36 MP photos): 1 worker 117 / 7.7, 2 workers 169 / 13.8, 3 workers 161 / 13.0,
  in-process 108 / 8.2. The parent needs only ~25% of a core on LFW (less on photos), so
  ``cores - 1`` workers leave a core mostly idle, and ``cores + 1`` only adds switching.
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
  run time (e.g. ONNX files) are registered in the worker too. Workers ignore SIGINT: on
  Ctrl-C (``KeyboardInterrupt`` in the parent), on any exception, and when the caller stops
  iterating early (``close()`` on the generator), the parent drops the queued images, lets
  each worker finish its current one (see :func:`_stop`) and stops them.
* ``jobs=1`` runs everything in the calling process, with no pool.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint import models
from faceprint.align import ChipSpec
from faceprint.errors import FaceprintError, InvalidArgumentError, UnknownModelError
from faceprint.imageio import ImageSource, describe_source, read_bytes
from faceprint.types import EmbeddedFace, Face, ImageAnalysis

if TYPE_CHECKING:  # pragma: no cover
    from faceprint.pipeline import Analyzer

#: How worker processes are started. Not "fork": onnxruntime's thread pools and OpenCV's do
#: not survive it, and a forked child inherits whatever locks the parent's threads held.
START_METHOD = "spawn"

#: Modules whose models every process registers on import; others are sent to the workers.
_BUILTIN_MODULES = frozenset({"faceprint.models.dlib_models", "faceprint.models.opencv_models"})


#: The longest a partial embedding batch waits for more faces while the workers are busy.
#: (Not flushing partial batches at once saves ~20% of the parent's CPU on small images.)
MAX_BATCH_WAIT = 0.25


def default_jobs() -> int:
    """The number of CPU cores this process may use (its affinity mask, not the machine's)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        n = count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count()
    return max(1, n or 1)


def default_in_flight(jobs: int, batch_size: int) -> int:
    """Images read and not yet yielded (at the workers, done, or waiting in the embedding
    batch): enough to keep every worker busy while the parent embeds a full batch."""
    return 4 * jobs + 2 * batch_size


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

    def analysis(self, faces: tuple = ()) -> ImageAnalysis:
        return ImageAnalysis(self.source, faces or self.faces, self.image_size, self.error)


def image_sha256(source: bytes | np.ndarray) -> str:
    """The identity of an image: SHA-256 of its encoded bytes, or of an array's pixels and shape."""
    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes() + str(source.shape).encode()).hexdigest()
    return hashlib.sha256(source).hexdigest()


def prepare(analyzer: Analyzer, label: str, source: ImageSource, chip: ChipSpec | None,
            digest: bool = False) -> Prepared:
    """Decode, detect and (with ``chip``) align one image (with ``digest``, also hash it); a
    faceprint error becomes the entry's ``error``. Anything else is a bug and propagates."""
    sha = None
    try:
        if digest and not isinstance(source, np.ndarray):
            source = read_bytes(source, analyzer.limits)
            sha = image_sha256(source)
        rgb = analyzer.load(source)
        if digest and sha is None:
            sha = image_sha256(rgb)
        faces = tuple(analyzer.detect_array(rgb))
        chips = None
        if chip is not None:
            if faces:
                chips = np.stack([analyzer._chip(rgb, f, chip) for f in faces])
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
) -> Iterator[ImageAnalysis]:
    """One :class:`ImageAnalysis` per input, in input order (see the module docstring).

    ``jobs``: worker processes (``None``: one per CPU core; ``1``: none, all in this process).
    ``in_flight``: at most this many images between being read from ``images`` and being
    yielded (default :func:`default_in_flight`). Arguments are checked, and the embedder is
    loaded, before this returns.
    """
    return _analyses(prepare_many(analyzer, images, embed=embed, jobs=jobs, in_flight=in_flight))


def _analyses(pairs: Iterator[tuple[Prepared, ImageAnalysis]]) -> Iterator[ImageAnalysis]:
    try:
        for _, analysis in pairs:
            yield analysis
    finally:
        pairs.close()  # type: ignore[attr-defined]  # stops the workers when the caller stops early


def prepare_many(
    analyzer: Analyzer,
    images: Iterable[ImageSource],
    *,
    embed: bool,
    jobs: int | None = 1,
    in_flight: int | None = None,
    digest: bool = False,
) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    """:func:`analyze_many`, with each result's :class:`Prepared` beside it (the chips, and with
    ``digest`` the image's SHA-256): what enrolment needs to judge and store a face."""
    jobs = default_jobs() if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidArgumentError(f"jobs must be a positive integer (or None for all cores); got {jobs!r}")
    if hasattr(images, "__len__"):
        jobs = max(1, min(jobs, len(images)))  # type: ignore[arg-type]
    in_flight = default_in_flight(jobs, analyzer.batch_size) if in_flight is None else in_flight
    if in_flight < 1:
        raise InvalidArgumentError(f"in_flight must be at least 1; got {in_flight!r}")
    chip = analyzer.embedder.chip if embed else None  # loads the embedder (and fails) now
    if jobs == 1:
        return _in_process(analyzer, images, chip, embed, digest)
    config, extra = _worker_config(analyzer)
    return _pooled(analyzer, images, chip, embed, jobs, in_flight, config, extra, digest)


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
        chips = [c for p in pending if p.faces for c in p.chips]  # type: ignore[union-attr]
        vectors = self._embed(chips)
        model = self.analyzer.model_id
        i = 0
        for p in pending:
            embedded = tuple(EmbeddedFace(face=f, embedding=vectors[i + k], model=model) for k, f in enumerate(p.faces))
            i += len(p.faces)
            yield p, p.analysis(embedded)

    def _embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 0), dtype=np.float32)
        embedder, size = self.analyzer.embedder, self.analyzer.batch_size
        parts = [embedder.embed_chips(chips[s : s + size]) for s in range(0, len(chips), size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _in_process(analyzer: Analyzer, images: Iterable[ImageSource], chip: ChipSpec | None,
                embed: bool, digest: bool) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    batcher = _Batcher(analyzer, embed)
    for source in images:
        yield from batcher.add(prepare(analyzer, describe_source(source), source, chip, digest))
    yield from batcher.flush()


# --- worker processes ------------------------------------------------------------------------
_worker_analyzer: Analyzer | None = None


def _worker_config(analyzer: Analyzer) -> tuple[dict[str, Any], list[tuple[models.ModelCard, Any]]]:
    """The Analyzer's constructor arguments, and the run-time-registered models it uses."""
    config = analyzer.config()
    extra = []
    for card in (analyzer.detector_card, analyzer.landmarks_card, analyzer.embedder_card):
        entry = models._registry.get(card.name)
        if entry is None or getattr(entry.factory, "__module__", None) in _BUILTIN_MODULES:
            continue
        try:
            pickle.dumps((entry.card, entry.factory))
        except Exception as exc:
            raise InvalidArgumentError(
                f"model {card.name!r} was registered with a loader that cannot be sent to worker "
                f"processes ({type(exc).__name__}: {exc}); use jobs=1",
                details={"model": card.name},
            ) from None
        extra.append((entry.card, entry.factory))
    return config, extra


def _init_worker(config: dict[str, Any], extra: list[tuple[models.ModelCard, Any]]) -> None:
    global _worker_analyzer
    # The parent owns Ctrl-C: it terminates the workers. (A terminal sends SIGINT to the
    # whole process group; without this every worker would print a traceback.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # one core per worker: the parallelism is the workers
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 is a dependency; be lenient all the same
        pass
    for card, factory in extra:
        try:
            existing: models.ModelCard | None = models.get_card(card.name)
        except UnknownModelError:
            existing = None
        if existing != card:
            if existing is not None:
                models.unregister(card.name)
            models.register(card, factory)
    from faceprint.pipeline import Analyzer

    _worker_analyzer = Analyzer(**config)
    try:  # load the weights now rather than inside the first image
        _worker_analyzer.detector
        _worker_analyzer.landmarker
    except FaceprintError:
        pass  # reported per image, as the in-process path does


def _work(label: str, payload: Any, chip: ChipSpec | None, digest: bool) -> Prepared:
    assert _worker_analyzer is not None, "worker not initialised"
    return prepare(_worker_analyzer, label, payload, chip, digest)


def _submit(executor: ProcessPoolExecutor, analyzer: Analyzer, source: ImageSource,
            chip: ChipSpec | None, digest: bool) -> tuple[str, Future | Prepared]:
    label = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        payload: Any = os.fspath(source)  # the worker reads the file
    elif isinstance(source, np.ndarray):
        payload = source
    else:  # bytes-like or a file object: read here, within the limits, and send the bytes
        try:
            payload = read_bytes(source, analyzer.limits)
        except FaceprintError as exc:
            return label, Prepared(label, None, error=exc)
    return label, executor.submit(_work, label, payload, chip, digest)


def _pooled(
    analyzer: Analyzer,
    images: Iterable[ImageSource],
    chip: ChipSpec | None,
    embed: bool,
    jobs: int,
    in_flight: int,
    config: dict[str, Any],
    extra: list[tuple[models.ModelCard, Any]],
    digest: bool,
) -> Iterator[tuple[Prepared, ImageAnalysis]]:
    with _sigint_blocked():
        executor = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context(START_METHOD),
            initializer=_init_worker,
            initargs=(config, extra),
        )
    batcher = _Batcher(analyzer, embed)
    window: deque[tuple[str, Future | Prepared]] = deque()  # (label, work), in input order
    sources = iter(images)
    exhausted = finished = False
    try:
        while True:
            # Read ahead while fewer than in_flight images are read and not yet yielded.
            while not exhausted and len(window) + len(batcher.pending) < in_flight:
                try:
                    source = next(sources)
                except StopIteration:
                    exhausted = True
                    break
                with _sigint_blocked():  # a submit may start a worker process
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
            yield from batcher.add(head)
        yield from batcher.flush()
        finished = True
    finally:
        _stop(executor, graceful=finished)


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while worker processes may be started: they inherit the
    mask, so a Ctrl-C that reaches the whole process group while a worker is still starting
    up (before its initializer ignores SIGINT) cannot print a traceback from it. A SIGINT
    that arrives meanwhile is delivered here when the block ends (multiprocessing's own
    resource tracker is started the same way)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


#: On an interrupt, how long the workers may take to finish the image each is on.
DRAIN_TIMEOUT = 10.0


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
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for p in processes:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in processes:
            if p.is_alive():  # stuck on one image: terminate (the risk above is the lesser evil)
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():  # pragma: no cover - SIGTERM ignored
                p.kill()
                p.join(timeout=5)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


__all__ = [
    "START_METHOD", "Prepared", "analyze_many", "default_in_flight", "default_jobs", "image_sha256", "prepare",
    "prepare_many",
]
