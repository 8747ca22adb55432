"""``/v1/streams``: a webcam seen frame by frame (scope ``recognize``), the web page's "Live
identify" panel.

``POST /v1/streams`` creates a server-side tracker session (a
:class:`~faceprint.video.watch.Watcher` over the service's gallery); ``POST
/v1/streams/{id}/frames`` takes one frame (a JPEG) and answers with the faces tracked in it,
each named per track (a track's name holds across frames instead of flickering), and the
events the frame caused; ``DELETE /v1/streams/{id}`` ends the tracks and answers with the
summary. A stream with no frame for ``stream_idle_s`` seconds is dropped. The frames' times
are the server's receive times.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request

from faceprint.errors import SessionNotFoundError
from faceprint.service import schemas as S
from faceprint.service.deps import RecognizeKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES
from faceprint.service.parsing import StrictJSONRoute, Upload, body_doc, parse_input
from faceprint.service.routers.recognition import decode, image_size
from faceprint.service.sessions import SessionsDep, StreamSession
from faceprint.service.state import Service
from faceprint.video.track import TrackerConfig
from faceprint.video.watch import Watcher, WatchOptions

logger = logging.getLogger(__name__)

router = APIRouter(tags=["streams"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)

SESSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": S.ErrorEnvelope, "description": "no such stream for this key"},
}


#: How long a stream's track lives without a match: a webcam panel's frames come a few a second,
#: at the pace the service answers them (the clip-measured 0.5 s would end tracks between frames).
STREAM_MAX_AGE_S = 2.0


def watch_options(far: float | None, threshold: float | None, every: int | None = None, *,
                  live: bool = False) -> WatchOptions:
    """The watcher's options for a request's ``far``, ``threshold`` and ``every`` (None: its
    defaults). ``live``: a webcam's frames (no scene cuts; tracks live :data:`STREAM_MAX_AGE_S`)."""
    given: dict[str, Any] = {k: v for k, v in {"far": far, "threshold": threshold, "every": every}.items()
                             if v is not None}
    if live:
        given.update(cuts=False, tracker=TrackerConfig(max_age_s=STREAM_MAX_AGE_S))
    return WatchOptions(**given)


@router.post("/v1/streams", status_code=201, response_model=S.StreamOut,
             responses={429: {"model": S.ErrorEnvelope, "description": "too many open sessions"}})
async def create_stream(svc: ServiceDep, sessions: SessionsDep, key: RecognizeKey,
                        body: S.StreamCreate | None = None) -> dict[str, Any]:
    """A new stream: send its frames to ``/v1/streams/{stream_id}/frames``."""
    options = watch_options(body.far if body else None, body.threshold if body else None, live=True)
    watcher = Watcher(svc.analyzer, svc.gallery, options)
    idle = svc.settings.stream_idle_s
    entry = sessions.streams.add(key.key_id, lambda _sid, created: StreamSession(watcher, created), idle)
    return {"stream_id": entry.id, "model": svc.analyzer.model_id, "idle_timeout_s": idle}


def frame_work(svc: Service, stream_id: str, session: StreamSession, upload: Upload, received: float) -> dict[str, Any]:
    [rgb] = decode(svc, upload)
    with session.lock:
        if session.ended:  # deleted while this frame waited
            raise SessionNotFoundError("this stream has ended", details={"kind": "stream"})
        with svc.model_lock:
            result = session.process(rgb, received)
        index = session.frames - 1
    return {"stream_id": stream_id, "frame": index, "time_s": round(result.time_s, 3),
            "image_size": image_size(rgb), "tracks": [t.to_dict() for t in result.tracks],
            "events": [e.to_dict() for e in result.events]}


@router.post("/v1/streams/{stream_id}/frames", response_model=S.StreamFrameOut, responses=SESSION_RESPONSES,
             openapi_extra=body_doc(S.NoParams, S.ImageJSON, {"image": False}, ["image"]))
async def send_frame(stream_id: str, request: Request, svc: ServiceDep, sessions: SessionsDep,
                     key: RecognizeKey) -> dict[str, Any]:
    """One frame (``image``: a JPEG): the faces tracked in it with their tracks' names, and events."""
    received = sessions.clock()
    entry = sessions.streams.get(key.key_id, stream_id)
    sessions.streams.touch(entry, svc.settings.stream_idle_s)
    parsed = await parse_input(request, svc.settings, S.NoParams, S.ImageJSON, single=("image",))
    return await svc.run(frame_work, svc, entry.id, entry.value, parsed.one("image"), received)


def end_work(svc: Service, session: StreamSession) -> list[dict[str, Any]]:
    with session.lock, svc.model_lock:
        return [e.to_dict() for e in session.finish()]


@router.delete("/v1/streams/{stream_id}", response_model=S.StreamEnded, responses=SESSION_RESPONSES)
async def end_stream(stream_id: str, svc: ServiceDep, sessions: SessionsDep, key: RecognizeKey) -> dict[str, Any]:
    """Ends the stream: its tracks end, and the last event is the summary."""
    entry = sessions.streams.pop(key.key_id, stream_id)
    events = await svc.run(end_work, svc, entry.value)
    return {"stream_id": entry.id, "frames": entry.value.frames, "events": events}
