"""The service's live sessions, held in the process's memory: webcam streams (one
:class:`~faceprint.video.watch.Watcher` each) and liveness checks (one
:class:`~faceprint.liveness.check.LivenessChecker` each).

- :class:`SessionRegistry`: sessions by id, each owned by the API key that created it (another
  key's session is "not found", never "forbidden": its existence is not revealed), bounded in
  number (in all and per key), dropped after their time.
- :class:`StreamSession`: frames in, per-frame tracks and events out.
- :class:`LivenessSession`: a single-use challenge-response, ``pending`` -> ``passed`` |
  ``failed`` | ``expired``. The server's receive time is the only clock the checker sees;
  frames carry strictly increasing sequence numbers; the verdict is signed
  (:func:`sign_token`, a JWT with HS256) so that a relying party can check it.

Sessions live in one process: with ``--workers N``, a session's frames must reach the process
that created it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

import numpy as np
from fastapi import Depends, Request

from faceprint.errors import (
    FrameOrderError,
    InvalidArgumentError,
    SessionClosedError,
    SessionExpiredError,
    SessionNotFoundError,
    TooManySessionsError,
)
from faceprint.liveness.challenge import Challenge, random_challenge
from faceprint.liveness.check import LivenessChecker, LivenessResult
from faceprint.liveness.passive import PassiveModel
from faceprint.service.settings import Settings
from faceprint.video.events import Event
from faceprint.video.types import Frame
from faceprint.video.watch import FrameResult, Watcher

logger = logging.getLogger(__name__)

#: A session id: 128 random bits, URL-safe.
SESSION_ID_BYTES = 16


class Finishable(Protocol):
    """What the registry asks of a session's value: whether it is over (a finished session is
    the first to go when its key needs room for a new one)."""

    @property
    def finished(self) -> bool: ...


V = TypeVar("V", bound=Finishable)


@dataclass
class Entry(Generic[V]):
    """One session in a registry: its id, owner (API key id), value and when it is dropped."""

    id: str
    owner: str
    value: V
    created: float
    drop_at: float


class SessionRegistry(Generic[V]):
    """Sessions of one kind (``"stream"``, ``"liveness"``) by id. Thread-safe.

    ``max_sessions`` in all and ``max_per_key`` per API key; a full key first loses its
    finished sessions (oldest first), then gets :class:`TooManySessionsError`. An entry is
    dropped at its ``drop_at`` (:meth:`touch` moves it: an idle timeout). ``clock`` is
    monotonic seconds.
    """

    def __init__(self, kind: str, *, max_sessions: int, max_per_key: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self.max_sessions = max(1, max_sessions)
        self.max_per_key = max(1, max_per_key)
        self.clock = clock
        self._entries: dict[str, Entry[V]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _prune(self, now: float) -> None:
        for sid in [sid for sid, e in self._entries.items() if e.drop_at <= now]:
            logger.debug("%s session %s dropped (its time is over)", self.kind, sid)
            del self._entries[sid]

    def _make_room(self, owner: str) -> None:
        """Drops finished sessions (the owner's first, oldest first) until there is room."""
        mine = sorted((e for e in self._entries.values() if e.owner == owner), key=lambda e: e.created)
        done = [e for e in mine if e.value.finished]
        while len(mine) >= self.max_per_key and done:
            gone = done.pop(0)
            mine.remove(gone)
            del self._entries[gone.id]
        if len(mine) >= self.max_per_key:
            raise TooManySessionsError(
                f"this API key holds {len(mine)} open {self.kind} sessions, the most it may; end one first "
                "(or wait for one to time out)",
                details={"kind": self.kind, "max_sessions_per_key": self.max_per_key})
        if len(self._entries) >= self.max_sessions:
            others = sorted((e for e in self._entries.values() if e.value.finished), key=lambda e: e.created)
            if others:
                del self._entries[others[0].id]
            else:
                raise TooManySessionsError(
                    f"the service holds {len(self._entries)} open {self.kind} sessions, the most it may; retry later",
                    details={"kind": self.kind, "max_sessions": self.max_sessions, "retry_after": 5})

    def add(self, owner: str, make: Callable[[str, float], V], lifetime_s: float) -> Entry[V]:
        """A new session of ``owner`` (an API key id), dropped after ``lifetime_s``: its value is
        ``make(session_id, created)`` (``created`` on :attr:`clock`)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            self._make_room(owner)
            sid = secrets.token_urlsafe(SESSION_ID_BYTES)
            entry = Entry(sid, owner, make(sid, now), now, now + lifetime_s)
            self._entries[sid] = entry
            logger.info("%s session %s created for key %s (%d open)", self.kind, sid, owner, len(self._entries))
            return entry

    def get(self, owner: str, session_id: str) -> Entry[V]:
        """``owner``'s session, or :class:`SessionNotFoundError` (also for another key's)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            entry = self._entries.get(session_id)
            if entry is None or not hmac.compare_digest(entry.owner, owner):
                raise SessionNotFoundError(f"no {self.kind} session {session_id[:64]!r} for this API key",
                                           details={"kind": self.kind})
            return entry

    def touch(self, entry: Entry[V], lifetime_s: float) -> None:
        """Keeps ``entry`` for ``lifetime_s`` from now (an idle timeout)."""
        with self._lock:
            entry.drop_at = self.clock() + lifetime_s

    def pop(self, owner: str, session_id: str) -> Entry[V]:
        """Removes and returns ``owner``'s session (:class:`SessionNotFoundError` as :meth:`get`)."""
        entry = self.get(owner, session_id)
        with self._lock:
            self._entries.pop(entry.id, None)
        logger.info("%s session %s ended", self.kind, entry.id)
        return entry


# --- signed results: a JWT (RFC 7519) with HS256 ------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


JWT_HEADER = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def sign_token(claims: Mapping[str, Any], secret: bytes) -> str:
    """``claims`` as a JWT signed with HMAC-SHA256 under ``secret``: any JWT library (or
    :func:`verify_token`) checks it with the same secret."""
    body = b64url(json.dumps(dict(claims), separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret, f"{JWT_HEADER}.{body}".encode("ascii"), hashlib.sha256).digest()
    return f"{JWT_HEADER}.{body}.{b64url(mac)}"


def verify_token(token: str, secret: bytes) -> dict[str, Any] | None:
    """The claims of a token :func:`sign_token` made with ``secret``; None when it was not (a
    changed claim, another secret, not a token)."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != JWT_HEADER:
        return None
    mac = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    try:
        given = b64url_decode(parts[2])
        if not hmac.compare_digest(mac, given):
            return None
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def load_secret(path: str | None) -> bytes:
    """The signing secret: the bytes of ``path`` (stripped; at least 32), else 32 random bytes
    of this process."""
    if path is None:
        logger.info("liveness results are signed with a random secret of this process "
                    "(set liveness_secret_file so that relying parties can check them)")
        return secrets.token_bytes(32)
    try:
        with open(path, "rb") as fh:
            secret = fh.read().strip()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read the liveness secret file {path}: {exc.strerror}",
                                   details={"path": path}) from None
    if len(secret) < 32:
        raise InvalidArgumentError(f"the liveness secret file {path} holds {len(secret)} bytes; use at least 32",
                                   details={"bytes": len(secret)})
    return secret


def utc_iso(epoch_s: float) -> str:
    """A wall-clock time as ISO 8601 UTC to the millisecond (``2026-11-30T07:05:39.123Z``)."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- streams -----------------------------------------------------------------------------------
@dataclass
class StreamSession:
    """A webcam stream: one :class:`Watcher` fed frame by frame (``time_s``: the server's
    receive time since the stream was created). Not thread-safe: hold :attr:`lock`."""

    watcher: Watcher
    created: float
    frames: int = 0
    last_time: float = 0.0
    ended: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def finished(self) -> bool:
        return self.ended

    def process(self, rgb: np.ndarray, received: float) -> FrameResult:
        """One frame through the watcher (the caller holds the model lock). Its time never goes
        back, even when two frames' work finished in the other order."""
        self.last_time = max(self.last_time, received - self.created)
        frame = Frame(self.frames, self.last_time, rgb)
        self.frames += 1
        return self.watcher.process(frame)

    def finish(self) -> list[Event]:
        """Ends every track; the last event is the summary."""
        self.ended = True
        return self.watcher.finish()


# --- liveness ----------------------------------------------------------------------------------
LivenessState = Literal["pending", "passed", "failed", "expired"]


@dataclass
class LivenessSession:
    """One challenge-response check. Frames are claimed on arrival (:meth:`claim`: sequence
    number and receive time checked, in the order they arrive) and observed in the worker pool
    (:meth:`observe`, under :attr:`lock`); the first verdict closes the session for good."""

    session_id: str
    owner: str
    checker: LivenessChecker
    challenge: Challenge
    model: str
    #: Monotonic seconds (the registry's clock) and wall-clock seconds of its creation.
    created: float
    created_wall: float
    lifetime_s: float
    secret: bytes
    #: The registry's clock (monotonic seconds).
    clock: Callable[[], float] = time.monotonic
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))
    state: LivenessState = "pending"
    #: The highest sequence number claimed, and the highest observed.
    last_seq: int = -1
    observed_seq: int = -1
    frames: int = 0
    last_progress: dict[str, Any] | None = None
    result: LivenessResult | None = None
    token: str | None = None
    claims: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def finished(self) -> bool:
        """Decided, or past its time (an abandoned session makes room for its key's next one)."""
        return self.state != "pending" or self.clock() >= self.expires

    @property
    def expires(self) -> float:
        return self.created + self.lifetime_s

    def expire_if_due(self, now: float, wait: bool = True) -> None:
        """A pending session past its time becomes ``expired``. ``wait=False`` (on the event
        loop): not while a frame is being checked; the check itself then finds the time over."""
        if self.state == "pending" and now >= self.expires and self.lock.acquire(blocking=wait):
            try:
                if self.state == "pending":
                    self.close("expired", self.lifetime_s)
            finally:
                self.lock.release()

    def claim(self, seq: int, received: float) -> float:
        """Accepts frame ``seq`` received at ``received`` (monotonic) or raises; returns its time
        in the session (seconds since creation). Called on the event loop, in arrival order."""
        self.expire_if_due(received, wait=False)
        if self.state == "expired" or (self.state == "pending" and received >= self.expires):
            raise SessionExpiredError("this liveness session has expired; create a new one",
                                      details={"session_id": self.session_id, "state": self.state})
        if self.state != "pending":
            raise SessionClosedError(f"this liveness session is over ({self.state}); create a new one",
                                     details={"session_id": self.session_id, "state": self.state})
        if seq <= self.last_seq:
            raise FrameOrderError(f"frame seq {seq} is not above {self.last_seq}, the last this session took",
                                  details={"seq": seq, "last_seq": self.last_seq})
        self.last_seq = seq
        return received - self.created

    def observe(self, rgb: np.ndarray, seq: int, time_s: float,
                model_lock: AbstractContextManager[object]) -> dict[str, Any]:
        """The checker's progress after frame ``seq`` (claimed at ``time_s``); ``model_lock``
        is held around the models. Closes the session at a verdict."""
        with self.lock:
            if self.state != "pending":
                raise SessionClosedError(f"this liveness session is over ({self.state})",
                                         details={"session_id": self.session_id, "state": self.state})
            if seq <= self.observed_seq:  # a later frame overtook it in the worker pool
                raise FrameOrderError(f"frame seq {seq} arrived after frame {self.observed_seq} was checked",
                                      details={"seq": seq, "last_seq": self.observed_seq})
            if time_s >= self.lifetime_s:
                self.close("expired", self.lifetime_s)
                raise SessionExpiredError("this liveness session has expired; create a new one",
                                          details={"session_id": self.session_id, "state": self.state})
            self.observed_seq = seq
            self.frames += 1
            with model_lock:
                progress = self.checker.observe(rgb, time_s)
            self.last_progress = progress.to_dict()
            if progress.state != "pending":
                self.close("passed" if progress.state == "passed" else "failed", time_s)
            return self.last_progress

    def close(self, state: LivenessState, time_s: float) -> None:
        """The verdict (the caller holds :attr:`lock`): the checker's result, signed."""
        self.result = self.checker.expire(time_s) if state == "expired" else self.checker.finish(time_s)
        if state != "expired":  # the result decides, never the progress alone
            state = "passed" if self.result.passed else "failed"
        self.state = state
        claims: dict[str, Any] = {
            "iss": "faceprint",
            "sub": self.session_id,
            "nonce": self.nonce,
            "iat": int(self.created_wall + time_s),
            "key_id": self.owner,
            "challenge": self.challenge.describe(),
            "state": state,
            "passed": state == "passed",
            "reason": "expired" if state == "expired" else self.result.reason,
            "frames": self.frames,
            "model": self.model,
            "started_at": utc_iso(self.created_wall),
            "completed_at": utc_iso(self.created_wall + time_s),
        }
        self.claims = claims
        self.token = sign_token(claims, self.secret)
        logger.info("liveness session %s %s after %d frame(s) in %.1f s", self.session_id, state, self.frames, time_s)

    def shown_challenge(self) -> dict[str, Any]:
        """The challenge as the client may know it now: while pending, how many steps, their time
        limit and the pending step only (the next order is revealed step by step, so that no
        recording can be prepared for it); once over, all of it."""
        if self.state != "pending":
            return self.challenge.to_dict()
        step = min(self.checker.step, len(self.challenge.steps) - 1)
        return {"steps": len(self.challenge.steps), "step_timeout_s": self.challenge.step_timeout_s, "step": step,
                "action": self.challenge.steps[step], "count": self.challenge.count(step),
                "prompt": self.challenge.prompt(step)}

    def to_dict(self) -> dict[str, Any]:
        """The session as ``GET /v1/liveness/sessions/{id}`` shows it."""
        return {
            "session_id": self.session_id,
            "state": self.state,
            "challenge": self.shown_challenge(),
            "created_at": utc_iso(self.created_wall),
            "expires_at": utc_iso(self.created_wall + self.lifetime_s),
            "frames": self.frames,
            "progress": self.last_progress,
            "result": self.result.to_dict() if self.result is not None else None,
            "claims": self.claims,
            "token": self.token,
        }


# --- the app's sessions --------------------------------------------------------------------------
class LiveSessions:
    """The app's registries of streams and liveness sessions, the liveness signing secret, the
    challenge source, and the slots of clips analysed at once (``app.state.sessions``; one per
    process)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.streams: SessionRegistry[StreamSession] = SessionRegistry(
            "stream", max_sessions=settings.max_sessions, max_per_key=settings.max_sessions_per_key, clock=clock)
        self.liveness: SessionRegistry[LivenessSession] = SessionRegistry(
            "liveness", max_sessions=settings.max_sessions, max_per_key=settings.max_sessions_per_key, clock=clock)
        self.secret = load_secret(settings.liveness_secret_file)
        #: Clips analysed at once (``/v1/videos/identify``): one fewer than the worker threads,
        #: so that clips never hold every thread while short requests wait for one.
        self.video_slots = asyncio.Semaphore(max(1, settings.threads - 1))
        self.passive: PassiveModel | None = None
        if settings.liveness_passive_model:
            self.passive = PassiveModel.load(settings.liveness_passive_model)
            logger.info("liveness results report the passive model %s's score", self.passive.model_id)
        self.fixed_challenge: Challenge | None = None
        if settings.liveness_challenge:
            self.fixed_challenge = Challenge.parse(settings.liveness_challenge, settings.liveness_step_timeout_s)
            logger.warning("every liveness session gets the fixed challenge %r (liveness_challenge): for tests and "
                           "demos only, a recording of one session answers the next", settings.liveness_challenge)

    def new_challenge(self) -> Challenge:
        """A fresh random challenge (a CSPRNG), or the fixed one of tests and demos."""
        return self.fixed_challenge or random_challenge(self.settings.liveness_steps,
                                                        step_timeout_s=self.settings.liveness_step_timeout_s)


def get_sessions(request: Request) -> LiveSessions:
    """The sessions :func:`faceprint.service.create_app` put on the app."""
    sessions: LiveSessions = request.app.state.sessions
    return sessions


SessionsDep = Annotated[LiveSessions, Depends(get_sessions)]
