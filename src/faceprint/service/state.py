"""What one process of the service holds: the gallery, the analyzer, the API keys, the rate
limiter and the worker pool.

Concurrency: the event loop only parses requests and writes answers; decoding, the models
and the database run in a pool of ``threads`` worker threads. Model calls within one process
are serialised by :attr:`Service.model_lock` (dlib's detectors and shape predictors are not
safe to call from two threads at once; onnxruntime already uses every core for one embedding
batch); ``--workers N`` runs N processes for parallel model work. One :class:`Gallery` per
process is shared by its threads (its store and index have their own locks); several
processes share the gallery file safely (each process's index follows the database's
change log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from faceprint.gallery import Gallery
from faceprint.imageio import ImageLimits
from faceprint.pipeline import Analyzer
from faceprint.service.auth import KeyStore
from faceprint.service.limits import RateLimiter
from faceprint.service.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")


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
        self.keys = KeyStore(settings.gallery)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="faceprint")
        self.model_lock = threading.Lock()
        logger.info("service state for %s: %d worker thread(s), models %s + %s + %s", settings.gallery,
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
