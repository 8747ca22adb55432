"""The HTTP service: ``create_app(settings)`` builds the FastAPI app that ``faceprint serve`` runs.

Thin like the CLI: each route parses its input, calls the library (Analyzer, Gallery) in a
worker thread, and formats the library's ``to_dict()`` results. No face logic lives here.

Concurrency: the event loop only parses requests and writes answers; decoding, the models
and the database run in a pool of ``threads`` worker threads. Model calls within one process
are serialised by a lock (dlib's detectors and shape predictors are not safe to call from
two threads at once; onnxruntime already uses every core for one embedding batch);
``--workers N`` runs N processes for parallel model work. One :class:`Gallery` per process
is shared by its threads (its store and index have their own locks); several processes share
the gallery file safely (SQLite WAL; each process's index follows the database's change log).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Optional, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceprint import __version__
from faceprint.errors import (
    FaceprintError,
    ForbiddenError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidImageError,
    RequestTooLargeError,
    SubjectNotFoundError,
    TemplateNotFoundError,
    TooManyFacesError,
    TooManyImagesError,
    UnsupportedMediaTypeError,
)
from faceprint.imageio import ImageLimits, load_image
from faceprint.pipeline import Analyzer
from faceprint.service import schemas as S
from faceprint.service.auth import ApiKey, KeyStore
from faceprint.service.limits import RateLimiter

STATIC = Path(__file__).with_name("static")
SETTINGS_ENV = "FACEPRINT_SERVICE_SETTINGS"
access_log = logging.getLogger("faceprint.service.access")
error_log = logging.getLogger("faceprint.service")

MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with (``faceprint serve`` options)."""

    gallery: Path
    detector: str = "hog"
    embedder: str = "dlib-resnet34"
    #: Worker threads per process for decoding, models and the database.
    threads: int = 2
    #: Whole request body (all images and fields together).
    max_request_bytes: int = 32 * MiB
    #: One encoded image.
    max_image_bytes: int = 10 * MiB
    #: One decoded image (width x height).
    max_pixels: int = 40_000_000
    #: Faces one image may show in detect, embed and identify.
    max_faces: int = 50
    max_top_k: int = 100
    #: Images in one enrolment request.
    max_images: int = 20
    #: Requests a minute per API key (token bucket; 0: no limit) and the burst allowed.
    rate_limit: float = 600.0
    rate_burst: Optional[int] = None
    #: Origins allowed by CORS; empty: CORS off (the web page is served from the same origin).
    cors_origins: tuple[str, ...] = ()

    def to_json(self) -> str:
        d = asdict(self)
        d["gallery"] = str(self.gallery)
        d["cors_origins"] = list(self.cors_origins)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        d = json.loads(text)
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["gallery"] = Path(d["gallery"])
        d["cors_origins"] = tuple(d.get("cors_origins") or ())
        return cls(**d)


# --- errors -----------------------------------------------------------------------------------
HTTP_STATUS: dict[str, int] = {
    "invalid_image": 422,
    "image_too_large": 413,
    "invalid_argument": 422,
    "no_face": 422,
    "face_not_found": 422,
    "unknown_model": 422,
    "invalid_model": 422,
    "model_unavailable": 503,
    "model_integrity": 503,
    "onnx_runtime_failed": 503,
    "model_conversion_failed": 503,
    "model_mismatch": 409,
    "subject_not_found": 404,
    "subject_exists": 409,
    "duplicate_image": 409,
    "template_not_found": 404,
    "gallery_unavailable": 503,
    "unauthorized": 401,
    "forbidden": 403,
    "key_not_found": 404,
    "rate_limited": 429,
    "request_too_large": 413,
    "too_many_images": 413,
    "too_many_faces": 422,
    "unsupported_media_type": 415,
}
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
               415: "unsupported_media_type", 422: "invalid_argument", 429: "rate_limited"}


def _request_id(scope_or_request: Any) -> str:
    state = scope_or_request.scope.get("state", {}) if hasattr(scope_or_request, "scope") else scope_or_request.get("state", {})
    return state.get("request_id", "")


def envelope(code: str, message: str, details: dict[str, Any] | None, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}, "request_id": request_id}


def error_response(exc: FaceprintError, request_id: str) -> JSONResponse:
    status = HTTP_STATUS.get(exc.code, 400)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429 and "retry_after" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after"])
    return JSONResponse(envelope(exc.code, exc.message, _jsonable(exc.details), request_id), status, headers=headers)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def _validation_details(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"errors": [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                       for e in errors]}


# --- the middleware: request ids, body limit, last-resort errors, access log -----------------
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
             "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class ServiceMiddleware:
    """Pure ASGI, outermost of the app's own middleware.

    Gives every request an id (``X-Request-ID``: the client's if it is a plain token, else a
    new one) and puts it on every response; refuses bodies over ``max_request_bytes``
    (from ``Content-Length`` before reading anything, or while streaming, with 413); turns
    any unexpected exception into a 500 envelope (the traceback goes to the log, never to
    the client); writes one JSON access-log line per request.
    """

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_request_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        info = {"status": 0, "started": False, "too_large": False, "replaced": False, "bytes_in": 0, "bytes_out": 0}
        path = scope.get("path", "")
        page = not path.startswith("/v1/") and path not in ("/docs", "/redoc", "/openapi.json")

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                if info["too_large"] and not info["started"]:
                    info["replaced"] = True
                    await _send_json(send, 413, envelope(
                        "request_too_large", f"the request body is over the limit of {self.limit:,} bytes",
                        {"max_request_bytes": self.limit}, rid), rid, info)
                    return
                info["started"] = True
                info["status"] = message["status"]
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                cached = any(k.lower() == b"cache-control" for k, _ in hdrs)
                hdrs += [(k, v) for k, v in _security_headers(rid, page) if not (cached and k == b"cache-control")]
                message = {**message, "headers": hdrs}
            elif message["type"] == "http.response.body":
                if info["replaced"]:
                    return
                info["bytes_out"] += len(message.get("body", b""))
            await send(message)

        async def receive_wrapper() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                info["bytes_in"] += len(message.get("body", b""))
                if info["bytes_in"] > self.limit:
                    info["too_large"] = True
                    raise RequestTooLargeError(
                        f"the request body is over the limit of {self.limit:,} bytes",
                        details={"max_request_bytes": self.limit},
                    )
            return message

        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                info["too_large"] = True
                await send_wrapper({"type": "http.response.start", "status": 413, "headers": []})
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:  # the last line of defence: no stack trace reaches a client
            if info["started"] or info["replaced"]:
                error_log.exception("error after the response started (request %s)", rid)
            elif info["too_large"]:
                await send_wrapper({"type": "http.response.start", "status": 413, "headers": []})
            elif isinstance(exc, FaceprintError):
                resp = error_response(exc, rid)
                await _send_json(send, resp.status_code, json.loads(resp.body), rid, info, dict(resp.headers))
            else:
                error_log.exception("internal error (request %s)", rid)
                await _send_json(send, 500, envelope(
                    "internal_error", "internal server error; quote the request id when reporting it", {}, rid), rid, info)
        finally:
            access_log.info(json.dumps({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": rid,
                "method": scope.get("method"),
                "path": path,
                "status": info["status"],
                "ms": round((time.perf_counter() - started) * 1000.0, 1),
                "bytes_in": info["bytes_in"],
                "bytes_out": info["bytes_out"],
                "client": (scope.get("client") or ("", 0))[0],
                "key_id": state.get("key_id"),
            }))


def _security_headers(rid: str, page: bool) -> list[tuple[bytes, bytes]]:
    out = [
        (b"x-request-id", rid.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if page:
        out.append((b"content-security-policy", _PAGE_CSP.encode()))
    else:
        out.append((b"cache-control", b"no-store"))
    return out


async def _send_json(send: Callable, status: int, body: dict, rid: str, info: dict, extra: dict | None = None) -> None:
    data = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    for k, v in (extra or {}).items():
        if k.lower() in ("retry-after", "www-authenticate"):
            hdrs.append((k.lower().encode(), v.encode()))
    hdrs += _security_headers(rid, False)
    info["started"] = True
    info["status"] = status
    info["bytes_out"] += len(data)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": data})


# --- the service's state ------------------------------------------------------------------------
T = TypeVar("T")


class Service:
    """What one process of the app holds: the gallery, the analyzer, keys, limits, the pool."""

    def __init__(self, settings: Settings) -> None:
        from faceprint.gallery import Gallery

        self.settings = settings
        self.limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_pixels)
        self.analyzer = Analyzer(settings.detector, settings.embedder, limits=self.limits)
        self.gallery = Gallery.open(settings.gallery, analyzer=self.analyzer)
        self.keys = KeyStore(settings.gallery)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="faceprint")
        self.model_lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Model work (decode, detect, embed, search, enrol) in the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kwargs))

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Short database work (keys, subject listings) in the general thread pool, so that it
        never waits behind model work."""
        return await run_in_threadpool(partial(fn, *args, **kwargs))

    def warm_up(self) -> None:
        with self.model_lock:
            _ = self.analyzer.detector, self.analyzer.landmarker, self.analyzer.embedder

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.gallery.close()
        self.keys.close()


@dataclass
class Upload:
    label: str
    data: bytes


@dataclass
class Parsed:
    params: dict[str, Any]
    images: dict[str, list[Upload]] = field(default_factory=dict)


# --- request parsing: multipart or JSON with base64 -------------------------------------------
def _b64(value: Any, label: str, settings: Settings) -> Upload:
    if not isinstance(value, str):
        raise InvalidImageError(f"{label} must be a base64 string", details={"field": label})
    text = value.strip()
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) * 3 // 4 > settings.max_image_bytes + 3:
        raise ImageTooLargeError(
            f"{label} is over the limit of {settings.max_image_bytes:,} bytes",
            details={"field": label, "max_bytes": settings.max_image_bytes},
        )
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImageError(f"{label} is not valid base64", details={"field": label, "reason": "bad_base64"}) from None
    return Upload(label, data)


async def _read_upload(upload: UploadFile, field_name: str, settings: Settings) -> Upload:
    label = upload.filename or field_name
    size = upload.size
    if size is not None and size > settings.max_image_bytes:
        raise ImageTooLargeError(
            f"{label} is {size:,} bytes; the limit is {settings.max_image_bytes:,}",
            details={"field": field_name, "bytes": size, "max_bytes": settings.max_image_bytes},
        )
    data = await upload.read(settings.max_image_bytes + 1)
    if len(data) > settings.max_image_bytes:
        raise ImageTooLargeError(
            f"{label} is over the limit of {settings.max_image_bytes:,} bytes",
            details={"field": field_name, "max_bytes": settings.max_image_bytes},
        )
    return Upload(label, data)


def _validate(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgumentError("the request's fields are not valid", details=_validation_details(exc.errors())) from None


async def parse_input(
    request: Request,
    settings: Settings,
    params_model: type[BaseModel],
    json_model: type[BaseModel],
    single: tuple[str, ...] = (),
    multiple: str | None = None,
    json_fields: tuple[str, ...] = (),
) -> Parsed:
    """Images and parameters from a multipart form or a JSON body with base64 images."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    images: dict[str, list[Upload]] = {}
    if ctype == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise InvalidArgumentError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidArgumentError("the request body must be a JSON object")
        doc = _validate(json_model, body).model_dump()
        for name in single:
            if doc.get(name) is not None:
                images[name] = [_b64(doc.pop(name), name, settings)]
            else:
                doc.pop(name, None)
        if multiple:
            values = doc.pop(multiple) or []
            if len(values) > settings.max_images:
                raise TooManyImagesError(f"at most {settings.max_images} images a request; got {len(values)}",
                                         details={"max_images": settings.max_images, "images": len(values)})
            images[multiple] = [_b64(v, f"{multiple}[{i}]", settings) for i, v in enumerate(values)]
        return Parsed(doc, images)
    if ctype == "multipart/form-data":
        names = (*single, *((multiple,) if multiple else ()))
        try:
            # text parts may carry a base64 image
            form = await request.form(max_files=settings.max_images + len(single), max_fields=100,
                                      max_part_size=settings.max_image_bytes * 4 // 3 + 4096)
        except FaceprintError:
            raise
        except Exception as exc:  # malformed multipart, too many parts
            detail = getattr(exc, "detail", None) or str(exc) or "malformed multipart body"
            if "too many files" in str(detail).lower():
                raise TooManyImagesError(f"at most {settings.max_images} images a request",
                                         details={"max_images": settings.max_images}) from None
            raise InvalidArgumentError(f"cannot read the form: {detail}") from None
        params: dict[str, Any] = {}
        try:
            for key, value in form.multi_items():
                if key in names:
                    if not isinstance(value, UploadFile):
                        # a text field holding the image as base64 is accepted too
                        images.setdefault(key, []).append(_b64(value, key, settings))
                        continue
                    if key == multiple and len(images.get(key, [])) >= settings.max_images:
                        raise TooManyImagesError(f"at most {settings.max_images} images a request",
                                                 details={"max_images": settings.max_images})
                    images.setdefault(key, []).append(await _read_upload(value, key, settings))
                elif isinstance(value, UploadFile):
                    raise InvalidArgumentError(f"unexpected file field {key!r}; expected {', '.join(names)}",
                                               details={"field": key})
                else:
                    if key in json_fields and value.strip():
                        try:
                            params[key] = json.loads(value)
                        except ValueError:
                            raise InvalidArgumentError(f"{key} must be a JSON object", details={"field": key}) from None
                    elif value != "":
                        params[key] = value
        finally:
            await form.close()
        for name in single:
            if len(images.get(name, [])) > 1:
                raise InvalidArgumentError(f"give one {name}", details={"field": name})
        doc = _validate(params_model, params).model_dump()
        return Parsed(doc, images)
    raise UnsupportedMediaTypeError(
        "send multipart/form-data (image files) or application/json (base64 images)",
        details={"content_type": ctype or None},
    )


def _one(parsed: Parsed, name: str) -> Upload:
    found = parsed.images.get(name)
    if not found:
        raise InvalidArgumentError(f"the image field {name!r} is required", details={"field": name})
    return found[0]


def _body_doc(params_model: type[BaseModel], json_model: type[BaseModel], files: dict[str, bool],
              required: list[str], json_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI requestBody of a route that takes a multipart form or JSON."""
    form = params_model.model_json_schema()
    props = dict(form.get("properties", {}))
    for name in json_fields:
        props[name] = {"type": "string", "description": "a JSON object, as text"}
    for name, many in files.items():
        binary = {"type": "string", "format": "binary"}
        props[name] = {"type": "array", "items": binary} if many else binary
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": props, "required": required}},
                "application/json": {"schema": json_model.model_json_schema()},
            },
        }
    }


# --- the app ------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")

ERRORS = {
    401: {"model": S.ErrorEnvelope, "description": "no valid API key"},
    403: {"model": S.ErrorEnvelope, "description": "the key lacks the scope"},
    413: {"model": S.ErrorEnvelope, "description": "request or image too large"},
    422: {"model": S.ErrorEnvelope, "description": "invalid input"},
    429: {"model": S.ErrorEnvelope, "description": "rate limit reached"},
}
NOT_FOUND = {404: {"model": S.ErrorEnvelope, "description": "no such subject or face"}}


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (opens the gallery now, loads the models in the background)."""
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.pool.submit(svc.warm_up)
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(
        title="faceprint",
        version=__version__,
        description=(
            "Face detection, verification and identification over HTTP. Every decision reports the "
            "similarity, the threshold used and the false-accept rate it stands for. Errors: "
            '`{"error": {"code", "message", "details"}, "request_id"}`; every response has `X-Request-ID`.'
        ),
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = svc
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(ServiceMiddleware, settings=settings)

    @app.exception_handler(FaceprintError)
    async def _faceprint_error(request: Request, exc: FaceprintError) -> JSONResponse:
        return error_response(exc, _request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(envelope("invalid_argument", "the request is not valid",
                                     _validation_details(list(exc.errors())), _request_id(request)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(envelope(code, message, {}, _request_id(request)), exc.status_code,
                            headers=getattr(exc, "headers", None))

    def require(scope: str | None) -> Any:
        async def check(
            request: Request,
            bearer: Optional[HTTPAuthorizationCredentials] = Depends(_bearer),
            header_key: Optional[str] = Depends(_header_key),
        ) -> ApiKey:
            presented = bearer.credentials if bearer is not None else header_key
            key = await svc.db(svc.keys.authenticate, presented)
            request.scope.setdefault("state", {})["key_id"] = key.key_id
            if scope is not None and not key.allows(scope):
                raise ForbiddenError(f"this key has scopes {', '.join(key.scopes)}; this operation needs {scope!r}",
                                     details={"needed": scope, "scopes": list(key.scopes)})
            svc.limiter.check(key.key_id)
            return key

        return Depends(check)

    recognize, manage, admin, any_key = require("recognize"), require("manage"), require("admin"), require(None)

    # --- page ---------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # --- health and models ----------------------------------------------------------------------
    @app.get("/v1/health", response_model=S.Health, tags=["service"])
    async def health() -> dict:
        """Liveness; needs no key."""
        return {"status": "ok", "version": __version__, "model": svc.analyzer.model_id}

    @app.get("/v1/models", response_model=S.ModelsOut, tags=["service"], responses=ERRORS)
    async def list_models(key: ApiKey = any_key) -> dict:
        """The registered models with their cards (sources, licences, calibrated thresholds)."""
        from faceprint import models

        cards = await svc.db(models.list_cards)
        return {
            "models": [c.to_dict() for c in cards],
            "gallery_model": svc.gallery.model_id,
            "detector": svc.analyzer.detector_card.name,
            "embedder": svc.analyzer.model_id,
        }

    # --- recognition --------------------------------------------------------------------------
    def decode(upload: Upload):
        return load_image(upload.data, svc.limits)

    def detect_checked(rgb) -> list:
        with svc.model_lock:
            faces = svc.analyzer.detect_array(rgb)
        if len(faces) > settings.max_faces:
            raise TooManyFacesError(
                f"{len(faces)} faces found; at most {settings.max_faces} are handled in one image",
                details={"faces_found": len(faces), "max_faces": settings.max_faces},
            )
        return faces

    def do_detect(upload: Upload) -> dict:
        rgb = decode(upload)
        faces = detect_checked(rgb)
        return {"image_size": [rgb.shape[1], rgb.shape[0]], "faces": [f.to_dict() for f in faces]}

    def do_embed(upload: Upload) -> dict:
        rgb = decode(upload)
        faces = detect_checked(rgb)
        with svc.model_lock:
            embedded = svc.analyzer.embed_faces(rgb, faces)
        return {"model": svc.analyzer.model_id, "image_size": [rgb.shape[1], rgb.shape[0]],
                "faces": [e.to_dict() for e in embedded]}

    single_body = _body_doc(S.NoParams, S.ImageJSON, {"image": False}, ["image"])

    @app.post("/v1/detect", response_model=S.DetectOut, tags=["recognition"], responses=ERRORS, openapi_extra=single_body)
    async def detect(request: Request, key: ApiKey = recognize) -> dict:
        """Faces in one image, largest first: box, score, 5 landmarks, pose."""
        parsed = await parse_input(request, settings, S.NoParams, S.ImageJSON, single=("image",))
        return await svc.run(do_detect, _one(parsed, "image"))

    @app.post("/v1/embed", response_model=S.EmbedOut, tags=["recognition"], responses=ERRORS, openapi_extra=single_body)
    async def embed(request: Request, key: ApiKey = recognize) -> dict:
        """Faces in one image with their embeddings (float32, L2-normalised)."""
        parsed = await parse_input(request, settings, S.NoParams, S.ImageJSON, single=("image",))
        return await svc.run(do_embed, _one(parsed, "image"))

    def do_verify(a: Upload, b: Upload | None, p: dict[str, Any]) -> dict:
        rgb_a = decode(a)
        if b is not None:
            rgb_b = decode(b)
            with svc.model_lock:
                result = svc.analyzer.verify(rgb_a, rgb_b, far=p["far"], threshold=p["threshold"],
                                             face_a=p["face_a"], face_b=p["face_b"])
            out = result.to_dict()
            for face, upload in zip(out["faces"], (a, b)):
                face["path"] = upload.label
            return out
        with svc.model_lock:
            result = svc.gallery.verify_subject(rgb_a, p["subject_id"], far=p["far"], threshold=p["threshold"],
                                                face=p["face_a"], label=a.label)
        return result.to_dict()

    verify_body = _body_doc(S.VerifyParams, S.VerifyJSON, {"image_a": False, "image_b": False}, ["image_a"])

    @app.post("/v1/verify", response_model=S.VerifyOut, tags=["recognition"], responses={**ERRORS, **NOT_FOUND},
              openapi_extra=verify_body)
    async def verify(request: Request, key: ApiKey = recognize) -> dict:
        """Are two faces the same person? ``image_a`` with ``image_b``, or with an enrolled
        ``subject_id`` (its best-matching face). Decided at the model's threshold for ``far``
        (default 1e-3) or at ``threshold``."""
        parsed = await parse_input(request, settings, S.VerifyParams, S.VerifyJSON, single=("image_a", "image_b"))
        a = _one(parsed, "image_a")
        b = parsed.images.get("image_b", [None])[0]
        if (b is None) == (parsed.params.get("subject_id") is None):
            raise InvalidArgumentError("give image_b or subject_id (one of them)")
        return await svc.run(do_verify, a, b, parsed.params)

    def do_identify(upload: Upload, p: dict[str, Any]) -> dict:
        rgb = decode(upload)
        faces = detect_checked(rgb)
        with svc.model_lock:
            embedded = svc.analyzer.embed_faces(rgb, faces)
        found = svc.gallery.identify_faces(embedded, top_k=p["top_k"], far=p["far"], threshold=p["threshold"],
                                           where=p["where"])
        out = []
        for f in found:
            d = f.to_dict()
            d["subject_id"] = next((c.subject_id for c in f.candidates if f.identity is not None and c.subject == f.identity), None)
            out.append(d)
        return {"model": svc.analyzer.model_id, "image_size": [rgb.shape[1], rgb.shape[0]], "faces": out}

    @app.post("/v1/identify", response_model=S.IdentifyOut, tags=["recognition"], responses=ERRORS,
              openapi_extra=_body_doc(S.IdentifyParams, S.IdentifyJSON, {"image": False}, ["image"], ("where",)))
    async def identify(request: Request, key: ApiKey = recognize) -> dict:
        """Who is each face in the image? ``identity`` is null for someone not in the gallery."""
        parsed = await parse_input(request, settings, S.IdentifyParams, S.IdentifyJSON, single=("image",),
                                   json_fields=("where",))
        if parsed.params["top_k"] > settings.max_top_k:
            raise InvalidArgumentError(f"top_k is at most {settings.max_top_k}; got {parsed.params['top_k']}",
                                       details={"top_k": parsed.params["top_k"], "max_top_k": settings.max_top_k})
        return await svc.run(do_identify, _one(parsed, "image"), parsed.params)

    # --- subjects -----------------------------------------------------------------------------
    store = svc.gallery.store

    def thumb_face(subject_id: int) -> int | None:
        return next((t.id for t in store.templates(subject_id) if t.has_thumbnail), None)

    def subject_out(subject) -> dict:
        return {**subject.to_dict(), "thumbnail_face_id": thumb_face(subject.id)}

    @app.post("/v1/subjects", status_code=201, response_model=S.SubjectOut, tags=["subjects"],
              responses={**ERRORS, 409: {"model": S.ErrorEnvelope, "description": "the name is taken"}})
    async def create_subject(body: S.SubjectCreate, key: ApiKey = manage) -> dict:
        """A new person, with no faces yet (enrol them with POST /v1/subjects/{id}/faces)."""
        subject = await svc.db(store.create_subject, body.name, body.metadata)
        return subject_out(subject)

    @app.get("/v1/subjects", response_model=S.SubjectPage, tags=["subjects"], responses=ERRORS)
    async def list_subjects(
        limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
        name: Optional[str] = Query(None, description="only the subject of exactly this name"),
        key: ApiKey = manage,
    ) -> dict:
        """Enrolled people, by name, a page at a time."""

        def work() -> dict:
            if name is not None:
                try:
                    found = [store.subject(name)]
                except SubjectNotFoundError:
                    found = []
                return {"subjects": [subject_out(s) for s in found], "total": len(found), "limit": limit, "offset": 0}
            total = store.count()[0]
            return {"subjects": [subject_out(s) for s in store.subjects(limit, offset)], "total": total,
                    "limit": limit, "offset": offset}

        return await svc.db(work)

    @app.get("/v1/subjects/{subject_id}", response_model=S.SubjectDetail, tags=["subjects"],
             responses={**ERRORS, **NOT_FOUND})
    async def get_subject(subject_id: int, key: ApiKey = manage) -> dict:
        """One person and their enrolled faces."""

        def work() -> dict:
            subject = store.subject_by_id(subject_id)
            return {**subject_out(subject), "faces": [t.to_dict() for t in store.templates(subject_id)]}

        return await svc.db(work)

    @app.patch("/v1/subjects/{subject_id}", response_model=S.SubjectOut, tags=["subjects"],
               responses={**ERRORS, **NOT_FOUND, 409: {"model": S.ErrorEnvelope, "description": "the name is taken"}})
    async def patch_subject(subject_id: int, body: S.SubjectPatch, key: ApiKey = manage) -> dict:
        """Rename a person and/or replace their metadata."""

        def work() -> dict:
            subject = store.subject_by_id(subject_id)
            if body.name is not None and body.name.strip() != subject.name:
                subject = svc.gallery.rename(subject.name, body.name)
            if body.metadata is not None:
                subject = svc.gallery.update_metadata(subject.name, body.metadata)
            return subject_out(subject)

        return await svc.db(work)

    @app.delete("/v1/subjects/{subject_id}", response_model=S.Forgotten, tags=["subjects"],
                responses={**ERRORS, **NOT_FOUND})
    async def forget_subject(subject_id: int, key: ApiKey = manage) -> dict:
        """Forget a person: their faces, thumbnails and index entries are deleted in one
        transaction, the freed pages zeroed; identify never returns them again."""

        def work() -> dict:
            subject = store.subject_by_id(subject_id)
            removed = svc.gallery.forget(subject.name)
            return {"forgotten": subject.id, "name": subject.name, "faces_removed": removed}

        return await svc.db(work)

    def do_enrol(subject_id: int, uploads: list[Upload]) -> dict:
        subject = store.subject_by_id(subject_id)
        sources = []
        for u in uploads:
            f = io.BytesIO(u.data)
            f.name = u.label  # the label each outcome reports
            sources.append(f)
        with svc.model_lock:
            report = svc.gallery.enroll(subject.name, sources)
        return {"subject": subject_out(store.subject_by_id(subject_id)), **report.to_dict()}

    @app.post("/v1/subjects/{subject_id}/faces", response_model=S.EnrolOut, tags=["subjects"],
              responses={**ERRORS, **NOT_FOUND},
              openapi_extra=_body_doc(S.NoParams, S.EnrolJSON, {"images": True}, ["images"]))
    async def enrol(subject_id: int, request: Request, key: ApiKey = manage) -> dict:
        """Enrol one or more images of this person (one face each). Partial success: each
        rejected image has its reason (no_face, multiple_faces, face_too_small, low_quality,
        duplicate_image, invalid_image, image_too_large); the others are enrolled."""
        parsed = await parse_input(request, settings, S.NoParams, S.EnrolJSON, multiple="images")
        uploads = parsed.images.get("images") or []
        if not uploads:
            raise InvalidArgumentError("give at least one image in the field 'images'", details={"field": "images"})
        return await svc.run(do_enrol, subject_id, uploads)

    def face_of(subject_id: int, face_id: int):
        store.subject_by_id(subject_id)
        template = store.template(face_id)
        if template.subject_id != subject_id:
            raise TemplateNotFoundError(f"subject {subject_id} has no face {face_id}",
                                        details={"subject_id": subject_id, "face_id": face_id})
        return template

    @app.delete("/v1/subjects/{subject_id}/faces/{face_id}", response_model=S.FaceDeleted, tags=["subjects"],
                responses={**ERRORS, **NOT_FOUND})
    async def delete_face(subject_id: int, face_id: int, key: ApiKey = manage) -> dict:
        """Delete one enrolled face (its template and thumbnail)."""

        def work() -> dict:
            face_of(subject_id, face_id)
            svc.gallery.delete_face(face_id)
            return {"deleted_face": face_id, "subject_id": subject_id}

        return await svc.db(work)

    @app.get("/v1/subjects/{subject_id}/faces/{face_id}/thumbnail", response_class=Response, tags=["subjects"],
             responses={200: {"content": {"image/jpeg": {}}, "description": "the aligned face chip, JPEG"},
                        **ERRORS, **NOT_FOUND})
    async def thumbnail(subject_id: int, face_id: int, key: ApiKey = manage) -> Response:
        """The enrolled face's aligned chip as a JPEG."""

        def work() -> bytes:
            face_of(subject_id, face_id)
            data = svc.gallery.thumbnail(face_id)
            if data is None:
                raise TemplateNotFoundError(f"face {face_id} has no thumbnail", details={"face_id": face_id})
            return data

        return Response(await svc.db(work), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    # --- keys ---------------------------------------------------------------------------------
    @app.get("/v1/keys", response_model=S.KeyList, tags=["keys"], responses=ERRORS)
    async def list_keys(key: ApiKey = admin) -> dict:
        """Every API key (never the key itself: only hashes are stored)."""
        return {"keys": [k.to_dict() for k in await svc.db(svc.keys.list)]}

    @app.post("/v1/keys", status_code=201, response_model=S.KeyCreated, tags=["keys"], responses=ERRORS)
    async def create_key(body: S.KeyCreate, key: ApiKey = admin) -> dict:
        """A new key; the answer is the only time the key itself is shown."""
        secret, record = await svc.db(svc.keys.create, body.scopes, body.name)
        return {**record.to_dict(), "key": secret}

    @app.delete("/v1/keys/{key_id}", response_model=S.KeyOut, tags=["keys"],
                responses={**ERRORS, 404: {"model": S.ErrorEnvelope, "description": "no such key"}})
    async def revoke_key(key_id: str, key: ApiKey = admin) -> dict:
        """Revoke a key: it is refused from the next request on."""
        return (await svc.db(svc.keys.revoke, key_id)).to_dict()

    return app


def configure_logging(level: str = "info") -> None:
    """One JSON line per request on stderr (``faceprint.service.access``), errors with tracebacks."""
    for name in ("faceprint.service.access", "faceprint.service"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s" if name.endswith("access") else
                                                   "%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(level.upper())


def create_app_from_env() -> FastAPI:
    """The app for the settings in ``$FACEPRINT_SERVICE_SETTINGS`` (what each uvicorn worker runs)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RuntimeError(f"{SETTINGS_ENV} is not set; start the service with `faceprint serve`")
    configure_logging(os.environ.get("FACEPRINT_LOG_LEVEL", "info"))
    return create_app(Settings.from_json(text))
