"""What one process of the service holds: the gallery, the analyzer, the API keys, the rate
limiter and the worker pool.

The concurrency model, in one process (``--workers N`` runs N such processes, each with its
own models, for parallel model work):

* The event loop only parses requests, checks keys and limits, and writes answers.
* Decoding, the models and the database run in a pool of ``threads`` worker threads
  (:meth:`Service.run`); short database work (keys, listings) runs in Starlette's thread pool
  (:meth:`Service.db`), so that it never waits behind model work.
* Model calls are serialised by :attr:`Service.model_lock` (dlib's detectors and shape
  predictors are not safe to call from two threads at once; onnxruntime already uses every
  core for one embedding batch). It is a :class:`FifoLock`: granted in the order it was asked
  for, so a request gets the models after the model work queued before it, never after
  whatever a busier client keeps asking for.
* The lock covers model calls only: one image's detection, landmarks, chips and embeddings
  in one turn. Decoding, hashing, index searches and every database read or commit run
  outside it. A request of several images (an enrolment) takes one turn per image, so an
  identify from another client waits for at most the image being analysed (plus any other
  turns already queued), not for the whole enrolment; the enrolment route also goes back to
  the pool's queue between images (bench/README.md, section 'Service stall').
* A request's work is bounded before anything is decoded, from the images' headers:
  ``max_pixels`` per image and ``max_request_pixels`` for all of a request's images
  together (:func:`faceprint.service.limits.check_request_pixels`; 413 ``request_too_large``).
* One :class:`Gallery` per process is shared by its threads (its store and index have their
  own locks); several processes share the gallery file safely (each process's index follows
  the database's change log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from faceprint.evaluation.calibrate import read_card
from faceprint.gallery import Gallery, describe_location
from faceprint.imageio import ImageLimits
from faceprint.pipeline import Analyzer
from faceprint.service.auth import KeyStore
from faceprint.service.limits import RateLimiter
from faceprint.service.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")


class FifoLock:
    """A lock granted in the order it was asked for (a ticket lock); not re-entrant.

    ``threading.Lock`` wakes an arbitrary waiter, and a thread that releases it and asks again
    at once usually wins: an enrolment taking the models once per image could keep an identify
    waiting until its last image. :meth:`release` hands the lock straight to the oldest waiter
    (it is never free in between), and a thread that asks again queues behind it.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[threading.Lock] = deque()
        self._held = False

    @property
    def waiting(self) -> int:
        """Threads queued for the lock now."""
        with self._mutex:
            return len(self._queue)

    def locked(self) -> bool:
        return self._held

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
        turn.acquire()  # until release() hands the lock to this thread

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unheld FifoLock")
            if self._queue:
                self._queue.popleft().release()  # handed over: stays held
            else:
                self._held = False

    def __enter__(self) -> FifoLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Service:
    """One process's state, shared by its requests (``app.state.service``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_pixels)
        explicit = (Analyzer(settings.detector, settings.embedder, landmarks=settings.landmarks, limits=self.limits)
                    if settings.embedder else None)  # a named embedder must match the gallery's
        self.gallery = Gallery.open(settings.gallery, analyzer=explicit, detector=settings.detector,
                                    landmarks=settings.landmarks, limits=self.limits,
                                    thumbnails=settings.keep_thumbnails)
        self.analyzer = self.gallery.analyzer
        if settings.min_score is not None:
            self.analyzer.min_score = settings.min_score
        if settings.calibration is not None:
            # Answers name the file, not where it lies on the server.
            self.analyzer.use_calibration(read_card(settings.calibration, label=Path(settings.calibration).name))
        self.keys = KeyStore(settings.gallery)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.auth_failures = RateLimiter(settings.auth_failure_limit, what="invalid API keys a minute from this address")
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="faceprint")
        self.model_lock = FifoLock()
        logger.info("service state for %s: %d worker thread(s), models %s + %s + %s", describe_location(settings.gallery),
                    max(1, settings.threads), self.analyzer.detector_card.id, self.analyzer.landmarks_card.id,
                    self.analyzer.model_id)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Model work (decode, detect, embed, search, enrol) in the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kwargs))

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Short database work (keys, subject listings) in the general thread pool, so that it
        never waits behind model work."""
        return await run_in_threadpool(fn, *args, **kwargs)

    def warm_up(self) -> None:
        """Load the models now, so the first request does not wait for them."""
        with self.model_lock:
            _ = self.analyzer.detector, self.analyzer.landmarker, self.analyzer.embedder
        logger.info("models loaded")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.gallery.close()
        self.keys.close()
