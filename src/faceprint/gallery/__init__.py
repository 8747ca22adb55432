"""The gallery of known people: enrol, identify 1:N, manage, forget."""

from faceprint.gallery.crypto import MasterKey, write_key_file
from faceprint.gallery.gallery import Gallery, analyzer_for, default_gallery_path
from faceprint.gallery.storage import GalleryStore, MemoryStore, SQLiteStore
from faceprint.gallery.storage.locate import (
    GalleryLocation,
    describe_location,
    is_database_url,
    location_exists,
    open_store,
    parse_location,
)
from faceprint.gallery.thumbnails import thumbnail_jpeg
from faceprint.gallery.types import (
    Candidate,
    Enrolled,
    EnrollmentReport,
    FaceIdentity,
    GalleryStats,
    PhotoFace,
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
    "GalleryLocation",
    "GalleryStats",
    "GalleryStore",
    "MasterKey",
    "MemoryStore",
    "PhotoFace",
    "Rejected",
    "SQLiteStore",
    "Subject",
    "SubjectVerification",
    "Template",
    "analyzer_for",
    "default_gallery_path",
    "describe_location",
    "is_database_url",
    "location_exists",
    "open_store",
    "parse_location",
    "thumbnail_jpeg",
    "write_key_file",
]
