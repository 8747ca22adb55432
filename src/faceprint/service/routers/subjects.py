"""``/v1/subjects``: enrolled people, their faces and thumbnails (scope ``manage``).

Everything goes through :class:`~faceprint.gallery.Gallery`: subjects are addressed by id
here and by name in the library, so each route first looks its subject up by id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from faceprint.batch import image_sha256
from faceprint.errors import FaceprintError, InvalidArgumentError, SubjectNotFoundError, TemplateNotFoundError
from faceprint.gallery import Enrolled, EnrollmentReport, Rejected, Subject, Template
from faceprint.imageio import load_image
from faceprint.service import schemas as S
from faceprint.service.deps import ManageKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES, NOT_FOUND_RESPONSES
from faceprint.service.limits import check_request_pixels
from faceprint.service.parsing import StrictJSONRoute, Upload, body_doc, parse_input
from faceprint.service.state import Service

logger = logging.getLogger(__name__)

router = APIRouter(tags=["subjects"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)

NAME_TAKEN: dict[int | str, dict[str, Any]] = {409: {"model": S.ErrorEnvelope, "description": "the name is taken"}}


def subject_out(svc: Service, subject: Subject) -> dict[str, Any]:
    """A subject as the API shows it: with a face to show as its thumbnail."""
    thumb = next((t.id for t in svc.gallery.templates_by_id(subject.id) if t.has_thumbnail), None)
    return {**subject.to_dict(), "thumbnail_face_id": thumb}


def face_of(svc: Service, subject_id: int, face_id: int) -> Template:
    """Face ``face_id`` of subject ``subject_id`` (not found when it is another subject's)."""
    svc.gallery.subject_by_id(subject_id)
    template = svc.gallery.template(face_id)
    if template.subject_id != subject_id:
        raise TemplateNotFoundError(f"subject {subject_id} has no face {face_id}",
                                    details={"subject_id": subject_id, "face_id": face_id})
    return template


@router.post("/v1/subjects", status_code=201, response_model=S.SubjectOut, responses=NAME_TAKEN)
async def create_subject(body: S.SubjectCreate, svc: ServiceDep, key: ManageKey) -> dict[str, Any]:
    """A new person, with no faces yet (enrol them with POST /v1/subjects/{id}/faces)."""
    subject = await svc.db(svc.gallery.create_subject, body.name, body.metadata)
    return await svc.db(subject_out, svc, subject)


@router.get("/v1/subjects", response_model=S.SubjectPage)
async def list_subjects(
    svc: ServiceDep,
    key: ManageKey,
    limit: int = Query(50, ge=1, le=500),
    offset: S.Count = 0,
    name: str | None = Query(None, description="only the subject of exactly this name"),
) -> dict[str, Any]:
    """Enrolled people, by name, a page at a time."""

    def work() -> dict[str, Any]:
        if name is not None:
            try:
                found = [svc.gallery.subject(name)]
            except SubjectNotFoundError:
                found = []
            return {"subjects": [subject_out(svc, s) for s in found], "total": len(found), "limit": limit, "offset": 0}
        return {"subjects": [subject_out(svc, s) for s in svc.gallery.subjects(limit, offset)],
                "total": svc.gallery.subject_count(), "limit": limit, "offset": offset}

    return await svc.db(work)


@router.get("/v1/subjects/{subject_id}", response_model=S.SubjectDetail, responses=NOT_FOUND_RESPONSES)
async def get_subject(subject_id: S.DbId, svc: ServiceDep, key: ManageKey) -> dict[str, Any]:
    """One person and their enrolled faces."""

    def work() -> dict[str, Any]:
        subject = svc.gallery.subject_by_id(subject_id)
        return {**subject_out(svc, subject), "faces": [t.to_dict() for t in svc.gallery.templates_by_id(subject_id)]}

    return await svc.db(work)


@router.patch("/v1/subjects/{subject_id}", response_model=S.SubjectOut,
              responses={**NOT_FOUND_RESPONSES, **NAME_TAKEN})
async def patch_subject(subject_id: S.DbId, body: S.SubjectPatch, svc: ServiceDep, key: ManageKey) -> dict[str, Any]:
    """Rename a person and/or replace their metadata."""

    def work() -> dict[str, Any]:
        subject = svc.gallery.subject_by_id(subject_id)
        if body.name is not None and body.name.strip() != subject.name:
            subject = svc.gallery.rename(subject.name, body.name)
        if body.metadata is not None:
            subject = svc.gallery.update_metadata(subject.name, body.metadata)
        return subject_out(svc, subject)

    return await svc.db(work)


@router.delete("/v1/subjects/{subject_id}", response_model=S.Forgotten, responses=NOT_FOUND_RESPONSES)
async def forget_subject(subject_id: S.DbId, svc: ServiceDep, key: ManageKey) -> dict[str, Any]:
    """Forget a person: their faces, thumbnails and index entries are deleted in one
    transaction, the freed pages zeroed; identify never returns them again."""

    def work() -> dict[str, Any]:
        subject = svc.gallery.subject_by_id(subject_id)
        removed = svc.gallery.forget(subject.name)
        return {"forgotten": subject.id, "name": subject.name, "faces_removed": removed}

    return await svc.db(work)


def enrol_work(svc: Service, subject_id: int, upload: Upload) -> Enrolled | Rejected:
    """One image of an enrolment: decoded and committed outside the model lock, detected,
    aligned and embedded in one turn of it (see :mod:`faceprint.service.state`)."""
    try:
        rgb = load_image(upload.data, svc.limits)
    except FaceprintError as exc:  # this image's problem: rejected, the others go on
        return Rejected(upload.label, exc.code, exc.message)
    sha256 = image_sha256(upload.data)  # of the bytes sent, as the library's enroll() hashes them
    with svc.model_lock:
        prepared, analysis = svc.gallery.analyze_for_enrollment(upload.label, rgb, sha256=sha256)
    logger.debug("enrolment for subject %d: %s analysed", subject_id, upload.label)
    # the name now, not before the first image: a rename during the enrolment is followed
    return svc.gallery.commit_enrollment(svc.gallery.subject_by_id(subject_id).name, prepared, analysis)


@router.post("/v1/subjects/{subject_id}/faces", response_model=S.EnrolOut, responses=NOT_FOUND_RESPONSES,
             openapi_extra=body_doc(S.NoParams, S.EnrolJSON, {"images": True}, ["images"]))
async def enrol(subject_id: S.DbId, request: Request, svc: ServiceDep, key: ManageKey) -> dict[str, Any]:
    """Enrol one or more images of this person (one face each). Partial success: each
    rejected image has its reason (no_face, multiple_faces, face_too_small, low_quality,
    duplicate_image, invalid_image, image_too_large); the others are enrolled. All the images
    together decode to at most the service's ``max_request_pixels`` (413 request_too_large,
    from their headers, before any is decoded)."""
    parsed = await parse_input(request, svc.settings, S.NoParams, S.EnrolJSON, multiple="images")
    uploads = parsed.images.get("images") or []
    if not uploads:
        raise InvalidArgumentError("give at least one image in the field 'images'", details={"field": "images"})
    await svc.db(svc.gallery.subject_by_id, subject_id)  # not found: before any work
    await svc.run(check_request_pixels, [u.data for u in uploads], svc.limits, svc.settings.max_request_pixels)
    # One pool task per image: other requests' tasks queue between two images of this one.
    outcomes = [await svc.run(enrol_work, svc, subject_id, upload) for upload in uploads]
    report = EnrollmentReport(tuple(o for o in outcomes if isinstance(o, Enrolled)),
                              tuple(o for o in outcomes if isinstance(o, Rejected)))
    subject = await svc.db(svc.gallery.subject_by_id, subject_id)
    return {"subject": await svc.db(subject_out, svc, subject), **report.to_dict()}


@router.delete("/v1/subjects/{subject_id}/faces/{face_id}", response_model=S.FaceDeleted,
               responses=NOT_FOUND_RESPONSES)
async def delete_face(subject_id: S.DbId, face_id: S.DbId, svc: ServiceDep, key: ManageKey) -> dict[str, Any]:
    """Delete one enrolled face (its template and thumbnail)."""

    def work() -> dict[str, Any]:
        face_of(svc, subject_id, face_id)
        svc.gallery.delete_face(face_id)
        return {"deleted_face": face_id, "subject_id": subject_id}

    return await svc.db(work)


@router.get("/v1/subjects/{subject_id}/faces/{face_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}, "description": "the aligned face chip, JPEG"},
                       404: {"model": S.ErrorEnvelope,
                             "description": "no such subject or face, or no thumbnail stored for it "
                                            "(details.reason `no_thumbnail`)"}})
async def thumbnail(subject_id: S.DbId, face_id: S.DbId, svc: ServiceDep, key: ManageKey) -> Response:
    """The enrolled face's aligned chip as a JPEG, when one was kept: the gallery keeps none
    unless the service was started with ``--keep-thumbnails`` (a face picture is raw biometric
    data). A subject's ``thumbnail_face_id`` names a face that has one, or is null."""

    def work() -> bytes:
        face_of(svc, subject_id, face_id)
        data = svc.gallery.thumbnail(face_id)
        if data is None:
            raise TemplateNotFoundError(
                f"no thumbnail stored for face {face_id}: the gallery keeps none unless started with --keep-thumbnails",
                details={"face_id": face_id, "reason": "no_thumbnail"})
        return data

    return Response(await svc.db(work), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
