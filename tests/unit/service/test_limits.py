"""The per-key token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest

from faceprint.errors import RateLimitedError
from faceprint.service.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_token_per_interval_per_key():
    clock = Clock()
    limiter = RateLimiter(60, burst=3, clock=clock)  # one a second
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(RateLimitedError) as info:
        limiter.check("a")
    assert info.value.details["retry_after"] == 1 and info.value.details["burst"] == 3
    limiter.check("b")  # another key has its own bucket
    clock.now += 1.0
    limiter.check("a")
    with pytest.raises(RateLimitedError):
        limiter.check("a")


def test_zero_means_no_limit():
    limiter = RateLimiter(0, clock=Clock())
    for _ in range(1000):
        limiter.check("a")
