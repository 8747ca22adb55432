"""Running the service: :func:`serve` starts uvicorn with ``workers`` processes, each of which
builds its app with :func:`create_app_from_env` from the settings ``serve`` passed on.

This is the service's process entry point (like the CLI), so it, and only it, gives the
service's loggers a handler.

The connections are uvicorn's h11 protocol with two changes (:class:`GuardedH11Protocol`): a
request's head (its line and headers) must arrive within ``header_timeout`` seconds, so a
client that trickles it (slowloris) is disconnected instead of holding a connection for ever;
and the 400 uvicorn answers for a malformed request or oversized headers is the service's JSON
envelope, like every other error.
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
import logging
import os
import uuid

import h11
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from faceprint import settings as env
from faceprint.gallery.storage.locate import describe_location
from faceprint.service.app import create_app
from faceprint.service.errors import HTTP_ERROR_CODES, envelope
from faceprint.service.middleware import security_headers
from faceprint.service.settings import Settings

logger = logging.getLogger(__name__)

#: What each uvicorn worker process imports and calls.
APP_FACTORY = "faceprint.service.server:create_app_from_env"
#: The access log (one JSON line a request) and the service's errors with tracebacks.
SERVICE_LOGGERS = ("faceprint.service.access", "faceprint.service")


#: The protocol class uvicorn runs (an import string: worker processes import it themselves).
HTTP_PROTOCOL = "faceprint.service.server:GuardedH11Protocol"


@functools.cache
def header_timeout() -> float:
    """This process's ``header_timeout``: from the settings ``faceprint serve`` passed on, else
    the default."""
    text = env.service_settings()
    return Settings.from_json(text).header_timeout if text else Settings.header_timeout


def error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error response with the service's envelope, closing the connection."""
    rid = uuid.uuid4().hex
    body = json.dumps(envelope(HTTP_ERROR_CODES[status], message, {}, rid)).encode()
    reason = http.HTTPStatus(status).phrase
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *security_headers(rid, False)]
    head = f"HTTP/1.1 {status} {reason}\r\n".encode() + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, but a connection waiting for a request's head is closed after
    :func:`header_timeout` seconds (with a 408 envelope if part of the head came), and its 400s
    are the service's envelope (code ``bad_request``).

    The clock starts when the connection opens, and again when the first byte of a later
    request on a kept-alive connection arrives; it stops once the head is complete (a slow
    body is bounded by the body limit, not by this). Between requests uvicorn's own
    keep-alive timeout applies.
    """

    head_timer: asyncio.TimerHandle | None = None
    head_started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.start_head_timer()

    def start_head_timer(self) -> None:
        self.stop_head_timer()
        self.head_started = False
        self.head_timer = self.loop.call_later(header_timeout(), self.head_timed_out)

    def stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and self.waiting_for_head():
            self.start_head_timer()  # a later request on a kept-alive connection
        if data and self.waiting_for_head():
            self.head_started = True
        super().data_received(data)
        if not self.waiting_for_head():
            self.stop_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head_timer()
        super().connection_lost(exc)

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.waiting_for_head():
            return
        self.logger.info("closing a connection from %s: no complete request head within %g s",
                         (self.client or ("?",))[0], header_timeout())
        if self.head_started:  # a partial request gets an answer; an idle connection is just closed
            self.transport.write(error_bytes(408, f"the request's headers did not arrive within {header_timeout():g} s"))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self.stop_head_timer()
        self.transport.write(error_bytes(400, f"{msg} (malformed, or headers over the size limit)"))
        self.transport.close()


def configure_logging(level: str = "info") -> None:
    """One JSON line per request on stderr (``faceprint.service.access``), errors with tracebacks."""
    for name in SERVICE_LOGGERS:
        log = logging.getLogger(name)
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s" if name.endswith("access") else
                                                   "%(asctime)s %(levelname)s %(name)s: %(message)s"))
            log.addHandler(handler)
            log.propagate = False
        log.setLevel(level.upper())


def create_app_from_env() -> FastAPI:
    """The app for the settings ``faceprint serve`` passed in ``$FACEPRINT_SERVICE_SETTINGS``
    (what each uvicorn worker runs)."""
    settings = Settings.from_environment()
    configure_logging(settings.log_level)
    return create_app(settings)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run the service on ``host:port`` with ``workers`` processes until it is stopped.

    The settings reach the worker processes as JSON in ``$FACEPRINT_SERVICE_SETTINGS``: uvicorn
    starts them from an import string (:data:`APP_FACTORY`) and cannot pass them an object.
    """
    import uvicorn  # only needed to run the server, not to build the app

    os.environ[env.SERVICE_SETTINGS] = settings.to_json()
    logger.info("serving %s on %s:%d with %d worker(s)", describe_location(settings.gallery), host, port, workers)
    uvicorn.run(
        APP_FACTORY, factory=True, host=host, port=port, workers=workers,
        log_level=settings.log_level, access_log=False, server_header=False, proxy_headers=False,
        http=HTTP_PROTOCOL,
    )
