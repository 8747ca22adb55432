"""Where a gallery is: a SQLite file's path, or a PostgreSQL URL -- and the store that opens it.

``--gallery people.db`` (or ``FACEPRINT_GALLERY``) names a SQLite file, the embedded default;
``--gallery postgresql://user@host/db`` a PostgreSQL database with the pgvector extension
(:class:`~faceprint.gallery.storage.postgres.PostgresStore`, the ``postgres`` extra, imported only
when such a URL is given). Everything that shows a location -- messages, logs, ``gallery
stats`` -- shows :func:`describe_location`, which never contains a password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from faceprint.gallery.crypto import MasterKey
from faceprint.gallery.storage.base import GalleryStore
from faceprint.gallery.storage.sqlite import SQLiteStore

#: A gallery's location: a SQLite file, or a database URL kept as text (``Path`` would fold its
#: ``//``).
GalleryLocation = Union[str, os.PathLike[str]]

DATABASE_SCHEMES = ("postgresql://", "postgres://")

def is_database_url(location: object) -> bool:
    """Whether ``location`` is a database URL (``postgresql://...``), not a file."""
    return isinstance(location, str) and location.strip().lower().startswith(DATABASE_SCHEMES)


def parse_location(text: str | os.PathLike[str]) -> Path | str:
    """A ``--gallery`` value as a location: a database URL stays text, anything else is a path."""
    if is_database_url(text):
        return str(text).strip()
    return Path(text)


def describe_location(location: GalleryLocation) -> str:
    """``location`` fit to show: a URL's password (in ``user:PASSWORD@`` or ``?password=``)
    replaced by ``***``."""
    text = os.fspath(location)
    return masked_url(text) if is_database_url(text) else text


def masked_url(url: str) -> str:
    """``url`` with its password (``user:PASSWORD@`` or ``?password=``) shown as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def location_exists(location: GalleryLocation) -> bool:
    """Whether a gallery file is at ``location`` (a path that cannot even be looked at counts as
    there: opening it then says why). A database URL counts as there: opening it with
    ``create=False`` says whether it holds a gallery (:class:`~faceprint.errors.GalleryNotFoundError`)."""
    if is_database_url(location):
        return True
    try:
        return Path(location).exists()
    except OSError:
        return True


def open_store(
    location: GalleryLocation,
    *,
    create: bool = True,
    master_key: MasterKey | None = None,
    keyring: str | os.PathLike[str] | None = None,
    encrypt: bool = False,
) -> GalleryStore:
    """The store of the gallery at ``location``: :class:`SQLiteStore` for a path,
    :class:`~faceprint.gallery.storage.postgres.PostgresStore` for a ``postgresql://`` URL."""
    if is_database_url(location):
        from faceprint.gallery.storage.postgres import PostgresStore

        return PostgresStore(str(location).strip(), create=create, master_key=master_key, keyring=keyring,
                             encrypt=encrypt)
    return SQLiteStore(location, create=create, master_key=master_key, keyring=keyring, encrypt=encrypt)
