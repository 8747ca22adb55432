"""``POST /v1/videos/identify``: a short clip in, the tracks and their names out (scope ``recognize``).

The upload (multipart field ``video``) is copied to a temporary file of this process (OpenCV
reads files, not bytes), which is deleted when the request ends, whatever happens. Its work is
bounded before and while it is decoded:

- ``max_video_bytes``: the file (and the body limit ``max_request_bytes``);
- ``max_pixels``: each frame (from the container's header, before a pixel is decoded);
- ``max_video_seconds``: the clip's duration from its header, then the frames' own times (a
  client may ask for the first ``max_seconds`` only); 413 ``video_too_long``;
- ``max_video_pixels``: width x height x the frames to decode, like an image request's
  ``max_request_pixels``; 413 ``request_too_large``.

The frames go through a :class:`~faceprint.video.watch.Watcher` in the worker pool, one turn of
the model lock per frame (like one image of ``/v1/identify``), so other requests are served
between the clip's frames; at most ``threads - 1`` clips are analysed at once (the others wait
their turn outside the pool), so that a thread is always left for short requests.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from faceprint.errors import (
    FaceprintError,
    InvalidArgumentError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    VideoTooLongError,
)
from faceprint.service import schemas as S
from faceprint.service.deps import RecognizeKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES
from faceprint.service.parsing import MAX_FORM_FIELDS, StrictJSONRoute, validate
from faceprint.service.routers.streams import watch_options
from faceprint.service.sessions import SessionsDep
from faceprint.service.settings import Settings
from faceprint.service.state import Service
from faceprint.video.events import Event
from faceprint.video.source import open_source
from faceprint.video.watch import Watcher

logger = logging.getLogger(__name__)

router = APIRouter(tags=["videos"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)

#: Bytes copied at a time from the upload to the temporary file.
CHUNK = 1024 * 1024
_EXTENSION = re.compile(r"^\.[a-z0-9]{1,5}$")


def suffix_of(filename: str | None) -> str:
    """The upload's extension when it is a plain one (FFmpeg probes the content anyway)."""
    ext = Path(filename or "").suffix.lower()
    return ext if _EXTENSION.match(ext) else ".video"


async def receive_video(request: Request, settings: Settings) -> tuple[dict[str, Any], str, Path]:
    """The form's parameters, the clip's label (its file name) and the temporary file it was
    copied to (the caller deletes it). Refuses a body that is not a form with one ``video``
    file of at most ``max_video_bytes``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise UnsupportedMediaTypeError("send the clip as multipart/form-data (a file in the field 'video')",
                                        details={"content_type": ctype or None})
    try:
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=64 * 1024)
    except FaceprintError:
        raise
    except Exception as exc:  # malformed multipart, too many parts
        detail = getattr(exc, "detail", None) or str(exc) or "malformed multipart body"
        raise InvalidArgumentError(f"cannot read the form: {detail}") from None
    try:
        params: dict[str, Any] = {}
        video: UploadFile | None = None
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "video":
                    raise InvalidArgumentError(f"unexpected file field {name!r}; expected 'video'", details={"field": name})
                video = value
            elif name == "video":
                raise InvalidArgumentError("the field 'video' must be a file", details={"field": name})
            elif name in params:
                raise InvalidArgumentError(f"give the field {name!r} once", details={"field": name})
            elif value != "":
                params[name] = value
        if video is None:
            raise InvalidArgumentError("the file field 'video' is required", details={"field": "video"})
        parsed = validate(S.VideoParams, params)
        label = video.filename or "video"
        path = await copy_upload(video, label, settings.max_video_bytes)
    finally:
        await form.close()
    return parsed, label, path


async def copy_upload(video: UploadFile, label: str, limit: int) -> Path:
    """The upload copied to a new temporary file (deleted again if the copy fails)."""
    if video.size is not None and video.size > limit:
        raise RequestTooLargeError(f"{label} is {video.size:,} bytes; the limit is {limit:,} (max_video_bytes)",
                                 details={"field": "video", "bytes": video.size, "max_bytes": limit})
    fd, name = tempfile.mkstemp(prefix="faceprint-upload-", suffix=suffix_of(video.filename))
    path = Path(name)
    try:
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := await video.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise RequestTooLargeError(f"{label} is over the limit of {limit:,} bytes (max_video_bytes)",
                                             details={"field": "video", "max_bytes": limit})
                out.write(chunk)
        if written == 0:
            raise InvalidArgumentError(f"{label} is empty", details={"field": "video"})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def too_long(label: str, seconds: float, limit: float) -> VideoTooLongError:
    return VideoTooLongError(
        f"{label} lasts {seconds:.1f} s; at most {limit:g} s are analysed in one request (max_video_seconds): "
        "send a shorter clip, or ask for the first seconds only (max_seconds)",
        details={"seconds": round(seconds, 3), "max_video_seconds": limit})


def too_many_pixels(label: str, pixels: int, budget: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"{label} decodes to {pixels:,} pixels or more; at most {budget:,} are handled in one request "
        "(max_video_pixels): send a shorter or smaller clip",
        details={"pixels": pixels, "max_video_pixels": budget})


def video_work(svc: Service, path: Path, label: str, p: dict[str, Any]) -> dict[str, Any]:
    settings = svc.settings
    limit_s = settings.max_video_seconds
    wanted_s = p["max_seconds"]
    if wanted_s is not None and wanted_s > limit_s:
        raise InvalidArgumentError(f"max_seconds is at most {limit_s:g} (max_video_seconds); got {wanted_s:g}",
                                   details={"max_seconds": wanted_s, "max_video_seconds": limit_s})
    started = time.perf_counter()
    source = open_source(path, max_pixels=svc.limits.max_pixels)
    try:
        info = source.info
        frame_pixels = info.width * info.height
        if info.frame_count is not None and info.fps:
            duration = info.frame_count / info.fps
            if wanted_s is None and duration > limit_s + 0.5 / info.fps:
                raise too_long(label, duration, limit_s)
            frames = min(info.frame_count, math.ceil((wanted_s or limit_s) * info.fps) + 1)
            if frames * frame_pixels > settings.max_video_pixels:
                raise too_many_pixels(label, frames * frame_pixels, settings.max_video_pixels)
        watcher = Watcher(svc.analyzer, svc.gallery, watch_options(p["far"], p["threshold"], p["every"]))
        started_event = {**watcher.started(info).to_dict(), "source": label}  # never the temporary path
        events: list[Event] = []
        decoded = pixels = 0
        for frame in source:
            if frame.time_s > (wanted_s if wanted_s is not None else limit_s):
                if wanted_s is None:  # the header said less: the frames decide
                    raise too_long(label, frame.time_s, limit_s)
                break
            pixels += frame.width * frame.height
            if pixels > settings.max_video_pixels:
                raise too_many_pixels(label, pixels, settings.max_video_pixels)
            decoded += 1
            with svc.model_lock:
                result = watcher.process(frame)
            events.extend(result.events)
        with svc.model_lock:
            events.extend(watcher.finish())
    finally:
        source.close()
    seconds = time.perf_counter() - started
    summary = watcher.summary()
    logger.info("clip %r: %d frames in %.1f s, %d track(s)", label, decoded, seconds, len(summary.tracks))
    return {
        "model": svc.analyzer.model_id,
        "video": {**info.to_dict(), "source": label},
        "events": [started_event, *(e.to_dict() for e in events)],
        "tracks": summary.tracks,
        "timing": {"frames": decoded, "seconds": round(seconds, 3), "fps": round(decoded / seconds, 2) if seconds else 0.0},
    }


@router.post("/v1/videos/identify", response_model=S.VideoIdentifyOut, openapi_extra={
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {**S.VideoParams.model_json_schema()["properties"],
                           "video": {"type": "string", "format": "binary"}},
            "required": ["video"],
        }}},
    },
    "responses": {"415": {"description": "not multipart/form-data",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}},
})
async def identify_video(request: Request, svc: ServiceDep, sessions: SessionsDep,
                         key: RecognizeKey) -> dict[str, Any]:
    """Who is in a short clip: its faces tracked, each track named at the model's threshold for
    ``far`` (default 1e-3) once its frames agree; the events in order, the last a summary."""
    params, label, path = await receive_video(request, svc.settings)
    try:
        async with sessions.video_slots:  # a clip waits here, not in the worker pool
            return await svc.run(video_work, svc, path, label, params)
    finally:
        path.unlink(missing_ok=True)
