"""Errors over HTTP: each library error code's status, and the one JSON envelope every error has.

``{"error": {"code", "message", "details"}, "request_id"}``. The codes are the library's own
(:mod:`faceprint.errors`); :data:`HTTP_STATUS` gives each an explicit status (a unit test checks
that no error class is missing). FastAPI's own errors (validation, 404, 405) get the same
envelope from the handlers :func:`install_error_handlers` registers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from faceprint.errors import FaceprintError
from faceprint.service import schemas as S

logger = logging.getLogger(__name__)

#: The HTTP status of every error code of :mod:`faceprint.errors`.
HTTP_STATUS: dict[str, int] = {
    "faceprint_error": 400,
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
    # an optional part of faceprint (an extra) is not installed on the server
    "missing_dependency": 503,
    # the service's own gallery file is missing (a server's set-up, never the client's fault)
    "gallery_not_found": 503,
    # the gallery is encrypted and the server has not (or not the right) master key: its set-up
    "master_key_required": 503,
    "master_key_invalid": 503,
    # a stored ciphertext failed authentication (tampered, or its data key destroyed)
    "decryption_failed": 500,
    # the Dask scheduler of a batch run cannot be reached (a set-up problem, not the request)
    "cluster_unavailable": 503,
    # the service opens only its own temporary copy of an upload: a video it cannot find or
    # decode is the uploaded content's fault (not a missing URL resource, so not 404)
    "video_not_found": 422,
    "video_unreadable": 422,
    # the server could not write a video file (its disk or codecs)
    "video_write_failed": 500,
    # a clip over max_video_seconds
    "video_too_long": 413,
    # live sessions (streams, liveness): another key's session is "not found" too
    "session_not_found": 404,
    "session_expired": 410,
    "session_closed": 409,
    "frame_out_of_order": 409,
    "too_many_sessions": 429,
}
#: A code defined outside faceprint.errors (an enrolment rejection's reason) is a client error.
DEFAULT_STATUS = 400

#: The codes of the HTTP errors FastAPI and Starlette raise themselves.
HTTP_ERROR_CODES: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_argument",
    429: "rate_limited",
}

#: OpenAPI ``responses`` of every authenticated route, and of routes that name a subject or face.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": S.ErrorEnvelope, "description": "no valid API key"},
    403: {"model": S.ErrorEnvelope, "description": "the key lacks the scope"},
    413: {"model": S.ErrorEnvelope, "description": "request or image too large"},
    422: {"model": S.ErrorEnvelope, "description": "invalid input"},
    429: {"model": S.ErrorEnvelope, "description": "rate limit reached"},
}
NOT_FOUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": S.ErrorEnvelope, "description": "no such subject or face"},
}

#: Where the middleware keeps a request's id, in the ASGI scope's ``state``.
REQUEST_ID_KEY = "request_id"


def request_id(scope: Mapping[str, Any]) -> str:
    """The id the middleware gave this request (``""`` outside it)."""
    state: MutableMapping[str, Any] = scope.get("state", {})
    return str(state.get(REQUEST_ID_KEY, ""))


def http_status(code: str) -> int:
    """The HTTP status of an error code."""
    return HTTP_STATUS.get(code, DEFAULT_STATUS)


def envelope(code: str, message: str, details: Mapping[str, Any] | None, rid: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}, "request_id": rid}


def jsonable(value: Any) -> Any:
    """``value`` as it can be written as JSON (anything else as its ``str``)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def error_headers(exc: FaceprintError) -> dict[str, str]:
    """The headers an error's status calls for (``WWW-Authenticate``, ``Retry-After``)."""
    status = http_status(exc.code)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429 and "retry_after" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after"])
    return headers


def error_response(exc: FaceprintError, rid: str) -> JSONResponse:
    """A library error as its HTTP answer."""
    body = envelope(exc.code, exc.message, jsonable(exc.details), rid)
    return JSONResponse(body, http_status(exc.code), headers=error_headers(exc))


def validation_details(errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Pydantic's validation errors, reduced to what a client can use (no input echoed back)."""
    return {
        "errors": [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors
        ]
    }


async def faceprint_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceprintError)
    return error_response(exc, request_id(request.scope))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    body = envelope("invalid_argument", "the request is not valid", validation_details(exc.errors()),
                    request_id(request.scope))
    return JSONResponse(body, 422)


def leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes with methods under ``routes``, through included routers (which FastAPI wraps,
    keeping the router as ``original_router``) and mounts."""
    for route in routes:
        if getattr(route, "methods", None):
            yield route
            continue
        inner = getattr(route, "original_router", route)
        yield from leaf_routes(getattr(inner, "routes", None) or ())


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this request's path (Starlette's 405
    names only the first matching route's)."""
    methods: set[str] = set()
    for route in leaf_routes(request.app.router.routes):
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route.methods)
    return sorted(methods)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return JSONResponse(envelope(code, message, {}, request_id(request.scope)), exc.status_code,
                        headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app's routes raise answers with the envelope."""
    app.add_exception_handler(FaceprintError, faceprint_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
