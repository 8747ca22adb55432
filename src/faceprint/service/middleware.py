"""The service's own ASGI middleware: request ids, the API key, the body limit, last-resort errors,
the access log and the security headers; and CORS when origins are configured.

The key is authenticated here, before a byte of the body is read: a client without a valid key
gets its 401 (or, after too many invalid keys from its address, 429) without the service reading,
let alone parsing, what it sent. The scope check and the per-key rate limit need the route, so
the auth dependency (:func:`faceprint.service.deps.require`) applies them to the key found here.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceprint.errors import FaceprintError, RequestTooLargeError, UnauthorizedError
from faceprint.gallery.types import ApiKey
from faceprint.service.errors import REQUEST_ID_KEY, envelope, error_headers, http_status, jsonable
from faceprint.service.settings import Settings
from faceprint.service.state import Service

logger = logging.getLogger(__name__)
#: One JSON line per request; named so that an operator can route it apart from the rest.
access_log = logging.getLogger("faceprint.service.access")

#: The scope-state key under which the key id is recorded, for the access log.
KEY_ID_KEY = "key_id"
#: The scope-state key of the authenticated key's record (:class:`~faceprint.service.auth.ApiKey`).
API_KEY_KEY = "api_key"
#: The only ``/v1/`` routes that need no key.
PUBLIC_PATHS = frozenset({"/v1/health"})

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Not the API: the web page and its assets get a content security policy instead of no-store.
API_DOCS = ("/docs", "/redoc", "/openapi.json")


def presented_key(headers: Headers) -> str | None:
    """The key a request presents: ``Authorization: Bearer KEY``, else ``X-API-Key: KEY``."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


def needs_key(scope: Scope) -> bool:
    """Every ``/v1/`` route but :data:`PUBLIC_PATHS` needs a key (a CORS preflight carries none)."""
    path = str(scope.get("path", ""))
    return path.startswith("/v1/") and path not in PUBLIC_PATHS and scope.get("method") != "OPTIONS"


def service_of(scope: Scope) -> Service | None:
    """The :class:`Service` of the app this request is for (None around another ASGI app)."""
    service = getattr(getattr(scope.get("app"), "state", None), "service", None)
    return service if isinstance(service, Service) else None


async def authenticate(svc: Service, scope: Scope, headers: Headers) -> ApiKey:
    """The request's key, or :class:`UnauthorizedError`; an invalid key also takes a token from
    its address's bucket of failed attempts (:class:`RateLimitedError` once it is empty)."""
    presented = presented_key(headers)
    try:
        return await run_in_threadpool(svc.keys.authenticate, presented)  # SQLite: off the event loop
    except UnauthorizedError:
        if presented:
            client = scope.get("client") or ("", 0)
            svc.auth_failures.check(str(client[0]))
        raise


def security_headers(rid: str, page: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (a page gets a CSP, an API answer ``no-store``)."""
    out = [
        (b"x-request-id", rid.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if page:
        out.append((b"content-security-policy", PAGE_CSP.encode()))
    else:
        out.append((b"cache-control", b"no-store"))
    return out


@dataclass
class Exchange:
    """What the middleware knows of one request/response while it passes through."""

    status: int = 0
    started: bool = False
    too_large: bool = False
    #: The app's response was replaced by the 413 answer (its messages are dropped).
    replaced: bool = False
    bytes_in: int = 0
    bytes_out: int = 0


class ServiceMiddleware:
    """Pure ASGI, outermost of the app's own middleware.

    Gives every request an id (``X-Request-ID``: the client's if it is a plain token, else a
    new one) and puts it on every response; authenticates the API key of a ``/v1/`` route
    (:func:`authenticate`) before reading its body; refuses bodies over ``max_request_bytes``
    (from ``Content-Length`` before reading anything, or while streaming, with 413); turns
    any unexpected exception into a 500 envelope (the traceback goes to the log, never to
    the client); writes one JSON access-log line per request.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_request_bytes

    def too_large(self) -> RequestTooLargeError:
        return RequestTooLargeError(f"the request body is over the limit of {self.limit:,} bytes",
                                    details={"max_request_bytes": self.limit})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state[REQUEST_ID_KEY] = rid
        started = time.perf_counter()
        ex = Exchange()
        path = str(scope.get("path", ""))
        page = not path.startswith("/v1/") and path not in API_DOCS

        async def send_json(status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            hdrs += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
            hdrs += security_headers(rid, False)
            ex.started, ex.status = True, status
            ex.bytes_out += len(data)
            await send({"type": "http.response.start", "status": status, "headers": hdrs})
            await send({"type": "http.response.body", "body": data})

        async def send_413() -> None:
            exc = self.too_large()
            ex.replaced = True
            await send_json(413, envelope(exc.code, exc.message, exc.details, rid))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                if ex.too_large and not ex.started:
                    await send_413()
                    return
                ex.started = True
                ex.status = message["status"]
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                cached = any(k.lower() == b"cache-control" for k, _ in hdrs)
                hdrs += [(k, v) for k, v in security_headers(rid, page) if not (cached and k == b"cache-control")]
                message = {**message, "headers": hdrs}
            elif message["type"] == "http.response.body":
                if ex.replaced:
                    return
                ex.bytes_out += len(message.get("body", b""))
            await send(message)

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                ex.bytes_in += len(message.get("body", b""))
                if ex.bytes_in > self.limit:
                    ex.too_large = True
                    raise self.too_large()
            return message

        try:
            svc = service_of(scope)
            if svc is not None and needs_key(scope):
                key = await authenticate(svc, scope, headers)  # before any of the body is read
                state[API_KEY_KEY] = key
                state[KEY_ID_KEY] = key.key_id
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                ex.too_large = True  # refused before a byte of the body is read
                await send_413()
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:  # the last line of defence: no stack trace reaches a client
            if ex.started or ex.replaced:
                logger.exception("error after the response started (request %s)", rid)
            elif ex.too_large:
                await send_413()
            elif isinstance(exc, FaceprintError):
                await send_json(http_status(exc.code), envelope(exc.code, exc.message, jsonable(exc.details), rid),
                                error_headers(exc))
            else:
                logger.exception("internal error (request %s)", rid)
                await send_json(500, envelope(
                    "internal_error", "internal server error; quote the request id when reporting it", {}, rid))
        finally:
            client = scope.get("client") or ("", 0)
            access_log.info(json.dumps({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": rid,
                "method": scope.get("method"),
                "path": path,
                "status": ex.status,
                "ms": round((time.perf_counter() - started) * 1000.0, 1),
                "bytes_in": ex.bytes_in,
                "bytes_out": ex.bytes_out,
                "client": client[0],
                "key_id": state.get(KEY_ID_KEY),
            }))


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """CORS (only for configured origins), then :class:`ServiceMiddleware` outermost."""
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(ServiceMiddleware, settings=settings)
