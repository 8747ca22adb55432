"""The service's model lock (:class:`FifoLock`): granted in the order it was asked for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from faceprint.service.state import FifoLock


def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (a state of the other threads, not a duration)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the other threads never got there"
        time.sleep(0.001)


def test_waiters_get_the_lock_in_the_order_they_asked() -> None:
    lock = FifoLock()
    order: list[int] = []

    def take(i: int) -> None:
        with lock:
            order.append(i)

    lock.acquire()
    threads = []
    for i in range(6):
        t = threading.Thread(target=take, args=(i,))
        t.start()
        threads.append(t)
        until(lambda queued=i + 1: lock.waiting == queued)  # queued before the next one starts
    lock.release()
    for t in threads:
        t.join()
    assert order == list(range(6))
    assert not lock.locked() and lock.waiting == 0


def test_a_thread_that_asks_again_queues_behind_the_waiters() -> None:
    """What threading.Lock does not promise: the releasing thread usually wins it back, and one
    client's images, one turn each, could keep another client waiting until the last one."""
    lock = FifoLock()
    order: list[str] = []

    def other() -> None:
        with lock:
            order.append("other")

    lock.acquire()
    waiter = threading.Thread(target=other)
    waiter.start()
    until(lambda: lock.waiting == 1)
    lock.release()
    lock.acquire()  # at once: behind the waiter
    order.append("again")
    lock.release()
    waiter.join()
    assert order == ["other", "again"]


def test_mutual_exclusion() -> None:
    lock = FifoLock()
    inside = 0
    most = 0

    def work() -> None:
        nonlocal inside, most
        for _ in range(200):
            with lock:
                inside += 1
                most = max(most, inside)
                time.sleep(0)  # let another thread try to get in
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1 and inside == 0 and not lock.locked()


def test_release_when_not_held_is_an_error() -> None:
    lock = FifoLock()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()
