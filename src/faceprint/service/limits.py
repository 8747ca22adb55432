"""Limits of the HTTP service: the per-key rate limit and the errors limits answer with."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from faceprint.errors import RateLimitedError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute on average, bursts of ``burst``.

    In memory, per process: with ``--workers N`` each worker process keeps its own buckets,
    so a key may make up to N times the rate in total.
    """

    def __init__(self, per_minute: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = max(0.0, per_minute) / 60.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_minute)))
        self.enabled = per_minute > 0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        """Take one token for ``key_id`` or raise :class:`RateLimitedError`."""
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_second)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.per_second
        logger.debug("rate limit reached for key %s", key_id)
        raise RateLimitedError(
            f"rate limit of {self.per_second * 60:g} requests a minute for this key reached; retry in {math.ceil(wait)} s",
            details={"retry_after": math.ceil(wait), "per_minute": self.per_second * 60, "burst": int(self.burst)},
        )
