"""The service's session registry and signed tokens (faceprint.service.sessions), with a clock of
the test's own: ownership, bounds, eviction of finished sessions, idle drops, and JWT signatures
checked against an independent HMAC computation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

import pytest

from faceprint.errors import SessionNotFoundError, TooManySessionsError
from faceprint.service.sessions import SessionRegistry, sign_token, verify_token


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Value:
    finished: bool = False


def registry(clock: Clock, total: int = 3, per_key: int = 2) -> SessionRegistry[Value]:
    return SessionRegistry("test", max_sessions=total, max_per_key=per_key, clock=clock)


def test_a_session_belongs_to_the_key_that_made_it():
    clock = Clock()
    reg = registry(clock)
    entry = reg.add("key-a", lambda sid, created: Value(), 10.0)
    assert reg.get("key-a", entry.id) is entry and entry.created == 100.0
    with pytest.raises(SessionNotFoundError):
        reg.get("key-b", entry.id)  # another key's: not found, not forbidden
    with pytest.raises(SessionNotFoundError):
        reg.pop("key-b", entry.id)
    assert reg.pop("key-a", entry.id) is entry
    with pytest.raises(SessionNotFoundError):
        reg.get("key-a", entry.id)


def test_ids_are_random_and_distinct():
    reg = registry(Clock(), total=100, per_key=100)
    ids = {reg.add("k", lambda sid, created: Value(), 10.0).id for _ in range(50)}
    assert len(ids) == 50 and all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)


def test_sessions_are_dropped_after_their_time_and_touch_extends_it():
    clock = Clock()
    reg = registry(clock)
    a = reg.add("k", lambda sid, created: Value(), 10.0)
    b = reg.add("k", lambda sid, created: Value(), 10.0)
    clock.now += 8
    reg.touch(a, 10.0)
    clock.now += 5  # b is past its time, a was touched
    assert reg.get("k", a.id) is a
    with pytest.raises(SessionNotFoundError):
        reg.get("k", b.id)
    assert len(reg) == 1


def test_a_full_key_loses_its_finished_sessions_first_then_is_refused():
    clock = Clock()
    reg = registry(clock, total=10, per_key=2)
    done = reg.add("k", lambda sid, created: Value(finished=True), 60.0)
    live = reg.add("k", lambda sid, created: Value(), 60.0)
    third = reg.add("k", lambda sid, created: Value(), 60.0)  # the finished one made room
    with pytest.raises(SessionNotFoundError):
        reg.get("k", done.id)
    assert reg.get("k", live.id) is live and reg.get("k", third.id) is third
    with pytest.raises(TooManySessionsError) as err:
        reg.add("k", lambda sid, created: Value(), 60.0)
    assert err.value.details["max_sessions_per_key"] == 2
    reg.add("other", lambda sid, created: Value(), 60.0)  # another key has its own room


def test_the_service_wide_bound():
    clock = Clock()
    reg = registry(clock, total=2, per_key=2)
    reg.add("a", lambda sid, created: Value(), 60.0)
    reg.add("b", lambda sid, created: Value(), 60.0)
    with pytest.raises(TooManySessionsError) as err:
        reg.add("c", lambda sid, created: Value(), 60.0)
    assert err.value.details["max_sessions"] == 2


def test_a_token_is_a_standard_hs256_jwt():
    secret = b"s" * 32
    claims = {"sub": "abc", "passed": True, "nonce": "00ff", "iat": 1}
    token = sign_token(claims, secret)
    header, body, mac = token.split(".")
    pad = lambda t: t + "=" * (-len(t) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(header))) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(pad(body))) == claims
    expected = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(pad(mac)) == expected  # what any JWT library computes
    assert verify_token(token, secret) == claims
    assert verify_token(token, b"t" * 32) is None  # another secret
    assert verify_token(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], secret) is None
    assert verify_token("not.a.token", secret) is None and verify_token("", secret) is None
