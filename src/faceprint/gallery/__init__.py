"""The gallery of known people: enrol, identify 1:N, manage, forget."""

from faceprint.gallery.gallery import Gallery, default_gallery_path
from faceprint.gallery.store import GalleryStore, SQLiteStore
from faceprint.gallery.types import (
    Candidate,
    Enrolled,
    EnrollmentReport,
    FaceIdentity,
    GalleryStats,
    Rejected,
    Subject,
    SubjectVerification,
    Template,
)

__all__ = [
    "Candidate",
    "Enrolled",
    "EnrollmentReport",
    "FaceIdentity",
    "Gallery",
    "GalleryStats",
    "GalleryStore",
    "Rejected",
    "SQLiteStore",
    "Subject",
    "SubjectVerification",
    "Template",
    "default_gallery_path",
]
