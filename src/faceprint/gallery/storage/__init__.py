"""Where a gallery keeps its data: the storage interface and its implementations.

* :mod:`~faceprint.gallery.storage.base` -- the interface (:class:`GalleryStore` and the
  protocols it joins) and the records that cross it;
* :mod:`~faceprint.gallery.storage.sqlite` -- :class:`SQLiteStore`, one file (the default);
* :mod:`~faceprint.gallery.storage.memory` -- :class:`MemoryStore`, in this process only;
* :mod:`~faceprint.gallery.storage.migrations` -- the SQLite schema, versioned.
"""

from faceprint.gallery.storage.base import (
    CHANGE_LOG_KEEP,
    ApiKeyStore,
    Change,
    FaceMatches,
    GalleryCounts,
    GalleryStore,
    NewFace,
    NewPhotoFace,
    PeopleStore,
    PhotoAssignment,
    PhotoFaceTable,
    PhotoFaceTemplate,
    SearchingStore,
    StoredApiKey,
    StoredFace,
    StoredPerson,
    TemplateSnapshot,
    TemplateStore,
    TemplateVectors,
    Transactional,
)
from faceprint.gallery.storage.memory import MemoryStore
from faceprint.gallery.storage.migrations import SCHEMA_VERSION
from faceprint.gallery.storage.sqlite import SQLiteStore

__all__ = [
    "CHANGE_LOG_KEEP",
    "SCHEMA_VERSION",
    "ApiKeyStore",
    "Change",
    "FaceMatches",
    "GalleryCounts",
    "GalleryStore",
    "MemoryStore",
    "NewFace",
    "NewPhotoFace",
    "PeopleStore",
    "PhotoAssignment",
    "PhotoFaceTable",
    "PhotoFaceTemplate",
    "SQLiteStore",
    "SearchingStore",
    "StoredApiKey",
    "StoredFace",
    "StoredPerson",
    "TemplateSnapshot",
    "TemplateStore",
    "TemplateVectors",
    "Transactional",
]
