"""Typed results of gallery operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceprint.types import Box, Verification


@dataclass(frozen=True, slots=True)
class Subject:
    id: int
    name: str
    metadata: dict[str, Any]
    face_count: int
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "metadata": self.metadata,
            "face_count": self.face_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Template:
    """One enrolled face of a subject (without its embedding)."""

    id: int
    subject_id: int
    box: Box | None
    detection_score: float | None
    quality: float | None
    image_sha256: str
    source: str | None
    has_thumbnail: bool
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.id,
            "subject_id": self.subject_id,
            "box": self.box.to_list() if self.box else None,
            "detection_score": self.detection_score,
            "quality": self.quality,
            "image_sha256": self.image_sha256,
            "source": self.source,
            "has_thumbnail": self.has_thumbnail,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Enrolled:
    path: str
    subject: str
    face_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "subject": self.subject, "face_id": self.face_id}


@dataclass(frozen=True, slots=True)
class Rejected:
    path: str
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": {"code": self.code, "message": self.message}}


@dataclass(frozen=True, slots=True)
class EnrollmentReport:
    """Partial success: what was enrolled, and each rejected image with its reason."""

    enrolled: tuple[Enrolled, ...] = ()
    rejected: tuple[Rejected, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"enrolled": [e.to_dict() for e in self.enrolled], "rejected": [r.to_dict() for r in self.rejected]}


@dataclass(frozen=True, slots=True)
class SubjectVerification:
    """Is the face in an image an enrolled subject? Decided on the subject's best-matching
    template; ``verification.faces`` holds the probe face twice (there is no second image)."""

    verification: Verification
    subject: Subject
    face_id: int  # the best-matching template

    def to_dict(self) -> dict[str, Any]:
        out = self.verification.to_dict()
        out["faces"] = out["faces"][:1]
        out["subject"] = {"id": self.subject.id, "name": self.subject.name}
        out["subject_face_id"] = self.face_id
        return out


@dataclass(frozen=True, slots=True)
class Candidate:
    subject: str
    subject_id: int
    similarity: float
    face_id: int  # the subject's best-matching template

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "subject_id": self.subject_id,
            "similarity": round(self.similarity, 6),
            "face_id": self.face_id,
        }


@dataclass(frozen=True, slots=True)
class FaceIdentity:
    """Who one face in a probe image is: ``identity`` is ``None`` when nobody in the gallery
    reaches the threshold (an unknown person)."""

    box: Box
    identity: str | None
    similarity: float | None
    threshold: float
    far: float | None
    candidates: tuple[Candidate, ...]
    note: str | None = None  # e.g. why the best candidate went to another face in the photo

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.to_list(),
            "identity": self.identity,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "threshold": round(self.threshold, 6),
            "far": self.far,
            "candidates": [c.to_dict() for c in self.candidates],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class GalleryStats:
    path: str
    model: str
    subjects: int
    faces: int
    thumbnails: int
    index: str
    file_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "model": self.model,
            "subjects": self.subjects,
            "faces": self.faces,
            "thumbnails": self.thumbnails,
            "index": self.index,
            "file_bytes": self.file_bytes,
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class PhotoFace:
    """A face of a photo added for clustering (:mod:`faceprint.clustering.people`)."""

    id: int
    path: str
    box: Box
    quality: float
    usable: bool
    person_id: int | None
    assigned_by: str | None  # "match", "cluster", "user"; None while unsorted
    score: float | None  # the assignment's score, for "match"
    image_sha256: str = ""  # the photo's content hash (faces of one photo share it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.id, "path": self.path, "box": self.box.to_list(), "quality": round(self.quality, 4),
            "usable": self.usable, "assigned_by": self.assigned_by,
            "score": None if self.score is None else round(self.score, 5),
        }


#: Scopes of API keys: ``recognize`` (detect, embed, verify, identify), ``manage`` (subjects
#: and their faces), ``admin`` (keys; implies the other two).
API_KEY_SCOPES = ("recognize", "manage", "admin")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key of the HTTP service, as stored (never the key itself)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
        }
