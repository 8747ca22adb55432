"""``/v1/detect``, ``/v1/embed``, ``/v1/verify``, ``/v1/identify`` (scope ``recognize``).

Each route parses its input on the event loop, then, in the service's worker pool, checks the
request's pixel budget from the image headers, decodes, and runs the models in one turn of
:attr:`Service.model_lock` per image (one model call at a time per process); decoding and the
gallery search run outside the lock.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from faceprint.errors import ImageTooLargeError, InvalidArgumentError, InvalidImageError, TooManyFacesError
from faceprint.imageio import load_image
from faceprint.pipeline import resolve_threshold
from faceprint.service import schemas as S
from faceprint.service.deps import RecognizeKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSES
from faceprint.service.limits import check_request_pixels
from faceprint.service.parsing import Upload, body_doc, parse_input
from faceprint.service.state import Service
from faceprint.types import EmbeddedFace, Face

logger = logging.getLogger(__name__)

router = APIRouter(tags=["recognition"], responses=ERROR_RESPONSES)


def decode(svc: Service, *uploads: Upload) -> list[np.ndarray]:
    """The request's images decoded (outside the model lock), once their headers show them
    within the service's ``max_request_pixels`` together."""
    check_request_pixels([u.data for u in uploads], svc.limits, svc.settings.max_request_pixels)
    return [decode_one(svc, u) for u in uploads]


def decode_one(svc: Service, upload: Upload) -> np.ndarray:
    """One image decoded; a bad one is refused naming its field or file name (never the bytes)."""
    try:
        return load_image(upload.data, svc.limits)
    except (InvalidImageError, ImageTooLargeError) as exc:
        raise type(exc)(f"{upload.label}: {exc.message}", details={**exc.details, "field": upload.label}) from None


def image_size(rgb: np.ndarray) -> list[int]:
    return [rgb.shape[1], rgb.shape[0]]


def check_face_count(svc: Service, found: int) -> None:
    """:class:`TooManyFacesError` when an image shows more than the service's ``max_faces``."""
    limit = svc.settings.max_faces
    if found > limit:
        raise TooManyFacesError(f"{found} faces found; at most {limit} are handled in one image",
                                details={"faces_found": found, "max_faces": limit})


def detect_checked(svc: Service, rgb: np.ndarray) -> list[Face]:
    """The faces in ``rgb``, refused above the service's ``max_faces``."""
    with svc.model_lock:
        faces = svc.analyzer.detect_array(rgb)
    check_face_count(svc, len(faces))
    return faces


def detect_and_embed(svc: Service, rgb: np.ndarray) -> list[EmbeddedFace]:
    """The faces in ``rgb`` with their embeddings, in one turn of the model lock (a second
    turn would queue behind every other request's image), refused above ``max_faces`` before
    any is embedded."""
    with svc.model_lock:
        faces = svc.analyzer.detect_array(rgb)
        check_face_count(svc, len(faces))
        return svc.analyzer.embed_faces(rgb, faces)


def detect_work(svc: Service, upload: Upload) -> dict[str, Any]:
    [rgb] = decode(svc, upload)
    faces = detect_checked(svc, rgb)
    return {"image_size": image_size(rgb), "faces": [f.to_dict() for f in faces]}


def embed_work(svc: Service, upload: Upload) -> dict[str, Any]:
    [rgb] = decode(svc, upload)
    embedded = detect_and_embed(svc, rgb)
    return {"model": svc.analyzer.model_id, "image_size": image_size(rgb), "faces": [e.to_dict() for e in embedded]}


def verify_work(svc: Service, a: Upload, b: Upload | None, p: dict[str, Any]) -> dict[str, Any]:
    if b is not None:
        rgb_a, rgb_b = decode(svc, a, b)
        with svc.model_lock:
            result = svc.analyzer.verify(rgb_a, rgb_b, far=p["far"], threshold=p["threshold"],
                                         face_a=p["face_a"], face_b=p["face_b"], labels=(a.label, b.label))
        for selected in result.faces:
            check_face_count(svc, selected.faces_found)
        return result.to_dict()
    [rgb_a] = decode(svc, a)
    with svc.model_lock:
        found = svc.gallery.verify_subject(rgb_a, p["subject_id"], far=p["far"], threshold=p["threshold"],
                                           face=p["face_a"], label=a.label)
    check_face_count(svc, found.verification.faces[0].faces_found)
    return found.to_dict()


def identify_work(svc: Service, upload: Upload, p: dict[str, Any]) -> dict[str, Any]:
    [rgb] = decode(svc, upload)
    embedded = detect_and_embed(svc, rgb)
    found = svc.gallery.identify_faces(embedded, top_k=p["top_k"], far=p["far"], threshold=p["threshold"],
                                       where=p["where"])
    out = []
    for f in found:
        d = f.to_dict()
        d["subject_id"] = next(
            (c.subject_id for c in f.candidates if f.identity is not None and c.subject == f.identity), None)
        out.append(d)
    source = resolve_threshold(svc.analyzer.embedder_card, far=p["far"], threshold=p["threshold"])[2]
    return {"model": svc.analyzer.model_id, "threshold_source": source, "image_size": image_size(rgb), "faces": out}


SINGLE_IMAGE = body_doc(S.NoParams, S.ImageJSON, {"image": False}, ["image"])


@router.post("/v1/detect", response_model=S.DetectOut, openapi_extra=SINGLE_IMAGE)
async def detect(request: Request, svc: ServiceDep, key: RecognizeKey) -> dict[str, Any]:
    """Faces in one image, largest first: box, score, 5 landmarks, pose, quality."""
    parsed = await parse_input(request, svc.settings, S.NoParams, S.ImageJSON, single=("image",))
    return await svc.run(detect_work, svc, parsed.one("image"))


@router.post("/v1/embed", response_model=S.EmbedOut, openapi_extra=SINGLE_IMAGE)
async def embed(request: Request, svc: ServiceDep, key: RecognizeKey) -> dict[str, Any]:
    """Faces in one image with their embeddings (float32, L2-normalised) and quality (with the
    embedding norm's factor where the model's norm is informative)."""
    parsed = await parse_input(request, svc.settings, S.NoParams, S.ImageJSON, single=("image",))
    return await svc.run(embed_work, svc, parsed.one("image"))


@router.post("/v1/verify", response_model=S.VerifyOut, responses=NOT_FOUND_RESPONSES,
             openapi_extra=body_doc(S.VerifyParams, S.VerifyJSON, {"image_a": False, "image_b": False}, ["image_a"]))
async def verify(request: Request, svc: ServiceDep, key: RecognizeKey) -> dict[str, Any]:
    """Are two faces the same person? ``image_a`` with ``image_b``, or with an enrolled
    ``subject_id`` (its best-matching face). Decided at the model's threshold for ``far``
    (default 1e-3) or at ``threshold``."""
    parsed = await parse_input(request, svc.settings, S.VerifyParams, S.VerifyJSON, single=("image_a", "image_b"))
    a = parsed.one("image_a")
    b = parsed.optional("image_b")
    if (b is None) == (parsed.params.get("subject_id") is None):
        raise InvalidArgumentError("give image_b or subject_id (one of them)")
    return await svc.run(verify_work, svc, a, b, parsed.params)


@router.post("/v1/identify", response_model=S.IdentifyOut,
             openapi_extra=body_doc(S.IdentifyParams, S.IdentifyJSON, {"image": False}, ["image"], ("where",)))
async def identify(request: Request, svc: ServiceDep, key: RecognizeKey) -> dict[str, Any]:
    """Who is each face in the image? ``identity`` is null for someone not in the gallery."""
    settings = svc.settings
    parsed = await parse_input(request, settings, S.IdentifyParams, S.IdentifyJSON, single=("image",),
                               json_fields=("where",))
    top_k = parsed.params["top_k"]
    if top_k > settings.max_top_k:
        raise InvalidArgumentError(f"top_k is at most {settings.max_top_k}; got {top_k}",
                                   details={"top_k": top_k, "max_top_k": settings.max_top_k})
    return await svc.run(identify_work, svc, parsed.one("image"), parsed.params)
