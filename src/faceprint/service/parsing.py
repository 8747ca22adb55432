"""Request input of the recognition and enrolment routes: a multipart form with image files, or a
JSON body with base64 images, checked against the service's limits before any decoding.

Both forms carry the same fields, so a route reads :class:`Parsed` and never the raw request.
:func:`body_doc` publishes the two forms in the OpenAPI schema.

Every JSON the service reads (bodies, the routes' pydantic bodies through :class:`StrictJSONRoute`,
JSON form fields) goes through :func:`loads_strict`: no NaN or Infinity (which Python's parser
accepts and SQLite's JSON functions reject) and at most :data:`MAX_JSON_DEPTH` levels of nesting.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from faceprint.errors import (
    FaceprintError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidImageError,
    TooManyImagesError,
    UnsupportedMediaTypeError,
)
from faceprint.gallery.storage.base import is_unicode
from faceprint.service.errors import validation_details
from faceprint.service.settings import Settings

logger = logging.getLogger(__name__)

#: Text fields of a form besides the images (far, top_k, where ...).
MAX_FORM_FIELDS = 100
#: Objects and arrays nest at most this deep in a request's JSON (a body or a form field).
MAX_JSON_DEPTH = 32


class NonFiniteNumberError(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in JSON text."""


def refuse_constant(text: str) -> float:
    raise NonFiniteNumberError(text)


def json_problem(value: Any) -> str | None:
    """What :func:`loads_strict` refuses in a parsed value, in one walk without recursion:
    ``"too_deep"`` (objects and arrays over :data:`MAX_JSON_DEPTH`), ``"non_finite_number"``
    (a number like ``1e999`` that overflows to infinity), ``"invalid_unicode"`` (a lone
    surrogate, from a ``\\ud800`` escape, in a key or a string: valid JSON, but text no UTF-8
    encoder or database takes); None when there is nothing to refuse.

    Only containers go on the stack; scalars are checked where they are found (the walk is most
    of the cost for a body of many small values)."""
    if not isinstance(value, (dict, list)):
        value = [value]
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return "too_deep"
        if isinstance(item, dict):
            for key in item:
                if not key.isascii() and not is_unicode(key):
                    return "invalid_unicode"
            children: Any = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind is str:
                if not child.isascii() and not is_unicode(child):  # isascii: a fast pass over base64
                    return "invalid_unicode"
            elif kind is float:
                if not math.isfinite(child):
                    return "non_finite_number"
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
    return None


def loads_strict(data: str | bytes, what: str = "the request body") -> Any:
    """JSON as the service accepts it: :class:`InvalidArgumentError` for text that is not JSON,
    for NaN and Infinity (and numbers too large for a float), for nesting over
    :data:`MAX_JSON_DEPTH` levels (deeper than Python's parser can go included), and for a lone
    surrogate in a string."""
    try:
        value = json.loads(data, parse_constant=refuse_constant)
    except NonFiniteNumberError as exc:
        problem: str | None = "non_finite_number"
        shown = f" ({str(exc)[:20]})"
    except RecursionError:
        problem, shown = "too_deep", ""
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise InvalidArgumentError(f"{what} is not valid JSON", details={"reason": "invalid_json"}) from None
    else:
        problem, shown = json_problem(value), ""
    if problem == "non_finite_number":
        raise InvalidArgumentError(f"{what} holds a number that is not finite{shown}; JSON has no NaN or Infinity",
                                   details={"reason": problem})
    if problem == "too_deep":
        raise InvalidArgumentError(f"{what} nests over {MAX_JSON_DEPTH} levels deep",
                                   details={"reason": problem, "max_depth": MAX_JSON_DEPTH})
    if problem == "invalid_unicode":
        raise InvalidArgumentError(f"{what} holds text that is not valid Unicode (a lone surrogate)",
                                   details={"reason": problem})
    return value


class StrictJSONRequest(Request):
    """A request whose :meth:`json` is :func:`loads_strict` (parsed once)."""

    parsed: tuple[Any] | None = None

    async def json(self) -> Any:
        if self.parsed is None:
            self.parsed = (loads_strict(await self.body()),)
        return self.parsed[0]


def is_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))


class StrictJSONRoute(APIRoute):
    """The route class of the service's routers: a JSON body is read by :func:`loads_strict`
    before FastAPI validates it, so its errors are the service's own (``invalid_argument``
    with the envelope's details), not FastAPI's generic 400."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            if is_json(strict) and await strict.body():
                await strict.json()  # refused here, with the envelope
            return await handler(strict)

        return strict_handler


@dataclass
class Upload:
    """One image as sent: the label its results report (file name or field) and its bytes."""

    label: str
    data: bytes


@dataclass
class Parsed:
    """A request's validated parameters and its images by field name."""

    params: dict[str, Any]
    images: dict[str, list[Upload]] = field(default_factory=dict)

    def one(self, name: str) -> Upload:
        """The image of a required single-image field."""
        found = self.images.get(name)
        if not found:
            raise InvalidArgumentError(f"the image field {name!r} is required", details={"field": name})
        return found[0]

    def optional(self, name: str) -> Upload | None:
        """The image of an optional single-image field, or None."""
        found = self.images.get(name)
        return found[0] if found else None


def decode_base64(value: Any, label: str, settings: Settings) -> Upload:
    """A base64 image (a ``data:`` URL too), refused by its length before it is decoded."""
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


async def read_upload(upload: UploadFile, field_name: str, settings: Settings) -> Upload:
    """An uploaded file's bytes, reading at most one byte over the image limit."""
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


def validate(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked by ``model``, as a plain dict; ``InvalidArgumentError`` with the reasons."""
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        raise InvalidArgumentError("the request's fields are not valid",
                                   details=validation_details(exc.errors())) from None


def too_many_images(settings: Settings, given: int | None = None) -> TooManyImagesError:
    details: dict[str, Any] = {"max_images": settings.max_images}
    if given is None:
        return TooManyImagesError(f"at most {settings.max_images} images a request", details=details)
    return TooManyImagesError(f"at most {settings.max_images} images a request; got {given}",
                              details={**details, "images": given})


async def parse_json(
    request: Request,
    settings: Settings,
    json_model: type[BaseModel],
    single: tuple[str, ...],
    multiple: str | None,
) -> Parsed:
    # StrictJSONRoute has parsed it already
    body = await request.json() if isinstance(request, StrictJSONRequest) else loads_strict(await request.body())
    if not isinstance(body, dict):
        raise InvalidArgumentError("the request body must be a JSON object")
    doc = validate(json_model, body)
    images: dict[str, list[Upload]] = {}
    for name in single:
        value = doc.pop(name, None)
        if value is not None:
            images[name] = [decode_base64(value, name, settings)]
    if multiple:
        values = doc.pop(multiple) or []
        if len(values) > settings.max_images:
            raise too_many_images(settings, len(values))
        images[multiple] = [decode_base64(v, f"{multiple}[{i}]", settings) for i, v in enumerate(values)]
    return Parsed(doc, images)


async def parse_form(
    request: Request,
    settings: Settings,
    params_model: type[BaseModel],
    single: tuple[str, ...],
    multiple: str | None,
    json_fields: tuple[str, ...],
) -> Parsed:
    names = (*single, *((multiple,) if multiple else ()))
    try:
        # a text part may carry a base64 image, hence the part size above the image limit
        form = await request.form(max_files=settings.max_images + len(single), max_fields=MAX_FORM_FIELDS,
                                  max_part_size=settings.max_image_bytes * 4 // 3 + 4096)
    except FaceprintError:
        raise
    except Exception as exc:  # malformed multipart, too many parts
        detail = getattr(exc, "detail", None) or str(exc) or "malformed multipart body"
        if "too many files" in str(detail).lower():
            raise too_many_images(settings) from None
        raise InvalidArgumentError(f"cannot read the form: {detail}") from None
    images: dict[str, list[Upload]] = {}
    params: dict[str, Any] = {}
    try:
        for key, value in form.multi_items():
            if key in names:
                if not isinstance(value, UploadFile):
                    # a text field holding the image as base64 is accepted too
                    images.setdefault(key, []).append(decode_base64(value, key, settings))
                    continue
                if key == multiple and len(images.get(key, [])) >= settings.max_images:
                    raise too_many_images(settings)
                images.setdefault(key, []).append(await read_upload(value, key, settings))
            elif isinstance(value, UploadFile):
                raise InvalidArgumentError(f"unexpected file field {key!r}; expected {', '.join(names)}",
                                           details={"field": key})
            elif key in params:  # one value a field: which of two would be meant?
                raise InvalidArgumentError(f"give the field {key!r} once", details={"field": key})
            elif key in json_fields and value.strip():
                params[key] = loads_strict(value, key)
            elif value != "":
                params[key] = value
    finally:
        await form.close()
    for name in single:
        if len(images.get(name, [])) > 1:
            raise InvalidArgumentError(f"give one {name}", details={"field": name})
    return Parsed(validate(params_model, params), images)


async def parse_input(
    request: Request,
    settings: Settings,
    params_model: type[BaseModel],
    json_model: type[BaseModel],
    single: tuple[str, ...] = (),
    multiple: str | None = None,
    json_fields: tuple[str, ...] = (),
) -> Parsed:
    """Images and parameters from a multipart form or a JSON body with base64 images.

    ``single``: fields of one image each; ``multiple``: a field of several (at most
    ``max_images``); ``json_fields``: form text fields holding a JSON object (``where``).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return await parse_json(request, settings, json_model, single, multiple)
    if ctype == "multipart/form-data":
        return await parse_form(request, settings, params_model, single, multiple, json_fields)
    raise UnsupportedMediaTypeError(
        "send multipart/form-data (image files) or application/json (base64 images)",
        details={"content_type": ctype or None},
    )


def body_doc(params_model: type[BaseModel], json_model: type[BaseModel], files: dict[str, bool],
             required: list[str], json_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that takes a multipart form or JSON (``files``:
    field name -> whether it takes several files), and its 415 for any other content type."""
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
        },
        "responses": {
            "415": {
                "description": "neither multipart/form-data nor application/json",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
            },
        },
    }
