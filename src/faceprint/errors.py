"""One error taxonomy for the whole library.

Every error carries a stable ``code`` string. The CLI maps errors to a one-line message and
an exit status; the HTTP service maps them to a JSON envelope. Codes are part of the public
contract: never rename one, only add.
"""

from __future__ import annotations

from typing import Any


class FaceprintError(Exception):
    """Base class of every error faceprint raises on purpose."""

    code: str = "faceprint_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


# --- input ---------------------------------------------------------------------------------
class InvalidImageError(FaceprintError):
    """The input is empty, truncated, corrupt, not an image, or of an unsupported shape."""

    code = "invalid_image"


class ImageTooLargeError(FaceprintError):
    """The encoded bytes or the decoded pixel count exceed the configured limit."""

    code = "image_too_large"


class InvalidArgumentError(FaceprintError, ValueError):
    """A caller passed an argument outside its allowed range (e.g. ``far=2``)."""

    code = "invalid_argument"


# --- faces ---------------------------------------------------------------------------------
class NoFaceError(FaceprintError):
    """A face was required but none was found."""

    code = "no_face"


class FaceIndexError(FaceprintError, IndexError):
    """The caller asked for a face index the image does not have."""

    code = "face_not_found"


# --- models --------------------------------------------------------------------------------
class UnknownModelError(FaceprintError, KeyError):
    """No model of that name is in the registry."""

    code = "unknown_model"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class ModelUnavailableError(FaceprintError):
    """The model is registered but its weights or runtime cannot be found or loaded."""

    code = "model_unavailable"


class ModelIntegrityError(FaceprintError):
    """A weight file's SHA-256 does not match the one in its model card."""

    code = "model_integrity"


class ModelFormatError(FaceprintError):
    """A model file is not a model faceprint can use: not ONNX, or the wrong inputs/outputs."""

    code = "invalid_model"


class ModelMismatchError(FaceprintError):
    """Two things made with different models were combined (e.g. embeddings, templates)."""

    code = "model_mismatch"


class ModelRuntimeError(FaceprintError):
    """An optimised runtime (onnxruntime) failed to load or run a model."""

    code = "onnx_runtime_failed"


class ModelConversionError(ModelRuntimeError):
    """A model's weights could not be converted to the optimised runtime's format."""

    code = "model_conversion_failed"


# --- gallery -------------------------------------------------------------------------------
class SubjectNotFoundError(FaceprintError, KeyError):
    """No subject of that name (or id) is in the gallery."""

    code = "subject_not_found"

    def __str__(self) -> str:
        return self.message


class SubjectExistsError(FaceprintError):
    """A subject of that name already exists (e.g. renaming onto another subject)."""

    code = "subject_exists"


class TemplateNotFoundError(FaceprintError, KeyError):
    """No enrolled face (template) with that id is in the gallery."""

    code = "template_not_found"

    def __str__(self) -> str:
        return self.message


class DuplicateImageError(FaceprintError):
    """This exact image (same SHA-256) is already enrolled in the gallery."""

    code = "duplicate_image"


class GalleryError(FaceprintError):
    """The gallery file cannot be opened or is not a faceprint gallery."""

    code = "gallery_unavailable"


# --- service (HTTP) -------------------------------------------------------------------------
class UnauthorizedError(FaceprintError):
    """No API key, or one that is unknown, malformed or revoked (HTTP 401)."""

    code = "unauthorized"


class ForbiddenError(FaceprintError):
    """The API key is valid but lacks the scope the operation needs (HTTP 403)."""

    code = "forbidden"


class KeyNotFoundError(FaceprintError, KeyError):
    """No API key with that id."""

    code = "key_not_found"

    def __str__(self) -> str:
        return self.message


class RateLimitedError(FaceprintError):
    """Too many requests with one key (HTTP 429; ``Retry-After`` says when to try again)."""

    code = "rate_limited"


class RequestTooLargeError(FaceprintError):
    """The request body is larger than the service accepts (HTTP 413)."""

    code = "request_too_large"


class TooManyFacesError(FaceprintError):
    """An image shows more faces than the service handles in one request (HTTP 422)."""

    code = "too_many_faces"


class TooManyImagesError(FaceprintError):
    """More images in one request than the service accepts (HTTP 413)."""

    code = "too_many_images"


class UnsupportedMediaTypeError(FaceprintError):
    """A request body that is neither multipart form data nor JSON (HTTP 415)."""

    code = "unsupported_media_type"


class MissingDependencyError(FaceprintError, ImportError):
    """An optional part of faceprint is used without its extra installed
    (e.g. ``pip install 'faceprint[service]'``)."""

    code = "missing_dependency"


class GalleryNotFoundError(GalleryError):
    """No gallery file at the path given, and the operation must not create one (reading,
    or changing what is already enrolled): a mistyped path never becomes an empty gallery.
    The CLI exits 2 (a usage error)."""

    code = "gallery_not_found"


class MasterKeyRequiredError(FaceprintError):
    """The gallery is encrypted at rest and no master key was given (``--key-file``,
    ``$FACEPRINT_MASTER_KEY_FILE`` or ``master_key=``): nothing is read as garbage."""

    code = "master_key_required"


class MasterKeyInvalidError(FaceprintError):
    """The master key given is not this gallery's (or the key file, or the keyring beside the
    gallery, is missing or malformed)."""

    code = "master_key_invalid"


class DecryptionError(FaceprintError):
    """A stored ciphertext failed authentication: it was altered, moved to another record, or
    its data key was destroyed (the subject was forgotten)."""

    code = "decryption_failed"


class ClusterUnavailableError(FaceprintError):
    """The Dask scheduler given (``--dask``, ``$FACEPRINT_DASK``) could not be reached, or had
    no worker, within the connection timeout; the message names its address."""

    code = "cluster_unavailable"


# --- video ---------------------------------------------------------------------------------
class VideoNotFoundError(FaceprintError):
    """No video file at the path given, or no camera at the index given."""

    code = "video_not_found"


class VideoUnreadableError(FaceprintError):
    """The file or stream is not a video faceprint can decode: empty, truncated, corrupt, a
    still image or text, no frame at all, or a stream URL that cannot be opened (or needs seeking)."""

    code = "video_unreadable"


class VideoWriteError(FaceprintError):
    """A video file could not be written (its folder, or the codec for its extension)."""

    code = "video_write_failed"


class VideoTooLongError(FaceprintError):
    """A clip is longer (seconds) than the limit it is checked against (the service's
    ``max_video_seconds``)."""

    code = "video_too_long"


# --- live sessions (the service's webcam streams and liveness checks) ---------------------
class SessionNotFoundError(FaceprintError, KeyError):
    """No such session: never created, ended, dropped after its time, or another API key's."""

    code = "session_not_found"


class SessionExpiredError(FaceprintError):
    """The session's time is over: it takes no more frames."""

    code = "session_expired"


class SessionClosedError(FaceprintError):
    """The session has its verdict (a liveness check passed or failed): it takes no more frames."""

    code = "session_closed"


class FrameOrderError(FaceprintError):
    """A frame's sequence number is not above every number the session has seen (a replayed,
    duplicated or reordered frame)."""

    code = "frame_out_of_order"


class TooManySessionsError(FaceprintError):
    """The service (or this API key) holds as many live sessions as it allows; end one or wait."""

    code = "too_many_sessions"


def import_optional(module: str, extra: str) -> Any:
    """``importlib.import_module(module)``, or :class:`MissingDependencyError` naming the
    faceprint extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"{top} is not installed; it comes with faceprint's {extra!r} extra: pip install 'faceprint[{extra}]'",
            details={"module": module, "extra": extra, "reason": str(exc)},
        ) from None


ALL_ERRORS: tuple[type[FaceprintError], ...] = (
    InvalidImageError,
    ImageTooLargeError,
    InvalidArgumentError,
    NoFaceError,
    FaceIndexError,
    UnknownModelError,
    ModelUnavailableError,
    ModelIntegrityError,
    ModelMismatchError,
    ModelRuntimeError,
    ModelConversionError,
    SubjectNotFoundError,
    SubjectExistsError,
    TemplateNotFoundError,
    GalleryError,
    DuplicateImageError,
    ModelFormatError,
    UnauthorizedError,
    ForbiddenError,
    KeyNotFoundError,
    RateLimitedError,
    RequestTooLargeError,
    TooManyFacesError,
    TooManyImagesError,
    UnsupportedMediaTypeError,
    MissingDependencyError,
    GalleryNotFoundError,
    MasterKeyRequiredError,
    MasterKeyInvalidError,
    DecryptionError,
    ClusterUnavailableError,
    VideoNotFoundError,
    VideoUnreadableError,
    VideoWriteError,
    VideoTooLongError,
    SessionNotFoundError,
    SessionExpiredError,
    SessionClosedError,
    FrameOrderError,
    TooManySessionsError,
)
