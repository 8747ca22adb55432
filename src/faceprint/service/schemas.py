"""The HTTP service's request and response bodies (pydantic), as published in its OpenAPI schema.

The values come from the library's own ``to_dict()`` results; these models describe them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from faceprint.gallery.storage.base import MAX_FILTER_KEYS, check_filter_keys

Box = list[float]

#: The largest integer a request's id, index or offset may be: JSON's interoperable range
#: (RFC 7493: exact in every client's doubles, and in the schema's own ``maximum``), well within
#: the 64 bits SQLite holds. A larger number is refused as invalid, never sent to the database.
MAX_REQUEST_INT = 2**53 - 1
#: A subject's or face's id as a request names it (a path, ``subject_id``).
DbId = Annotated[int, Field(ge=1, le=MAX_REQUEST_INT)]
#: A non-negative index or offset in a request.
Count = Annotated[int, Field(ge=0, le=MAX_REQUEST_INT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors -----------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, shared with the library (faceprint.errors).")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    error: ErrorBody
    request_id: str


# --- requests (JSON forms; the multipart forms carry the same fields) --------------------------
class ImageJSON(_Strict):
    image: str = Field(description="The image file's bytes, base64 (a data: URL is accepted).")


class VerifyParams(_Strict):
    subject_id: Optional[DbId] = Field(None, description="compare image_a with this enrolled subject instead of image_b")
    far: Optional[float] = Field(None, gt=0, lt=1, description="false-accept rate to decide at (default 1e-3)")
    threshold: Optional[float] = Field(None, ge=-1, le=1, description="explicit cosine-similarity threshold")
    face_a: Optional[Count] = Field(None, description="face index in image_a (default: the largest)")
    face_b: Optional[Count] = Field(None, description="face index in image_b (default: the largest)")


class VerifyJSON(VerifyParams):
    image_a: str = Field(description="base64 image")
    image_b: Optional[str] = Field(None, description="base64 image; or give subject_id")


class IdentifyParams(_Strict):
    top_k: int = Field(5, ge=1, description="candidates per face")
    far: Optional[float] = Field(None, gt=0, lt=1, description="false-accept rate to decide at (default 1e-3)")
    threshold: Optional[float] = Field(None, ge=-1, le=1, description="explicit cosine-similarity threshold")
    where: Optional[dict[str, Any]] = Field(
        None, description="only subjects whose metadata has these key = value pairs (a JSON object; in a form, as "
        f"text): at most {MAX_FILTER_KEYS} keys, plain names; integers within 64 bits"
    )

    @field_validator("where")
    @classmethod
    def check_where(cls, where: dict[str, Any] | None) -> dict[str, Any] | None:
        """Checked here, whatever the gallery holds (an empty gallery never reaches the store)."""
        if where is not None:
            check_filter_keys(where)
        return where


class IdentifyJSON(IdentifyParams):
    image: str = Field(description="base64 image")


class NoParams(_Strict):
    pass


class EnrolJSON(_Strict):
    images: list[str] = Field(min_length=1, description="base64 images, one face each")


class SubjectCreate(_Strict):
    name: str = Field(min_length=1, max_length=256)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SubjectPatch(_Strict):
    name: Optional[str] = Field(None, min_length=1, max_length=256)
    metadata: Optional[dict[str, Any]] = Field(None, description="replaces the subject's metadata")


class KeyCreate(_Strict):
    scopes: list[Literal["recognize", "manage", "admin"]] = Field(min_length=1)
    name: str = Field("", max_length=200)


# --- responses --------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"]
    version: str
    model: str


class ModelsOut(BaseModel):
    models: list[dict[str, Any]]
    gallery_model: str
    detector: str
    embedder: str


class Pose(BaseModel):
    yaw: float
    pitch: float
    roll: float


class QualityOut(BaseModel):
    score: float = Field(description="the product of the factors, in [0, 1] (higher = fitter for recognition)")
    factors: dict[str, float] = Field(
        description="each factor's score in [0, 1]: size, pose, sharpness; detector_score for the detectors whose "
        "score was measured to help (hog); embedding_norm (embed only) for the embedders whose raw norm was "
        "(fr-feature). A factor not listed counts as 1."
    )
    reasons: list[Literal["small", "pose", "blur", "indistinct"]] = Field(
        description="the factors below their floor: empty when all is well"
    )
    measures: dict[str, float] = Field(
        description="the raw values: size (px), yaw and pitch (degrees), sharpness (variance of the Laplacian of "
        "the 112 px eye-aligned chip), detector_score, embedding_norm (before L2 normalisation)"
    )


class FaceOut(BaseModel):
    box: Box = Field(description="x1, y1, x2, y2 in pixels of the (EXIF-rotated) image")
    score: float
    landmarks: list[list[float]]
    landmark_scheme: str
    pose: Optional[Pose] = None
    quality: Optional[QualityOut] = None


class EmbeddedFaceOut(FaceOut):
    embedding: list[float] = Field(description="float32, L2-normalised")


class DetectOut(BaseModel):
    image_size: list[int] = Field(description="width, height")
    faces: list[FaceOut]


class EmbedOut(BaseModel):
    model: str
    image_size: list[int]
    faces: list[EmbeddedFaceOut]


class SelectedFaceOut(BaseModel):
    path: str
    face_index: int
    faces_found: int
    selection: str
    box: Box
    score: float


class SubjectRef(BaseModel):
    id: int
    name: str


class VerifyOut(BaseModel):
    similarity: float
    threshold: float
    far: Optional[float]
    match: bool
    model: str
    threshold_source: str
    faces: list[SelectedFaceOut]
    subject: Optional[SubjectRef] = None
    subject_face_id: Optional[int] = Field(None, description="the subject's best-matching enrolled face")


class CandidateOut(BaseModel):
    subject: str
    subject_id: int
    similarity: float
    face_id: int


class IdentityOut(BaseModel):
    box: Box
    identity: Optional[str]
    subject_id: Optional[int]
    similarity: Optional[float]
    threshold: float
    far: Optional[float]
    candidates: list[CandidateOut]
    note: Optional[str] = None


class IdentifyOut(BaseModel):
    model: str
    threshold_source: str = Field(
        "calibrated", description="calibrated (the model card), user (threshold given) or card:FILE (the "
        "service's --calibration card)")
    image_size: list[int]
    faces: list[IdentityOut]


class SubjectOut(BaseModel):
    id: int
    name: str
    metadata: dict[str, Any]
    face_count: int
    created_at: str
    updated_at: str
    thumbnail_face_id: Optional[int] = Field(None, description="a face of this subject with a thumbnail")


class TemplateOut(BaseModel):
    face_id: int
    subject_id: int
    box: Optional[Box]
    detection_score: Optional[float]
    quality: Optional[float]
    image_sha256: str
    source: Optional[str]
    has_thumbnail: bool
    created_at: str


class SubjectDetail(SubjectOut):
    faces: list[TemplateOut]


class SubjectPage(BaseModel):
    subjects: list[SubjectOut]
    total: int
    limit: int
    offset: int


class Forgotten(BaseModel):
    forgotten: int
    name: str
    faces_removed: int


class EnrolledOut(BaseModel):
    path: str
    subject: str
    face_id: int


class Reason(BaseModel):
    code: str
    message: str


class RejectedOut(BaseModel):
    path: str
    reason: Reason


class EnrolOut(BaseModel):
    subject: SubjectOut
    enrolled: list[EnrolledOut]
    rejected: list[RejectedOut]


class FaceDeleted(BaseModel):
    deleted_face: int
    subject_id: int


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    created_at: str
    last_used_at: Optional[str]
    revoked: bool
    revoked_at: Optional[str]


class KeyCreated(KeyOut):
    key: str = Field(description="the key itself; shown only now")


class KeyList(BaseModel):
    keys: list[KeyOut]


# --- video, streams and liveness (issue 15) ----------------------------------------------------
class VideoParams(_Strict):
    far: Optional[float] = Field(None, gt=0, lt=1, description="false-accept rate to name tracks at (default 1e-3)")
    threshold: Optional[float] = Field(None, ge=-1, le=1, description="explicit cosine-similarity threshold")
    every: Optional[int] = Field(None, ge=1, le=30, description="detect and embed every Nth frame (default: "
                                 "the watcher's); the frames between are tracked")
    max_seconds: Optional[float] = Field(None, gt=0, description="analyse at most this many seconds from the start "
                                         "(at most the service's max_video_seconds)")


class StreamCreate(_Strict):
    far: Optional[float] = Field(None, gt=0, lt=1, description="false-accept rate to name tracks at (default 1e-3)")
    threshold: Optional[float] = Field(None, ge=-1, le=1, description="explicit cosine-similarity threshold")


class LivenessFrameParams(_Strict):
    seq: Count = Field(description="the frame's sequence number: above every one this session took before")


class LivenessFrameJSON(LivenessFrameParams):
    image: str = Field(description="base64 image (a JPEG of one webcam frame)")


class TokenIn(_Strict):
    token: str = Field(min_length=1, max_length=8192, description="the token of a liveness result (a JWT)")


class TrackOut(BaseModel):
    track: int
    box: Box
    identity: Optional[str]
    similarity: Optional[float]
    confirmed: bool = Field(description="seen in enough frames to be reported (events name only confirmed tracks)")
    predicted: bool = Field(False, description="the box was predicted (a frame between detections), not detected")


class EventOut(BaseModel):
    """One event of a watched video; kinds may carry more keys (``reason``, ``duration_s`` ...)."""

    model_config = ConfigDict(extra="allow")
    event: str = Field(description="video_started, track_started, identified, track_ended, scene_cut, "
                       "proctor_started, proctor_ended, summary ...")
    frame: int
    time_s: float
    track: Optional[int]
    identity: Optional[str]
    similarity: Optional[float]
    box: Optional[Box]


class VideoTiming(BaseModel):
    frames: int = Field(description="frames decoded and watched")
    seconds: float = Field(description="wall seconds, decoding included")
    fps: float


class VideoIdentifyOut(BaseModel):
    model: str
    video: dict[str, Any] = Field(description="source, width, height, fps, frame_count, live")
    events: list[EventOut] = Field(description="in order; the last is the summary")
    tracks: list[dict[str, Any]] = Field(description="each track: id, first/last frame, duration, identity, similarity")
    timing: VideoTiming


class StreamOut(BaseModel):
    stream_id: str
    model: str
    idle_timeout_s: float = Field(description="the stream ends after this long without a frame")


class StreamFrameOut(BaseModel):
    stream_id: str
    frame: int = Field(description="the frame's index in the stream (0 first)")
    time_s: float = Field(description="the server's receive time, seconds since the stream was created")
    image_size: list[int]
    tracks: list[TrackOut] = Field(description="the faces tracked in this frame, named per track")
    events: list[EventOut]


class StreamEnded(BaseModel):
    stream_id: str
    frames: int
    events: list[EventOut] = Field(description="the tracks' ends; the last is the summary")


class LivenessSessionOut(BaseModel):
    session_id: str
    nonce: str = Field(description="128 random bits, part of the signed result")
    state: Literal["pending", "passed", "failed", "expired"]
    challenge: dict[str, Any] = Field(description="revealed a step at a time: how many steps (steps), each "
                                      "one's time limit (step_timeout_s), the pending one (step, action, count, "
                                      "prompt); the later ones come in each frame's progress")
    created_at: str
    expires_at: str = Field(description="frames are taken until then (the server's clock)")
    expires_in_s: float


class LivenessFrameOut(BaseModel):
    session_id: str
    seq: int
    state: Literal["pending", "passed", "failed", "expired"]
    progress: dict[str, Any] = Field(description="the checker after this frame: state, step, the current prompt, "
                                     "signals, a reason when failed")
    result: Optional[dict[str, Any]] = Field(None, description="the verdict, once the session is over")
    token: Optional[str] = Field(None, description="the verdict signed (a JWT, HS256), once the session is over")


class LivenessStatus(BaseModel):
    session_id: str
    state: Literal["pending", "passed", "failed", "expired"]
    challenge: dict[str, Any]
    created_at: str
    expires_at: str
    frames: int
    progress: Optional[dict[str, Any]]
    result: Optional[dict[str, Any]]
    claims: Optional[dict[str, Any]] = Field(description="what the token signs: iss, sub (the session id), nonce, iat, "
                                             "key_id, challenge, state, passed, reason, frames, model, started_at, "
                                             "completed_at")
    token: Optional[str] = Field(description="a JWT (HS256) over the claims")


class TokenCheck(BaseModel):
    valid: bool
    claims: Optional[dict[str, Any]]
