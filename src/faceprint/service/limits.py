"""Limits of the HTTP service: the per-key rate limit, the per-address limit of invalid keys, the
pixel budget of a request (:func:`check_request_pixels`), and the errors limits answer with."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faceprint.errors import FaceprintError, RateLimitedError, RequestTooLargeError
from faceprint.imageio import ImageLimits, image_dimensions

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


#: Buckets kept before the full ones (of keys or addresses idle long enough) are dropped.
MAX_BUCKETS = 10_000


class RateLimiter:
    """A token bucket per key (or per client address): ``per_minute`` a minute on average,
    bursts of ``burst``. ``what`` names the unit in the error (``requests a minute for this key``).

    In memory, per process: with ``--workers N`` each worker process keeps its own buckets,
    so a key may make up to N times the rate in total.
    """

    def __init__(self, per_minute: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic,
                 what: str = "requests a minute for this key") -> None:
        self.per_second = max(0.0, per_minute) / 60.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_minute)))
        self.enabled = per_minute > 0
        self.what = what
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        """Drop the buckets that have refilled (as good as new), so that many keys or addresses
        cannot grow the table without bound."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.per_second >= self.burst]
        for k in full:
            del self._buckets[k]

    def check(self, key_id: str) -> None:
        """Take one token for ``key_id`` or raise :class:`RateLimitedError`."""
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None and len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_second)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.per_second
        logger.debug("rate limit reached for %s", key_id)
        raise RateLimitedError(
            f"rate limit of {self.per_second * 60:g} {self.what} reached; retry in {math.ceil(wait)} s",
            details={"retry_after": math.ceil(wait), "per_minute": self.per_second * 60, "burst": int(self.burst)},
        )


def request_pixels(images: Sequence[bytes], limits: ImageLimits) -> int:
    """The pixels ``images`` decode to, read from their headers (nothing is decoded). An image
    that will be refused on its own anyway (unreadable, over ``max_bytes`` or ``max_pixels``)
    counts 0: it costs no decoding."""
    total = 0
    for data in images:
        try:
            width, height = image_dimensions(data, limits)
        except FaceprintError:
            continue
        total += width * height
    return total


def check_request_pixels(images: Sequence[bytes], limits: ImageLimits, budget: int) -> None:
    """:class:`RequestTooLargeError` (413 ``request_too_large``) when ``images`` together decode
    to more than ``budget`` pixels (the service's ``max_request_pixels``): the work of one
    request is bounded before any image is decoded, whatever the number and size of its images
    within the other limits (20 grey 6300x6300 PNGs are 1 MB of body but 794 MP to decode)."""
    total = request_pixels(images, limits)
    if total > budget:
        logger.info("refused a request of %d image(s) decoding to %d pixels (budget %d)", len(images), total, budget)
        raise RequestTooLargeError(
            f"the images of this request decode to {total:,} pixels; at most {budget:,} are handled in one "
            "request (max_request_pixels): send fewer or smaller images, in several requests",
            details={"pixels": total, "max_request_pixels": budget, "images": len(images)},
        )
