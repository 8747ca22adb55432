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


def test_the_table_of_buckets_stays_bounded(monkeypatch):
    """Many keys or addresses (an attacker's) cannot grow the table without bound: once it is
    full, the buckets that have refilled are dropped; the ones still draining are kept."""
    monkeypatch.setattr("faceprint.service.limits.MAX_BUCKETS", 10)
    clock = Clock()
    limiter = RateLimiter(60, burst=2, clock=clock)
    limiter.check("busy")
    limiter.check("busy")
    for i in range(9):
        limiter.check(f"once-{i}")
    assert len(limiter) == 10
    clock.now += 5.0  # the one-shot buckets refill; "busy" is refilled too by now
    limiter.check("new")
    assert len(limiter) == 1
    limiter.check("new")
    with pytest.raises(RateLimitedError) as info:
        limiter.check("new")
    assert "requests a minute for this key" in info.value.message


def test_the_error_names_what_is_limited():
    limiter = RateLimiter(1, clock=Clock(), what="invalid API keys a minute from this address")
    limiter.check("10.0.0.1")
    with pytest.raises(RateLimitedError) as info:
        limiter.check("10.0.0.1")
    assert "invalid API keys a minute from this address" in info.value.message
