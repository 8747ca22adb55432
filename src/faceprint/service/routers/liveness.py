"""``/v1/liveness/sessions``: an active challenge-response liveness check (scope ``recognize``).

1. ``POST /v1/liveness/sessions``: a new single-use session with a random challenge (steps such
   as ``blink``, ``turn_left``, ``turn_right`` in a random order, drawn by a CSPRNG on the
   server), a nonce and an expiry.
2. ``POST /v1/liveness/sessions/{id}/frames``: one webcam frame (a JPEG) with its sequence
   number, strictly increasing; the answer is the checker's progress (the current prompt).
   The server's receive time is the only clock: a client's timestamps are never read.
3. ``GET /v1/liveness/sessions/{id}``: the state (``pending``, ``passed``, ``failed``,
   ``expired``) and, once over, the result and its signed token (a JWT, HS256).
4. ``POST /v1/liveness/verify``: whether a token was signed by this service (for a relying
   party without the secret; one holding ``liveness_secret_file`` checks it itself).

A session takes frames only from the key that created it, until its verdict or expiry; a frame
after either, or with a sequence number not above the last, is refused. A frame's number is taken
when it arrives, before its image is read: one whose image cannot be read has used it (gaps in
the numbers are allowed, as for a dropped frame).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from faceprint.liveness.check import LivenessChecker
from faceprint.service import schemas as S
from faceprint.service.deps import AnyKey, RecognizeKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES
from faceprint.service.parsing import StrictJSONRoute, Upload, body_doc, parse_input
from faceprint.service.routers.recognition import decode
from faceprint.service.sessions import LivenessSession, SessionsDep, verify_token
from faceprint.service.state import Service

logger = logging.getLogger(__name__)

router = APIRouter(tags=["liveness"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)

SESSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": S.ErrorEnvelope, "description": "no such session for this key"},
}
FRAME_RESPONSES: dict[int | str, dict[str, Any]] = {
    **SESSION_RESPONSES,
    409: {"model": S.ErrorEnvelope, "description": "the session is over, or the frame's seq is not above the last"},
    410: {"model": S.ErrorEnvelope, "description": "the session has expired"},
}


@router.post("/v1/liveness/sessions", status_code=201, response_model=S.LivenessSessionOut,
             responses={429: {"model": S.ErrorEnvelope, "description": "too many open sessions"}})
async def create_session(svc: ServiceDep, sessions: SessionsDep, key: RecognizeKey) -> dict[str, Any]:
    """A new liveness session: its challenge, nonce and expiry. Perform the steps in order in
    front of the camera while sending its frames."""
    settings = svc.settings
    challenge = sessions.new_challenge()
    checker = await svc.run(LivenessChecker, svc.analyzer, challenge, passive=sessions.passive)  # may load dlib68
    wall = time.time()

    def make(session_id: str, created: float) -> LivenessSession:
        return LivenessSession(session_id=session_id, owner=key.key_id, checker=checker, challenge=challenge,
                               model=svc.analyzer.model_id, created=created, created_wall=wall,
                               lifetime_s=settings.liveness_session_s, secret=sessions.secret,
                               clock=sessions.clock)

    session = sessions.liveness.add(key.key_id, make, settings.liveness_session_s + settings.liveness_result_s).value
    doc = session.to_dict()
    return {key_: doc[key_] for key_ in ("session_id", "state", "challenge", "created_at", "expires_at")} | {
        "nonce": session.nonce, "expires_in_s": settings.liveness_session_s}


def frame_work(svc: Service, session: LivenessSession, upload: Upload, seq: int, time_s: float) -> dict[str, Any]:
    rgb: np.ndarray
    [rgb] = decode(svc, upload)
    progress = session.observe(rgb, seq, time_s, svc.model_lock)
    return {"session_id": session.session_id, "seq": seq, "state": session.state, "progress": progress,
            "result": session.result.to_dict() if session.result is not None else None, "token": session.token}


@router.post("/v1/liveness/sessions/{session_id}/frames", response_model=S.LivenessFrameOut,
             responses=FRAME_RESPONSES,
             openapi_extra=body_doc(S.LivenessFrameParams, S.LivenessFrameJSON, {"image": False}, ["image", "seq"]))
async def send_frame(session_id: str, request: Request, svc: ServiceDep, sessions: SessionsDep,
                     key: RecognizeKey) -> dict[str, Any]:
    """One frame of the session's camera (``image``: a JPEG) and its ``seq``; the answer is the
    progress, and the result once the session is over."""
    received = sessions.clock()  # the only clock the check trusts
    session = sessions.liveness.get(key.key_id, session_id).value
    parsed = await parse_input(request, svc.settings, S.LivenessFrameParams, S.LivenessFrameJSON, single=("image",))
    seq, upload = parsed.params["seq"], parsed.one("image")
    time_s = session.claim(seq, received)
    return await svc.run(frame_work, svc, session, upload, seq, time_s)


@router.get("/v1/liveness/sessions/{session_id}", response_model=S.LivenessStatus, responses=SESSION_RESPONSES)
async def get_session(session_id: str, svc: ServiceDep, sessions: SessionsDep, key: RecognizeKey) -> dict[str, Any]:
    """The session's state and, once it is over, its result and signed token."""
    session = sessions.liveness.get(key.key_id, session_id).value
    await svc.db(session.expire_if_due, sessions.clock())
    return session.to_dict()


@router.post("/v1/liveness/verify", response_model=S.TokenCheck)
async def verify(body: S.TokenIn, sessions: SessionsDep, key: AnyKey) -> dict[str, Any]:
    """Whether ``token`` is a liveness result this service signed, and what it says."""
    claims = verify_token(body.token, sessions.secret)
    return {"valid": claims is not None, "claims": claims}
