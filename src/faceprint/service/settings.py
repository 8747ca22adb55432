"""What the HTTP service is configured with, and how it reaches uvicorn's worker processes.

``faceprint serve`` builds one :class:`Settings`; :func:`faceprint.service.serve` puts it, as
JSON, in ``$FACEPRINT_SERVICE_SETTINGS`` (declared in :mod:`faceprint.settings`) because uvicorn
starts its workers from an import string and cannot hand them a Python object. Each worker
reads it back with :meth:`Settings.from_environment`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from faceprint import settings as env
from faceprint.gallery.storage.locate import parse_location

logger = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with (``faceprint serve`` options)."""

    #: A SQLite file, or a PostgreSQL URL as text (:func:`faceprint.gallery.parse_location`).
    gallery: Path | str
    #: Models; None: the gallery's own (:func:`faceprint.gallery.analyzer_for`). ``faceprint
    #: serve`` fills in the names it resolved, so every worker process runs the same models.
    detector: str | None = None
    landmarks: str | None = None
    embedder: str | None = None
    #: Worker threads per process for decoding, models and the database.
    threads: int = 2
    #: Whole request body (all images and fields together).
    max_request_bytes: int = 32 * MiB
    #: One encoded image.
    max_image_bytes: int = 10 * MiB
    #: One decoded image (width x height).
    max_pixels: int = 40_000_000
    #: All the images of one request together, decoded (summed from their headers before any
    #: is decoded; 413 request_too_large above): one request's work is bounded, not only each
    #: image's. 200 MP: five images at ``max_pixels``, or 16 photos of a 12-MP phone camera.
    max_request_pixels: int = 200_000_000
    #: Faces one image may show in detect, embed and identify.
    max_faces: int = 50
    max_top_k: int = 100
    #: Images in one enrolment request.
    max_images: int = 20
    #: Requests a minute per API key (token bucket; 0: no limit) and the burst allowed.
    rate_limit: float = 600.0
    rate_burst: int | None = None
    #: Invalid API keys a minute from one client address before it gets 429 (0: no limit).
    auth_failure_limit: float = 30.0
    #: Seconds a connection has to send a request's head (line and headers): a client that
    #: trickles them (slowloris) is disconnected.
    header_timeout: float = 10.0
    #: Origins allowed by CORS; empty: CORS off (the web page is served from the same origin).
    cors_origins: tuple[str, ...] = ()
    #: The service's log level (debug, info, warning, error), in every worker process.
    log_level: str = "info"
    #: Keep a JPEG of each enrolled face (``--keep-thumbnails``); off: face pictures are raw
    #: biometric data, and the web page shows a placeholder without them.
    keep_thumbnails: bool = False
    #: A calibration card (``faceprint calibrate --out``) whose thresholds decide ``far``;
    #: answers name it in ``threshold_source`` (``card:<file>``). None: the model card's own.
    calibration: str | None = None
    #: Faces the detector scores below this are dropped; None: the detector card's default.
    min_score: float | None = None
    #: ``/v1/videos/identify``: the largest clip (bytes; the body limit ``max_request_bytes``
    #: applies too), its longest duration (seconds, from the container before decoding and
    #: from the frames' times while decoding), and the pixels of all its frames together
    #: (width x height x frames): the clip's decoding work bounded like an image request's.
    max_video_bytes: int = 30 * MiB
    #: 30 s: about 2 minutes of analysis at the ~7 frames/s measured on 2 shared cores
    #: (bench/service_live.py); a request longer than that is better sent to ``faceprint watch``.
    max_video_seconds: float = 30.0
    max_video_pixels: int = 2_000_000_000
    #: Live sessions (webcam streams, liveness checks), held in this process's memory: at most
    #: this many in all and per API key (a key at its limit first loses its finished ones).
    #: With ``--workers N`` each process holds its own: a session's frames must reach the
    #: process that created it (one worker, or sticky routing by session id).
    max_sessions: int = 64
    max_sessions_per_key: int = 4
    #: A stream ends after this many seconds without a frame.
    stream_idle_s: float = 60.0
    #: A liveness session takes frames for this many seconds after it is created; its result
    #: can then be read for ``liveness_result_s`` more.
    liveness_session_s: float = 30.0
    liveness_result_s: float = 300.0
    #: A random challenge's steps, and the seconds each step may take from its prompt (the
    #: session's time should exceed their product). 4 steps: a replay of one earlier session
    #: answers 3.0% of random 4-step challenges, 7.1% of 3-step ones (bench/liveness_signals.py).
    liveness_steps: int = 4
    liveness_step_timeout_s: float = 5.0
    #: A passive anti-spoofing ONNX model (with its sidecar JSON) whose score each result
    #: reports beside the active check's verdict; it does not decide it. None: no passive score.
    liveness_passive_model: str | None = None
    #: FOR TESTS AND DEMOS ONLY: every liveness session gets this challenge (``blink,turn_left``)
    #: instead of a random one, which defeats the replay protection (a recording of one session
    #: answers the next). The service logs a warning at start-up when it is set.
    liveness_challenge: str | None = None
    #: A file holding the secret that signs liveness results (HMAC-SHA256, a JWT), so that a
    #: relying party holding it can check them; None: a random secret per process (results can
    #: then be checked only through ``POST /v1/liveness/verify`` of the same process).
    liveness_secret_file: str | None = None

    def to_json(self) -> str:
        d: dict[str, Any] = asdict(self)
        d["gallery"] = str(self.gallery)
        d["cors_origins"] = list(self.cors_origins)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Settings from :meth:`to_json`'s text; unknown fields (from another version) are ignored."""
        d = json.loads(text)
        known = {f.name for f in fields(cls)}
        ignored = sorted(set(d) - known)
        if ignored:
            logger.warning("ignoring unknown service settings: %s", ", ".join(ignored))
        d = {k: v for k, v in d.items() if k in known}
        d["gallery"] = parse_location(d["gallery"])
        d["cors_origins"] = tuple(d.get("cors_origins") or ())
        return cls(**d)

    @classmethod
    def from_environment(cls) -> Settings:
        """The settings ``faceprint serve`` passed to this worker process."""
        text = env.service_settings()
        if not text:
            raise RuntimeError(f"{env.SERVICE_SETTINGS} is not set; start the service with `faceprint serve`")
        return cls.from_json(text)
